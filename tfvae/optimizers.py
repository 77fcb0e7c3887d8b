"""Optimizers: `FusedAdam`, Keras' Adam with each variable's update done by one TensorFlow op."""

from tfvae._keras.fused_adam import FusedAdam

__all__ = ["FusedAdam"]
