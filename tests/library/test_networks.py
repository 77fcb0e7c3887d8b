import numpy as np
import pytest

from tfvae import networks
from tfvae.layers import GaussianHead


def dense_weights(layer):
    return layer.kernel.numpy(), layer.bias.numpy()


def test_gaussian_mlp_encoder_is_appendix_c2(rng):
    encoder = networks.gaussian_mlp_encoder(data_size=12, latent_size=3, hidden_units=7)
    x = rng.random((4, 12)).astype(np.float32)
    w3, b3 = dense_weights(encoder.get_layer("hidden"))
    head = encoder.get_layer("gaussian_head")
    h = np.tanh(x @ w3 + b3)
    expected = np.concatenate([h @ w + b for w, b in map(dense_weights, (head.mean_dense, head.logvar_dense))], 1)
    np.testing.assert_allclose(encoder(x), expected, rtol=1e-5, atol=1e-5)


def test_bernoulli_mlp_decoder_is_appendix_c1(rng):
    decoder = networks.bernoulli_mlp_decoder(latent_size=3, data_size=12, hidden_units=7)
    z = rng.normal(size=(4, 3)).astype(np.float32)
    w1, b1 = dense_weights(decoder.get_layer("hidden"))
    w2, b2 = dense_weights(decoder.get_layer("logits"))
    y = 1 / (1 + np.exp(-(np.tanh(z @ w1 + b1) @ w2 + b2)))
    np.testing.assert_allclose(1 / (1 + np.exp(-decoder(z).numpy())), y, rtol=1e-5, atol=1e-6)


def test_gaussian_decoder_has_its_own_hidden_layer_and_heads():
    encoder = networks.gaussian_mlp_encoder(12, 3, 7)
    decoder = networks.gaussian_mlp_decoder(3, 12, 7, mean_activation="sigmoid")
    assert decoder.output_shape == (None, 24)
    assert isinstance(decoder.get_layer("gaussian_head"), GaussianHead)
    encoder_ids = {id(variable) for variable in encoder.weights}
    assert not encoder_ids & {id(variable) for variable in decoder.weights}
    assert len(decoder.trainable_weights) == 6  # W3, b3, W4, b4, W5, b5


def test_mlps_start_from_fan_in_uniform_weights_and_biases():
    decoder = networks.gaussian_mlp_decoder(latent_size=16, data_size=300, hidden_units=400)
    head = decoder.get_layer("gaussian_head")
    for layer, fan_in in ((decoder.get_layer("hidden"), 16), (head.mean_dense, 400), (head.logvar_dense, 400)):
        for values in dense_weights(layer):
            limit = 1 / np.sqrt(fan_in)
            assert np.abs(values).max() <= limit and np.abs(values).max() > 0.9 * limit
            np.testing.assert_allclose(values.std(), limit / np.sqrt(3), rtol=0.2)  # U(-a, a) has std a / sqrt(3)
    glorot = networks.bernoulli_mlp_decoder(16, 300, 400, initialization="glorot_uniform")
    assert not np.any(glorot.get_layer("logits").bias.numpy())
    with pytest.raises(ValueError, match="fan_in_uniform"):
        networks.gaussian_mlp_encoder(300, 16, 400, initialization="he")
