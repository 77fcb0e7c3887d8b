import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import AutoencoderKL, DiagonalGaussian
from tfvae._keras.eager import tracing_count
from tfvae.autoencoder_kl import blocks, tiling

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "autoencoder_kl")
TINY = dict(block_out_channels=(8, 16), norm_num_groups=4)


def images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def tiny_model(**kwargs):
    keras.utils.set_random_seed(1)
    return AutoencoderKL(**{**TINY, **kwargs})


BLOCKS = {
    "resnet": lambda dtype: blocks.ResnetBlock(16, groups=4, dtype=dtype),
    "attention": lambda dtype: blocks.AttentionBlock(groups=4, dtype=dtype),
    "downsample": lambda dtype: blocks.Downsample(8, dtype=dtype),
    "upsample": lambda dtype: blocks.Upsample(8, dtype=dtype),
    "mid": lambda dtype: blocks.MidBlock(8, groups=4, dtype=dtype),
    "down": lambda dtype: blocks.DownEncoderBlock(16, 2, groups=4, dtype=dtype),
    "up": lambda dtype: blocks.UpDecoderBlock(4, 2, groups=4, add_upsample=False, dtype=dtype),
    "encoder": lambda dtype: blocks.Encoder((8, 16), 1, 4, norm_num_groups=4, dtype=dtype),
    "decoder": lambda dtype: blocks.Decoder(
        (8, 16), 1, 3, norm_num_groups=4, mid_block_add_attention=False, dtype=dtype
    ),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_builds_from_shapes_and_round_trips_its_config(name):
    layer = BLOCKS[name]("mixed_float16")
    layer.build((None, None, None, 8))
    for height, width in ((8, 8), (16, 24)):
        output = layer(images((2, height, width, 8)))
        assert tuple(output.shape) == layer.compute_output_shape((2, height, width, 8))
        assert output.dtype == tf.float16
    assert all(sublayer.dtype_policy.name == "mixed_float16" for sublayer in layer._flatten_layers())
    copy = type(layer).from_config(layer.get_config())
    copy.build((None, None, None, 8))
    copy.set_weights(layer.get_weights())
    assert copy.get_config() == layer.get_config()
    x = images((1, 8, 8, 8), seed=1)
    np.testing.assert_array_equal(copy(x), layer(x))


def test_attention_block_is_single_head_softmax_attention_with_a_residual():
    layer = blocks.AttentionBlock(groups=2)
    x = images((2, 3, 5, 4))
    layer.build(x.shape)
    for variable in layer.weights:  # non-trivial GroupNorm scales and offsets, and biases
        variable.assign(np.random.default_rng(len(variable.path)).normal(size=variable.shape).astype("float32"))
    groups = x.reshape(2, 15, 2, 2)
    normalized = (groups - groups.mean(axis=(1, 3), keepdims=True)) / np.sqrt(
        groups.var(axis=(1, 3), keepdims=True) + blocks.EPSILON
    )
    u = normalized.reshape(2, 15, 4) * np.asarray(layer.group_norm.gamma) + np.asarray(layer.group_norm.beta)

    def project(dense, values):
        return values @ np.asarray(dense.kernel) + np.asarray(dense.bias)

    scores = project(layer.to_q, u) @ project(layer.to_k, u).transpose(0, 2, 1) / 2.0
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    expected = x + project(layer.to_out, weights @ project(layer.to_v, u)).reshape(x.shape)
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)


def test_encode_gives_a_diagonal_gaussian_over_the_latent_grid():
    model = tiny_model(latent_channels=3)
    assert model.downsampling_factor == 2
    x = images((2, 16, 12, 3))
    posterior = model.encode(x)
    assert isinstance(posterior, DiagonalGaussian)
    assert posterior.mean().shape == (2, 8, 6, 3)
    moments = model.encode_moments(x)
    np.testing.assert_allclose(posterior.mean(), moments[..., :3])
    np.testing.assert_allclose(posterior.logvar, np.clip(moments[..., 3:], -30, 20))
    assert model.decode(posterior.mode()).shape == (2, 16, 12, 3)


