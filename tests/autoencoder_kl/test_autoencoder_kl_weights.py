"""`AutoencoderKL.from_pretrained` against the outputs of diffusers' own AutoencoderKL (tests/fixtures/autoencoder_kl,
written by scripts/make_autoencoder_kl_fixtures.py)."""

import json
import os
import shutil

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tfvae import AutoencoderKL
from tfvae.autoencoder_kl import WeightsError

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "autoencoder_kl")
DIFFUSERS_FOLDER = os.path.join(FIXTURES, "diffusers")
LATENT_DIFFUSION_FILE = os.path.join(FIXTURES, "latent_diffusion.safetensors")
FIXTURE_SHAPES = dict(
    in_channels=3,
    out_channels=3,
    block_out_channels=(16, 32, 32),
    layers_per_block=2,
    latent_channels=4,
    use_quant_conv=True,
    use_post_quant_conv=True,
    mid_block_add_attention=True,
)


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(os.path.join(FIXTURES, "parity.npz")))


def assert_matches_diffusers(model, expected):
    posterior = model.encode(expected["images"])
    np.testing.assert_allclose(posterior.mean(), expected["mean"], atol=1e-4)
    np.testing.assert_allclose(posterior.logvar, expected["logvar"], atol=1e-4)
    np.testing.assert_allclose(model.decode(posterior.mode()), expected["decoded"], atol=1e-4)


def test_diffusers_folder_gives_diffusers_outputs_and_config(expected):
    model = AutoencoderKL.from_pretrained(DIFFUSERS_FOLDER)
    assert {name: getattr(model, name) for name in FIXTURE_SHAPES} == FIXTURE_SHAPES
    assert (model.norm_num_groups, model.scaling_factor, model.shift_factor) == (8, 0.5, 0.1)
    assert_matches_diffusers(model, expected)


def test_latent_diffusion_file_gives_diffusers_outputs_with_the_config_its_shapes_tell(expected):
    model = AutoencoderKL.from_pretrained(LATENT_DIFFUSION_FILE, norm_num_groups=8)
    assert {name: getattr(model, name) for name in FIXTURE_SHAPES} == FIXTURE_SHAPES
    assert (model.scaling_factor, model.shift_factor) == (0.18215, None)  # not in the shapes: diffusers' defaults
    assert_matches_diffusers(model, expected)


def test_keyword_arguments_override_config_json_of_a_pipeline_folder(tmp_path):
    shutil.copytree(DIFFUSERS_FOLDER, str(tmp_path / "pipeline" / "vae"))
    model = AutoencoderKL.from_pretrained(str(tmp_path / "pipeline"), scaling_factor=0.3, seed=7)
    assert (model.scaling_factor, model.shift_factor, model.seed, model.norm_num_groups) == (0.3, 0.1, 7, 8)


def test_whole_checkpoint_and_older_diffusers_attention_names_load(tmp_path, expected):
    # A Stable Diffusion checkpoint keeps its VAE under "first_stage_model." beside the UNet's tensors.
    tensors = load_file(LATENT_DIFFUSION_FILE)
    checkpoint = {f"first_stage_model.{key}": value for key, value in tensors.items()}
    checkpoint["model.diffusion_model.input_blocks.0.0.weight"] = np.zeros((2, 2), "float32")
    save_file(checkpoint, str(tmp_path / "checkpoint.safetensors"))
    model = AutoencoderKL.from_pretrained(str(tmp_path / "checkpoint.safetensors"), norm_num_groups=8)
    assert_matches_diffusers(model, expected)

    # diffusers files written before 0.14 name the attention query, key, value and proj_attn.
    old_names = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
    old = {}
    for key, value in load_file(os.path.join(DIFFUSERS_FOLDER, "diffusion_pytorch_model.safetensors")).items():
        for new_name, old_name in old_names.items():
            key = key.replace(new_name, old_name)
        old[key] = value
    assert "decoder.mid_block.attentions.0.proj_attn.weight" in old
    save_file(old, str(tmp_path / "old.safetensors"))
    model = AutoencoderKL.from_pretrained(str(tmp_path / "old.safetensors"), norm_num_groups=8)
    assert_matches_diffusers(model, expected)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_half_precision_files_load_as_float32(tmp_path, dtype):
    tensors = {key: value.astype(dtype) for key, value in load_file(LATENT_DIFFUSION_FILE).items()}
    save_file(tensors, str(tmp_path / "half.safetensors"))
    model = AutoencoderKL.from_pretrained(str(tmp_path / "half.safetensors"), norm_num_groups=8)
    kernel = model.encoder.conv_in.kernel
    assert kernel.dtype == "float32"
    np.testing.assert_array_equal(kernel, tensors["encoder.conv_in.weight"].astype("float32").transpose(2, 3, 1, 0))


