"""The files of a run, written so that none is ever left half written, and read back with errors that say why not.

Every file is written beside its final path under a hidden temporary name and renamed over it once complete
(`os.replace` is atomic on POSIX): a full disk, a kill or Ctrl-C in the middle of a save leaves the previous file as
it was. This applies to the final `model.keras`, the best-model checkpoint and the `BackupAndRestore` backup that
resumes a run.
"""

import json
import os
import zipfile

import keras

from tfvae.model import VAE

_PARTIAL_PREFIX = ".partial-"


class ModelFileError(ValueError):
    """A model file that is missing, is not a `.keras` archive, or does not hold a `tfvae.VAE`."""


def save_atomically(save, path):
    """Calls `save(temporary_path)`, then renames the temporary file to `path`; on any error, `path` is untouched.

    The temporary name keeps the end of `path` (`.keras`), which Keras' savers check. A `save` that writes nothing (a
    checkpoint that is not an improvement) leaves `path` as it is.

    Raises:
        OSError: naming `path`, when the write fails (a full disk: ENOSPC).
    """
    directory, name = os.path.split(path)
    partial_path = os.path.join(directory, f"{_PARTIAL_PREFIX}{os.getpid()}-{name}")
    try:
        save(partial_path)
        if os.path.exists(partial_path):
            os.replace(partial_path, path)
    except OSError as error:
        if error.errno is None:
            raise
        raise OSError(error.errno, os.strerror(error.errno), path) from error
    finally:
        if os.path.exists(partial_path):
            os.remove(partial_path)


def load_vae(path):
    """Loads a `tfvae.VAE` saved with `model.save(path)` (safe mode).

    Raises:
        ModelFileError: for a missing file, a file that is not a `.keras` archive, or an archive that Keras cannot
            load as a `tfvae.VAE`.
    """
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such model file.")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a .keras archive (a file written by model.save or tfvae train).")
    try:
        model = keras.models.load_model(path, safe_mode=True)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path}: a .keras archive that Keras cannot load as a model: {error}") from error
    if not isinstance(model, VAE):
        raise ModelFileError(f"{path} holds a {type(model).__name__}, not a tfvae.VAE.")
    return model


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backups are written atomically, as `.keras` archives.

    Keras writes the weights and the epoch number in place, so a save cut short leaves a backup that cannot be
    resumed. Here each file is written by `save_atomically`, weights first: a run stopped between the two renames
    resumes with the new weights at the epoch before, training that epoch again. The weights (and the optimizer's
    state) go into a `.keras` archive, which Python's `zipfile` writes: on a full disk it raises an `OSError`, where
    h5py writing a `.weights.h5` file leaves HDF5 a file it cannot close, and the process crashes as it exits.
    """

    def __init__(self, backup_dir, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self._weights_path = os.path.join(backup_dir, "latest.keras")
        self._prev_weights_path = f"{self._weights_path}.bkp"

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        save_atomically(self.model.save, self._weights_path)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        save_atomically(lambda path: _write_json(metadata, path), self._training_metadata_path)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` for one fixed file path (no `{epoch}` fields), written atomically."""

    def _save_model(self, epoch, batch, logs):
        final_path = self.filepath

        def save(path):
            self.filepath = path
            super(AtomicModelCheckpoint, self)._save_model(epoch, batch, logs)

        try:
            save_atomically(save, final_path)
        finally:
            self.filepath = final_path


def _write_json(value, path):
    with open(path, "w") as file:
        json.dump(value, file)
