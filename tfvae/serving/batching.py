"""TF Serving's batching parameters: defaults, a choice from a measured latency curve, and the text files it reads.

TF Serving started with `--enable_batching` gathers concurrent requests of one signature into a batch of at most
`max_batch_size` examples, waiting at most `batch_timeout_micros` for a batch to fill, pads it up to the next of
`allowed_batch_sizes` (so the model only ever sees those sizes, which the warm-up requests compile ahead), and runs
up to `num_batch_threads` batches at once. The text-format `tensorflow.serving.BatchingParameters` goes to
`--batching_parameters_file`, or, with `--enable_per_model_batching_parameters`, into each version as
`batching_params.pbtxt` (whose `num_batch_threads` the server then ignores: one pool of batch threads, sized by the
server-wide file, serves every model):

    max_batch_size { value: 32 }
    batch_timeout_micros { value: 1000 }
    num_batch_threads { value: 4 }
    allowed_batch_sizes: 1
    allowed_batch_sizes: 2
    ...

The rule `choose_batching` applies to a latency curve `L(b)` (seconds per call of the signature on a batch of `b`):
throughput is `T(b) = b / L(b)`; `max_batch_size` is the smallest measured `b` whose `T(b)` is at least 90% of the
best (beyond it a batch costs its examples latency for little throughput); `allowed_batch_sizes` are the measured
sizes up to it; `batch_timeout_micros` is `L(1)`, so a lone request waits at most about as long as serving it alone
takes (at least 100 microseconds); `num_batch_threads` is the measuring machine's core count. Measure on the machine
that serves: the curve is that machine's.
"""

import dataclasses
import os
import statistics
import time

import numpy as np

BATCHING_FILE = "batching_params.pbtxt"
THROUGHPUT_FRACTION = 0.9
MIN_TIMEOUT_MICROS = 100


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """The fields of `tensorflow.serving.BatchingParameters` that tfvae sets.

    Args:
        max_batch_size: the most examples in one batch; the last of `allowed_batch_sizes`.
        batch_timeout_micros: how long a batch waits to fill before it runs.
        allowed_batch_sizes: increasing sizes a batch is padded up to.
        num_batch_threads: batches run at once.
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    allowed_batch_sizes: tuple = (1, 2, 4, 8, 16, 32)
    num_batch_threads: int = 4

    def __post_init__(self):
        sizes = self.allowed_batch_sizes
        if list(sizes) != sorted(set(sizes)) or sizes[0] < 1 or sizes[-1] != self.max_batch_size:
            raise ValueError(f"allowed_batch_sizes must increase from 1 or more up to max_batch_size = "
                             f"{self.max_batch_size}, got {sizes}; TF Serving refuses other lists.")

    def to_text(self):
        """The text-format `BatchingParameters` (its scalar fields are `google.protobuf.Int64Value`s)."""
        scalars = ("max_batch_size", "batch_timeout_micros", "num_batch_threads")
        lines = [f"{name} {{ value: {getattr(self, name)} }}" for name in scalars]
        lines += [f"allowed_batch_sizes: {size}" for size in self.allowed_batch_sizes]
        return "\n".join(lines) + "\n"

    def write(self, path):
        with open(path, "w") as file:
            file.write(self.to_text())


def batch_sizes_up_to(largest):
    """`1, 2, 4, ...` up to `largest`, which ends the list even if it is not a power of two."""
    sizes = [2**power for power in range(largest.bit_length()) if 2**power < largest]
    return (*sizes, largest)


def latency_curve(function, example_inputs, batch_sizes, repeats=5):
    """`{b: median seconds of function(**inputs)}` with each input a batch of `b` copies of its example.

    Args:
        function: a SavedModel signature (or any callable taking the inputs as keywords).
        example_inputs: `{input name: one example as a NumPy array}`.
        batch_sizes: the `b` to measure.
        repeats: timed calls per size, after one untimed call that traces and warms up.
    """
    curve = {}
    for size in batch_sizes:
        inputs = {name: np.repeat(example[None], size, axis=0) for name, example in example_inputs.items()}
        function(**inputs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            function(**inputs)
            times.append(time.perf_counter() - start)
        curve[size] = statistics.median(times)
    return curve


def choose_batching(curve, num_batch_threads=None):
    """`BatchingParameters` from a latency curve `{b: seconds}` by the rule in this module's docstring."""
    throughput = {size: size / seconds for size, seconds in curve.items()}
    best = max(throughput.values())
    largest = min(size for size, value in throughput.items() if value >= THROUGHPUT_FRACTION * best)
    smallest = min(curve)
    return BatchingParameters(
        max_batch_size=largest,
        batch_timeout_micros=max(MIN_TIMEOUT_MICROS, round(curve[smallest] * 1e6)),
        allowed_batch_sizes=tuple(size for size in sorted(curve) if size <= largest),
        num_batch_threads=num_batch_threads or os.cpu_count(),
    )
