"""The weights people have for an `AutoencoderKL`: diffusers folders and latent-diffusion `.safetensors` files.

Two key layouts name the same tensors:

| diffusers (`diffusion_pytorch_model.safetensors`) | latent-diffusion (Stable Diffusion 1.x/2.x VAE files) |
|---|---|
| `encoder.down_blocks.{i}.resnets.{j}.conv_shortcut` | `encoder.down.{i}.block.{j}.nin_shortcut` |
| `encoder.down_blocks.{i}.downsamplers.0.conv` | `encoder.down.{i}.downsample.conv` |
| `{encoder,decoder}.mid_block.resnets.{0,1}` | `{encoder,decoder}.mid.block_{1,2}` |
| `{encoder,decoder}.mid_block.attentions.0` | `{encoder,decoder}.mid.attn_1` |
| `...attentions.0.{group_norm,to_q,to_k,to_v,to_out.0}` (Linear) | `...attn_1.{norm,q,k,v,proj_out}` (1x1 conv) |
| `decoder.up_blocks.{i}` | `decoder.up.{n - 1 - i}` (numbered from the coarsest) |
| `{encoder,decoder}.conv_norm_out` | `{encoder,decoder}.norm_out` |

Older diffusers files name the attention `query`, `key`, `value`, `proj_attn`; both are read. Tensors are PyTorch's
(convolutions `[out, in, kh, kw]`, linear `[out, in]`) and are transposed to Keras' channels-last kernels. Files are
read and written with safetensors' NumPy API: no PyTorch is involved. `save_pretrained` writes diffusers' layout.
"""

import json
import os
import re

import keras
import numpy as np
from safetensors.numpy import save_file

from tfvae.autoencoder_kl import families, hub
from tfvae.autoencoder_kl.safetensors_files import WEIGHTS_NAME, WeightsError, read_file, read_folder, read_keys
from tfvae.autoencoder_kl.torch_layout import named_variables, to_keras_kernel, to_torch_kernel, torch_shape
from tfvae.distributions import DEFAULT_LOGVAR_RANGE
from tfvae.files.atomic import save_atomically

CONFIG_NAME = "config.json"
PIPELINE_FOLDER = "vae"  # where a diffusers pipeline folder keeps its autoencoder
# Prefixes under which whole latent-diffusion checkpoints keep their autoencoder.
CHECKPOINT_PREFIXES = ("first_stage_model.", "vae.")
_STATISTICS_KEYS = ("edm_mean", "edm_std")  # the latent statistics of a Playground-style file
_UNREADABLE_ADVICE = (" Give a diffusers folder, a .safetensors file or a Hub id; convert PyTorch .ckpt/.bin files "
                      "with safetensors.torch.save_file.")
# The config.json entries that are constructor arguments of AutoencoderKL.
CONFIG_ARGUMENTS = (
    "in_channels",
    "out_channels",
    "block_out_channels",
    "layers_per_block",
    "latent_channels",
    "norm_num_groups",
    "sample_size",
    "scaling_factor",
    "shift_factor",
    "latents_mean",
    "latents_std",
    "force_upcast",
    "use_quant_conv",
    "use_post_quant_conv",
    "mid_block_add_attention",
)
# The config.json entries that describe the one architecture tfvae.AutoencoderKL has, with their only value.
ARCHITECTURE = {"down_block_types": "DownEncoderBlock2D", "up_block_types": "UpDecoderBlock2D", "act_fn": "silu"}
DIFFUSERS_DEFAULTS = {"force_upcast": True}  # where diffusers' default differs from the constructor's
_SINGLE_FILE_ADVICE = ", or leave out those the file's shapes tell"
_LDM_RENAMES = (
    (r"\.mid\.block_([12])\.", lambda match: f".mid_block.resnets.{int(match.group(1)) - 1}."),
    (r"\.mid\.attn_1\.", ".mid_block.attentions.0."),
    (r"^encoder\.down\.(\d+)\.block\.", r"encoder.down_blocks.\1.resnets."),
    (r"^encoder\.down\.(\d+)\.downsample\.", r"encoder.down_blocks.\1.downsamplers.0."),
    (r"\.nin_shortcut\.", ".conv_shortcut."),
    (r"\.norm_out\.", ".conv_norm_out."),
)
_ATTENTION_RENAMES = {
    "norm": "group_norm",
    "q": "to_q",
    "k": "to_k",
    "v": "to_v",
    "proj_out": "to_out.0",
    "query": "to_q",
    "key": "to_k",
    "value": "to_v",
    "proj_attn": "to_out.0",
}


