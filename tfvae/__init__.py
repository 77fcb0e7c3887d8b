"""tfvae: variational autoencoders for TensorFlow, Keras 3 and TensorFlow Probability."""

from tfvae import layers, likelihoods, networks
from tfvae.autoencoder_kl import AutoencoderKL
from tfvae.distributions import DiagonalGaussian
from tfvae.model import VAE

__all__ = ["AutoencoderKL", "DiagonalGaussian", "VAE", "layers", "likelihoods", "networks"]
__version__ = "0.1.0"
