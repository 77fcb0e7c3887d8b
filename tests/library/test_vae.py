import keras
import numpy as np
import pytest
import tensorflow as tf
from small_models import DATA_SIZE, HIDDEN, LATENT_SIZE, binary_data, continuous_data, make_vae

from tfvae import VAE, DiagonalGaussian, networks
from tfvae.serving import export


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_improves_on_held_out_data(rng, likelihood, jit_compile):
    data = binary_data(rng) if likelihood == "bernoulli" else continuous_data(rng)
    train, test = data[:768], data[768:]
    model = make_vae(likelihood)
    model.compile(keras.optimizers.Adam(3e-3), jit_compile=jit_compile)
    before = model.evaluate(test, batch_size=128, verbose=0, return_dict=True)
    history = model.fit(train, epochs=6, batch_size=64, verbose=0)
    after = model.evaluate(test, batch_size=128, verbose=0, return_dict=True)
    assert model.jit_compile is jit_compile
    assert set(history.history) == {"elbo", "kl", "reconstruction", "loss"}
    assert after["elbo"] > before["elbo"] + 0.1 * abs(before["elbo"]), (before, after)
    assert history.history["elbo"][-1] > history.history["elbo"][0]


def test_xla_and_graph_mode_give_the_same_loss_trajectory(rng):
    data = binary_data(rng, 512)
    histories = {}
    for jit_compile in (False, True):
        model = make_vae("bernoulli", seed=7)
        model.compile(keras.optimizers.Adam(1e-2), jit_compile=jit_compile)
        histories[jit_compile] = model.fit(data, epochs=4, batch_size=64, verbose=0, shuffle=False).history["loss"]
    np.testing.assert_allclose(histories[True], histories[False], rtol=1e-4)
    assert len(set(np.round(histories[True], 3))) == 4, "the loss must move for the comparison to mean anything"


def test_default_compile_uses_xla_only_with_an_accelerator():
    model = make_vae("bernoulli")
    model.compile()
    assert model.jit_compile is bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def test_loss_is_reconstruction_plus_beta_times_kl(rng):
    data = binary_data(rng, 256)
    model = make_vae("bernoulli", beta=2.5)
    model.compile(keras.optimizers.Adam(1e-3))
    result = model.evaluate(data, batch_size=64, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["loss"], result["reconstruction"] + 2.5 * result["kl"], rtol=1e-5)
    np.testing.assert_allclose(result["elbo"], -(result["reconstruction"] + result["kl"]), rtol=1e-5)
    seed_state = model.seed_generator.state.numpy()
    model(data[:32])
    kl_loss, reconstruction_loss = (loss.numpy() for loss in model.losses)
    model.seed_generator.state.assign(seed_state)  # the same noise again
    reconstruction, posterior, _ = model.elbo_terms(data[:32])
    np.testing.assert_allclose(kl_loss, 2.5 * np.mean(posterior.kl()), rtol=1e-6)
    np.testing.assert_allclose(reconstruction_loss, np.mean(reconstruction), rtol=1e-6)


def test_fit_evaluate_predict_on_tf_data(rng):
    data = continuous_data(rng, 256)
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(32)
    model = make_vae("gaussian")
    model.compile(keras.optimizers.Adam(1e-3))
    model.fit(dataset, epochs=1, verbose=0)
    assert set(model.evaluate(dataset, verbose=0, return_dict=True)) == {"elbo", "kl", "reconstruction", "loss"}
    predictions = model.predict(dataset, verbose=0)
    assert predictions.shape == data.shape
    np.testing.assert_allclose(predictions[:8], model.reconstruct(data[:8]), rtol=1e-5, atol=1e-6)


def test_encode_gives_the_posterior(rng):
    model = make_vae("bernoulli")
    x = binary_data(rng, 8)
    posterior = model.encode(x)
    assert isinstance(posterior, DiagonalGaussian)
    np.testing.assert_allclose(posterior.mean(), model.encoder(x)[:, :LATENT_SIZE], rtol=1e-5, atol=1e-6)


