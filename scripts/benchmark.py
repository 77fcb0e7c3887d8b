"""Training throughput of tfvae against an idiomatic PyTorch loop and this machine's dense float32 matmul peak.

For the paper's MNIST network (784-500-20, Bernoulli decoder, Adam) at batch 100 and at batch 1000 it compares, in
one run, the ways a user trains:

- `library default`: the README's library example, `vae.compile(keras.optimizers.Adam(1e-3))` then
  `vae.fit(x, batch_size=...)` on a NumPy array, with whatever `VAE.compile` chooses by default;
- `library, FusedAdam`: the same with `tfvae._keras.fused_adam.FusedAdam(1e-3)` (what `vae.compile()` and
  `vae.compile("adam")` choose);
- `library, 1 step/call`: the README's example with `steps_per_execution=1` (Keras' own default);
- `tfvae train`: the CLI's configuration, `FusedAdam`, XLA and 10 steps per execution on a `tfvae.data.pipeline`;
- `graph, 10/call`: the same without XLA;
- `PyTorch loop` (with `--pytorch PYTHON`, an interpreter that has `torch`): the same network, loss and optimizer
  as an idiomatic PyTorch loop (`DataLoader` with `shuffle=True`, `zero_grad`/`backward`/`step`, Adam).

Each configuration lives in its own process, started and warmed up (tracing, compilation, one epoch) before any
timing. Then in each of `--rounds` rounds every process times one epoch in turn, the order rotating between rounds:
configurations share the machine's load alike, and the table shows the median epoch of each. A matmul peak is
measured in every round too (2048x2048 float32, by TensorFlow and by torch in their own processes), and each
fraction of peak divides the step's matmul FLOPs per second by the median peak of its own framework.

The step's FLOPs are counted per Dense layer of `I` inputs and `O` outputs: `2*B*I*O` for the forward product, as
much for the weight gradient, and as much again for the input gradient, which the first layer does not compute (its
input is the data). The rule of thumb "3x the forward FLOPs" would count that gradient too and report about 20% more.

`--threads N` gives TensorFlow and torch the same number of intra-op threads. On a machine shared with other busy
processes, torch's default (one OpenMP thread per core, spin-waiting for its peers) collapsed in one run: 100
examples/s with 2 threads against 4,000 with 1, while TensorFlow's thread pool kept its pace.

`--profile DIR` writes a `tf.profiler` trace of the `tfvae train` configuration at batch 100 to DIR, for
TensorBoard's profile tab.

    python scripts/benchmark.py [--examples 30000] [--rounds 5] [--batches 100 1000] [--pytorch /path/to/python]
                                [--threads N] [--configurations NAME ...]
    python scripts/benchmark.py --profile DIR
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

DATA_SIZE, HIDDEN, LATENT = 784, 500, 20
# (inputs, outputs, whether the layer's input gradient is computed): hidden, mu and logvar heads, decoder.
DENSE_LAYERS = [
    (DATA_SIZE, HIDDEN, False), (HIDDEN, LATENT, True), (HIDDEN, LATENT, True), (LATENT, HIDDEN, True),
    (HIDDEN, DATA_SIZE, True),
]
# name: (data fed to fit, optimizer, keyword arguments of VAE.compile besides the optimizer, environment of the process)
CONFIGURATIONS = {
    "library default": ("arrays", "Adam", {}, {}),
    "library, FusedAdam": ("arrays", "FusedAdam", {}, {}),
    "library, 1 step/call": ("arrays", "Adam", {"steps_per_execution": 1}, {}),
    "tfvae train": ("pipeline", "FusedAdam", {"jit_compile": True, "steps_per_execution": 10}, {}),
    "graph, 10/call": ("pipeline", "FusedAdam", {"jit_compile": False, "steps_per_execution": 10}, {}),
    # candidates for VAE.compile's default and for the step (--configurations)
    "tfvae train, Keras Adam": ("pipeline", "Adam", {"jit_compile": True, "steps_per_execution": 10}, {}),
    "library, 30 steps/call": ("arrays", "Adam", {"steps_per_execution": 30}, {}),
    "library, 100 steps/call": ("arrays", "Adam", {"steps_per_execution": 100}, {}),
    "tfvae train, oneDNN dots": ("pipeline", "FusedAdam", {"jit_compile": True, "steps_per_execution": 10},
                                 {"XLA_FLAGS": "--xla_cpu_use_onednn=true"}),
}
DEFAULT_CONFIGURATIONS = ["library default", "library, FusedAdam", "library, 1 step/call", "tfvae train",
                          "graph, 10/call"]
PYTORCH = "PyTorch loop"


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


def tensorflow_matmul_peak(size=2048):
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    return 2 * size**3 / best_seconds(lambda: product().numpy(), repeats=10)


def torch_matmul_peak(size=2048):
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / best_seconds(lambda: (a @ b).sum().item(), repeats=10)


def tfvae_trainer(name, batch, examples):
    """A function that trains one epoch of configuration `name` with `fit` and returns the epoch's seconds.

    The seconds run from the epoch's start to its end (callbacks `on_epoch_begin` and `on_epoch_end`), leaving out
    what `fit` does once per call: a user's `fit(x, epochs=10)` does that once for ten epochs.
    """
    import keras

    from tfvae import VAE, data, networks
    from tfvae._keras.fused_adam import FusedAdam

    source, optimizer, compile_arguments, _ = CONFIGURATIONS[name]
    model = VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT, HIDDEN),
                networks.bernoulli_mlp_decoder(LATENT, DATA_SIZE, HIDDEN), seed=0)
    optimizers = {"Adam": keras.optimizers.Adam, "FusedAdam": FusedAdam}
    model.compile(optimizers[optimizer](1e-3), **compile_arguments)
    x = training_data(examples)
    if source == "pipeline":
        x, batch_size = data.pipeline(x, batch, shuffle=True), None
    else:
        batch_size = batch

    class EpochSeconds(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    def train_epoch():
        timer = EpochSeconds()
        model.fit(x, batch_size=batch_size, epochs=1, verbose=0, callbacks=[timer], shuffle=source == "arrays")
        return timer.seconds

    return train_epoch


def pytorch_trainer(batch, examples):
    """The same network, loss and optimizer as an idiomatic PyTorch training loop."""
    import torch

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

    def train_epoch():
        start = time.perf_counter()
        for (x,) in loader:
            optimizer.zero_grad()
            model(x).backward()
            optimizer.step()
        return time.perf_counter() - start

    return train_epoch


def serve(name, batch, examples, threads):
    """The worker process of one configuration: warms up, then answers `epoch` and `peak` lines on stdin with JSON."""
    start = time.perf_counter()
    if threads:
        limit_threads(name, threads)
    if name == PYTORCH:
        train_epoch, peak = pytorch_trainer(batch, examples), torch_matmul_peak
    else:
        train_epoch, peak = tfvae_trainer(name, batch, examples), tensorflow_matmul_peak
    train_epoch()
    reply({"warm_up_seconds": time.perf_counter() - start})
    for command in sys.stdin:
        if command.strip() == "epoch":
            reply({"seconds": train_epoch()})
        elif command.strip() == "peak":
            reply({"peak_flops": peak()})
    reply({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def limit_threads(name, threads):
    if name == PYTORCH:
        import torch

        torch.set_num_threads(threads)
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def reply(message):
    print(json.dumps(message), flush=True)


class Worker:
    """A configuration's worker process, started and warmed up on creation."""

    def __init__(self, python, name, batch, examples, threads):
        self.name = name
        self.process = subprocess.Popen(
            [python, __file__, "--serve", name, "--batch", str(batch), "--examples", str(examples),
             "--threads", str(threads or 0)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, **CONFIGURATIONS.get(name, (None, None, None, {}))[3]})
        self.warm_up_seconds = self.ask(None)["warm_up_seconds"]

    def ask(self, command):
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker of {self.name!r} exited (code {self.process.wait()})")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        peak_mib = self.ask(None)["peak_mib"]
        self.process.wait()
        return peak_mib


