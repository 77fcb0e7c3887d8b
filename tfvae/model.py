"""Kept so that `from tfvae.model import VAE` goes on working: the VAE lives in `tfvae.vae`."""

from tfvae.vae import STEPS_PER_EXECUTION, VAE

__all__ = ["STEPS_PER_EXECUTION", "VAE"]
