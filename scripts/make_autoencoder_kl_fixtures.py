"""Writes the diffusers parity fixtures of `tfvae.AutoencoderKL` (tests/fixtures/autoencoder_kl/).

Runs with real PyTorch and diffusers, in their own virtual environment (never tfvae's):

    python3 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch diffusers safetensors numpy
    /work/venv-torch/bin/python scripts/make_autoencoder_kl_fixtures.py

It builds a small randomly initialised `diffusers.AutoencoderKL` (random GroupNorm scales and offsets and non-zero
biases too, so that every parameter matters), and writes:

- `diffusers/`: `save_pretrained`'s folder, `config.json` and `diffusion_pytorch_model.safetensors`;
- `latent_diffusion.safetensors`: the same tensors in the original latent-diffusion key layout, as Stable Diffusion
  1.x/2.x VAE files ship them; the script checks that diffusers' own converter
  (`convert_ldm_vae_checkpoint`) turns it back into the diffusers tensors exactly;
- `parity.npz`: `images` `[n, h, w, 3]` in [-1, 1], and diffusers' outputs for them: the posterior's `mean` and
  clamped `logvar` `[n, h / f, w / f, latent_channels]` and `decoded` = `decode(mean)` `[n, h, w, 3]`, all channels
  last (tfvae's layout), float32; and for larger `tiled_images`, diffusers' tiled results with tiles of
  `TILE_SIZE` pixels: `tiled_mean`, `tiled_logvar` (`tiled_encode`) and `tiled_decoded` (`tiled_decode(tiled_mean)`),
  with the untiled `untiled_mean` and `untiled_decoded` for comparison.

With `--check-saved FOLDER` it writes nothing: it loads FOLDER, written by tfvae's `AutoencoderKL.save_pretrained`
from the `diffusers/` fixture, with diffusers' `AutoencoderKL.from_pretrained`, and checks that its outputs for the
fixture's images are within 1e-4 of `parity.npz`:

    PYTHONPATH=. /work/venv/bin/python -c "import tfvae; tfvae.AutoencoderKL.from_pretrained(
        'tests/fixtures/autoencoder_kl/diffusers').save_pretrained('/tmp/saved')"
    /work/venv-torch/bin/python scripts/make_autoencoder_kl_fixtures.py --check-saved /tmp/saved
"""

import argparse
import json
import os
import re

import diffusers
import numpy as np
import safetensors
import torch
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from safetensors.torch import save_file

CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [16, 32, 32],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 8,
    "scaling_factor": 0.5,
    "shift_factor": 0.1,
}
IMAGES_SHAPE = (2, 3, 32, 24)  # NCHW, height and width divisible by f = 4, not square
TILED_IMAGES_SHAPE = (1, 3, 64, 56)  # larger than a tile: 3 x 3 tiles of 32 pixels every 24 pixels
TILE_SIZE = 32  # diffusers' tile_sample_min_size; tile_overlap_factor keeps its default, 0.25
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "autoencoder_kl")


def randomized_autoencoder(seed):
    """A diffusers AutoencoderKL whose GroupNorm affine parameters and biases are random too."""
    torch.manual_seed(seed)
    model = diffusers.AutoencoderKL(**CONFIG).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0.0, 0.1)
            elif "norm" in name:  # GroupNorm scales
                parameter.uniform_(0.5, 1.5)
    return model


def latent_diffusion_layout(state_dict, up_blocks):
    """diffusers keys -> latent-diffusion keys (the inverse of diffusers' `convert_ldm_vae_checkpoint`)."""
    renames = (
        (r"^encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block."),
        (r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample."),
        (r"\.mid_block\.resnets\.([01])\.", lambda match: f".mid.block_{int(match.group(1)) + 1}."),
        (r"\.mid_block\.attentions\.0\.group_norm\.", ".mid.attn_1.norm."),
        (r"\.mid_block\.attentions\.0\.to_(q|k|v)\.", r".mid.attn_1.\1."),
        (r"\.mid_block\.attentions\.0\.to_out\.0\.", ".mid.attn_1.proj_out."),
        (r"\.conv_shortcut\.", ".nin_shortcut."),
        (r"\.conv_norm_out\.", ".norm_out."),
    )
    converted = {}
    for key, tensor in state_dict.items():
        name = key
        for pattern, replacement in renames:
            name = re.sub(pattern, replacement, name)
        match = re.match(r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers\.0)\.", name)
        if match:
            kind = "block" if match.group(2) == "resnets" else "upsample"
            name = f"decoder.up.{up_blocks - 1 - int(match.group(1))}.{kind}." + name[match.end() :]
        if ".attn_1." in name and name.endswith("weight") and tensor.ndim == 2:
            tensor = tensor[:, :, None, None]  # latent-diffusion's attention projections are 1x1 convolutions
        converted[name] = tensor.contiguous()
    return converted


def check_latent_diffusion_layout(converted, state_dict, config):
    back = convert_ldm_vae_checkpoint(converted, config)
    assert back.keys() == state_dict.keys(), sorted(set(back) ^ set(state_dict))
    for key, tensor in state_dict.items():
        assert torch.equal(back[key].reshape(tensor.shape), tensor), key


def channels_last(tensor):
    return tensor.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)


