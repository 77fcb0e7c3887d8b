"""Arrays given to `fit`, `evaluate` and `predict` reach Keras as `tfvae.data.array_batches`, batched as Keras would."""

import functools
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from small_models import DATA_SIZE, SHAPE, binary_data, make_trainer, make_vae

from tfvae.data import array_batches


@pytest.fixture
def keras_calls(monkeypatch):
    """The arguments `keras.Model.fit`, `evaluate` and `predict` are called with, by name, as the calls run."""
    calls = {}
    for name in ("fit", "evaluate", "predict"):
        method = getattr(keras.Model, name)

        @functools.wraps(method)
        def record(model, *args, _name=name, _method=method, **kwargs):
            calls.setdefault(_name, []).append(inspect.signature(_method).bind(model, *args, **kwargs).arguments)
            return _method(model, *args, **kwargs)

        monkeypatch.setattr(keras.Model, name, record)
    return calls


def batches_of(dataset):
    """The batches of one pass over `dataset`, as NumPy structures."""
    return [tf.nest.map_structure(lambda tensor: tensor.numpy(), batch) for batch in dataset]


def test_array_batches_are_kerass_batches_without_the_autotuner():
    x = np.arange(70, dtype=np.float64).reshape(35, 2)
    y = np.arange(35, dtype=np.int32)
    dataset = array_batches((x, y, np.ones(35)), batch_size=16, shuffle=False)
    assert dataset.options().autotune.enabled is False and int(dataset.cardinality()) == 3
    batches = batches_of(dataset)
    assert [len(batch[0]) for batch in batches] == [16, 16, 3]
    assert [batch[0].dtype for batch in batches] == [np.float32] * 3  # floats become floatx, as Keras casts them
    assert batches[0][1].dtype == np.int32
    np.testing.assert_array_equal(np.concatenate([batch[0] for batch in batches]), x)
    np.testing.assert_array_equal(np.concatenate([batch[1] for batch in batches]), y)


def test_shuffled_array_batches_are_reshuffled_every_epoch():
    dataset = array_batches(np.arange(64), batch_size=8)
    assert int(dataset.cardinality()) == 8  # known, for Keras' progress bar and its epochs' end
    epochs = [np.concatenate(batches_of(dataset)) for _ in range(3)]
    for epoch in epochs:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(64))
    assert not np.array_equal(epochs[0], np.arange(64))
    assert not np.array_equal(epochs[0], epochs[1])


def test_fit_on_arrays_trains_on_batches_without_the_autotuner(rng, keras_calls):
    data = binary_data(rng, 100)
    model = make_vae("bernoulli")
    model.compile(steps_per_execution=1)
    batch_sizes = []
    model.fit(data, data, 30, 2, verbose=0,  # positional y, batch_size and epochs, as Keras takes them
              callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=lambda _, logs: batch_sizes.append(1))])
    given = keras_calls["fit"][0]
    assert isinstance(given["x"], tf.data.Dataset) and given["x"].options().autotune.enabled is False
    assert given["shuffle"] is False and given.get("batch_size") is None
    assert len(batch_sizes) == 2 * 4  # 30 + 30 + 30 + 10 examples per epoch
    x, y = next(iter(given["x"]))
    assert x.shape == (30, DATA_SIZE) and y.shape == (30, DATA_SIZE)


def test_fit_gives_keras_batches_reshuffled_at_every_pass_unless_told_not_to(rng, keras_calls):
    data = tf.constant(binary_data(rng, 64))  # tensors are batched as arrays are
    model = make_vae("bernoulli")
    model.compile()
    model.fit(data, epochs=1, batch_size=16, shuffle=False, verbose=0)
    model.fit(data, epochs=1, batch_size=16, verbose=0)
    in_order, shuffled = (call["x"] for call in keras_calls["fit"])
    np.testing.assert_array_equal(np.concatenate(batches_of(in_order)), data)
    first, second = (np.concatenate(batches_of(shuffled)) for _ in range(2))
    assert not np.array_equal(first, data) and not np.array_equal(first, second)
    assert sorted(map(bytes, first)) == sorted(map(bytes, data.numpy()))


class InterruptAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def fitted_vae(data, epochs, model=None, **kwargs):
    """`model` (a new Bernoulli VAE when None) fitted on the arrays `data`, shuffled in batches of 16."""
    if model is None:
        model = make_vae("bernoulli")
        model.compile()
    model.fit(data, epochs=epochs, batch_size=16, verbose=0, **kwargs)
    return model


def assert_same_state(model, expected):
    """The weights, the optimizer's variables and the noise state of `model` are those of `expected`, bit for bit."""
    def state(model):
        return [np.asarray(variable) for variable in
                (*model.weights, *model.optimizer.variables, model.seed_generator.state)]

    for variable, expected_variable in zip(state(model), state(expected), strict=True):
        np.testing.assert_array_equal(variable, expected_variable)


