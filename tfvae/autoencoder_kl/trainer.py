"""`AutoencoderKLTrainer`: trains an `AutoencoderKL` (or an `AutoencoderKLCogVideoX` on clips) with `fit`, the
latent-diffusion objective and two optimizers."""

import keras
import tensorflow as tf

from tfvae import input_checks
from tfvae._keras import keras_state
from tfvae._keras.full_precision_mean import FullPrecisionMean
from tfvae._keras.trainable import TrainableModel
from tfvae.autoencoder_kl.objective import LatentDiffusionLoss, fold_frames, folded_shape


@keras.saving.register_keras_serializable(package="tfvae")
class AutoencoderKLTrainer(TrainableModel):
    """An autoencoder, its objective and an optional discriminator, trained by `fit` in one step per batch.

    Each train step, for a batch `x` of images in [0, 1] (what tfvae's data pipelines give; the autoencoder sees
    `2x - 1` in [-1, 1], as Stable Diffusion's VAE, and the losses are computed there, as in latent-diffusion):

    1. `q(z|x) = autoencoder.encode(x)`, `z ~ q(z|x)`, `x_hat = autoencoder.decode(z)`;
    2. the autoencoder's optimizer (`compile(optimizer=...)`) takes a step on
       `L_G = nll + w_KL * KL + lambda * f(step) * L_gen` over the autoencoder's weights and the objective's
       log-variance, where `lambda` (the adaptive weight) compares the gradients of `nll` and `L_gen` at the
       decoder's last kernel (see `LatentDiffusionLoss`);
    3. the discriminator's optimizer (`compile(discriminator_optimizer=...)`) takes a step on the hinge loss of
       `D(x)` against `D(stop_gradient(x_hat))`, times `f(step)`.

    `step` is the autoencoder optimizer's iteration count, so the discriminator start survives resuming. Every loss
    is a batch mean and is divided by the number of replicas before the gradient, the noise of `z` is the global
    batch's sliced per replica (`SeedState.sample_posterior`), and `lambda` is computed from the gradients averaged
    over the replicas, so under a `tf.distribute` strategy the step is one device's on the whole batch when the
    discriminator's BatchNorm takes global statistics (`PatchDiscriminator(synchronized=True)`). With each
    replica's own statistics the autoencoder's step is one device's until `discriminator_start` only: from then the
    gradient of `L_gen` passes through them. Without a discriminator, steps 2-3 reduce to `nll + w_KL * KL` and one
    optimizer.

    A video autoencoder (one with a `temporal_compression_ratio` `r`, such as `tfvae.AutoencoderKLCogVideoX`) trains
    the same way on clips `[n, T, H, W, C]` in [0, 1]: `nll` sums over every pixel of a clip, and the discriminator
    (a 2D one: `PatchDiscriminator`) and a perceptual loss see the clips' frames as a batch of `n T` images. The
    clips must have `T = 1 + 2 r k` frames (1, 9, 17, ..., 49 for `r = 4`), the lengths whose reconstruction has as
    many frames (see `AutoencoderKLCogVideoX.decode`).

    `fit` reports `loss` (`L_G`), `reconstruction` (the mean per-pixel error `r`), `nll`, `kl`, `logvar` and, with
    a discriminator, `generator_loss` (`L_gen`), `discriminator_loss` (the hinge loss, before `f`) and
    `adaptive_weight` (`lambda`). `evaluate` reports the first five at the posterior mode, and the discriminator's
    losses in inference mode.

    Args:
        autoencoder: a `tfvae.AutoencoderKL`, a `tfvae.AutoencoderKLCogVideoX`, or any Keras model with
            `encode(x) -> DiagonalGaussian`, `decode(z) -> images`, `sample_posterior(posterior) -> z` (a
            `tfvae.seeding.SeedState`: one draw per example, the same under a strategy as on one device) and a
            `decoder` whose last layer has a `kernel` (or wraps a convolution `conv` that has one).
        objective: a `LatentDiffusionLoss`; None for its defaults.
        discriminator: a `PatchDiscriminator` (or any Keras layer from images to logits), or None for no GAN.
            With a video autoencoder it judges every frame of a clip as an image.
        **kwargs: passed to `keras.Model`.
    """

    def __init__(self, autoencoder, objective=None, discriminator=None, **kwargs):
        super().__init__(**kwargs)
        self.autoencoder = autoencoder
        self.objective = LatentDiffusionLoss() if objective is None else objective
        self.discriminator = discriminator
        names = ["loss", "reconstruction", "nll", "kl", "logvar"]
        if discriminator is not None:
            names += ["generator_loss", "discriminator_loss", "adaptive_weight"]
        self.trackers = {name: FullPrecisionMean(name) for name in names}
        self.discriminator_optimizer = None

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def takes_clips(self):
        """Whether the autoencoder is a video one (it has a `temporal_compression_ratio`): examples are clips
        `[T, H, W, C]` rather than images `[H, W, C]`."""
        return getattr(self.autoencoder, "temporal_compression_ratio", None) is not None

    def build(self, input_shape):
        """Builds the autoencoder and the discriminator for images (or clips) of `input_shape`."""
        if not self.autoencoder.built:
            self.autoencoder.build(input_shape)
        if self.discriminator is not None and not self.discriminator.built:
            self.discriminator.build(folded_shape(input_shape))
        self.built = True

    def compile(self, optimizer="adam", discriminator_optimizer="adam", **kwargs):
        """`keras.Model.compile` with a second optimizer, for the discriminator, and tfvae's defaults
        (`TrainableModel.compile`: no `loss`; `jit_compile="auto"` is XLA where a GPU or TPU is present).

        Args:
            optimizer: the autoencoder's (and log-variance's) optimizer.
            discriminator_optimizer: the discriminator's optimizer (unused without a discriminator).
            **kwargs: passed to `TrainableModel.compile` (`jit_compile`, `steps_per_execution`, ...).
        """
        self.discriminator_optimizer = None
        if self.discriminator is not None:
            discriminator_optimizer = keras.optimizers.get(discriminator_optimizer)
            loss_scaled = isinstance(discriminator_optimizer, keras.optimizers.LossScaleOptimizer)  # a reloaded one
            if self.dtype_policy.name == "mixed_float16" and not loss_scaled:
                discriminator_optimizer = keras.optimizers.LossScaleOptimizer(discriminator_optimizer)
            self.discriminator_optimizer = discriminator_optimizer
        if not self.built:  # for images of any size; else `fit` would build one optimizer for every weight
            self.build((None,) * (4 if self.takes_clips else 3) + (self.autoencoder.in_channels,))
        super().compile(optimizer=optimizer, **kwargs)

    def build_optimizers(self):
        """Creates the optimizers' variables, each for the weights it trains (before restoring a checkpoint)."""
        self.optimizer.build(self.generator_variables)
        if self.discriminator_optimizer is not None:
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    @property
    def generator_variables(self):
        """What the autoencoder's optimizer trains: the autoencoder's weights and the objective's log-variance."""
        return self.autoencoder.trainable_variables + self.objective.trainable_variables

    def get_compile_config(self):
        config = super().get_compile_config()
        if config and self.discriminator_optimizer is not None:
            config["discriminator_optimizer"] = keras.saving.serialize_keras_object(self.discriminator_optimizer)
        return config

    def compile_from_config(self, config):
        """Recompiles a loaded trainer (Keras skips models whose `compile` is overridden unless this is defined)."""
        self.compile(**keras.saving.deserialize_keras_object(config))

    def check_data(self, data, role="x"):
        """Raises `tfvae.InputError` unless `data` holds images `[height, width, channels]` (clips `[frames, height,
        width, channels]` for a video autoencoder) with the autoencoder's channels, sides divisible by its
        downsampling factor, a frame count its reconstruction keeps, and finite values in [0, 1]. `fit`, `evaluate`
        and `predict` call it first (`TrainableModel`)."""
        example_shape = (None,) * (3 if self.takes_clips else 2) + (getattr(self.autoencoder, "in_channels", None),)
        kind = "clips" if self.takes_clips else "images"
        unit_interval = f"AutoencoderKLTrainer takes {kind} in [0, 1] (the autoencoder sees 2x - 1)"
        input_checks.check_data(data, example_shape, role=role, unit_interval=unit_interval)
        shape = input_checks.example_shape(data)
        factor = getattr(self.autoencoder, "downsampling_factor", 1)
        sides = shape[-3:-1]
        if any(side is not None and side % factor for side in sides):
            raise input_checks.InputError(
                f"{role} holds {kind} of {sides[0]}x{sides[1]} pixels, but the autoencoder downsamples them by "
                f"{factor}: height and width must be divisible by {factor}. Crop or resize them.")
        if self.takes_clips and shape and shape[0] is not None:
            self._check_clip_length(shape[0], role)

    def _check_clip_length(self, frames, role):
        """Raises `InputError` unless clips of `frames` frames decode to as many: `T = 1 + 2 r k`, so that `1 + (T -
        1) / r` latent frames are a whole odd number (an even `T'` decodes to `r T'` frames)."""
        ratio = self.autoencoder.temporal_compression_ratio
        if (frames - 1) % (2 * ratio):
            lengths = ", ".join(str(1 + 2 * ratio * k) for k in range(4))
            raise input_checks.InputError(
                f"{role} holds clips of {frames} frames, but the autoencoder (temporal_compression_ratio {ratio}) "
                f"reconstructs only clips of 1 + {2 * ratio}k frames ({lengths}, ...) with their own frame count: cut "
                "the videos into clips of such a length.")

    def call(self, x, training=None):
        """The reconstruction of `x` (images in [0, 1]) from a posterior sample."""
        _, x_hat = self.sampled_reconstruction(_as_model_range(x), training=training)
        return _as_data_range(x_hat)

    def sampled_reconstruction(self, x, training=None):
        """`(q(z|x), decode(z))` for one `z ~ q(z|x)`, with images in the autoencoder's range [-1, 1]."""
        posterior = self.autoencoder.encode(x, training=training)
        z = self.autoencoder.sample_posterior(posterior)
        return posterior, self.autoencoder.decode(z, training=training)

    def reconstruct(self, x):
        """The deterministic reconstruction of images `x` in [0, 1]: the decoded posterior mode, in [0, 1]."""
        x = _as_model_range(x)
        return _as_data_range(self.autoencoder.decode(self.autoencoder.encode(x).mode()))

    def train_step(self, data):
        x = _as_model_range(_images(data))
        factor = self.objective.discriminator_factor_at(self.optimizer.iterations)  # before the step counts
        with tf.GradientTape(persistent=self.discriminator is not None) as tape:
            posterior, x_hat = self.sampled_reconstruction(x, training=True)
            error = self.objective.reconstruction_error(x, x_hat)
            nll = self.objective.nll(error)
            kl = self.objective.kl(posterior)
            autoencoder_loss = nll + self.objective.kl_weight * kl
            if self.discriminator is not None:
                generator_loss = self.objective.generator_loss(self.discriminator(fold_frames(x_hat), training=True))
        logs = {"reconstruction": tf.reduce_mean(error), "nll": nll, "kl": kl, "logvar": self.objective.logvar}
        if self.discriminator is None:
            self._apply(self.optimizer, tape, [autoencoder_loss], [1.0], self.generator_variables)
            return self._update_metrics(loss=autoencoder_loss, **logs)

        kernel = self.decoder_kernel()
        gradients = [tape.gradient(nll, kernel), tape.gradient(generator_loss, kernel)]
        replicas = tf.distribute.get_replica_context()
        if replicas is not None and replicas.num_replicas_in_sync > 1:
            gradients = replicas.all_reduce("MEAN", gradients)  # the global batch's gradients: one weight for all
        weight = self.objective.adaptive_weight(*gradients)
        generator_weight = weight * factor
        self._apply(self.optimizer, tape, [autoencoder_loss, generator_loss], [1.0, generator_weight],
                    self.generator_variables)
        del tape
        with tf.GradientTape() as tape:
            discriminator_loss = self.discriminator_loss(x, tf.stop_gradient(x_hat), training=True)
            factored = factor * discriminator_loss
        self._apply(self.discriminator_optimizer, tape, [factored], [1.0], self.discriminator.trainable_variables)
        return self._update_metrics(
            loss=autoencoder_loss + generator_weight * generator_loss, generator_loss=generator_loss,
            discriminator_loss=discriminator_loss, adaptive_weight=weight, **logs,
        )

    def test_step(self, data):
        x = _as_model_range(_images(data))
        posterior = self.autoencoder.encode(x, training=False)
        x_hat = self.autoencoder.decode(posterior.mode(), training=False)
        error = self.objective.reconstruction_error(x, x_hat)
        nll, kl = self.objective.nll(error), self.objective.kl(posterior)
        logs = {"loss": nll + self.objective.kl_weight * kl, "reconstruction": tf.reduce_mean(error), "nll": nll,
                "kl": kl, "logvar": self.objective.logvar}
        if self.discriminator is not None:
            logs["generator_loss"] = self.objective.generator_loss(
                self.discriminator(fold_frames(x_hat), training=False))
            logs["discriminator_loss"] = self.discriminator_loss(x, x_hat, training=False)
        return self._update_metrics(**logs)

    def discriminator_loss(self, x, x_hat, training=None):
        """The hinge loss of the discriminator on real images `x` and reconstructions `x_hat` (range [-1, 1]); the
        frames of clips are judged as images."""
        logits_real = self.discriminator(fold_frames(x), training=training)
        logits_fake = self.discriminator(fold_frames(x_hat), training=training)
        return self.objective.discriminator_loss(logits_real, logits_fake)

    def decoder_kernel(self):
        """The kernel of the decoder's last layer, where the adaptive weight compares gradients: `conv_out.kernel`
        (`AutoencoderKL`), or the kernel of the convolution it wraps, `conv_out.conv.kernel` (the causal
        convolution of `AutoencoderKLCogVideoX`).

        Raises:
            ValueError: when the autoencoder's decoder has no last layer with a kernel.
        """
        decoder = getattr(self.autoencoder, "decoder", None)
        last = getattr(decoder, "conv_out", None) or (decoder.layers[-1] if getattr(decoder, "layers", None) else None)
        kernel = getattr(last, "kernel", None)
        if kernel is None:
            kernel = getattr(getattr(last, "conv", None), "kernel", None)
        if kernel is None:
            raise ValueError(
                "The adaptive generator weight needs the kernel of the decoder's last layer: give the autoencoder a "
                "`decoder` whose `conv_out` (or last layer) has a `kernel`, or train without a discriminator."
            )
        return kernel

    def _apply(self, optimizer, tape, losses, weights, variables):
        """One optimizer step on `sum_i weights[i] * losses[i]`, scaled for replicas and for loss scaling."""
        replica_scale = 1.0 / tf.distribute.get_strategy().num_replicas_in_sync
        output_gradients = [optimizer.scale_loss(tf.cast(weight, "float32") * replica_scale) for weight in weights]
        gradients = tape.gradient(losses, variables, output_gradients=output_gradients)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))

    def _update_metrics(self, **values):
        """Updates the trackers of `values`; returns their results as the step's logs."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        logs = {name: self.trackers[name].result() for name in values}
        return keras_state.reducible_across_workers(self.distribute_strategy, logs)

    def get_config(self):
        return {
            **super().get_config(),
            "autoencoder": keras.saving.serialize_keras_object(self.autoencoder),
            "objective": keras.saving.serialize_keras_object(self.objective),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("autoencoder", "objective", "discriminator"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)


def _images(data):
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x


def _as_model_range(x):
    """Images in [0, 1] as the autoencoder takes them, in [-1, 1]."""
    return 2.0 * tf.cast(x, "float32") - 1.0


def _as_data_range(x):
    """The autoencoder's images, in [-1, 1], back in [0, 1]; what a decoder puts outside is clipped, as diffusers'
    image processor clamps its decoded images."""
    return tf.clip_by_value((tf.cast(x, "float32") + 1.0) / 2.0, 0.0, 1.0)
