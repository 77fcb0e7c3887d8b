"""Reconstruction quality of a small `tfvae.AutoencoderKL` trained from scratch, beside diffusers' PyTorch
`AutoencoderKL` of the same config trained the same way (issue 25, item 8).

Data: square crops (`--size` pixels) of scikit-image's photographs (`skimage.data`), in [-1, 1]: `--steps` x
`--batch` random crops of astronaut, coffee, rocket and immunohistochemistry to train on (each seen once),
`--validation-crops` of chelsea (a photograph neither side trains on) to validate on. Each seed draws its own crops
and both frameworks get the same ones, in the same order (no shuffling: step `i` trains on the same batch in both).

Training: `--steps` steps of batch `--batch` of latent-diffusion's objective without the discriminator,
`sum_pixels(|x - x_hat| / exp(s) + s) / n + kl_weight * mean KL`, with the learned log-variance `s` (initialised to 0)
and Adam (`--learning-rate`) over the autoencoder and `s`. tfvae trains with its `AutoencoderKLTrainer.fit` and
`LatentDiffusionLoss`; PyTorch with an idiomatic loop (`zero_grad`, `backward`, `step`) on diffusers' model, in its
own interpreter (`--pytorch`, with torch, diffusers and scikit-image; never tfvae's dependencies). Each framework
initialises its weights its own way, unless `--same-init`: then PyTorch starts from tfvae's initial weights (written
with `save_pretrained`).

Validation: PSNR and SSIM (scikit-image's, data range 1, channels last) of the posterior mode's reconstruction of
the validation crops, per seed, and their mean and standard deviation over seeds.

A full run, on a quiet machine:

    python scripts/compare_reconstruction_quality.py --pytorch /work/venv-torch/bin/python \\
        --seeds 0 1 2 --steps 2000 --size 64 --block-out-channels 64 128 256 --layers-per-block 1
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

TRAIN_IMAGES = ("astronaut", "coffee", "rocket", "immunohistochemistry")
VALIDATION_IMAGES = ("chelsea",)


def crops(names, count, size, rng):
    """`count` random `size` x `size` crops of the named `skimage.data` photographs, `[count, size, size, 3]` in
    [-1, 1], float32."""
    from skimage import data

    photographs = [getattr(data, name)()[..., :3] for name in names]
    out = np.empty((count, size, size, 3), np.float32)
    for index in range(count):
        photograph = photographs[rng.integers(len(photographs))]
        top = rng.integers(photograph.shape[0] - size + 1)
        left = rng.integers(photograph.shape[1] - size + 1)
        out[index] = photograph[top:top + size, left:left + size] / 127.5 - 1
    return out


def autoencoder_config(args):
    return {"block_out_channels": args.block_out_channels, "layers_per_block": args.layers_per_block,
            "norm_num_groups": args.norm_num_groups, "latent_channels": args.latent_channels}


def train_tfvae(args, data, folder):
    """Trains tfvae's model on `data["train"]` and returns its reconstructions of `data["validation"]` in [0, 1]."""
    import keras

    import tfvae
    from tfvae.autoencoder_kl import AutoencoderKLTrainer, LatentDiffusionLoss

    keras.utils.set_random_seed(args.seed)
    model = tfvae.AutoencoderKL(**autoencoder_config(args), seed=args.seed)
    if args.same_init:
        model.save_pretrained(os.path.join(folder, "initial"))
    trainer = AutoencoderKLTrainer(model, LatentDiffusionLoss(kl_weight=args.kl_weight))
    trainer.compile(keras.optimizers.Adam(args.learning_rate))
    train = (data["train"][: args.steps * args.batch] + 1) / 2  # the trainer takes [0, 1]
    trainer.fit(train, batch_size=args.batch, epochs=1, shuffle=False, verbose=0)
    return np.asarray(trainer.reconstruct((data["validation"] + 1) / 2))


