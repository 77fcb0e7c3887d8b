"""The safetensors files diffusers writes, read with NumPy alone: one file, or the shards its index lists; bfloat16
tensors (as CogVideoX and FLUX.1 ship them) widened exactly to float32."""

import contextlib
import json
import os

import ml_dtypes  # NumPy's bfloat16, into which safetensors' NumPy API reads bfloat16 tensors
import numpy as np
from safetensors import SafetensorError, safe_open

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = WEIGHTS_NAME + ".index.json"  # the index of sharded weights: {"weight_map": {tensor: file}}


class WeightsError(ValueError):
    """A weights file or folder that does not fit the model: missing, unreadable, or with the wrong tensors."""


def read_keys(path, advice=""):
    """The names of the tensors in the safetensors file at `path`, without reading them.

    Raises:
        WeightsError: when the file is missing or is not a safetensors file (`advice` ends the message).
    """
    with _opened(path, advice) as file:
        return list(file.keys())


def read_file(path, keys=None, advice=""):
    """The tensors `keys` (all when None) of the safetensors file at `path`, as NumPy arrays by name, bfloat16
    widened to float32.

    Raises:
        WeightsError: when the file is missing or is not a safetensors file (`advice` ends the message).
    """
    with _opened(path, advice) as file:
        keys = list(file.keys()) if keys is None else keys
        return {key: _widened(file.get_tensor(key)) for key in keys}


@contextlib.contextmanager
def _opened(path, advice):
    """The safetensors file at `path`, open for NumPy, its failures as `WeightsError`."""
    if not os.path.isfile(path):
        raise WeightsError(f"No weights file at {path}.{advice}")
    try:
        with safe_open(path, framework="numpy") as file:
            yield file
    except (SafetensorError, ValueError) as error:
        raise WeightsError(f"{path} is not a readable safetensors file ({error}).{advice}") from error


def read_folder(folder):
    """Every tensor of the diffusers folder, from `diffusion_pytorch_model.safetensors` or from the shards its index
    (`diffusion_pytorch_model.safetensors.index.json`) lists.

    Raises:
        WeightsError: when neither the file nor the index is there, or a file cannot be read.
    """
    single, index = os.path.join(folder, WEIGHTS_NAME), os.path.join(folder, INDEX_NAME)
    if os.path.isfile(single):
        return read_file(single)
    if not os.path.isfile(index):
        raise WeightsError(f"{folder} holds neither {WEIGHTS_NAME} nor {INDEX_NAME}.")
    with open(index) as file:
        shards = sorted(set(json.load(file)["weight_map"].values()))
    tensors = {}
    for shard in shards:
        tensors.update(read_file(os.path.join(folder, shard)))
    return tensors


def _widened(array):
    """`array`, bfloat16 as float32 (exactly: each bfloat16 is the upper half of a float32)."""
    return array.astype(np.float32) if array.dtype == ml_dtypes.bfloat16 else array
