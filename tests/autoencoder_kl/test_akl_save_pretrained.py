"""`AutoencoderKL.save_pretrained` writes what diffusers' own `save_pretrained` writes: the fixture folder
(tests/fixtures/autoencoder_kl/diffusers, written by diffusers) comes back tensor for tensor. That diffusers loads
tfvae's folder to the same outputs is checked by `scripts/make_autoencoder_kl_fixtures.py --check-saved`."""

import json
import os

import numpy as np
import pytest
from safetensors import safe_open

from tfvae import AutoencoderKL

DIFFUSERS_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures",
                                "autoencoder_kl", "diffusers")
WEIGHTS = "diffusion_pytorch_model.safetensors"


def read(folder):
    with open(os.path.join(folder, "config.json")) as file:
        config = json.load(file)
    with safe_open(os.path.join(folder, WEIGHTS), framework="numpy") as file:
        metadata = file.metadata()
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    return config, metadata, tensors


def test_writes_the_folder_diffusers_writes(tmp_path):
    AutoencoderKL.from_pretrained(DIFFUSERS_FOLDER).save_pretrained(str(tmp_path))
    config, metadata, tensors = read(str(tmp_path))
    expected_config, expected_metadata, expected_tensors = read(DIFFUSERS_FOLDER)
    del expected_config["_diffusers_version"]
    assert config == expected_config
    assert metadata == expected_metadata == {"format": "pt"}
    assert sorted(tensors) == sorted(expected_tensors)
    for key, tensor in expected_tensors.items():
        assert tensors[key].dtype == tensor.dtype and tensors[key].shape == tensor.shape, key
        np.testing.assert_array_equal(tensors[key], tensor, err_msg=key)


def test_round_trips_a_model_with_latent_statistics(tmp_path):
    model = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=4, latent_channels=2, use_quant_conv=False,
                          latents_mean=[0.5, -0.5], latents_std=[2.0, 3.0], sample_size=64, force_upcast=True)
    model.save_pretrained(str(tmp_path))
    copy = AutoencoderKL.from_pretrained(str(tmp_path))
    assert copy.get_config() == {**model.get_config(), "name": copy.name}
    for mine, theirs in zip(model.weights, copy.weights, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_log_variance_clamp_diffusers_cannot_say_is_refused(tmp_path):
    model = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, logvar_range=(-10.0, 10.0))
    with pytest.raises(ValueError, match=r"clamps the log-variance to \(-30.0, 20.0\).*model.save"):
        model.save_pretrained(str(tmp_path))
    assert not os.listdir(tmp_path)