def measure_batch(batch, names, pytorch, examples, rounds, threads):
    """Per configuration: the median examples/s over `rounds` alternating epochs, fraction of peak, and more."""
    workers = [Worker(sys.executable, name, batch, examples, threads) for name in names]
    if pytorch:
        workers.append(Worker(pytorch, PYTORCH, batch, examples, threads))
    seconds = {worker.name: [] for worker in workers}
    peaks = {"tensorflow": [], "torch": []}
    for round_index in range(rounds):
        shift = round_index % len(workers)
        for worker in workers[shift:] + workers[:shift]:
            seconds[worker.name].append(worker.ask("epoch")["seconds"])
        peaks["tensorflow"].append(workers[0].ask("peak")["peak_flops"])
        if pytorch:
            peaks["torch"].append(workers[-1].ask("peak")["peak_flops"])
    results = {}
    for worker in workers:
        median = statistics.median(seconds[worker.name])
        peak = statistics.median(peaks["torch" if worker.name == PYTORCH else "tensorflow"])
        results[worker.name] = {
            "examples_per_second": examples / median,
            "spread": (examples / max(seconds[worker.name]), examples / min(seconds[worker.name])),
            "of_peak": examples / median * step_flops(batch) / batch / peak,
            "peak_flops": peak,
            "warm_up_seconds": worker.warm_up_seconds,
            "peak_mib": worker.close(),
        }
    return results


