"""A distribution layer called directly gives its distribution, which is also a tensor; in a model, a tensor.

Code written against the first release (`q = DiagonalGaussianLambda()(params); q.kl()`) keeps working, as TFP's own
`DistributionLambda` behaves; Sequential and functional models still pass tensors between their layers.
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import DiagonalGaussian
from tfvae.layers import DiagonalGaussianLambda, IndependentBernoulli, distribution_of

PARAMS = tf.constant([[0.5, -1.0, 0.0, 0.4], [2.0, 0.0, -0.6, 0.0]])  # [mu, log sigma^2] of 2 examples, d = 2


def test_a_direct_call_gives_the_diagonal_gaussian_that_is_also_its_sample():
    q = DiagonalGaussianLambda(seed=3)(PARAMS)
    assert isinstance(q, DiagonalGaussian) and isinstance(q, tfp.distributions.MultivariateNormalDiag)
    mu, logvar = np.split(PARAMS.numpy(), 2, axis=-1)
    np.testing.assert_allclose(q.mean(), mu)
    np.testing.assert_allclose(q.kl(), 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(-1), rtol=1e-6)
    np.testing.assert_allclose(q.nll(mu), 0.5 * (np.log(2 * np.pi) + logvar).sum(-1), rtol=1e-6)
    z = tf.convert_to_tensor(q)
    assert z.shape == (2, 2) and not np.allclose(z, mu), "a sample, not the mean"
    np.testing.assert_allclose(q + 1.0, z + 1.0)
    np.testing.assert_allclose(keras.ops.sum(q, axis=-1), tf.reduce_sum(z, -1))
    np.testing.assert_allclose(np.asarray(q), z)
    assert q.shape == (2, 2) and q.sample(seed=[1, 2]).shape == (2, 2) and distribution_of(q) is q


def test_a_direct_call_adds_the_kl_and_picks_the_tensor_convert_to_tensor_fn_names():
    layer = DiagonalGaussianLambda(convert_to_tensor_fn="mean", kl_weight=2.0)
    q = layer(PARAMS)
    np.testing.assert_allclose(tf.convert_to_tensor(q), q.mean())
    np.testing.assert_allclose(layer.losses[0], 2.0 * np.mean(q.kl()), rtol=1e-6)


def test_independent_bernoulli_called_directly_is_its_distribution_and_its_mean():
    logits = tf.constant([[0.0, 2.0, -1.0]])
    p = IndependentBernoulli()(logits)
    expected = 1 / (1 + np.exp(-logits.numpy()))
    np.testing.assert_allclose(p * 1.0, expected, rtol=1e-6)
    x = np.array([[1.0, 0.0, 1.0]], np.float32)
    np.testing.assert_allclose(p.log_prob(x), np.log(np.where(x == 1, expected, 1 - expected)).sum(-1), rtol=1e-6)


def test_in_sequential_and_functional_models_the_layers_pass_tensors():
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Identity(), DiagonalGaussianLambda(seed=1)])
    z = encoder(PARAMS)
    assert tf.is_tensor(z) and not isinstance(z, DiagonalGaussian) and z.shape == (2, 2)
    assert isinstance(distribution_of(z), DiagonalGaussian)
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3)(DiagonalGaussianLambda(convert_to_tensor_fn="mean")(inputs))
    assert keras.Model(inputs, outputs)(PARAMS).shape == (2, 3)