def load_pretrained(cls, path, subfolder=None, revision=None, family=None, **config):
    """`cls(**config)` with the weights at `path`; see `AutoencoderKL.from_pretrained`."""
    if hub.is_repo_id(path):
        path = hub.download_folder(path, (CONFIG_NAME, WEIGHTS_NAME), subfolder, revision)
    elif revision is not None:
        raise WeightsError(f"revision={revision!r} selects a Hub commit, but {path} is local; leave revision out.")
    elif subfolder is not None:
        path = os.path.join(path, subfolder)
    path = autoencoder_folder(path)
    if os.path.isdir(path):
        if family is not None:
            raise WeightsError(f"family={family!r} is for single files; {path} has a config.json that says it all.")
        weights_path = os.path.join(path, WEIGHTS_NAME)
        known, tensors = read_config(os.path.join(path, CONFIG_NAME)), to_diffusers_layout(read_folder(path))
    else:
        weights_path = path
        known, tensors = _read_single_file(path, family, config)
    model = cls(**{**known, **config})
    assign(model, dict(_variables(model)), tensors, weights_path, advice=_SINGLE_FILE_ADVICE)
    return model


def autoencoder_folder(path):
    """The folder of `path` that holds the autoencoder: `path/vae` for a diffusers pipeline folder (one that has a
    `vae` folder and no config.json of its own), else `path`."""
    if os.path.isdir(os.path.join(path, PIPELINE_FOLDER)) and not os.path.exists(os.path.join(path, CONFIG_NAME)):
        return os.path.join(path, PIPELINE_FOLDER)
    return path


def _read_single_file(path, family, config):
    """`(constructor arguments, diffusers-layout tensors)` of one `.safetensors` file: the arguments its shapes tell,
    its family's latent scaling unless `config` gives one, and diffusers' defaults."""
    keys, autoencoder, statistics = read_checkpoint(path)
    tensors = to_diffusers_layout(autoencoder)
    known = {**infer_config(tensors), **DIFFUSERS_DEFAULTS}
    if not {"scaling_factor", "latents_mean"} & set(config):
        latent_channels = config.get("latent_channels", known.get("latent_channels", 4))
        known.update(families.settings(keys, statistics, latent_channels, family, source=path))
    return known, tensors


def read_config(path):
    """The constructor arguments in diffusers' `config.json` at `path`, with diffusers' defaults where they differ
    from the constructor's (`force_upcast`).

    Raises:
        WeightsError: when the file is missing, describes another architecture, or has an entry tfvae does not know
            (see `read_diffusers_config`).
    """
    advice = " Pass the .safetensors file itself to read the configuration from its tensors."
    arguments = read_diffusers_config(path, "AutoencoderKL", CONFIG_ARGUMENTS, ARCHITECTURE, advice)
    return {**DIFFUSERS_DEFAULTS, **arguments}


