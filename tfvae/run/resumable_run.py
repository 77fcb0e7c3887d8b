"""`ResumableRun`: what a run directory keeps per epoch, exact wherever the run is killed.

At the end of epoch `e` (so `n = e + 1` epochs are finished) `ResumableRun` writes, in this order:

1. `backup/epoch-<n>/`: the model (with the optimizer's state and the noise state) and the logs of every finished
   epoch, written to a staging folder and renamed into place, so a backup is whole or absent;
2. `history.csv` and `history.json` (each epoch's metrics, and in the JSON each epoch's seconds), each replaced
   whole;
3. `best.keras` (a copy of the backup's model), replaced whole, when the monitored metric is the best so far.

The backup is the record of the run: a run killed at any moment resumes after the epochs of the newest backup,
and first rewrites 2 (and 3 when the last backed-up epoch is the best) from it. So a kill between the steps loses
nothing, an epoch that was cut short is run again and logged once, and `best.keras` is always the best logged
epoch. Keras' `BackupAndRestore`, `CSVLogger` and `ModelCheckpoint` each write at their own time (the backup's
weights and epoch counter in two files), so a kill between their writes drops or repeats an epoch.
"""

import csv
import io
import json
import math
import os
import re
import shutil
import time

import keras

from tfvae._keras import keras_state
from tfvae.files import atomic
from tfvae.run import model_files

# The whole model as a `.keras` archive (weights, optimizer state, noise state). Keras writes its weights through a
# zip file, so a full disk surfaces as an OSError; a `.weights.h5` file cut short by a full disk crashed h5py as it
# closed the file (a segmentation fault, seen here with h5py 3.14.0).
MODEL = "model.keras"
LOGS = "epochs.json"
BACKUP = "backup"  # the folder of the backups, in the run directory
_BACKUP_PATTERN = re.compile(r"epoch-([0-9]+)")


class BackupMismatchError(ValueError):
    """A run directory's backup that the model being trained cannot resume from: another model made it."""


