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


def as_full_precision(values):
    """`values` as a float32 tensor, or float64 if they are float64: half precision is read in float32.

    Distribution maths (clamps, squares, `exp`, `sigmoid`) runs in this precision under mixed precision too.
    """
    values = tf.convert_to_tensor(values, dtype_hint=tf.float32)
    return values if values.dtype == tf.float64 else tf.cast(values, tf.float32)


def standard_normal(shape, seed, dtype=tf.float32):
    """Draws N(0, 1) noise that is the same with and without XLA.

    TensorFlow's stateless normal samplers turn random bits into normals differently under XLA, so the same seed
    gives other noise in a `jit_compile=True` step. The Philox bits themselves agree, so this draws random bits and
    maps them with `normal_from_bits`: 32 bits a value for float32 (and half precision, drawn as float32), 64 for
    float64, whose noise is then computed in float64 (XLA's float64 `ndtri` agrees to a few units in the last
    place).

    Args:
        shape: the shape of the noise, a list or an int32 tensor.
        seed: an int32 tensor of shape `[2]`, as TFP's `sanitize_seed` returns.
        dtype: a floating dtype for the result.

    Returns:
        A tensor of `shape` and `dtype` of standard normal values.
    """
    bits_dtype = tf.uint64 if tf.as_dtype(dtype) == tf.float64 else tf.uint32
    bits = tf.random.stateless_uniform(shape, seed=seed, minval=None, maxval=None, dtype=bits_dtype, alg="philox")
    return tf.cast(normal_from_bits(bits), dtype)


def normal_from_bits(bits):
    """Maps random bits to standard normal values through the inverse normal CDF (`ndtri`): uint32 bits to float32,
    uint64 bits to float64.

    The top 23 bits `k` of a uint32 give `u = (k + 0.5) / 2^23`, the centre of one of 2^23 equal cells of (0, 1).
    Every such `u` is exact in float32, the largest being `1 - 2^-24`, so `ndtri(u)` is always finite (|z| < 5.5);
    with 24 bits the largest `u` would round to 1 and give an infinite sample once in 2^24 draws. A uint64's top 52
    bits give `u` the same way in float64 (|z| < 8.3).
    """
    fraction_bits, dtype = (52, tf.float64) if bits.dtype == tf.uint64 else (23, tf.float32)
    cells = tf.cast(tf.bitwise.right_shift(bits, tf.cast(bits.dtype.size * 8 - fraction_bits, bits.dtype)), dtype)
    return tf.math.ndtri((cells + 0.5) * (2.0**-fraction_bits))
