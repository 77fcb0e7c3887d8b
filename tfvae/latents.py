"""A whole data set through the encoder once: the posterior of every example, as arrays or a `.npz` file.

The latent-diffusion use trains a second model on the latents of a fixed autoencoder: encoding the data once and
keeping `mu` and `log sigma^2` lets every later epoch draw fresh `z = mu + sigma * epsilon` without the encoder.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfvae._keras.eager import compiled_when_eager
from tfvae.input_checks import InputError

DEFAULT_BATCH_SIZE = 500


def encode_dataset(model, data, batch_size=DEFAULT_BATCH_SIZE):
    """The posterior q(z|x) of every example of `data`, as `mu` and `log sigma^2`.

    The encoder runs XLA-compiled on batches of one static size: the last batch is padded with zeros to
    `batch_size` and the padding's rows are dropped, so XLA compiles once. Each example's posterior depends on that
    example only, so padding changes nothing.

    Args:
        model: a `tfvae.VAE` (anything whose `encode(x)` returns a `DiagonalGaussian`).
        data: an array `[N, ...]` of examples as the encoder takes them, or a `tf.data.Dataset` of such batches
            (or of `(x, y)` / `(x, y, sample_weight)` batches, as `fit` takes them: `y` is left out).
        batch_size: examples per compiled call (for an array; a dataset keeps its own batches, padded to the
            first batch's size).

    Returns:
        `(mean, logvar)`: float32 NumPy arrays `[N, *latent_shape]`, `logvar` clamped as the posterior clamps it.

    Raises:
        InputError: for data without examples, or a dataset of single examples (unbatched).
    """
    means, logvars = [], []
    padded_size = None
    for batch in _batches(data, batch_size, getattr(model, "data_shape", None)):
        size = len(batch)
        padded_size = padded_size or size
        mean, logvar = _moments(model, _pad(batch, padded_size))
        means.append(mean.numpy()[:size])
        logvars.append(logvar.numpy()[:size])
    if not means:
        raise InputError("encode_dataset: the data holds no examples; give at least one.")
    return np.concatenate(means), np.concatenate(logvars)


def save_latents(model, data, path, batch_size=DEFAULT_BATCH_SIZE):
    """Writes `encode_dataset(model, data, batch_size)` to `path` as a `.npz` file with arrays `mean` and `logvar`.

    Returns:
        The path written: `path`, with `.npz` added when it lacks it (as NumPy adds it).
    """
    mean, logvar = encode_dataset(model, data, batch_size)
    path = os.fspath(path)
    path = path if path.endswith(".npz") else f"{path}.npz"
    np.savez(path, mean=mean, logvar=logvar)
    return path


@compiled_when_eager(jit_compile=True)
def _moments(model, x):
    posterior = model.encode(x)
    return posterior.mean(), posterior.logvar


def _batches(data, batch_size, data_shape=None):
    """The batches of examples of `data` (see `encode_dataset`); `data_shape`, one example's shape when known,
    tells a dataset of single examples."""
    if isinstance(data, tf.data.Dataset):
        examples = keras.utils.unpack_x_y_sample_weight(data.element_spec)[0]
        if data_shape is not None and examples.shape.rank == len(data_shape):
            raise InputError(f"encode_dataset: the dataset is unbatched (its elements are single examples shaped "
                             f"{tuple(examples.shape)}); batch it first with data.batch(n).")
        for element in data.as_numpy_iterator():
            yield keras.utils.unpack_x_y_sample_weight(element)[0]
        return
    data = np.asarray(data)
    for start in range(0, len(data), batch_size):
        yield data[start : start + batch_size]


def _pad(batch, size):
    missing = size - len(batch)
    if missing <= 0:
        return batch
    return np.concatenate([batch, np.zeros((missing, *batch.shape[1:]), batch.dtype)])
