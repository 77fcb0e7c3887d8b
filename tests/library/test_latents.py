"""`tfvae.latents`: a data set through the encoder once."""

import keras
import numpy as np
import tensorflow as tf

from tfvae import VAE, networks
from tfvae.latents import encode_dataset, save_latents

DATA_SIZE, LATENT_SIZE, HIDDEN = 12, 3, 8


def make_vae():
    keras.utils.set_random_seed(0)
    return VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, HIDDEN),
               networks.gaussian_mlp_decoder(LATENT_SIZE, DATA_SIZE, HIDDEN), likelihood="gaussian",
               logvar_range=(-1.0, 1.0))


def test_every_example_gets_its_own_posterior_through_padded_batches(rng, tmp_path):
    model = make_vae()
    for variable in model.encoder.trainable_variables:  # large log-variances, so that the clamp shows
        variable.assign(variable * 20)
    x = rng.random((23, DATA_SIZE)).astype(np.float32)
    params = model.encoder(x).numpy()
    expected_mean, expected_logvar = params[:, :LATENT_SIZE], np.clip(params[:, LATENT_SIZE:], -1.0, 1.0)
    assert (np.abs(params[:, LATENT_SIZE:]) > 1).any()

    mean, logvar = encode_dataset(model, x, batch_size=10)  # 10, 10 and 3 padded to 10; XLA sums in its own order
    assert mean.shape == logvar.shape == (23, LATENT_SIZE) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(logvar, expected_logvar, rtol=1e-5, atol=1e-4)

    batches = tf.data.Dataset.from_tensor_slices(x).batch(8)
    from_dataset = encode_dataset(model, batches)
    np.testing.assert_allclose(from_dataset[0], expected_mean, rtol=1e-5, atol=1e-4)

    path = save_latents(model, x, tmp_path / "latents.npz", batch_size=10)
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["mean"], mean)
        np.testing.assert_array_equal(saved["logvar"], logvar)
