"""Tiled application of a convolutional network to images larger than one pass fits in memory, as diffusers'
`AutoencoderKL.tiled_encode` / `tiled_decode` do it (so the two give the same result).

Sizes are counted in grid cells: a cell is one latent pixel, `f` image pixels along each side. Tiles of `tile` cells
start every `tile - blend` cells, so neighbours share `blend` cells (the last tiles along an axis end at the edge and
may be shorter). Rows of tiles are processed top to bottom and each row left to right; the first `B` output rows of a
tile are blended with the last `B` rows of the tile above, `b[y] = a[y - B] * (1 - y / B) + b[y] * y / B` for
`y < B`, then its first `B` columns likewise with the (already blended) tile to its left. Each tile then keeps its
first `tile - blend` cells along each axis, and the kept parts are put side by side. An input no larger than one tile
is passed whole, as diffusers does.

A tile sees only itself: GroupNorm statistics and attention span the tile, not the image, so the tiled result of an
`AutoencoderKL` differs from the untiled one wherever the image has more than one tile (by as much as diffusers' own
tiling does); with one tile covering the image it is the same.
"""

import numpy as np
import tensorflow as tf


def tile_geometry(tile_size, overlap, factor):
    """`(tile, blend)` in cells for tiles of `tile_size` image pixels sharing the fraction `overlap` of a side.

    Raises:
        ValueError: unless `tile_size` is a positive multiple of `factor` and `0 <= overlap < 1`.
    """
    if tile_size < factor or tile_size % factor:
        raise ValueError(f"tile_size must be a positive multiple of the downsampling factor {factor}, got {tile_size}.")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap is the fraction of a tile shared with its neighbour, in [0, 1); got {overlap}.")
    tile = tile_size // factor
    return tile, int(tile * overlap)


def map_tiles(function, inputs, tile, blend, input_scale, output_scale):
    """Applies `function` to overlapping tiles of `inputs` and blends the outputs (see the module docstring).

    It runs eagerly, one tile at a time, and gathers the outputs in host memory.

    Args:
        function: maps `[n, input_scale * a, input_scale * b, c]` to `[n, output_scale * a, output_scale * b, d]`
            for any tile of `a x b` cells.
        inputs: `[n, H, W, c]` with `H` and `W` divisible by `input_scale`.
        tile: the side of a tile in cells.
        blend: the cells shared by neighbouring tiles, below `tile`.
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
    step, size = (tile - blend) * input_scale, tile * input_scale
    if max(inputs.shape[1:3]) <= size:
        return tf.cast(function(inputs), tf.float32)
    rows = [
        [
            np.array(tf.cast(function(inputs[:, top : top + size, left : left + size]), tf.float32))
            for left in range(0, inputs.shape[2], step)
        ]
        for top in range(0, inputs.shape[1], step)
    ]
    extent, kept = blend * output_scale, (tile - blend) * output_scale
    blended_rows = []
    for i, row in enumerate(rows):
        for j, outputs in enumerate(row):
            if i > 0:
                _blend(rows[i - 1][j], outputs, extent, axis=1)
            if j > 0:
                _blend(row[j - 1], outputs, extent, axis=2)
        blended_rows.append(np.concatenate([outputs[:, :kept, :kept] for outputs in row], axis=2))
    return tf.constant(np.concatenate(blended_rows, axis=1))


def _blend(before, after, extent, axis):
    """Blends, in place, the first `extent` rows (`axis=1`) or columns (`axis=2`) of `after` with the last ones of
    `before`, linearly from all `before` to all `after`."""
    extent = min(before.shape[axis], after.shape[axis], extent)
    if not extent:
        return
    shape = [1, 1, 1, 1]
    shape[axis] = extent
    weight = (np.arange(extent, dtype="float32") / extent).reshape(shape)
    head = [slice(None)] * 4
    head[axis] = slice(0, extent)
    tail = [slice(None)] * 4
    tail[axis] = slice(before.shape[axis] - extent, None)
    after[tuple(head)] = before[tuple(tail)] * (1 - weight) + after[tuple(head)] * weight
