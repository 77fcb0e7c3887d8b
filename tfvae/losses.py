"""Losses for `compile(loss=...)` of models whose outputs come from tfvae's distribution layers."""

import keras
import tensorflow as tf

from tfvae.layers import distribution_of


@keras.saving.register_keras_serializable(package="tfvae")
class NegativeLogLikelihood(keras.losses.Loss):
    """`-log p(x)` under the distribution that made the prediction, summed over the data axes, mean over the batch.

    `y_pred` must be the output of a tfvae distribution layer (`IndependentBernoulli`, `DiagonalGaussianLambda`),
    which carries its distribution (`tfvae.layers.distribution_of`). Per example the loss is
    `-sum_i log p(x_i)` over every axis but the batch axis; Keras's reduction then averages over the batch, the
    convention of `VAE`'s reconstruction term, so that with a KL regularizer the loss is the negative ELBO.

    It plays the part of TFP's `lambda x, rv: -rv.log_prob(x)`: in Keras 3 a loss receives the model's output as a
    tensor, not a distribution, so `rv.log_prob` does not exist there; `distribution_of(rv).log_prob(x)` does.

    Args:
        name: the loss's name.
        reduction: Keras's reduction over the batch.
        dtype: the loss's dtype.
    """

    def __init__(self, name="negative_log_likelihood", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        negative_log_prob = -distribution_of(y_pred).log_prob(y_true)
        return tf.reduce_sum(negative_log_prob, axis=list(range(1, negative_log_prob.shape.rank)))
