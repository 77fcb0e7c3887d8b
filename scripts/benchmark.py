"""Training throughput of tfvae's `model.fit`, against this machine's dense float32 matmul peak.

For the paper's MNIST network (784-500-20, Bernoulli decoder) at batch 100 and at batch 1000, with `jit_compile`
off and on, and with 1 or 10 steps per execution (`compile(steps_per_execution=...)`), it measures in a fresh
process each: examples per second through `model.fit` on a `tf.data` pipeline (after a warm-up epoch), the time
to the first step (tracing and compilation), and the peak resident memory. The step's FLOPs are counted from the
Dense layers (forward `2 * batch * inputs * outputs` each, backward twice that), and divided by the large-square
matmul rate measured in the same run. All numbers of a table come from one run.

    python scripts/benchmark.py [--steps 300]
"""

import argparse
import json
import resource
import subprocess
import sys
import time

# (batch, jit_compile, steps_per_execution); tfvae train's default is jit on with 10 steps per execution.
CONFIGURATIONS = [(100, False, 1), (100, True, 1), (100, True, 10), (1000, False, 1), (1000, True, 1), (1000, True, 10)]
DATA_SIZE, HIDDEN, LATENT = 784, 500, 20


def step_flops(batch):
    """Forward and backward FLOPs of one training step: 3x the forward matmuls."""
    dense_shapes = [(DATA_SIZE, HIDDEN), (HIDDEN, LATENT), (HIDDEN, LATENT), (LATENT, HIDDEN), (HIDDEN, DATA_SIZE)]
    return 3 * sum(2 * batch * inputs * outputs for inputs, outputs in dense_shapes)


def measure_matmul_peak(size=2048, repeats=20):
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    product().numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def measure_training(batch, jit_compile, steps_per_execution, steps):
    import keras
    import numpy as np

    from tfvae import VAE, data, networks

    images = (np.random.default_rng(0).random((steps * batch, DATA_SIZE)) < 0.2).astype(np.float32)
    model = VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT, HIDDEN),
                networks.bernoulli_mlp_decoder(LATENT, DATA_SIZE, HIDDEN), seed=0)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    dataset = data.pipeline(images, batch, shuffle=True)
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
    first_step = time.perf_counter() - start
    model.fit(dataset, epochs=1, verbose=0)  # warm-up epoch
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return {
        "examples_per_second": steps * batch / seconds,
        "first_step_seconds": first_step,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="timed training steps per configuration")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "batch,jit,steps": measure one configuration, print JSON
    args = parser.parse_args()
    if args.one:
        batch, jit, per_execution = args.one.split(",")
        print(json.dumps(measure_training(int(batch), jit == "True", int(per_execution), args.steps)))
        return

    peak = measure_matmul_peak()
    print(f"dense float32 matmul peak (2048x2048): {peak / 1e9:.1f} GFLOP/s")
    print(f"{'batch':>5} {'jit':>5} {'steps/call':>10} {'examples/s':>11} {'GFLOP/s':>8} {'of peak':>8} "
          f"{'first step s':>13} {'peak MiB':>9}")
    for batch, jit, per_execution in CONFIGURATIONS:
        configuration = f"{batch},{jit},{per_execution}"
        result = subprocess.run([sys.executable, __file__, "--one", configuration, "--steps", str(args.steps)],
                                capture_output=True, text=True, check=True)
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        rate = measured["examples_per_second"] * step_flops(batch) / batch
        print(f"{batch:>5} {str(jit):>5} {per_execution:>10} {measured['examples_per_second']:>11.0f} "
              f"{rate / 1e9:>8.1f} {rate / peak:>7.0%} {measured['first_step_seconds']:>13.2f} "
              f"{measured['peak_mib']:>9.0f}")


if __name__ == "__main__":
    main()
