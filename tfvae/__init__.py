"""tfvae: variational autoencoders for TensorFlow, Keras 3 and TensorFlow Probability."""

from tfvae.tensorflow_logs import import_tensorflow

import_tensorflow()  # first, so that the `tfvae` command can keep TensorFlow's start-up log lines off its terminal

from tfvae import layers, likelihoods, losses, networks  # noqa: E402
from tfvae.autoencoder_kl import AutoencoderKL  # noqa: E402
from tfvae.distributions import DiagonalGaussian  # noqa: E402
from tfvae.model import VAE  # noqa: E402

__all__ = ["AutoencoderKL", "DiagonalGaussian", "VAE", "layers", "likelihoods", "losses", "networks"]
__version__ = "0.1.0"
