"""NumPy arrays given to `fit`, `evaluate` and `predict` of tfvae's models, batched by tfvae's pipeline."""

import inspect
import math

import numpy as np
import tensorflow as tf

from tfvae.data import array_batches

DEFAULT_BATCH_SIZE = 32  # Keras' batch size for arrays when none is given


class ArrayInputs:
    """A `keras.Model` mixin: arrays given to `fit`, `evaluate` and `predict` go in as `tfvae.data` batches.

    Keras batches arrays in a `tf.data` pipeline of its own, which tf.data's autotuner watches; `fit` deletes the
    pipeline's iterator at every epoch's start, and deleting an autotuned iterator sometimes waits for the
    autotuner's thread to wake up (see `tfvae.data.pipeline`). For the README's library call (`vae.fit(x,
    batch_size=100)` on 10,000 examples, 784-500-20 MLPs, 2 cores; `scripts/benchmark_fit_arrays.py --rounds 5`,
    each path in its own processes) Keras' batching started 19 of 45 epochs 0.2-0.27 s late and its median epoch
    took 0.60 s; these batches started none late and took 0.40 s (1.50x as fast).

    The batches are Keras' own: `batch_size` examples (32 unless given), the last batch smaller, reshuffled every
    epoch unless `shuffle=False`; `y` and `sample_weight` go with `x`; `validation_split` takes the last examples,
    before shuffling; `validation_data` may be arrays too, batched by `validation_batch_size` or `batch_size`;
    floating-point arrays become `floatx`. Anything else goes to Keras as given: datasets, generators, dicts,
    `steps_per_epoch`/`steps`/`validation_steps`, `class_weight`, `shuffle="batch"`, or `sample_weight` without `y`.
    """

    def fit(self, *args, **kwargs):
        call = inspect.signature(super().fit).bind(*args, **kwargs)
        arguments = call.arguments
        batch_size = arguments.get("batch_size") or DEFAULT_BATCH_SIZE
        shuffle = arguments.get("shuffle", True)
        if _batchable(arguments, "steps_per_epoch", "class_weight") and shuffle in (True, False):
            split = arguments.pop("validation_split", 0.0)
            if split and arguments.get("validation_data") is None:
                arguments["x"], arguments["y"], arguments["sample_weight"], arguments["validation_data"] = _split(
                    arguments, split)
            _batch_examples(arguments, batch_size, shuffle)
            arguments["shuffle"] = False  # the batches are shuffled already
        validation = _unpacked(arguments.get("validation_data"))
        if validation is not None and _batchable(validation) and arguments.get("validation_steps") is None:
            _batch_examples(validation, arguments.pop("validation_batch_size", None) or batch_size, shuffle=False)
            arguments["validation_data"] = validation["x"]
        return super().fit(*call.args, **call.kwargs)

    def evaluate(self, *args, **kwargs):
        call = inspect.signature(super().evaluate).bind(*args, **kwargs)
        if _batchable(call.arguments, "steps"):
            _batch_examples(call.arguments, call.arguments.get("batch_size") or DEFAULT_BATCH_SIZE, shuffle=False)
        return super().evaluate(*call.args, **call.kwargs)

    def predict(self, *args, **kwargs):
        call = inspect.signature(super().predict).bind(*args, **kwargs)
        if _batchable(call.arguments, "steps"):
            _batch_examples(call.arguments, call.arguments.get("batch_size") or DEFAULT_BATCH_SIZE, shuffle=False)
        return super().predict(*call.args, **call.kwargs)


def _batch_examples(arguments, batch_size, shuffle):
    """Replaces `x`, `y`, `sample_weight` and `batch_size` of `arguments` by `x`, their `array_batches`."""
    x, y, sample_weight = (arguments.pop(name, None) for name in ("x", "y", "sample_weight"))
    arguments.pop("batch_size", None)
    arrays = x if y is None else tuple(value for value in (x, y, sample_weight) if value is not None)
    arguments["x"] = array_batches(arrays, batch_size, shuffle)


def _batchable(arguments, *keras_only):
    """Whether `arguments` hold an array `x`, `y` and `sample_weight` arrays or None (`y` given with
    `sample_weight`), and none of `keras_only`, the arguments only Keras' own batching of arrays takes."""
    x, y, sample_weight = (arguments.get(name) for name in ("x", "y", "sample_weight"))
    return (
        _is_array(x)
        and all(value is None or _is_array(value) for value in (y, sample_weight))
        and (sample_weight is None or y is not None)
        and all(arguments.get(name) is None for name in keras_only)
    )


def _is_array(value):
    return isinstance(value, (np.ndarray, tf.Tensor))


def _unpacked(validation_data):
    """`{"x", "y", "sample_weight"}` of `validation_data` given as an array or a tuple of up to three, else None."""
    if _is_array(validation_data):
        validation_data = (validation_data,)
    if isinstance(validation_data, (tuple, list)) and 1 <= len(validation_data) <= 3:
        return dict(zip(("x", "y", "sample_weight")[:len(validation_data)], validation_data, strict=True))
    return None


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
