"""`TrainableModel`: the one place where tfvae changes how Keras runs `fit`, `evaluate` and `predict`."""

import contextlib
import math

import keras
import numpy as np
import tensorflow as tf

from tfvae._keras import keras_state
from tfvae._keras.step_progress_bar import StepProgressBar
from tfvae.data import EpochCounter, array_batches
from tfvae.input_checks import InputError

KERAS_BATCH_SIZE = 32  # the batch size Keras gives arrays when none is given


class TrainableModel(keras.Model):
    """The base class of tfvae's trainable models (`tfvae.VAE`, `tfvae.autoencoder_kl.AutoencoderKLTrainer`).

    A subclass defines `check_data(data, role)`. Then `fit`, `evaluate` and `predict` each, before Keras runs:

    1. **check the data** with `check_data` (shape, dtype, values; see `tfvae.input_checks`), so that bad input
       fails at once with a line that names the fix. `fit`'s validation data is checked when `fit` starts, not
       again at each epoch's end. Per-example weights (`sample_weight`, `class_weight`, `(x, y, w)` datasets) are
       refused: the models' losses are their own objectives averaged over the batch, which weights would not enter.
    2. **batch in-memory arrays** with `tfvae.data.array_batches`: the batches Keras would make (`batch_size`
       examples, 32 unless given, reshuffled every epoch unless `shuffle=False`, each epoch's order drawn from the
       global seed and `fit`'s epoch so that a `fit` resumed by `initial_epoch` or `BackupAndRestore` shuffles as
       the uninterrupted one; `validation_split` takes the last examples), but without tf.data's autotuner, whose
       iterator Keras deletes at every epoch's start and which then sometimes waits for its thread. Datasets,
       generators and `PyDataset`s go to Keras as they are, and so do arrays given with a number of steps.
    3. **count the steps that ran** in the progress bar (`StepProgressBar`), not whole calls of
       `steps_per_execution` steps, which on data of unknown size counted 20 steps for 11.
    4. **run exactly the steps asked for**: Keras runs whole groups of `steps_per_execution` steps, so on data that
       outlasts them `fit(..., steps_per_epoch=13)` would train 20 steps an epoch at 10 steps per call. A call given
       its number of steps (`fit`'s `steps_per_epoch` and, with validation data, `validation_steps`; `evaluate`'s and
       `predict`'s `steps`) runs the largest number of steps per call up to `steps_per_execution` that divides every
       count given, with functions traced for it; the functions of the compiled count are kept for the calls after.

    `compile` takes no `loss` (the models add their own with `add_loss` or in `train_step`) and chooses
    `jit_compile="auto"` as Keras does: XLA where a GPU or TPU is present and no `tf.distribute` strategy is
    active, a TensorFlow graph on CPU-only machines. Validation and `evaluate` always run as a graph: XLA compiles
    anew for every batch size, and a validation split rarely divides into whole batches.

    Under a multi-worker strategy the step's logs get an axis for Keras' cross-worker reduction, and a built model
    skips Keras' symbolic build at the start of `fit`, `evaluate` and `predict` (see `tfvae._keras.keras_state`).
    """

    # Train steps per call into TensorFlow for `compile(steps_per_execution="auto")`.
    STEPS_PER_EXECUTION = 1

    def check_data(self, data, role="x"):
        """Raises `tfvae.InputError` when `data` does not fit the model; `role` names it in the message."""
        raise NotImplementedError

    def compile(self, optimizer="adam", loss=None, jit_compile="auto", steps_per_execution="auto", **kwargs):
        """`keras.Model.compile`, with `jit_compile` and `steps_per_execution` chosen as the class says.

        Args:
            optimizer: the optimizer, as Keras takes it.
            loss: must be None: the model's loss is its own objective.
            jit_compile: `"auto"` (XLA where an accelerator is present and no strategy is active), True or False.
            steps_per_execution: `"auto"` (the class's `STEPS_PER_EXECUTION`) or an int.
            **kwargs: passed to `keras.Model.compile` (`metrics`, `run_eagerly`, ...).
        """
        if loss is not None:
            raise ValueError(
                f"{type(self).__name__} trains on its own objective (the negative ELBO for a VAE), so compile takes "
                f"no loss; got loss={loss!r}. Track other quantities with metrics=[...] instead."
            )
        if jit_compile == "auto":
            jit_compile = accelerator_present() and not tf.distribute.has_strategy()
        if steps_per_execution == "auto":
            steps_per_execution = self.STEPS_PER_EXECUTION
        super().compile(optimizer=optimizer, jit_compile=jit_compile, steps_per_execution=steps_per_execution,
                        **kwargs)
        if self.built:
            # Keras builds the optimizer in `fit` only for a model it builds there: the optimizer would then create
            # its slots while the train step is traced, and TensorFlow traces such a function twice.
            self.build_optimizers()

    def build_optimizers(self):
        """Creates the optimizer's variables for the trainable weights (before a checkpoint is restored)."""
        self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        weighted_validation = isinstance(validation_data, (tuple, list)) and len(validation_data) == 3
        _refuse_weights(sample_weight=sample_weight, class_weight=class_weight,
                        validation_sample_weight=validation_data[2] if weighted_validation else None)
        self.check_data(x)
        self.check_data(validation_data, role="validation_data")
        if _is_array(x) and (y is None or _is_array(y)) and steps_per_epoch is None and shuffle in (True, False):
            if validation_split and validation_data is None:
                (x, y), validation_data = _split((x, y), validation_split)
            validation_split = 0.0
            # Each epoch's order is drawn for `fit`'s epoch, the one `initial_epoch` or Keras' `BackupAndRestore`
            # starts from included, so a resumed `fit` shuffles as the uninterrupted one did.
            data_epochs = EpochCounter()
            callbacks = _with_callback(callbacks, data_epochs)
            x, y = array_batches(_examples(x, y), batch_size or KERAS_BATCH_SIZE, shuffle, data_epochs), None
            validation_batch_size = validation_batch_size or batch_size
            batch_size, shuffle = None, False  # the batches are reshuffled every epoch already
        if _holds_arrays(validation_data) and validation_steps is None:
            examples = _examples(*keras.utils.unpack_x_y_sample_weight(validation_data)[:2])
            validation_data = array_batches(examples, validation_batch_size or KERAS_BATCH_SIZE, shuffle=False)
            validation_batch_size = None
        if verbose != 0 and not isinstance(callbacks, keras.callbacks.CallbackList) and not any(
                isinstance(callback, keras.callbacks.ProgbarLogger) for callback in callbacks or []):
            callbacks = _with_callback(callbacks, StepProgressBar())
        validated = validation_data is not None or validation_split
        with self._whole_executions(steps_per_epoch, validation_steps if validated else None):
            return super().fit(
                x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
                initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                validation_batch_size=validation_batch_size, validation_freq=validation_freq,
            )

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, **kwargs):
        if keras_state.is_fits_validation(kwargs):  # `fit` checked, batched and chose the steps already
            return super().evaluate(x, y, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks,
                                    return_dict=return_dict, **kwargs)
        _refuse_weights(sample_weight=sample_weight)
        self.check_data(x)
        x, y, batch_size = _batched_in_order(x, y, batch_size, steps)
        with self._whole_executions(steps):
            return super().evaluate(x, y, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks,
                                    return_dict=return_dict, **kwargs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        self.check_data(x)
        x, _, batch_size = _batched_in_order(x, None, batch_size, steps)
        with self._whole_executions(steps):
            return super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)

    def make_test_function(self, force=False):
        if self.test_function is not None and not force:
            return self.test_function
        jit_compile = self.jit_compile
        self.jit_compile = False  # a graph runs batches of any size from one trace
        try:
            return super().make_test_function(force)
        finally:
            self.jit_compile = jit_compile

    def train_step(self, data):
        return keras_state.reducible_across_workers(self.distribute_strategy, super().train_step(data))

    def test_step(self, data):
        return keras_state.reducible_across_workers(self.distribute_strategy, super().test_step(data))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # PRIVATE: overrides Keras' `Model._maybe_symbolic_build` (Keras 3.8-3.15.1), see `keras_state.built_for_steps`;
        # a Keras without it never calls this, and builds as it does.
        if not keras_state.built_for_steps(self):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

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


