"""How Keras runs the steps of tfvae's trainable models (`VAE`, `AutoencoderKLTrainer`): what both need changed."""

import contextlib
import functools

import tensorflow as tf


class CompiledSteps:
    """A `keras.Model` mixin for the functions `fit` and `evaluate` run: validation as a graph, no grappler.

    Validation in `fit`, and `evaluate`, run as a TensorFlow graph even when XLA is on. XLA compiles anew for every
    batch size, and a validation split rarely divides into whole batches: its last batch cost a second
    compilation, seconds in the first epoch. A graph runs batches of any size from one trace.

    When the train step is compiled with XLA, the train and test functions skip TensorFlow's graph optimizer
    (grappler, see `graph_optimizer_off`). It optimizes each function graph when the graph is first called, and
    what is left for it there (Keras' loop over `steps_per_execution` batches around the XLA step, and the
    validation graph) ran no faster for it: validation of the convolutional VAE took 7.0-7.6 ms a batch without
    it against 7.9-8.5 ms with it. For the default `tfvae train` it cost about 0.06 s of the first train call and
    0.05 s of the first validation (`scripts/benchmark_first_epochs.py`, 5 alternating pairs). Without XLA (under
    a `tf.distribute` strategy, or `jit_compile=False`) grappler stays on.
    """

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force)
        if self.jit_compile:
            self.train_function = _graph_optimizer_off(self.train_function)
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
        if jit_compile:
            self.test_function = _graph_optimizer_off(self.test_function)
        return self.test_function


@contextlib.contextmanager
def graph_optimizer_off():
    """TensorFlow functions first called inside run without grappler, TensorFlow's graph optimizer.

    A function graph is optimized once, when it is first called, with the options of that moment; later calls
    reuse it. The option is the process's (`tf.config.optimizer.set_experimental_options`): a function another
    thread calls for the first time meanwhile skips grappler too.
    """
    was_off = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": was_off})


def _graph_optimizer_off(function):
    @functools.wraps(function)
    def call(*args, **kwargs):
        with graph_optimizer_off():
            return function(*args, **kwargs)

    return call


def reducible_across_workers(strategy, logs):
    """`logs` with an axis on each value when `strategy` trains on several workers.

    Keras 3 reduces a step's outputs under a multi-worker strategy with `strategy.reduce("MEAN", v, axis=0)`, which
    fails on scalars (tensorflow/tensorflow#72388); a `[1]` value reduces to the same scalar.
    """
    if not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}
