"""Makes the parity fixtures of `tfvae.AutoencoderKLCogVideoX`: small randomly initialised diffusers models and their
outputs.

Run it in a separate environment with PyTorch and diffusers (never dependencies of tfvae):

    python3 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch==2.13.0 diffusers==0.42.1 safetensors numpy
    /work/venv-torch/bin/python scripts/make_autoencoder_kl_cogvideox_fixtures.py

The reference outputs are computed in float64 from the float32 weights that are saved. It writes
`tests/fixtures/autoencoder_kl_cogvideox/`: one diffusers folder per configuration (`save_pretrained`; `inverted` in
shards with their index), a bfloat16 copy of `small`, and `outputs.npz` with the inputs and diffusers' outputs,
channels last (`[n, T, H, W, C]`):

- `{config}/pixels_{T}`: a clip of T frames of 16 x 16 pixels, int8, the video being `pixels / 127` in float32
  (stored exactly in a quarter of the bytes); `{config}/mean_{T}`, `logvar_{T}` (clamped): the posterior;
  `{config}/decode_{T}`: the decoded posterior mean. 17 frames cross the frame chunks of both encode (9 + 8 frames)
  and decode (3 + 2 latent frames).
- `{config}/latents_even`, `decode_even`: four latent frames, decoded in chunks of two.
- `tiled/pixels`, `tiled/mean`, `tiled/logvar`, `tiled/decode`: `enable_tiling()` with the `small` folder's
  sample size, on a clip of 2 x 2 tiles.
"""

import argparse
import os

import numpy as np
import torch
from diffusers import AutoencoderKLCogVideoX

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                        "autoencoder_kl_cogvideox")
CONFIGS = {
    # CogVideoX-2b's layout (four blocks, temporal compression 4), with tiny widths.
    "small": {
        "block_out_channels": (4, 8, 8, 8),
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 2,
        "sample_height": 96,
        "sample_width": 80,
    },
    # CogVideoX 1.5's flag, with the quant convs, three blocks and a non-default epsilon; saved in shards.
    "inverted": {
        "block_out_channels": (4, 8, 8),
        "down_block_types": ("CogVideoXDownBlock3D",) * 3,
        "up_block_types": ("CogVideoXUpBlock3D",) * 3,
        "latent_channels": 3,  # diffusers sizes the quant convs by out_channels: they run only when the two agree
        "layers_per_block": 2,
        "norm_num_groups": 2,
        "norm_eps": 1e-5,
        "use_quant_conv": True,
        "use_post_quant_conv": True,
        "invert_scale_latents": True,
        "scaling_factor": 0.7,
    },
}
CLIPS = (1, 9, 17)  # frames, of 16 x 16 pixels
TILED_CLIP = (5, 56, 48)  # 2 x 2 tiles of the "small" model (tiles of 48 x 40 pixels starting every 40 x 32)


def random_video(rng, shape):
    """A video in [-1, 1] stored exactly in int8: `pixels / 127` in float32 is the video."""
    return rng.integers(-127, 128, shape).astype("int8")


def randomize(model, generator):
    """Random weights everywhere, GroupNorm scales and biases included (diffusers initialises them to 1 and 0)."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.ndim == 1 and ("norm" in name) and name.endswith("weight"):
                parameter.copy_(1 + 0.2 * noise)
            elif parameter.ndim == 1:
                parameter.copy_(0.1 * noise)
            else:
                fan_in = parameter[0].numel()
                parameter.copy_(noise / fan_in**0.5)


def channels_last(tensor):
    return tensor.permute(0, 2, 3, 4, 1).contiguous().float().numpy()


def channels_first(array):
    """A float64 tensor: the reference outputs are computed in float64, so they hold no float32 rounding."""
    return torch.from_numpy(array).permute(0, 4, 1, 2, 3).contiguous().double()


def record(model, prefix, pixels, outputs, suffix):
    """The posterior and the decoded mean of the video `pixels / 127` (channels last) under `prefix`."""
    video = (pixels.astype("float32") / np.float32(127)).astype("float64")
    with torch.no_grad():
        posterior = model.encode(channels_first(video)).latent_dist
        decoded = model.decode(posterior.mean).sample
    outputs[f"{prefix}/pixels{suffix}"] = pixels
    outputs[f"{prefix}/mean{suffix}"] = channels_last(posterior.mean)
    outputs[f"{prefix}/logvar{suffix}"] = channels_last(posterior.logvar)
    outputs[f"{prefix}/decode{suffix}"] = channels_last(decoded)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=FIXTURES)
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    outputs = {}
    models = {}
    for name, config in CONFIGS.items():
        model = AutoencoderKLCogVideoX(**config).eval()
        randomize(model, generator)
        shard = {"max_shard_size": "40KB"} if name == "inverted" else {}
        model.save_pretrained(os.path.join(args.output, name), **shard)
        model.double()
        models[name] = model
        for frames in CLIPS:
            record(model, name, random_video(rng, (1, frames, 16, 16, 3)), outputs, f"_{frames}")
        latents = rng.normal(size=(1, 4, 2, 2, config["latent_channels"])).astype("float32")
        outputs[f"{name}/latents_even"] = latents
        with torch.no_grad():
            outputs[f"{name}/decode_even"] = channels_last(model.decode(channels_first(latents)).sample)
    small = models["small"]
    small.enable_tiling()
    record(small, "tiled", random_video(rng, (1, *TILED_CLIP, 3)), outputs, "")
    small.to(torch.bfloat16).save_pretrained(os.path.join(args.output, "small_bfloat16"))
    np.savez_compressed(os.path.join(args.output, "outputs.npz"), **outputs)
    print(f"wrote {len(outputs)} arrays to {args.output}")


if __name__ == "__main__":
    main()
