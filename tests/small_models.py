"""Small models and data that tests of several sub-packages share."""

import keras
import numpy as np

from tfvae import VAE, networks
from tfvae.autoencoder_kl import AutoencoderKL, AutoencoderKLTrainer, LatentDiffusionLoss, PatchDiscriminator

DATA_SIZE, LATENT_SIZE, HIDDEN = 64, 4, 32


def binary_data(rng, count=1024):
    """Eight binary prototypes with 5% of the pixels flipped."""
    prototypes = rng.random((8, DATA_SIZE)) < 0.5
    flips = rng.random((count, DATA_SIZE)) < 0.05
    return (prototypes[rng.integers(0, 8, count)] ^ flips).astype(np.float32)


def continuous_data(rng, count=1024):
    """Points near a 2-D manifold in [0, 1]^64."""
    t = rng.random((count, 2))
    basis = rng.normal(size=(2, DATA_SIZE))
    return (1 / (1 + np.exp(-(t @ basis))) + 0.02 * rng.normal(size=(count, DATA_SIZE))).astype(np.float32)


def make_vae(likelihood, seed=0, beta=1.0):
    keras.utils.set_random_seed(seed)
    encoder = networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, HIDDEN)
    if likelihood == "bernoulli":
        decoder = networks.bernoulli_mlp_decoder(LATENT_SIZE, DATA_SIZE, HIDDEN)
    else:
        decoder = networks.gaussian_mlp_decoder(LATENT_SIZE, DATA_SIZE, HIDDEN)
    return VAE(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed)


SHAPE = (16, 16, 3)


def tiny_autoencoder(seed):
    return AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=2,
                         mid_block_add_attention=False, seed=seed)


def make_trainer(discriminator_start=0, seed=3, optimizer=keras.optimizers.SGD, learning_rate=1e-3, jit_compile=True):
    keras.utils.set_random_seed(seed)
    trainer = AutoencoderKLTrainer(
        tiny_autoencoder(seed),
        LatentDiffusionLoss(kl_weight=1e-2, discriminator_start=discriminator_start, discriminator_weight=0.5),
        PatchDiscriminator(filters=4, num_layers=2),
    )
    trainer.build((None, *SHAPE))
    trainer.compile(optimizer(learning_rate), optimizer(learning_rate), jit_compile=jit_compile)
    return trainer
