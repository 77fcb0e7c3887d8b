"""The exported `encode` and `decode` signatures scale latents with `latents_mean` / `latents_std` as diffusers'
SDXL-style pipelines do."""

import keras
import numpy as np
import tensorflow as tf

from tfvae import AutoencoderKL
from tfvae.serving import export

MEAN, STD, SCALING = np.array([-1.5, 1.0]), np.array([8.0, 6.0]), 0.5


def test_signatures_apply_the_latent_statistics(tmp_path):
    keras.utils.set_random_seed(2)
    model = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=4, latent_channels=2, scaling_factor=SCALING,
                          latents_mean=MEAN, latents_std=STD, seed=3)
    loaded = tf.saved_model.load(export.export_saved_model(model, str(tmp_path / "autoencoder")))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 8, 6, 3)).astype("float32")
    encoded = loaded.signatures["encode"](x=tf.constant(x))
    np.testing.assert_allclose(encoded["latents"], (encoded["z"] - MEAN) * SCALING / STD, rtol=1e-5, atol=1e-6)
    latents = np.random.default_rng(1).normal(size=(1, 4, 3, 2)).astype("float32")
    images = loaded.signatures["decode"](latents=tf.constant(latents))["images"]
    z = (latents * STD / SCALING + MEAN).astype("float32")
    np.testing.assert_allclose(images, model.decode(z), atol=1e-5)
