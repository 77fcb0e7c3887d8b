"""The files of a run, written so that none is ever left half written, and read back with errors that say why not.

Every file is written beside its final path under a hidden temporary name and renamed over it once complete
(`os.replace` is atomic on POSIX): a full disk, a kill or Ctrl-C in the middle of a save leaves the previous file as
it was. This applies to the final `model.keras`, the best-model checkpoint and the backup that resumes a run
(`resumable_run.ResumableRun`).
"""

import contextlib
import gc
import os
import re
import sys
import traceback
import zipfile

import keras

from tfvae.model import VAE

_PARTIAL_PREFIX = ".partial-"
_H5PY_ERRNO = re.compile(r"\berrno = (\d+)")


class ModelFileError(ValueError):
    """A model file that is missing, is not a `.keras` archive, or does not hold a `tfvae.VAE`."""


def save_atomically(save, path):
    """Calls `save(temporary_path)`, then renames the temporary file to `path`; on any error, `path` is untouched.

    The temporary name keeps the end of `path` (`.keras`, `.weights.h5`), which Keras' savers check. A `save` that
    writes nothing (a checkpoint that is not an improvement) leaves `path` as it is.

    Raises:
        OSError: naming `path`, when writing fails for a reason with an errno (a full disk: ENOSPC); h5py reports some
            of these as a `RuntimeError` whose message holds the errno, and prints more of them as it closes the
            file: both are turned into this one error.
    """
    directory, name = os.path.split(path)
    partial_path = os.path.join(directory, f"{_PARTIAL_PREFIX}{os.getpid()}-{name}")
    with _without_h5py_close_errors():
        error_number = _save_and_rename(save, partial_path, path)
        gc.collect()  # h5py's half-written objects go here, while their close errors are dropped
    if error_number:
        raise OSError(error_number, os.strerror(error_number), path)


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


def _save_and_rename(save, partial_path, path):
    """None once `path` is written; the errno of a write that failed for a reason outside tfvae."""
    try:
        save(partial_path)
        if os.path.exists(partial_path):
            os.replace(partial_path, path)
    except (OSError, RuntimeError) as error:
        match = _H5PY_ERRNO.search(str(error))
        error_number = getattr(error, "errno", None) or (int(match.group(1)) if match else None)
        if not error_number:
            raise
        return error_number
    finally:
        if os.path.exists(partial_path):
            os.remove(partial_path)
    return None


@contextlib.contextmanager
def _without_h5py_close_errors():
    """Drops the reports that h5py prints as it closes a file whose writes failed (Cython prints each error of a
    `__dealloc__` through `sys.excepthook`, then `sys.unraisablehook`)."""
    previous_excepthook, previous_unraisablehook = sys.excepthook, sys.unraisablehook

    def excepthook(kind, value, trace):
        if not any("h5py" in frame.filename for frame in traceback.extract_tb(trace)):
            previous_excepthook(kind, value, trace)

    def unraisablehook(unraisable):
        if "h5py" not in repr(unraisable.object):
            previous_unraisablehook(unraisable)

    sys.excepthook, sys.unraisablehook = excepthook, unraisablehook
    try:
        yield
    finally:
        sys.excepthook, sys.unraisablehook = previous_excepthook, previous_unraisablehook
