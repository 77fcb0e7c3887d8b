"""Keras callbacks that show a VAE's latent space and samples in TensorBoard, and guard a run (NaN loss, Ctrl-C).

Keras' own `keras.callbacks.TensorBoard` writes the per-epoch `epoch_elbo`, `epoch_kl`, `epoch_reconstruction`,
`epoch_loss` and `epoch_learning_rate` scalars; these callbacks add what only a VAE has. They run eagerly between
epochs, outside the (possibly XLA-compiled) train step, where `tf.summary` cannot run.
"""

import os
import signal
import threading

import keras
import numpy as np
import tensorflow as tf

from tfvae import diagnostics
from tfvae.run import summary_figure


class LatentDiagnostics(keras.callbacks.Callback):
    """Per epoch, for fixed train and validation examples: KL per latent channel, active units, posterior histograms.

    Writes to `<log_dir>/train` and `<log_dir>/validation`, beside Keras' TensorBoard scalars:
    `kl_per_channel/<j>`, `active_units`, histograms `posterior/mean` and `posterior/logvar`, and in `train` the
    current KL weight `kl_weight`.

    Args:
        log_dir: the TensorBoard log directory of the run.
        train_examples: a batch of training examples (a few hundred to a few thousand), as the model takes them.
        validation_examples: the same from the validation data, or None.
    """

    def __init__(self, log_dir, train_examples, validation_examples=None):
        super().__init__()
        self.splits = {"train": train_examples}
        if validation_examples is not None:
            self.splits["validation"] = validation_examples
        self.writers = {name: tf.summary.create_file_writer(os.path.join(log_dir, name)) for name in self.splits}

    def on_epoch_end(self, epoch, logs=None):
        for name, examples in self.splits.items():
            posterior = self.model.encode(examples)
            with self.writers[name].as_default(step=epoch):
                tf.summary.scalar("active_units", diagnostics.active_units(posterior.mean()))
                for channel, kl in enumerate(diagnostics.kl_per_channel(posterior)):
                    tf.summary.scalar(f"kl_per_channel/{channel}", kl)
                tf.summary.histogram("posterior/mean", posterior.mean())
                tf.summary.histogram("posterior/logvar", posterior.logvar)
                if name == "train":
                    tf.summary.scalar("kl_weight", self.model.kl_weight())
            self.writers[name].flush()

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()


class SampleImages(keras.callbacks.Callback):
    """Every `every_n_epochs` epochs (and after the last): images of reconstructions, prior samples and, for a 2-D
    latent, the learned manifold (AEVB figures 4 and 5).

    Writes to `<log_dir>/images`: `reconstructions` (inputs in the top row, their reconstructions below),
    `prior_samples` (E[x|z] for fixed z ~ N(0, I)) and `manifold` (E[x|z] over a grid of z, 2-D latents only).
    The model needs `reconstruct(x)`; with `num_samples` above 0 also `latent_shape()` and `generate(z)`.

    Args:
        log_dir: the TensorBoard log directory of the run.
        examples: a few examples (8 is plenty), as the model takes them.
        image_shape: `(height, width, channels)` to show flat examples as images.
        every_n_epochs: how often to write.
        num_samples: how many prior samples to show; 0 for none (reconstructions only).
        seed: seeds the fixed prior samples.
    """

    def __init__(self, log_dir, examples, image_shape, every_n_epochs=5, num_samples=32, seed=0):
        super().__init__()
        self.examples = examples
        self.image_shape = tuple(image_shape)
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.seed = seed
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "images"))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self.write(epoch)

    def on_train_end(self, logs=None):
        if self.params and (self.params.get("epochs", 0) % self.every_n_epochs):
            self.write(self.params["epochs"] - 1)
        self.writer.close()

    def write(self, epoch):
        columns = len(self.examples)
        pairs = np.concatenate([self.as_images(self.examples), self.as_images(self.model.reconstruct(self.examples))])
        with self.writer.as_default(step=epoch):
            tf.summary.image("reconstructions", summary_figure.tile(pairs, columns)[np.newaxis])
            if self.num_samples:
                self.write_samples()
        self.writer.flush()

    def write_samples(self):
        latent_shape = self.model.latent_shape()
        noise = np.random.default_rng(self.seed).standard_normal((self.num_samples, *latent_shape))
        samples = self.as_images(self.model.generate(noise.astype(np.float32)))
        tf.summary.image("prior_samples", summary_figure.tile(samples, 8)[np.newaxis])
        if latent_shape == (2,):
            grid = self.as_images(self.model.generate(summary_figure.manifold_latents(12)))
            tf.summary.image("manifold", summary_figure.tile(grid, 12)[np.newaxis])

    def as_images(self, values):
        return summary_figure.as_images(values, self.image_shape)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, before anything of that epoch is saved.

    It raises `NonFiniteLossError` from the batch, so the epoch never ends: the backup keeps the state of the last
    finished epoch (the same command resumes from it) and `best.keras` the best model so far (see
    `resumable_run.ResumableRun`). Keep it first in the callback list.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not np.isfinite(loss):
            raise NonFiniteLossError(
                f"Training stopped: the loss became {loss} in epoch {self.epoch + 1}, batch {batch + 1}. Nothing of "
                "this epoch was saved; the last finished epoch's state is kept for resuming, and the best model so far "
                "in best.keras. Usual causes: a learning rate too high (try a smaller one), or NaN or extreme values "
                "in the data."
            )


class RaiseOnInterrupt(keras.callbacks.Callback):
    """Makes Ctrl-C (SIGINT) stop `fit` even when its `KeyboardInterrupt` lands where Python drops exceptions.

    Python raises `KeyboardInterrupt` wherever the main thread is when SIGINT arrives. Inside a destructor (such as a
    finished `tf.data` iterator's `__del__` at the end of an epoch) the exception is printed and dropped, and training
    went on. Used as a context manager around `fit` (in the main thread), SIGINT also sets `interrupted`, and this
    callback raises `KeyboardInterrupt` again at the end of the next batch.
    """

    interrupted = False
    _previous_handler = None

    def __enter__(self):
        self.interrupted = False
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc_info):
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

    def _on_interrupt(self, signal_number, frame):
        self.interrupted = True
        raise KeyboardInterrupt

    def on_train_batch_end(self, batch, logs=None):
        if self.interrupted:
            raise KeyboardInterrupt

    on_test_batch_end = on_train_batch_end