def print_table(batch, results):
    for name, measured in results.items():
        low, high = measured["spread"]
        print(f"{batch:>5} {name:<21} {measured['examples_per_second']:>10.0f} {f'{low:.0f}-{high:.0f}':>13} "
              f"{measured['peak_flops'] / 1e9:>9.1f} {measured['of_peak']:>7.0%} {measured['warm_up_seconds']:>9.1f} "
              f"{measured['peak_mib']:>8.0f}", flush=True)
    if PYTORCH in results:
        reference = results[PYTORCH]["examples_per_second"]
        ratios = ", ".join(f"{name} {measured['examples_per_second'] / reference:.2f}x"
                           for name, measured in results.items() if name != PYTORCH)
        print(f"{batch:>5} against the PyTorch loop: {ratios}", flush=True)


def write_profile(logdir, examples):
    """A `tf.profiler` trace of one epoch of the `tfvae train` configuration (XLA, 10 steps per execution)."""
    import tensorflow as tf

    train_epoch = tfvae_trainer("tfvae train", 100, examples)
    train_epoch()
    tf.profiler.experimental.start(logdir)
    train_epoch()
    tf.profiler.experimental.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=30_000, help="training examples per timed epoch")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per configuration, taken in turns")
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 1000], help="the batch sizes to measure")
    parser.add_argument("--configurations", nargs="+", choices=list(CONFIGURATIONS), default=DEFAULT_CONFIGURATIONS,
                        metavar="NAME", help=f"the tfvae configurations to measure, of {list(CONFIGURATIONS)}")
    parser.add_argument("--pytorch", metavar="PYTHON", help="an interpreter with torch, for a PyTorch reference row")
    parser.add_argument("--threads", type=int, help="intra-op threads of TensorFlow and torch alike (default: theirs)")
    parser.add_argument("--profile", metavar="DIR", help="write a tf.profiler trace of the tfvae train configuration")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # a configuration's worker process
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.batch, args.examples, args.threads)
        return
    if args.profile:
        write_profile(args.profile, args.examples)
        print(f"wrote a profile to {args.profile}: tensorboard --logdir {args.profile} (the profile plugin's tab)")
        return

    print(f"step: {step_flops(1) / 1e6:.2f} MFLOP per example; the median of {args.rounds} epochs of "
          f"{args.examples} examples per configuration, configurations taking turns")
    print(f"{'batch':>5} {'configuration':<21} {'examples/s':>10} {'min-max':>13} {'peak GF/s':>9} {'of peak':>7} "
          f"{'warm-up s':>9} {'peak MiB':>8}")
    for batch in args.batches:
        print_table(batch, measure_batch(batch, args.configurations, args.pytorch, args.examples, args.rounds,
                                         args.threads))


if __name__ == "__main__":
    main()