def test_keras_file_round_trip_reproduces_the_model(rng, tmp_path):
    data = continuous_data(rng, 256)
    model = make_vae("gaussian", beta=0.5)
    model.compile(keras.optimizers.Adam(1e-3))
    model.fit(data, epochs=1, batch_size=64, verbose=0)
    path = str(tmp_path / "vae.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, VAE) and loaded.likelihood.name == "gaussian"
    np.testing.assert_array_equal(loaded.encoder(data[:16]), model.encoder(data[:16]))
    np.testing.assert_array_equal(loaded.reconstruct(data[:16]), model.reconstruct(data[:16]))
    assert float(loaded.beta) == 0.5
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 4
    np.testing.assert_array_equal(loaded.seed_generator.state, model.seed_generator.state)
    loaded.fit(data, epochs=1, batch_size=64, verbose=0)


def test_any_keras_network_can_be_the_encoder_and_decoder(rng):
    """A convolutional pair with spatial latents [4, 4, 2] trains through the same class."""
    images = (rng.random((64, 8, 8, 1)) < 0.3).astype(np.float32)
    encoder = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
         keras.layers.Conv2D(4, 1)]
    )
    decoder = keras.Sequential(
        [keras.Input((4, 4, 2)), keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu"),
         keras.layers.Conv2D(1, 1)]
    )
    model = VAE(encoder, decoder, likelihood="bernoulli", seed=1)
    model.compile(keras.optimizers.Adam(1e-3))
    history = model.fit(images, epochs=2, batch_size=16, verbose=0).history
    # With beta 1 and equal batches the loss is the negative ELBO: reconstruction plus KL, both positive here.
    np.testing.assert_allclose(history["loss"], -np.array(history["elbo"]), rtol=1e-5)
    np.testing.assert_allclose(history["loss"], np.add(history["reconstruction"], history["kl"]), rtol=1e-5)
    assert min(history["reconstruction"]) > 0 and min(history["kl"]) > 0
    assert model.encode(images[:2]).kl().shape == (2,)
    assert model.predict(images[:2], verbose=0).shape == (2, 8, 8, 1)


def evaluate_one_batch(model, data):
    """Evaluates on one batch and returns the result with the same pass's terms (same noise, via the seed state)."""
    seed_state = model.seed_generator.state.numpy()
    result = model.evaluate(data, batch_size=len(data), verbose=0, return_dict=True)
    model.seed_generator.state.assign(seed_state)
    reconstruction, posterior, _ = model.elbo_terms(data)
    return result, reconstruction.numpy(), posterior.kl_terms().numpy()


def test_free_bits_floor_each_dimensions_batch_mean_kl(rng):
    data = binary_data(rng, 128)
    keras.utils.set_random_seed(2)
    # Glorot's larger weights give initial KLs per dimension on both sides of the floor.
    model = VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, HIDDEN, "glorot_uniform"),
                networks.bernoulli_mlp_decoder(LATENT_SIZE, DATA_SIZE, HIDDEN), free_bits=0.3, seed=2)
    model.compile(keras.optimizers.Adam(1e-3))
    result, reconstruction, kl_terms = evaluate_one_batch(model, data)
    per_dimension = kl_terms.mean(axis=0)
    assert per_dimension.min() < 0.3 < per_dimension.max(), "the floor must bind for some dimensions only"
    expected = reconstruction.mean() + np.maximum(0.3, per_dimension).sum()
    np.testing.assert_allclose(result["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(result["kl"], kl_terms.sum(axis=1).mean(), rtol=1e-5)  # the metric keeps the true KL


def test_kl_warmup_ramps_the_weight_with_the_optimizer_steps(rng):
    data = binary_data(rng, 64)
    model = VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, HIDDEN),
                networks.bernoulli_mlp_decoder(LATENT_SIZE, DATA_SIZE, HIDDEN), beta=2.0, kl_warmup_steps=10, seed=2)
    model.compile(keras.optimizers.SGD(0.0))  # the steps count, the weights stay
    for steps, weight in ((0, 0.0), (4, 0.8), (8, 1.6), (12, 2.0)):
        remaining = steps - int(model.optimizer.iterations)
        if remaining:
            model.fit(data, epochs=1, batch_size=16, steps_per_epoch=remaining, verbose=0)
        assert int(model.optimizer.iterations) == steps
        result, reconstruction, kl_terms = evaluate_one_batch(model, data)
        expected = reconstruction.mean() + weight * kl_terms.sum(axis=1).mean()
        np.testing.assert_allclose(result["loss"], expected, rtol=1e-5, err_msg=f"step {steps}")


