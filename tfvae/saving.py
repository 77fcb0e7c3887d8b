"""The files of a run, written so that none is ever left half written, and read back with errors that say why not.

Every file is written beside its final path under a hidden temporary name and renamed over it once complete
(`os.replace` is atomic on POSIX): a full disk, a kill or Ctrl-C in the middle of a save leaves the previous file as
it was. This applies to the final `model.keras`, the best-model checkpoint and the backup that resumes a run
(`resumable_run.ResumableRun`).
"""

import os
import zipfile

import keras

from tfvae.model import VAE

_PARTIAL_PREFIX = ".partial-"


class ModelFileError(ValueError):
    """A model file that is missing, is not a `.keras` archive, or does not hold the kind of model asked for."""


def save_atomically(save, path):
    """Calls `save(temporary_path)`, then renames the temporary file to `path`; on any error, `path` is untouched.

    The temporary name keeps the end of `path` (`.keras`), which Keras' savers check.

    Raises:
        OSError: naming `path`, when the write fails (a full disk: ENOSPC).
    """
    directory, name = os.path.split(path)
    partial_path = os.path.join(directory, f"{_PARTIAL_PREFIX}{os.getpid()}-{name}")
    try:
        save(partial_path)
        os.replace(partial_path, path)
    except OSError as error:
        if error.errno is None:
            raise
        raise OSError(error.errno, os.strerror(error.errno), path) from error
    finally:
        if os.path.exists(partial_path):
            os.remove(partial_path)


def load_model(path, kinds=(VAE,)):
    """Loads a model of one of `kinds` (`tfvae.VAE` by default) saved with `model.save(path)`, in safe mode.

    Raises:
        ModelFileError: for a missing file, a file that is not a `.keras` archive, or an archive that Keras cannot
            load as one of `kinds`.
    """
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such model file.")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a .keras archive (a file written by model.save or tfvae train).")
    try:
        model = keras.models.load_model(path, safe_mode=True)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path}: a .keras archive that Keras cannot load as a model: {error}") from error
    if not isinstance(model, kinds):
        names = [f"tfvae.{kind.__name__}" for kind in kinds]
        expected = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise ModelFileError(f"{path} holds a {type(model).__name__}, not a {expected}.")
    return model
