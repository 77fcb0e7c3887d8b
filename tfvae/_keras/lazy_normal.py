"""`LazyMultivariateNormalDiag`: TFP's `MultivariateNormalDiag`, whose linear-operator parts are built on first use."""

import functools

import tensorflow_probability as tfp

# PRIVATE: TFP's `TransformedDistribution` keyword splitter (TFP 0.25), set below as its `__init__` would.
from tensorflow_probability.python.distributions import transformed_distribution

tfd = tfp.distributions


class LazyMultivariateNormalDiag(tfd.MultivariateNormalDiag):
    """N(loc, diag(scale_diag^2)), a `tfp.distributions.MultivariateNormalDiag` that builds only what it is asked for.

    `MultivariateNormalDiag.__init__` builds TFP's scale operator, bijectors and base distribution: milliseconds of
    Python per eager call, more than a small encoder's network, and `tfvae.VAE.encode` rebuilds its posterior after
    every compiled call (`scripts/benchmark_workarounds.py`). Here only `Distribution`'s own set-up runs; the scale
    operator, the bijector and the standard normal come from a `MultivariateNormalDiag` built the first time one of
    them is used. The mean, sampling and closed-form KL of a subclass need none of them.

    PRIVATE: it sets the attributes that `TransformedDistribution.__init__` and
    `MultivariateNormalLinearOperator.__init__` would set besides those parts (`_kwargs_split_fn`, `_is_joint`,
    `_experimental_use_kahan_sum`, `_loc`), as TFP 0.25 names them. Should a TFP release name them otherwise, a method
    that reads one fails with an `AttributeError` (no silent wrong value); its test then fails too.

    Args:
        loc: the mean, `[..., d]`.
        scale_diag: the standard deviations, the shape of `loc`.
        parameters: the subclass's constructor arguments (TFP's `parameters`).
        validate_args, allow_nan_stats, name: as TFP's.
    """

    def __init__(self, loc, scale_diag, *, parameters, validate_args=False, allow_nan_stats=True, name=None):
        self._loc = loc
        self._lazy_scale_diag = scale_diag
        tfd.Distribution.__init__(
            self,
            dtype=loc.dtype,
            reparameterization_type=tfd.FULLY_REPARAMETERIZED,
            validate_args=validate_args,
            allow_nan_stats=allow_nan_stats,
            parameters=parameters,
            name=name,
        )
        self._kwargs_split_fn = transformed_distribution._default_kwargs_split_fn
        self._is_joint = False
        self._experimental_use_kahan_sum = False

    @functools.cached_property
    def _normal(self):
        """The `MultivariateNormalDiag(loc, scale_diag)` whose scale, bijector and base distribution this one uses."""
        return tfd.MultivariateNormalDiag(
            loc=self._loc,
            scale_diag=self._lazy_scale_diag,
            validate_args=self.validate_args,
            allow_nan_stats=self.allow_nan_stats,
            name=self.name,
        )

    @property
    def scale(self):
        """`diag(scale_diag)` as a `tf.linalg.LinearOperatorDiag`."""
        return self._normal.scale

    @property
    def bijector(self):
        """`z = loc + scale_diag * epsilon`, the bijector from the standard normal (TFP's `TransformedDistribution`)."""
        return self._normal.bijector

    @property
    def distribution(self):
        """The standard normal `epsilon` is drawn from (TFP's `TransformedDistribution`)."""
        return self._normal.distribution
