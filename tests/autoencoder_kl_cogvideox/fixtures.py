"""Where the fixtures of `tfvae.AutoencoderKLCogVideoX` are, and how to read their videos."""

import os

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "autoencoder_kl_cogvideox")


def video(expected, key):
    """The float32 video of the int8 fixture `key` (`pixels / 127`, as the fixture script computes it)."""
    return expected[key].astype("float32") / np.float32(127)
