"""How Keras runs the steps of tfvae's trainable models (`VAE`, `AutoencoderKLTrainer`): what both need changed."""

import threading

import tensorflow as tf


class GraphValidation:
    """A `keras.Model` mixin: validation in `fit`, and `evaluate`, run as a TensorFlow graph even when XLA is on.

    XLA compiles anew for every batch size, and a validation split rarely divides into whole batches: its last
    batch cost a second compilation, seconds in the first epoch. A graph runs batches of any size from one trace.

    With XLA on, `fit` on a `tf.data.Dataset` of validation data also prepares the validation function while the
    train step compiles: the first call of the train function runs in a worker thread, and once the train step is
    traced (the worker then compiles it, outside Python's lock), this thread traces and instantiates the validation
    function on an empty dataset of the same structure. Validation then starts at once at the end of the first epoch
    instead of spending its own tracing there (0.3 to 0.7 s of the first epoch of `tfvae train` on Frey Face in
    `scripts/benchmark_first_epochs.py`, against 0.02 s for a later validation).
    """

    _train_step_traced = None  # set by `train_step` while the first call of the train function traces it

    def fit(self, *args, **kwargs):
        validation_data = kwargs.get("validation_data")
        warm_up = isinstance(validation_data, tf.data.Dataset) and self.jit_compile and not tf.distribute.has_strategy()
        # Set past Keras' and TensorFlow's attribute tracking: the dataset is no part of the model.
        object.__setattr__(self, "_validation_warm_up", validation_data.take(0) if warm_up else None)
        try:
            return super().fit(*args, **kwargs)
        finally:
            object.__setattr__(self, "_validation_warm_up", None)

    def make_train_function(self, force=False):
        super().make_train_function(force)
        if getattr(self, "_validation_warm_up", None) is None:
            return self.train_function
        train_function = self.train_function

        def first_call(iterator):
            self.train_function = train_function
            return self._call_while_validation_warms_up(train_function, iterator)

        self.train_function = first_call
        return self.train_function

    def train_step(self, data):
        logs = super().train_step(data)
        if self._train_step_traced is not None:
            self._train_step_traced.set()
        return logs

    def make_test_function(self, force=False):
        jit_compile = self.jit_compile
        self.jit_compile = False
        try:
            return super().make_test_function(force)
        finally:
            self.jit_compile = jit_compile

    def _call_while_validation_warms_up(self, train_function, iterator):
        """`train_function(iterator)` in a worker thread; the validation function traced here meanwhile."""
        self._train_step_traced = threading.Event()
        outcome = {}

        def train():
            try:
                outcome["logs"] = train_function(iterator)
            except BaseException as error:  # raised again in the calling thread
                outcome["error"] = error
            finally:
                self._train_step_traced.set()  # also when a subclass's own train_step does not set it

        worker = threading.Thread(target=train, name="first train step", daemon=True)
        worker.start()
        try:
            self._train_step_traced.wait()
            self.make_test_function()
            try:
                self.test_function(iter(self._validation_warm_up))  # no batch: traces, runs no step
            except (StopIteration, tf.errors.OutOfRangeError):
                pass
            worker.join()
        finally:
            self._train_step_traced = None
        if "error" in outcome:
            raise outcome["error"]
        return outcome["logs"]


def reducible_across_workers(strategy, logs):
    """`logs` with an axis on each value when `strategy` trains on several workers.

    Keras 3 reduces a step's outputs under a multi-worker strategy with `strategy.reduce("MEAN", v, axis=0)`, which
    fails on scalars (tensorflow/tensorflow#72388); a `[1]` value reduces to the same scalar.
    """
    if not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}
