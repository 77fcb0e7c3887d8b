"""Speed of `tfvae.AutoencoderKL` against diffusers' PyTorch `AutoencoderKL` of the same config, on this CPU.

Three measurements, each in a fresh process per framework, the frameworks alternating round after round (a shared
machine's other tenants only ever slow a run down, so each row keeps its best round):

- train: images per second of training at `--train-size` (64x64 by default), batch `--train-batch`, each step:
  encode, one posterior sample, decode, latent-diffusion's `sum |x - x_hat| / exp(s) + s` per example plus
  `1e-6 * KL`, the backward pass and an Adam step over the autoencoder and `s`. tfvae runs `AutoencoderKLTrainer.fit`
  on an array of `--train-steps` batches without a discriminator, compiled as a user compiles it (`--mode eager`:
  `jit_compile="auto"`, a graph on CPU) or with XLA (`--mode xla`); PyTorch the same loss in an idiomatic loop
  (`zero_grad`/`backward`/`step`) over as many batches.
- encode: images per second of `encode(x)` and the posterior's mode at `--encode-size` (256x256), batch
  `--encode-batch` (1), without gradients: tfvae's `encode` called eagerly (`--mode eager`, as a user calls it: a
  graph traced once) or in a `tf.function` with XLA (`--mode xla`), diffusers' `vae.encode(x).latent_dist.mode()`
  under `torch.no_grad()`.
- decode: the same for `decode(z)` of latents of the same images.

`--preset readme` is the README's config (block_out_channels 64/128/128/256, 1 layer per block), `--preset sd`
Stable Diffusion's (128/256/512/512, 2 layers per block); both have 32 groups and 4 latent channels.

Each process reports the best of `--repeats` timed calls after a warm-up call, the seconds of the first call
(tracing and compilation for tfvae), and its peak resident memory (ru_maxrss). `--pytorch PYTHON` names an
interpreter with torch and diffusers (never a dependency of tfvae); without it only tfvae is measured.
`--profile DIR` writes a `tf.profiler` trace of tfvae's timed train steps, for TensorBoard's profile tab.

The table's header gives the date, the commit, the versions and the command. The final comparison, on a quiet
machine:

    for preset in readme sd; do
        python scripts/benchmark_autoencoder_kl.py --pytorch /work/venv-torch/bin/python --preset $preset --rounds 3
    done
"""

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time

from benchmark import best_seconds  # scripts/benchmark.py, beside this script

KL_WEIGHT = 1e-6
TASKS = ("train", "encode", "decode")
PRESETS = {
    "readme": {"block_out_channels": [64, 128, 128, 256], "layers_per_block": 1},
    "sd": {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2},
}


def images(batch, size, seed=0):
    import numpy as np

    return np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def config_of(args):
    return {"block_out_channels": args.block_out_channels, "layers_per_block": args.layers_per_block,
            "norm_num_groups": args.norm_num_groups, "latent_channels": 4}


def measure_tfvae(task, args):
    import keras
    import tensorflow as tf

    import tfvae
    from tfvae.autoencoder_kl import AutoencoderKLTrainer, LatentDiffusionLoss

    model = tfvae.AutoencoderKL(**config_of(args), seed=0)
    if task == "train":
        trainer = AutoencoderKLTrainer(model, LatentDiffusionLoss(kl_weight=KL_WEIGHT))
        trainer.build((None, args.train_size, args.train_size, 3))
        trainer.compile(keras.optimizers.Adam(1e-4), jit_compile=True if args.mode == "xla" else "auto")
        x = (images(args.train_batch * args.train_steps, args.train_size) + 1) / 2  # the trainer takes [0, 1]
        batch = len(x)

        def step():
            trainer.fit(x, batch_size=args.train_batch, epochs=1, shuffle=False, verbose=0)
    else:
        x = tf.constant(images(args.encode_batch, args.encode_size))
        encode, decode = (lambda x: model.encode(x).mode()), model.decode
        if args.mode == "xla":
            encode, decode = tf.function(encode, jit_compile=True), tf.function(decode, jit_compile=True)
        if task == "decode":
            z = encode(x)
            step = lambda: decode(z).numpy()  # noqa: E731
        else:
            step = lambda: encode(x).numpy()  # noqa: E731
        batch = args.encode_batch
    return time_steps(step, batch, args, profile=args.profile)


