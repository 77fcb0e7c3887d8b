"""Tiled application of a convolutional network to inputs larger than one pass fits in memory, as diffusers'
autoencoders tile them (`AutoencoderKL.tiled_encode` / `tiled_decode`, and `AutoencoderKLCogVideoX`'s through
`tfvae.autoencoder_kl_cogvideox.tiling`), so both give diffusers' result.

A `TileGrid` gives, along height and along width, the side of a tile and how far apart tiles start, in input pixels,
and in output pixels how many `B` a tile blends with its neighbour and how many it keeps. Tiles span every axis before
height and width whole (examples, frames); the last tiles along an axis end at the edge and may be shorter. Rows of
tiles are processed top to bottom and each row left to right; the first `B` output rows of a tile are blended with the
last `B` rows of the tile above, `b[y] = a[y - B] * (1 - y / B) + b[y] * y / B` for `y < B`, then its first `B`
columns likewise with the (already blended) tile to its left. Each tile then keeps its first `kept` outputs along each
axis, and the kept parts are put side by side. An input no larger than one tile is passed whole, as diffusers does.

An `AutoencoderKL` counts sizes in grid cells: a cell is one latent pixel, `f` image pixels along each side. Its
square tiles of `tile` cells start every `tile - blend` cells, so neighbours share `blend` cells and each keeps
`tile - blend` (`TileGrid.of_cells`).

A tile sees only itself: GroupNorm statistics and attention span the tile, not the image, so the tiled result of an
`AutoencoderKL` differs from the untiled one wherever the image has more than one tile (by as much as diffusers' own
tiling does); with one tile covering the image it is the same.
"""

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Where tiles are cut and how their outputs are blended, along (height, width): each field is a pair, in input
    pixels (`tile`, the side of a tile; `step`, how far apart tiles start) or in output pixels (`blend`, the `B` shared
    with the tile before; `kept`, what each tile keeps)."""

    tile: tuple
    step: tuple
    blend: tuple
    kept: tuple

    @classmethod
    def of_cells(cls, tile, blend, input_scale, output_scale):
        """Square tiles of `tile` cells, neighbours sharing `blend` cells, a cell being `input_scale` input pixels
        and `output_scale` output pixels along each side (see the module docstring)."""
        return cls(
            (tile * input_scale,) * 2,
            ((tile - blend) * input_scale,) * 2,
            (blend * output_scale,) * 2,
            ((tile - blend) * output_scale,) * 2,
        )


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


def check_divisible(inputs, scale):
    """Raises a ValueError unless the height and width of `inputs` `[..., H, W, c]` are divisible by `scale`, the
    input pixels of a cell."""
    size = tuple(inputs.shape[-3:-1])
    if size[0] % scale or size[1] % scale:
        raise ValueError(
            f"Tiling needs a height and width divisible by {scale}, got {size}; pad or crop the images first."
        )


def map_tiles(function, inputs, grid):
    """Applies `function` to overlapping tiles of `inputs` and blends the outputs (see the module docstring).

    It runs eagerly, one tile at a time, and gathers the outputs in host memory. Height and width are the two axes
    before the channels; the tiles span every axis before them (examples, frames) whole.

    Args:
        function: maps a tile `[..., a, b, c]` to `[..., a', b', d]` (leading axes alike for every tile).
        inputs: `[..., H, W, c]`.
        grid: a `TileGrid`.

    Returns:
        A float32 tensor of the blended outputs: of `function(inputs)` when `inputs` fits in one tile.
    """
    height, width = inputs.shape[-3:-1]
    (tile_height, tile_width), (step_height, step_width) = grid.tile, grid.step
    if height <= tile_height and width <= tile_width:
        return tf.cast(function(inputs), tf.float32)
    rows = [
        [
            np.array(tf.cast(function(inputs[..., top : top + tile_height, left : left + tile_width, :]), tf.float32))
            for left in range(0, width, step_width)
        ]
        for top in range(0, height, step_height)
    ]
    kept_height, kept_width = grid.kept
    blended_rows = []
    for i, row in enumerate(rows):
        for j, outputs in enumerate(row):
            if i > 0:
                _blend(rows[i - 1][j], outputs, grid.blend[0], axis=-3)
            if j > 0:
                _blend(row[j - 1], outputs, grid.blend[1], axis=-2)
        blended_rows.append(np.concatenate([outputs[..., :kept_height, :kept_width, :] for outputs in row], axis=-2))
    return tf.constant(np.concatenate(blended_rows, axis=-3))


def _blend(before, after, extent, axis):
    """Blends, in place, the first `extent` rows (`axis=-3`) or columns (`axis=-2`) of `after` with the last ones of
    `before`, linearly from all `before` to all `after`: `after[y] = before[y - extent] * (1 - y / extent) + after[y]
    * y / extent`."""
    extent = min(before.shape[axis], after.shape[axis], extent)
    if not extent:
        return
    shape = [1] * after.ndim
    shape[axis] = extent
    weight = (np.arange(extent, dtype="float32") / extent).reshape(shape)
    head = [slice(None)] * after.ndim
    head[axis] = slice(0, extent)
    tail = [slice(None)] * after.ndim
    tail[axis] = slice(before.shape[axis] - extent, None)
    after[tuple(head)] = before[tuple(tail)] * (1 - weight) + after[tuple(head)] * weight
