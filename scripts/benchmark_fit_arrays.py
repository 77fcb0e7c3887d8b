"""`vae.fit` on NumPy arrays over several epochs: Keras' own batching of the arrays against tfvae's.

The README's library call, `vae.fit(x, epochs=..., batch_size=100)`, on binary arrays and the 784-500-20 MLPs,
through two paths:

- `keras`: `keras.Model.fit(vae, x, ...)`, Keras' batching of arrays (a `tf.data` pipeline with the autotuner on);
- `tfvae`: `vae.fit(x, ...)`, which gives Keras `tfvae.data.array_batches` instead (`tfvae._keras.array_inputs`).

Each round runs each path in a fresh process, taking turns, as a user's script would run one of them: one fit of
`--epochs` epochs after a warm-up fit of one epoch (tracing and compiling). Per path, over the timed fits' epochs but
their first: the median epoch (from `on_epoch_begin` to `on_epoch_end`: what a user waits for), examples per second at
that median, and the epochs whose first batch started more than 50 ms after the epoch did, with the longest wait.
In one process, a path run after the other trained at a speed between the two (0.46-0.59 s epochs against 0.35 and
0.6): compare paths across processes.

    python scripts/benchmark_fit_arrays.py [--examples 10000] [--epochs 10] [--rounds 3]
"""

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time

import keras
import numpy as np

import tfvae
from tfvae import networks

LATE = 0.05  # seconds: a first batch later than this after its epoch's start counts as a stall
PATHS = ("keras", "tfvae")


class EpochTimes(keras.callbacks.Callback):
    """Each epoch's seconds and the wait for its first batch."""

    def __init__(self):
        super().__init__()
        self.epochs, self.waits = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.first_batch = time.perf_counter(), True

    def on_train_batch_begin(self, batch, logs=None):
        if self.first_batch:
            self.waits.append(time.perf_counter() - self.start)
            self.first_batch = False

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(time.perf_counter() - self.start)


def child(path, examples, epochs):
    """Times one fit through `path` in this process; prints its epochs and first-batch waits as JSON."""
    x = (np.random.default_rng(0).random((examples, 784)) < 0.3).astype("float32")
    vae = tfvae.VAE(networks.gaussian_mlp_encoder(784, 20, 500), networks.bernoulli_mlp_decoder(20, 784, 500),
                    likelihood="bernoulli", seed=0)
    vae.compile(keras.optimizers.Adam(1e-3))
    fit = vae.fit if path == "tfvae" else functools.partial(keras.Model.fit, vae)
    fit(x, epochs=1, batch_size=100, verbose=0)  # warm-up: traces and compiles the step
    timer = EpochTimes()
    fit(x, epochs=epochs, batch_size=100, verbose=0, callbacks=[timer])
    print(json.dumps({"epochs": timer.epochs[1:], "waits": timer.waits[1:]}), flush=True)


def measure(path, examples, epochs):
    command = [sys.executable, __file__, "--child", path, "--examples", str(examples), "--epochs", str(epochs)]
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10000, help="training examples")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per timed fit (at least 2)")
    parser.add_argument("--rounds", type=int, default=3, help="fits per path, each in its own process, taking turns")
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.examples, args.epochs)
        return
    times = {path: {"epochs": [], "waits": []} for path in PATHS}
    for _ in range(args.rounds):
        for path in PATHS:
            for name, values in measure(path, args.examples, args.epochs).items():
                times[path][name] += values
    print(f"{'path':<8}{'median epoch (s)':>18}{'examples/s':>12}{'late starts':>14}{'longest wait (s)':>18}")
    for path, timed in times.items():
        epoch = statistics.median(timed["epochs"])
        waits = timed["waits"]
        late = f"{sum(wait > LATE for wait in waits)} of {len(waits)}"
        print(f"{path:<8}{epoch:>18.3f}{args.examples / epoch:>12,.0f}{late:>14}{max(waits):>18.3f}")
    ratio = statistics.median(times["keras"]["epochs"]) / statistics.median(times["tfvae"]["epochs"])
    print(f"tfvae's epochs are {ratio:.2f}x as fast as Keras' batching of the same arrays")


if __name__ == "__main__":
    main()