def measure_pytorch(task, args):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    channels = args.block_out_channels
    model = AutoencoderKL(block_out_channels=channels, layers_per_block=args.layers_per_block,
                          norm_num_groups=args.norm_num_groups, latent_channels=4,
                          down_block_types=["DownEncoderBlock2D"] * len(channels),
                          up_block_types=["UpDecoderBlock2D"] * len(channels))
    if task == "train":
        logvar = torch.nn.Parameter(torch.zeros(()))
        optimizer = torch.optim.Adam([*model.parameters(), logvar], 1e-4)
        data = torch.from_numpy(images(args.train_batch * args.train_steps, args.train_size)).permute(0, 3, 1, 2)

        def step():
            for x in data.contiguous().split(args.train_batch):
                optimizer.zero_grad()
                posterior = model.encode(x).latent_dist
                x_hat = model.decode(posterior.sample()).sample
                nll = (torch.abs(x - x_hat) / torch.exp(logvar) + logvar).sum() / len(x)
                (nll + KL_WEIGHT * posterior.kl().mean()).backward()
                optimizer.step()

        return time_steps(step, len(data), args)
    x = torch.from_numpy(images(args.encode_batch, args.encode_size)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        z = model.encode(x).latent_dist.mode()

    def run():
        with torch.no_grad():
            model.decode(z) if task == "decode" else model.encode(x).latent_dist.mode()

    return time_steps(run, args.encode_batch, args)


def time_steps(step, batch, args, profile=None):
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    if profile:
        import tensorflow as tf

        tf.profiler.experimental.start(profile)
    seconds = best_seconds(step, args.repeats)
    if profile:
        tf.profiler.experimental.stop()
    return {"images_per_second": batch / seconds, "first_step_seconds": first,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure_in_subprocess(python, framework, task, argv):
    command = [python, os.path.abspath(__file__), *argv, "--worker", f"{framework},{task}"]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pytorch", metavar="PYTHON", help="an interpreter with torch and diffusers")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a config (overrides the next two)")
    parser.add_argument("--block-out-channels", type=int, nargs="+", default=[64, 128, 128, 256])
    parser.add_argument("--layers-per-block", type=int, default=1)
    parser.add_argument("--norm-num-groups", type=int, default=32)
    parser.add_argument("--train-size", type=int, default=64)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=2, help="train steps per timed call (one epoch of fit)")
    parser.add_argument("--encode-size", type=int, default=256)
    parser.add_argument("--encode-batch", type=int, default=1)
    parser.add_argument("--mode", choices=("eager", "xla"), default="eager",
                        help="how tfvae runs: as a user calls it, or with XLA")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per process (the best counts)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the frameworks (the best counts)")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--profile", metavar="DIR", help="write a tf.profiler trace of tfvae's timed steps")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "framework,task": measure one, print JSON
    args = parser.parse_args(argv)
    if args.preset:
        vars(args).update(PRESETS[args.preset])
    return args


def header(args, frameworks):
    """The run's date, commit, versions and command, for the table's first lines."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    versions = {name: _versions(python, name == "tfvae") for name, python in frameworks.items()}
    return [
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit.stdout.strip() or '?'}, "
        f"{os.cpu_count()} CPUs",
        *(f"{name}: {version}" for name, version in versions.items()),
        "command: " + " ".join([os.path.basename(sys.executable), *sys.argv]),
    ]


def _versions(python, is_tfvae):
    modules = ("tensorflow", "keras", "numpy") if is_tfvae else ("torch", "diffusers", "numpy")
    code = "import importlib, sys; print(*(m + ' ' + importlib.import_module(m).__version__ for m in sys.argv[1:]))"
    result = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True)
    return result.stdout.strip() or result.stderr.strip()[-200:]


def main():
    argv = sys.argv[1:]
    args = parse_args(argv)
    if args.worker:
        framework, task = args.worker.split(",")
        print(json.dumps((measure_tfvae if framework == "tfvae" else measure_pytorch)(task, args)))
        return
    frameworks = {"tfvae": sys.executable, **({"diffusers (PyTorch)": args.pytorch} if args.pytorch else {})}
    best = {}
    for _ in range(args.rounds):
        for task in args.tasks:
            for name, python in frameworks.items():
                measured = measure_in_subprocess(python, "tfvae" if name == "tfvae" else "pytorch", task, argv)
                kept = best.get((task, name))
                if kept is None or measured["images_per_second"] > kept["images_per_second"]:
                    best[(task, name)] = measured
    print("\n".join(header(args, frameworks)))
    print(f"AutoencoderKL block_out_channels={args.block_out_channels} layers_per_block={args.layers_per_block} "
          f"norm_num_groups={args.norm_num_groups}; tfvae {args.mode}; best of {args.rounds} rounds x "
          f"{args.repeats} steps")
    print(f"{'task':<24} {'framework':<20} {'images/s':>9} {'vs tfvae':>8} {'first call s':>12} {'peak MiB':>9}")
    shapes = {"train": (args.train_size, args.train_batch), "encode": (args.encode_size, args.encode_batch),
              "decode": (args.encode_size, args.encode_batch)}
    for task in args.tasks:
        size, batch = shapes[task]
        for name in frameworks:
            row = best[(task, name)]
            ratio = row["images_per_second"] / best[(task, "tfvae")]["images_per_second"]
            print(f"{f'{task} {size}x{size}, batch {batch}':<24} {name:<20} {row['images_per_second']:>9.2f} "
                  f"{ratio:>8.2f} {row['first_step_seconds']:>12.1f} {row['peak_mib']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
