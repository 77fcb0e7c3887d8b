"""Latent diffusion's KL autoencoder (`AutoencoderKL`): its blocks, the model, its weights files, tiling, and the
training objective with the trainer that applies it. `tfvae.autoencoder_kl_cogvideox` reads diffusers weights
(`weights`, `torch_layout`), tiles (`tiling`) and checks its configuration (`config_checks`) through these modules."""

from tfvae.autoencoder_kl.model import AutoencoderKL
from tfvae.autoencoder_kl.objective import LatentDiffusionLoss, PatchDiscriminator
from tfvae.autoencoder_kl.trainer import AutoencoderKLTrainer
from tfvae.autoencoder_kl.weights import WeightsError

__all__ = ["AutoencoderKL", "AutoencoderKLTrainer", "LatentDiffusionLoss", "PatchDiscriminator", "WeightsError"]
