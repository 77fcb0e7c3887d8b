"""tfvae: variational autoencoders for TensorFlow, Keras 3 and TensorFlow Probability."""

from tfvae import layers, likelihoods, losses, networks
from tfvae.distributions import DiagonalGaussian
from tfvae.model import VAE

__all__ = ["DiagonalGaussian", "VAE", "layers", "likelihoods", "losses", "networks"]
__version__ = "0.1.0"
