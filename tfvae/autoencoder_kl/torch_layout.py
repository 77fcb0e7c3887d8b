"""PyTorch's tensor layout and Keras': how a diffusers tensor becomes a Keras variable, for both autoencoders.

PyTorch keeps a convolution kernel as `[out, in, *window]` and a linear one as `[out, in]`; Keras keeps them as
`[*window, in, out]` and `[in, out]`, so one transpose (reversing the last two axes to the front) maps one onto the
other. Biases and GroupNorm scales and shifts are laid out alike.
"""

import keras
import numpy as np


def to_keras_kernel(array):
    """A PyTorch kernel `[out, in, *window]` as a Keras kernel `[*window, in, out]`."""
    return np.transpose(array, (*range(2, array.ndim), 1, 0))


def to_torch_kernel(kernel):
    """A Keras kernel `[*window, in, out]` as a PyTorch kernel `[out, in, *window]` (`to_keras_kernel`'s inverse)."""
    return np.transpose(kernel, (kernel.ndim - 1, kernel.ndim - 2, *range(kernel.ndim - 2)))


def torch_shape(keras_shape):
    """A Keras variable's shape in PyTorch's order: `[kh, kw, in, out]` -> `[out, in, kh, kw]`; a vector's as is."""
    keras_shape = tuple(keras_shape)
    return keras_shape if len(keras_shape) == 1 else (keras_shape[-1], keras_shape[-2], *keras_shape[:-2])


def same_layout(array):
    """`array` unchanged: the conversion of a tensor PyTorch and Keras lay out alike (a bias, a GroupNorm's scale)."""
    return array


def named_variables(named_layers, to_keras):
    """`(diffusers name, (variable, conversion))` for the GroupNorms' and the other layers' (convolutions', dense
    layers') variables of `named_layers`, `(diffusers name, layer)` pairs; `to_keras` converts a PyTorch kernel to
    the layer's (`to_keras_kernel`, or one that also reshapes it), `same_layout` the rest."""
    for name, layer in named_layers:
        if isinstance(layer, keras.layers.GroupNormalization):
            yield f"{name}.weight", (layer.gamma, same_layout)
            yield f"{name}.bias", (layer.beta, same_layout)
        else:
            yield f"{name}.weight", (layer.kernel, to_keras)
            yield f"{name}.bias", (layer.bias, same_layout)