def read_diffusers_config(path, class_name, arguments, architecture=None, missing_advice=""):
    """The constructor arguments in diffusers' `config.json` at `path`: every entry is used or refused.

    Args:
        path: the `config.json` file.
        class_name: the diffusers class it must describe (its `_class_name`, when it has one).
        arguments: the entries that are constructor arguments, returned when present.
        architecture: `{entry: its only value}` for entries that describe the one architecture the model has (a
            list entry must hold that value only); they are checked, not returned.
        missing_advice: a sentence added to the error for a missing file.

    Returns:
        `{argument: value}` for the entries of `arguments` the file has.

    Raises:
        WeightsError: when the file is missing, describes another class or architecture, or has an entry that is in
            neither `arguments` nor `architecture` (metadata, the entries whose names start with `_`, aside).
    """
    architecture = architecture or {}
    if not os.path.isfile(path):
        raise WeightsError(
            f"{path} is missing: a diffusers folder holds config.json beside its weights.{missing_advice}"
        )
    with open(path) as file:
        config = json.load(file)
    found = config.get("_class_name", class_name)
    if found != class_name:
        raise WeightsError(f"{path} describes a {found}; tfvae.{class_name} reads {class_name} configs only.")
    for key, value in architecture.items():
        values = config.get(key, value)
        if any(entry != value for entry in ([values] if isinstance(values, str) else values)):
            raise WeightsError(
                f"{path} has {key}={values}; tfvae.{class_name} has diffusers' {class_name} with {key} {value} only."
            )
    unknown = sorted(key for key in config if not key.startswith("_") and key not in {*arguments, *architecture})
    if unknown:
        raise WeightsError(
            f"{path} has settings tfvae.{class_name} does not know: {', '.join(unknown)}; it would load a different "
            "model. Remove them only if they do not change it."
        )
    return {key: config[key] for key in arguments if key in config}


def read_checkpoint(path):
    """`(keys, tensors, statistics)` of the `.safetensors` file at `path`: all its keys, the autoencoder's tensors
    as NumPy arrays by name (bfloat16 widened to float32), and the latent statistics some checkpoints hold
    (`families.settings`' `statistics`).

    In a whole latent-diffusion checkpoint the autoencoder's tensors sit under a prefix (`first_stage_model.`); only
    they are read, and the prefix is removed.

    Raises:
        WeightsError: when the file is missing or is not a safetensors file.
    """
    keys = read_keys(path, advice=_UNREADABLE_ADVICE)
    prefix = next((prefix for prefix in CHECKPOINT_PREFIXES if any(key.startswith(prefix) for key in keys)), "")
    statistics_keys = [key for key in _STATISTICS_KEYS if key in keys]
    autoencoder_keys = [key for key in keys if key.startswith(prefix) and key not in statistics_keys]
    tensors = read_file(path, autoencoder_keys + statistics_keys, advice=_UNREADABLE_ADVICE)
    statistics = {key: tensors.pop(key) for key in statistics_keys}
    return keys, {key[len(prefix) :]: value for key, value in tensors.items()}, statistics


def save_pretrained(model, folder):
    """Writes `model` as diffusers' `save_pretrained` does: `folder/config.json` and
    `folder/diffusion_pytorch_model.safetensors` (float32, diffusers' key layout and PyTorch's kernel order), which
    `diffusers.AutoencoderKL.from_pretrained(folder)` and `AutoencoderKL.from_pretrained(folder)` load.

    Raises:
        ValueError: when the model has a setting diffusers' config cannot say (`logvar_range`).
    """
    if tuple(model.posterior.logvar_range) != DEFAULT_LOGVAR_RANGE:
        raise ValueError(
            f"diffusers' AutoencoderKL clamps the log-variance to {DEFAULT_LOGVAR_RANGE}, this model to "
            f"{tuple(model.posterior.logvar_range)}: save it with model.save(...) instead."
        )
    os.makedirs(folder, exist_ok=True)
    tensors = dict(diffusers_tensors(model))
    weights_path = os.path.join(folder, WEIGHTS_NAME)
    save_atomically(lambda path: save_file(tensors, path, metadata={"format": "pt"}), weights_path)
    text = json.dumps(diffusers_config(model), indent=2, sort_keys=True)
    save_atomically(lambda path: _write_text(path, text), os.path.join(folder, CONFIG_NAME))


def _write_text(path, text):
    with open(path, "w") as file:
        file.write(text)


def diffusers_tensors(model):
    """`(diffusers name, float32 array in PyTorch's layout)` for every variable of `model`."""
    for name, (variable, to_keras) in _variables(model):
        value = keras.ops.convert_to_numpy(variable).astype("float32")
        yield name, np.ascontiguousarray(to_torch_kernel(value) if to_keras is to_keras_kernel else value)


