"""`DiagonalGaussian` at its edges: the KL to a point mass, and float64 noise."""

import math

import numpy as np
import tensorflow as tf
from scipy import stats

from tfvae import DiagonalGaussian

PARAMS = tf.constant([[0.5, -1.0, 0.0, 0.4], [2.0, 0.0, -0.6, 0.0]])


def test_the_kl_to_a_point_mass_is_infinite_unless_self_is_the_same_point_mass():
    point = DiagonalGaussian(PARAMS, deterministic=True)
    assert np.all(DiagonalGaussian(PARAMS).kl(point) == math.inf), "a density against a point mass"
    np.testing.assert_array_equal(point.kl(point), [0.0, 0.0])
    elsewhere = DiagonalGaussian(PARAMS + tf.constant([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]),
                                 deterministic=True)
    np.testing.assert_array_equal(point.kl(elsewhere), [math.inf, 0.0])
    # From a point mass to a density: zero, latent-diffusion's convention for a deterministic autoencoder.
    np.testing.assert_array_equal(point.kl(DiagonalGaussian(PARAMS)), [0.0, 0.0])


def test_float64_samples_draw_float64_noise():
    q = DiagonalGaussian(tf.zeros([20_000, 2], tf.float64))  # N(0, 1): the sample is the noise
    epsilon = q.sample(seed=[4, 5]).numpy()
    assert epsilon.dtype == np.float64
    assert np.mean(epsilon == epsilon.astype(np.float32)) < 0.01, "not float32 values cast to float64"
    assert stats.kstest(epsilon.ravel(), "norm").pvalue > 1e-3
    cells = stats.norm.cdf(epsilon.ravel()) * 2**23
    assert np.mean(np.abs(cells - np.floor(cells) - 0.5) < 1e-6) < 0.01, "finer than float32's 2^23 cells"
