"""`AutoencoderKLCogVideoX` as a Keras model: shapes, causality, configuration, `.keras` files, latent scaling and
mixed precision."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from autoencoder_kl_cogvideox.fixtures import video
from tfvae.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX
from tfvae.distributions import DiagonalGaussian

TINY = dict(block_out_channels=(4, 4, 8), latent_channels=2, layers_per_block=1, norm_num_groups=2,
            down_block_types=("CogVideoXDownBlock3D",) * 3, up_block_types=("CogVideoXUpBlock3D",) * 3)


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return AutoencoderKLCogVideoX(**TINY, seed=1)


def test_defaults_are_diffusers_cogvideox_2b_config():
    config = AutoencoderKLCogVideoX.__init__.__defaults__
    assert config[:6] == (3, 3, ("CogVideoXDownBlock3D",) * 4, ("CogVideoXUpBlock3D",) * 4, (128, 256, 256, 512), 16)
    assert config[6:21] == (3, "silu", 1e-6, 32, 4, 480, 720, 1.15258426, None, None, None, True, False, False, False)


def test_a_video_of_1_plus_4k_frames_has_1_plus_k_latent_frames(tiny):
    x = np.random.default_rng(0).uniform(-1, 1, (2, 9, 8, 12, 3)).astype("float32")
    posterior = tiny.encode(x)
    assert isinstance(posterior, DiagonalGaussian)
    assert posterior.mean().shape == (2, 3, 2, 3, 2)
    assert posterior.kl().shape == (2,)  # summed over every non-batch axis
    np.testing.assert_allclose(posterior.kl(), 0.5 * np.sum(
        np.square(posterior.mean()) + np.exp(posterior.logvar) - 1 - posterior.logvar, axis=(1, 2, 3, 4)), rtol=1e-5)
    assert tiny.decode(posterior.mode()).shape == x.shape  # an odd latent frame count: 1 + 4 (T' - 1) frames
    assert tiny(x).shape == x.shape
    assert tiny.encode(x[:, :5]).mean().shape[1] == 2
    assert tiny.decode(posterior.mode()[:, :2]).shape[1] == 8  # an even one: 4 T' frames, as diffusers decodes


def test_a_graph_traced_for_a_known_frame_count_encodes_and_decodes_across_chunks_as_eager_code_does(tiny):
    """17 frames are two encoder chunks (9 + 8) and their five latent frames three decoder chunks (3 + 2); traced for
    a known frame count, as `fit`'s train step is, the chunks are unrolled (the loop for an unknown frame count is
    the SavedModel signatures', tested in test_serving.py)."""
    x = np.random.default_rng(0).uniform(-1, 1, (1, 17, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(tf.function(tiny.encode_moments)(x), tiny.encode_moments(x), atol=1e-5)
    z = tiny.encode(x).mode()
    np.testing.assert_allclose(tf.function(tiny.decode)(z), tiny.decode(z), atol=1e-5)


def test_the_encoder_is_causal_a_frame_sees_no_later_frame(tiny):
    """Latent frame 0 depends on video frame 0 only, within one chunk (GroupNorm statistics aside, which span the
    chunk): a single-frame clip encodes to what the first latent frame of a 1-frame video is."""
    x = np.random.default_rng(1).uniform(-1, 1, (1, 9, 8, 8, 3)).astype("float32")
    first = tiny.encode(x[:, :1]).mean()
    assert first.shape[1] == 1
    changed = x.copy()
    changed[:, 5:] = 0  # later frames do not reach the first two latent frames but move the GroupNorm statistics
    assert np.abs(tiny.encode(changed).mean()[:, 2] - tiny.encode(x).mean()[:, 2]).max() > 1e-3


def test_frame_height_and_width_must_be_divisible_by_f(tiny):
    with pytest.raises(ValueError, match="divisible by f = 4"):
        tiny.encode(np.zeros((1, 1, 6, 8, 3), "float32"))


@pytest.mark.parametrize(
    "argument, match",
    [
        ({"act_fn": "relu"}, "act_fn"),
        ({"down_block_types": ("DownEncoderBlock2D",) * 3}, "down_block_types"),
        ({"temporal_compression_ratio": 8}, "temporal_compression_ratio"),
        ({"norm_num_groups": 3}, "divisible by norm_num_groups"),
        ({"latents_mean": (0.0,) * 3, "latents_std": (1.0,) * 3}, r"one value per latent channel \(2\), got 3"),
    ],
)
def test_a_configuration_diffusers_would_not_build_is_refused(argument, match):
    with pytest.raises(ValueError, match=match):
        AutoencoderKLCogVideoX(**{**TINY, **argument})


def test_keras_file_round_trip_in_safe_mode(tiny, tmp_path):
    path = os.path.join(tmp_path, "cogvideox.keras")
    tiny.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.get_config() == tiny.get_config()
    x = np.random.default_rng(2).uniform(-1, 1, (1, 9, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x), tiny(x))
    np.testing.assert_array_equal(loaded.seed_generator.state, tiny.seed_generator.state)


def test_scale_latents_applies_shift_mean_std_and_cogvideox_1_5_inversion():
    z = np.random.default_rng(3).normal(size=(1, 2, 2, 2, 2)).astype("float32")
    plain = AutoencoderKLCogVideoX(**TINY, scaling_factor=0.7)
    np.testing.assert_allclose(plain.scale_latents(z), z * 0.7, rtol=1e-6)
    np.testing.assert_allclose(plain.unscale_latents(plain.scale_latents(z)), z, rtol=1e-5, atol=1e-6)
    full = AutoencoderKLCogVideoX(**TINY, scaling_factor=0.7, shift_factor=0.1, latents_mean=(0.5, -0.5),
                                  latents_std=(2.0, 4.0))
    expected = (z - 0.1 - np.array([0.5, -0.5])) * 0.7 / np.array([2.0, 4.0])
    np.testing.assert_allclose(full.scale_latents(z), expected, rtol=1e-5)
    np.testing.assert_allclose(full.unscale_latents(full.scale_latents(z)), z, rtol=1e-5, atol=1e-6)
    inverted = AutoencoderKLCogVideoX(**TINY, scaling_factor=0.7, invert_scale_latents=True)
    np.testing.assert_allclose(inverted.scale_latents(z), z / 0.7, rtol=1e-6)  # the image latents, as 1.5 does
    np.testing.assert_allclose(inverted.unscale_latents(z), z / 0.7, rtol=1e-6)  # decode_latents divides anyway


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_groupnorm_statistics_and_the_posterior_in_float32(policy, small, expected):
    model = AutoencoderKLCogVideoX.from_pretrained(_small_folder(), dtype=policy)
    assert model.encoder.down_blocks[0].resnets[0].norm1.compute_dtype == model.compute_dtype
    x = video(expected, "small/pixels_9")
    posterior = model.encode(x)
    assert posterior.mean().dtype == "float32" and posterior.logvar.dtype == "float32"
    tolerance = {"mixed_bfloat16": 0.1, "mixed_float16": 0.02}[policy]
    np.testing.assert_allclose(posterior.mean(), expected["small/mean_9"], atol=tolerance)
    decoded = model.decode(posterior.mode())
    assert decoded.dtype == model.compute_dtype
    np.testing.assert_allclose(np.asarray(decoded, "float32"), expected["small/decode_9"], atol=3 * tolerance)


def _small_folder():
    from autoencoder_kl_cogvideox.fixtures import FIXTURES

    return os.path.join(FIXTURES, "small")


def test_the_posterior_clamps_the_log_variance_to_minus_30_20(tiny):
    x = np.random.default_rng(4).uniform(-1, 1, (1, 1, 4, 4, 3)).astype("float32")
    bias = tiny.encoder.conv_out.conv.bias
    saved = bias.numpy()
    try:
        bias.assign(np.concatenate([saved[:2], [40.0, -50.0]]).astype("float32"))
        moments = np.asarray(tiny.encode_moments(x))
        posterior = tiny.encode(x)
    finally:
        bias.assign(saved)
    assert moments[..., 2].min() > 20 and moments[..., 3].max() < -30
    np.testing.assert_array_equal(posterior.logvar[..., 0], 20.0)
    np.testing.assert_array_equal(posterior.logvar[..., 1], -30.0)
