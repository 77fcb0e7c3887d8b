"""Latent diffusion's KL autoencoder (`AutoencoderKL`): its blocks, the model, its weights files and tiling."""

from tfvae.autoencoder_kl.model import AutoencoderKL
from tfvae.autoencoder_kl.weights import WeightsError

__all__ = ["AutoencoderKL", "WeightsError"]
