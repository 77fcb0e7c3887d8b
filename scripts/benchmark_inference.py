"""Eager inference with a `tfvae.VAE`: one example through each method, and a whole data set through the encoder.

For the paper's MNIST network (784-500-20, Bernoulli decoder) it measures, in one process and taking turns over
`--rounds` rounds (the table shows the median):

- milliseconds per call on one example of the encoder network called eagerly (`vae.encoder(x)`), and of `encode`,
  `encode(x).mean()`, `decode`, `generate` and `reconstruct` as `VAE` runs them (compiled when called eagerly,
  see `tfvae._keras.eager`) and as
  written (with `tf.config.run_functions_eagerly(True)`: every op dispatched from Python);
- examples per second encoding `--examples` examples with `tfvae.latents.encode_dataset`, with Keras'
  `vae.encoder.predict`, and with a loop of `vae.encode` calls on batches of the same size.

    python scripts/benchmark_inference.py [--rounds 5] [--calls 100] [--examples 20000]
"""

import argparse
import statistics
import time

import numpy as np
import tensorflow as tf

from tfvae import VAE, networks
from tfvae.latents import DEFAULT_BATCH_SIZE, encode_dataset

DATA_SIZE, HIDDEN, LATENT = 784, 500, 20


def one_example_calls(vae, x, z):
    """name: a call on one example, compiled (as `VAE` runs it) and as written."""
    calls = {
        "encode": lambda: vae.encode(x),
        "encode(x).mean()": lambda: vae.encode(x).mean(),
        "decode": lambda: vae.decode(z),
        "generate": lambda: vae.generate(z),
        "reconstruct": lambda: vae.reconstruct(x),
    }
    return {
        "encoder network, eager": lambda: vae.encoder(x),
        **calls,
        **{f"{name}, as written": as_written(call) for name, call in calls.items()},
    }


def as_written(call):
    """`call` with every `tf.function` run eagerly: every op dispatched from Python, as before `tfvae._keras.eager`."""
    def run():
        tf.config.run_functions_eagerly(True)
        try:
            call()
        finally:
            tf.config.run_functions_eagerly(False)

    return run


def data_set_encoders(vae, images):
    """name: a function encoding all of `images`."""
    def encode_loop():
        for start in range(0, len(images), DEFAULT_BATCH_SIZE):
            posterior = vae.encode(images[start : start + DEFAULT_BATCH_SIZE])
            posterior.mean().numpy(), posterior.logvar.numpy()

    return {
        "tfvae.latents.encode_dataset": lambda: encode_dataset(vae, images),
        "vae.encoder.predict": lambda: vae.encoder.predict(images, batch_size=DEFAULT_BATCH_SIZE, verbose=0),
        "loop of vae.encode calls": encode_loop,
    }


def median_over_rounds(functions, rounds, repeats):
    """name: the median over `rounds` of each round's median seconds of `repeats` calls, functions taking turns."""
    samples = {name: [] for name in functions}
    for function in functions.values():  # warm-up: tracing and compilation
        function()
    for _ in range(rounds):
        for name, function in functions.items():
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                function()
                seconds.append(time.perf_counter() - start)
            samples[name].append(statistics.median(seconds))
    return {name: statistics.median(values) for name, values in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100, help="calls per round of each one-example function")
    parser.add_argument("--examples", type=int, default=20_000, help="examples of the data set to encode")
    args = parser.parse_args()
    vae = VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT, HIDDEN),
              networks.bernoulli_mlp_decoder(LATENT, DATA_SIZE, HIDDEN), seed=0)
    rng = np.random.default_rng(0)
    images = (rng.random((args.examples, DATA_SIZE)) < 0.2).astype(np.float32)
    z = rng.standard_normal((1, LATENT)).astype(np.float32)

    print(f"one example, median of {args.rounds} rounds of {args.calls} calls")
    print(f"{'call':<30} {'ms':>7}")
    for name, seconds in median_over_rounds(one_example_calls(vae, images[:1], z), args.rounds, args.calls).items():
        print(f"{name:<30} {seconds * 1e3:>7.2f}", flush=True)
    print(f"\n{args.examples} examples in batches of {DEFAULT_BATCH_SIZE}, median of {args.rounds} rounds")
    print(f"{'encoder':<30} {'examples/s':>10}")
    for name, seconds in median_over_rounds(data_set_encoders(vae, images), args.rounds, 1).items():
        print(f"{name:<30} {args.examples / seconds:>10.0f}", flush=True)


if __name__ == "__main__":
    main()