def test_eager_encode_and_decode_run_as_one_graph_for_every_batch_size():
    # A user's eager calls run as TensorFlow graphs, traced once per image size (2-2.5x the speed of op-by-op eager
    # execution at 256x256); the results are the layers' own, run eagerly.
    model = tiny_model()
    for size in (1, 3, 2):
        x = images((size, 8, 8, 3), seed=size)
        posterior = model.encode(x)
        np.testing.assert_allclose(posterior.mean(), model.quant_conv(model.encoder(x))[..., :4], atol=1e-5)
        z = posterior.mode()
        np.testing.assert_allclose(model.decode(z), model.decoder(model.post_quant_conv(z)), atol=1e-5)
    assert tracing_count(model) == 2, "encode's moments and decode, each traced once"


def test_call_decodes_the_mode_or_a_seeded_sample():
    x = images((2, 8, 8, 3))
    model = tiny_model(seed=4)
    posterior = model.encode(x)
    np.testing.assert_allclose(model(x), model.decode(posterior.mean()), atol=1e-6)
    first = model(x, sample_posterior=True)
    assert np.abs(first - model(x)).max() > 1e-3
    state = model.seed_generator.state.numpy()
    model.seed_generator.state.assign(state - [0, 1])
    np.testing.assert_allclose(model(x, sample_posterior=True), first, atol=1e-6)


def test_scale_latents_and_unscale_latents_are_inverse():
    model = tiny_model(scaling_factor=0.13025, shift_factor=0.0609)
    z = images((1, 4, 4, 4))
    np.testing.assert_allclose(model.scale_latents(z), (z - 0.0609) * 0.13025, rtol=1e-6)
    np.testing.assert_allclose(model.unscale_latents(model.scale_latents(z)), z, atol=1e-6)
    np.testing.assert_allclose(tiny_model().scale_latents(z), z * 0.18215, rtol=1e-6)


def test_without_quant_convs_and_attention():
    model = tiny_model(use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=False)
    names = {variable.path.split("/")[1] for variable in model.weights}
    assert not {"quant_conv", "post_quant_conv"} & names
    assert not any("attentions" in variable.path for variable in model.weights)
    x = images((1, 8, 8, 3))
    np.testing.assert_allclose(model.encode(x).mean(), model.encoder(x)[..., :4], atol=1e-5)  # a graph, rounded apart


def test_mixed_precision_keeps_norm_statistics_softmax_and_distribution_in_float32():
    x = images((2, 16, 16, 3))
    reference = tiny_model()
    mixed = tiny_model(dtype="mixed_float16")
    mixed.set_weights(reference.get_weights())
    posterior = mixed.encode(x)
    assert posterior.dtype == tf.float32
    assert mixed.decode(posterior.mode()).dtype == tf.float16
    np.testing.assert_allclose(posterior.mean(), reference.encode(x).mean(), atol=2e-2)
    np.testing.assert_allclose(np.float32(mixed(x)), reference(x), atol=2e-2)


