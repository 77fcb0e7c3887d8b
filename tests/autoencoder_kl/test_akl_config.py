"""Every setting of diffusers' AutoencoderKL config is used or refused: latent statistics, force_upcast, sample_size."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from tfvae import AutoencoderKL
from tfvae.autoencoder_kl import WeightsError

DIFFUSERS_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures",
                                "autoencoder_kl", "diffusers")
TINY = dict(block_out_channels=(8, 16), norm_num_groups=4)
MEAN, STD = [-1.5, 1.0, -0.5, 2.0], [8.0, 6.0, 6.5, 5.0]


def images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def folder_with(tmp_path, **entries):
    """A copy of the diffusers fixture folder whose config.json has `entries` changed (None removes one)."""
    folder = tmp_path / "vae"
    shutil.copytree(DIFFUSERS_FOLDER, str(folder))
    config = json.loads((folder / "config.json").read_text())
    config.update(entries)
    (folder / "config.json").write_text(json.dumps({key: value for key, value in config.items() if value is not None}))
    return str(folder)


def test_latent_statistics_scale_latents_as_diffusers_pipelines_do(tmp_path):
    model = AutoencoderKL.from_pretrained(folder_with(tmp_path, latents_mean=MEAN, latents_std=STD, shift_factor=None))
    assert (model.latents_mean, model.latents_std, model.scaling_factor) == (tuple(MEAN), tuple(STD), 0.5)
    z = images((2, 3, 5, 4))
    # SDXL img2img: (z - mean) * scaling_factor / std; SDXL text-to-image decodes latents * std / scaling + mean.
    expected = (z - np.array(MEAN)) * 0.5 / np.array(STD)
    np.testing.assert_allclose(model.scale_latents(z), expected, rtol=1e-6)
    np.testing.assert_allclose(model.unscale_latents(expected), z, atol=1e-6)


def test_shift_factor_scales_latents_as_sd3_and_flux_pipelines_do():
    model = AutoencoderKL(**TINY, scaling_factor=0.3611, shift_factor=0.1159)
    z = images((1, 2, 2, 4))
    np.testing.assert_allclose(model.scale_latents(z), (z - 0.1159) * 0.3611, rtol=1e-6)
    np.testing.assert_allclose(model.unscale_latents(model.scale_latents(z)), z, atol=1e-6)


def test_unknown_settings_and_other_blocks_are_refused_by_name(tmp_path):
    metadata = dict(_diffusers_version="0.99.0", _name_or_path="owner/name", _class_name="AutoencoderKL")
    AutoencoderKL.from_pretrained(folder_with(tmp_path / "ok", **metadata))
    with pytest.raises(WeightsError, match=r"does not know: use_tiling_v2, weird; it would load a different model"):
        AutoencoderKL.from_pretrained(folder_with(tmp_path / "unknown", weird=1, use_tiling_v2=True))
    with pytest.raises(WeightsError, match=r"act_fn=gelu; .* act_fn silu only"):
        AutoencoderKL.from_pretrained(folder_with(tmp_path / "gelu", act_fn="gelu"))
    blocks = ["DownEncoderBlock2D", "AttnDownEncoderBlock2D", "DownEncoderBlock2D"]
    with pytest.raises(WeightsError, match="AttnDownEncoderBlock2D"):
        AutoencoderKL.from_pretrained(folder_with(tmp_path / "attn", down_block_types=blocks))
    with pytest.raises(WeightsError, match="describes a AutoencoderTiny"):
        AutoencoderKL.from_pretrained(folder_with(tmp_path / "tiny", _class_name="AutoencoderTiny"))


def test_force_upcast_defaults_to_diffusers_true_in_a_folder_and_decodes_in_float32(tmp_path):
    assert AutoencoderKL.from_pretrained(folder_with(tmp_path / "default", force_upcast=None)).force_upcast
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        upcast = AutoencoderKL.from_pretrained(DIFFUSERS_FOLDER)
        half = AutoencoderKL.from_pretrained(folder_with(tmp_path / "off", force_upcast=False))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    float32 = AutoencoderKL.from_pretrained(DIFFUSERS_FOLDER)
    z = images((1, 4, 4, 4))
    assert upcast.decode(z).dtype == "float32" and half.decode(z).dtype == "float16"
    assert upcast.encode_moments(images((1, 16, 16, 3))).dtype == "float16"  # the encoder stays 16-bit
    reference = np.asarray(float32.decode(z))
    upcast_error = np.abs(np.asarray(upcast.decode(z)) - reference).max()
    half_error = np.abs(np.asarray(half.decode(z), "float32") - reference).max()
    assert upcast_error < 1e-5 < half_error


def test_sample_size_is_the_default_tile():
    keras.utils.set_random_seed(1)
    model = AutoencoderKL(**TINY, sample_size=(8, 8))
    x = images((1, 16, 24, 3))
    np.testing.assert_array_equal(model.tiled_encode(x).mean(), model.tiled_encode(x, tile_size=8).mean())
    assert np.abs(model.tiled_encode(x).mean() - model.encode(x).mean()).max() > 1e-3  # more than one tile
    z = model.encode(x).mode()
    np.testing.assert_array_equal(model.tiled_decode(z), model.tiled_decode(z, tile_size=8))
    large = AutoencoderKL.from_config({**model.get_config(), "sample_size": 32})
    large.set_weights(model.get_weights())
    np.testing.assert_allclose(large.tiled_encode(x).mean(), large.encode(x).mean(), atol=1e-6)  # one tile


def test_config_round_trips_the_new_settings():
    model = AutoencoderKL(**TINY, sample_size=64, latents_mean=MEAN, latents_std=STD, force_upcast=True)
    copy = AutoencoderKL.from_config(model.get_config())
    assert copy.get_config() == model.get_config()
    assert (copy.sample_size, copy.latents_mean, copy.latents_std, copy.force_upcast) == (64, tuple(MEAN),
                                                                                          tuple(STD), True)
    assert json.loads(json.dumps(model.get_config())) == model.get_config()


@pytest.mark.parametrize("settings, message", [
    (dict(latents_mean=MEAN), "together"),
    (dict(latents_mean=MEAN, latents_std=STD, shift_factor=0.1), "replaces shift_factor"),
    (dict(latents_mean=MEAN[:3], latents_std=STD), r"one value per latent channel \(4\), got 3"),
])
def test_inconsistent_latent_statistics_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderKL(**TINY, **settings)
