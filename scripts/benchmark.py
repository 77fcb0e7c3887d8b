"""Training throughput of tfvae's `model.fit`, against this machine's dense float32 matmul peak.

For the paper's MNIST network (784-500-20, Bernoulli decoder, Adam) at batch 100 and at batch 1000, with
`jit_compile` off and on, and with 1 or 10 steps per execution (`compile(steps_per_execution=...)`), it measures
in a fresh process each: examples per second through `model.fit` on a `tfvae.data.pipeline` (the best of several
timed epochs after a warm-up epoch, since other tenants of a shared machine only ever slow a run down), the time to
the first step (tracing and compilation), and the peak resident memory.

The fraction of peak divides the step's matmul FLOPs by the rate of a 2048x2048 float32 matmul measured in the same
process just before. The step's FLOPs are counted per Dense layer of `I` inputs and `O` outputs: `2*B*I*O` for the
forward product, as much for the weight gradient, and as much again for the input gradient, which the first
layer does not compute (its input is the data). The rule of thumb "3x the forward FLOPs" would count that gradient
too and report about 20% more.

`--pytorch PYTHON` adds, for comparison, an idiomatic PyTorch loop for the same network (`DataLoader` with
`shuffle=True`, `zero_grad`/`backward`/`step`, Adam), run by an interpreter that has `torch`; its fraction of peak
is against the 2048x2048 matmul rate that torch measures in its own process. `--profile DIR`
writes a `tf.profiler` trace of tfvae's default configuration at batch 100 to DIR, for TensorBoard's profile tab.

    python scripts/benchmark.py [--examples 30000] [--pytorch /path/to/python] [--profile DIR]
"""

import argparse
import json
import resource
import subprocess
import sys
import time

# (batch, jit_compile, steps_per_execution); tfvae train's default is jit on with 10 steps per execution.
CONFIGURATIONS = [
    (100, False, 1), (100, False, 10), (100, True, 1), (100, True, 10),
    (1000, False, 1), (1000, False, 10), (1000, True, 1), (1000, True, 10),
]
DATA_SIZE, HIDDEN, LATENT = 784, 500, 20
# (inputs, outputs, whether the layer's input gradient is computed): hidden, mu and logvar heads, decoder.
DENSE_LAYERS = [
    (DATA_SIZE, HIDDEN, False), (HIDDEN, LATENT, True), (HIDDEN, LATENT, True), (LATENT, HIDDEN, True),
    (HIDDEN, DATA_SIZE, True),
]
TIMED_EPOCHS = 5


def step_flops(batch):
    """Matmul FLOPs of one training step: forward, weight gradient and (past the first layer) input gradient."""
    return sum((3 if input_gradient else 2) * 2 * batch * inputs * outputs
               for inputs, outputs, input_gradient in DENSE_LAYERS)


def training_data(examples):
    import numpy as np

    return (np.random.default_rng(0).random((examples, DATA_SIZE)) < 0.2).astype(np.float32)


