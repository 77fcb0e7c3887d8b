"""The latent-diffusion autoencoder objective: reconstruction NLL with a learned variance, KL, PatchGAN and hinge loss.

Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models" (2022), train their KL autoencoder
(Stable Diffusion's VAE) with `LPIPSWithDiscriminator` of latent-diffusion's `ldm/modules/losses/contperceptual.py`
and the PatchGAN of taming-transformers (Esser et al. 2021). This module holds that objective apart from the
architecture (`AutoencoderKL`) and from the train step that applies it (`AutoencoderKLTrainer`):

    generator:      L_G = nll + w_KL * KL + lambda * f(step) * (-mean D(x_hat))
    discriminator:  L_D = f(step) * 0.5 * (mean relu(1 - D(x)) + mean relu(1 + D(x_hat)))

with `nll = sum_pixels(r / exp(s) + s)` for the per-pixel reconstruction error `r` and the learned scalar
log-variance `s`, `f(step)` the discriminator factor (0 before `discriminator_start`), and `lambda` the adaptive
weight. Every term is a mean over the batch, so `tf.distribute` sums of per-replica gradients stay right once each
is divided by the number of replicas.

LPIPS (Zhang et al. 2018), the perceptual term latent-diffusion adds to `r`, needs pretrained VGG weights and
calibration weights that tfvae cannot ship; `perceptual_loss` takes any callable in its place.
"""

import keras
import tensorflow as tf

RECONSTRUCTION_LOSSES = ("l1", "l2")
MAX_ADAPTIVE_WEIGHT = 1e4  # latent-diffusion's clip of the adaptive weight
ADAPTIVE_WEIGHT_EPSILON = 1e-4  # and the term that keeps its denominator positive


