"""Keras' and TensorFlow's private state, read or set in one place.

Each function says what it works around, the versions it was checked on (TensorFlow 2.18-2.21, Keras 3.8-3.15.1
unless it says otherwise) and what happens where the private name is absent: each has a fallback that stays correct.
"""

import tensorflow as tf


def is_fits_validation(evaluate_kwargs):
    """Whether a call of `evaluate` with these keyword arguments is `fit`'s own validation at an epoch's end.

    PRIVATE: Keras' `fit` passes `_use_cached_eval_dataset=True`: it reads the validation iterator `fit` made when it
    started, whatever `x` the call names. Absent, `fit`'s validation is checked and batched again as a user's
    `evaluate` would be: correct, one batch read more per epoch.
    """
    return bool(evaluate_kwargs.get("_use_cached_eval_dataset"))


def reducible_across_workers(strategy, logs):
    """`logs` with an axis on each value when `strategy` trains on several workers.

    Keras 3 reduces a step's outputs under a multi-worker strategy with `strategy.reduce("MEAN", v, axis=0)`, which
    fails on scalars (tensorflow/tensorflow#72388); a `[1]` value reduces to the same scalar. PRIVATE: TensorFlow's
    `strategy.extended._in_multi_worker_mode()`; absent, the logs stay as they are (correct on one worker).
    """
    if not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def built_for_steps(model):
    """Whether Keras' symbolic build would build nothing: every layer, the compiled metrics and loss, the optimizer.

    A `TrainableModel` then skips that build (`Model._maybe_symbolic_build`, which it overrides). Under a
    `tf.distribute` strategy Keras 3.15 reads a batch at the start of `fit`, `evaluate` and `predict` to build what is
    not built yet, and first averages the batch across workers: an all-reduce of the images themselves, which fails
    when two workers' batches differ in size (the last batch of a validation split each reads from its own files).
    PRIVATE: `Model._flatten_layers`, `_compile_metrics`, `_compile_loss`; absent, the model counts as not built and
    Keras builds it as usual.
    """
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is None:
        return False
    parts = (getattr(model, "_compile_metrics", None), getattr(model, "_compile_loss", None), model.optimizer)
    return all(layer.built for layer in flatten()) and all(part is None or part.built for part in parts)


def set_initial_epoch(model, epoch):
    """Makes Keras' next `fit` of `model` start at `epoch` (None: where the `fit` call says), as Keras'
    `BackupAndRestore` does.

    PRIVATE: Keras' `Model._initial_epoch`, read by `fit` (Keras 3.8-3.15.1); setting it where Keras does not read it
    would restart at epoch 0, so its absence is an error here rather than a silent restart.
    """
    if not hasattr(model, "_initial_epoch"):
        raise RuntimeError("This Keras version does not resume at an epoch through Model._initial_epoch.")
    model._initial_epoch = epoch

