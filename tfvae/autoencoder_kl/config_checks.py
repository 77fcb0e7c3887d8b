"""The constructor checks both diffusers autoencoders (`AutoencoderKL`, `AutoencoderKLCogVideoX`) make of their
shared arguments, so that a configuration diffusers would not build is refused in one line before any layer is."""

import numpy as np


def check_block_out_channels(block_out_channels, norm_num_groups, example):
    """Raises a ValueError unless `block_out_channels` has an entry (such as `example`) and `norm_num_groups`
    divides every entry, as each GroupNorm splits its channels into `norm_num_groups` groups of `c / groups`."""
    if not block_out_channels:
        raise ValueError(f"block_out_channels needs at least one entry, e.g. {example}.")
    indivisible = [channels for channels in block_out_channels if channels % norm_num_groups]
    if indivisible:
        raise ValueError(
            f"Every entry of block_out_channels must be divisible by norm_num_groups={norm_num_groups}; "
            f"{indivisible} are not. Choose norm_num_groups among the common divisors."
        )


def per_channel(name, values, channels):
    """`values` (any nesting) as a tuple of `channels` floats, one per latent channel, or None for None.

    Raises:
        ValueError: when there are not `channels` values.
    """
    if values is None:
        return None
    values = tuple(float(value) for value in np.ravel(values))
    if len(values) != channels:
        raise ValueError(f"{name} needs one value per latent channel ({channels}), got {len(values)}.")
    return values
