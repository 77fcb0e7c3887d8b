"""What a Keras user does with a VAE and its trainer: each habit either works or is refused in one clear line."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from small_models import DATA_SIZE, SHAPE, binary_data, continuous_data, make_vae

from tfvae import InputError
from tfvae.autoencoder_kl import AutoencoderKL, AutoencoderKLTrainer


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_mixed_precision_metrics_stay_finite_over_many_examples_and_match_float32(rng, mixed_precision):
    data = continuous_data(rng, 1500)
    mixed = make_vae("gaussian", seed=1)
    mixed.compile(keras.optimizers.SGD(0.0), jit_compile=False)
    keras.mixed_precision.set_global_policy("float32")
    full = make_vae("gaussian", seed=1)
    full.compile(keras.optimizers.SGD(0.0), jit_compile=False)
    full.set_weights(mixed.get_weights())
    mixed_result = mixed.evaluate(data, batch_size=250, verbose=0, return_dict=True)
    full_result = full.evaluate(data, batch_size=250, verbose=0, return_dict=True)
    assert abs(full_result["elbo"]) * len(data) > 65504, "the summed ELBO overflows float16: the test needs that"
    for name in ("elbo", "kl", "reconstruction"):
        assert np.isfinite(mixed_result[name]), name
        np.testing.assert_allclose(mixed_result[name], full_result[name], rtol=2e-2, err_msg=name)


def test_per_example_weights_are_refused_not_ignored(rng):
    data = binary_data(rng, 64)
    model = make_vae("bernoulli")
    model.compile()
    with pytest.raises(InputError, match="sample_weight given, but tfvae's models weight every example alike"):
        model.fit(data, np.zeros(64), sample_weight=np.zeros(64), verbose=0)
    with pytest.raises(InputError, match="class_weight given"):
        model.fit(data, np.zeros(64), class_weight={0: 1.0}, verbose=0)
    with pytest.raises(InputError, match="sample_weight given"):
        model.evaluate(data, sample_weight=np.ones(64), verbose=0)
    weighted = tf.data.Dataset.from_tensor_slices((data, data, np.zeros(64, np.float32))).batch(16)
    with pytest.raises(InputError, match=r"yields \(x, y, sample_weight\)"):
        model.fit(weighted, verbose=0)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_eight_bit_pixels_are_caught_for_every_likelihood_and_entry_point(rng, likelihood):
    pixels = (rng.random((32, DATA_SIZE)) * 255).round()
    model = make_vae(likelihood)
    model.compile()
    for data in (pixels.astype(np.uint8), pixels.astype(np.float32)):
        for method in (model.fit, model.evaluate, model.predict):
            with pytest.raises(InputError, match="Divide them by 255"):
                method(data, verbose=0)
    with pytest.raises(InputError, match="uint8"):
        model.encode(pixels.astype(np.uint8))
    dataset = tf.data.Dataset.from_tensor_slices(pixels.astype(np.float32)).batch(8)
    with pytest.raises(InputError, match=r"the first batch of x holds whole numbers in \[0, 25\d\]"):
        model.fit(dataset, verbose=0)


def test_one_example_without_its_batch_axis_is_named_as_such(rng):
    model = make_vae("bernoulli")
    model.compile()
    with pytest.raises(InputError, match=r"has shape \(64,\): one example without a batch axis. Give a batch"):
        model.predict(binary_data(rng, 1)[0], verbose=0)


def test_generate_takes_a_number_of_samples(rng):
    model = make_vae("bernoulli")
    samples = model.generate(3)
    assert samples.shape == (3, DATA_SIZE) and np.all((0 <= samples) & (samples <= 1))
    assert not np.allclose(samples, model.generate(3)), "each call draws new latents"
    z = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(model.generate(z), model.generate(z))


def test_the_trainer_names_image_sides_its_autoencoder_cannot_halve(rng):
    autoencoder = AutoencoderKL(block_out_channels=(4, 4), norm_num_groups=2, latent_channels=2,
                                mid_block_add_attention=False, seed=0)
    trainer = AutoencoderKLTrainer(autoencoder)
    trainer.build((None, 16, 16, 3))
    trainer.compile()
    for size in ((17, 16), (15, 15)):
        images = rng.random((4, *size, SHAPE[-1])).astype(np.float32)
        with pytest.raises(InputError, match=f"{size[0]}x{size[1]} pixels.*divisible by 2"):
            trainer.fit(images, epochs=1, verbose=0)
