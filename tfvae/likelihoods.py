"""Decoder likelihoods p(x|z): from the decoder's output to the reconstruction term of the ELBO.

A likelihood reads the decoder's raw output (its *parameters*) and gives
- `negative_log_likelihood(x, params)`: `-log p(x|z)` per example, summed over the data dimensions;
- `mean(params)`: the reconstruction, E[x|z];
- `named_parameters(params)`: the parameters by name, as a SavedModel's `decode` signature returns them;
- `params_size(data_size)`: how many outputs the decoder must have for data of `data_size` values;
- `name`: a short name for messages and configs.

A model that uses a likelihood saves it with `serialize`: tfvae's own by name, any other through Keras, which
needs the likelihood to have `get_config()` and a class method `from_config(config)`, and its class to be registered
with `@keras.saving.register_keras_serializable()`, so that loading finds it.

Parameters computed in half precision (a `mixed_float16` decoder) are read in float32, so the reconstruction and
the named parameters are float32, as the SavedModel signatures promise.
"""

import keras
import tensorflow as tf

from tfvae import tensor_math
from tfvae.distributions import DEFAULT_LOGVAR_RANGE, DiagonalGaussian, check_logvar_range


class Bernoulli:
    """p(x|z) = prod_i y_i^x_i (1 - y_i)^(1 - x_i), with `y = sigmoid(params)` (AEVB appendix C.1).

    The decoder emits logits `W2 tanh(W1 z + b1) + b2`; the cross-entropy is computed on the logits, which is exact
    where `log(sigmoid(.))` would round to `log(0)`. `x` must lie in [0, 1].
    """

    name = "bernoulli"

    def negative_log_likelihood(self, x, params):
        """`-sum_i [x_i log y_i + (1 - x_i) log(1 - y_i)]` per example, in float32 (or float64) precision."""
        x = tensor_math.as_full_precision(x)
        logits = tf.cast(params, x.dtype)
        return tensor_math.sum_per_example(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits))

    def mean(self, params):
        """The probabilities `y = sigmoid(params)`, in float32 (or float64) precision."""
        return tf.sigmoid(tensor_math.as_full_precision(params))

    def named_parameters(self, params):
        return {"probs": self.mean(params)}

    def params_size(self, data_size):
        return data_size

    def get_config(self):
        return {"name": self.name}


class Gaussian:
    """p(x|z) = N(x; mu, diag(sigma^2)), with `params = concat([mu, log sigma^2])` (AEVB appendix C.2).

    The reconstruction term is `DiagonalGaussian.nll`: `0.5 * sum(log 2pi + log sigma^2 + (x - mu)^2 / sigma^2)`.

    Args:
        logvar_range: `(low, high)`, the clamp of the decoder's log-variance.
    """

    name = "gaussian"

    def __init__(self, logvar_range=DEFAULT_LOGVAR_RANGE):
        self.logvar_range = check_logvar_range(logvar_range)

    def distribution(self, params):
        return DiagonalGaussian(params, logvar_range=self.logvar_range)

    def negative_log_likelihood(self, x, params):
        return self.distribution(params).nll(x)

    def mean(self, params):
        """The mean `mu`."""
        return self.distribution(params).mean()

    def named_parameters(self, params):
        distribution = self.distribution(params)
        return {"mean": distribution.mean(), "logvar": distribution.logvar}

    def params_size(self, data_size):
        return 2 * data_size

    def get_config(self):
        return {"name": self.name, "logvar_range": list(self.logvar_range)}


LIKELIHOODS = {likelihood.name: likelihood for likelihood in (Bernoulli, Gaussian)}
INTERFACE = ("name", "negative_log_likelihood", "mean", "named_parameters", "params_size")


def serialize(likelihood):
    """The config of `likelihood` that `get` turns back into it: `{"name": ...}` and the arguments for tfvae's own,
    Keras' serialized form for any other.

    Raises:
        TypeError: for a likelihood of another class without `get_config()` and `from_config()`.
    """
    if type(likelihood) in LIKELIHOODS.values():
        return likelihood.get_config()
    if not (hasattr(likelihood, "get_config") and hasattr(likelihood, "from_config")):
        raise TypeError(
            f"The {type(likelihood).__name__} likelihood cannot be saved: give it get_config() and from_config() "
            "and register its class with @keras.saving.register_keras_serializable(), so that loading finds it."
        )
    return keras.saving.serialize_keras_object(likelihood)


def get(identifier):
    """Returns a likelihood from a name (`"bernoulli"`, `"gaussian"`), a config dict (of `serialize`), or a
    likelihood itself.

    Any object with the attributes of `INTERFACE` is a likelihood (see this module's docstring), whether or not it
    derives from a class here.

    Raises:
        TypeError: for an object that is neither a name, a config dict nor a likelihood; the message names what
            it lacks.
        ValueError: for an unknown name, or a config dict without one.
    """
    if isinstance(identifier, str):
        identifier = {"name": identifier}
    if isinstance(identifier, dict) and "class_name" in identifier:
        return keras.saving.deserialize_keras_object(identifier)
    if not isinstance(identifier, dict):
        missing = [attribute for attribute in INTERFACE if not hasattr(identifier, attribute)]
        if missing:
            raise TypeError(
                f"A likelihood is a name ({sorted(LIKELIHOODS)}), a config dict, or an object with {INTERFACE}; "
                f"{type(identifier).__name__} lacks {', '.join(missing)}."
            )
        return identifier
    config = dict(identifier)
    if "name" not in config:
        raise ValueError(f"A likelihood config needs a 'name' ({sorted(LIKELIHOODS)}), got {identifier}.")
    name = config.pop("name")
    if name not in LIKELIHOODS:
        raise ValueError(f"Unknown likelihood {name!r}; choose one of {sorted(LIKELIHOODS)}.")
    return LIKELIHOODS[name](**config)
