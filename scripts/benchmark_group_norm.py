"""The speed cost of `PreciseGroupNormalization` (two-level sums) against Keras' `GroupNormalization`, on the
activations of Stable Diffusion's autoencoder encoding one image.

In one process, the two layers alternate call after call on each of the GroupNorm input shapes that `encode` meets
at `--size` (256x256: `[1, 256, 256, 128]` down to `[1, 32, 32, 512]`, 32 groups); each row gives the best of
`--repeats` calls of each and their ratio. The last line puts the sum of the extra seconds over all the GroupNorms of
one eager `encode` (how many of each shape it calls) beside that `encode`'s own best time.

    python scripts/benchmark_group_norm.py [--size 256] [--repeats 20]
"""

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

import tfvae
from tfvae.autoencoder_kl.blocks import EPSILON, PreciseGroupNormalization

SD_CONFIG = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32)


def group_norm_shapes(model, size):
    """`{input shape: calls}` of the GroupNorms of `model.encode` on a `size` x `size` image."""
    shapes = {}
    originals = {}
    layers = [layer for layer in model.encoder._flatten_layers() if isinstance(layer, PreciseGroupNormalization)]

    def recording(layer):
        def call(inputs):
            shape = tuple(inputs.shape)
            shapes[shape] = shapes.get(shape, 0) + 1
            return originals[layer](inputs)

        return call

    for layer in layers:
        originals[layer] = layer.call
        layer.call = recording(layer)
    model.encode(np.zeros((1, size, size, 3), "float32"))
    for layer in layers:
        layer.call = originals[layer]
    return shapes


def best_alternating(functions, repeats):
    """The best of `repeats` timed calls of each function, the functions alternating call after call."""
    for function in functions:
        function()  # warm-up
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for index, function in enumerate(functions):
            start = time.perf_counter()
            function()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--block-out-channels", type=int, nargs="+", default=list(SD_CONFIG["block_out_channels"]))
    parser.add_argument("--norm-num-groups", type=int, default=SD_CONFIG["norm_num_groups"])
    args = parser.parse_args()
    model = tfvae.AutoencoderKL(block_out_channels=args.block_out_channels, layers_per_block=2,
                                norm_num_groups=args.norm_num_groups)
    print(f"{'input shape':<22} {'calls':>5} {'Keras s':>9} {'precise s':>9} {'ratio':>6}")
    extra = 0.0
    for shape, calls in sorted(group_norm_shapes(model, args.size).items(), key=lambda item: -np.prod(item[0])):
        x = tf.constant(np.random.default_rng(0).normal(size=shape).astype("float32"))
        layers = [cls(args.norm_num_groups, epsilon=EPSILON) for cls in (keras.layers.GroupNormalization,
                                                                         PreciseGroupNormalization)]
        runs = [lambda layer=layer, x=x: layer(x).numpy() for layer in layers]
        keras_seconds, precise_seconds = best_alternating(runs, args.repeats)
        extra += calls * (precise_seconds - keras_seconds)
        print(f"{str(shape):<22} {calls:>5} {keras_seconds:>9.4f} {precise_seconds:>9.4f} "
              f"{precise_seconds / keras_seconds:>6.2f}")
    x = tf.constant(np.zeros((1, args.size, args.size, 3), "float32"))
    (encode_seconds,) = best_alternating([lambda: model.encode(x).mean().numpy()], max(1, args.repeats // 4))
    print(f"extra GroupNorm seconds per eager encode: {extra:.4f}, {extra / encode_seconds:.1%} of encode's "
          f"{encode_seconds:.3f} s")


if __name__ == "__main__":
    main()