def test_a_folder_of_sharded_weights_loads(tmp_path, expected):
    """diffusers' `save_pretrained(max_shard_size=...)` layout: shards and the index naming each tensor's shard."""
    folder = tmp_path / "sharded"
    folder.mkdir()
    shutil.copy(os.path.join(DIFFUSERS_FOLDER, "config.json"), folder)
    tensors = load_file(os.path.join(DIFFUSERS_FOLDER, "diffusion_pytorch_model.safetensors"))
    names = sorted(tensors)
    shards = {f"diffusion_pytorch_model-0000{i + 1}-of-00002.safetensors": names[i::2] for i in range(2)}
    for shard, keys in shards.items():
        save_file({key: tensors[key] for key in keys}, str(folder / shard))
    index = {"weight_map": {key: shard for shard, keys in shards.items() for key in keys}}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    assert_matches_diffusers(AutoencoderKL.from_pretrained(str(folder)), expected)


def test_missing_and_unexpected_tensors_are_named(tmp_path):
    tensors = load_file(LATENT_DIFFUSION_FILE)
    del tensors["encoder.mid.attn_1.q.bias"]
    tensors["decoder.extra.weight"] = np.zeros(3, "float32")
    path = str(tmp_path / "vae.safetensors")
    save_file(tensors, path)
    with pytest.raises(WeightsError) as error:
        AutoencoderKL.from_pretrained(path, norm_num_groups=8)
    message = str(error.value)
    assert path in message
    assert "1 missing: encoder.mid_block.attentions.0.to_q.bias" in message
    assert "1 unexpected: decoder.extra.weight" in message


def test_a_configuration_that_does_not_fit_names_the_tensors():
    with pytest.raises(WeightsError) as error:
        AutoencoderKL.from_pretrained(LATENT_DIFFUSION_FILE, norm_num_groups=8, block_out_channels=(16, 32, 64))
    assert "mis-shaped: encoder.down.2.block.0.conv1.weight (32, 32, 3, 3) (the model needs (64, 32, 3, 3))" in str(
        error.value
    )
    assert "4 missing: decoder.up_blocks.1.resnets.0.conv_shortcut.bias" in str(error.value)
    with pytest.raises(WeightsError, match=r"48 unexpected: decoder\.up_blocks\.0\.resnets\.2\.conv1\.bias"):
        AutoencoderKL.from_pretrained(DIFFUSERS_FOLDER, layers_per_block=1)


def test_files_that_are_not_weights_are_named(tmp_path):
    with pytest.raises(WeightsError, match="No weights file at"):
        AutoencoderKL.from_pretrained(str(tmp_path / "missing.safetensors"))
    (tmp_path / "vae.ckpt").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="vae.ckpt is not a readable safetensors file"):
        AutoencoderKL.from_pretrained(str(tmp_path / "vae.ckpt"))
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(WeightsError, match="config.json is missing"):
        AutoencoderKL.from_pretrained(str(folder))
    shutil.copytree(DIFFUSERS_FOLDER, str(tmp_path / "other"))
    config_path = tmp_path / "other" / "config.json"
    config = json.loads(config_path.read_text())
    config["up_block_types"][0] = "AttnUpDecoderBlock2D"
    config_path.write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="AttnUpDecoderBlock2D"):
        AutoencoderKL.from_pretrained(str(tmp_path / "other"))
