"""`tfvae encode`: the posterior moments of a folder of images or of videos, as TFRecord shards, resumable and
checked."""

import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import write_gif, write_video

from tfvae import AutoencoderKL, AutoencoderKLCogVideoX, cli, data
from tfvae.run import latent_shards

DIFFUSERS_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "autoencoder_kl",
                                "diffusers")


@pytest.fixture
def image_folder(tmp_path, rng):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(7):
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        tf.io.write_file(str(folder / f"{index:02d}.png"), tf.io.encode_png(pixels))
    return folder


def encode(model, folder, output, *extra):
    return cli.main(["encode", str(model), "--dataset", str(folder), "--output-dir", str(output), "--batch-size", "2",
                     "--shard-size", "3", "--quiet", *extra])


def test_a_diffusers_folder_encodes_a_folder_of_images_into_shards_of_its_posterior(tmp_path, image_folder):
    output = tmp_path / "latents"
    assert encode(DIFFUSERS_FOLDER, image_folder, output) == 0
    assert sorted(os.listdir(output)) == ["latents-00000.tfrecord", "latents-00001.tfrecord",
                                          "latents-00002.tfrecord", "latents.json"]
    manifest = json.loads((output / "latents.json").read_text())
    assert (manifest["count"], manifest["scaling_factor"], manifest["shift_factor"]) == (7, 0.5, 0.1)
    records = list(latent_shards.read_latents(str(output)))
    assert [int(record["index"]) for record in records] == list(range(7))
    autoencoder = AutoencoderKL.from_pretrained(DIFFUSERS_FOLDER)
    images = np.stack([tf.io.decode_png(tf.io.read_file(str(image_folder / f"{index:02d}.png"))).numpy()
                       for index in range(7)]).astype(np.float32) / 255
    posterior = autoencoder.encode(2 * images - 1)
    np.testing.assert_allclose(np.stack([record["mean"] for record in records]), posterior.mean(), atol=1e-5)
    np.testing.assert_allclose(np.stack([record["logvar"] for record in records]), posterior.logvar, atol=1e-5)
    assert records[0]["mean"].shape == (4, 4, 4), "16x16 images, downsampled 4 times, 4 latent channels"


def test_a_killed_run_resumes_after_its_last_finished_shard_and_another_run_is_refused(tmp_path, image_folder,
                                                                                      capsys):
    model = tmp_path / "autoencoder.keras"
    AutoencoderKL(block_out_channels=(4, 4), norm_num_groups=2, latent_channels=2, seed=0).save(model)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert encode(model, image_folder, whole) == 0
    assert encode(model, image_folder, resumed) == 0
    os.remove(resumed / "latents-00002.tfrecord")
    os.remove(resumed / "latents-00001.tfrecord")
    first_shard = (resumed / "latents-00000.tfrecord").stat().st_mtime_ns
    assert encode(model, image_folder, resumed) == 0
    assert (resumed / "latents-00000.tfrecord").stat().st_mtime_ns == first_shard, "a finished shard is kept"
    for shard in ("latents-00000.tfrecord", "latents-00001.tfrecord", "latents-00002.tfrecord"):
        assert (whole / shard).read_bytes() == (resumed / shard).read_bytes(), shard
    assert encode(model, image_folder, resumed, "--split", "test") == 1
    assert "holds the latents of another run (split differ)" in capsys.readouterr().err


def test_a_vae_is_not_an_autoencoder_to_encode_with(tmp_path, image_folder, capsys):
    from small_models import make_vae

    make_vae("bernoulli").save(tmp_path / "vae.keras")
    assert encode(tmp_path / "vae.keras", image_folder, tmp_path / "out") == 1
    assert ("holds a VAE, not a tfvae.AutoencoderKL, tfvae.AutoencoderKLCogVideoX or tfvae.AutoencoderKLTrainer"
            in capsys.readouterr().err)


# ---- videos, through a video autoencoder ----

VIDEO_DIFFUSERS_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                                      "autoencoder_kl_cogvideox", "small")  # f = 8, r = 4, 4 latent channels
TINY_VIDEO_MODEL = dict(block_out_channels=(4, 4, 8), latent_channels=2, layers_per_block=1, norm_num_groups=2,
                        down_block_types=("CogVideoXDownBlock3D",) * 3, up_block_types=("CogVideoXUpBlock3D",) * 3)


