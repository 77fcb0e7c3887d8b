"""What each speed workaround of `tfvae._keras` saves, each on and off in turn, in one process.

- `FusedAdam`: the first epoch (tracing included) and a steady epoch of the default run, against Keras' `Adam`;
- `LazyMultivariateNormalDiag`: building the posterior `DiagonalGaussian` from its parameters eagerly (what an eager
  `encode` does after its compiled call), against TFP's `MultivariateNormalDiag`, and one eager `encode`.

Usage: `python scripts/benchmark_workarounds.py [--rounds 5]`. Run it on a quiet machine: it prints the median of
`--rounds` alternating rounds, with the date, commit and versions.
"""

import argparse
import datetime
import statistics
import subprocess
import time

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tfvae
from tfvae import networks
from tfvae._keras.fused_adam import FusedAdam
from tfvae.data import frey_face

FREY_SIZE = 560


def make_vae(optimizer):
    vae = tfvae.VAE(networks.gaussian_mlp_encoder(FREY_SIZE, 10, 200),
                    networks.gaussian_mlp_decoder(10, FREY_SIZE, 200, "sigmoid"), likelihood="gaussian", seed=0)
    vae.compile(optimizer)
    return vae


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start



class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.start, self.ends = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter() - self.start)


def epoch_times(optimizer, x):
    times = EpochTimes()
    make_vae(optimizer).fit(x, batch_size=100, epochs=4, verbose=0, callbacks=[times])
    return times.ends[0], statistics.median(np.diff(times.ends))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    x = frey_face.packaged_images().reshape(-1, FREY_SIZE).astype(np.float32) / 255.0
    results = {name: [] for name in ("first epoch FusedAdam",
                                     "first epoch Adam", "steady epoch FusedAdam", "steady epoch Adam",
                                     "posterior DiagonalGaussian", "posterior MultivariateNormalDiag",
                                     "eager encode")}
    vae = make_vae(FusedAdam())
    params = vae.encoder(x[:1])
    mean, logvar = tf.split(params, 2, axis=-1)
    for _ in range(args.rounds):
        for name, optimizer in (("FusedAdam", FusedAdam), ("Adam", keras.optimizers.Adam)):
            first, steady = epoch_times(optimizer(), x)
            results[f"first epoch {name}"].append(first)
            results[f"steady epoch {name}"].append(steady)
        results["posterior DiagonalGaussian"].append(statistics.median(
            timed(lambda: tfvae.DiagonalGaussian(params)) for _ in range(50)))
        results["posterior MultivariateNormalDiag"].append(statistics.median(
            timed(lambda: tfp.distributions.MultivariateNormalDiag(mean, tf.exp(0.5 * logvar))) for _ in range(50)))
        results["eager encode"].append(statistics.median(timed(lambda: vae.encode(x[:1])) for _ in range(50)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"{datetime.date.today()}, commit {commit}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"TFP {tfp.__version__}; python scripts/benchmark_workarounds.py --rounds {args.rounds}")
    print("| measurement | median seconds |\n|---|---:|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.5f} |")


if __name__ == "__main__":
    main()
