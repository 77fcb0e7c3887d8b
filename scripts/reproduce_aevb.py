"""Reproduces Figure 2 of Kingma & Welling, "Auto-Encoding Variational Bayes": the lower bound against samples seen.

The paper's setup: MNIST with a Bernoulli MLP decoder and 500 hidden units, N_z in {3, 5, 10, 20, 200}; Frey Face
with a Gaussian MLP decoder whose means pass through a sigmoid and 200 hidden units, N_z in {2, 5, 10, 20};
minibatches of 100, one sample of z per datapoint, a N(0, I) prior on the parameters (weight decay 1/N per
datapoint), and Adagrad (step size 0.02 here; the paper picked from {0.01, 0.02, 0.1}). `--optimizer adam` trains
with Adam instead. MNIST pixels are binarized dynamically (resampled each time an image is used).

At log-spaced numbers of training samples it records the lower bound per datapoint on the training set (on a fixed
subset of 10000 images for MNIST) and the test set, writes them to `<out>/aevb.csv`, and plots `<out>/aevb.png`
laid out like Figure 2 (one panel per data set and N_z, log x axis, train and test curves per optimizer).

    python scripts/reproduce_aevb.py --budget 1e6                        # every panel, a short run
    python scripts/reproduce_aevb.py --datasets mnist --latents 20 --optimizers adagrad adam --budget 1e7
"""

import argparse
import csv
import os
import time

import keras
import numpy as np

from tfvae import VAE, data, networks

HERE = os.path.dirname(os.path.abspath(__file__))
PAPER = {
    "mnist": {"hidden": 500, "latents": (3, 5, 10, 20, 200), "likelihood": "bernoulli", "binarize": True},
    "frey_face": {"hidden": 200, "latents": (2, 5, 10, 20), "likelihood": "gaussian", "binarize": False},
}
STEP_SIZES = {"adagrad": 0.02, "adam": 1e-3}
BATCH_SIZE = 100
STEPS_PER_EXECUTION = 10  # see scripts/benchmark.py: fewer Python round trips per step
TRAIN_SUBSET = 10_000
COLUMNS = ("dataset", "latent_size", "optimizer", "samples", "train_elbo", "test_elbo", "seconds")


def load(dataset, mnist_dir):
    if dataset == "mnist":
        train, test = (data.load_images(mnist_dir, split) for split in ("train", "test"))
    else:
        train, test = (data.load_images("frey_face", split) for split in ("train", "test"))
    return train.reshape(len(train), -1), test.reshape(len(test), -1)


def build(dataset, latent_size, optimizer, train_size, seed, initialization="fan_in_uniform"):
    setup = PAPER[dataset]
    size = 784 if dataset == "mnist" else 560
    encoder = networks.gaussian_mlp_encoder(size, latent_size, setup["hidden"], initialization)
    if setup["likelihood"] == "bernoulli":
        decoder = networks.bernoulli_mlp_decoder(latent_size, size, setup["hidden"], initialization)
    else:
        decoder = networks.gaussian_mlp_decoder(
            latent_size, size, setup["hidden"], mean_activation="sigmoid", initialization=initialization
        )
    model = VAE(encoder, decoder, likelihood=setup["likelihood"], weight_decay=1.0 / train_size, seed=seed)
    step_size = STEP_SIZES[optimizer]
    optimizer = keras.optimizers.Adagrad(step_size) if optimizer == "adagrad" else keras.optimizers.Adam(step_size)
    model.compile(optimizer, steps_per_execution=STEPS_PER_EXECUTION)
    return model


def checkpoints(budget):
    """Sample counts at which to measure: 1, 2 and 5 times each power of ten from 1e4, and the budget."""
    points = [m * 10**e for e in range(4, 10) for m in (1, 2, 5) if m * 10**e < budget]
    return [int(point) for point in points] + [int(budget)]


