"""`tfvae encode`: the posterior moments of a folder of images, as TFRecord shards, resumable and checked."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfvae import AutoencoderKL, cli
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
    assert "holds a VAE, not a tfvae.AutoencoderKL or tfvae.AutoencoderKLTrainer" in capsys.readouterr().err
