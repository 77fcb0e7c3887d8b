"""Single `.safetensors` files of each latent-diffusion family load with their family's latent scaling: small random
autoencoders written in the family's own key layout (latent-diffusion's keys; SD3's and FLUX.1's `ae.safetensors`
with 16 latent channels and no quant convs), alone or inside a whole checkpoint beside the family's other models."""

import re

import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

from tfvae import AutoencoderKL
from tfvae.autoencoder_kl import WeightsError, weights
from tfvae.autoencoder_kl.families import FamilyError

SD_SHAPES = dict(block_out_channels=(8, 16), norm_num_groups=4, latent_channels=4)
SD3_SHAPES = dict(block_out_channels=(8, 16), norm_num_groups=4, latent_channels=16, use_quant_conv=False,
                  use_post_quant_conv=False)
# A key only the family's whole checkpoint holds (its diffusion model's or text encoder's).
SD_UNET = "model.diffusion_model.input_blocks.0.0.weight"
SDXL_TEXT_ENCODER = "conditioner.embedders.1.model.ln_final.weight"
SD3_MMDIT = "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"
_TO_LATENT_DIFFUSION = (
    (r"^encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block."),
    (r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample."),
    (r"\.mid_block\.resnets\.([01])\.", lambda match: f".mid.block_{int(match.group(1)) + 1}."),
    (r"\.mid_block\.attentions\.0\.group_norm\.", ".mid.attn_1.norm."),
    (r"\.mid_block\.attentions\.0\.to_(q|k|v)\.", r".mid.attn_1.\1."),
    (r"\.mid_block\.attentions\.0\.to_out\.0\.", ".mid.attn_1.proj_out."),
    (r"\.conv_shortcut\.", ".nin_shortcut."),
    (r"\.conv_norm_out\.", ".norm_out."),
)


def latent_diffusion_tensors(model):
    """`model`'s tensors under latent-diffusion's original keys (decoder blocks numbered from the coarsest; the
    attention's projections as 1x1 convolutions), as Stable Diffusion, SD3 and FLUX.1 single files hold them."""
    blocks = len(model.block_out_channels)
    tensors = {}
    for name, array in weights.diffusers_tensors(model):
        for pattern, replacement in _TO_LATENT_DIFFUSION:
            name = re.sub(pattern, replacement, name)
        match = re.match(r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers\.0)\.", name)
        if match:
            kind = "block" if match.group(2) == "resnets" else "upsample"
            name = f"decoder.up.{blocks - 1 - int(match.group(1))}.{kind}." + name[match.end():]
        if ".attn_1." in name and array.ndim == 2:
            array = array[:, :, None, None]
        tensors[name] = array
    return tensors


def write_file(path, shapes, prefix="", extra=()):
    """A random autoencoder of `shapes` written to `path` in latent-diffusion's layout under `prefix`, with `extra`
    `(key, array)` entries; returns the autoencoder."""
    keras.utils.set_random_seed(3)
    model = AutoencoderKL(**shapes)
    tensors = {prefix + key: value for key, value in latent_diffusion_tensors(model).items()}
    save_file({**tensors, **dict(extra)}, str(path))
    return model


def marker(key):
    return key, np.zeros((2, 2), "float32")


def assert_same_autoencoder(loaded, source):
    x = np.random.default_rng(0).uniform(-1, 1, (1, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.encode(x).mean(), source.encode(x).mean())
    z = source.encode(x).mode()
    np.testing.assert_array_equal(loaded.decode(z), source.decode(z))


@pytest.mark.parametrize("shapes, extra, scaling", [
    (SD_SHAPES, [marker(SD_UNET)], (0.18215, None)),
    (SD_SHAPES, [marker(SD_UNET), marker(SDXL_TEXT_ENCODER)], (0.13025, None)),
    (SD3_SHAPES, [marker(SD3_MMDIT)], (1.5305, 0.0609)),
    (SD3_SHAPES, [marker("double_blocks.0.img_attn.norm.key_norm.scale")], (0.3611, 0.1159)),
], ids=["sd", "sdxl", "sd3", "flux"])
def test_a_whole_checkpoint_tells_its_family(tmp_path, shapes, extra, scaling):
    path = tmp_path / "checkpoint.safetensors"
    prefix = "vae." if "double_blocks" in extra[0][0] else "first_stage_model."
    source = write_file(path, shapes, prefix, extra)
    model = AutoencoderKL.from_pretrained(str(path), norm_num_groups=4)
    assert (model.scaling_factor, model.shift_factor, model.latents_mean) == (*scaling, None)
    assert (model.latent_channels, model.use_quant_conv) == (shapes["latent_channels"], shapes.get("use_quant_conv",
                                                                                                    True))
    assert model.force_upcast  # diffusers' default
    assert_same_autoencoder(model, source)


def test_an_autoencoder_alone_with_16_channels_needs_its_family(tmp_path):
    path = tmp_path / "ae.safetensors"
    source = write_file(path, SD3_SHAPES)
    with pytest.raises(FamilyError, match=r"ae.safetensors holds a 16-channel autoencoder.*family='sd3' or "
                                          r"family='flux'"):
        AutoencoderKL.from_pretrained(str(path), norm_num_groups=4)
    for family, scaling in (("flux", (0.3611, 0.1159)), ("sd3", (1.5305, 0.0609))):
        model = AutoencoderKL.from_pretrained(str(path), family=family, norm_num_groups=4)
        assert (model.scaling_factor, model.shift_factor) == scaling
    assert_same_autoencoder(model, source)
    own = AutoencoderKL.from_pretrained(str(path), scaling_factor=1.0, shift_factor=0.5, norm_num_groups=4)
    assert (own.scaling_factor, own.shift_factor) == (1.0, 0.5)


def test_an_sdxl_autoencoder_alone_is_read_as_stable_diffusion_unless_its_family_is_named(tmp_path):
    path = tmp_path / "sdxl_vae.safetensors"
    write_file(path, SD_SHAPES)
    assert AutoencoderKL.from_pretrained(str(path), norm_num_groups=4).scaling_factor == 0.18215
    assert AutoencoderKL.from_pretrained(str(path), family="sdxl", norm_num_groups=4).scaling_factor == 0.13025
    with pytest.raises(FamilyError, match=r"Unknown family='sd4'; choose one of 'sd', 'sdxl', 'sd3', 'flux'"):
        AutoencoderKL.from_pretrained(str(path), family="sd4", norm_num_groups=4)


def test_playground_checkpoints_carry_their_latent_statistics(tmp_path):
    path = tmp_path / "playground-v2.5.safetensors"
    mean, std = np.array([-1.5, 1.8, -1.3, 2.5]), np.array([8.5, 5.9, 6.5, 5.2])
    statistics = [("edm_mean", mean.reshape(1, 4, 1, 1)), ("edm_std", std.reshape(1, 4, 1, 1))]
    source = write_file(path, SD_SHAPES, "first_stage_model.", [marker(SDXL_TEXT_ENCODER), *statistics])
    model = AutoencoderKL.from_pretrained(str(path), norm_num_groups=4)
    assert (model.scaling_factor, model.shift_factor) == (0.5, None)
    np.testing.assert_allclose(model.latents_mean, mean)
    np.testing.assert_allclose(model.latents_std, std)
    assert_same_autoencoder(model, source)


def test_family_is_for_single_files(tmp_path):
    keras.utils.set_random_seed(3)
    AutoencoderKL(**SD_SHAPES).save_pretrained(str(tmp_path / "vae"))
    with pytest.raises(WeightsError, match="family='sdxl' is for single files"):
        AutoencoderKL.from_pretrained(str(tmp_path / "vae"), family="sdxl")
