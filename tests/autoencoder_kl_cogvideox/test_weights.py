"""`AutoencoderKLCogVideoX.from_pretrained`: diffusers folders, pipeline folders, shards, bfloat16, and the errors
that name what does not fit."""

import json
import os
import shutil

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from autoencoder_kl_cogvideox.fixtures import FIXTURES, video
from tfvae.autoencoder_kl.safetensors_files import read_folder
from tfvae.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX, WeightsError

SMALL = os.path.join(FIXTURES, "small")
WEIGHTS = "diffusion_pytorch_model.safetensors"


def test_the_folder_config_is_read(small, inverted):
    assert (small.block_out_channels, small.latent_channels, small.norm_num_groups) == ((4, 8, 8, 8), 4, 2)
    assert (small.sample_height, small.sample_width, small.invert_scale_latents) == (96, 80, False)
    assert (inverted.invert_scale_latents, inverted.use_quant_conv, inverted.norm_eps) == (True, True, 1e-5)
    assert inverted.scaling_factor == 0.7


def test_a_pipeline_folder_loads_its_vae_subfolder(tmp_path, small, expected):
    shutil.copytree(SMALL, tmp_path / "vae")
    model = AutoencoderKLCogVideoX.from_pretrained(str(tmp_path))
    x = video(expected, "small/pixels_1")
    np.testing.assert_array_equal(model.encode(x).mean(), small.encode(x).mean())


def test_bfloat16_tensors_are_widened_exactly_to_float32(small):
    bfloat16 = AutoencoderKLCogVideoX.from_pretrained(os.path.join(FIXTURES, "small_bfloat16"))
    for loaded, full in zip(bfloat16.weights, small.weights, strict=True):
        rounded = np.asarray(full).astype(ml_dtypes.bfloat16).astype("float32")
        np.testing.assert_array_equal(loaded, rounded, err_msg=loaded.path)


def test_shards_are_read_through_their_index(inverted):
    assert os.path.exists(os.path.join(FIXTURES, "inverted", WEIGHTS + ".index.json"))
    assert len(read_folder(os.path.join(FIXTURES, "inverted"))) == len(inverted.weights)


def test_missing_unexpected_and_misshaped_tensors_are_named_in_one_error(tmp_path):
    shutil.copy(os.path.join(SMALL, "config.json"), tmp_path)
    tensors = load_file(os.path.join(SMALL, WEIGHTS))
    del tensors["encoder.conv_in.conv.weight"]
    tensors["encoder.extra.weight"] = np.zeros(3, "float32")
    tensors["decoder.norm_out.conv_y.conv.bias"] = np.zeros(5, "float32")
    save_file(tensors, os.path.join(tmp_path, WEIGHTS))
    with pytest.raises(WeightsError) as error:
        AutoencoderKLCogVideoX.from_pretrained(str(tmp_path))
    message = str(error.value)
    assert "1 missing: encoder.conv_in.conv.weight" in message
    assert "1 unexpected: encoder.extra.weight" in message
    assert "1 mis-shaped: decoder.norm_out.conv_y.conv.bias (5,)" in message


def test_unknown_config_keys_are_one_clear_error_metadata_aside(tmp_path):
    shutil.copy(os.path.join(SMALL, WEIGHTS), tmp_path)
    with open(os.path.join(SMALL, "config.json")) as file:
        config = json.load(file)
    assert "_class_name" in config and "_diffusers_version" in config
    config.update(mid_block_add_attention=True, sample_size=64, _name_or_path="somewhere")
    with open(tmp_path / "config.json", "w") as file:
        json.dump(config, file)
    with pytest.raises(WeightsError, match="does not know: mid_block_add_attention, sample_size"):
        AutoencoderKLCogVideoX.from_pretrained(str(tmp_path))


def test_another_class_and_missing_files_are_refused(tmp_path):
    with pytest.raises(WeightsError, match="config.json is missing"):
        AutoencoderKLCogVideoX.from_pretrained(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    with pytest.raises(WeightsError, match="describes a AutoencoderKL"):
        AutoencoderKLCogVideoX.from_pretrained(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKLCogVideoX"}))
    with pytest.raises(WeightsError, match="holds neither"):
        AutoencoderKLCogVideoX.from_pretrained(str(tmp_path))


def test_config_arguments_override_the_folder():
    with pytest.raises(WeightsError, match="mis-shaped"):
        AutoencoderKLCogVideoX.from_pretrained(SMALL, latent_channels=8)
