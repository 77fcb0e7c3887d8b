"""NumPy arrays given to `fit`, `evaluate` and `predict` of tfvae's models, batched by tfvae's pipeline."""

import inspect
import math

import keras
import numpy as np
import tensorflow as tf

from tfvae._keras.compiled_steps import is_fits_validation
from tfvae.data import array_batches

KERAS_BATCH_SIZE = 32  # the batch size Keras gives arrays when none is given


class ArrayInputs:
    """A `keras.Model` mixin: arrays given to `fit`, `evaluate` and `predict` go in as `tfvae.data.array_batches`.

    Keras batches arrays in a `tf.data` pipeline of its own, which tf.data's autotuner watches. With the autotuner
    on, epochs ran slower throughout and some started late: `fit` deletes the pipeline's iterator at each epoch's
    start, and deleting an autotuned iterator sometimes waits for the autotuner's thread (see `tfvae.data.pipeline`).
    For the README's library call (`vae.fit(x, batch_size=100)`, 10,000 examples, 784-500-20 MLPs, 2 cores;
    `scripts/benchmark_fit_arrays.py --rounds 5`, each way in its own processes, two runs) Keras' batching took
    0.61-0.62 s per epoch (median) and started 26 and 30 of 45 epochs up to 0.28 s late; these batches took
    0.42-0.44 s (1.42-1.45x as fast) and started none more than 0.016 s late. A hand-built pipeline of the same
    arrays gave 0.52-0.61 s epochs with the autotuner on, 0.34-0.37 s off.

    The batches are those Keras makes: `batch_size` examples (32 unless given), the last batch smaller, reshuffled
    every epoch unless `shuffle=False` (in another order than Keras' for the same seed); `y` and `sample_weight` go
    with `x`; `validation_split` takes the last examples, before shuffling; `validation_data` arrays are batched by
    `validation_batch_size` or `batch_size`; floating-point arrays become `floatx`. Keras batches what these do not
    take: datasets, generators, dicts, lists and other array types; `fit`'s training arrays given with
    `steps_per_epoch`, `class_weight`, `shuffle="batch"` or `sample_weight` without `y`; its validation arrays with
    `validation_steps`; those of `evaluate` and `predict` with `steps`.
    """

    def fit(self, *args, **kwargs):
        call = inspect.signature(super().fit).bind(*args, **kwargs)
        arguments = call.arguments
        batch_size = arguments.get("batch_size") or KERAS_BATCH_SIZE
        if arguments.get("batch_size") and not arguments.get("validation_batch_size"):
            # What Keras would use for validation data it batches itself, once `batch_size` is gone.
            arguments["validation_batch_size"] = arguments["batch_size"]
        shuffle = arguments.get("shuffle", True)
        if _batchable(arguments, "steps_per_epoch", "class_weight") and shuffle in (True, False):
            split = arguments.pop("validation_split", 0.0)
            if split and arguments.get("validation_data") is None:
                arguments["x"], arguments["y"], arguments["sample_weight"], arguments["validation_data"] = _split(
                    arguments, split)
            _batch_examples(arguments, batch_size, shuffle)
            arguments["shuffle"] = False  # the batches are shuffled already
        validation = dict(zip(("x", "y", "sample_weight"),
                              keras.utils.unpack_x_y_sample_weight(arguments.get("validation_data")), strict=True))
        if _batchable(validation) and arguments.get("validation_steps") is None:
            _batch_examples(validation, arguments.pop("validation_batch_size", None) or batch_size, shuffle=False)
            arguments["validation_data"] = validation["x"]
        return super().fit(*call.args, **call.kwargs)

    def evaluate(self, *args, **kwargs):
        call = inspect.signature(super().evaluate).bind(*args, **kwargs)
        if not is_fits_validation(kwargs):
            _batch_in_order(call.arguments)
        return super().evaluate(*call.args, **call.kwargs)

    def predict(self, *args, **kwargs):
        call = inspect.signature(super().predict).bind(*args, **kwargs)
        _batch_in_order(call.arguments)
        return super().predict(*call.args, **call.kwargs)


def _batch_in_order(arguments):
    """`_batch_examples` for `evaluate` and `predict`: unshuffled, and only what `_batchable` takes without `steps`."""
    if _batchable(arguments, "steps"):
        _batch_examples(arguments, arguments.get("batch_size") or KERAS_BATCH_SIZE, shuffle=False)


def _batch_examples(arguments, batch_size, shuffle):
    """Puts the `array_batches` of the `x`, `y` and `sample_weight` of `arguments` in their place, as `x`."""
    x, y, sample_weight = (arguments.pop(name, None) for name in ("x", "y", "sample_weight"))
    arguments.pop("batch_size", None)
    arrays = x if y is None else tuple(value for value in (x, y, sample_weight) if value is not None)
    arguments["x"] = array_batches(arrays, batch_size, shuffle)


def _batchable(arguments, *keras_only):
    """Whether `arguments` hold an array `x`, arrays or None as `y` and `sample_weight` (`sample_weight` only with
    `y`), and none of `keras_only`, the arguments that leave the batching to Keras."""
    x, y, sample_weight = (arguments.get(name) for name in ("x", "y", "sample_weight"))
    return (
        _is_array(x)
        and all(value is None or _is_array(value) for value in (y, sample_weight))
        and (sample_weight is None or y is not None)
        and all(arguments.get(name) is None for name in keras_only)
    )


def _is_array(value):
    """Whether `value` is a NumPy array or a tensor of examples (at least one axis)."""
    return isinstance(value, (np.ndarray, tf.Tensor)) and len(value.shape) > 0


def _split(arguments, validation_split):
    """`(x, y, sample_weight, validation_data)`: the first examples of `arguments`' arrays, and the last as
    `validation_data`, as Keras' `validation_split` splits them."""
    arrays = [arguments.get(name) for name in ("x", "y", "sample_weight")]
    count = len(arrays[0])
    split_at = math.floor(count * (1.0 - validation_split))
    if split_at in (0, count):
        raise ValueError(
            f"Training data contains {count} samples, which is not sufficient to split it into a validation and "
            f"training set as specified by `validation_split={validation_split}`. Either provide more data, or a "
            "different value for the `validation_split` argument."
        )
    validation = tuple(array[split_at:] for array in arrays if array is not None)
    return (*(None if array is None else array[:split_at] for array in arrays), validation)
