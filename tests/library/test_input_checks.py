"""Each kind of bad input fails before any training step, with an error that names the problem and the fix."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from small_models import SHAPE, make_trainer

from tfvae import VAE, networks
from tfvae.input_checks import InputError
from tfvae.layers import GaussianHead

TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")


def mlp_vae(likelihood="bernoulli", size=16):
    decoder = (networks.bernoulli_mlp_decoder if likelihood == "bernoulli" else networks.gaussian_mlp_decoder)
    model = VAE(networks.gaussian_mlp_encoder(size, 2, 8), decoder(2, size, 8), likelihood=likelihood, seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    return model


def good_data(rng, count=32, size=16):
    return rng.random((count, size)).astype(np.float32)


BAD_INPUTS = {
    "unflattened images": (lambda rng: good_data(rng).reshape(32, 4, 4), "shape \\(4, 4\\).*Flatten"),
    "wrong data size": (lambda rng: good_data(rng, size=10), "shape \\(10,\\).*takes \\(16,\\)"),
    "strings": (lambda rng: np.array([["a"] * 16] * 4), "dtype <U1.*float32"),
    "booleans": (lambda rng: good_data(rng) > 0.5, "dtype bool"),
    "NaN": (lambda rng: np.where(np.eye(32, 16) > 0, np.nan, good_data(rng)), "16 NaN or infinite.*\\(0, 0\\)"),
    "infinity": (lambda rng: np.full((8, 16), np.inf, np.float32), "NaN or infinite"),
    "8-bit pixels": (lambda rng: (good_data(rng) * 255).astype(np.uint8),
                     r"is uint8 \(8-bit pixels\? Divide them by 255\)"),
    "negative pixels": (lambda rng: good_data(rng) - 0.5, "Bernoulli decoder models pixels in \\[0, 1\\]"),
    "no examples": (lambda rng: np.zeros((0, 16), np.float32), "no examples"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_numpy_input_fails_before_training(rng, name):
    make, message = BAD_INPUTS[name]
    model = mlp_vae()
    with pytest.raises(InputError, match=message):
        model.fit(make(rng), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 0


def test_bad_datasets_fail_before_training(rng):
    model = mlp_vae()
    wrong_shape = tf.data.Dataset.from_tensor_slices(good_data(rng).reshape(32, 4, 4)).batch(8)
    with pytest.raises(InputError, match="Flatten"):
        model.fit(wrong_shape, epochs=1, verbose=0)
    out_of_range = tf.data.Dataset.from_tensor_slices(good_data(rng) * 3).batch(8)
    with pytest.raises(InputError, match="first batch of x"):
        model.fit(out_of_range, epochs=1, verbose=0)
    empty = tf.data.Dataset.from_tensor_slices(good_data(rng)).take(0).batch(8)
    with pytest.raises(InputError, match="empty dataset"):
        model.fit(empty, epochs=1, verbose=0)
    with pytest.raises(InputError, match="validation_data.*NaN"):
        model.fit(good_data(rng), validation_data=np.full((4, 16), np.nan), epochs=1, verbose=0)
    with pytest.raises(InputError, match="validation_data.*NaN"):  # by position, as a list (x, y), as Keras takes it
        model.fit(good_data(rng), None, 8, 1, 0, None, 0.0, [np.full((4, 16), np.nan), None])
    with pytest.raises(InputError, match="8-bit pixels\\? Divide them by 255"):
        model.evaluate(good_data(rng) * 255, verbose=0)
    assert int(model.optimizer.iterations) == 0


class Batches(keras.utils.PyDataset):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def test_generators_and_py_datasets_train_and_a_bad_py_dataset_fails_first(rng):
    model = mlp_vae()

    def batches():
        while True:
            yield (good_data(rng, count=8),)  # Keras takes tuples from generators

    model.fit(batches(), steps_per_epoch=3, epochs=1, verbose=0)  # a generator is Keras' to read: not checked
    assert int(model.optimizer.iterations) == 3
    model.fit(Batches([good_data(rng, count=8)] * 2), validation_data=Batches([[good_data(rng, count=8)]]),
              epochs=1, verbose=0)  # a batch as a list is (x,) too
    assert int(model.optimizer.iterations) == 5
    with pytest.raises(InputError, match=r"^the first batch of x has examples of shape \(4, 4\)"):
        model.fit(Batches([good_data(rng, count=8).reshape(8, 4, 4)]), epochs=1, verbose=0)
    with pytest.raises(InputError, match=r"^the first batch of validation_data has values in \[.*\], but a Bern"):
        model.fit(good_data(rng), validation_data=Batches([(3 * good_data(rng, count=8),)]), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 5


def test_values_up_to_a_few_units_get_no_8_bit_hint(rng):
    with pytest.raises(InputError, match=r"values in \[0, 3\], but a Bernoulli") as error:
        mlp_vae().fit(np.round(3 * good_data(rng)), epochs=1, verbose=0)
    assert "8-bit" not in str(error.value)


def test_fit_checks_its_data_once_not_at_every_validation(rng, monkeypatch):
    checked = []
    check_data = VAE.check_data
    monkeypatch.setattr(VAE, "check_data", lambda model, data, role="x": checked.append(role) or check_data(
        model, data, role))
    model = mlp_vae()
    model.fit(good_data(rng), validation_data=good_data(rng, count=8), epochs=3, verbose=0)
    assert checked == ["x", "validation_data"]
    model.evaluate(good_data(rng), verbose=0)
    assert checked[2:] == ["x"]


BAD_IMAGES = {
    "flat images": (lambda images: images.reshape(len(images), -1), r"shape \(768,\).*takes \(None, None, 3\)"),
    "wrong channels": (lambda images: images[..., :1], r"shape \(16, 16, 1\)"),
    "NaN": (lambda images: np.full_like(images, np.nan), "3072 NaN or infinite"),
    "8-bit pixels": (lambda images: (images * 255).astype(np.uint8),
                     r"is uint8 \(8-bit pixels\? Divide them by 255\)"),
    "no images": (lambda images: images[:0], "no examples"),
}


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_bad_images_fail_before_the_autoencoder_kl_trainer_trains(rng, name):
    make, message = BAD_IMAGES[name]
    trainer = make_trainer()
    images = rng.random((4, *SHAPE)).astype(np.float32)
    with pytest.raises(InputError, match=f"^x .*{message}"):
        trainer.fit(make(images), epochs=1, verbose=0)
    with pytest.raises(InputError, match=f"^validation_data .*{message}"):
        trainer.fit(images, validation_data=make(images), epochs=1, verbose=0)
    with pytest.raises(InputError, match=f"^x .*{message}"):
        trainer.evaluate(make(images), verbose=0)
    assert int(trainer.optimizer.iterations) == 0


def test_a_gaussian_decoder_accepts_data_outside_the_unit_interval(rng):
    model = mlp_vae("gaussian")
    history = model.fit(rng.normal(size=(32, 16)).astype(np.float32) * 5, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_a_decoder_that_does_not_fit_the_likelihood_is_refused():
    with pytest.raises(ValueError, match="gaussian likelihood.*needs \\(32,\\).*gaussian_mlp_decoder"):
        VAE(networks.gaussian_mlp_encoder(16, 2, 8), networks.bernoulli_mlp_decoder(2, 16, 8), likelihood="gaussian")
    with pytest.raises(ValueError, match="emits \\(10,\\).*needs \\(16,\\)"):
        VAE(networks.gaussian_mlp_encoder(16, 2, 8), networks.bernoulli_mlp_decoder(2, 10, 8))


def test_a_latent_size_of_zero_is_refused(tmp_path):
    with pytest.raises(ValueError, match="units >= 1"):
        GaussianHead(0)
    result = run_command_failing([TFVAE, "train", "--latent-size", "0", "--output-dir", str(tmp_path)])
    assert "latent_size must be at least 1" in result


def run_command_failing(command):
    """Runs a command that must fail cleanly: exit code 1 and no traceback; returns its stderr."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stderr


def test_the_cli_reports_bad_data_files_without_a_traceback(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05" * 3 + b"\x01")
    message = run_command_failing([TFVAE, "train", "--dataset", str(tmp_path), "--output-dir", str(tmp_path / "r")])
    assert "truncated or corrupt" in message
    message = run_command_failing([TFVAE, "train", "--dataset", "mnist", "--data-dir", str(tmp_path / "tfds"),
                                   "--output-dir", str(tmp_path / "r")])
    assert "downloads are off" in message and "IDX" in message
    images = np.full((20, 4, 4), 255, np.float32)
    np.save(tmp_path / "images.npy", images)
    message = run_command_failing([TFVAE, "train", "--dataset", str(tmp_path / "images.npy"), "--output-dir",
                                   str(tmp_path / "r")])
    assert "images.npy: pixel values span [255, 255]" in message and "uint8 (0-255)" in message
