"""Tiled encoding and decoding of videos too large for one pass, as diffusers' `AutoencoderKLCogVideoX` tiles them.

A tile spans every frame and `tile` input pixels along height (and width); tiles start every `step` input pixels.
Diffusers sizes them from the tile in video pixels `S` (`sample_height // 2` by `sample_width // 2` by default) and
an overlap fraction `o` (1/6 along height, 1/5 along width), with `f` the downsampling factor:

| | input tile | step | blended output | kept output |
|---|---|---|---|---|
| encode | `S` | `int(S (1 - o))` | `B = int(int(S / f) o)` | `int(S / f) - B` |
| decode | `L = int(S / f)` | `int(L (1 - o))` | `B = int(S o)` | `S - B` |

Rows of tiles are processed top to bottom and each row left to right; the first `B` output rows of a tile are blended
with the last `B` rows of the tile above, linearly (`tfvae.autoencoder_kl.tiling` blends each frame the same way),
then its first `B` columns with the tile to its left. Each tile keeps its first `kept` outputs along each axis, and
the kept parts are put side by side. An input no larger than one tile is passed whole.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tfvae.autoencoder_kl.tiling import _blend


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """The tiling along (height, width): each field is a pair, in input pixels (`tile`, `step`) or output pixels
    (`blend`, `kept`)."""

    tile: tuple
    step: tuple
    blend: tuple
    kept: tuple

    @classmethod
    def for_encoder(cls, tile, overlap, factor):
        """The grid of `tiled_encode` for video tiles `tile` (pixels) sharing the fractions `overlap`."""
        _check(tile, overlap, factor)
        latent = [int(side / factor) for side in tile]
        blend = [int(side * fraction) for side, fraction in zip(latent, overlap, strict=True)]
        step = [int(side * (1 - fraction)) for side, fraction in zip(tile, overlap, strict=True)]
        if any(side % factor for side in step):
            raise ValueError(
                f"Tiles of {tuple(tile)} pixels with overlaps {tuple(overlap)} start every {tuple(step)} pixels, not "
                f"a multiple of the downsampling factor {factor}: choose tile sizes and overlaps that align them."
            )
        return cls(
            tuple(tile),
            tuple(step),
            tuple(blend),
            tuple(side - extent for side, extent in zip(latent, blend, strict=True)),
        )

    @classmethod
    def for_decoder(cls, tile, overlap, factor):
        """The grid of `tiled_decode` for decoded tiles `tile` (pixels) sharing the fractions `overlap`."""
        _check(tile, overlap, factor)
        latent = [int(side / factor) for side in tile]
        blend = [int(side * fraction) for side, fraction in zip(tile, overlap, strict=True)]
        return cls(
            tuple(latent),
            tuple(int(side * (1 - fraction)) for side, fraction in zip(latent, overlap, strict=True)),
            tuple(blend),
            tuple(side - extent for side, extent in zip(tile, blend, strict=True)),
        )


def _check(tile, overlap, factor):
    tile, overlap = tuple(tile), tuple(overlap)
    if any(side < factor or side % factor for side in tile):
        raise ValueError(f"Tile sizes must be positive multiples of the downsampling factor {factor}, got {tile}.")
    if not all(0 <= fraction < 1 for fraction in overlap):
        raise ValueError(f"overlap fractions must be in [0, 1), got {overlap}.")


def map_tiles(function, inputs, grid):
    """Applies `function` to the overlapping tiles of `inputs` and blends the outputs (see the module docstring).

    It runs eagerly, one tile at a time, and gathers the outputs in host memory.

    Args:
        function: maps a tile `[n, T, a, b, c]` to `[n, T', a', b', d]`.
        inputs: `[n, T, H, W, c]`.
        grid: a `TileGrid`.

    Returns:
        A float32 tensor of the blended outputs.
    """
    height, width = inputs.shape[2:4]
    (tile_height, tile_width), (step_height, step_width) = grid.tile, grid.step
    if height <= tile_height and width <= tile_width:
        return tf.cast(function(inputs), tf.float32)
    rows = [
        [
            np.array(tf.cast(function(inputs[:, :, top : top + tile_height, left : left + tile_width]), tf.float32))
            for left in range(0, width, step_width)
        ]
        for top in range(0, height, step_height)
    ]
    kept_height, kept_width = grid.kept
    blended_rows = []
    for i, row in enumerate(rows):
        for j, outputs in enumerate(row):
            if i > 0:
                _blend_frames(rows[i - 1][j], outputs, grid.blend[0], axis=1)
            if j > 0:
                _blend_frames(row[j - 1], outputs, grid.blend[1], axis=2)
        blended_rows.append(np.concatenate([outputs[:, :, :kept_height, :kept_width] for outputs in row], axis=3))
    return tf.constant(np.concatenate(blended_rows, axis=2))


def _blend_frames(before, after, extent, axis):
    """Blends `after` with `before` in place, frame by frame, along height (`axis=1`) or width (`axis=2`) of a
    frame."""
    for frame in range(after.shape[1]):
        _blend(before[:, frame], after[:, frame], extent, axis)
