"""Keras layers that produce and consume the concatenated `[mean, logvar]` parameters of a diagonal Gaussian."""

import keras

from tfvae.distributions import DEFAULT_LOGVAR_RANGE, DiagonalGaussian, check_logvar_range


@keras.saving.register_keras_serializable(package="tfvae")
class GaussianHead(keras.layers.Layer):
    """Two distinct Dense layers on one input, giving `concat([mu, log sigma^2])` (AEVB appendix C.2).

    `mu = W4 h + b4` and `log sigma^2 = W5 h + b5`, where `h` is the shared hidden layer. The output's last axis has
    `2 * units` entries: the mean, then the log-variance, the layout `DiagonalGaussianLambda` reads.

    Args:
        units: the size `d` of the Gaussian (latent size for an encoder, data size for a decoder).
        mean_activation: an activation applied to `mu` only (for instance `"sigmoid"` for data in [0, 1], as the
            paper does for Frey Face); None keeps `mu` linear.
        kernel_initializer: the initializer of both kernels.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, units, mean_activation=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"GaussianHead needs units >= 1, got {units}.")
        self.units = int(units)
        self.mean_activation = keras.activations.get(mean_activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.mean_dense = keras.layers.Dense(
            self.units, activation=self.mean_activation, kernel_initializer=self._new_initializer(), name="mean",
            dtype=self.dtype_policy,
        )
        self.logvar_dense = keras.layers.Dense(
            self.units, kernel_initializer=self._new_initializer(), name="logvar", dtype=self.dtype_policy
        )

    def _new_initializer(self):
        # One instance per head: an unseeded Keras initializer instance draws the same values at each use, which
        # would start both heads with the same kernel.
        return keras.initializers.get(keras.initializers.serialize(self.kernel_initializer))

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
        )
        return config


@keras.saving.register_keras_serializable(package="tfvae")
class DiagonalGaussianLambda(keras.layers.Layer):
    """Turns concatenated `[mu, log sigma^2]` parameters into a `DiagonalGaussian` (a DistributionLambda for Keras 3).

    `tfp.layers.DistributionLambda` works only with Keras 2; this layer plays its part for Keras 3 models that are
    subclassed: its output is a distribution object, so use it inside a `keras.Model.call`, not in a functional
    graph. The log-variance is clamped to `logvar_range`.

    Args:
        logvar_range: `(low, high)`, the clamp of the log-variance; `(-30, 20)` as in latent-diffusion.
        deterministic: if True, the distribution has zero variance (sample equals mean, KL is zero).
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, logvar_range=DEFAULT_LOGVAR_RANGE, deterministic=False, **kwargs):
        super().__init__(**kwargs)
        self.logvar_range = check_logvar_range(logvar_range)
        self.deterministic = bool(deterministic)
        self.built = True

    def call(self, params):
        return DiagonalGaussian(params, deterministic=self.deterministic, logvar_range=self.logvar_range)

    def get_config(self):
        config = super().get_config()
        config.update(logvar_range=list(self.logvar_range), deterministic=self.deterministic)
        return config
