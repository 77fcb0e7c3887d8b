"""`EpochCounter`: the epoch a pipeline draws its shuffle order and binarization noise for.

A dataset's own seed generator (`reshuffle_each_iteration=True`, `Dataset.random(rerandomize_each_iteration=True)`)
draws anew for each iterator from a state that lives in the process only: a run resumed at epoch 5 in a new process
drew epoch 1's order and noise again, and its losses drifted from the uninterrupted run's. Draws indexed by epoch,
`stateless(seed, epoch)`, are the same in any process.
"""

import keras
import tensorflow as tf


class EpochCounter(keras.callbacks.Callback):
    """Numbers the passes over a dataset; as a callback of `fit`, keeps that number equal to `fit`'s epoch.

    Each pass of a pipeline (each iterator made from it: `fit` makes one per epoch, `repeat` one per repetition)
    reads the counter as its epoch, then advances it. Given to `fit` in `callbacks`, the counter is set to the epoch
    at each epoch's start, so a run resumed at epoch `n` draws what an uninterrupted run draws in epoch `n`,
    whatever passes were made before (Keras may read a batch to build a model). Give the training and the
    validation data a counter each.

    Example:

    ```python
    epochs = tfvae.data.EpochCounter()
    batches = tfvae.data.pipeline(images, 100, binarize=True, epochs=epochs)
    model.fit(batches, epochs=10, initial_epoch=5, callbacks=[epochs])  # epochs 5-9 as an uninterrupted run's
    ```
    """

    def __init__(self):
        super().__init__()
        with tf.device("CPU:0"):  # tf.data runs its functions on the CPU
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)

    def passes(self):
        """A dataset of one int64 scalar, the epoch of the pass that reads it; reading it advances the counter."""
        return tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(
            lambda _: self.epoch.assign_add(1, read_value=True) - 1)


def epoch_seed(seed, epoch):
    """The int64[2] seed of `epoch`'s draws for a pipeline seeded with `seed`: `stateless_fold_in([seed, 0], epoch)`."""
    return tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), epoch)
