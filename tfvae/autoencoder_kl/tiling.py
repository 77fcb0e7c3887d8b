"""Tiled application of a convolutional network to images larger than one pass fits in memory.

Sizes are counted in grid cells: a cell is one latent pixel, `f` image pixels along each side. Tiles of `tile` cells
start every `tile - blend` cells, so neighbours share `blend` cells; the last tile along an axis ends at the edge and
may be shorter. Each tile's output is weighted by a separable linear ramp: across an overlap of `B` output pixels the
earlier tile's weight falls as `1 - (i + 0.5) / B` while the later tile's rises as `(i + 0.5) / B`, so the weights sum
to one at every pixel and the seams blend linearly, as in diffusers' `blend_v` / `blend_h`.

A tile sees only itself: GroupNorm statistics and attention span the tile, not the image, so a network with either
gives a tiled result that differs from the untiled one wherever the image has more than one tile. A network that
works pixel by pixel (or whose receptive field fits inside the overlap with equal statistics) gives the same result.
"""

import numpy as np
import tensorflow as tf


def tile_geometry(tile_size, overlap, factor):
    """`(tile, blend)` in cells for tiles of `tile_size` image pixels sharing the fraction `overlap` of a side.

    Raises:
        ValueError: unless `tile_size` is a positive multiple of `factor` and `0 <= overlap <= 0.5` (beyond one half
            three tiles would share a pixel).
    """
    if tile_size < factor or tile_size % factor:
        raise ValueError(f"tile_size must be a positive multiple of the downsampling factor {factor}, got {tile_size}.")
    if not 0 <= overlap <= 0.5:
        raise ValueError(f"overlap is the fraction of a tile shared with each neighbour, in [0, 0.5]; got {overlap}.")
    tile = tile_size // factor
    return tile, int(tile * overlap)


def tile_starts(cells, tile, blend):
    """The first cell of each tile along an axis of `cells` cells: every `tile - blend` cells, while the tile
    reaches past its predecessor's overlap."""
    return list(range(0, max(cells - blend, 1), tile - blend))


def map_tiles(function, inputs, tile, blend, input_scale, output_scale):
    """Applies `function` to overlapping tiles of `inputs` and blends the outputs linearly (see the module docstring).

    It runs eagerly, one tile at a time, and gathers the output in host memory.

    Args:
        function: maps `[n, input_scale * a, input_scale * b, c]` to `[n, output_scale * a, output_scale * b, d]`
            for any tile of `a x b` cells.
        inputs: `[n, H, W, c]` with `H` and `W` divisible by `input_scale`.
        tile: the side of a tile in cells.
        blend: the cells shared by neighbouring tiles, at most half of `tile`.
        input_scale: the input pixels of a cell along each side.
        output_scale: the output pixels of a cell along each side.

    Returns:
        A float32 tensor `[n, H / input_scale * output_scale, W / input_scale * output_scale, d]`.

    Raises:
        ValueError: when `H` or `W` is not divisible by `input_scale`.
    """
    if inputs.shape[1] % input_scale or inputs.shape[2] % input_scale:
        raise ValueError(
            f"Tiling needs a height and width divisible by {input_scale}, got {tuple(inputs.shape[1:3])}; pad or crop "
            "the images first."
        )
    height, width = inputs.shape[1] // input_scale, inputs.shape[2] // input_scale
    rows, columns = tile_starts(height, tile, blend), tile_starts(width, tile, blend)
    output_blend, size = blend * output_scale, tile * input_scale
    output = None
    for top in rows:
        for left in columns:
            y, x = top * input_scale, left * input_scale
            result = np.asarray(tf.cast(function(inputs[:, y : y + size, x : x + size]), tf.float32))
            if output is None:
                shape = (len(result), height * output_scale, width * output_scale, result.shape[-1])
                output = np.zeros(shape, "float32")
            tile_height, tile_width = result.shape[1:3]
            weight = np.outer(
                _ramp(top, tile_height, rows, output_blend), _ramp(left, tile_width, columns, output_blend)
            )
            y, x = top * output_scale, left * output_scale
            output[:, y : y + tile_height, x : x + tile_width] += result * weight[:, :, None]
    return tf.constant(output)


def _ramp(start, length, starts, blend):
    """The weights along one axis of a tile of `length` output pixels: rising over its first `blend` pixels if a
    tile precedes it, falling over its last `blend` pixels if one follows."""
    weight = np.ones(length, "float32")
    ramp = (np.arange(blend, dtype="float32") + 0.5) / max(blend, 1)
    if start > starts[0]:
        weight[:blend] *= ramp
    if start < starts[-1]:
        weight[length - blend :] *= ramp[::-1]
    return weight
