"""`VAE`: the variational autoencoder as a `keras.Model` that trains with `fit`."""

import keras
import tensorflow as tf

from tfvae import input_checks, likelihoods, tensor_math
from tfvae._keras.array_inputs import ArrayInputs
from tfvae._keras.compiled_steps import CompiledSteps, reducible_across_workers
from tfvae._keras.eager import compiled_when_eager
from tfvae._keras.fused_adam import FusedAdam
from tfvae.distributions import DEFAULT_LOGVAR_RANGE
from tfvae.layers import DiagonalGaussianLambda
from tfvae.seeding import SeedState

# Train steps per call into TensorFlow unless `compile` is told otherwise. In one paired run of scripts/benchmark.py
# (784-500-20, batch 100, a heavily loaded 2-core machine) `fit` on arrays trained 724 examples/s with 1 step per
# call, 930 with 10, 1,197 with 30 and 1,467 with 100, the epochs' spreads overlapping from 10 on; 10, as
# `tfvae train` uses, keeps callbacks (progress bar, NaN guard) close to every step.
STEPS_PER_EXECUTION = 10


@keras.saving.register_keras_serializable(package="tfvae")
class VAE(SeedState, CompiledSteps, input_checks.CheckedInputs, ArrayInputs, keras.Model):
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
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
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
        """q(z|x) as a `DiagonalGaussian`."""
        return self.posterior.distribution(self.encoder(x, training=training))

    @compiled_when_eager
    def decode(self, z, training=None):
        """The likelihood's parameters for latents `z` (Bernoulli logits, or a Gaussian's `[mu, log sigma^2]`)."""
        return self.decoder(z, training=training)

    @compiled_when_eager
    def generate(self, z):
        """E[x|z]: the likelihood's mean for latents `z` (probabilities for Bernoulli, `mu` for Gaussian)."""
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
        """Adds the weighted KL penalty and `mean(-log p(x|z))` as losses; returns the sampled E[x|z]."""
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

    def compile(self, optimizer="adam", jit_compile="auto", steps_per_execution="auto", **kwargs):
        """`keras.Model.compile`, with defaults chosen for speed.

        `jit_compile="auto"` means XLA unless a `tf.distribute` strategy is active. Keras' own "auto" turns XLA off
        on CPU-only machines. At one step per call XLA was the faster on CPU too (one run of `scripts/benchmark.py`
        on 2 cores, 784-500-20, batch 100: 8,205 examples/s against 7,760); at 10 steps per call the graph was
        (two paired runs: 15,641 and 16,628 against 13,361 and 15,124; at batch 1000 21,106 against 20,654), and
        it starts sooner, without XLA's compilation. XLA stays the default so that a model trains the same way on
        CPU, GPU and TPU; `jit_compile=False` is the faster choice on a CPU. Under a strategy XLA stays off, as
        Keras requires there.

        `steps_per_execution="auto"` runs `STEPS_PER_EXECUTION` train steps per call into TensorFlow instead of
        Keras' one: the Python work of each call (callbacks, fetching the logs) is then paid once per
        `STEPS_PER_EXECUTION` batches. Callbacks see the batches in groups: `on_train_batch_begin` and
        `on_train_batch_end` run once per execution, with the index of its first and its last batch, so the progress
        bar, `TensorBoard(update_freq=N)` and anything else counting batches move `STEPS_PER_EXECUTION` batches at a
        time; the logs they get are those of the group's last step. Epoch-level callbacks see no difference, and an
        epoch's last group may be shorter (its last batch too: it is counted with its own size). A call given its
        number of steps (`steps_per_epoch`, `steps`) runs exactly those, in groups that divide it (see
        `keras_steps.CompiledSteps`). An int passed by the caller wins (1 for per-batch callbacks).

        `optimizer="adam"` is a `tfvae.optimizers.FusedAdam` with Keras' Adam defaults: Adam's steps in fewer ops.
        """
        if optimizer == "adam":
            optimizer = FusedAdam()
        if jit_compile == "auto":
            jit_compile = not tf.distribute.has_strategy()
        if steps_per_execution == "auto":
            steps_per_execution = STEPS_PER_EXECUTION
        super().compile(optimizer=optimizer, jit_compile=jit_compile, steps_per_execution=steps_per_execution,
                        **kwargs)
        if self.built:
            # Keras skips its own build of the optimizer for a model built before `fit`: the optimizer would then
            # create its slots while the train step is traced, and TensorFlow traces a function that created
            # variables a second time, seconds more before the first step.
            self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        """Recompiles a loaded model (Keras skips models whose `compile` is overridden unless this is defined)."""
        self.compile(**keras.saving.deserialize_keras_object(config))

    def train_step(self, data):
        return reducible_across_workers(self.distribute_strategy, super().train_step(data))

    def test_step(self, data):
        return reducible_across_workers(self.distribute_strategy, super().test_step(data))

    def check_data(self, data, role="x"):
        """Raises `input_checks.InputError` if `data` does not fit this model (shape, dtype, values; values in [0, 1]
        for a Bernoulli likelihood). `fit` and `evaluate` call it first (`input_checks.CheckedInputs`)."""
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