def check_saved(folder, fixtures):
    """Asserts that diffusers loads `folder` (tfvae's `save_pretrained`) and reproduces `parity.npz` within 1e-4."""
    model = diffusers.AutoencoderKL.from_pretrained(folder).eval()
    expected = np.load(os.path.join(fixtures, "parity.npz"))
    images = torch.from_numpy(expected["images"]).permute(0, 3, 1, 2)
    with torch.no_grad():
        posterior = model.encode(images).latent_dist
        outputs = {
            "mean": posterior.mean,
            "logvar": posterior.logvar,
            "decoded": model.decode(posterior.mode()).sample,
        }
    for name, output in outputs.items():
        error = np.abs(channels_last(output) - expected[name]).max()
        print(f"{name}: max |diffusers(tfvae's save_pretrained) - parity.npz| = {error:.2e}")
        assert error <= 1e-4, name
    print(f"diffusers {diffusers.__version__} loads {folder} and matches the fixtures.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="the fixtures folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-saved", metavar="FOLDER", help="check tfvae's save_pretrained FOLDER instead")
    args = parser.parse_args()
    if args.check_saved:
        check_saved(args.check_saved, args.output)
        return
    os.makedirs(args.output, exist_ok=True)

    model = randomized_autoencoder(args.seed)
    model.save_pretrained(os.path.join(args.output, "diffusers"), safe_serialization=True)
    state_dict = model.state_dict()
    converted = latent_diffusion_layout(state_dict, len(CONFIG["up_block_types"]))
    check_latent_diffusion_layout(converted, state_dict, dict(model.config))
    save_file(converted, os.path.join(args.output, "latent_diffusion.safetensors"))

    generator = torch.Generator().manual_seed(args.seed + 1)
    images = torch.rand(IMAGES_SHAPE, generator=generator) * 2 - 1
    with torch.no_grad():
        posterior = model.encode(images).latent_dist
        decoded = model.decode(posterior.mode()).sample
    np.savez(
        os.path.join(args.output, "parity.npz"),
        images=channels_last(images),
        mean=channels_last(posterior.mean),
        logvar=channels_last(posterior.logvar),
        decoded=channels_last(decoded),
    )
    images = torch.rand(TILED_IMAGES_SHAPE, generator=generator) * 2 - 1
    with torch.no_grad():
        untiled = model.encode(images).latent_dist
        untiled_decoded = model.decode(untiled.mode()).sample
        model.enable_tiling()
        model.tile_sample_min_size, model.tile_latent_min_size = TILE_SIZE, TILE_SIZE // 4
        tiled = model.encode(images).latent_dist
        tiled_decoded = model.decode(tiled.mode()).sample
    np.savez(
        os.path.join(args.output, "tiling.npz"),
        tiled_images=channels_last(images),
        tiled_mean=channels_last(tiled.mean),
        tiled_logvar=channels_last(tiled.logvar),
        tiled_decoded=channels_last(tiled_decoded),
        untiled_mean=channels_last(untiled.mean),
        untiled_decoded=channels_last(untiled_decoded),
    )
    print(
        "diffusers' tiled - untiled: mean max |difference| "
        f"{(tiled.mean - untiled.mean).abs().max():.3f} (max |untiled| {untiled.mean.abs().max():.3f}), decoded "
        f"{(tiled_decoded - untiled_decoded).abs().max():.3f} (max |untiled| {untiled_decoded.abs().max():.3f})"
    )
    versions = {"torch": torch.__version__, "diffusers": diffusers.__version__, "safetensors": safetensors.__version__}
    with open(os.path.join(args.output, "versions.json"), "w") as file:
        json.dump(versions, file, indent=2)
    print(f"Wrote {args.output} with {versions}; decoded images range {decoded.min():.3f} .. {decoded.max():.3f}")


if __name__ == "__main__":
    main()