def train_pytorch(args, data, folder):
    """`train_tfvae` with diffusers' AutoencoderKL in an idiomatic PyTorch loop."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(args.seed)
    blocks = len(args.block_out_channels)
    if args.same_init:
        model = AutoencoderKL.from_pretrained(os.path.join(folder, "initial"))
    else:
        model = AutoencoderKL(**autoencoder_config(args), down_block_types=["DownEncoderBlock2D"] * blocks,
                              up_block_types=["UpDecoderBlock2D"] * blocks)
    logvar = torch.nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.Adam([*model.parameters(), logvar], lr=args.learning_rate)
    train = torch.from_numpy(data["train"]).permute(0, 3, 1, 2)
    model.train()
    for step in range(args.steps):
        x = train[step * args.batch:(step + 1) * args.batch]
        posterior = model.encode(x).latent_dist
        x_hat = model.decode(posterior.sample()).sample
        nll = (torch.abs(x - x_hat) / torch.exp(logvar) + logvar).sum() / len(x)
        loss = nll + args.kl_weight * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(data["validation"]).permute(0, 3, 1, 2)
        reconstruction = model.decode(model.encode(x).latent_dist.mode()).sample
    return ((reconstruction.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()


def quality(reconstructions, validation):
    """`(PSNR, SSIM)` averaged over the validation crops, both images in [0, 1]."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    pairs = list(zip((validation + 1) / 2, np.clip(reconstructions, 0, 1), strict=True))
    psnr = np.mean([peak_signal_noise_ratio(a, b, data_range=1) for a, b in pairs])
    ssim = np.mean([structural_similarity(a, b, data_range=1, channel_axis=-1) for a, b in pairs])
    return float(psnr), float(ssim)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pytorch", metavar="PYTHON", help="an interpreter with torch, diffusers and scikit-image")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="the side of a crop in pixels")
    parser.add_argument("--validation-crops", type=int, default=32)
    parser.add_argument("--block-out-channels", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--layers-per-block", type=int, default=1)
    parser.add_argument("--norm-num-groups", type=int, default=32)
    parser.add_argument("--latent-channels", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--kl-weight", type=float, default=1e-6)
    parser.add_argument("--same-init", action="store_true", help="PyTorch starts from tfvae's initial weights")
    parser.add_argument("--worker", nargs=3, metavar=("FRAMEWORK", "SEED", "FOLDER"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_worker(args):
    """In a worker process: trains one framework on the seed's data in FOLDER and saves its reconstructions."""
    framework, seed, folder = args.worker
    args.seed = int(seed)
    data = dict(np.load(os.path.join(folder, "data.npz")))
    train = train_tfvae if framework == "tfvae" else train_pytorch
    np.save(os.path.join(folder, f"{framework}.npy"), train(args, data, folder))


def main():
    argv = sys.argv[1:]
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    frameworks = {"tfvae": sys.executable, **({"pytorch": args.pytorch} if args.pytorch else {})}
    results = {name: [] for name in frameworks}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as folder:
            rng = np.random.default_rng(seed)
            data = {"train": crops(TRAIN_IMAGES, args.steps * args.batch, args.size, rng),
                    "validation": crops(VALIDATION_IMAGES, args.validation_crops, args.size, rng)}
            np.savez(os.path.join(folder, "data.npz"), **data)
            for name, python in frameworks.items():  # tfvae first: --same-init reads its initial weights
                command = [python, os.path.abspath(__file__), *argv, "--worker", name, str(seed), folder]
                subprocess.run(command, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
                psnr, ssim = quality(np.load(os.path.join(folder, f"{name}.npy")), data["validation"])
                results[name].append((psnr, ssim))
                print(json.dumps({"framework": name, "seed": seed, "psnr": psnr, "ssim": ssim}), flush=True)
    print(f"AutoencoderKL {autoencoder_config(args)}, {args.steps} steps of batch {args.batch}, "
          f"{args.size}x{args.size} crops, Adam {args.learning_rate}, kl_weight {args.kl_weight}, seeds {args.seeds}"
          f"{', same initial weights' if args.same_init else ''}")
    print(f"{'framework':<10} {'PSNR dB':>14} {'SSIM':>16}")
    for name, values in results.items():
        psnr, ssim = np.array(values).T
        print(f"{name:<10} {psnr.mean():>8.2f} ± {psnr.std():<4.2f} {ssim.mean():>9.4f} ± {ssim.std():.4f}")


if __name__ == "__main__":
    main()
