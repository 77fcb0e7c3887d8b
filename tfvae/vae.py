"""`VAE`: the variational autoencoder as a `keras.Model` that trains with `fit`."""

import keras
import tensorflow as tf

from tfvae import input_checks, likelihoods, tensor_math
from tfvae._keras.eager import compiled_when_eager
from tfvae._keras.full_precision_mean import FullPrecisionMean
from tfvae._keras.fused_adam import FusedAdam
from tfvae._keras.trainable import TrainableModel
from tfvae.distributions import DEFAULT_LOGVAR_RANGE
from tfvae.layers import DiagonalGaussianLambda
from tfvae.seeding import SeedState

# Train steps per call into TensorFlow unless `compile` is told otherwise: the Python work of each call (callbacks,
# fetching the logs) is paid once per this many batches, and callbacks still see every tenth batch.
STEPS_PER_EXECUTION = 10


@keras.saving.register_keras_serializable(package="tfvae")
class VAE(SeedState, TrainableModel):
    """A variational autoencoder (Kingma & Welling, "Auto-Encoding Variational Bayes").

    The data path of `call`:
    `x -> encoder -> [mu, log sigma^2] -> DiagonalGaussianLambda -> q(z|x) -> z = mu + sigma * epsilon -> decoder ->
    likelihood`. Per example the ELBO is `L(x) = -KL(q(z|x) || N(0, I)) + log p(x|z)` with one sample `z` (the
    paper's SGVB estimator B, equation 10). `fit`, `evaluate` and the progress bar report `elbo`, `kl` and
    `reconstruction` (`-log p(x|z)`, summed over the data dimensions) per example.

    The loss is `mean(reconstruction) + w * sum_j max(lambda, mean(KL_j))`, both terms added with `add_loss`:
    `KL_j` is the KL of latent dimension `j`, `mean` runs over the batch, `lambda` is `free_bits` (Kingma et al.
    2016; 0 gives the plain KL), and the weight `w` is `beta` ramped linearly from 0 over the first
    `kl_warmup_steps` optimizer steps. With the defaults the loss is the negative ELBO. `weight_decay` adds
    `weight_decay * 0.5 * ||theta||^2` over all trainable parameters: `-log p(theta)` for a N(0, I) prior, as AEVB
    does with `weight_decay = 1 / N` for N training examples.

    Noise comes from a `keras.random.SeedGenerator`, so a seed makes training reproducible, with or without XLA.

    Args:
        encoder: a Keras network from `x` to `[mu, log sigma^2]` concatenated on the last axis (for instance
            `networks.gaussian_mlp_encoder`, or a convolutional one with spatial latents).
        decoder: a Keras network from `z` to the likelihood's parameters (Bernoulli logits, or a Gaussian's
            `[mu, log sigma^2]`).
        likelihood: `"bernoulli"`, `"gaussian"`, or a likelihood object (see `tfvae.likelihoods`; saving a model with
            one of your own needs its `get_config()`, `from_config()` and its class registered with Keras).
        beta: the weight of the KL term (1 gives the ELBO; other values a beta-VAE). It is a non-trainable variable,
            so a callback may change it between steps of a compiled `fit`.
        kl_warmup_steps: optimizer steps over which the KL weight rises linearly from 0 to `beta`; 0 for none.
            The ramp reads the optimizer's step counter inside the train step, so it survives XLA and resuming.
        free_bits: `lambda`, the KL (nats) below which a latent dimension is not penalised; 0 for none.
        weight_decay: the weight of the N(0, I) prior on the parameters; 0 for none.
        logvar_range: the clamp of the posterior's log-variance.
        seed: an int for the sampling noise, or None.
        **kwargs: passed to `keras.Model` (`name`, ...).
    """

    def __init__(
        self,
        encoder,
        decoder,
        likelihood="bernoulli",
        beta=1.0,
        kl_warmup_steps=0,
        free_bits=0.0,
        weight_decay=0.0,
        logvar_range=DEFAULT_LOGVAR_RANGE,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if min(beta, kl_warmup_steps, free_bits, weight_decay) < 0:
            raise ValueError(
                f"beta, kl_warmup_steps, free_bits and weight_decay must be >= 0, got {beta}, {kl_warmup_steps}, "
                f"{free_bits} and {weight_decay}."
            )
        self.weight_decay = float(weight_decay)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.free_bits = float(free_bits)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihoods.get(likelihood)
        # The model draws its own noise (`sample_posterior`) and adds its own KL: the layer only builds q(z|x).
        self.posterior = DiagonalGaussianLambda(
            logvar_range, convert_to_tensor_fn="mode", name="posterior", dtype=self.dtype_policy
        )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.beta = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(beta), trainable=False, name="beta"
        )
        self.elbo_tracker = FullPrecisionMean("elbo")
        self.kl_tracker = FullPrecisionMean("kl")
        self.reconstruction_tracker = FullPrecisionMean("reconstruction")
        if getattr(encoder, "inputs", None):
            self.build((None, *self.data_shape))

    def build(self, input_shape):
        """Checks, from shapes alone, that the decoder's output fits the data and the likelihood.

        The encoder and the decoder are built networks; chaining their `compute_output_shape` runs no data through
        them, so a fully convolutional pair whose input takes any height and width (`keras.Input((None, None, c))`)
        builds too. An unknown size matches any size.

        Raises:
            ValueError: when the decoder's output does not fit the data and the likelihood.
        """
        data_shape = tuple(input_shape[1:])
        params_shape = self.decoder.compute_output_shape((None, *self._latent_shape(data_shape)))[1:]
        expected = (*data_shape[:-1], self.likelihood.params_size(data_shape[-1]))
        fits = len(params_shape) == len(expected) and all(
            actual is None or wanted is None or actual == wanted
            for actual, wanted in zip(params_shape, expected, strict=True)
        )
        if not fits:
            raise ValueError(
                f"The decoder emits {tuple(params_shape)} per example, but a {self.likelihood.name} likelihood "
                f"of data shaped {data_shape} needs {expected}. Give the decoder {expected[-1]} outputs on its last "
                "axis (networks.bernoulli_mlp_decoder for 'bernoulli', networks.gaussian_mlp_decoder for "
                "'gaussian'), or choose the likelihood that matches it."
            )

    @compiled_when_eager
    def encode(self, x, training=None):
        """q(z|x) as a `DiagonalGaussian`.

        Raises:
            InputError: for `uint8` images (divide them by 255 first).
        """
        input_checks.check_not_eight_bit(getattr(x, "dtype", None))
        return self.posterior.distribution(self.encoder(x, training=training))

    @compiled_when_eager
    def decode(self, z, training=None):
        """The likelihood's parameters for latents `z` (Bernoulli logits, or a Gaussian's `[mu, log sigma^2]`)."""
        return self.decoder(z, training=training)

    def generate(self, z):
        """E[x|z]: the likelihood's mean for latents `z` (probabilities for Bernoulli, `mu` for Gaussian).

        Args:
            z: latents `[n, *latent_shape]`, or an int `n`: that many draws from the prior N(0, I), from the model's
                seed generator.
        """
        if isinstance(z, int):
            z = keras.random.normal((z, *self.latent_shape()), seed=self.seed_generator)
        return self._decoded_mean(z)

    @compiled_when_eager
    def _decoded_mean(self, z):
        return self.likelihood.mean(self.decode(z))

    @compiled_when_eager
    def reconstruct(self, x):
        """E[x|z] at the posterior mean `z = mu(x)`: the deterministic reconstruction."""
        return self.generate(self.encode(x).mode())

    @property
    def data_shape(self):
        """The shape of one example, from the encoder's input."""
        inputs = getattr(self.encoder, "inputs", None)
        if not inputs:
            raise ValueError("The encoder has no known input shape; give it a keras.Input.")
        return tuple(inputs[0].shape[1:])

    def latent_shape(self):
        """The shape of one latent `z` (the encoder's output with the last axis halved); None for an unknown size."""
        return self._latent_shape(self.data_shape)

    def _latent_shape(self, data_shape):
        params_shape = self.encoder.compute_output_shape((None, *data_shape))
        return (*params_shape[1:-1], params_shape[-1] // 2)

    def elbo_terms(self, x, training=None):
        """One-sample estimate per example of `-log p(x|z)`, with the posterior and the decoder's output.

        Returns:
            `(reconstruction, posterior, decoder_params)`: a `[batch]` tensor, q(z|x) as a `DiagonalGaussian`
            (`posterior.kl()` is the KL per example), and the decoder's parameters for the sampled `z`.
        """
        x = tf.cast(x, self.variable_dtype)  # under mixed precision the likelihood still sees float32 data
        posterior = self.encode(x, training=training)
        z = self.sample_posterior(posterior)
        decoder_params = self.decode(z, training=training)
        reconstruction = self.likelihood.negative_log_likelihood(x, decoder_params)
        return reconstruction, posterior, decoder_params

    def kl_weight(self):
        """`w`: `beta`, times `min(1, step / kl_warmup_steps)` while the warm-up lasts."""
        if not self.kl_warmup_steps or self.optimizer is None:
            return self.beta
        progress = tf.cast(self.optimizer.iterations, "float32") / self.kl_warmup_steps
        return self.beta * tf.minimum(1.0, progress)

    def kl_penalty(self, kl_terms):
        """`sum_j max(lambda, mean over the batch of KL_j)`, from `posterior.kl_terms()`: the loss's KL term."""
        return tf.reduce_sum(tf.maximum(self.free_bits, tf.reduce_mean(kl_terms, axis=0)))

    def call(self, x, training=None):
        """Adds the weighted KL penalty and `mean(-log p(x|z))` as losses; returns E[x|z] for a sampled z.

        Calling the model (`vae(x)`, `training` or not) samples `z ~ q(z|x)`, as training and `evaluate` need; two
        calls differ. `predict` and `reconstruct` give the deterministic reconstruction at the posterior mean.
        """
        reconstruction, posterior, decoder_params = self.elbo_terms(x, training=training)
        kl_terms = posterior.kl_terms()
        kl = tensor_math.sum_per_example(kl_terms)
        self.add_loss(self.kl_weight() * self.kl_penalty(kl_terms))
        self.add_loss(tf.reduce_mean(reconstruction))
        if self.weight_decay:
            squares = [tf.reduce_sum(tf.square(tf.cast(weight, "float32"))) for weight in self.trainable_weights]
            self.add_loss(self.weight_decay * 0.5 * tf.add_n(squares))
        self.elbo_tracker.update_state(-(reconstruction + kl))
        self.kl_tracker.update_state(kl)
        self.reconstruction_tracker.update_state(reconstruction)
        return self.likelihood.mean(decoder_params)

    STEPS_PER_EXECUTION = STEPS_PER_EXECUTION

    def compile(self, optimizer="adam", **kwargs):
        """`keras.Model.compile` with tfvae's defaults (`TrainableModel.compile`); no `loss`: the loss is the
        negative ELBO, added in `call`.

        `optimizer="adam"` is a `tfvae.optimizers.FusedAdam` with Keras' Adam defaults: Adam's steps in fewer ops.
        `jit_compile="auto"` is XLA where a GPU or TPU is present (and no `tf.distribute` strategy), a TensorFlow
        graph on CPU-only machines. `steps_per_execution="auto"` runs `STEPS_PER_EXECUTION` train steps per call
        into TensorFlow: callbacks see the batches in groups (`on_train_batch_begin`/`_end` once per group, with the
        index of its first and last batch, and the logs of its last step), so the progress bar and
        `TensorBoard(update_freq=N)` move `STEPS_PER_EXECUTION` batches at a time; an int wins (1 for per-batch
        callbacks). A call given its number of steps runs exactly those.
        """
        super().compile(optimizer=FusedAdam() if optimizer == "adam" else optimizer, **kwargs)

    def compile_from_config(self, config):
        """Recompiles a loaded model (Keras skips models whose `compile` is overridden unless this is defined)."""
        self.compile(**keras.saving.deserialize_keras_object(config))

    def check_data(self, data, role="x"):
        """Raises `tfvae.InputError` if `data` does not fit this model (shape, dtype, values; values in [0, 1]
        for a Bernoulli likelihood). `fit`, `evaluate` and `predict` call it first (`TrainableModel`)."""
        unit_interval = (
            "a Bernoulli decoder models pixels in [0, 1] (for data outside [0, 1], use likelihood='gaussian')"
            if self.likelihood.name == "bernoulli" else None
        )
        input_checks.check_data(data, self.data_shape, role=role, unit_interval=unit_interval)

    def predict_step(self, data):
        """`predict` gives the deterministic reconstruction (see `reconstruct`)."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.reconstruct(x)

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """`keras.Model.export`, whose `serve` endpoint (also `serving_default`) gives `reconstruct(x)`, as `predict`
        and `tfvae.export`'s `serving_default` do, instead of `call`'s sampled E[x|z].

        `serve(x)` takes `x [n, *data_shape]` float32 and returns the reconstruction `[n, *data_shape]` (a tensor;
        the SavedModel's signature names it `output_0`, where `tfvae.export` names it `reconstruction`). Formats
        other than `"tf_saved_model"` are Keras' own, which export `call`.
        """
        if format != "tf_saved_model":
            return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature,
                                  **kwargs)
        archive = keras.export.ExportArchive()
        archive.track(self)
        spec = input_signature or [tf.TensorSpec((None, *self.data_shape), tf.float32, name="x")]
        archive.add_endpoint("serve", self.reconstruct, input_signature=spec)
        archive.write_out(filepath, verbose=True if verbose is None else verbose)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "likelihood": likelihoods.serialize(self.likelihood),
            "beta": float(keras.ops.convert_to_numpy(self.beta)),
            "kl_warmup_steps": self.kl_warmup_steps,
            "free_bits": self.free_bits,
            "weight_decay": self.weight_decay,
            "logvar_range": list(self.posterior.logvar_range),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for network in ("encoder", "decoder"):
            config[network] = keras.saving.deserialize_keras_object(config[network])
        return cls(**config)
