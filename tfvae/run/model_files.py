"""The model files of a run: written atomically, read back with errors that say why not."""

import os
import zipfile

import keras

from tfvae.files.atomic import save_atomically
from tfvae.vae import VAE


class ModelFileError(ValueError):
    """A model file that is missing, is not a `.keras` archive, or does not hold the kind of model asked for."""


def save_model(model, path):
    """`model.save(path)`, atomically (`files.atomic.save_atomically`)."""
    save_atomically(model.save, path)


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
    """`name` after "a", or "an" before a vowel (`an AutoencoderKLTrainer`, `a tfvae.AutoencoderKL`)."""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
