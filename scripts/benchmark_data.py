"""Does the streamed input pipeline keep memory flat and stay ahead of the training step? Two measurements.

(a) Peak resident memory of one epoch of `tfvae train --model conv --cache none` (batch 100, no validation) on
    generated folders of 64x64 RGB JPEGs of each size in `--sizes`, each run in a fresh process and its peak read
    with `os.wait4`. Streaming means the peak must not grow with the data set: the last size's peak is compared to
    the first's (the goal is within 10%).
(b) Images per second of the input pipeline alone (decoding the JPEGs of the first folder, batches of 100, files
    shuffled, `--cache none`, `--rate-images` per pass) against the conv train step (`tfvae train`'s model and
    compile settings, batch 100, one batch repeated from memory). The goal is a ratio of at least 2: the step
    never waits for the data.
    The pipeline's rate is the best of `--repeats` timed passes after a warm-up pass, the step's is timed within one
    `fit` after its first execution; both are measured one after the other in this process.

    python scripts/benchmark_data.py [--sizes 20000 100000] [--root DIR] [--rate-images 5000] [--out results.json]
"""

import argparse
import json
import os
import subprocess
import sys
import time

IMAGE_SIDE = 64
BATCH = 100


def make_folder(root, count, seed=0):
    """Writes `count` 64x64 RGB JPEGs (smooth colour gradients with noise) below `root` in 100 subfolders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, IMAGE_SIDE)
    for index in range(count):
        path = os.path.join(root, f"{index % 100:02d}", f"{index:06d}.jpg")
        if os.path.exists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        low, high = rng.random((2, 3))
        pixels = low + (high - low) * ramp[:, np.newaxis, np.newaxis] + rng.normal(0, 0.05, (IMAGE_SIDE, 1, 3))
        pixels = np.broadcast_to(pixels, (IMAGE_SIDE, IMAGE_SIDE, 3))
        Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(path, quality=90)
    return root


def peak_rss_of_training(folder, work_dir):
    """Peak resident memory (MiB) and seconds of one epoch of `tfvae train --model conv --cache none` on `folder`."""
    tfvae = os.path.join(os.path.dirname(sys.executable), "tfvae")
    command = [tfvae, "train", "--dataset", folder, "--model", "conv", "--cache", "none", "--epochs", "1",
               "--batch-size", str(BATCH), "--validation-split", "0", "--quiet", "--output-dir",
               os.path.join(work_dir, "run"), "--export-root", os.path.join(work_dir, "exports")]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"tfvae train failed on {folder}:\n{stderr[-3000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def best_rate(run, images, repeats):
    """The highest images/s of `repeats` timed calls of `run` (each handling `images` images) after a warm-up."""
    run()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = max(best, images / (time.perf_counter() - start))
    return best


def pipeline_rate(folder, images, repeats):
    """Images/s of `tfvae.data`'s streamed pipeline alone: decode, batch, prefetch, nothing else."""
    from tfvae import data

    batches = data.open_images(folder, cache="none").batches(BATCH, shuffle=True, flatten=False)
    batches = batches.repeat().take(images // BATCH)

    def run():
        for _ in batches:
            pass

    return best_rate(run, images, repeats)


def train_step_rate(images):
    """Images/s of `tfvae train --model conv`'s train step at batch 100 on 64x64x3 images held in memory.

    One `fit` call runs `images` images after a first execution of `steps_per_execution` steps (tracing and XLA
    compilation); the rate is timed between the ends of the first and the last execution.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from tfvae.run.training import build_model, make_config

    config = make_config(dataset="benchmark", model="conv")
    model = build_model(config, (IMAGE_SIDE, IMAGE_SIDE, 3))
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile="auto",
                  steps_per_execution=config.steps_per_execution)
    batch = np.random.default_rng(0).random((BATCH, IMAGE_SIDE, IMAGE_SIDE, 3)).astype(np.float32)
    executions = max(1, images // (BATCH * config.steps_per_execution))
    ends = []
    timer = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    steps = (executions + 1) * config.steps_per_execution
    model.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return executions * config.steps_per_execution * BATCH / (ends[-1] - ends[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000], help="images per folder")
    parser.add_argument("--root", default="benchmark_data", help="where the generated folders go (kept for reuse)")
    parser.add_argument("--rate-images", type=int, default=5000, help="images per timed pass for the rates")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per rate (the best is kept)")
    parser.add_argument("--out", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    folders = {size: make_folder(os.path.join(args.root, f"jpeg64-{size}"), size) for size in args.sizes}
    memory = {}
    print(f"{'images':>8} {'peak RSS (MiB)':>15} {'epoch run (s)':>14}")
    for size, folder in folders.items():
        memory[size] = peak_rss_of_training(folder, os.path.join(args.root, f"run-{size}"))
        print(f"{size:>8} {memory[size][0]:>15.0f} {memory[size][1]:>14.0f}", flush=True)
    first, last = memory[args.sizes[0]][0], memory[args.sizes[-1]][0]
    print(f"peak RSS growth from {args.sizes[0]} to {args.sizes[-1]} images: {100 * (last / first - 1):+.1f}% "
          "(goal: within 10%)")

    rate_images = max(BATCH, args.rate_images // BATCH * BATCH)
    rates = {"pipeline": pipeline_rate(folders[args.sizes[0]], rate_images, args.repeats),
             "conv train step": train_step_rate(rate_images)}
    print(f"{'':>16} {'images/s':>9}")
    for name, rate in rates.items():
        print(f"{name:>16} {rate:>9.0f}")
    ratio = rates["pipeline"] / rates["conv train step"]
    print(f"pipeline / train step: {ratio:.2f}x (goal: at least 2x)")
    if args.out:
        with open(args.out, "w") as file:
            json.dump({"peak_rss_mib": {size: value[0] for size, value in memory.items()},
                       "epoch_run_seconds": {size: value[1] for size, value in memory.items()},
                       "images_per_second": rates, "ratio": ratio, "cpus": os.cpu_count(),
                       "load_average": os.getloadavg()}, file, indent=1)


if __name__ == "__main__":
    main()
