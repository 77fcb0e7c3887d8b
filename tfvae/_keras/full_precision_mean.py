"""`FullPrecisionMean`: Keras' `Mean` metric, accumulated in float32 under mixed precision too."""

import keras


class FullPrecisionMean(keras.metrics.Mean):
    """`keras.metrics.Mean` in float32 whose running total is never read in 16 bits.

    Keras 3 adds to a metric's total with `total.assign(total + value)`, reading `total` through the autocast scope
    that a layer's call opens under a `mixed_float16` policy: updated inside a model's `call` (as `tfvae.VAE` updates
    its ELBO terms), a total past 65,504 became infinite, so an epoch of a few hundred examples reported
    `elbo: -inf`. PRIVATE: the variables' `_autocast` flag (Keras 3.8-3.15.1), turned off here; where Keras does not
    have it, the metric is Keras' own.

    Args:
        name: the metric's name, as Keras' `Mean`'s.
    """

    def __init__(self, name):
        super().__init__(name=name, dtype="float32")
        for variable in self.variables:
            if hasattr(variable, "_autocast"):
                variable._autocast = False
