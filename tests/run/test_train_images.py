"""`tfvae train` and `tfvae evaluate` on a folder of mixed images: PNG and JPEG, RGB and grayscale, several sizes."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_command
from PIL import Image

from tfvae import cli
from tfvae.cli import parser
from tfvae.run.config import make_config

TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")
FLAGS = ("--image-size", "32", "--model", "conv", "--latent-size", "2", "--epochs", "2", "--batch-size", "8",
         "--jit-compile", "off", "--quiet", "--validation-split", "0.25")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for index in range(24):
        height, width = 30 + index % 5 * 4, 34 + index % 3 * 6
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        image = Image.fromarray(pixels if index % 3 else pixels[..., 0])
        image.save(root / f"{index:02d}.{'png' if index % 2 else 'jpg'}")
    return root


def train(folder, run_dir, *flags):
    return subprocess.run([TFVAE, "train", "--dataset", str(folder), *FLAGS, "--output-dir", str(run_dir),
                           "--export-root", str(run_dir / "exports"), *flags],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    result = train(folder, run_dir, "--tensorboard", "--image-every", "1", "--channels", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result.stdout


def test_a_mixed_folder_trains_exports_and_shows_colour_pictures(trained):
    run_dir, stdout = trained
    assert "SavedModel:" in stdout and "validation ELBO" in stdout and "Skipped" not in stdout
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["elbo"]) == 2 and np.isfinite(history["val_elbo"]).all()
    assert glob.glob(str(run_dir / "exports" / "photos*" / "1" / "saved_model.pb"))
    summary = np.asarray(Image.open(run_dir / "summary.png").convert("RGB")).astype(int)
    pictures = summary[:, summary.shape[1] // 3 :]  # the learning curves (coloured lines) are in the left third
    assert (np.abs(pictures[..., 0] - pictures[..., 2]) > 60).sum() > 100, "the RGB inputs are shown in colour"
    shapes = []
    for path in glob.glob(str(run_dir / "tensorboard" / "images" / "events.*")):
        for event in map(tf.compat.v1.Event.FromString, tf.data.TFRecordDataset(path).as_numpy_iterator()):
            # A TF2 image summary is a tensor of strings: width, height, then the PNG.
            shapes += [tf.io.decode_png(tf.make_ndarray(value.tensor)[2]).shape for value in event.summary.value
                       if value.tag == "reconstructions"]
    assert shapes and all(shape[-1] == 3 for shape in shapes)


def test_evaluate_takes_the_same_data_flags(trained, folder, capsys):
    run_dir, _ = trained
    assert cli.main(["evaluate", str(run_dir / "model.keras"), "--dataset", str(folder), "--image-size", "32",
                     "--channels", "3", "--split", "validation", "--validation-split", "0.25", "--samples", "4",
                     "--quiet"]) == 0
    output = capsys.readouterr().out
    held_out = int(output.split(" examples")[0].split()[-1])
    assert 0 < held_out < 24 and "ELBO per example" in output


def test_a_corrupt_image_stops_the_run_with_its_name_and_skipping_gets_past_it(folder, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "05.png").write_bytes((folder / "05.png").read_bytes()[:200])
    stopped = train(broken, tmp_path / "stopped")
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr
    assert f"{broken / '05.png'} cannot be decoded" in stopped.stderr and "--skip-bad-images" in stopped.stderr
    skipped = train(broken, tmp_path / "skipped", "--skip-bad-images")
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert f"Skipped 1 bad image(s) that could not be decoded: {broken / '05.png'}." in skipped.stdout
    run_command([TFVAE, "export", str(tmp_path / "skipped" / "model.keras"), "--model-dir", str(tmp_path / "e")])


def test_the_data_flags_are_train_config_fields():
    args = parser.build_parser().parse_args(["train", "--image-size", "64x48", "--channels", "3", "--cache", "none",
                                             "--image-key", "jpeg", "--skip-bad-images"])
    assert (args.image_size, args.channels, args.cache, args.image_key, args.skip_bad_images) == (
        "64x48", 3, "none", "jpeg", True)
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        make_config(image_size="64x")
    with pytest.raises(ValueError, match=r"channels must be one of \(1, 3\), got 4"):
        make_config(channels=4)


def test_a_pattern_or_a_folder_with_spaces_names_the_model_with_what_a_model_name_can_hold():
    for dataset, name in [("shards/train-*.tfrecord", "train"), ("My Photos/", "My_Photos"), ("faces.npz", "faces"),
                          ("***", "images")]:
        config = make_config(dataset=dataset)
        assert (config.model_name, config.output_dir) == (name, os.path.join("runs", name)), dataset


def test_help_gives_each_default_once_and_none_for_options_without_one(capsys):
    texts = {}
    for command in ("train", "evaluate", "export"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        texts[command] = text = " ".join(capsys.readouterr().out.split())
        assert "(default: None)" not in text and "(default: False)" not in text, command
        assert not re.search(r"\(default: [^)]*\) \(default", text), command
    assert "(default: 100)" in texts["train"] and "(default: 5000)" in texts["evaluate"], "defaults still show"
    assert re.search(r"--seed SEED [^(]*\(default: 0\)", texts["train"]), "zero is a default to show"


def test_a_norm_num_groups_of_zero_is_named():
    with pytest.raises(ValueError, match="^norm_num_groups must be at least 1, got 0"):
        make_config(model="autoencoder_kl", norm_num_groups=0)
