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

try:  # Keras' per-thread state, for `reuse_keras_skipsets`
    from keras.src.backend.common import global_state as _keras_state
except ImportError:  # another Keras layout: nothing to work around
    _keras_state = None

_PARTIAL_PREFIX = ".partial-"
_KERAS_BUILT_SKIPSET, _KERAS_READ_SKIPSET = "saving_attr_skipset_", "saving_attr_skiplist_"


class ModelFileError(ValueError):
    """A model file that is missing, is not a `.keras` archive, or does not hold the kind of model asked for."""


def save_atomically(save, path):
    """Calls `save(temporary_path)`, then renames the temporary file to `path`; on any error, `path` is untouched.

    The temporary name keeps the end of `path` (`.keras`), which Keras' savers check. A Keras save reuses what
    Keras' earlier saves built (`reuse_keras_skipsets`).

    Raises:
        OSError: naming `path`, when the write fails (a full disk: ENOSPC).
    """
    directory, name = os.path.split(path)
    partial_path = os.path.join(directory, f"{_PARTIAL_PREFIX}{os.getpid()}-{name}")
    reuse_keras_skipsets()
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


def reuse_keras_skipsets():
    """Lets Keras' next `save` or `load_model` reuse the sets of attributes that its earlier ones built.

    Keras (3.15.1) walks a model's attributes to save or load it, skipping those of a plain `Layer`, `Metric`,
    `Optimizer` and so on: it lists them by building a reference object of each kind and caches the list in its
    per-thread state as `saving_attr_skipset_<kind>`, but looks it up as `saving_attr_skiplist_<kind>`. So every
    save builds the reference objects again: 8.6 ms of the 31.7 ms `model.save` of the Frey Face MLPs (medians of
    15), which the default `tfvae train` runs every epoch for its backup. `save_atomically` calls this first: it
    files each list Keras built under the name it looks up; the files Keras writes are the same. The default `tfvae
    train` then wrote each epoch's backup in 23.8-25.1 ms against 32.3-35.9 ms (medians of 40 epochs, 3 runs each,
    taking turns). With a Keras that keeps its state elsewhere it does nothing, and with one that reads the names it
    writes it adds nothing Keras reads.
    """
    tracker = getattr(_keras_state, "GLOBAL_STATE_TRACKER", None)  # this thread's; `clear_session` replaces it
    if tracker is None:
        return
    state = vars(tracker)
    for name, built in list(state.items()):
        if name.startswith(_KERAS_BUILT_SKIPSET):
            state.setdefault(_KERAS_READ_SKIPSET + name.removeprefix(_KERAS_BUILT_SKIPSET), built)


def load_model(path, kinds=(VAE,)):
    """Loads a model of one of `kinds` (`tfvae.VAE` by default) saved with `model.save(path)`, in safe mode.

    Raises:
        ModelFileError: for a missing file, a file that is not a `.keras` archive, or an archive that Keras cannot
            load as one of `kinds`.
    """
    if os.path.isdir(path):
        example = os.path.join(path, "model.keras")
        raise ModelFileError(f"{path} is a folder; give a model file in it, such as {example}.")
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
        raise ModelFileError(f"{path} holds {_with_article(type(model).__name__)}, not {_with_article(expected)}.")
    return model


def _with_article(name):
    """`name` after "a", or "an" before a vowel (`an AutoencoderKLTrainer`)."""
    return f"{'an' if name.removeprefix('tfvae.')[:1].lower() in 'aeiou' else 'a'} {name}"
