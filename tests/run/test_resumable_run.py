"""`ResumableRun`: a run stopped between or inside any of its per-epoch writes resumes with every epoch logged once.

Each case makes one write of one epoch raise, leaving the files as a kill at that moment would, then resumes with a
fresh model and callback, as the same command does. A run stopped in the last epoch's writes resumes to train
nothing: it only repairs the history and `best.keras` from the backup.
"""

import csv
import json
import os

import keras
import numpy as np
import pytest

from tfvae import VAE, networks
from tfvae.run.resumable_run import LOGS, BackupMismatchError, ResumableEarlyStopping, ResumableRun, newest_backup

EPOCHS = 4


class Crash(Exception):
    pass


class RecordWeights(keras.callbacks.Callback):
    """The trainable weights at the end of each epoch (a rerun epoch replaces the record of its cut-short run)."""

    def __init__(self, record):
        super().__init__()
        self.record = record

    def on_epoch_end(self, epoch, logs=None):
        self.record[epoch] = [variable.numpy() for variable in self.model.trainable_variables]


class FirstEpoch(keras.callbacks.Callback):
    first = None

    def on_epoch_begin(self, epoch, logs=None):
        self.first = epoch if self.first is None else self.first


def fit(run_dir, data, weights):
    keras.utils.set_random_seed(0)
    model = VAE(networks.gaussian_mlp_encoder(6, 2, 8), networks.bernoulli_mlp_decoder(2, 6, 8), seed=0)
    model.compile(keras.optimizers.Adam(0.05), jit_compile=False)
    first = FirstEpoch()
    model.fit(data, validation_data=data[:16], epochs=EPOCHS, batch_size=16, verbose=0,
              callbacks=[first, RecordWeights(weights), ResumableRun(str(run_dir))])
    return first.first


def crash_on_call(monkeypatch, owner, name, call, after):
    """Makes `owner.name` raise `Crash` on its `call`-th call (in epoch `call - 1`), before or after its work."""
    original, calls = getattr(owner, name), []

    def crashing(*args, **kwargs):
        calls.append(name)
        if len(calls) == call and not after:
            raise Crash(name)
        result = original(*args, **kwargs)
        if len(calls) == call and after:
            raise Crash(name)
        return result

    monkeypatch.setattr(owner, name, crashing)


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


# (what raises, on which call, after its work, epochs in the newest backup then, the epoch the resumed run starts)
CRASHES = {
    "model written, backup not renamed": (VAE, "save", 2, True, 1, 1),  # best.keras is a copy of the backup
    "backup renamed, history not written": (ResumableRun, "_write_history", 2, False, 2, 2),
    "last epoch: backup renamed, history not written": (ResumableRun, "_write_history", 4, False, 4, None),
    "last epoch: history written, best.keras not saved": (ResumableRun, "_write_history", 4, True, 4, None),
}


@pytest.mark.parametrize("crash", list(CRASHES))
def test_a_run_stopped_at_any_write_resumes_with_history_backup_and_best_model_in_agreement(tmp_path, rng,
                                                                                           monkeypatch, crash):
    owner, name, call, after, backed_up, resumed_at = CRASHES[crash]
    data = (rng.random((64, 6)) < 0.3).astype(np.float32)
    weights = {}
    with monkeypatch.context() as patch:
        crash_on_call(patch, owner, name, call, after)
        with pytest.raises(Crash):
            fit(tmp_path, data, weights)
    backup = newest_backup(str(tmp_path / "backup"))
    assert backup.endswith(f"epoch-{backed_up}")
    assert [name for name in os.listdir(tmp_path / "backup") if not name.startswith("epoch-")] == [], "nothing partial"
    with open(f"{backup}/{LOGS}") as file:
        assert len(json.load(file)) == backed_up

    assert fit(tmp_path, data, weights) == resumed_at
    rows = read_csv(tmp_path / "history.csv")
    assert [int(row["epoch"]) for row in rows] == list(range(EPOCHS)), "every epoch logged once"
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["epoch_seconds"]) == EPOCHS and min(history["epoch_seconds"]) > 0
    for metric in ("elbo", "kl", "loss", "reconstruction", "val_elbo"):
        assert [float(row[metric]) for row in rows] == history[metric], metric
    assert not (tmp_path / "backup").exists()
    best = keras.models.load_model(tmp_path / "best.keras", safe_mode=True)
    for saved, expected in zip(best.trainable_variables, weights[int(np.argmax(history["val_elbo"]))], strict=True):
        np.testing.assert_array_equal(saved, expected)


