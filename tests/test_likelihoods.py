import numpy as np
import pytest
import tensorflow as tf

from tfvae import likelihoods


def test_bernoulli_nll_is_the_cross_entropy_written_out(rng):
    logits = rng.normal(size=(4, 9)).astype(np.float32)
    x = rng.random((4, 9)).astype(np.float32)
    y = 1 / (1 + np.exp(-logits.astype(np.float64)))
    written_out = -np.sum(x * np.log(y) + (1 - x) * np.log(1 - y), axis=-1)
    bernoulli = likelihoods.get("bernoulli")
    np.testing.assert_allclose(bernoulli.negative_log_likelihood(x, tf.constant(logits)), written_out, rtol=1e-5)
    np.testing.assert_allclose(bernoulli.mean(tf.constant(logits)), y, rtol=1e-5)


def test_bernoulli_nll_stays_finite_for_saturated_logits():
    logits = tf.constant([[200.0, -200.0]])
    nll = likelihoods.Bernoulli().negative_log_likelihood(np.array([[0.0, 1.0]], np.float32), logits)
    np.testing.assert_allclose(nll, [400.0])


def test_gaussian_nll_is_the_seed_formula(rng):
    mean, logvar = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    x = rng.normal(size=(3, 5)).astype(np.float32)
    params = tf.constant(np.concatenate([mean, logvar], -1), tf.float32)
    written_out = 0.5 * np.sum(np.log(2 * np.pi) + logvar + (x - mean) ** 2 / np.exp(logvar), axis=-1)
    gaussian = likelihoods.get({"name": "gaussian", "logvar_range": [-30, 20]})
    np.testing.assert_allclose(gaussian.negative_log_likelihood(x, params), written_out, rtol=1e-5)
    named = gaussian.named_parameters(params)
    np.testing.assert_allclose(named["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(named["logvar"], logvar, rtol=1e-6)
    assert gaussian.params_size(5) == 10 and likelihoods.Bernoulli().params_size(5) == 5


def test_get_round_trips_configs_and_refuses_unknown_names():
    gaussian = likelihoods.Gaussian(logvar_range=(-4, 4))
    assert likelihoods.get(gaussian.get_config()).logvar_range == (-4.0, 4.0)
    assert likelihoods.get(gaussian) is gaussian
    with pytest.raises(ValueError, match="bernoulli"):
        likelihoods.get("poisson")
