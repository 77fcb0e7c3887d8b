"""The weights of an `AutoencoderKLCogVideoX`: diffusers folders (`config.json` and safetensors, one file or shards).

Tensors keep diffusers' names, with the Keras layers mapped as:

| Keras layer | diffusers tensor prefix |
|---|---|
| `CausalConv3D` `{name}` | `{name}.conv` (`[out, in, 3, 3, 3]`) |
| `SpatialNorm3D` `{name}` | `{name}.norm_layer`, `{name}.conv_y.conv`, `{name}.conv_b.conv` |
| `Downsample3D` / `Upsample3D` `{name}` | `{name}.conv` (a `Conv2d`, `[out, in, 3, 3]`) |
| `resnets_{j}`, `down_blocks_{i}`, `downsamplers_0` | `resnets.{j}`, `down_blocks.{i}`, `downsamplers.0` |

PyTorch kernels `[out, in, *window]` become Keras' `[*window, in, out]` (a `Conv2d` kernel gets a leading window axis of
one frame). Files are read with safetensors' NumPy API, no PyTorch involved; NumPy has no bfloat16, so bfloat16
tensors are read as raw bytes and widened to float32 (exactly: bfloat16 is float32's upper half).
"""

import os

import keras

from tfvae.autoencoder_kl.safetensors_files import read_folder
from tfvae.autoencoder_kl.torch_layout import named_variables, to_keras_kernel
from tfvae.autoencoder_kl.weights import (
    CONFIG_NAME,
    assign,
    autoencoder_folder,
    quant_convs,
    read_diffusers_config,
)
from tfvae.autoencoder_kl_cogvideox.blocks import CausalConv3D, SpatialNorm3D

CLASS_NAME = "AutoencoderKLCogVideoX"
# The config.json entries that are constructor arguments of AutoencoderKLCogVideoX; keys starting with "_"
# (`_class_name`, `_diffusers_version`, `_name_or_path`) are metadata.
CONFIG_ARGUMENTS = (
    "in_channels",
    "out_channels",
    "down_block_types",
    "up_block_types",
    "block_out_channels",
    "latent_channels",
    "layers_per_block",
    "act_fn",
    "norm_eps",
    "norm_num_groups",
    "temporal_compression_ratio",
    "sample_height",
    "sample_width",
    "scaling_factor",
    "shift_factor",
    "latents_mean",
    "latents_std",
    "force_upcast",
    "use_quant_conv",
    "use_post_quant_conv",
    "invert_scale_latents",
)


def load_pretrained(cls, path, **config):
    """`cls(**config)` with the weights of the diffusers folder `path`; see `AutoencoderKLCogVideoX.from_pretrained`."""
    path = autoencoder_folder(path)
    model = cls(**{**read_config(os.path.join(path, CONFIG_NAME)), **config})
    tensors = {name: (name, array) for name, array in read_folder(path).items()}
    assign(model, dict(_variables(model)), tensors, path)
    return model


def read_config(path):
    """The constructor arguments in diffusers' `config.json` at `path`.

    Raises:
        WeightsError: when the file is missing, describes another class, or has keys this model does not know.
    """
    return read_diffusers_config(path, CLASS_NAME, CONFIG_ARGUMENTS)


def _to_keras_conv3d_kernel(array):
    """A PyTorch `Conv3d` or `Conv2d` kernel as a Keras `Conv3D` kernel (`Conv2d`'s window gets one frame)."""
    kernel = to_keras_kernel(array)
    return kernel[None] if array.ndim == 4 else kernel


def _variables(model):
    """`(diffusers name, (variable, conversion))` for every variable of `model`."""
    return named_variables(_named_layers(model), _to_keras_conv3d_kernel)


def _named_layers(model):
    """`(diffusers name, layer)` for every Keras layer of `model` that holds weights."""
    yield from quant_convs(model)
    for prefix in ("encoder", "decoder"):
        yield from _sublayers(prefix, getattr(model, prefix))


def _sublayers(name, layer):
    """`(diffusers name, Keras layer with weights)` in `layer` (named `name`), recursively."""
    if isinstance(layer, CausalConv3D):
        yield f"{name}.conv", layer.conv
    elif isinstance(layer, SpatialNorm3D):
        yield f"{name}.norm_layer", layer.norm_layer
        yield f"{name}.conv_y.conv", layer.conv_y
        yield f"{name}.conv_b.conv", layer.conv_b
    elif isinstance(layer, (keras.layers.GroupNormalization, keras.layers.Conv3D)):
        yield name, layer
    else:
        for child in _children(layer):
            yield from _sublayers(f"{name}.{_diffusers_name(child.name)}", child)


def _children(layer):
    """The layers `layer` holds in its attributes, directly or in lists (as Keras tracks them)."""
    for value in vars(layer).values():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, keras.layers.Layer):
                yield item


def _diffusers_name(keras_name):
    """`resnets_0` -> `resnets.0`: a Keras sublayer's name as the attribute path diffusers gives it."""
    head, _, index = keras_name.rpartition("_")
    return f"{head}.{index}" if index.isdigit() and head else keras_name