def test_beta_can_be_changed_by_a_callback_during_a_compiled_fit(rng):
    data = binary_data(rng, 64)

    class HalveBeta(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.beta.assign(0.5 ** epoch)

    model = make_vae("bernoulli")
    model.compile(keras.optimizers.SGD(0.0), jit_compile=True)
    history = model.fit(data, epochs=3, batch_size=64, verbose=0, callbacks=[HalveBeta()]).history
    for epoch in range(3):
        expected = history["reconstruction"][epoch] + 0.5**epoch * history["kl"][epoch]
        np.testing.assert_allclose(history["loss"][epoch], expected, rtol=1e-5)


def test_a_fully_convolutional_vae_builds_and_trains_for_any_image_size(rng):
    """An encoder on keras.Input((None, None, 1)) builds from shapes alone; export asks for a fixed size."""
    encoder = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(4, 3, strides=2, padding="same")])
    decoder = keras.Sequential(
        [keras.Input((None, None, 2)), keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same")]
    )
    model = VAE(encoder, decoder, likelihood="bernoulli", seed=1)
    assert model.built and model.latent_shape() == (None, None, 2)
    model.compile(keras.optimizers.Adam(1e-3))
    small, large = ((rng.random((8, *size, 1)) < 0.3).astype(np.float32) for size in ((8, 8), (12, 16)))
    model.fit(small, epochs=1, batch_size=4, verbose=0)
    assert model.reconstruct(large).shape == (8, 12, 16, 1)
    assert model.encode(large).kl().shape == (8,)
    with pytest.raises(ValueError, match=r"\(None, None, 1\).*fixed shape"):
        export.build_export_archive(model)
    wrong = keras.Sequential([keras.Input((None, None, 2)), keras.layers.Conv2DTranspose(3, 3, strides=2)])
    with pytest.raises(ValueError, match="needs \\(None, None, 1\\)"):
        VAE(encoder, wrong)


def test_weight_decay_adds_half_its_weight_times_the_squared_norm_of_the_parameters(rng):
    """`-log p(theta)` for a N(0, I) prior up to a constant: 0.5 * wd * ||theta||^2, and its gradient wd * theta."""
    data = binary_data(rng, 32)
    model = make_vae("bernoulli")
    plain = VAE(model.encoder, model.decoder, seed=0)
    decayed = VAE(model.encoder, model.decoder, weight_decay=0.01, seed=0)
    weights = [variable.numpy() for variable in decayed.trainable_variables]
    assert len(weights) == 10, "the encoder's and the decoder's kernels and biases, nothing else"
    expected = 0.5 * 0.01 * sum(np.sum(np.square(weight, dtype=np.float64)) for weight in weights)
    assert expected > 0.01
    with tf.GradientTape(persistent=True) as tape:
        decayed(data)
        plain(data)
        decay = tf.add_n(decayed.losses) - tf.add_n(plain.losses)
    np.testing.assert_allclose(float(decayed.losses[-1]), expected, rtol=1e-5)
    np.testing.assert_allclose(float(decay), expected, rtol=1e-4)
    gradients = tape.gradient(decayed.losses[-1], decayed.trainable_variables)
    for gradient, weight in zip(gradients, weights, strict=True):
        np.testing.assert_allclose(gradient, 0.01 * weight, rtol=1e-5, atol=1e-9)


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_keras_file_round_trip_keeps_every_setting_and_the_dtype_policy(rng, tmp_path, mixed_float16):
    settings = {"beta": 0.5, "kl_warmup_steps": 7, "free_bits": 0.25, "weight_decay": 0.003,
                "logvar_range": [-4.0, 3.0], "seed": 5}
    model = VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, HIDDEN),
                networks.gaussian_mlp_decoder(LATENT_SIZE, DATA_SIZE, HIDDEN), likelihood="gaussian", **settings)
    model.compile(keras.optimizers.Adam(1e-3))
    data = continuous_data(rng, 64)
    model.fit(data, epochs=1, batch_size=32, verbose=0)
    model.save(tmp_path / "vae.keras")
    keras.mixed_precision.set_global_policy("float32")
    loaded = keras.models.load_model(tmp_path / "vae.keras", safe_mode=True)
    from_config = VAE.from_config(model.get_config())
    for copy in (loaded, from_config):
        assert copy.dtype_policy.name == "mixed_float16" and copy.posterior.dtype_policy.name == "mixed_float16"
        assert copy.encoder(data[:2]).dtype == tf.float16
        config = copy.get_config()
        assert {name: config[name] for name in settings} == settings
    assert loaded.kl_warmup_steps == 7 and loaded.free_bits == 0.25 and loaded.weight_decay == 0.003
    assert tuple(loaded.posterior.logvar_range) == (-4.0, 3.0)
    seed_state = model.seed_generator.state.numpy()
    for copy in (model, loaded):  # the same added losses (warm-up weight, free bits, decay) from the same state
        copy.seed_generator.state.assign(seed_state)
        copy(data)
    np.testing.assert_allclose([float(loss) for loss in loaded.losses], [float(loss) for loss in model.losses],
                               rtol=1e-6)
    steps = int(loaded.optimizer.iterations)
    assert steps == int(model.optimizer.iterations) and 0 < steps < 7
    assert float(loaded.kl_weight()) == pytest.approx(0.5 * steps / 7)