@pytest.fixture
def gif_folder(tmp_path, rng):
    """GIFs of 10, 5 and 3 frames of 16x16: clips of 5 frames are the first's two and the second's one."""
    folder = tmp_path / "gifs"
    folder.mkdir()
    for name, frames in (("a", 10), ("b", 5), ("c", 3)):
        write_gif(folder / f"{name}.gif", rng.integers(0, 256, (frames, 16, 16, 3), dtype=np.uint8))
    return folder


def assert_latents_of(output, model, clips):
    """The shards in `output` hold `model`'s posterior of `clips` (float32 in [0, 1]), in order."""
    records = list(latent_shards.read_latents(str(output)))
    assert [int(record["index"]) for record in records] == list(range(len(clips)))
    posterior = model.encode(2 * clips - 1)
    np.testing.assert_allclose(np.stack([record["mean"] for record in records]), posterior.mean(), atol=1e-5)
    np.testing.assert_allclose(np.stack([record["logvar"] for record in records]), posterior.logvar, atol=1e-5)


def test_a_video_diffusers_folder_encodes_a_folder_of_videos_into_clips_latents(tmp_path, gif_folder):
    output = tmp_path / "latents"
    assert encode(VIDEO_DIFFUSERS_FOLDER, gif_folder, output, "--frames", "5") == 0
    assert sorted(os.listdir(output)) == ["latents-00000.tfrecord", "latents.json"]
    manifest = json.loads((output / "latents.json").read_text())
    assert manifest["family"] == "AutoencoderKLCogVideoX"
    assert manifest["latent_shape"] == [2, 2, 2, 4], "5 frames of 16x16: 1 + 4/4 latent frames of 2x2, 4 channels"
    assert (manifest["frames"], manifest["frame_stride"], manifest["clip_shape"]) == (5, 1, [5, 16, 16, 3])
    assert (manifest["scaling_factor"], manifest["shift_factor"], manifest["invert_scale_latents"]) == (
        1.15258426, None, False)
    clips = data.open_videos(str(gif_folder), frames=5).take()
    assert len(clips) == 3
    assert_latents_of(output, AutoencoderKLCogVideoX.from_pretrained(VIDEO_DIFFUSERS_FOLDER), clips)
    assert list(latent_shards.read_latents(str(output)))[0]["mean"].shape == tuple(manifest["latent_shape"])


def test_a_killed_video_run_resumes_at_the_clip_after_its_last_finished_shard(tmp_path, gif_folder, capsys):
    model = tmp_path / "video.keras"
    AutoencoderKLCogVideoX(**TINY_VIDEO_MODEL, seed=0).save(model)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    options = ("--frames", "5", "--shard-size", "1")
    assert encode(model, gif_folder, whole, *options) == 0
    assert encode(model, gif_folder, resumed, *options) == 0
    os.remove(resumed / "latents-00002.tfrecord")
    os.remove(resumed / "latents-00001.tfrecord")
    first_shard = (resumed / "latents-00000.tfrecord").stat().st_mtime_ns
    assert encode(model, gif_folder, resumed, *options) == 0
    assert (resumed / "latents-00000.tfrecord").stat().st_mtime_ns == first_shard, "a finished shard is kept"
    for shard in ("latents-00000.tfrecord", "latents-00001.tfrecord", "latents-00002.tfrecord"):
        assert (whole / shard).read_bytes() == (resumed / shard).read_bytes(), shard
    assert_latents_of(resumed, keras.models.load_model(model), data.open_videos(str(gif_folder), frames=5).take())
    assert encode(model, gif_folder, resumed, "--frames", "5", "--frame-stride", "2", "--shard-size", "1") == 1
    assert "holds the latents of another run (frame_stride differ)" in capsys.readouterr().err


