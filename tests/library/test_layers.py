import keras
import numpy as np
import pytest

from tfvae import DiagonalGaussian
from tfvae.layers import DiagonalGaussianLambda, GaussianHead


def test_gaussian_head_has_two_distinct_dense_layers(rng):
    head = GaussianHead(3)
    h = rng.normal(size=(5, 7)).astype(np.float32)
    params = head(h).numpy()
    assert params.shape == (5, 6)
    w4, b4 = head.mean_dense.kernel.numpy(), head.mean_dense.bias.numpy()
    w5, b5 = head.logvar_dense.kernel.numpy(), head.logvar_dense.bias.numpy()
    assert not np.allclose(w4, w5), "the mean and log-variance heads must not share weights"
    np.testing.assert_allclose(params[:, :3], h @ w4 + b4, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(params[:, 3:], h @ w5 + b5, rtol=1e-5, atol=1e-6)


@keras.saving.register_keras_serializable(package="tests")
def small_uniform(shape, dtype=None):
    return keras.random.uniform(shape, -0.1, 0.1, dtype=dtype)


def test_a_function_initializer_still_initializes_both_heads():
    head = GaussianHead(3, kernel_initializer=small_uniform)
    head.build((None, 4))
    for dense in (head.mean_dense, head.logvar_dense):
        assert 0 < np.abs(dense.kernel.numpy()).max() <= 0.1
    assert GaussianHead.from_config(head.get_config()).units == 3


@pytest.mark.parametrize("seed", [1, "seed generator"])
def test_a_seeded_initializer_starts_the_two_heads_apart_and_the_same_in_every_build(seed):
    def head():
        generator_or_int = keras.random.SeedGenerator(3) if seed == "seed generator" else seed
        layer = GaussianHead(4, kernel_initializer=keras.initializers.GlorotUniform(seed=generator_or_int),
                             bias_initializer=keras.initializers.RandomNormal(seed=generator_or_int))
        layer.build((None, 5))
        return [weight.numpy() for weight in (layer.mean_dense.kernel, layer.mean_dense.bias,
                                              layer.logvar_dense.kernel, layer.logvar_dense.bias)]

    mean_kernel, mean_bias, logvar_kernel, logvar_bias = head()
    assert not np.allclose(mean_kernel, logvar_kernel) and not np.allclose(mean_bias, logvar_bias)
    for first, again in zip((mean_kernel, mean_bias, logvar_kernel, logvar_bias), head(), strict=True):
        np.testing.assert_array_equal(first, again)


def test_two_heads_equal_one_dense_layer_with_stacked_weights(rng):
    """Appendix C.2's two heads W4, W5 are one Dense layer of 2 * units whose kernel is [W4 | W5]."""
    head = GaussianHead(4, kernel_initializer="random_normal")
    head.build((None, 6))
    head.mean_dense.bias.assign(rng.normal(size=4))
    head.logvar_dense.bias.assign(rng.normal(size=4))
    stacked = keras.layers.Dense(8)
    stacked.build((None, 6))
    stacked.kernel.assign(np.concatenate([head.mean_dense.kernel.numpy(), head.logvar_dense.kernel.numpy()], axis=1))
    stacked.bias.assign(np.concatenate([head.mean_dense.bias.numpy(), head.logvar_dense.bias.numpy()]))
    h = rng.normal(size=(3, 6)).astype(np.float32)
    np.testing.assert_allclose(head(h), stacked(h), rtol=1e-6, atol=1e-6)


def test_gaussian_head_mean_activation_applies_to_the_mean_only(rng):
    head = GaussianHead(2, mean_activation="sigmoid", kernel_initializer="random_normal")
    params = head(10 * rng.normal(size=(50, 3)).astype(np.float32)).numpy()
    assert np.all((params[:, :2] >= 0) & (params[:, :2] <= 1))
    assert np.any(params[:, 2:] < 0) and np.any(params[:, 2:] > 1)


def test_gaussian_head_config_round_trip():
    head = GaussianHead(5, mean_activation="sigmoid", name="head")
    clone = GaussianHead.from_config(head.get_config())
    assert clone.units == 5 and clone.mean_activation is keras.activations.sigmoid and clone.name == "head"
    with pytest.raises(ValueError, match="units"):
        GaussianHead(0)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_gaussian_head_builds_its_dense_layers_with_its_dtype_policy(rng, policy):
    head = GaussianHead(4, dtype=policy)
    params = head(rng.normal(size=(2, 3)).astype(np.float32))
    for dense in (head.mean_dense, head.logvar_dense):
        assert dense.dtype_policy.name == policy and dense.kernel.dtype == "float32"
    assert params.dtype == policy.split("_")[1]
    assert GaussianHead.from_config(head.get_config()).mean_dense.dtype_policy.name == policy


def test_diagonal_gaussian_lambda_makes_a_clamped_distribution():
    layer = DiagonalGaussianLambda(logvar_range=(-2.0, 2.0))
    q = layer.distribution(np.array([[0.5, -100.0]], np.float32))
    assert isinstance(q, DiagonalGaussian)
    np.testing.assert_allclose(q.logvar, [[-2.0]])
    clone = DiagonalGaussianLambda.from_config(layer.get_config())
    assert clone.logvar_range == (-2.0, 2.0) and not clone.deterministic
    deterministic = DiagonalGaussianLambda(deterministic=True)(np.array([[0.5, 1.0]], np.float32))
    np.testing.assert_array_equal(deterministic, [[0.5]])  # the output is a sample, here the mean
