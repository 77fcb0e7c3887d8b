"""Benchmarks `tfvae.AutoencoderKLCogVideoX` against diffusers' PyTorch `AutoencoderKLCogVideoX` with the same weights.

Encode and decode of each clip (default: 9 frames of 64x64 and 17 frames of 128x128), in clips per second, and the
peak resident memory of the process that ran them. Every measurement runs in a fresh subprocess, tfvae with this
Python and diffusers with `--torch-python` (PyTorch is no dependency of tfvae), and the two sides alternate round by
round (tfvae first in odd rounds, diffusers first in even ones) so a change in the machine's load hits both. The
table reports the median rate over the rounds and the largest peak memory.

    python scripts/benchmark_autoencoder_kl_cogvideox.py --rounds 3 --repeats 3
    python scripts/benchmark_autoencoder_kl_cogvideox.py --clips 1x16x16 --block-out-channels 4 4 4 4 \\
        --latent-channels 4 --norm-num-groups 2 --rounds 1 --repeats 1     # a smoke test

The worker modes (`--worker make|tfvae|diffusers`) are what the subprocesses run.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

SIDES = ("tfvae", "diffusers")
TASKS = ("encode", "decode")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=["9x64x64", "17x128x128"], help="FRAMESxHEIGHTxWIDTH")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement, after one warm-up")
    parser.add_argument("--block-out-channels", type=int, nargs="+", default=[32, 32, 64, 64])
    parser.add_argument("--layers-per-block", type=int, default=1)
    parser.add_argument("--latent-channels", type=int, default=16)
    parser.add_argument("--norm-num-groups", type=int, default=8)
    parser.add_argument("--torch-python", default="/work/venv-torch/bin/python")
    parser.add_argument("--worker", choices=("make", *SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--task", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def clip_shape(clip):
    frames, height, width = (int(side) for side in clip.split("x"))
    return frames, height, width


def inputs(task, clip, latent_channels, factor=8):
    """The channels-last input of `task` on `clip`: a video in [-1, 1] or latents, from a fixed seed."""
    frames, height, width = clip_shape(clip)
    rng = np.random.default_rng(0)
    if task == "encode":
        return rng.uniform(-1, 1, (1, frames, height, width, 3)).astype("float32")
    return rng.normal(size=(1, 1 + (frames - 1) // 4, height // factor, width // factor, latent_channels)).astype(
        "float32"
    )


def peak_memory_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(function, repeats):
    """Seconds per call of `function` over `repeats` calls, after one warm-up call."""
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def make_worker(args):
    """Saves a randomly initialised diffusers model of the benchmark's configuration in `args.folder`."""
    import torch
    from diffusers import AutoencoderKLCogVideoX

    torch.manual_seed(0)
    blocks = len(args.block_out_channels)
    AutoencoderKLCogVideoX(
        block_out_channels=tuple(args.block_out_channels),
        down_block_types=("CogVideoXDownBlock3D",) * blocks,
        up_block_types=("CogVideoXUpBlock3D",) * blocks,
        layers_per_block=args.layers_per_block,
        latent_channels=args.latent_channels,
        norm_num_groups=args.norm_num_groups,
    ).save_pretrained(args.folder)


def tfvae_worker(args):
    import keras
    import tensorflow as tf

    from tfvae.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX

    model = AutoencoderKLCogVideoX.from_pretrained(args.folder)
    x = tf.constant(inputs(args.task, args.clip, args.latent_channels, model.downsampling_factor))
    function = (lambda: model.encode(x).mean().numpy()) if args.task == "encode" else (lambda: model.decode(x).numpy())
    return timed(function, args.repeats), {"tensorflow": tf.__version__, "keras": keras.__version__}


def diffusers_worker(args):
    import diffusers
    import torch
    from diffusers import AutoencoderKLCogVideoX

    model = AutoencoderKLCogVideoX.from_pretrained(args.folder).eval()
    factor = 2 ** (len(model.config.block_out_channels) - 1)
    x = torch.from_numpy(inputs(args.task, args.clip, args.latent_channels, factor)).permute(0, 4, 1, 2, 3)

    def function():
        with torch.no_grad():
            return model.encode(x).latent_dist.mean if args.task == "encode" else model.decode(x).sample

    return timed(function, args.repeats), {"torch": torch.__version__, "diffusers": diffusers.__version__}


def run_worker(python, args, **options):
    """Runs this script as a worker in a fresh process; returns its JSON answer."""
    command = [python, os.path.abspath(__file__), *_model_flags(args)]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}


def _model_flags(args):
    return [
        "--block-out-channels", *map(str, args.block_out_channels),
        "--layers-per-block", str(args.layers_per_block),
        "--latent-channels", str(args.latent_channels),
        "--norm-num-groups", str(args.norm_num_groups),
        "--repeats", str(args.repeats),
    ]


def commit():
    folder = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run(["git", "-C", folder, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def measure(args, folder):
    """`{(side, task, clip): [(seconds per clip, peak MB), ...]}` and the versions the workers reported."""
    pythons = {"tfvae": sys.executable, "diffusers": args.torch_python}
    results, versions = {}, {}
    for round_index in range(args.rounds):
        order = SIDES if round_index % 2 == 0 else SIDES[::-1]
        for clip in args.clips:
            for task in TASKS:
                for side in order:
                    answer = run_worker(pythons[side], args, worker=side, folder=folder, task=task, clip=clip)
                    results.setdefault((side, task, clip), []).append((answer["seconds"], answer["peak_mb"]))
                    versions.update(answer["versions"])
    return results, versions


def table(args, results, versions):
    lines = [
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}  commit: {commit()}",
        "versions: " + ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
        + f", python {platform.python_version()}, numpy {np.__version__}",
        f"command: {shlex.join([os.path.basename(sys.executable), *sys.argv])}",
        f"config: block_out_channels={args.block_out_channels} layers_per_block={args.layers_per_block} "
        f"latent_channels={args.latent_channels} norm_num_groups={args.norm_num_groups}; {args.rounds} rounds of "
        f"{args.repeats} calls after a warm-up, sides alternating",
        "",
        f"| {'side':9} | {'task':6} | {'clip (TxHxW)':12} | {'clips/s':>9} | {'peak RSS MB':>11} |",
        f"|{'-' * 11}|{'-' * 8}|{'-' * 14}|{'-' * 11}|{'-' * 13}|",
    ]
    for (side, task, clip), runs in sorted(results.items(), key=lambda item: (item[0][2], item[0][1], item[0][0])):
        rate = 1 / statistics.median(seconds for seconds, _ in runs)
        peak = max(peak for _, peak in runs)
        lines.append(f"| {side:9} | {task:6} | {clip:12} | {rate:9.3f} | {peak:11.0f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.worker == "make":
        make_worker(args)
        return
    if args.worker:
        seconds, versions = {"tfvae": tfvae_worker, "diffusers": diffusers_worker}[args.worker](args)
        print(json.dumps({"seconds": seconds, "peak_mb": peak_memory_mb(), "versions": versions}))
        return
    with tempfile.TemporaryDirectory(prefix="cogvideox-benchmark-") as folder:
        run_worker(args.torch_python, args, worker="make", folder=folder)
        results, versions = measure(args, folder)
    print(table(args, results, versions))


if __name__ == "__main__":
    main()