def test_mp4_videos_are_encoded_through_pyav(tmp_path, rng):
    pytest.importorskip("av")
    folder = tmp_path / "mp4"
    folder.mkdir()
    for name in ("a", "b"):
        write_video(folder / f"{name}.mp4", rng.integers(0, 256, (9, 16, 16, 3), dtype=np.uint8))
    model = AutoencoderKLCogVideoX(**TINY_VIDEO_MODEL, seed=0)
    model.save(tmp_path / "video.keras")
    assert encode(tmp_path / "video.keras", folder, tmp_path / "latents", "--frames", "9") == 0
    assert_latents_of(tmp_path / "latents", model, data.open_videos(str(folder), frames=9).take())


# ---- one line for every mistake ----

@pytest.mark.parametrize("content", ["images", "nothing"])
def test_a_video_autoencoder_given_no_videos_says_so(tmp_path, image_folder, capsys, content):
    folder = image_folder if content == "images" else tmp_path / "empty"
    folder.mkdir(exist_ok=True)
    assert encode(VIDEO_DIFFUSERS_FOLDER, folder, tmp_path / "out") == 1
    error = capsys.readouterr().err
    assert error.startswith(f"tfvae encode: {VIDEO_DIFFUSERS_FOLDER} holds a video autoencoder "
                            "(AutoencoderKLCogVideoX), which encodes clips of videos: ")
    assert f"{folder} holds no videos" in error and error.count("\n") == 1


def test_an_image_autoencoder_given_videos_names_the_video_autoencoder(tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"")
    assert encode(DIFFUSERS_FOLDER, folder, tmp_path / "out") == 1
    error = capsys.readouterr().err
    assert error.startswith(f"tfvae encode: {folder} holds no images") and error.count("\n") == 1
    assert "It holds videos: encode them with a video autoencoder (AutoencoderKLCogVideoX)" in error


def test_video_flags_with_an_image_autoencoder_are_refused(tmp_path, image_folder, capsys):
    assert encode(DIFFUSERS_FOLDER, image_folder, tmp_path / "out", "--frames", "9") == 1
    assert capsys.readouterr().err == (
        "tfvae encode: --frames cut videos into clips for a video autoencoder (AutoencoderKLCogVideoX), but "
        f"{DIFFUSERS_FOLDER} holds an AutoencoderKL, which encodes images: leave them out.\n")


@pytest.mark.parametrize("frames", ["8", "0"])
def test_clip_lengths_other_than_one_plus_four_k_are_refused_in_one_line(tmp_path, gif_folder, capsys, frames):
    assert encode(VIDEO_DIFFUSERS_FOLDER, gif_folder, tmp_path / "out", "--frames", frames) == 1
    error = capsys.readouterr().err
    assert error.startswith("tfvae encode: frames must be 1 + 4k (1, 5, 9, 13, 17, ...)") and error.count("\n") == 1


@pytest.mark.parametrize("kind", ["videos", "images"])
def test_sizes_the_autoencoder_cannot_downsample_name_image_size(tmp_path, rng, capsys, kind):
    folder = tmp_path / kind
    folder.mkdir()
    pixels = rng.integers(0, 256, (5, 20, 20, 3), dtype=np.uint8)
    if kind == "videos":
        write_gif(folder / "a.gif", pixels)
        model, factor, options = VIDEO_DIFFUSERS_FOLDER, 8, ("--frames", "5")
    else:
        tf.io.write_file(str(folder / "a.png"), tf.io.encode_png(pixels[0, :18, :18]))
        model, factor, options = DIFFUSERS_FOLDER, 4, ()
    side = {"videos": 20, "images": 18}[kind]
    assert encode(model, folder, tmp_path / "out", *options) == 1
    fitting = side // factor * factor
    assert capsys.readouterr().err == (
        f"tfvae encode: {folder} gives {side}x{side} pixels, but {model} downsamples by {factor}: pass an "
        f"--image-size whose sides are divisible by {factor} (e.g. {fitting}x{fitting}).\n")
    assert not os.path.exists(tmp_path / "out"), "nothing is written"


def test_videos_without_pyav_name_the_extra(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    assert encode(VIDEO_DIFFUSERS_FOLDER, folder, tmp_path / "out") == 1
    error = capsys.readouterr().err
    assert error.endswith('which is not installed: pip install "tfvae[video]" (GIFs need nothing more).\n')
    assert error.count("\n") == 1
