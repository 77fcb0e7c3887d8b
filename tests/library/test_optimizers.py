"""`FusedAdam` takes the steps Keras' Adam takes, with and without XLA, and saves as Adam does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import VAE, networks
from tfvae._keras.fused_adam import FusedAdam


def adam_steps(optimizer, gradients, jit_compile):
    """The variables after one `apply_gradients` per gradient, from [1, -2, 3] and [[0.5]] (in a tf.function)."""
    variables = [keras.Variable([1.0, -2.0, 3.0]), keras.Variable([[0.5]])]
    optimizer.build(variables)
    apply = tf.function(lambda grads: optimizer.apply_gradients(zip(grads, variables, strict=True)),
                        jit_compile=jit_compile)
    for grads in gradients:
        apply([tf.constant(g, tf.float32) for g in grads])
    return [np.array(variable) for variable in variables]


def closed_form_adam(gradients, lr=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Kingma & Ba's algorithm 1 with the bias corrections folded into the step size, as Keras documents it."""
    theta = [np.array([1.0, -2.0, 3.0]), np.array([[0.5]])]
    m = [np.zeros_like(t) for t in theta]
    v = [np.zeros_like(t) for t in theta]
    for t, grads in enumerate(gradients, start=1):
        alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        for i, g in enumerate(grads):
            m[i] += (1 - beta_1) * (np.array(g) - m[i])
            v[i] += (1 - beta_2) * (np.square(g) - v[i])
            theta[i] = theta[i] - alpha * m[i] / (np.sqrt(v[i]) + epsilon)
    return theta


GRADIENTS = [([0.1, -3.0, 0.0], [[2.0]]), ([1.0, 0.5, -0.2], [[-1.0]]), ([0.0, 0.0, 4.0], [[0.3]])]


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_fused_adam_takes_adams_steps(jit_compile):
    fused = adam_steps(FusedAdam(0.01), GRADIENTS, jit_compile)
    for actual, expected in zip(fused, closed_form_adam(GRADIENTS), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5)
    for actual, keras_adam in zip(fused, adam_steps(keras.optimizers.Adam(0.01), GRADIENTS, jit_compile), strict=True):
        np.testing.assert_allclose(actual, keras_adam, rtol=1e-6)


def test_amsgrad_takes_keras_update():
    fused = adam_steps(FusedAdam(0.01, amsgrad=True), GRADIENTS, jit_compile=False)
    expected = adam_steps(keras.optimizers.Adam(0.01, amsgrad=True), GRADIENTS, jit_compile=False)
    for actual, wanted in zip(fused, expected, strict=True):
        np.testing.assert_allclose(actual, wanted, rtol=1e-6)


def test_a_model_with_fused_adam_saves_and_resumes_as_adam(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 3)).astype(np.float32), rng.standard_normal((64, 1)).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(FusedAdam(0.05, beta_1=0.5), loss="mse")
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, FusedAdam) and loaded.optimizer.beta_1 == 0.5
    for saved, reloaded in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.array(saved), np.array(reloaded))
    model.fit(x, y, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(loaded.get_weights()[0], model.get_weights()[0], rtol=1e-6)


def test_vae_compile_defaults_to_fused_adam_and_keeps_it_in_keras_files(tmp_path):
    vae = VAE(networks.gaussian_mlp_encoder(6, 2, 4), networks.bernoulli_mlp_decoder(2, 6, 4), seed=0)
    vae.compile()
    assert isinstance(vae.optimizer, FusedAdam) and float(vae.optimizer.learning_rate) == pytest.approx(1e-3)
    vae.fit((np.random.default_rng(0).random((20, 6)) < 0.5).astype(np.float32), batch_size=10, verbose=0)
    vae.save(tmp_path / "vae.keras")
    assert isinstance(keras.models.load_model(tmp_path / "vae.keras").optimizer, FusedAdam)
