"""Fixtures shared by the tests of `tfvae.AutoencoderKLCogVideoX` (tests/fixtures/autoencoder_kl_cogvideox, written by
scripts/make_autoencoder_kl_cogvideox_fixtures.py)."""

import os

import numpy as np
import pytest

from autoencoder_kl_cogvideox.fixtures import FIXTURES
from tfvae.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX


@pytest.fixture(scope="session")
def expected():
    return dict(np.load(os.path.join(FIXTURES, "outputs.npz")))


@pytest.fixture(scope="session")
def small():
    """The `small` diffusers model (CogVideoX-2b's layout with tiny widths)."""
    return AutoencoderKLCogVideoX.from_pretrained(os.path.join(FIXTURES, "small"))


@pytest.fixture(scope="session")
def inverted():
    """The `inverted` diffusers model (sharded; invert_scale_latents, quant convs, three blocks)."""
    return AutoencoderKLCogVideoX.from_pretrained(os.path.join(FIXTURES, "inverted"))
