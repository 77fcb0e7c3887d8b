"""How far tfvae's float32 `AutoencoderKL` is from a float64 reference, beside PyTorch's (diffusers') float32.

One randomly initialised autoencoder (Stable Diffusion's config by default: block_out_channels 128/256/512/512,
2 layers per block, 32 groups; GroupNorm scales, offsets and biases random too) is written with tfvae's
`save_pretrained` and loaded by both frameworks, each in float32 and in float64. Each encodes a 256x256 photograph
(scikit-image's astronaut, in [-1, 1]) and decodes the float64 posterior mean; the table gives, per framework, the
largest |float32 - float64| of the posterior's mean and log-variance and of the decoded image, and how far the two
float64 references are apart (they compute the same function: it should be ~1e-12).

    python scripts/compare_float32_accuracy.py --pytorch /work/venv-torch/bin/python [--size 256]

The PyTorch side runs in `--pytorch`'s interpreter (torch, diffusers and scikit-image, never tfvae's dependencies).
"""

import argparse
import os
import subprocess
import tempfile

import numpy as np

SD_CONFIG = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32)


def photograph(size):
    """scikit-image's astronaut, its central square resized to `size` x `size`, in [-1, 1], `[1, size, size, 3]`."""
    from skimage import data, transform

    image = data.astronaut()[:, 0:512]
    image = transform.resize(image, (size, size), anti_aliasing=True)
    return (image[None] * 2 - 1).astype(np.float64)


def write_model(folder, config, seed):
    import keras

    import tfvae

    keras.utils.set_random_seed(seed)
    model = tfvae.AutoencoderKL(**config)
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if variable.path.endswith(("gamma", "beta", "bias")):
            low, high = (0.5, 1.5) if variable.path.endswith("gamma") else (-0.1, 0.1)
            variable.assign(rng.uniform(low, high, variable.shape))
    model.save_pretrained(folder)


DTYPES = ("float64", "float32")  # float64 first: both decode its posterior mean


def run_tfvae(folder, x):
    """`{dtype: {"mean", "logvar", "decoded"}}` of tfvae, channels last, float64 arrays."""
    import tfvae

    outputs = {}
    for dtype in DTYPES:
        model = tfvae.AutoencoderKL.from_pretrained(folder, dtype=dtype)
        posterior = model.encode(x.astype(dtype))
        latents = outputs["float64"]["mean"] if outputs else np.asarray(posterior.mean())
        outputs[dtype] = {
            "mean": np.asarray(posterior.mean(), np.float64),
            "logvar": np.asarray(posterior.logvar, np.float64),
            "decoded": np.asarray(model.decode(latents.astype(dtype)), np.float64),
        }
    return outputs


def run_pytorch(folder, x):
    """`run_tfvae`'s outputs from diffusers' AutoencoderKL."""
    import torch
    from diffusers import AutoencoderKL

    outputs = {}
    for dtype in DTYPES:
        model = AutoencoderKL.from_pretrained(folder, torch_dtype=getattr(torch, dtype)).eval()

        def nchw(array, dtype=dtype):
            return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2).astype(dtype)))

        with torch.no_grad():
            posterior = model.encode(nchw(x)).latent_dist
            latents = nchw(outputs["float64"]["mean"]) if outputs else posterior.mean
            decoded = model.decode(latents).sample
        outputs[dtype] = {name: value.permute(0, 2, 3, 1).double().numpy() for name, value in
                          (("mean", posterior.mean), ("logvar", posterior.logvar), ("decoded", decoded))}
    return outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pytorch", metavar="PYTHON", help="an interpreter with torch, diffusers and scikit-image")
    parser.add_argument("--size", type=int, default=256, help="the photograph's side in pixels")
    parser.add_argument("--block-out-channels", type=int, nargs="+", default=list(SD_CONFIG["block_out_channels"]))
    parser.add_argument("--layers-per-block", type=int, default=SD_CONFIG["layers_per_block"])
    parser.add_argument("--norm-num-groups", type=int, default=SD_CONFIG["norm_num_groups"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", nargs=2, metavar=("FOLDER", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    x = photograph(args.size)
    if args.worker:  # PyTorch's side, in its own interpreter
        outputs = run_pytorch(args.worker[0], x)
        np.savez(args.worker[1], **{f"{dtype}/{name}": value for dtype, named in outputs.items()
                                    for name, value in named.items()})
        return
    config = dict(block_out_channels=args.block_out_channels, layers_per_block=args.layers_per_block,
                  norm_num_groups=args.norm_num_groups)
    with tempfile.TemporaryDirectory() as folder:
        write_model(folder, config, args.seed)
        results = {"tfvae": run_tfvae(folder, x)}
        if args.pytorch:
            path = os.path.join(folder, "pytorch.npz")
            subprocess.run([args.pytorch, os.path.abspath(__file__), "--size", str(args.size), "--worker", folder,
                            path], check=True)
            saved = np.load(path)
            results["PyTorch"] = {dtype: {name: saved[f"{dtype}/{name}"] for name in ("mean", "logvar", "decoded")}
                                  for dtype in DTYPES}
    print(f"AutoencoderKL {config}, a {args.size}x{args.size} photograph: max |float32 - float64|")
    print(f"{'framework':<10} {'mean':>10} {'logvar':>10} {'decoded':>10}")
    for framework, outputs in results.items():
        errors = [np.abs(outputs["float32"][name] - outputs["float64"][name]).max() for name in
                  ("mean", "logvar", "decoded")]
        print(f"{framework:<10} " + " ".join(f"{error:>10.2e}" for error in errors))
    if "PyTorch" in results:
        gaps = [np.abs(results["tfvae"]["float64"][name] - results["PyTorch"]["float64"][name]).max()
                for name in ("mean", "logvar", "decoded")]
        print(f"{'float64 tfvae - float64 PyTorch':<10} " + " ".join(f"{gap:>10.2e}" for gap in gaps))


if __name__ == "__main__":
    main()