def diffusers_config(model):
    """`model`'s settings as diffusers' `AutoencoderKL` `config.json` entries."""
    config = model.get_config()
    blocks = len(model.block_out_channels)
    return {
        "_class_name": "AutoencoderKL",
        "down_block_types": [ARCHITECTURE["down_block_types"]] * blocks,
        "up_block_types": [ARCHITECTURE["up_block_types"]] * blocks,
        "act_fn": ARCHITECTURE["act_fn"],
        **{key: config[key] for key in CONFIG_ARGUMENTS},
    }


def to_diffusers_layout(tensors):
    """Renames latent-diffusion (and older diffusers) keys to diffusers' current layout.

    Returns:
        `{diffusers key: (key in the file, array)}`; 1x1 convolution kernels of the attention become `[out, in]`.
    """
    up_blocks = {int(match.group(1)) for key in tensors if (match := re.match(r"decoder\.up\.(\d+)\.", key))}
    renamed = {}
    for key, array in tensors.items():
        name = _diffusers_key(key, len(up_blocks))
        if ".attentions." in name and array.ndim > 2:
            array = array.reshape(array.shape[:2])
        renamed[name] = (key, array)
    return renamed


def _diffusers_key(key, up_blocks):
    for pattern, replacement in _LDM_RENAMES:
        key = re.sub(pattern, replacement, key)
    match = re.match(r"decoder\.up\.(\d+)\.(block|upsample)\.", key)
    if match:
        index = up_blocks - 1 - int(match.group(1))
        kind = "resnets" if match.group(2) == "block" else "upsamplers.0"
        key = f"decoder.up_blocks.{index}.{kind}." + key[match.end() :]
    match = re.match(r"(.*\.attentions\.0\.)(\w+)\.(weight|bias)$", key)
    if match and match.group(2) in _ATTENTION_RENAMES:
        key = f"{match.group(1)}{_ATTENTION_RENAMES[match.group(2)]}.{match.group(3)}"
    return key


