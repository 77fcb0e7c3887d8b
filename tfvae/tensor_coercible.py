"""Distributions that are also tensors: what a distribution layer called directly returns (`tfvae.layers`).

`tensor_coercible(distribution, tensor)` gives a copy of `distribution`, of a subclass of its class, that stands for
`tensor` wherever a tensor is needed: `tf.convert_to_tensor(q)`, `q + 1`, `q[0]`, `keras.ops.sum(q)`,
`np.asarray(q)`. It stays the distribution in every other way (`q.mean()`, `q.kl()`, `q.sample(seed=...)`,
`isinstance(q, DiagonalGaussian)`). TFP's `DistributionLambda` returns such objects (its `_TensorCoercible`); this is
the same idea for tfvae's own distributions, with the tensor given rather than computed on first use.

Example:

```python
q = tensor_coercible(tfvae.DiagonalGaussian(params), sample)
q.kl()                  # the distribution's KL to N(0, I)
tf.convert_to_tensor(q) # `sample`
q * 2.0                 # `sample * 2`
```
"""

import functools

import numpy as np
import tensorflow as tf

# Python operators of a tensor that a coercible distribution applies to its tensor. `==` and `!=` stay identity, as
# for any distribution (and any hashable object).
_TENSOR_OPERATORS = sorted(set(tf.Tensor.OVERLOADABLE_OPERATORS) - {"__eq__", "__ne__"})


class TensorCoercible:
    """Mixin of a distribution that is also the tensor `self.tensor` (see the module)."""

    tensor = None

    @property
    def shape(self):
        """The tensor's shape."""
        return self.tensor.shape

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.tensor, dtype)


def _tensor_operator(name):
    def operator(self, *args):
        return getattr(self.tensor, name)(*args)

    operator.__name__ = name
    return operator


for _name in _TENSOR_OPERATORS:
    setattr(TensorCoercible, _name, _tensor_operator(_name))


def _to_tensor(value, dtype=None, name=None, as_ref=False):
    """`tf.convert_to_tensor` of a `TensorCoercible`: its tensor (cast to nothing: a wrong `dtype` is an error)."""
    if dtype is not None and not dtype.is_compatible_with(value.tensor.dtype):
        raise ValueError(f"This distribution stands for a {value.tensor.dtype.name} tensor, not {dtype.name}.")
    return value.tensor


tf.register_tensor_conversion_function(TensorCoercible, _to_tensor)


@functools.cache
def coercible_class(distribution_class):
    """The subclass of `distribution_class` that is also a tensor (one per class)."""
    return type(distribution_class.__name__, (TensorCoercible, distribution_class),
                {"__module__": __name__, "__doc__": distribution_class.__doc__})


def tensor_coercible(distribution, tensor):
    """A copy of `distribution` (rebuilt from its `parameters`) that is also `tensor` (see the module).

    Args:
        distribution: a `tfp.distributions.Distribution`.
        tensor: the tensor it stands for: a sample, its mean, its mode, ...

    Returns:
        An instance of `coercible_class(type(distribution))`.
    """
    coercible = coercible_class(type(distribution))(**distribution.parameters)
    coercible.tensor = tensor
    return coercible
