"""Latent diffusion's KL autoencoder: the architecture, its training objective and the trainer that applies it."""

from tfvae.autoencoder_kl.objective import LatentDiffusionLoss, PatchDiscriminator
from tfvae.autoencoder_kl.trainer import AutoencoderKLTrainer

__all__ = ["AutoencoderKLTrainer", "LatentDiffusionLoss", "PatchDiscriminator"]
