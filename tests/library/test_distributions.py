import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import DiagonalGaussian, tensor_math

tfd = tfp.distributions
MC_SAMPLES = 200_000


def random_params(rng, shape, logvar_scale=1.0):
    mean = rng.normal(size=shape)
    logvar = logvar_scale * rng.normal(size=shape)
    return np.concatenate([mean, logvar], axis=-1).astype(np.float32)


def assert_within_standard_errors(estimates, expected, limit=5.0):
    """Asserts the Monte Carlo mean of `estimates` (axis 0) is within `limit` standard errors of `expected`."""
    estimates = np.asarray(estimates, np.float64)
    mean = estimates.mean(axis=0)
    standard_error = estimates.std(axis=0) / math.sqrt(len(estimates))
    assert np.all(np.abs(mean - expected) <= limit * standard_error + 1e-6), (mean, expected, standard_error)


def test_is_a_tfp_multivariate_normal_diag(rng):
    q = DiagonalGaussian(random_params(rng, (4, 3)))
    assert isinstance(q, tfd.MultivariateNormalDiag)
    assert q.batch_shape == [4] and q.event_shape == [3]


def test_tfps_parts_are_built_on_first_use_and_answer_as_multivariate_normal_diag_does(rng):
    q = DiagonalGaussian(random_params(rng, (4, 3)))
    q.mean(), q.mode(), q.logvar, q.std, q.kl(), q.nll(tf.zeros((4, 3))), q.sample(seed=(1, 2))
    assert "_normal" not in vars(q), "the mean, the variance, sample, kl and nll need none of TFP's parts"
    reference = tfd.MultivariateNormalDiag(q.mean(), q.std)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    for name in ("log_prob", "prob"):
        np.testing.assert_allclose(getattr(q, name)(x), getattr(reference, name)(x), rtol=1e-6, err_msg=name)
    for name in ("entropy", "stddev", "variance", "covariance", "batch_shape_tensor", "event_shape_tensor"):
        np.testing.assert_allclose(getattr(q, name)(), getattr(reference, name)(), rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(q.scale.to_dense(), reference.scale.to_dense())
    np.testing.assert_allclose(tfd.kl_divergence(q, reference), 0.0, atol=1e-6)
    assert (q.batch_shape, q.event_shape) == (reference.batch_shape, reference.event_shape)


def test_halves_and_their_functions(rng):
    params = random_params(rng, (5, 3))
    q = DiagonalGaussian(params)
    np.testing.assert_allclose(q.mean(), params[:, :3])
    np.testing.assert_allclose(q.logvar, params[:, 3:])
    np.testing.assert_allclose(q.var, np.exp(params[:, 3:]), rtol=1e-6)
    np.testing.assert_allclose(q.std, np.exp(0.5 * params[:, 3:]), rtol=1e-6)
    np.testing.assert_allclose(q.mode(), params[:, :3])


def test_kl_to_standard_normal_matches_tfp_and_formula(rng):
    params = random_params(rng, (6, 4))
    q = DiagonalGaussian(params)
    prior = tfd.MultivariateNormalDiag(tf.zeros(4))
    np.testing.assert_allclose(q.kl(), tfd.kl_divergence(q, prior), rtol=1e-5)
    mean, logvar = params[:, :4], params[:, 4:]
    written_out = -0.5 * np.sum(1 + logvar - mean**2 - np.exp(logvar), axis=-1)
    np.testing.assert_allclose(q.kl(), written_out, rtol=1e-5)


def test_kl_to_standard_normal_matches_monte_carlo(rng):
    q = DiagonalGaussian(random_params(rng, (3, 2), logvar_scale=0.5))
    prior = tfd.MultivariateNormalDiag(tf.zeros(2))
    z = q.sample(MC_SAMPLES, seed=[1, 2])
    log_ratio = q.log_prob(z) - prior.log_prob(z)
    assert_within_standard_errors(log_ratio.numpy(), q.kl().numpy())


def test_kl_between_diagonal_gaussians_matches_tfp_formula_and_monte_carlo(rng):
    q1 = DiagonalGaussian(random_params(rng, (3, 2), logvar_scale=0.5))
    q2 = DiagonalGaussian(random_params(rng, (3, 2), logvar_scale=0.5))
    np.testing.assert_allclose(q1.kl(q2), tfd.kl_divergence(q1, q2), rtol=1e-5)
    m1, v1, m2, v2 = q1.mean().numpy(), q1.var.numpy(), q2.mean().numpy(), q2.var.numpy()
    written_out = 0.5 * np.sum((m1 - m2) ** 2 / v2 + v1 / v2 - 1 - np.log(v1) + np.log(v2), axis=-1)
    np.testing.assert_allclose(q1.kl(q2), written_out, rtol=1e-5)
    z = q1.sample(MC_SAMPLES, seed=[3, 4])
    assert_within_standard_errors((q1.log_prob(z) - q2.log_prob(z)).numpy(), q1.kl(q2).numpy())


def test_kl_with_itself_is_zero_and_rejects_other_distributions(rng):
    q = DiagonalGaussian(random_params(rng, (3, 5)))
    np.testing.assert_allclose(q.kl(q), np.zeros(3), atol=1e-6)
    with pytest.raises(TypeError, match="kl_divergence"):
        q.kl(tfd.MultivariateNormalDiag(tf.zeros(5)))


def test_nll_matches_the_formula_written_out_and_tfp_log_prob(rng):
    params = random_params(rng, (4, 6))
    x = rng.normal(size=(4, 6)).astype(np.float32)
    q = DiagonalGaussian(params)
    mean, logvar = params[:, :6].astype(np.float64), params[:, 6:].astype(np.float64)
    written_out = 0.5 * np.sum(np.log(2 * np.pi) + logvar + (x - mean) ** 2 / np.exp(logvar), axis=-1)
    np.testing.assert_allclose(q.nll(x), written_out, rtol=1e-5)
    np.testing.assert_allclose(q.nll(x), -q.log_prob(x), rtol=1e-5)


def test_sample_moments_match_mean_and_var(rng):
    q = DiagonalGaussian(random_params(rng, (2, 3)))
    z = q.sample(MC_SAMPLES, seed=[5, 6]).numpy().astype(np.float64)
    assert_within_standard_errors(z, q.mean().numpy())
    assert_within_standard_errors((z - q.mean().numpy()) ** 2, q.var.numpy())


def test_sample_is_reproducible_and_the_same_under_xla(rng):
    params = tf.constant(random_params(rng, (8, 4)))

    def draw(p):
        return DiagonalGaussian(p).sample(seed=tf.constant([7, 8]))

    graph, xla = tf.function(draw)(params), tf.function(draw, jit_compile=True)(params)
    np.testing.assert_allclose(graph, xla, atol=1e-5)
    np.testing.assert_array_equal(draw(params), draw(params))
    assert not np.allclose(draw(params), DiagonalGaussian(params).sample(seed=[7, 9]))


def test_gradients_flow_through_sample_to_both_halves(rng):
    params = tf.Variable(random_params(rng, (3, 2)))
    with tf.GradientTape() as tape:
        z = DiagonalGaussian(params).sample(seed=[1, 1])
        loss = tf.reduce_sum(z**2)
    gradient = tape.gradient(loss, params).numpy()
    assert np.all(np.abs(gradient[:, :2]) > 0) and np.all(np.abs(gradient[:, 2:]) > 0)
    # z = mu + exp(logvar / 2) * eps, so dz/dmu = 1 and dz/dlogvar = (z - mu) / 2.
    mean = params.numpy()[:, :2]
    np.testing.assert_allclose(gradient[:, :2], 2 * z, rtol=1e-5)
    np.testing.assert_allclose(gradient[:, 2:], 2 * z * (z - mean) / 2, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("extreme", [1e4, -1e4])
def test_extreme_parameters_are_clamped_and_stay_finite(extreme):
    params = tf.Variable(tf.fill((2, 6), extreme))
    x = tf.zeros((2, 3))
    with tf.GradientTape(persistent=True) as tape:
        q = DiagonalGaussian(params)
        kl, nll, z = q.kl(), q.nll(x), q.sample(seed=[1, 2])
        kl_between = q.kl(DiagonalGaussian(-params))
    np.testing.assert_array_equal(q.logvar, np.full((2, 3), 20.0 if extreme > 0 else -30.0))
    for value in (kl, nll, z, kl_between):
        assert np.all(np.isfinite(value))
    for value in (kl, nll, z, kl_between):
        assert np.all(np.isfinite(tape.gradient(value, params)))


def test_logvar_range_is_configurable():
    q = DiagonalGaussian(tf.constant([[0.0, 50.0]]), logvar_range=(-5.0, 5.0))
    np.testing.assert_allclose(q.logvar, [[5.0]])
    with pytest.raises(ValueError, match="low < high"):
        DiagonalGaussian(tf.zeros((1, 2)), logvar_range=(3.0, -3.0))


def test_deterministic_mode_has_zero_variance(rng):
    params = random_params(rng, (4, 3))
    q = DiagonalGaussian(params, deterministic=True)
    np.testing.assert_array_equal(q.sample(seed=[1, 2]), params[:, :3])
    np.testing.assert_array_equal(q.var, np.zeros((4, 3)))
    np.testing.assert_array_equal(q.kl(), np.zeros(4))
    np.testing.assert_array_equal(q.nll(params[:, :3]), np.zeros(4))


def test_deterministic_log_prob_is_a_point_mass_at_the_mean(rng):
    params = random_params(rng, (4, 3))
    q = DiagonalGaussian(params, deterministic=True)
    mean = params[:, :3]
    np.testing.assert_array_equal(q.log_prob(mean), np.zeros(4))
    np.testing.assert_array_equal(q.prob(mean), np.ones(4))
    moved = mean + np.array([[0.0, 0.0, 0.0], [0.0, 1e-3, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, -1e-3]], np.float32)
    np.testing.assert_array_equal(q.log_prob(moved), [0.0, -np.inf, -np.inf, -np.inf])
    np.testing.assert_array_equal(q.prob(moved), [1.0, 0.0, 0.0, 0.0])
    stochastic = DiagonalGaussian(params)
    np.testing.assert_allclose(stochastic.log_prob(moved), -stochastic.nll(moved), rtol=1e-5)


def test_rank_four_latents_reduce_to_one_value_per_example(rng):
    params = random_params(rng, (2, 4, 5, 3))  # [batch, height, width, 2 * channels]
    x = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    q = DiagonalGaussian(params)
    assert q.sample(seed=[1, 2]).shape == (2, 4, 5, 3)
    assert q.kl().shape == (2,) and q.nll(x).shape == (2,)
    mean, logvar = params[..., :3], params[..., 3:]
    flat = DiagonalGaussian(np.concatenate([mean.reshape(2, -1), logvar.reshape(2, -1)], axis=-1))
    np.testing.assert_allclose(q.kl(), flat.kl(), rtol=1e-5)
    np.testing.assert_allclose(q.nll(x), flat.nll(x.reshape(2, -1)), rtol=1e-5)
    other = DiagonalGaussian(random_params(rng, (2, 4, 5, 3)))
    np.testing.assert_allclose(
        q.kl(other), np.sum(tfd.kl_divergence(q, other).numpy(), axis=(1, 2)), rtol=1e-5
    )


def test_half_precision_parameters_are_computed_in_float32():
    q = DiagonalGaussian(tf.constant([[60000.0, 15.0]], tf.float16))
    assert q.dtype == tf.float32
    assert np.isfinite(q.kl().numpy()).all()


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="must be even"):
        DiagonalGaussian(tf.zeros((2, 5)))
    with pytest.raises(TypeError, match="floating-point"):
        DiagonalGaussian(tf.zeros((2, 4), tf.int32))


def test_tfp_copy_and_slicing_keep_the_subclass(rng):
    q = DiagonalGaussian(random_params(rng, (4, 2)))
    sliced = q[1:3]
    assert isinstance(sliced, DiagonalGaussian) and sliced.batch_shape == [2]
    np.testing.assert_allclose(sliced.kl(), q.kl()[1:3], rtol=1e-6)
    deterministic = q.copy(deterministic=True)
    np.testing.assert_array_equal(deterministic.sample(seed=[1, 2]), q.mean())


def test_noise_from_the_extreme_random_bits_is_finite_and_symmetric():
    bits = tf.constant([0, 1 << 9, 0x7FFFFFFF, 0x80000000, 0xFFFFFDFF, 0xFFFFFFFF], tf.uint32)
    compiled = tf.function(tensor_math.normal_from_bits, jit_compile=True)
    for normal in (tensor_math.normal_from_bits(bits), compiled(bits)):
        values = normal.numpy()
        assert np.isfinite(values).all() and np.abs(values).max() < 5.5
        np.testing.assert_allclose(values[:3], -values[::-1][:3], rtol=1e-5, atol=1e-6)
        assert values[0] < values[1] < values[2] < 0 < values[3] < values[4] < values[5]


def test_numpy_params_become_the_tensor_part_of_the_distribution(rng):
    """As TFP's distributions convert theirs: a `tf.function` taking the distribution traces once for all arrays."""
    traces = []

    @tf.function
    def kl(distribution):
        traces.append(distribution)
        return distribution.kl()

    for _ in range(3):
        params = rng.normal(size=(2, 4)).astype(np.float32)
        np.testing.assert_allclose(kl(DiagonalGaussian(params)), DiagonalGaussian(params).kl(), rtol=1e-6)
    assert len(traces) == 1
    assert len(tf.nest.flatten(DiagonalGaussian(params), expand_composites=True)) == 1