class ResumableRun(keras.callbacks.Callback):
    """Backs up a run, writes its history and keeps its best model, every epoch; resumes from the newest backup.

    The backup folder is removed when training ends; a run stopped by an error or a kill keeps it, and a new `fit`
    with this callback on the same run directory goes on from it (raising `BackupMismatchError` when the model is
    not the one the backup holds).

    Args:
        run_dir: the run directory; `backup/`, `history.csv`, `history.json` and `best.keras` go there.
        monitor: the logged metric whose best value marks the best epoch (`val_elbo` or `elbo` for a VAE,
            `val_reconstruction` or `reconstruction` for an autoencoder).
        mode: `"max"` when the highest value of `monitor` is the best, `"min"` when the lowest is.
    """

    def __init__(self, run_dir, monitor="val_elbo", mode="max"):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}.")
        self.run_dir = run_dir
        self.backup_dir = os.path.join(run_dir, BACKUP)
        self.monitor = monitor
        self.mode = mode
        self.epochs = []

    def on_train_begin(self, logs=None):
        self.epochs = []
        backup = newest_backup(self.backup_dir)
        if backup is None:
            return
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(os.path.join(backup, MODEL))
        except ValueError as error:  # Keras: "A total of N objects could not be loaded" (or a shape mismatch)
            raise BackupMismatchError(
                f"{backup} holds another model than this run's (its weights do not fit: {str(error).splitlines()[0]}). "
                f"Resume with the settings it was trained with, or remove {self.backup_dir} to start over."
            ) from error
        with open(os.path.join(backup, LOGS)) as file:
            self.epochs = json.load(file)
        keras_state.set_initial_epoch(self.model, len(self.epochs))  # where Keras' `fit` starts
        print(_resuming_message(len(self.epochs), self.params["epochs"], self.backup_dir))
        self._write_history()
        if self.best_epoch() == len(self.epochs) - 1:
            self._save_best(backup)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record = {name: float(value) for name, value in (logs or {}).items()}
        self.epochs = [*self.epochs[:epoch], {**record, "epoch_seconds": time.perf_counter() - self._start}]
        backup = self._write_backup()
        self._write_history()
        if self.best_epoch() == epoch:
            self._save_best(backup)

    def on_train_end(self, logs=None):
        shutil.rmtree(self.backup_dir, ignore_errors=True)
        keras_state.set_initial_epoch(self.model, None)

    def best_epoch(self):
        """The first epoch with the best value of `monitor` (NaN counts as the worst)."""
        sign = 1 if self.mode == "max" else -1
        values = [sign * record.get(self.monitor, math.nan) for record in self.epochs]
        values = [-math.inf if math.isnan(value) else value for value in values]
        return values.index(max(values))

    def history(self):
        """`{metric: [value per epoch]}` of every finished epoch, `epoch_seconds` included; NaN where missing."""
        names = sorted({name for record in self.epochs for name in record})
        return {name: [record.get(name, math.nan) for record in self.epochs] for name in names}

    def _write_backup(self):
        """Writes the backup of the finished epochs and removes older ones; returns the new backup's folder."""
        final = os.path.join(self.backup_dir, f"epoch-{len(self.epochs)}")
        staging = os.path.join(self.backup_dir, f".staging-epoch-{len(self.epochs)}")
        for path in (staging, final):
            shutil.rmtree(path, ignore_errors=True)
        os.makedirs(staging)
        try:
            model_files.save_model(self.model, os.path.join(staging, MODEL))
            with open(os.path.join(staging, LOGS), "w") as file:
                json.dump(self.epochs, file)
            os.rename(staging, final)
        except BaseException:  # Ctrl-C or a full disk while writing: the staged backup is partial
            shutil.rmtree(staging, ignore_errors=True)
            raise
        for entry in os.listdir(self.backup_dir):
            if entry != os.path.basename(final):
                shutil.rmtree(os.path.join(self.backup_dir, entry), ignore_errors=True)
        return final

    def _write_history(self):
        history = self.history()
        seconds = history.pop("epoch_seconds", [])
        history_json = json.dumps({**history, "epoch_seconds": seconds}, indent=1)
        _replace(os.path.join(self.run_dir, "history.json"), history_json)
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(["epoch", *history])
        for epoch, values in enumerate(zip(*history.values(), strict=True)):
            writer.writerow([epoch, *("NA" if math.isnan(value) else repr(value) for value in values)])
        _replace(os.path.join(self.run_dir, "history.csv"), table.getvalue())

    def _save_best(self, backup):
        # The backup holds the model as it is now: copying its file is much cheaper than saving the model again.
        source = os.path.join(backup, MODEL)
        atomic.save_atomically(lambda path: shutil.copyfile(source, path), os.path.join(self.run_dir, "best.keras"))


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`keras.callbacks.EarlyStopping` that goes on where a resumed run left off.

    Keras' callback starts afresh in each `fit`: a run resumed after two epochs without improvement would wait
    `patience` more epochs, and `restore_best_weights` would know only the epochs since the resume. This one first
    replays the logs of the epochs the run's backup holds (the waiting count, the best value and epoch), and takes
    the best epoch's weights from `best.keras`.

    Args:
        run: the run's `ResumableRun`, which must come before this callback in `callbacks`.
        kwargs: as for `keras.callbacks.EarlyStopping`; `monitor` and `mode` as the run's.
    """

    def __init__(self, run, **kwargs):
        super().__init__(**kwargs)
        self.run = run

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not self.run.epochs:
            return
        for epoch, record in enumerate(self.run.epochs):
            self.on_epoch_end(epoch, record)
        self.model.stop_training = False  # a run killed as it stopped trains one more epoch, then stops
        best = os.path.join(self.run.run_dir, "best.keras")
        if self.restore_best_weights and self.best_epoch < len(self.run.epochs) - 1 and os.path.exists(best):
            self.best_weights = keras.saving.load_model(best, compile=False, safe_mode=True).get_weights()


def newest_backup(backup_dir):
    """The folder of the newest whole backup in `backup_dir` (the most epochs), or None."""
    if not os.path.isdir(backup_dir):
        return None
    epochs = [int(match.group(1)) for match in map(_BACKUP_PATTERN.fullmatch, os.listdir(backup_dir)) if match]
    return os.path.join(backup_dir, f"epoch-{max(epochs)}") if epochs else None


def _resuming_message(finished, epochs, backup_dir):
    if finished < epochs:
        return f"Resuming from epoch {finished + 1} of {epochs} ({backup_dir})"
    return f"Resuming: all {epochs} epochs are done ({backup_dir}); writing the run's files"


def _replace(path, text):
    """Writes `text` to `path` through a temporary file renamed over it: a reader sees the old or the new file."""
    staging = f"{path}.staging"
    with open(staging, "w", newline="") as file:
        file.write(text)
    os.replace(staging, path)
