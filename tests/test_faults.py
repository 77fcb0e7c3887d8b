import csv
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tfvae import callbacks, training

TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")


def epochs_logged(run_dir):
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def test_sigkill_mid_training_then_the_same_command_resumes(tmp_path):
    run_dir = tmp_path / "run"
    command = [TFVAE, "train", "--quiet", "--epochs", "12", "--batch-size", "10", "--latent-size", "2",
               "--jit-compile", "off", "--validation-split", "0", "--output-dir", str(run_dir),
               "--export-root", str(tmp_path / "exports"),
               "--data-dir", str(tmp_path / "tfds")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(epochs_logged(run_dir)) < 2:
            assert process.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    finished_before_kill = epochs_logged(run_dir)
    assert finished_before_kill == list(range(len(finished_before_kill))) and len(finished_before_kill) < 12
    assert (run_dir / "backup").exists(), "an interrupted run keeps its backup"
    assert not (tmp_path / "exports").exists()

    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    assert epochs_logged(run_dir) == list(range(12)), "each epoch ran once: the interrupted one again, no other"
    assert not (run_dir / "backup").exists()
    assert (tmp_path / "exports" / "frey_face" / "1" / "saved_model.pb").exists()


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