def best_seconds(run, repeats):
    """The shortest of `repeats` timed calls of `run`, after one untimed call (warm-up)."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure_matmul_peak(size=2048):
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    return 2 * size**3 / best_seconds(lambda: product().numpy(), repeats=20)


def model_and_data(batch, jit_compile, steps_per_execution, examples):
    """The benchmarked VAE, compiled with Adam, and a `tfvae.data.pipeline` of `examples` random binary images."""
    import keras

    from tfvae import VAE, data, networks

    model = VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT, HIDDEN),
                networks.bernoulli_mlp_decoder(LATENT, DATA_SIZE, HIDDEN), seed=0)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    return model, data.pipeline(training_data(examples), batch, shuffle=True)


def measure_training(batch, jit_compile, steps_per_execution, examples):
    peak = measure_matmul_peak()
    model, dataset = model_and_data(batch, jit_compile, steps_per_execution, examples)
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
    first_step = time.perf_counter() - start
    seconds = best_seconds(lambda: model.fit(dataset, epochs=1, verbose=0), TIMED_EPOCHS)
    return {
        "peak_flops": peak,
        "examples_per_second": examples / seconds,
        "first_step_seconds": first_step,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure_pytorch(batch, examples):
    """The same network, loss and optimizer as an idiomatic PyTorch training loop."""
    import torch

    size = 2048
    a, b = torch.randn(size, size), torch.randn(size, size)
    peak = 2 * size**3 / best_seconds(lambda: (a @ b).sum().item(), repeats=20)

    class MlpVae(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden, self.mean, self.logvar = (torch.nn.Linear(DATA_SIZE, HIDDEN), torch.nn.Linear(HIDDEN, LATENT),
                                                   torch.nn.Linear(HIDDEN, LATENT))
            self.decoder = torch.nn.Sequential(torch.nn.Linear(LATENT, HIDDEN), torch.nn.Tanh(),
                                               torch.nn.Linear(HIDDEN, DATA_SIZE))

        def forward(self, x):
            hidden = torch.tanh(self.hidden(x))
            mean, logvar = self.mean(hidden), self.logvar(hidden)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            logits = self.decoder(z)
            reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
            kl = 0.5 * (torch.exp(logvar) + mean**2 - 1 - logvar)
            return (reconstruction.sum(-1) + kl.sum(-1)).mean()

    model = MlpVae()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    images = torch.from_numpy(training_data(examples))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images), batch_size=batch, shuffle=True)

    def run_epoch():
        for (x,) in loader:
            optimizer.zero_grad()
            model(x).backward()
            optimizer.step()

    seconds = best_seconds(run_epoch, TIMED_EPOCHS)
    return {
        "peak_flops": peak,
        "examples_per_second": examples / seconds,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def write_profile(logdir, examples):
    """A `tf.profiler` trace of one epoch of the default configuration (XLA, 10 steps per execution), batch 100."""
    import tensorflow as tf

    model, dataset = model_and_data(100, True, 10, examples)
    model.fit(dataset, epochs=1, verbose=0)
    tf.profiler.experimental.start(logdir)
    model.fit(dataset, epochs=1, verbose=0)
    tf.profiler.experimental.stop()


def measure_in_subprocess(python, *arguments):
    result = subprocess.run([python, __file__, *arguments], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_row(name, batch, measured):
    rate = measured["examples_per_second"] * step_flops(batch) / batch
    first_step = measured.get("first_step_seconds")
    print(f"{batch:>5} {name:<20} {measured['examples_per_second']:>10.0f} {rate / 1e9:>8.1f} "
          f"{measured['peak_flops'] / 1e9:>10.1f} {rate / measured['peak_flops']:>7.0%} "
          f"{'-' if first_step is None else f'{first_step:.2f}':>12} {measured['peak_mib']:>8.0f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=30_000, help="training examples per timed epoch")
    parser.add_argument("--pytorch", metavar="PYTHON", help="an interpreter with torch, for a PyTorch reference row")
    parser.add_argument("--profile", metavar="DIR", help="write a tf.profiler trace of the default configuration")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "batch,jit,steps": measure one configuration, print JSON
    parser.add_argument("--pytorch-one", type=int, help=argparse.SUPPRESS)  # batch: the PyTorch reference
    args = parser.parse_args()
    if args.one:
        batch, jit, per_execution = args.one.split(",")
        print(json.dumps(measure_training(int(batch), jit == "True", int(per_execution), args.examples)))
        return
    if args.pytorch_one:
        print(json.dumps(measure_pytorch(args.pytorch_one, args.examples)))
        return
    if args.profile:
        write_profile(args.profile, args.examples)
        print(f"wrote a profile to {args.profile}: tensorboard --logdir {args.profile} (the profile plugin's tab)")
        return

    print(f"step: {step_flops(1) / 1e6:.2f} MFLOP per example; the best of {TIMED_EPOCHS} epochs of "
          f"{args.examples} examples")
    print(f"{'batch':>5} {'configuration':<20} {'examples/s':>10} {'GFLOP/s':>8} {'peak GF/s':>10} {'of peak':>7} "
          f"{'first step s':>12} {'peak MiB':>8}")
    for batch, jit, per_execution in CONFIGURATIONS:
        measured = measure_in_subprocess(sys.executable, "--one", f"{batch},{jit},{per_execution}",
                                         "--examples", str(args.examples))
        name = f"tfvae {'XLA' if jit else 'graph'}, {per_execution}/call"
        print_row(name, batch, measured)
        if args.pytorch and jit and per_execution == 10:
            print_row("PyTorch loop", batch, measure_in_subprocess(args.pytorch, "--pytorch-one", str(batch),
                                                                   "--examples", str(args.examples)))


if __name__ == "__main__":
    main()
