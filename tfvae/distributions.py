"""The diagonal Gaussian of a VAE: the posterior q(z|x) and the Gaussian decoder's p(x|z)."""

import math

import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import tensor_math
from tfvae._keras.lazy_normal import LazyMultivariateNormalDiag

tfd = tfp.distributions

DEFAULT_LOGVAR_RANGE = (-30.0, 20.0)


class DiagonalGaussian(LazyMultivariateNormalDiag):
    """N(mu, diag(sigma^2)) built from one parameter tensor whose last axis holds `[mu, log sigma^2]`.

    The encoder (or a Gaussian decoder) emits `params`; its last axis is split into the mean `mu` and the
    log-variance `log sigma^2` (`logvar`), which is clamped to `logvar_range` so that `sigma^2 = exp(logvar)` can
    neither overflow nor vanish. `sigma = exp(0.5 * logvar)`.

    It is a `tfp.distributions.MultivariateNormalDiag` (`loc=mu`, `scale_diag=sigma`), so TFP's `log_prob`,
    `kl_divergence` and `sample` work on it; its event is the last axis. Building one costs the three ops of `mu`,
    `log sigma^2` and `sigma`: TFP's scale operator, bijector and base distribution are built when first used
    (`tfvae._keras.lazy_normal`).
    `sample` is reparameterized, `z = mu + sigma * epsilon` with `epsilon ~ N(0, I)`, so gradients reach both halves
    of `params`; with the same seed it draws the same `epsilon` with and without XLA.

    For params of rank above two (a convolutional latent `[batch, height, width, 2 * channels]`) the channel axis
    holds the halves; `kl` and `nll` then sum over every axis but the batch axis and return one value per example.

    With `deterministic=True` the distribution is a point mass at the mean: the variance is zero, samples equal the
    mean, and `log_prob(x)` is the log of a probability mass (as for `tfd.Deterministic`): 0 where `x` equals the
    mean on the whole event, -inf elsewhere. `kl` and `nll` are then zero, as in latent-diffusion's
    `DiagonalGaussianDistribution`: losses that leave a deterministic autoencoder unregularised. The KL *to* a
    deterministic distribution is `+inf` (see `kl_terms`).

    `sample` draws its noise in the distribution's dtype: float64 parameters get float64 noise.

    Args:
        params: a float tensor `[..., 2 * d]`: the mean, then the log-variance. Half precision is computed in
            float32.
        deterministic: if True, the distribution is a point mass at the mean.
        logvar_range: `(low, high)`, the clamp of the log-variance.
        validate_args: passed to TFP.
        allow_nan_stats: passed to TFP.
        name: the name scope of the ops.
    """

    def __init__(
        self,
        params,
        deterministic=False,
        logvar_range=DEFAULT_LOGVAR_RANGE,
        validate_args=False,
        allow_nan_stats=True,
        name="DiagonalGaussian",
    ):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            params = parameters["params"] = _as_float_params(params)  # a tensor part, whatever was given
            low, high = check_logvar_range(logvar_range)
            mean, logvar = tf.split(params, 2, axis=-1)
            self._logvar = tf.clip_by_value(logvar, low, high)
            self._deterministic = bool(deterministic)
            self._std = tf.zeros_like(mean) if deterministic else tf.exp(0.5 * self._logvar)
            super().__init__(mean, self._std, parameters=parameters, validate_args=validate_args,
                             allow_nan_stats=allow_nan_stats, name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(params=tfp.util.ParameterProperties(event_ndims=1))

    @property
    def deterministic(self):
        """Whether the variance is zero."""
        return self._deterministic

    @property
    def logvar(self):
        """`log sigma^2`, clamped to `logvar_range` (also when `deterministic`)."""
        return self._logvar

    @property
    def var(self):
        """`sigma^2 = exp(logvar)`, zero when `deterministic`."""
        return tf.square(self.std)

    @property
    def std(self):
        """`sigma = exp(0.5 * logvar)`, zero when `deterministic`."""
        return self._std

    def _mean(self):
        # `loc` already has the whole batch and event shape: TFP's broadcast to it infers that shape from every
        # parameter, milliseconds of Python per eager `mean()`.
        return tf.identity(self.loc)

    def _mode(self):
        return tf.identity(self.loc)

    def _call_sample_n(self, sample_shape, seed, **kwargs):
        # `MultivariateNormalDiag` samples through its bijector; this draws `epsilon` itself so that a seed gives
        # the same sample with and without XLA (see `tensor_math.standard_normal`).
        sample_shape = tf.reshape(tf.cast(sample_shape, tf.int32), [-1])
        shape = tf.concat([sample_shape, tf.shape(self.loc)], axis=0)
        epsilon = tensor_math.standard_normal(shape, tfp.random.sanitize_seed(seed), self.dtype)
        return self.loc + self.std * epsilon

    def sample_in_batch(self, seed, first, total):
        """One draw `z = mu + sigma * epsilon` for these examples as rows `first : first + batch` of a batch of
        `total` examples: each gets the noise `sample(seed=seed)` would give it in that batch.

        Under `tf.distribute` a replica holds a slice of the global batch; drawing its slice of the global noise
        keeps the sample independent of how the batch is split.

        Args:
            seed: the seed of the whole batch's draw, as for `sample`.
            first: an int32 scalar, the row of the batch that this distribution's first example is.
            total: an int32 scalar, the number of examples in the whole batch.

        Returns:
            A tensor of the shape of `mean()`.
        """
        shape = tf.concat([[total], tf.shape(self.loc)[1:]], axis=0)
        epsilon = tensor_math.standard_normal(shape, tfp.random.sanitize_seed(seed), self.dtype)
        return self.loc + self.std * epsilon[first : first + tf.shape(self.loc)[0]]

    def _log_prob(self, x):
        if not self.deterministic:
            return super()._log_prob(x)
        at_mean = tf.reduce_all(tf.equal(tf.cast(x, self.dtype), self.loc), axis=-1)
        return tf.where(at_mean, tf.constant(0.0, self.dtype), tf.constant(-math.inf, self.dtype))

    def _prob(self, x):
        return tf.exp(self._log_prob(x))

    def _sample_and_log_prob(self, sample_shape, seed, **kwargs):
        samples = self._call_sample_n(sample_shape, seed)
        return samples, self.log_prob(samples)

    def kl(self, other=None):
        """KL(self || other) per example, in closed form: `kl_terms(other)` summed over every axis but the batch.

        Args:
            other: None for the N(0, I) prior, or a `DiagonalGaussian` of the same shape.

        Returns:
            A tensor `[batch]`.
        """
        return tensor_math.sum_per_example(self.kl_terms(other))

    def kl_terms(self, other=None):
        """The KL of each latent dimension, the shape of `mean()`.

        Against the standard normal prior (`other=None`): `0.5 * (mu^2 + sigma^2 - 1 - log sigma^2)`.
        Against N(mu_2, sigma_2^2): `0.5 * ((mu - mu_2)^2 / sigma_2^2 + sigma^2 / sigma_2^2 - 1 - log sigma^2
        + log sigma_2^2)`. Zero when `deterministic`.

        Against a deterministic `other` (a point mass, which has no density): `+inf`, except `0` in the dimensions
        where `self` is deterministic too, at the same point.

        `sigma^2 / sigma_2^2 - 1 - (log sigma^2 - log sigma_2^2)` is computed as `expm1(d) - d` with
        `d = log sigma^2 - log sigma_2^2`, which is never negative in floating point either, so neither is the KL.
        """
        if other is not None and not isinstance(other, DiagonalGaussian):
            raise TypeError(
                f"kl() takes None (the N(0, I) prior) or a DiagonalGaussian, not {type(other).__name__}; "
                "for other distributions use tfp.distributions.kl_divergence."
            )
        if other is not None and other.deterministic:
            same_point = tf.logical_and(self.deterministic, tf.equal(self.loc, tf.cast(other.loc, self.dtype)))
            return tf.where(same_point, tf.constant(0.0, self.dtype), tf.constant(math.inf, self.dtype))
        if self.deterministic:
            return tf.zeros_like(self.loc)
        if other is None:
            return 0.5 * (tf.square(self.loc) + tf.math.expm1(self.logvar) - self.logvar)
        logvar_difference = self.logvar - other.logvar
        return 0.5 * (
            tf.square(self.loc - other.loc) * tf.exp(-other.logvar)
            + tf.math.expm1(logvar_difference)
            - logvar_difference
        )

    def nll(self, x):
        """Negative log-likelihood of `x` per example.

        `NLL = 0.5 * sum(log 2pi + log sigma^2 + (x - mu)^2 / sigma^2)`, summed over every axis but the batch axis.
        Zero when `deterministic`.

        Args:
            x: a tensor of the shape of `mean()`.

        Returns:
            A tensor `[batch]`.
        """
        x = tf.cast(x, self.dtype)
        if self.deterministic:
            return tensor_math.sum_per_example(tf.zeros_like(self.loc))
        terms = math.log(2.0 * math.pi) + self.logvar + tf.square(x - self.loc) * tf.exp(-self.logvar)
        return tensor_math.sum_per_example(0.5 * terms)


def _as_float_params(params):
    params = tf.convert_to_tensor(params, dtype_hint=tf.float32)
    if not params.dtype.is_floating:
        raise TypeError(f"DiagonalGaussian needs floating-point parameters, got {params.dtype.name}.")
    params = tensor_math.as_full_precision(params)
    size = params.shape[-1] if params.shape.rank else None
    if size is not None and size % 2:
        raise ValueError(
            f"The last axis of the parameters holds [mean, logvar] halves and must be even; got {size}."
        )
    return params


def check_logvar_range(logvar_range):
    """Returns `logvar_range` as a float pair `(low, high)`, raising ValueError unless it is two numbers with
    `low < high`."""
    try:
        low, high = (float(bound) for bound in logvar_range)
    except (TypeError, ValueError) as error:
        raise ValueError(f"logvar_range must be two numbers (low, high); got {logvar_range!r}.") from error
    if not low < high:
        raise ValueError(f"logvar_range must be (low, high) with low < high; got {tuple(logvar_range)}.")
    return low, high
