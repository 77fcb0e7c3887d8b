import csv

import keras
import numpy as np
import pytest
from helpers import run_python

from tfvae.run import callbacks, training


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
    config = training.make_config(output_dir=str(tmp_path), validation_split=0.2, jit_compile="off")
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


# Ctrl-C that arrives while Python runs a destructor (here one made for it; in a run, a finished tf.data iterator's):
# Python prints the KeyboardInterrupt and drops it. Each fit counts the epochs it ran, with and without the guard.
SWALLOWED_INTERRUPT = """
import os, signal, time
import keras, numpy as np
from tfvae import VAE, networks
from tfvae.run import callbacks

class InterruptedInDestructor:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)  # the handler runs here, inside __del__

class InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            InterruptedInDestructor()

def epochs_run(extra_callbacks):
    model = VAE(networks.gaussian_mlp_encoder(4, 2, 4), networks.bernoulli_mlp_decoder(2, 4, 4), seed=0)
    model.compile(jit_compile=False)
    history = keras.callbacks.History()
    try:
        model.fit(np.full((8, 4), 0.5, np.float32), epochs=5, batch_size=4, verbose=0,
                  callbacks=[InterruptAfterFirstEpoch(), history, *extra_callbacks])
    except KeyboardInterrupt:
        return "interrupted after", len(history.epoch)
    return "finished", len(history.epoch)

print(*epochs_run([]))
guard = callbacks.RaiseOnInterrupt()
with guard:
    print(*epochs_run([guard]))
"""


def test_ctrl_c_stops_training_even_when_python_drops_its_keyboard_interrupt():
    without_guard, with_guard = run_python(SWALLOWED_INTERRUPT).splitlines()[-2:]
    assert without_guard == "finished 5", "the interrupt is dropped inside __del__: this is what the guard is for"
    assert with_guard == "interrupted after 1", "the guard raises it again at the next batch's end"
