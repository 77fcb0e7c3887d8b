"""Compares initializations of the appendix-C MLPs by held-out likelihood after a fixed budget of training samples.

For each data set, initialization and seed it trains the networks of `scripts/reproduce_aevb.py` (MNIST: binarized
dynamically, 784-500-N_z Bernoulli; Frey Face: 560-200-N_z Gaussian with sigmoid means; minibatches of 100, weight
decay 1/N) for `--budget` samples, then measures on the test set the lower bound per datapoint (dynamic
binarization, as in training) and log p(x) by importance sampling with K = `--samples` on the first `--limit` test
examples (MNIST binarized once with seed 0, as `tfvae evaluate --binarize` does). Rows go to `<out>/initializations.csv`
as they finish, and a summary (mean over seeds) is printed at the end.

The candidates (`--initializations`):
- `fan_in_uniform`: kernels and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in));
- `glorot_uniform`: Glorot-uniform kernels, zero biases (Keras' Dense default);
- `aevb_normal`: every parameter from N(0, 0.01^2), AEVB's "N(0, 0.01)" with 0.01 as the standard deviation;
- `aevb_normal_variance`: every parameter from N(0, 0.1^2), the same with 0.01 read as the variance.

    python scripts/compare_initializations.py --seeds 0 1
    python scripts/compare_initializations.py --datasets frey_face --optimizer adagrad --budget 1e7
"""

import argparse
import csv
import os
import time

import keras
import numpy as np
from reproduce_aevb import BATCH_SIZE, HERE, PAPER, STEP_SIZES, build, load

from tfvae import data, networks
from tfvae.diagnostics import importance_weighted_log_likelihood


def aevb_normal_variance(fan_in):
    """AEVB's "N(0, 0.01)" read as `N(mean, variance)`: standard deviation 0.1 for kernels and biases."""
    del fan_in
    return keras.initializers.RandomNormal(stddev=0.1), keras.initializers.RandomNormal(stddev=0.1)


CANDIDATES = {**networks.INITIALIZATIONS, "aevb_normal_variance": aevb_normal_variance}
COLUMNS = ("dataset", "latent_size", "optimizer", "initialization", "seed", "samples", "test_elbo", "test_log_px",
           "log_px_standard_error", "seconds")


def measure(dataset, latent_size, optimizer, initialization, seed, budget, samples, limit, mnist_dir):
    train, test = load(dataset, mnist_dir)
    keras.utils.set_random_seed(seed)
    model = build(dataset, latent_size, optimizer, len(train), seed, CANDIDATES[initialization])
    binarize = PAPER[dataset]["binarize"]
    start = time.perf_counter()
    steps = int(budget) // BATCH_SIZE
    batches = data.pipeline(train, BATCH_SIZE, shuffle=True, binarize=binarize, seed=seed).repeat()
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    test_batches = data.pipeline(test, 1000, shuffle=False, binarize=binarize, seed=seed)
    elbo = model.evaluate(test_batches, verbose=0, return_dict=True)["elbo"]
    held_out = test[:limit]
    if binarize:
        held_out = (np.random.default_rng(0).random(held_out.shape) < held_out).astype(np.float32)
    log_px, errors = importance_weighted_log_likelihood(model, held_out, samples, seed=seed)
    standard_error = float(np.sqrt(np.sum(errors**2)) / len(held_out))
    seconds = time.perf_counter() - start
    return (dataset, latent_size, optimizer, initialization, seed, steps * BATCH_SIZE, elbo, float(log_px.mean()),
            standard_error, seconds)


def summarize(rows):
    """Prints the mean and the per-seed values of each (data set, optimizer, initialization)."""
    groups = {}
    for row in rows:
        groups.setdefault(row[:4], []).append(row)
    for key, group in groups.items():
        elbos = ", ".join(f"{row[6]:.2f}" for row in group)
        log_pxs = ", ".join(f"{row[7]:.2f}" for row in group)
        print(f"{' '.join(map(str, key))}: test ELBO mean {np.mean([row[6] for row in group]):.2f} ({elbos}); "
              f"log p(x) mean {np.mean([row[7] for row in group]):.2f} ({log_pxs})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=sorted(PAPER), default=["mnist", "frey_face"])
    parser.add_argument("--initializations", nargs="+", choices=sorted(CANDIDATES), default=sorted(CANDIDATES))
    parser.add_argument("--latent-size", type=int, default=20)
    parser.add_argument("--optimizer", choices=sorted(STEP_SIZES), default="adam")
    parser.add_argument("--budget", type=float, default=1e6, help="training samples per run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--samples", type=int, default=100, help="importance samples per example (K) for log p(x)")
    parser.add_argument("--limit", type=int, default=1000, help="test examples for log p(x)")
    parser.add_argument("--mnist-dir", default=os.path.join(HERE, "..", "..", "shared", "data", "mnist"),
                        help="a folder of MNIST IDX files")
    parser.add_argument("--out", default="initializations", help="folder for initializations.csv")
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, "initializations.csv")
    rows = []
    with open(csv_path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for seed in args.seeds:
            for dataset in args.datasets:
                for initialization in args.initializations:
                    row = measure(dataset, args.latent_size, args.optimizer, initialization, seed, args.budget,
                                  args.samples, args.limit, args.mnist_dir)
                    writer.writerow(row)
                    file.flush()
                    print(" ".join(f"{name}={value:.2f}" if isinstance(value, float) else f"{name}={value}"
                                   for name, value in zip(COLUMNS, row, strict=True)), flush=True)
                    rows.append(row)
    summarize(rows)
    print(f"wrote {csv_path}")


if __name__ == "__main__":
    main()
