"""Tiled encoding and decoding of videos too large for one pass, as diffusers' `AutoencoderKLCogVideoX` tiles them.

A tile spans every frame and `tile` input pixels along height (and width); tiles start every `step` input pixels.
Diffusers sizes them from the tile in video pixels `S` (`sample_height // 2` by `sample_width // 2` by default) and
an overlap fraction `o` (1/6 along height, 1/5 along width), with `f` the downsampling factor:

| | input tile | step | blended output | kept output |
|---|---|---|---|---|
| encode | `S` | `int(S (1 - o))` | `B = int(int(S / f) o)` | `int(S / f) - B` |
| decode | `L = int(S / f)` | `int(L (1 - o))` | `B = int(S o)` | `S - B` |

Tiles are cut and blended by `tfvae.autoencoder_kl.tiling.map_tiles` (each frame the way `AutoencoderKL` blends an
image); an input no larger than one tile is passed whole.
"""

from tfvae.autoencoder_kl.tiling import TileGrid


def encoder_grid(tile, overlap, factor):
    """The `TileGrid` of `tiled_encode` for video tiles `tile` (pixels, height and width) sharing the fractions
    `overlap`.

    Raises:
        ValueError: unless the tile sides and the steps between tiles are positive multiples of `factor`, and the
            fractions in [0, 1).
    """
    _check(tile, overlap, factor)
    latent = [int(side / factor) for side in tile]
    blend = [int(side * fraction) for side, fraction in zip(latent, overlap, strict=True)]
    step = [int(side * (1 - fraction)) for side, fraction in zip(tile, overlap, strict=True)]
    if any(side % factor for side in step):
        raise ValueError(
            f"Tiles of {tuple(tile)} pixels with overlaps {tuple(overlap)} start every {tuple(step)} pixels, not "
            f"a multiple of the downsampling factor {factor}: choose tile sizes and overlaps that align them."
        )
    return TileGrid(
        tuple(tile),
        tuple(step),
        tuple(blend),
        tuple(side - extent for side, extent in zip(latent, blend, strict=True)),
    )


def decoder_grid(tile, overlap, factor):
    """The `TileGrid` of `tiled_decode` for decoded tiles `tile` (pixels, height and width) sharing the fractions
    `overlap`.

    Raises:
        ValueError: unless the tile sides are positive multiples of `factor` and the fractions in [0, 1).
    """
    _check(tile, overlap, factor)
    latent = [int(side / factor) for side in tile]
    blend = [int(side * fraction) for side, fraction in zip(tile, overlap, strict=True)]
    return TileGrid(
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