def run(dataset, latent_size, optimizer, budget, mnist_dir, seed, file):
    train, test = load(dataset, mnist_dir)
    keras.utils.set_random_seed(seed)
    model = build(dataset, latent_size, optimizer, len(train), seed)
    binarize = PAPER[dataset]["binarize"]
    train_subset = train[np.random.default_rng(seed).permutation(len(train))[:TRAIN_SUBSET]]

    def bound(images):
        batches = data.pipeline(images, 1000, shuffle=False, binarize=binarize, seed=seed)
        return model.evaluate(batches, verbose=0, return_dict=True)["elbo"]

    writer = csv.writer(file)
    seen, start = 0, time.perf_counter()
    for index, target in enumerate(checkpoints(budget)):
        steps = (target - seen) // BATCH_SIZE
        batches = data.pipeline(train, BATCH_SIZE, shuffle=True, binarize=binarize, seed=seed + index).repeat()
        model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
        seen += steps * BATCH_SIZE
        row = (dataset, latent_size, optimizer, seen, bound(train_subset), bound(test), time.perf_counter() - start)
        writer.writerow(row)
        file.flush()
        print(" ".join(f"{name}={value:.1f}" if isinstance(value, float) else f"{name}={value}"
                       for name, value in zip(COLUMNS, row, strict=True)), flush=True)


def plot(csv_path, png_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    with open(csv_path, newline="") as file:
        rows = list(csv.DictReader(file))
    panels = sorted({(row["dataset"], int(row["latent_size"])) for row in rows}, key=lambda p: (p[0] != "mnist", p[1]))
    datasets = sorted({dataset for dataset, _ in panels}, key=lambda d: d != "mnist")
    columns = max(sum(1 for d, _ in panels if d == dataset) for dataset in datasets)
    figure, axes = pyplot.subplots(len(datasets), columns, figsize=(3.2 * columns, 3 * len(datasets)), squeeze=False)
    for row_index, dataset in enumerate(datasets):
        latents = [latent for d, latent in panels if d == dataset]
        for column, latent in enumerate(latents):
            ax = axes[row_index][column]
            for optimizer in sorted({row["optimizer"] for row in rows}):
                points = [row for row in rows if (row["dataset"], int(row["latent_size"]), row["optimizer"])
                          == (dataset, latent, optimizer)]
                if not points:
                    continue
                samples = [int(row["samples"]) for row in points]
                ax.plot(samples, [float(row["train_elbo"]) for row in points], label=f"{optimizer} train")
                ax.plot(samples, [float(row["test_elbo"]) for row in points], "--", label=f"{optimizer} test")
            ax.set(xscale="log", title=f"{dataset}, $N_z$ = {latent}", xlabel="# training samples evaluated")
            ax.set_ylabel("L")
            ax.legend(fontsize=7)
        for column in range(len(latents), columns):
            axes[row_index][column].axis("off")
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=sorted(PAPER), default=["mnist", "frey_face"])
    parser.add_argument("--latents", nargs="+", type=int, help="N_z values (default: the paper's per data set)")
    parser.add_argument("--optimizers", nargs="+", choices=sorted(STEP_SIZES), default=["adagrad"])
    parser.add_argument("--budget", type=float, default=1e6, help="training samples per run")
    parser.add_argument("--mnist-dir", default=os.path.join(HERE, "..", "..", "shared", "data", "mnist"),
                        help="a folder of MNIST IDX files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="aevb_reproduction", help="folder for aevb.csv and aevb.png")
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, "aevb.csv")
    with open(csv_path, "w", newline="") as file:
        csv.writer(file).writerow(COLUMNS)
        file.flush()
        for dataset in args.datasets:
            for latent_size in args.latents or PAPER[dataset]["latents"]:
                for optimizer in args.optimizers:
                    run(dataset, latent_size, optimizer, args.budget, args.mnist_dir, args.seed, file)
    plot(csv_path, os.path.join(args.out, "aevb.png"))
    print(f"wrote {csv_path} and {os.path.join(args.out, 'aevb.png')}")


if __name__ == "__main__":
    main()