def test_keras_file_round_trip_keeps_config_weights_and_policy(tmp_path):
    model = tiny_model(dtype="mixed_float16", shift_factor=0.5, seed=2)
    model.next_seed()
    path = str(tmp_path / "autoencoder.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded) is AutoencoderKL
    assert loaded.get_config() == model.get_config()
    assert loaded.decoder.conv_out.dtype_policy.name == "mixed_float16"
    x = images((1, 16, 8, 3))
    np.testing.assert_array_equal(loaded(x), model(x))
    np.testing.assert_array_equal(loaded.next_seed(), model.next_seed())  # the noise goes on where it was


def test_bad_configuration_and_image_size_are_named():
    with pytest.raises(ValueError, match=r"divisible by norm_num_groups=32; \[8, 16\]"):
        AutoencoderKL(block_out_channels=(8, 16))
    with pytest.raises(ValueError, match=r"divisible by f = 2, got \(8, 5\)"):
        tiny_model().encode(images((1, 8, 5, 3)))


def test_tiling_matches_diffusers_tiling_where_it_differs_from_untiled():
    model = AutoencoderKL.from_pretrained(os.path.join(FIXTURES, "diffusers"))
    expected = np.load(os.path.join(FIXTURES, "tiling.npz"))
    images = expected["tiled_images"]
    posterior = model.tiled_encode(images, tile_size=32)
    np.testing.assert_allclose(posterior.mean(), expected["tiled_mean"], atol=1e-4)
    np.testing.assert_allclose(posterior.logvar, expected["tiled_logvar"], atol=1e-4)
    decoded = model.tiled_decode(expected["tiled_mean"], tile_size=32)
    np.testing.assert_allclose(decoded, expected["tiled_decoded"], atol=1e-4)
    # diffusers' untiled results: tfvae's match them, and tiling changes both by more than the tolerance above, so
    # the comparisons above hold tiles and blending to diffusers' and would fail for untiled results.
    np.testing.assert_allclose(model.encode(images).mean(), expected["untiled_mean"], atol=1e-4)
    np.testing.assert_allclose(model.decode(expected["untiled_mean"]), expected["untiled_decoded"], atol=1e-4)
    assert np.abs(expected["tiled_mean"] - expected["untiled_mean"]).max() > 1e-2
    assert np.abs(expected["tiled_decoded"] - expected["untiled_decoded"]).max() > 1e-2


def test_one_tile_covering_the_image_equals_untiled():
    model = tiny_model()
    x = images((1, 16, 12, 3))
    z = model.encode(x).mean()
    np.testing.assert_allclose(model.tiled_encode(x, tile_size=16).mean(), z, atol=1e-6)
    np.testing.assert_allclose(model.tiled_decode(z, tile_size=16), model.decode(z), atol=1e-6)


@pytest.mark.parametrize("input_scale, output_scale", [(4, 1), (1, 4)])
def test_tiles_blend_back_to_a_pixelwise_function_exactly(input_scale, output_scale):
    # A function of each cell alone gives the same value in every tile holding that cell, so any placement error or
    # blend weights not summing to one would show.
    def function(x):
        x = tf.nn.avg_pool2d(x, input_scale, input_scale, "VALID") if input_scale > 1 else x
        return tf.repeat(tf.repeat(2 * x + 1, output_scale, axis=1), output_scale, axis=2)

    x = images((2, 13 * input_scale, 11 * input_scale, 2))
    grid = tiling.TileGrid.of_cells(5, 2, input_scale, output_scale)
    np.testing.assert_allclose(tiling.map_tiles(function, x, grid), function(x), atol=1e-6)


def test_rectangular_tiles_of_videos_blend_back_to_a_pixelwise_function_exactly():
    # Videos [n, T, H, W, c] (the video autoencoder's): tiles of 5 x 7 pixels every 3 x 4 keep 3 x 4 and blend the
    # other 2 x 3 with their neighbours, the height's and the width's apart; the function halves the frames, as the
    # video encoder does. Swapping height and width anywhere, or cutting along the wrong axes, would show.
    def function(x):
        return 2 * x[:, ::2] + 1

    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 13, 17, 2)).astype("float32")
    grid = tiling.TileGrid(tile=(5, 7), step=(3, 4), blend=(2, 3), kept=(3, 4))
    np.testing.assert_allclose(tiling.map_tiles(function, x, grid), function(x), atol=1e-6)


def test_bad_tiling_arguments_are_named():
    model = tiny_model()
    with pytest.raises(ValueError, match="multiple of the downsampling factor 2"):
        model.tiled_encode(images((1, 8, 8, 3)), tile_size=7)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        model.tiled_decode(images((1, 4, 4, 4)), tile_size=8, overlap=1.0)
    with pytest.raises(ValueError, match="divisible by 2"):
        model.tiled_encode(images((1, 9, 8, 3)), tile_size=4)
