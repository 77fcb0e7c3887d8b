"""`encode_dataset` and `save_latents` on the data users give them: labelled, unbatched or empty datasets, a path
without `.npz`."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import VAE, networks
from tfvae.input_checks import InputError
from tfvae.latents import encode_dataset, save_latents

DATA_SIZE, LATENT_SIZE = 3, 2


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, 4),
               networks.gaussian_mlp_decoder(LATENT_SIZE, DATA_SIZE, 4), likelihood="gaussian")


@pytest.fixture
def x(rng):
    return rng.random((16, DATA_SIZE)).astype(np.float32)


def test_labelled_datasets_as_fit_takes_them_are_encoded_without_their_labels(model, x):
    expected = model.encoder(x).numpy()[:, :LATENT_SIZE]
    labels = np.arange(len(x))
    for dataset in (tf.data.Dataset.from_tensor_slices((x, labels)),
                    tf.data.Dataset.from_tensor_slices((x, labels, np.ones(len(x), np.float32)))):
        mean, _ = encode_dataset(model, dataset.batch(5))
        np.testing.assert_allclose(mean, expected, rtol=1e-5, atol=1e-5)


def test_an_unbatched_dataset_is_told_to_batch(model, x):
    with pytest.raises(InputError, match=r"unbatched .*shaped \(3,\)\); batch it first with data\.batch\(n\)\.$"):
        encode_dataset(model, tf.data.Dataset.from_tensor_slices(x))


def test_no_examples_is_one_clear_line(model):
    with pytest.raises(InputError, match="^encode_dataset: the data holds no examples; give at least one.$"):
        encode_dataset(model, np.zeros((0, DATA_SIZE), np.float32))
    with pytest.raises(InputError, match="holds no examples"):
        encode_dataset(model, tf.data.Dataset.from_tensor_slices(np.zeros((0, DATA_SIZE), np.float32)).batch(4))


def test_save_latents_returns_the_path_it_wrote(model, x, tmp_path):
    path = save_latents(model, x, str(tmp_path / "lat"))
    assert path == str(tmp_path / "lat.npz") and os.path.exists(path)
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["mean"], encode_dataset(model, x)[0])
