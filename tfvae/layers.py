"""Keras 3 layers for probabilistic models: `GaussianHead`, and distribution layers for Sequential, functional and
subclassed models (what `tfp.layers` was for Keras 2).

A distribution layer maps parameters to a distribution. Called in a Keras graph, `layer(params)` returns a tensor
chosen by `convert_to_tensor_fn` (a sample, the mode, the mean, or a function of the distribution), so the layer works
in `keras.Sequential` and functional models. Called directly on a concrete tensor (eagerly, not inside a model or
another layer), it returns the distribution itself, which is also that tensor wherever a tensor is needed
(`tf.convert_to_tensor(q)`, `q + 1`, `keras.ops`; see `tfvae.tensor_coercible`), as TFP's `DistributionLambda` does:
`DiagonalGaussianLambda()(params).kl()`. The distribution stays reachable two ways in a graph too:

- `layer.distribution(params)` returns it without side effects: the one call a subclassed model makes (`VAE.encode`
  does `self.posterior.distribution(self.encoder(x))`);
- the tensor `layer(params)` carries the distribution it came from, as Keras's tensors carry their masks:
  `distribution_of(tensor)` returns it, and `tfvae.losses.NegativeLogLikelihood` scores a model's output with it.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import tensor_math
from tfvae._keras.call_context import within_a_layer_call
from tfvae.distributions import DEFAULT_LOGVAR_RANGE, DiagonalGaussian, check_logvar_range
from tfvae.tensor_coercible import TensorCoercible, tensor_coercible

CONVERT_TO_TENSOR_FNS = ("sample", "mode", "mean")
_DISTRIBUTION_ATTRIBUTE = "_tfvae_distribution"
_SEED_STATE_KEY = "seed_generator_state"


@keras.saving.register_keras_serializable(package="tfvae")
class GaussianHead(keras.layers.Layer):
    """Two distinct Dense layers on one input, giving `concat([mu, log sigma^2])` (AEVB appendix C.2).

    `mu = W4 h + b4` and `log sigma^2 = W5 h + b5`, where `h` is the shared hidden layer. The output's last axis has
    `2 * units` entries: the mean, then the log-variance, the layout `DiagonalGaussianLambda` reads.

    Args:
        units: the size `d` of the Gaussian (latent size for an encoder, data size for a decoder).
        mean_activation: an activation applied to `mu` only (for instance `"sigmoid"` for data in [0, 1], as the
            paper does for Frey Face); None keeps `mu` linear.
        kernel_initializer: the initializer of both kernels; a seeded one gives the log-variance head `seed + 1`.
        bias_initializer: the initializer of both biases.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(
        self, units, mean_activation=None, kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs
    ):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"GaussianHead needs units >= 1, got {units}.")
        self.units = int(units)
        self.mean_activation = keras.activations.get(mean_activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.mean_dense = keras.layers.Dense(
            self.units, activation=self.mean_activation, name="mean", dtype=self.dtype_policy,
            **self._head_initializers(seed_offset=0),
        )
        self.logvar_dense = keras.layers.Dense(
            self.units, name="logvar", dtype=self.dtype_policy, **self._head_initializers(seed_offset=1)
        )

    def _head_initializers(self, seed_offset):
        # One instance per head: a Keras initializer instance draws the same values at each use, which would start
        # both heads with the same kernel. For the same reason a seeded initializer's copy for the log-variance head
        # draws from the next seed (`seed + 1`): one seed still makes the layer reproducible.
        return {
            f"{part}_initializer": keras.initializers.get(_with_seed_offset(keras.initializers.serialize(initializer),
                                                                            seed_offset))
            for part, initializer in (("kernel", self.kernel_initializer), ("bias", self.bias_initializer))
        }

    def build(self, input_shape):
        self.mean_dense.build(input_shape)
        self.logvar_dense.build(input_shape)

    def call(self, inputs):
        return keras.ops.concatenate([self.mean_dense(inputs), self.logvar_dense(inputs)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            mean_activation=keras.activations.serialize(self.mean_activation),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


def _with_seed_offset(initializer_config, offset):
    """A Keras initializer's serialized config with its seed (an int, or a `keras.random.SeedGenerator`'s) moved
    by `offset`; unseeded initializers unchanged."""
    if not isinstance(initializer_config.get("config"), dict):  # a function, or an initializer without arguments
        return initializer_config
    config = dict(initializer_config, config=dict(initializer_config["config"]))
    seed = config["config"].get("seed")
    if isinstance(seed, int):
        config["config"]["seed"] = seed + offset
    elif isinstance(seed, dict) and isinstance(seed.get("config", {}).get("seed"), int):
        config["config"]["seed"] = dict(seed, config=dict(seed["config"], seed=seed["config"]["seed"] + offset))
    return config


def distribution_of(tensor):
    """The distribution a distribution layer attached to its output `tensor`.

    The attachment lives on the tensor object: it survives from the layer through a model's output into
    `compile(loss=...)` and `model(x)` called directly, but not through operations that make a new tensor (a cast,
    `predict`'s NumPy arrays, a SavedModel).

    Raises:
        ValueError: when `tensor` did not come straight from a distribution layer.
    """
    if isinstance(tensor, TensorCoercible):  # a layer called directly: the distribution itself
        return tensor
    distribution = getattr(tensor, _DISTRIBUTION_ATTRIBUTE, None)
    if distribution is None:
        raise ValueError(
            "This tensor carries no distribution: it is not the direct output of a tfvae distribution layer "
            "(DiagonalGaussianLambda, IndependentBernoulli), or an operation (a cast, predict, a SavedModel) made a "
            "new tensor from it. Make the distribution layer the model's last layer, or call "
            "layer.distribution(params) on the layer's input."
        )
    return distribution


class DistributionLambda(keras.layers.Layer):
    """Base of the distribution layers: parameters in, a tensor that carries its distribution out.

    A subclass defines `distribution(params)`. `call` builds it, turns it into a tensor with `convert_to_tensor_fn`
    and attaches the distribution to that tensor (see `distribution_of`).

    Args:
        convert_to_tensor_fn: what the layer outputs: `"sample"` (one reparameterized draw, seeded by `seed`),
            `"mode"`, `"mean"`, or a function `distribution -> tensor`. To save such a layer in a `.keras` file
            that loads with `safe_mode=True`, the function must be registered with
            `keras.saving.register_keras_serializable` (a lambda cannot be); it draws no seeded noise, so prefer
            `"sample"` for samples.
        seed: an int for the noise of `"sample"` (drawn from a `keras.random.SeedGenerator`, so the same with and
            without XLA), or None.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, convert_to_tensor_fn="sample", seed=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(convert_to_tensor_fn) and convert_to_tensor_fn not in CONVERT_TO_TENSOR_FNS:
            raise ValueError(
                f"convert_to_tensor_fn must be one of {CONVERT_TO_TENSOR_FNS} or a function of the distribution, "
                f"got {convert_to_tensor_fn!r}."
            )
        self.convert_to_tensor_fn = convert_to_tensor_fn
        self.seed = seed
        if convert_to_tensor_fn == "sample":
            self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.built = True

    def distribution(self, params):
        """The distribution for `params`; no loss is added, no noise drawn."""
        raise NotImplementedError

    def __call__(self, params, *args, **kwargs):
        """The output tensor of `call`; called directly on a concrete tensor, its distribution that is also that
        tensor (see the module)."""
        direct = tf.executing_eagerly() and not keras.backend.is_keras_tensor(params) and not within_a_layer_call()
        tensor = super().__call__(params, *args, **kwargs)
        return tensor_coercible(distribution_of(tensor), tensor) if direct else tensor

    def call(self, params):
        distribution = self.distribution(params)
        tensor = self.to_tensor(distribution)
        setattr(tensor, _DISTRIBUTION_ATTRIBUTE, distribution)
        return tensor

    def to_tensor(self, distribution):
        """`convert_to_tensor_fn` applied to `distribution`, as a new tensor."""
        if callable(self.convert_to_tensor_fn):
            value = self.convert_to_tensor_fn(distribution)
        elif self.convert_to_tensor_fn == "sample":
            value = distribution.sample(seed=tf.cast(self.seed_generator.next(), tf.int32))
        else:
            value = getattr(distribution, self.convert_to_tensor_fn)()
        # A new tensor object, so that the distribution `call` attaches never lands on a tensor shared with others
        # (the mean of a `DiagonalGaussian` is its `loc`).
        return tf.identity(value)

    def save_own_variables(self, store):
        """Saves the seed generator's state (Keras saves only a layer's own variables), so a reloaded model goes on
        with fresh noise."""
        super().save_own_variables(store)
        if self.convert_to_tensor_fn == "sample":
            store[_SEED_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        if self.convert_to_tensor_fn == "sample":
            self.seed_generator.state.assign(store[_SEED_STATE_KEY])

    def get_config(self):
        config = super().get_config()
        convert_to_tensor_fn = self.convert_to_tensor_fn
        if callable(convert_to_tensor_fn):
            convert_to_tensor_fn = keras.saving.serialize_keras_object(convert_to_tensor_fn)
        config.update(convert_to_tensor_fn=convert_to_tensor_fn, seed=self.seed)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("convert_to_tensor_fn"), dict):
            config["convert_to_tensor_fn"] = keras.saving.deserialize_keras_object(config["convert_to_tensor_fn"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfvae")
class DiagonalGaussianLambda(DistributionLambda):
    """Concatenated `[mu, log sigma^2]` parameters to a `DiagonalGaussian`, with an optional KL regularizer.

    What `tfp.layers.DistributionLambda` with a `KLDivergenceRegularizer` did for Keras 2. In a Sequential or
    functional model the output is a tensor (`convert_to_tensor_fn`, a sample `z = mu + sigma * epsilon` by default)
    that carries the distribution (`distribution_of`); a subclassed model calls `layer.distribution(params)`. The
    log-variance is clamped to `logvar_range`.

    With `kl_weight > 0` each call adds `kl_weight * mean over the batch of KL(q || N(0, I))` to the model's losses
    with `add_loss`: the KL term of the negative ELBO, a batch mean like `VAE`'s (so `tf.distribute` scales it right).

    Example, the encoder of a VAE as a Sequential model:

    ```python
    encoder = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(500, activation="tanh"),
        tfvae.layers.GaussianHead(20),
        tfvae.layers.DiagonalGaussianLambda(kl_weight=1.0),  # outputs a sample z, adds the KL
    ])
    ```

    Args:
        logvar_range: `(low, high)`, the clamp of the log-variance; `(-30, 20)` as in latent-diffusion.
        deterministic: if True, the distribution has zero variance (sample equals mean, KL is zero).
        convert_to_tensor_fn: `"sample"`, `"mode"`, `"mean"` or a function (see `DistributionLambda`).
        kl_weight: the weight of the KL added as a loss; 0 adds none.
        seed: an int for the noise of `"sample"`, or None.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(
        self,
        logvar_range=DEFAULT_LOGVAR_RANGE,
        deterministic=False,
        convert_to_tensor_fn="sample",
        kl_weight=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(convert_to_tensor_fn, seed, **kwargs)
        if kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight}.")
        self.logvar_range = check_logvar_range(logvar_range)
        self.deterministic = bool(deterministic)
        self.kl_weight = float(kl_weight)

    def distribution(self, params):
        """q as a `DiagonalGaussian` of `params` `[..., 2 * d]`."""
        return DiagonalGaussian(params, deterministic=self.deterministic, logvar_range=self.logvar_range)

    def call(self, params):
        tensor = super().call(params)
        if self.kl_weight:
            self.add_loss(self.kl_weight * tf.reduce_mean(distribution_of(tensor).kl()))
        return tensor

    def compute_output_shape(self, input_shape):
        """`[..., d]` for params `[..., 2 * d]`: the shape of a sample, the mean and the mode (a
        `convert_to_tensor_fn` of your own must give that shape too)."""
        size = input_shape[-1]
        return (*input_shape[:-1], None if size is None else size // 2)

    def get_config(self):
        config = super().get_config()
        config.update(logvar_range=list(self.logvar_range), deterministic=self.deterministic, kl_weight=self.kl_weight)
        return config


@keras.saving.register_keras_serializable(package="tfvae")
class IndependentBernoulli(DistributionLambda):
    """Logits to independent Bernoullis over every axis but the batch: p(x|z) of AEVB appendix C.1.

    `p(x|z) = prod_i y_i^x_i (1 - y_i)^(1 - x_i)` with `y = sigmoid(logits)`, a `tfd.Independent` whose event is
    all of the data axes, so `log_prob(x)` is one value per example (the sum over the pixels) and
    `tfvae.losses.NegativeLogLikelihood` scores it as `likelihoods.Bernoulli` does. The output tensor is the mean
    `y` by default (a reconstruction, and what `predict` returns); `"sample"` and `"mode"` give 0/1 values.

    Args:
        convert_to_tensor_fn: `"mean"`, `"mode"`, `"sample"` or a function (see `DistributionLambda`).
        seed: an int for the noise of `"sample"`, or None.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, convert_to_tensor_fn="mean", seed=None, **kwargs):
        super().__init__(convert_to_tensor_fn, seed, **kwargs)

    def compute_output_shape(self, input_shape):
        """The shape of the logits: a sample, the mean and the mode have it."""
        return tuple(input_shape)

    def distribution(self, params):
        """p(x|z) for the logits `params` `[batch, ...]`, computed in float32 under mixed precision."""
        logits = tensor_math.as_full_precision(params)
        bernoulli = tfp.distributions.Bernoulli(logits=logits, dtype=logits.dtype)
        return tfp.distributions.Independent(bernoulli, reinterpreted_batch_ndims=logits.shape.rank - 1)
