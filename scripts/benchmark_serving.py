"""Latency of a tfvae SavedModel against the Keras model it came from, at batch 1 and batch 256.

Exports the default Frey Face model (untrained weights time the same as trained ones) to a temporary folder, loads
it with `tf.saved_model.load`, and times `serving_default` and `encode` against the same computation through the
Keras model (eager calls, and `predict_on_batch`). Prints a table of median milliseconds per call, with the
interquartile range, and the ratio to the SavedModel. All timings of a table come from one run on one machine.

    python scripts/benchmark_serving.py [--repeats 200]
"""

import argparse
import tempfile
import time

import numpy as np
import tensorflow as tf

from tfvae.data import frey_face
from tfvae.run.training import build_model, make_config
from tfvae.serving.export import export_saved_model


def time_calls(function, x, repeats):
    """Median and interquartile range of the wall-clock milliseconds of `function(x)`, after two warm-up calls."""
    for _ in range(2):
        function(x)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(x)
        seconds.append(time.perf_counter() - start)
    q1, median, q3 = np.percentile(np.array(seconds) * 1e3, [25, 50, 75])
    return median, q3 - q1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per row")
    args = parser.parse_args()

    model = build_model(make_config(), frey_face.IMAGE_SHAPE)
    images = frey_face.packaged_images().reshape(-1, 560).astype(np.float32) / 255.0
    with tempfile.TemporaryDirectory() as export_dir:
        loaded = tf.saved_model.load(export_saved_model(model, export_dir))
        serving, encode = loaded.signatures["serving_default"], loaded.signatures["encode"]
        print(f"{'batch':>5}  {'path':<38} {'median ms':>10} {'IQR ms':>8} {'vs SavedModel':>14}")
        for batch in (1, 256):
            x = tf.constant(images[:batch])
            rows = [
                ("SavedModel serving_default", lambda x: serving(x=x)),
                ("Keras model.reconstruct (eager)", model.reconstruct),
                ("Keras model.predict_on_batch", model.predict_on_batch),
                ("SavedModel encode", lambda x: encode(x=x)),
                ("Keras model.encode + sample (eager)", lambda x: model.encode(x).sample(seed=model.next_seed())),
            ]
            baseline = {}
            for name, function in rows:
                median, iqr = time_calls(function, x, args.repeats)
                kind = "encode" if "encode" in name else "reconstruct"
                baseline.setdefault(kind, median)
                print(f"{batch:>5}  {name:<38} {median:>10.3f} {iqr:>8.3f} {median / baseline[kind]:>13.2f}x")


if __name__ == "__main__":
    main()
