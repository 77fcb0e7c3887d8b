"""How Keras runs the steps of tfvae's trainable models (`VAE`, `AutoencoderKLTrainer`): what both need changed."""

import contextlib
import functools
import inspect
import math

import keras
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.eager import context


class CompiledSteps:
    """A `keras.Model` mixin for the functions `fit` and `evaluate` run: validation as a graph and, with XLA, no
    grappler.

    Validation in `fit`, and `evaluate`, run as a TensorFlow graph even when XLA is on. XLA compiles anew for every
    batch size, and a validation split rarely divides into whole batches: its last batch cost a second
    compilation, seconds in the first epoch. A graph runs batches of any size from one trace.

    When the train step is compiled with XLA (`jit_compile=True`; `"auto"` chooses it unless a `tf.distribute`
    strategy is active), the train function runs without TensorFlow's graph optimizer (grappler, see
    `graph_optimizer_off`), and so does the test function on a machine without GPUs. Grappler optimizes each function
    graph when the graph is first called; what is left for it in the train function is Keras' loop over
    `steps_per_execution` batches around the XLA step. For the default `tfvae train` it cost 0.06-0.09 s of the
    first train call and 0.05 s of the first validation (`scripts/benchmark_first_epochs.py`, 5 alternating pairs,
    2 CPU cores), and on CPU the validation graphs ran no slower without it (the convolutional VAE's 7.0-7.6 ms a
    batch against 7.9-8.5 ms). On a GPU its layout changes and fused kernels may speed the validation graph up, so
    it keeps them there.

    A call given its number of steps (`fit`'s `steps_per_epoch` and, with validation data, `validation_steps`;
    `evaluate`'s and `predict`'s `steps`) runs exactly that many: Keras 3 runs whole groups of `steps_per_execution`
    steps and so, on data that outlasts them, `fit(..., steps_per_epoch=13)` trained 20 steps an epoch at 10 steps
    per call, `evaluate(..., steps=3)` averaged 10 batches and `predict` returned 10. Such a call runs the largest
    number of steps per call up to `steps_per_execution` that divides every count given (1 when they share no
    divisor with it), with functions traced for it; the functions of the compiled count are kept for the calls
    after, and for the rest of a `fit` whose callback made such a call.

    Under a `tf.distribute` strategy a built model skips Keras' symbolic build, which averaged a batch across
    replicas each time `fit`, `evaluate` or `predict` started and failed when their batches differed in size (see
    `_maybe_symbolic_build`).
    """

    def fit(self, *args, **kwargs):
        arguments = bound_arguments(keras.Model.fit, self, args, kwargs)
        validated = arguments.get("validation_data") is not None or arguments.get("validation_split")
        with self._whole_executions(arguments.get("steps_per_epoch"),
                                    arguments.get("validation_steps") if validated else None):
            return super().fit(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        if is_fits_validation(kwargs):  # `fit` chose for its validation steps too
            return super().evaluate(*args, **kwargs)
        with self._whole_executions(bound_arguments(keras.Model.evaluate, self, args, kwargs).get("steps")):
            return super().evaluate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        with self._whole_executions(bound_arguments(keras.Model.predict, self, args, kwargs).get("steps")):
            return super().predict(*args, **kwargs)

    @contextlib.contextmanager
    def _whole_executions(self, *step_counts):
        """Inside, `steps_per_execution` divides each of `step_counts` that is given (not None), and the functions
        are traced for it; afterwards the count and the functions are those from before."""
        counts = [count for count in step_counts if count]
        compiled = self.steps_per_execution
        steps = compiled if not counts else max(
            divisor for divisor in range(1, compiled + 1) if math.gcd(*counts) % divisor == 0)
        if steps == compiled:
            yield
            return
        functions = self.train_function, self.test_function, self.predict_function
        self.steps_per_execution = steps
        self.train_function = self.test_function = self.predict_function = None
        try:
            yield
        finally:
            if self.steps_per_execution == steps:  # not compiled again meanwhile
                self.steps_per_execution = compiled
                self.train_function, self.test_function, self.predict_function = functions

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 under a `tf.distribute` strategy reads a batch at the start of `fit`, `evaluate` and `predict`
        # to build what is not built yet, and first averages the batch across workers: an all-reduce of the images
        # themselves, which fails when two workers' batches differ in size (the last batch of a validation split that
        # each worker reads from its own files). With everything built there is nothing to build from it.
        if not _built_for_steps(self):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force)
        if self.jit_compile:
            self.train_function = _called_without_grappler(self.train_function)
        return self.train_function

    def make_test_function(self, force=False):
        if self.test_function is not None and not force:
            return self.test_function
        jit_compile = self.jit_compile
        self.jit_compile = False
        try:
            super().make_test_function(force)
        finally:
            self.jit_compile = jit_compile
        if jit_compile and not tf.config.list_logical_devices("GPU"):
            self.test_function = _called_without_grappler(self.test_function)
        return self.test_function


@contextlib.contextmanager
def graph_optimizer_off():
    """Inside, a TensorFlow function called for the first time by this thread is set up without grappler.

    TensorFlow optimizes a function graph with grappler when the graph is first called with a given set of call
    options, which hold the graph optimizer's settings; these are the calling thread's own, and only they change
    here, for as long as the context lasts (other threads, and this one afterwards, keep theirs). A function first
    called inside must be called inside again to reuse that set-up: called outside, it is set up anew, with grappler.
    """
    thread_context = context.context()
    options = thread_context.function_call_options
    config = config_pb2.ConfigProto.FromString(options.config_proto_serialized)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    thread_context.function_call_options = context.FunctionCallOptions(options.executor_type, config)
    try:
        yield
    finally:
        thread_context.function_call_options = options


def _called_without_grappler(function):
    """`function`, each call of it inside `graph_optimizer_off`."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        with graph_optimizer_off():
            return function(*args, **kwargs)

    return call


def _built_for_steps(model):
    """Whether Keras' symbolic build would build nothing: every layer, the compiled metrics and loss, the optimizer."""
    parts = (getattr(model, "_compile_metrics", None), getattr(model, "_compile_loss", None), model.optimizer)
    return all(layer.built for layer in model._flatten_layers()) and all(part is None or part.built for part in parts)


def bound_arguments(method, model, args, kwargs):
    """The arguments of a call `model.method(*args, **kwargs)` of a `keras.Model` method, by name."""
    return inspect.signature(method).bind(model, *args, **kwargs).arguments


def is_fits_validation(evaluate_kwargs):
    """Whether a call of `evaluate` with these keyword arguments is `fit`'s own validation at an epoch's end.

    Keras' `fit` marks it `_use_cached_eval_dataset=True`: it reads the validation iterator `fit` made when it started,
    whatever `x` the call names.
    """
    return bool(evaluate_kwargs.get("_use_cached_eval_dataset"))


def reducible_across_workers(strategy, logs):
    """`logs` with an axis on each value when `strategy` trains on several workers.

    Keras 3 reduces a step's outputs under a multi-worker strategy with `strategy.reduce("MEAN", v, axis=0)`, which
    fails on scalars (tensorflow/tensorflow#72388); a `[1]` value reduces to the same scalar.
    """
    if not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}