class ScriptedValidation(keras.callbacks.Callback):
    """Sets the logged `val_elbo` of each epoch to a scripted value (callbacks after it see that value)."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_elbo"] = self.values[epoch]


class CrashAtEpochEnd(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Crash(epoch)


# Best at epoch 1; with a patience of 2, epochs 2 and 3 do not improve on it, so training stops after epoch 3.
SCRIPTED_VAL_ELBO = [1.0, 3.0, 2.0, 2.5, 2.9, 2.9, 2.9, 2.9]


def fit_stopping_early(run_dir, data, weights, crash_at=None):
    keras.utils.set_random_seed(0)
    model = VAE(networks.gaussian_mlp_encoder(6, 2, 8), networks.bernoulli_mlp_decoder(2, 6, 8), seed=0)
    model.compile(keras.optimizers.Adam(0.05), jit_compile=False)
    run = ResumableRun(str(run_dir))
    stopping = ResumableEarlyStopping(run, monitor="val_elbo", mode="max", patience=2, restore_best_weights=True)
    callbacks = [ScriptedValidation(SCRIPTED_VAL_ELBO), RecordWeights(weights), run, stopping]
    model.fit(data, validation_data=data[:16], epochs=len(SCRIPTED_VAL_ELBO), batch_size=16, verbose=0,
              callbacks=callbacks + ([] if crash_at is None else [CrashAtEpochEnd(crash_at)]))
    return model, run


def test_early_stopping_counts_the_epochs_before_a_resume(tmp_path, rng):
    data = (rng.random((64, 6)) < 0.3).astype(np.float32)
    weights = {}
    with pytest.raises(Crash):
        fit_stopping_early(tmp_path, data, weights, crash_at=2)  # killed after epoch 2's backup
    # Keras' EarlyStopping would start counting again here, stop after epoch 6 and restore epoch 4 (the resumed
    # part's best); the run goes on from the backed-up epochs instead.
    model, run = fit_stopping_early(tmp_path, data, weights)
    assert len(run.epochs) == 4 and [int(row["epoch"]) for row in read_csv(tmp_path / "history.csv")] == [0, 1, 2, 3]
    for restored, expected in zip(model.trainable_variables, weights[1], strict=True):
        np.testing.assert_array_equal(restored, expected)  # the best epoch's weights, from before the resume


def test_a_backup_of_another_model_is_refused_and_says_what_to_do(tmp_path, rng):
    data = (rng.random((32, 6)) < 0.5).astype(np.float32)

    def fit_hidden(units, *callbacks):
        model = VAE(networks.gaussian_mlp_encoder(6, 2, units), networks.bernoulli_mlp_decoder(2, 6, units), seed=0)
        model.compile(keras.optimizers.Adam(0.05), jit_compile=False)
        model.fit(data, epochs=3, batch_size=16, verbose=0, callbacks=[ResumableRun(str(tmp_path)), *callbacks])

    with pytest.raises(Crash):
        fit_hidden(8, CrashAtEpochEnd(0))  # after the run's backup of epoch 1
    with pytest.raises(BackupMismatchError, match=r"epoch-1 holds another model than this run's \(its weights do not "
                                                  r"fit: .*\)\. Resume with the settings it was trained with, or "
                                                  r"remove .*backup to start over\.$"):
        fit_hidden(9)
    assert newest_backup(str(tmp_path / "backup")).endswith("epoch-1"), "the backup is kept"