@keras.saving.register_keras_serializable(package="tfvae")
class LatentDiffusionLoss(keras.layers.Layer):
    """The generator and discriminator losses of latent-diffusion's autoencoder, with the learned log-variance.

    Mathematical details, per example `x` of `P` pixel values and its reconstruction `x_hat`:

    - reconstruction error per pixel: `r = |x - x_hat|` (`"l1"`) or `(x - x_hat)^2` (`"l2"`), plus
      `perceptual_weight * perceptual_loss(x, x_hat)` added to every pixel, as latent-diffusion adds LPIPS;
    - `nll = sum_P (r / exp(s) + s)`, a Laplace (L1) or Gaussian (L2) negative log-likelihood up to constants, with
      one learned scale `s = log sigma^2` shared by all pixels (`logvar`, initialised to `logvar_init`);
    - `KL = KL(q(z|x) || N(0, I))`, summed over the latent;
    - generator loss `-mean D(x_hat)` (the hinge GAN's generator term) and discriminator hinge loss
      `0.5 * (mean relu(1 - D(x)) + mean relu(1 + D(x_hat)))`;
    - adaptive weight `lambda = discriminator_weight * clip(||grad_W nll|| / (||grad_W L_gen|| + 1e-4), 0, 1e4)`,
      gradients taken at the kernel `W` of the decoder's last layer (Esser et al. 2021, eq. 7);
    - the discriminator factor `f(step)`: 0 before `discriminator_start`, then `discriminator_factor`.

    Each method returns a batch mean (`nll` and `KL` per example, summed over pixels or latents, as latent-diffusion
    logs them). Latent-diffusion's own optimizer leaves `logvar` out, so it stays at `logvar_init` there; here it is
    a trainable weight of this layer, which the trainer's autoencoder optimizer updates.

    Args:
        reconstruction_loss: `"l1"` (latent-diffusion) or `"l2"`.
        kl_weight: `w_KL`; 1e-6 as Stable Diffusion's VAE.
        logvar_init: the initial `s`.
        perceptual_loss: None, or a serializable callable `(x, x_hat) -> [batch]` per-example distance (for
            instance a registered function or Keras layer computing LPIPS from weights you have).
        perceptual_weight: its weight.
        discriminator_start: the optimizer step at which the GAN terms start counting.
        discriminator_factor: `f` from then on.
        discriminator_weight: the factor of the adaptive weight (0.5 in Stable Diffusion's VAE config).
        **kwargs: passed to `keras.layers.Layer`.

    Example:

    >>> loss = LatentDiffusionLoss(kl_weight=1e-6)
    >>> x = tf.zeros((2, 8, 8, 3))
    >>> float(loss.nll(loss.reconstruction_error(x, x + 0.5)))
    96.0
    """

    def __init__(
        self,
        reconstruction_loss="l1",
        kl_weight=1e-6,
        logvar_init=0.0,
        perceptual_loss=None,
        perceptual_weight=1.0,
        discriminator_start=50001,
        discriminator_factor=1.0,
        discriminator_weight=0.5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"reconstruction_loss must be one of {RECONSTRUCTION_LOSSES}, got {reconstruction_loss!r}."
            )
        if min(kl_weight, perceptual_weight, discriminator_start, discriminator_factor, discriminator_weight) < 0:
            raise ValueError(
                "kl_weight, perceptual_weight, discriminator_start, discriminator_factor and discriminator_weight "
                f"must be >= 0, got {kl_weight}, {perceptual_weight}, {discriminator_start}, {discriminator_factor} "
                f"and {discriminator_weight}."
            )
        self.reconstruction_loss = reconstruction_loss
        self.kl_weight = float(kl_weight)
        self.logvar_init = float(logvar_init)
        self.perceptual_loss = perceptual_loss
        self.perceptual_weight = float(perceptual_weight)
        self.discriminator_start = int(discriminator_start)
        self.discriminator_factor = float(discriminator_factor)
        self.discriminator_weight = float(discriminator_weight)
        self.logvar = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.logvar_init), dtype="float32", name="logvar"
        )
        self.built = True

    def reconstruction_error(self, x, x_hat):
        """`r`, the per-pixel error (with the perceptual distance added to every pixel), in float32, `x`'s shape.

        `x` holds images `[n, H, W, C]` or clips `[n, T, H, W, C]`; the perceptual loss sees a clip's frames as
        images, and each frame's distance is added to that frame's pixels."""
        x, x_hat = tf.cast(x, "float32"), tf.cast(x_hat, "float32")
        difference = x - x_hat
        error = tf.abs(difference) if self.reconstruction_loss == "l1" else tf.square(difference)
        if self.perceptual_loss is not None and self.perceptual_weight:
            distance = tf.cast(self.perceptual_loss(fold_frames(x), fold_frames(x_hat)), "float32")
            image_axes = [1, 1, 1]  # the distance of an image, on each of its pixels
            error += self.perceptual_weight * tf.reshape(distance, tf.concat([tf.shape(x)[:-3], image_axes], 0))
        return error

    def nll(self, error):
        """`mean over the batch of sum_P (r / exp(s) + s)` for the per-pixel error `r` of `reconstruction_error`."""
        per_pixel = error * tf.exp(-self.logvar) + self.logvar
        return _batch_mean(tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(per_pixel)[0], -1]), axis=1))

    def kl(self, posterior):
        """The mean over the batch of `KL(q(z|x) || N(0, I))` for a `DiagonalGaussian` posterior."""
        return _batch_mean(posterior.kl())

    def generator_loss(self, logits_fake):
        """`-mean D(x_hat)`: the generator's hinge-GAN loss on the discriminator's logits for reconstructions."""
        return -tf.reduce_mean(tf.cast(logits_fake, "float32"))

    def discriminator_loss(self, logits_real, logits_fake):
        """`0.5 * (mean relu(1 - D(x)) + mean relu(1 + D(x_hat)))`, the hinge loss, before the factor `f`."""
        real = tf.reduce_mean(tf.nn.relu(1.0 - tf.cast(logits_real, "float32")))
        fake = tf.reduce_mean(tf.nn.relu(1.0 + tf.cast(logits_fake, "float32")))
        return 0.5 * (real + fake)

    def adaptive_weight(self, nll_gradient, generator_gradient):
        """`lambda`: `discriminator_weight * clip(||grad nll|| / (||grad L_gen|| + 1e-4), 0, 1e4)`, with no gradient.

        Args:
            nll_gradient: the gradient of `nll` at the decoder's last kernel.
            generator_gradient: the gradient of `generator_loss` at the same kernel.
        """
        ratio = tf.norm(tf.cast(nll_gradient, "float32")) / (
            tf.norm(tf.cast(generator_gradient, "float32")) + ADAPTIVE_WEIGHT_EPSILON
        )
        return tf.stop_gradient(tf.clip_by_value(ratio, 0.0, MAX_ADAPTIVE_WEIGHT) * self.discriminator_weight)

    def discriminator_factor_at(self, step):
        """`f(step)`: 0 before `discriminator_start`, `discriminator_factor` from that step on."""
        started = tf.cast(tf.cast(step, "int64") >= self.discriminator_start, "float32")
        return started * self.discriminator_factor

    def get_config(self):
        config = super().get_config()
        config.update(
            reconstruction_loss=self.reconstruction_loss,
            kl_weight=self.kl_weight,
            logvar_init=self.logvar_init,
            perceptual_loss=keras.saving.serialize_keras_object(self.perceptual_loss),
            perceptual_weight=self.perceptual_weight,
            discriminator_start=self.discriminator_start,
            discriminator_factor=self.discriminator_factor,
            discriminator_weight=self.discriminator_weight,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["perceptual_loss"] = keras.saving.deserialize_keras_object(config["perceptual_loss"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfvae")
class PatchDiscriminator(keras.layers.Layer):
    """The PatchGAN discriminator (Isola et al. 2017) of taming-transformers' `NLayerDiscriminator`.

    `num_layers + 2` convolutions of kernel 4 and padding 1: the first with stride 2 and a bias, then
    `num_layers - 1` more with stride 2, one with stride 1 (filters `filters * min(2^i, 8)`, no bias, batch
    normalization), each followed by LeakyReLU(0.2), and a last stride-1 convolution to one logit per patch.
    Kernels start from N(0, 0.02), batch-normalization scales from N(1, 0.02), as taming-transformers' `weights_init`.

    Input shape: `[batch, height, width, channels]`, height and width at least `2^(num_layers + 2)`.
    Output shape: `[batch, h', w', 1]`, one logit per overlapping patch (`h' = height / 2^num_layers - 2`).

    Args:
        filters: the first convolution's filters (64 in latent-diffusion).
        num_layers: the stride-2 convolutions (3 in latent-diffusion; 2 suits 16x16 images).
        synchronized: whether, under a `tf.distribute` strategy, batch normalization takes its statistics over the
            global batch (Keras' `BatchNormalization(synchronized=True)`: the discriminator, and the generator loss's
            gradient through it, are then one device's) rather than over each replica's own examples (False, as
            latent-diffusion under PyTorch's data parallelism). Without a strategy both are the same.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, filters=64, num_layers=3, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if filters < 1 or num_layers < 1:
            raise ValueError(f"filters and num_layers must be at least 1, got {filters} and {num_layers}.")
        self.filters = int(filters)
        self.num_layers = int(num_layers)
        self.synchronized = bool(synchronized)
        widths = [self.filters * min(2**index, 8) for index in range(self.num_layers + 1)]
        strides = [2] * self.num_layers + [1]
        self.convolutions = [
            self._convolution(width, stride, use_bias=index == 0, name=f"conv_{index}")
            for index, (width, stride) in enumerate(zip(widths, strides, strict=True))
        ]
        self.normalizations = [
            keras.layers.BatchNormalization(
                momentum=0.9, epsilon=1e-5, gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02, seed=None),
                synchronized=self.synchronized, dtype=self.dtype_policy, name=f"norm_{index}",
            )
            for index in range(1, self.num_layers + 1)
        ]
        self.logits = self._convolution(1, 1, use_bias=True, name="logits")

    def _convolution(self, filters, strides, use_bias, name):
        return keras.layers.Conv2D(
            filters, 4, strides=strides, use_bias=use_bias,
            kernel_initializer=keras.initializers.RandomNormal(0.0, 0.02), dtype=self.dtype_policy, name=name,
        )

    def build(self, input_shape):
        minimum = 2 ** (self.num_layers + 2)
        if None not in input_shape[1:3] and min(input_shape[1:3]) < minimum:
            raise ValueError(
                f"A PatchDiscriminator with num_layers={self.num_layers} needs images of at least {minimum}x{minimum} "
                f"pixels, got {tuple(input_shape[1:3])}; use fewer layers (num_layers) for small images."
            )
        shape = input_shape
        for index, convolution in enumerate([*self.convolutions, self.logits]):
            shape = _padded(shape)
            convolution.build(shape)
            shape = convolution.compute_output_shape(shape)
            if 0 < index <= self.num_layers:
                self.normalizations[index - 1].build(shape)

    def call(self, images, training=None):
        hidden = images
        for index, convolution in enumerate(self.convolutions):
            hidden = convolution(_pad(hidden))
            if index:
                hidden = self.normalizations[index - 1](hidden, training=training)
            hidden = keras.ops.leaky_relu(hidden, negative_slope=0.2)
        return self.logits(_pad(hidden))

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for convolution in [*self.convolutions, self.logits]:
            shape = convolution.compute_output_shape(_padded(shape))
        return shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_layers": self.num_layers,
                "synchronized": self.synchronized}


def _pad(images):
    """One pixel of zeros around the height and width, as PyTorch's `padding=1`."""
    return keras.ops.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])


def _padded(shape):
    return (shape[0], *(None if size is None else size + 2 for size in shape[1:3]), shape[3])


def fold_frames(x):
    """Images `[n, H, W, C]` as they are, and the frames of clips `[n, T, H, W, C]` as images `[n T, H, W, C]`, for
    what judges images (the discriminator, a perceptual loss)."""
    if len(x.shape) == 4:
        return x
    return tf.reshape(x, tf.concat([[-1], tf.shape(x)[-3:]], 0))


def folded_shape(shape):
    """The shape `fold_frames` gives for inputs of `shape` (None for the folded batch of clips)."""
    return tuple(shape) if len(shape) == 4 else (None, *shape[-3:])


def _batch_mean(values):
    return tf.reduce_mean(tf.cast(values, "float32"))