def test_a_fit_on_arrays_resumed_at_its_epoch_shuffles_as_the_uninterrupted_fit(rng, tmp_path):
    data = binary_data(rng, 96)
    uninterrupted = fitted_vae(data, epochs=4)
    # Resumed by `initial_epoch` in a fresh model loaded from the `.keras` file of epoch 2.
    fitted_vae(data, epochs=2).save(tmp_path / "epoch-2.keras")
    loaded = keras.models.load_model(tmp_path / "epoch-2.keras")
    assert_same_state(fitted_vae(data, epochs=4, model=loaded, initial_epoch=2), uninterrupted)
    # Resumed by Keras' `BackupAndRestore` after an interruption at the start of epoch 2.
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(KeyboardInterrupt):
        fitted_vae(data, epochs=4, callbacks=[backup, InterruptAtEpoch(2)])
    assert_same_state(fitted_vae(data, epochs=4, callbacks=[backup]), uninterrupted)


def test_validation_split_takes_the_last_examples_before_shuffling(rng, keras_calls):
    data = binary_data(rng, 50)
    model = make_vae("bernoulli")
    model.compile()
    history = model.fit(data, epochs=1, batch_size=8, validation_split=0.2, verbose=0).history
    assert set(history) >= {"val_elbo", "val_loss"}
    given = keras_calls["fit"][0]
    assert not given.get("validation_split"), "tfvae split the arrays itself"
    np.testing.assert_array_equal(np.concatenate(batches_of(given["validation_data"])), data[40:])
    assert sorted(map(bytes, np.concatenate(batches_of(given["x"])))) == sorted(map(bytes, data[:40]))
    with pytest.raises(ValueError, match="not sufficient to split"):
        model.fit(data[:1], epochs=1, validation_split=0.5, verbose=0)  # floor(1 x 0.5) = 0 examples to train on


def test_validation_arrays_are_batched_by_validation_batch_size(rng, keras_calls):
    data = binary_data(rng, 40)
    model = make_vae("bernoulli")
    model.compile()
    model.fit(data, data, epochs=1, batch_size=16, validation_data=(data, data), validation_batch_size=7, verbose=0)
    batches = batches_of(keras_calls["fit"][0]["validation_data"])
    assert [len(x) for x, _ in batches] == [7] * 5 + [5]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), data)


def test_evaluate_and_predict_on_arrays_keep_every_example_in_order(rng, keras_calls):
    data = binary_data(rng, 45)
    model = make_vae("bernoulli")
    model.compile()
    assert set(model.evaluate(data, batch_size=20, verbose=0, return_dict=True)) == {"elbo", "kl", "reconstruction",
                                                                                     "loss"}
    np.testing.assert_array_equal(np.concatenate(batches_of(keras_calls["evaluate"][0]["x"])), data)
    np.testing.assert_allclose(model.predict(data, batch_size=20, verbose=0), model.reconstruct(data), atol=1e-6)
    given = keras_calls["predict"][0]["x"]
    assert isinstance(given, tf.data.Dataset) and [len(batch) for batch in batches_of(given)] == [20, 20, 5]


def test_arrays_of_different_lengths_are_refused(rng):
    data = binary_data(rng, 20)
    model = make_vae("bernoulli")
    model.compile()
    with pytest.raises(ValueError, match="cardinality.*\\[20, 19\\]"):
        model.fit(data, data[:19], epochs=1, verbose=0)


def test_validation_data_keras_batches_keeps_the_batch_size(rng, keras_calls):
    data = binary_data(rng, 40)
    model = make_vae("bernoulli")
    model.compile(jit_compile=False, run_eagerly=True, steps_per_execution=1)  # test steps from Python, one a batch
    validation_batch_sizes = []
    test_step = model.test_step
    model.test_step = lambda batch: validation_batch_sizes.append(len(batch)) or test_step(batch)
    model.fit(data, epochs=1, batch_size=10, validation_data=data, validation_steps=2, verbose=0)
    assert keras_calls["fit"][0]["validation_data"] is data, "Keras batches validation data given with steps"
    assert validation_batch_sizes == [10, 10]


def test_fits_own_validation_is_not_batched_again(rng, keras_calls):
    data = binary_data(rng, 40)
    model = make_vae("bernoulli")
    model.compile()
    # Keras splits and batches these arrays itself (`steps_per_epoch`), and passes its split to every validation.
    model.fit(data, epochs=2, batch_size=8, steps_per_epoch=2, validation_split=0.25, verbose=0)
    validations = keras_calls["evaluate"]
    assert len(validations) == 2
    assert all(isinstance(call["x"], np.ndarray) for call in validations), "arrays Keras ignores left as they were"


def test_the_autoencoder_kl_trainer_takes_arrays_as_batches(rng, keras_calls):
    trainer = make_trainer()
    images = rng.random((6, *SHAPE))  # float64, cast to float32
    history = trainer.fit(images, epochs=1, batch_size=4, verbose=0).history
    given = keras_calls["fit"][0]["x"]
    assert isinstance(given, tf.data.Dataset) and given.element_spec.dtype == tf.float32
    assert np.isfinite(history["loss"]).all()


@pytest.mark.parametrize("arguments", [
    {"steps_per_epoch": 2, "batch_size": 8},
    {"shuffle": "batch", "batch_size": 8},
], ids=["steps_per_epoch", "shuffle-batch"])
def test_what_only_keras_batches_goes_to_keras_as_given(rng, keras_calls, arguments):
    data = binary_data(rng, 24)
    model = make_vae("bernoulli")
    model.compile()
    model.fit(data, epochs=1, verbose=0, **arguments)
    given = keras_calls["fit"][0]
    assert given["x"] is data and given["batch_size"] == 8
