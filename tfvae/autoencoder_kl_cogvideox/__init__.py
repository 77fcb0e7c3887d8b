"""CogVideoX's 3D causal KL video autoencoder (`AutoencoderKLCogVideoX`): its blocks, frame chunks, the model, its
weights files and tiling (its SavedModel signatures: `tfvae.serving.autoencoder_kl_cogvideox_signatures`)."""

from tfvae.autoencoder_kl.weights import WeightsError
from tfvae.autoencoder_kl_cogvideox.model import AutoencoderKLCogVideoX

__all__ = ["AutoencoderKLCogVideoX", "WeightsError"]
