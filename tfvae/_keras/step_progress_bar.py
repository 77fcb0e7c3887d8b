"""`StepProgressBar`: Keras' progress bar, counting the train steps that ran."""

import keras


class StepProgressBar(keras.callbacks.ProgbarLogger):
    """`keras.callbacks.ProgbarLogger` whose count is the number of train steps run in the epoch.

    Under `steps_per_execution = k`, Keras tells callbacks the last step of each call into TensorFlow as
    `first + k - 1`, whether or not the data lasted that long: on data of unknown size (TFRecords, a filtered
    dataset) an epoch of 11 steps at 10 steps per call ended at `20/20`, and every later epoch counted to 20. This
    bar counts the steps the optimizer took since the epoch began (`optimizer.iterations`), so it ends at `11/11`.
    `fit` adds it in place of Keras' own bar (`verbose` not 0, no `ProgbarLogger` given).
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start_step = int(self.model.optimizer.iterations)
        super().on_epoch_begin(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(int(self.model.optimizer.iterations) - self.epoch_start_step - 1, logs)
