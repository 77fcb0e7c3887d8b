"""Checks of the data a VAE is given, made before any training step so that bad input fails at once and clearly."""

import numpy as np
import tensorflow as tf


class InputError(ValueError):
    """Data that a VAE cannot learn from: wrong shape or dtype, empty, non-finite, or out of the likelihood's range."""


def check_data(data, data_shape, likelihood_name, role="x"):
    """Checks NumPy data or a `tf.data.Dataset` against the model; raises `InputError` naming the problem and the fix.

    For a dataset the static element spec is checked, and the values of its first batch.

    Args:
        data: a NumPy array (or anything `np.asarray` takes), a `tf.data.Dataset`, or None (nothing to check).
        data_shape: the shape of one example the encoder takes (None for an unknown size).
        likelihood_name: `"bernoulli"` requires values in [0, 1].
        role: how to call the data in messages (`"x"`, `"validation_data"`).
    """
    if data is None:
        return
    if isinstance(data, tf.distribute.DistributedDataset):
        # Checked by its element spec alone: every worker takes part in reading a batch of a distributed dataset.
        _check_element_spec(data.element_spec, data_shape, role)
        return
    if isinstance(data, tf.data.Dataset):
        _check_element_spec(data.element_spec, data_shape, role)
        first_batch = next(iter(data.take(1)), None)
        if first_batch is None:
            raise InputError(f"{role} is an empty dataset: there is nothing to train on.")
        values = (first_batch[0] if isinstance(first_batch, tuple) else first_batch).numpy()
        _check_values(values, likelihood_name, f"the first batch of {role}")
        return
    if (isinstance(data, tuple) or (role == "validation_data" and isinstance(data, list))) and data:
        data = data[0]  # validation_data given as (x,), (x, y) or (x, y, sample_weight), or the same as a list
    values = np.asarray(data)
    _check_dtype(values.dtype, role)
    if values.ndim == 0 or len(values) == 0:
        raise InputError(f"{role} holds no examples (shape {values.shape}): there is nothing to train on.")
    _check_shape(values.shape[1:], data_shape, role)
    _check_values(values, likelihood_name, role)


def _check_element_spec(spec, data_shape, role):
    spec = tf.nest.flatten(spec, expand_composites=True)[0]  # x of (x, ...), or of one replica's batch
    _check_dtype(spec.dtype.as_numpy_dtype, role)
    _check_shape(tuple(spec.shape[1:]), data_shape, role)


def _check_dtype(dtype, role):
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InputError(
            f"{role} has dtype {dtype}; a VAE needs real numbers: float32 images scaled to [0, 1] "
            "(for uint8 images, x.astype('float32') / 255)."
        )


def _check_shape(example_shape, data_shape, role):
    compatible = len(example_shape) == len(data_shape) and all(
        expected is None or actual is None or actual == expected
        for actual, expected in zip(example_shape, data_shape, strict=True)
    )
    if not compatible:
        hint = (
            " Flatten the images to rows (x.reshape(len(x), -1), or tfvae.data.pipeline(..., flatten=True))."
            if len(data_shape) == 1 and int(np.prod([s or 0 for s in example_shape])) == data_shape[0]
            else " Build the encoder for this shape, or reshape the data."
        )
        raise InputError(
            f"{role} has examples of shape {tuple(example_shape)}, but the encoder takes {tuple(data_shape)}.{hint}"
        )


def _check_values(values, likelihood_name, where):
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        example = np.argwhere(~finite)[0]
        raise InputError(
            f"{where} holds {int(np.size(finite) - finite.sum())} NaN or infinite values (the first at index "
            f"{tuple(int(i) for i in example)}); remove or impute them before training."
        )
    if likelihood_name == "bernoulli":
        low, high = values.min(), values.max()
        if low < 0 or high > 1:
            hint = " Divide 8-bit pixels by 255." if high <= 255 and low >= 0 else ""
            raise InputError(
                f"{where} has values in [{low:g}, {high:g}], but a Bernoulli decoder models pixels in [0, 1].{hint}"
                " For data outside [0, 1], use likelihood='gaussian'."
            )