def accelerator_present():
    """Whether TensorFlow sees a GPU or a TPU."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def _refuse_weights(**weights):
    given = [name for name, value in weights.items() if value is not None]
    if given:
        raise InputError(
            f"{' and '.join(given)} given, but tfvae's models weight every example alike: their loss is their own "
            "objective averaged over the batch. Repeat or subsample examples to change their weight."
        )


def _with_callback(callbacks, callback):
    """`callbacks` (None, a list or a `keras.callbacks.CallbackList`) with `callback` added at the end."""
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks.append(callback)
        return callbacks
    return [*(callbacks or []), callback]


def _batched_in_order(x, y, batch_size, steps):
    """`(x, y, batch_size)` for `evaluate` and `predict`: arrays without `steps` as unshuffled `array_batches`."""
    if not (_is_array(x) and (y is None or _is_array(y)) and steps is None):
        return x, y, batch_size
    return array_batches(_examples(x, y), batch_size or KERAS_BATCH_SIZE, shuffle=False), None, None


def _examples(x, y):
    return x if y is None else (x, y)


def _is_array(value):
    """Whether `value` is a NumPy array or a tensor of examples (at least one axis)."""
    return isinstance(value, (np.ndarray, tf.Tensor)) and len(value.shape) > 0


def _holds_arrays(validation_data):
    """Whether `validation_data` is an array or a tuple `(x,)`/`(x, y)` of arrays."""
    if _is_array(validation_data):
        return True
    return isinstance(validation_data, (tuple, list)) and 0 < len(validation_data) <= 2 and all(
        _is_array(value) for value in validation_data)


def _split(arrays, validation_split):
    """`(training, validation)`: the first examples of each of `arrays` (None stays None), and the last, as Keras'
    `validation_split` splits them."""
    count = len(arrays[0])
    split_at = math.floor(count * (1.0 - validation_split))
    if split_at in (0, count):
        raise ValueError(
            f"Training data contains {count} samples, which is not sufficient to split it into a validation and "
            f"training set as specified by `validation_split={validation_split}`. Either provide more data, or a "
            "different value for the `validation_split` argument."
        )
    training = tuple(None if array is None else array[:split_at] for array in arrays)
    validation = tuple(array[split_at:] for array in arrays if array is not None)
    return training, validation