def infer_config(tensors):
    """The constructor arguments that the shapes of diffusers-layout `tensors` tell.

    `block_out_channels` from each encoder block's first convolution, `layers_per_block` from the ResNet blocks of the
    first encoder block, `in_channels`, `out_channels` and `latent_channels` from the outer convolutions, and the
    quant convs and the mid-block attention from their presence. GroupNorm groups and the latent scaling are not in
    the shapes; they keep diffusers' defaults unless given.
    """
    shapes = {name: array.shape for name, (_, array) in tensors.items()}
    config = {
        "use_quant_conv": "quant_conv.weight" in shapes,
        "use_post_quant_conv": "post_quant_conv.weight" in shapes,
        "mid_block_add_attention": "encoder.mid_block.attentions.0.to_q.weight" in shapes,
    }
    blocks = sorted(
        int(match.group(1))
        for name in shapes
        if (match := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.0\.conv1\.weight", name))
    )
    if blocks == list(range(len(blocks))) and blocks:
        config["block_out_channels"] = [shapes[f"encoder.down_blocks.{i}.resnets.0.conv1.weight"][0] for i in blocks]
        config["layers_per_block"] = sum(
            bool(re.fullmatch(r"encoder\.down_blocks\.0\.resnets\.\d+\.conv1\.weight", name)) for name in shapes
        )
    for argument, name, axis in (
        ("in_channels", "encoder.conv_in.weight", 1),
        ("out_channels", "decoder.conv_out.weight", 0),
        ("latent_channels", "decoder.conv_in.weight", 1),
    ):
        if name in shapes:
            config[argument] = shapes[name][axis]
    return config


def assign(model, variables, tensors, source, advice=""):
    """Copies `tensors` into `variables`, all of them or, on any mismatch, none.

    Args:
        model: the model that holds `variables`, described in the error by its class and sizes.
        variables: `{diffusers name: (variable, conversion)}`, the conversion taking the PyTorch-layout array to the
            variable's layout (see `tfvae.autoencoder_kl.torch_layout`).
        tensors: `{diffusers name: (key in the file, PyTorch-layout array)}` (`to_diffusers_layout`'s output).
        source: the file or folder of `tensors`, named in the error.
        advice: a sentence added to the error's advice to pass the arguments the weights were made with.

    Raises:
        WeightsError: naming every missing, unexpected and mis-shaped tensor, before any variable changes.
    """
    missing = sorted(set(variables) - set(tensors))
    unexpected = sorted(tensors[name][0] for name in set(tensors) - set(variables))
    values, misshaped = [], []
    for name, (variable, to_keras) in variables.items():
        if name not in tensors:
            continue
        key, array = tensors[name]
        value = to_keras(array)
        if tuple(value.shape) != tuple(variable.shape):
            misshaped.append(f"{key} {array.shape} (the model needs {torch_shape(variable.shape)})")
        values.append((variable, value))
    if missing or unexpected or misshaped:
        raise WeightsError(_mismatch_message(source, model, missing, unexpected, misshaped, advice))
    for variable, value in values:
        variable.assign(value.astype(variable.dtype))


def _mismatch_message(source, model, missing, unexpected, misshaped, advice):
    class_name = type(model).__name__
    lines = [f"The tensors of {source} do not fit this {class_name} ({_describe(model)}):"]
    for title, names in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if names:
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            lines.append(f"  {len(names)} {title}: {shown}")
    lines.append(
        f"Pass the constructor arguments the weights were made with ({class_name}.from_pretrained(path, "
        f"block_out_channels=..., layers_per_block=..., ...)){advice}."
    )
    return "\n".join(lines)


def _describe(model):
    names = ("block_out_channels", "layers_per_block", "latent_channels", "in_channels", "out_channels")
    return ", ".join(f"{name}={getattr(model, name)}" for name in names)


def _variables(model):
    """`(diffusers name, (variable, conversion))` for every variable of `model`."""
    return named_variables(_named_layers(model), to_keras_kernel)


def quant_convs(model):
    """`(diffusers name, layer)` for the quant convs `model` has (`use_quant_conv`, `use_post_quant_conv`)."""
    for name in ("quant_conv", "post_quant_conv"):
        if getattr(model, f"use_{name}"):
            yield name, getattr(model, name)


def _named_layers(model):
    """`(diffusers name, layer)` for every layer of `model` that holds weights."""
    yield from quant_convs(model)
    for prefix, network, blocks, samplers in (
        ("encoder", model.encoder, "down_blocks", "downsamplers"),
        ("decoder", model.decoder, "up_blocks", "upsamplers"),
    ):
        yield f"{prefix}.conv_in", network.conv_in
        for index, block in enumerate(getattr(network, blocks)):
            for resnet_index, resnet in enumerate(block.resnets):
                yield from _resnet_layers(f"{prefix}.{blocks}.{index}.resnets.{resnet_index}", resnet)
            for sampler in getattr(block, samplers):
                yield f"{prefix}.{blocks}.{index}.{samplers}.0.conv", sampler.conv
        mid_block = network.mid_block
        for index, resnet in enumerate(mid_block.resnets):
            yield from _resnet_layers(f"{prefix}.mid_block.resnets.{index}", resnet)
        for attention in mid_block.attentions:
            for name in ("group_norm", "to_q", "to_k", "to_v"):
                yield f"{prefix}.mid_block.attentions.0.{name}", getattr(attention, name)
            yield f"{prefix}.mid_block.attentions.0.to_out.0", attention.to_out
        yield f"{prefix}.conv_norm_out", network.conv_norm_out
        yield f"{prefix}.conv_out", network.conv_out


def _resnet_layers(name, resnet):
    for layer_name in ("norm1", "conv1", "norm2", "conv2"):
        yield f"{name}.{layer_name}", getattr(resnet, layer_name)
    if resnet.conv_shortcut is not None:
        yield f"{name}.conv_shortcut", resnet.conv_shortcut
