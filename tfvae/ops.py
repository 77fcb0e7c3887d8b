"""Small tensor operations shared by the distribution, the likelihoods and the model."""

import tensorflow as tf


def sum_per_example(values):
    """Sums `values` over every axis but the first, giving one value per example.

    A tensor of rank one is taken as a single example and summed to a scalar.

    Args:
        values: a tensor of shape `[batch, ...]`.

    Returns:
        A tensor of shape `[batch]` (a scalar for rank-one input).
    """
    rank = values.shape.rank
    if rank is None:
        raise ValueError("sum_per_example needs a tensor of known rank.")
    axes = list(range(1, rank)) if rank > 1 else [0]
    return tf.reduce_sum(values, axis=axes)


def standard_normal(shape, seed, dtype=tf.float32):
    """Draws N(0, 1) noise that is the same with and without XLA.

    TensorFlow's stateless normal samplers turn random bits into normals differently under XLA, so the same seed
    gives other noise in a `jit_compile=True` step. The Philox bits themselves agree, so this draws uint32 bits,
    maps their top 24 bits to the open interval (0, 1) and applies the inverse normal CDF (`ndtri`).

    Args:
        shape: the shape of the noise, a list or an int32 tensor.
        seed: an int32 tensor of shape `[2]`, as TFP's `sanitize_seed` returns.
        dtype: a floating dtype for the result.

    Returns:
        A tensor of `shape` and `dtype` of standard normal values.
    """
    bits = tf.random.stateless_uniform(
        shape, seed=seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
    )
    top_bits = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32)
    uniform = (top_bits + 0.5) * (2.0**-24)
    return tf.cast(tf.math.ndtri(uniform), dtype)
