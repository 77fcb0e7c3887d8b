"""Time to the end of epoch 2 of `tfvae train` with XLA (Frey Face), against 2 steady epochs plus one compilation.

Each run trains the README's main configuration (`tfvae train`: Frey Face, every default but `--jit-compile on`, since
`auto` is a graph on CPU-only machines) for `--epochs` epochs in a
fresh process and measures, in that one run:

- `epoch 2 ends`: seconds from the start of `fit` (`on_train_begin`) to the end of epoch 2, its callbacks included
  (backup, history, best model);
- `steady epoch`: the median of epochs 3 to `--epochs`, each from the end of the one before to its own end;
- `XLA compile`: the seconds TensorFlow reports for compiling the train step with XLA (its `device_compiler` log
  line), and how many compilations there were;
- `first call`: the first execution of the train function (tracing, compilation, its first steps), against the
  first execution of a later epoch (the median: as many steps, also on a new pass over the input) and the slowest
  later execution; and the first validation (tracing and its first batches) against a later one (the median);
- `epoch 2 first batch`: the wait from the start of epoch 2 to its first batch (a new pass over the input pipeline).

The bound is `2 x steady epoch + XLA compile`: what the first two epochs would take if XLA's compilation of the
train step were all they did besides training. Before XLA compiles, TensorFlow traces the step's Python into a graph
and sets that graph up; `step compile` counts all of it: the first train call less a later one. The second bound,
`2 x steady epoch + step compile`, is what the first two epochs would take if compiling the train step once, tracing
included, were all they did besides training: what is over it is validation's first call and anything else epoch 1
and 2 do once.

    python scripts/benchmark_first_epochs.py [--runs 3] [--epochs 8]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

# TensorFlow writes the time as "1.06 s (1059234 us)" or "979 ms (978689 us)": the microseconds are always there.
COMPILE_LINE = re.compile(r"Compilation of XLA executable time: [^(]*\((\d+) us\)")


def child(output_dir, epochs):
    """Trains in this process and prints the callbacks' timestamps as JSON."""
    import keras

    from tfvae.run import training

    marks = {}

    class Timestamps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            marks["train_begin"] = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            marks.setdefault("epoch_ends", []).append(time.perf_counter())

        def on_train_batch_begin(self, batch, logs=None):
            self.batch_start, self.epoch_first_call = time.perf_counter(), batch == 0
            if batch == 0:
                marks.setdefault("first_batch_waits", []).append(self.batch_start - self.epoch_start)

        def on_train_batch_end(self, batch, logs=None):
            seconds = time.perf_counter() - self.batch_start
            marks.setdefault("train_calls", []).append(seconds)
            if self.epoch_first_call:
                marks.setdefault("epochs_first_calls", []).append(seconds)

        def on_test_begin(self, logs=None):
            self.test_start = time.perf_counter()

        def on_test_end(self, logs=None):
            marks.setdefault("validations", []).append(time.perf_counter() - self.test_start)

    # The run's own callbacks first, so that an epoch ends after its backup and history are written.
    make_callbacks = training.make_callbacks
    training.make_callbacks = lambda *args, **kwargs: [*make_callbacks(*args, **kwargs), Timestamps()]
    config = training.make_config(epochs=epochs, output_dir=os.path.join(output_dir, "run"),
                                  export_root=os.path.join(output_dir, "exports"), jit_compile="on", verbose=0)
    training.train(config)
    print(json.dumps(marks), flush=True)


def measure(epochs):
    """One run in a fresh process: the numbers of the module docstring."""
    with tempfile.TemporaryDirectory() as output_dir:
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_VMODULE": "device_compiler=1"}
        finished = subprocess.run([sys.executable, __file__, "--child", output_dir, "--epochs", str(epochs)],
                                  capture_output=True, text=True, env=environment, check=True)
    marks = json.loads(finished.stdout.strip().splitlines()[-1])
    compiles = [int(microseconds) / 1e6 for microseconds in COMPILE_LINE.findall(finished.stderr)]
    ends = [end - marks["train_begin"] for end in marks["epoch_ends"]]
    steady = statistics.median(later - earlier for earlier, later in zip(ends[1:-1], ends[2:], strict=True))
    calls, validations = marks["train_calls"], marks["validations"]
    # An epoch's calls may run fewer steps than `steps_per_execution` at its end: compare first calls.
    first_calls = marks["epochs_first_calls"]
    step_compile = first_calls[0] - statistics.median(first_calls[1:])
    return {
        "epoch 2 ends": ends[1],
        "steady epoch": steady,
        "XLA compile": sum(compiles),
        "compilations": len(compiles),
        "bound": 2 * steady + sum(compiles),
        "step compile": step_compile,
        "bound with tracing": 2 * steady + step_compile,
        "first train call": first_calls[0],
        "later train call": statistics.median(first_calls[1:]),
        "slowest later call": max(calls[1:]),
        "epoch 2 first batch": marks["first_batch_waits"][1],
        "first validation": validations[0],
        "later validation": statistics.median(validations[1:]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs, each in its own process")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per run (at least 4)")
    parser.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs)
        return
    runs = [measure(args.epochs) for _ in range(args.runs)]
    names = list(runs[0])
    print(f"{'run':<8}" + "".join(f"{name:>20}" for name in names))
    for index, run in enumerate(runs, start=1):
        print(f"{index:<8}" + "".join(f"{run[name]:>20.3f}" for name in names), flush=True)
    print(f"{'median':<8}" + "".join(f"{statistics.median(run[name] for run in runs):>20.3f}" for name in names))
    within = sum(run["epoch 2 ends"] < run["bound"] for run in runs)
    print(f"epoch 2 ended within the bound (2 x steady epoch + XLA compile) in {within} of {len(runs)} runs")
    within = sum(run["epoch 2 ends"] < run["bound with tracing"] for run in runs)
    print(f"epoch 2 ended within 2 x steady epoch + step compile (tracing included) in {within} of {len(runs)} runs")


if __name__ == "__main__":
    main()
