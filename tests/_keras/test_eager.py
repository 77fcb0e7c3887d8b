"""Eager calls of `encode`, `decode`, `generate` and `reconstruct` run compiled (`tfvae._keras.eager`)."""

import gc
import logging
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.eager.polymorphic_function import polymorphic_function

from tfvae import VAE, DiagonalGaussian, networks
from tfvae._keras.eager import tracing_count

DATA_SIZE, LATENT_SIZE, HIDDEN = 12, 3, 8


class CountingLayer(keras.layers.Layer):
    """The identity, counting the Python calls of `call`: eagerly one per call, compiled one per trace."""

    calls = 0

    def call(self, inputs):
        CountingLayer.calls += 1
        return inputs


def make_vae(likelihood="gaussian"):
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((DATA_SIZE,)), CountingLayer(),
                                *networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, HIDDEN).layers])
    decoder = (networks.gaussian_mlp_decoder if likelihood == "gaussian" else networks.bernoulli_mlp_decoder)(
        LATENT_SIZE, DATA_SIZE, HIDDEN)
    return VAE(encoder, decoder, likelihood=likelihood, seed=0)


@pytest.fixture
def data(rng):
    return rng.random((7, DATA_SIZE)).astype(np.float32)


def test_batches_of_every_size_share_one_trace(data):
    model = make_vae()
    CountingLayer.calls = 0
    for size in (1, 3, 7, 2):
        posterior = model.encode(data[:size])
        assert isinstance(posterior, DiagonalGaussian) and posterior.mean().shape == (size, LATENT_SIZE)
    assert CountingLayer.calls == 1, "the encoder ran from Python once: one trace for all batch sizes"
    for size in (1, 3, 7):
        model.reconstruct(data[:size])
    assert CountingLayer.calls == 2, "reconstruct has its own trace, again one for all sizes"
    model.encode(data, training=True)
    assert CountingLayer.calls == 3, "another value of a keyword argument is another trace"
    model.encode(data.astype(np.float64))
    assert CountingLayer.calls == 4, "and so is another dtype"
    before = tracing_count(model)
    for size in (5, 6):
        model.encode(data[:size])
        model.decode(data[:size, :LATENT_SIZE])
        model.generate(data[:size, :LATENT_SIZE])
    assert tracing_count(model) == before + 2, "decode and generate traced once each; encode not again"


def test_tracing_each_method_and_shape_once_does_not_warn_of_retracing(data, monkeypatch):
    """TensorFlow warns of "excessive retracing" when 5 of a function's last calls traced, twice at most per
    function code: the compiled methods share one function's code, and each method, shape and keyword argument
    traces once, as it should. The test starts from a fresh count, whatever ran before it."""
    monkeypatch.setattr(polymorphic_function, "_frequent_tracing_detector_manager",
                        polymorphic_function._FrequentTracingDetectorManager())
    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        model = make_vae()
        latents = data[:, :LATENT_SIZE]
        model.encode(data), model.decode(latents), model.generate(latents), model.reconstruct(data)
        model.encode(data, training=False), model.encode(data.astype(np.float64)), model.decode(latents, training=True)
    finally:
        logger.removeHandler(handler)
    assert tracing_count(model) == 7
    assert not [message for message in messages if "retracing" in message]


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_compiled_calls_give_the_numbers_of_the_methods_as_written(data, likelihood):
    model = make_vae(likelihood)
    z = data[:, :LATENT_SIZE]
    compiled = model.encode(data), model.decode(z), model.generate(z), model.reconstruct(data)
    tf.config.run_functions_eagerly(True)
    try:
        written = model.encode(data), model.decode(z), model.generate(z), model.reconstruct(data)
    finally:
        tf.config.run_functions_eagerly(False)
    np.testing.assert_allclose(compiled[0].mean(), model.encoder(data)[:, :LATENT_SIZE], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(compiled[0].mode(), compiled[0].mean())
    for name in ("mean", "stddev"):
        np.testing.assert_allclose(getattr(compiled[0], name)(), getattr(written[0], name)(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(compiled[0].kl(), written[0].kl(), rtol=1e-5, atol=1e-7)
    for compiled_value, written_value in zip(compiled[1:], written[1:], strict=True):
        np.testing.assert_allclose(compiled_value, written_value, rtol=1e-5, atol=1e-6)


def test_compiled_calls_follow_the_weights_and_do_not_keep_the_model_alive(data):
    model = make_vae()
    before = model.reconstruct(data).numpy()
    for variable in model.decoder.trainable_variables:
        variable.assign(variable + 0.1)
    assert not np.allclose(model.reconstruct(data), before)
    reference = weakref.ref(model)
    del model
    gc.collect()
    assert reference() is None
