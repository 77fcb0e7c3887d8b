"""Distribution layers in Sequential and functional models: outputs, attached distributions, KL losses, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import reload_and_serve

from tfvae import DiagonalGaussian, likelihoods
from tfvae.layers import DiagonalGaussianLambda, GaussianHead, IndependentBernoulli, distribution_of
from tfvae.losses import NegativeLogLikelihood


@keras.saving.register_keras_serializable(package="tfvae_tests")
def twice_the_mean(distribution):
    return 2.0 * distribution.mean()


def params_model(kind, layer, size=6):
    """A model from `[batch, size]` through a Dense layer to `layer`, built as `kind` (Sequential or functional)."""
    if kind == "sequential":
        return keras.Sequential([keras.Input((size,)), keras.layers.Dense(size, name="params"), layer])
    inputs = keras.Input((size,))
    return keras.Model(inputs, layer(keras.layers.Dense(size, name="params")(inputs)))


def closed_form_kl(params):
    mu, logvar = np.split(np.asarray(params, np.float64), 2, axis=-1)
    return 0.5 * np.sum(mu**2 + np.exp(logvar) - 1 - logvar, axis=-1)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_output_is_the_chosen_tensor_and_carries_the_distribution(kind, rng):
    x = rng.normal(size=(4000, 6)).astype(np.float32)
    outputs = {}
    for convert in ("mode", "mean", "sample", twice_the_mean):
        model = params_model(kind, DiagonalGaussianLambda(convert_to_tensor_fn=convert, seed=3))
        model.get_layer("params").set_weights([np.eye(6, dtype=np.float32), np.zeros(6, np.float32)])
        outputs[convert] = model(x)
        assert isinstance(distribution_of(outputs[convert]), DiagonalGaussian)
        assert model.output_shape == (None, 3)
    mu, sigma = x[:, :3], np.exp(0.5 * x[:, 3:])
    np.testing.assert_allclose(outputs["mode"], mu)
    np.testing.assert_allclose(outputs["mean"], mu)
    np.testing.assert_allclose(outputs[twice_the_mean], 2 * mu)
    epsilon = (outputs["sample"].numpy() - mu) / sigma  # z = mu + sigma * epsilon, epsilon ~ N(0, I)
    np.testing.assert_allclose(epsilon.mean(0), 0, atol=0.1)
    np.testing.assert_allclose(epsilon.std(0), 1, atol=0.1)
    np.testing.assert_allclose(distribution_of(outputs["sample"]).mean(), mu)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_kl_weight_adds_the_batch_mean_kl_in_call_and_fit(kind, rng):
    x = rng.normal(size=(32, 6)).astype(np.float32)
    model = params_model(kind, DiagonalGaussianLambda(kl_weight=0.5))
    params = model.get_layer("params")(x).numpy()
    expected = 0.5 * closed_form_kl(params).mean()
    model(x)
    np.testing.assert_allclose([float(loss) for loss in model.losses], [expected], rtol=1e-5)
    model.compile(keras.optimizers.SGD(0.0))  # the KL is the whole loss; a zero step keeps the weights
    history = model.fit(x, epochs=1, batch_size=32, verbose=0)
    np.testing.assert_allclose(history.history["loss"], [expected], rtol=1e-5)
    without_kl = params_model(kind, DiagonalGaussianLambda())
    without_kl(x)
    assert not without_kl.losses


def test_distribution_call_builds_q_without_a_loss(rng):
    layer = DiagonalGaussianLambda(kl_weight=1.0, convert_to_tensor_fn=twice_the_mean)
    q = layer.distribution(rng.normal(size=(3, 4)).astype(np.float32))
    assert isinstance(q, DiagonalGaussian) and not layer.losses
    clone = DiagonalGaussianLambda.from_config(layer.get_config())
    assert clone.kl_weight == 1.0 and clone.convert_to_tensor_fn is twice_the_mean
    with pytest.raises(ValueError, match="convert_to_tensor_fn"):
        DiagonalGaussianLambda(convert_to_tensor_fn="median")
    with pytest.raises(ValueError, match="logvar_range must be two numbers \\(low, high\\); got 'mean'"):
        DiagonalGaussianLambda("mean")  # the first argument is the clamp, not convert_to_tensor_fn
    with pytest.raises(ValueError, match="carries no distribution"):
        distribution_of(tf.constant([1.0]))


def test_negative_log_likelihood_sums_over_data_axes_and_averages_over_the_batch(rng):
    logits = rng.normal(size=(5, 4, 3)).astype(np.float32)
    x = rng.random((5, 4, 3)).astype(np.float32)  # grey levels, as keras-io scores MNIST
    probabilities = IndependentBernoulli()(logits)
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-logits)), rtol=1e-6)
    expected = np.mean(likelihoods.Bernoulli().negative_log_likelihood(x, logits))
    np.testing.assert_allclose(NegativeLogLikelihood()(x, probabilities), expected, rtol=1e-5)
    params = rng.normal(size=(5, 4, 3, 4)).astype(np.float32)  # a spatial Gaussian: [batch, h, w, 2c]
    y = rng.normal(size=(5, 4, 3, 2)).astype(np.float32)
    mean = DiagonalGaussianLambda(convert_to_tensor_fn="mean")(params)
    np.testing.assert_allclose(NegativeLogLikelihood()(y, mean), np.mean(DiagonalGaussian(params).nll(y)), rtol=1e-5)


def test_a_sequential_vae_trains_predicts_saves_loads_and_exports(rng, tmp_path):
    """Encoder and decoder in one Sequential model: the KL from the layer, the reconstruction from the loss.

    The functional form is tested by the worked examples (tests/test_examples.py).
    """
    x = (rng.random((64, 8)) < 0.3).astype(np.float32)
    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation="tanh"),
        GaussianHead(2),
        DiagonalGaussianLambda(kl_weight=1.0, seed=0),
        keras.layers.Dense(16, activation="tanh"),
        keras.layers.Dense(8),
        IndependentBernoulli(convert_to_tensor_fn=twice_the_mean),
    ])
    model.compile(keras.optimizers.Adam(1e-2), loss=NegativeLogLikelihood(), jit_compile=True)
    losses = model.fit(x, x, epochs=5, batch_size=16, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    loaded, served = reload_and_serve(model, x, str(tmp_path))
    # The seed generator's state travels with the model, so all three draw the same z.
    predicted = loaded.predict(x, batch_size=64, verbose=0)
    np.testing.assert_allclose(predicted, model.predict(x, batch_size=64, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served, predicted, rtol=1e-5, atol=1e-6)
    assert np.all((served >= 0) & (served <= 2))  # twice a probability
    np.testing.assert_allclose(loaded.evaluate(x, x, verbose=0), model.evaluate(x, x, verbose=0), rtol=1e-5)
