"""The latent-diffusion objective against closed forms, and the PatchGAN against taming-transformers' shapes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae.autoencoder_kl import LatentDiffusionLoss, PatchDiscriminator
from tfvae.distributions import DiagonalGaussian


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_nll_is_the_per_pixel_error_scaled_by_the_learned_variance(rng, kind):
    x, x_hat = rng.random((2, 3, 4, 4, 3)).astype(np.float32)
    loss = LatentDiffusionLoss(reconstruction_loss=kind, logvar_init=0.7)
    error = np.abs(x - x_hat) if kind == "l1" else np.square(x - x_hat)
    np.testing.assert_allclose(loss.reconstruction_error(x, x_hat), error, rtol=1e-6)
    expected = np.mean(np.sum(error / np.exp(0.7) + 0.7, axis=(1, 2, 3)))
    np.testing.assert_allclose(float(loss.nll(loss.reconstruction_error(x, x_hat))), expected, rtol=1e-5)


def test_nll_is_minimal_where_the_variance_matches_the_error(rng):
    """d nll / d s = 0 at s = log(mean r): the learned log-variance tracks the reconstruction error."""
    error = tf.constant(rng.random((4, 8, 8, 3)).astype(np.float32))
    loss = LatentDiffusionLoss()
    loss.logvar.assign(np.log(float(tf.reduce_mean(error))))
    with tf.GradientTape() as tape:
        nll = loss.nll(error)
    assert abs(float(tape.gradient(nll, loss.logvar))) < 1e-3


def test_a_perceptual_distance_is_added_to_every_pixel(rng):
    x, x_hat = rng.random((2, 2, 4, 4, 3)).astype(np.float32)
    distance = np.array([0.5, 2.0], np.float32)
    loss = LatentDiffusionLoss(perceptual_loss=lambda a, b: tf.constant(distance), perceptual_weight=0.1)
    np.testing.assert_allclose(loss.reconstruction_error(x, x_hat),
                               np.abs(x - x_hat) + 0.1 * distance[:, None, None, None], rtol=1e-6)


def test_kl_is_the_batch_mean_of_the_closed_form(rng):
    params = rng.normal(size=(5, 2, 2, 8)).astype(np.float32)
    mean, logvar = np.split(params, 2, axis=-1)
    expected = np.mean(np.sum(0.5 * (mean**2 + np.exp(logvar) - 1 - logvar), axis=(1, 2, 3)))
    np.testing.assert_allclose(float(LatentDiffusionLoss().kl(DiagonalGaussian(params))), expected, rtol=1e-5)


def test_hinge_losses():
    loss = LatentDiffusionLoss()
    real, fake = np.array([2.0, 0.5, -1.0]), np.array([-3.0, 0.0, 1.5])
    # relu(1 - real) = [0, 0.5, 2], relu(1 + fake) = [0, 1, 2.5]
    assert float(loss.discriminator_loss(real, fake)) == pytest.approx(0.5 * (2.5 / 3 + 3.5 / 3))
    assert float(loss.generator_loss(fake)) == pytest.approx(1.5 / 3)  # -mean([-3, 0, 1.5])


def test_adaptive_weight_is_the_clipped_gradient_norm_ratio():
    loss = LatentDiffusionLoss(discriminator_weight=0.5)
    nll_gradient, generator_gradient = np.array([3.0, 4.0]), np.array([0.0, 2.0])
    assert float(loss.adaptive_weight(nll_gradient, generator_gradient)) == pytest.approx(0.5 * 5 / (2 + 1e-4))
    assert float(loss.adaptive_weight(nll_gradient, np.zeros(2))) == pytest.approx(0.5 * 1e4), "clipped at 1e4"


def test_the_discriminator_factor_starts_at_its_step():
    loss = LatentDiffusionLoss(discriminator_start=3, discriminator_factor=0.8)
    assert [float(loss.discriminator_factor_at(step)) for step in range(5)] == pytest.approx([0, 0, 0, 0.8, 0.8])


def test_objective_config_round_trip():
    loss = LatentDiffusionLoss("l2", kl_weight=1e-4, logvar_init=-1.0, discriminator_start=7, discriminator_weight=0.3)
    restored = LatentDiffusionLoss.from_config(loss.get_config())
    assert restored.get_config() == loss.get_config()
    assert float(restored.logvar) == -1.0
    with pytest.raises(ValueError, match="reconstruction_loss"):
        LatentDiffusionLoss("l3")


@pytest.mark.parametrize("size, num_layers, patches", [(64, 3, 6), (32, 3, 2), (16, 2, 2)])
def test_patch_discriminator_has_taming_transformers_shapes(size, num_layers, patches):
    discriminator = PatchDiscriminator(filters=8, num_layers=num_layers)
    logits = discriminator(tf.zeros((2, size, size, 3)), training=True)
    assert logits.shape == (2, patches, patches, 1)
    assert discriminator.compute_output_shape((2, size, size, 3)) == (2, patches, patches, 1)
    widths = [3] + [8 * min(2**index, 8) for index in range(num_layers + 1)]
    pairs = zip(widths[:-1], widths[1:], strict=True)
    kernels = sum(16 * inputs * outputs for inputs, outputs in pairs) + 16 * widths[-1]
    biases = widths[1] + 1  # the first and the last convolutions
    batch_norm = 2 * sum(widths[2:])
    assert discriminator.count_params() == kernels + biases + 2 * batch_norm  # gamma, beta; moving mean, variance


def test_patch_discriminator_config_and_small_inputs():
    discriminator = PatchDiscriminator(filters=4, num_layers=2, dtype="mixed_bfloat16")
    restored = PatchDiscriminator.from_config(discriminator.get_config())
    assert restored.get_config() == discriminator.get_config()
    assert restored(tf.zeros((1, 16, 16, 1))).dtype == "bfloat16"
    with pytest.raises(ValueError, match="at least 32x32"):
        PatchDiscriminator(num_layers=3).build((None, 16, 16, 3))
    assert keras.layers.deserialize(keras.layers.serialize(restored)).num_layers == 2
