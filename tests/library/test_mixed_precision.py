"""Mixed precision: layers compute in 16 bits, the distribution math (clamping, KL, NLL) stays in float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import VAE, networks


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_layers_compute_in_16_bits_and_the_elbo_in_float32(policy, likelihood, rng):
    decoder = networks.bernoulli_mlp_decoder if likelihood == "bernoulli" else networks.gaussian_mlp_decoder
    keras.utils.set_random_seed(0)  # the same weights in every run
    model = VAE(networks.gaussian_mlp_encoder(16, 2, 8), decoder(2, 16, 8), likelihood=likelihood, seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    x = rng.random((32, 16)).astype(np.float32)
    assert model.encoder(x).dtype == tf.dtypes.as_dtype(policy.split("_")[1])
    reconstruction, posterior, _ = model.elbo_terms(x)
    assert reconstruction.dtype == tf.float32 and posterior.dtype == tf.float32 and posterior.kl().dtype == tf.float32
    history = model.fit(x, epochs=2, batch_size=8, verbose=0).history
    # The reported loss is the negative ELBO, unscaled by the loss-scale optimizer. (After the first step the two
    # logs differ in the fourth digit under mixed precision, in float32 in the seventh.) bfloat16 keeps 3 bits fewer
    # of the significand than float16 (8 against 11): 8 times its rounding, and its tolerance.
    tolerance = 4e-2 if "bfloat16" in policy else 5e-3
    np.testing.assert_allclose(history["loss"], -np.array(history["elbo"]), rtol=tolerance)
    np.testing.assert_allclose(-np.array(history["elbo"]), np.add(history["reconstruction"], history["kl"]),
                               rtol=tolerance)
    assert model.generate(np.zeros((1, 2), np.float32)).dtype == tf.float32


def test_extreme_parameters_do_not_overflow_under_mixed_precision(policy, rng):
    """Parameters near float16's limit (65504): exp(logvar) and squares would overflow in 16 bits, not in float32.

    The posterior's log-variance is pushed to -6e4 (clamped to -30, so z stays near its mean, which 16-bit decoder
    layers can represent); the decoder's log-variance to +6e4 (clamped to 20).
    """
    model = VAE(networks.gaussian_mlp_encoder(16, 2, 8), networks.gaussian_mlp_decoder(2, 16, 8),
                likelihood="gaussian", seed=0)
    model.compile(keras.optimizers.SGD(1e-9))
    encoder_head, decoder_head = model.encoder.get_layer("gaussian_head"), model.decoder.get_layer("gaussian_head")
    for head, logvar in ((encoder_head, -6e4), (decoder_head, 6e4)):
        head.mean_dense.bias.assign(np.full(head.units, 6e4, np.float32))
        head.logvar_dense.bias.assign(np.full(head.units, logvar, np.float32))
    x = rng.random((16, 16)).astype(np.float32)
    reconstruction, posterior, decoder_params = model.elbo_terms(x)
    assert np.isfinite(np.asarray(decoder_params, np.float32)).all()
    np.testing.assert_array_equal(posterior.logvar, np.full((16, 2), -30.0))
    np.testing.assert_array_equal(model.likelihood.named_parameters(decoder_params)["logvar"], np.full((16, 16), 20.0))
    assert np.isfinite(posterior.kl()).all() and np.isfinite(reconstruction).all()
    history = model.fit(x, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
