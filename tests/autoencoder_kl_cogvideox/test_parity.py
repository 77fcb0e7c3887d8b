"""`AutoencoderKLCogVideoX` against diffusers' own outputs for the same weights (float32, within 1e-4)."""

import numpy as np
import pytest

from autoencoder_kl_cogvideox.fixtures import video

TOLERANCE = 1e-4


@pytest.mark.parametrize("config", ["small", "inverted"])
@pytest.mark.parametrize("frames", [1, 9, 17])
def test_encode_and_decode_match_diffusers(config, frames, expected, request):
    model = request.getfixturevalue(config)
    posterior = model.encode(video(expected, f"{config}/pixels_{frames}"))
    assert posterior.mean().shape == (1, 1 + (frames - 1) // 4, *expected[f"{config}/mean_{frames}"].shape[2:])
    np.testing.assert_allclose(posterior.mean(), expected[f"{config}/mean_{frames}"], atol=TOLERANCE)
    np.testing.assert_allclose(posterior.logvar, expected[f"{config}/logvar_{frames}"], atol=TOLERANCE)
    decoded = model.decode(posterior.mode())
    assert decoded.shape[1] == frames
    np.testing.assert_allclose(decoded, expected[f"{config}/decode_{frames}"], atol=TOLERANCE)


@pytest.mark.parametrize("config", ["small", "inverted"])
def test_an_even_latent_frame_count_decodes_in_chunks_of_two_as_diffusers(config, expected, request):
    decoded = request.getfixturevalue(config).decode(expected[f"{config}/latents_even"])
    assert decoded.shape[1] == 16  # 4 latent frames, two chunks of 2 -> 8 frames each
    np.testing.assert_allclose(decoded, expected[f"{config}/decode_even"], atol=TOLERANCE)


def test_tiled_encode_and_decode_match_diffusers_enable_tiling(small, expected):
    posterior = small.tiled_encode(video(expected, "tiled/pixels"))
    np.testing.assert_allclose(posterior.mean(), expected["tiled/mean"], atol=TOLERANCE)
    np.testing.assert_allclose(posterior.logvar, expected["tiled/logvar"], atol=TOLERANCE)
    np.testing.assert_allclose(small.tiled_decode(posterior.mode()), expected["tiled/decode"], atol=TOLERANCE)


def test_tiling_differs_from_one_pass(small, expected):
    """The fixture's clip spans several tiles: each normalized on its own, so tiling changes the result."""
    x = video(expected, "tiled/pixels")
    assert np.abs(small.encode(x).mean() - expected["tiled/mean"]).max() > 1e-3


def test_tiles_must_align_with_the_latent_grid(small):
    x = np.zeros((1, 1, 64, 64, 3), "float32")
    with pytest.raises(ValueError, match="multiples of the downsampling factor 8"):
        small.tiled_encode(x, tile_height=36)
    with pytest.raises(ValueError, match="start every \\(40, 38\\) pixels"):
        small.tiled_encode(x, tile_width=48)
