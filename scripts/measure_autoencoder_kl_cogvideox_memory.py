"""Measures the peak resident memory of `tfvae.AutoencoderKLCogVideoX` encoding a video, with and without tiling.

Each case runs in a fresh subprocess, which builds a full-size randomly initialised model (diffusers' defaults, the
CogVideoX-2b configuration), encodes one video of `--frames` frames of `--height` x `--width` (default: 49 frames of
480x720, CogVideoX's own) and reports its peak resident set size (`resource.getrusage`'s `ru_maxrss`) and the time
the encoding took. A `model only` case, which builds the model and encodes nothing, gives the baseline. It is heavy:
on a 2-core CPU the untiled default case takes tens of minutes and over 10 GB.

    python scripts/measure_autoencoder_kl_cogvideox_memory.py
    python scripts/measure_autoencoder_kl_cogvideox_memory.py --frames 9 --height 240 --width 360 \
        --sample-height 240 --sample-width 360     # a quarter of the area, tiles scaled alike
"""

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time

CASES = ("model only", "encode", "tiled_encode")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--sample-height", type=int, default=480, help="the model's sample_height: tiles are half")
    parser.add_argument("--sample-width", type=int, default=720, help="the model's sample_width: tiles are half")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_case(args):
    """Builds the model, runs the case and returns `(seconds, peak MB)`."""
    import numpy as np

    from tfvae.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX

    model = AutoencoderKLCogVideoX(sample_height=args.sample_height, sample_width=args.sample_width)
    video = np.random.default_rng(0).uniform(-1, 1, (1, args.frames, args.height, args.width, 3)).astype("float32")
    start = time.perf_counter()
    if args.case != "model only":
        getattr(model, args.case)(video).mean().numpy()
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    args = parse_args(argv)
    if args.case:
        seconds, peak = run_case(args)
        print(json.dumps({"seconds": seconds, "peak_mb": peak}))
        return
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}: full-size AutoencoderKLCogVideoX, "
          f"1 x {args.frames} x {args.height} x {args.width} x 3, float32, tiles of {args.sample_height // 2} x "
          f"{args.sample_width // 2}")
    print(f"| {'case':12} | {'seconds':>8} | {'peak RSS MB':>11} |")
    print(f"|{'-' * 14}|{'-' * 10}|{'-' * 13}|")
    for case in args.cases:
        command = [sys.executable, os.path.abspath(__file__), "--case", case, "--frames", str(args.frames),
                   "--height", str(args.height), "--width", str(args.width), "--sample-height",
                   str(args.sample_height), "--sample-width", str(args.sample_width)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode:
            print(f"| {case:12} | failed ({result.returncode}): {result.stderr.strip().splitlines()[-1:]} |")
            continue
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"| {case:12} | {answer['seconds']:8.1f} | {answer['peak_mb']:11.0f} |", flush=True)


if __name__ == "__main__":
    main()
