"""A whole data set through the encoder once: the posterior of every example, as arrays or a `.npz` file.

The latent-diffusion use trains a second model on the latents of a fixed autoencoder: encoding the data once and
keeping `mu` and `log sigma^2` lets every later epoch draw fresh `z = mu + sigma * epsilon` without the encoder.
"""

import numpy as np
import tensorflow as tf

from tfvae._keras.eager import compiled_when_eager

DEFAULT_BATCH_SIZE = 500


def encode_dataset(model, data, batch_size=DEFAULT_BATCH_SIZE):
    """The posterior q(z|x) of every example of `data`, as `mu` and `log sigma^2`.

    The encoder runs XLA-compiled on batches of one static size: the last batch is padded with zeros to
    `batch_size` and the padding's rows are dropped, so XLA compiles once. Each example's posterior depends on that
    example only, so padding changes nothing.

    Args:
        model: a `tfvae.VAE` (anything whose `encode(x)` returns a `DiagonalGaussian`).
        data: an array `[N, ...]` of examples as the encoder takes them, or a `tf.data.Dataset` of such batches.
        batch_size: examples per compiled call (for an array; a dataset keeps its own batches, padded to the
            first batch's size).

    Returns:
        `(mean, logvar)`: float32 NumPy arrays `[N, *latent_shape]`, `logvar` clamped as the posterior clamps it.
    """
    means, logvars = [], []
    padded_size = None
    for batch in _batches(data, batch_size):
        size = len(batch)
        padded_size = padded_size or size
        mean, logvar = _moments(model, _pad(batch, padded_size))
        means.append(mean.numpy()[:size])
        logvars.append(logvar.numpy()[:size])
    return np.concatenate(means), np.concatenate(logvars)


def save_latents(model, data, path, batch_size=DEFAULT_BATCH_SIZE):
    """Writes `encode_dataset(model, data, batch_size)` to `path` as a `.npz` file with arrays `mean` and `logvar`.

    Returns:
        `path`.
    """
    mean, logvar = encode_dataset(model, data, batch_size)
    np.savez(path, mean=mean, logvar=logvar)
    return path


@compiled_when_eager(jit_compile=True)
def _moments(model, x):
    posterior = model.encode(x)
    return posterior.mean(), posterior.logvar


def _batches(data, batch_size):
    if isinstance(data, tf.data.Dataset):
        yield from data.as_numpy_iterator()
        return
    data = np.asarray(data)
    for start in range(0, len(data), batch_size):
        yield data[start : start + batch_size]


def _pad(batch, size):
    missing = size - len(batch)
    if missing <= 0:
        return batch
    return np.concatenate([batch, np.zeros((missing, *batch.shape[1:]), batch.dtype)])
