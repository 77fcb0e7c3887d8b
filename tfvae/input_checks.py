"""Checks of the data a model is given, made before any step runs so that bad input fails at once and clearly."""

import keras
import numpy as np
import tensorflow as tf


class InputError(ValueError):
    """Data that a model cannot learn from: wrong shape or dtype, empty, non-finite, or out of the range it models."""


EIGHT_BIT_HINT = "8-bit pixels? Divide them by 255"


def check_data(data, data_shape, *, role="x", unit_interval=None):
    """Checks NumPy data or a `tf.data.Dataset` against the model; raises `InputError` naming the problem and the fix.

    For a `tf.data.Dataset` the static element spec is checked, and the values of its first batch; for a
    `keras.utils.PyDataset` its first batch. Generators and other iterators are not checked: a batch read here would
    be missing from training. Whatever the likelihood, 8-bit pixels (`uint8`, or whole numbers in [0, 255] beyond 1)
    are refused with the fix: unscaled, a Gaussian decoder's loss diverges within a few steps. Datasets of
    `(x, y, sample_weight)` are refused: tfvae's models weight every example alike.

    Args:
        data: a NumPy array (or anything array-like: a tensor, nested lists, an object with `__array__`), a
            `tf.data.Dataset`, a `keras.utils.PyDataset`, a generator, or None (nothing to check).
        data_shape: the shape of one example the encoder takes (None for an unknown size).
        role: how to call the data in messages (`"x"`, `"validation_data"`).
        unit_interval: None when any finite value will do; else values must be in [0, 1], and this says why in
            the error (`"a Bernoulli decoder models pixels in [0, 1]"`).
    """
    if data is None:
        return
    if isinstance(data, tf.distribute.DistributedDataset):
        # Checked by its element spec alone: every worker takes part in reading a batch of a distributed dataset.
        _check_element_spec(data.element_spec, data_shape, role)
        return
    if isinstance(data, tf.data.Dataset):
        _check_element_spec(data.element_spec, data_shape, role)
        if isinstance(data.element_spec, tuple) and len(data.element_spec) == 3:
            raise InputError(f"{role} yields (x, y, sample_weight), but tfvae's models weight every example alike: "
                             "their loss is their own objective averaged over the batch. Give (x,) or (x, y).")
        first_batch = next(iter(data.take(1)), None)
        if first_batch is None:
            raise InputError(f"{role} is an empty dataset: there is nothing to train on.")
        examples = keras.utils.unpack_x_y_sample_weight(first_batch)[0]
        _check_values(examples, f"the first batch of {role}", unit_interval)
        return
    if isinstance(data, keras.utils.PyDataset):
        if data.num_batches != 0:  # None: infinite
            examples = keras.utils.unpack_x_y_sample_weight(data[0])[0]
            _check_examples(examples, data_shape, f"the first batch of {role}", unit_interval)
        return
    if not _is_array_like(data):
        return  # a generator or an iterator: Keras reads it, and reading a batch here would take it from training
    if (isinstance(data, tuple) or (role == "validation_data" and isinstance(data, list))) and data:
        data = data[0]  # validation_data given as (x,), (x, y) or (x, y, sample_weight), or the same as a list
    _check_examples(data, data_shape, role, unit_interval)


def example_shape(data):
    """The shape of one example of `data` (what `check_data` takes), or `()` when it cannot be known without reading
    it (a generator, None)."""
    if isinstance(data, (tf.data.Dataset, tf.distribute.DistributedDataset)):
        return tuple(tf.nest.flatten(data.element_spec, expand_composites=True)[0].shape[1:])
    if isinstance(data, keras.utils.PyDataset):
        return tuple(np.shape(keras.utils.unpack_x_y_sample_weight(data[0])[0])[1:]) if data.num_batches != 0 else ()
    if isinstance(data, tuple) and data:
        data = data[0]
    return tuple(np.shape(data)[1:]) if data is not None and _is_array_like(data) else ()


def _check_examples(data, data_shape, role, unit_interval):
    values = np.asarray(data)
    _check_dtype(values.dtype, role)
    if values.ndim == 0 or len(values) == 0:
        raise InputError(f"{role} holds no examples (shape {values.shape}): there is nothing to train on.")
    _check_shape(values.shape[1:], data_shape, role, whole_shape=values.shape)
    _check_values(values, role, unit_interval)


def _is_array_like(data):
    """Whether `data` holds its examples (an array, a tensor, nested lists) rather than yielding them."""
    return isinstance(data, (np.ndarray, tf.Tensor, list, tuple)) or hasattr(data, "__array__")


def _check_element_spec(spec, data_shape, role):
    spec = tf.nest.flatten(spec, expand_composites=True)[0]  # x of (x, ...), or of one replica's batch
    _check_dtype(spec.dtype.as_numpy_dtype, role)
    _check_shape(tuple(spec.shape[1:]), data_shape, role)


def _check_dtype(dtype, role):
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InputError(
            f"{role} has dtype {dtype}; the model needs real numbers: float32 images scaled to [0, 1] "
            "(for uint8 images, x.astype('float32') / 255)."
        )
    check_not_eight_bit(dtype, role)


def check_not_eight_bit(dtype, role="x"):
    """Raises `InputError` for `uint8` data (a NumPy or TensorFlow dtype; None passes), which models take as pixels
    in [0, 1] only once divided by 255."""
    if dtype is not None and np.dtype(getattr(dtype, "as_numpy_dtype", dtype)) == np.uint8:
        raise InputError(f"{role} is uint8 ({EIGHT_BIT_HINT}).")


def _check_shape(example_shape, data_shape, role, whole_shape=None):
    """Raises `InputError` unless examples of `example_shape` fit `data_shape`; `whole_shape`, the shape of all the
    data when known, tells a single example given without its batch axis."""
    if _compatible(example_shape, data_shape):
        return
    if whole_shape is not None and _compatible(whole_shape, data_shape):
        raise InputError(f"{role} has shape {tuple(whole_shape)}: one example without a batch axis. Give a batch: "
                         "x[None] for a batch of one.")
    hint = (
        " Flatten the images to rows (x.reshape(len(x), -1), or tfvae.data.pipeline(..., flatten=True))."
        if len(data_shape) == 1 and int(np.prod([s or 0 for s in example_shape])) == data_shape[0]
        else " Build the encoder for this shape, or reshape the data."
    )
    raise InputError(
        f"{role} has examples of shape {tuple(example_shape)}, but the encoder takes {tuple(data_shape)}.{hint}")


def _compatible(shape, expected):
    """Whether `shape` fits `expected`, where None (an unknown size) fits any size."""
    return len(shape) == len(expected) and all(
        want is None or have is None or have == want for have, want in zip(shape, expected, strict=True))


def _check_values(values, where, unit_interval):
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        example = np.argwhere(~finite)[0]
        raise InputError(
            f"{where} holds {int(np.size(finite) - finite.sum())} NaN or infinite values (the first at index "
            f"{tuple(int(i) for i in example)}); remove or impute them before training."
        )
    low, high = values.min(), values.max()
    eight_bit_range = low >= 0 and 127 < high <= 255
    if eight_bit_range and np.array_equal(values, np.round(values)):
        raise InputError(f"{where} holds whole numbers in [{low:g}, {high:g}] ({EIGHT_BIT_HINT}).")
    if unit_interval and (low < 0 or high > 1):
        hint = f" ({EIGHT_BIT_HINT})" if eight_bit_range else ""
        raise InputError(f"{where} has values in [{low:g}, {high:g}]{hint}, but {unit_interval}.")
