"""How Keras runs the steps of tfvae's trainable models (`VAE`, `AutoencoderKLTrainer`): what both need changed."""

import tensorflow as tf


class GraphValidation:
    """A `keras.Model` mixin: validation in `fit`, and `evaluate`, run as a TensorFlow graph even when XLA is on.

    XLA compiles anew for every batch size, and a validation split rarely divides into whole batches: its last
    batch cost a second compilation, seconds in the first epoch. A graph runs batches of any size from one trace.
    """

    def make_test_function(self, force=False):
        jit_compile = self.jit_compile
        self.jit_compile = False
        try:
            return super().make_test_function(force)
        finally:
            self.jit_compile = jit_compile


def reducible_across_workers(strategy, logs):
    """`logs` with an axis on each value when `strategy` trains on several workers.

    Keras 3 reduces a step's outputs under a multi-worker strategy with `strategy.reduce("MEAN", v, axis=0)`, which
    fails on scalars (tensorflow/tensorflow#72388); a `[1]` value reduces to the same scalar.
    """
    if not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}
