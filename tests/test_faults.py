import csv

import keras
import numpy as np
import pytest

from tfvae import callbacks, training


def epochs_logged(run_dir):
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


class ExplodeAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.explode_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.explode_epoch:
            self.model.optimizer.learning_rate.assign(1e35)


class FirstEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if not hasattr(self, "first"):
            self.first = epoch


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_state(tmp_path, rng):
    config = training.TrainConfig(output_dir=str(tmp_path), validation_split=0.2, jit_compile="off")
    images = rng.random((200, 28, 20, 1)).astype(np.float32)
    inputs = {"train": images[:160].reshape(160, -1), "validation": images[160:].reshape(40, -1)}
    model = training.build_model(config, images.shape[1:])
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    fit_callbacks = training.make_callbacks(config, inputs, images.shape[1:])
    with pytest.raises(callbacks.NonFiniteLossError, match="epoch 3.*learning rate"):
        model.fit(inputs["train"], validation_data=inputs["validation"], epochs=6, batch_size=20, verbose=0,
                  callbacks=[*fit_callbacks, ExplodeAtEpoch(2)])
    assert epochs_logged(tmp_path) == [0, 1], "the failed epoch is not logged as if it had finished"
    best = keras.models.load_model(tmp_path / "best.keras", safe_mode=True)
    assert all(np.isfinite(weight).all() for weight in best.get_weights())

    resumed = training.build_model(config, images.shape[1:])
    resumed.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    first = FirstEpoch()
    resumed.fit(inputs["train"], validation_data=inputs["validation"], epochs=3, batch_size=20, verbose=0,
                callbacks=[*training.make_callbacks(config, inputs, images.shape[1:]), first])
    assert first.first == 2, "resuming starts again at the epoch that failed"
    assert all(np.isfinite(weight).all() for weight in resumed.get_weights())
