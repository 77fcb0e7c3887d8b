"""`tfvae train --model autoencoder_kl` on a folder of PNG files: one real XLA run, its TensorBoard logs and export."""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import TENSORFLOW_ONLY_PREAMBLE, run_command, run_python
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tfvae import cli

TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")
TINY = ["--model", "autoencoder_kl", "--image-size", "16", "--block-out-channels", "8", "16", "--norm-num-groups",
        "4", "--layers-per-block", "1", "--latent-size", "2", "--discriminator-layers", "2"]
METRICS = ("loss", "reconstruction", "nll", "kl", "logvar", "generator_loss", "discriminator_loss")


def write_folder(folder, count, size, rng):
    folder.mkdir()
    for index in range(count):
        Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)).save(folder / f"{index:02d}.png")
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("autoencoder_kl")
    folder = write_folder(root / "faces", 24, 20, np.random.default_rng(0))  # resized to 16x16 by --image-size
    stdout = run_command([TFVAE, "train", "--dataset", str(folder), *TINY, "--discriminator-start", "1",
                          "--epochs", "2", "--batch-size", "8", "--learning-rate", "1e-3", "--validation-split",
                          "0.25", "--tensorboard", "--image-every", "1", "--jit-compile", "on", "--quiet",
                          "--output-dir", str(root / "run"), "--export-root", str(root / "exports")], timeout=1800)
    return stdout, root


def test_the_run_directory_keeps_the_autoencoder_and_every_loss(run):
    stdout, root = run
    assert "final validation reconstruction error per pixel" in stdout and "SavedModel:" in stdout
    assert json.loads((root / "run" / "config.json").read_text())["block_out_channels"] == [8, 16]
    assert not (root / "run" / "backup").exists(), "a finished run leaves no backup to resume from"
    summary = Image.open(root / "run" / "summary.png")
    assert summary.size == (1000, 450), "two panels: learning curves, inputs above their reconstructions"
    history = json.loads((root / "run" / "history.json").read_text())
    for name in (*METRICS, "adaptive_weight", *(f"val_{name}" for name in METRICS)):
        assert len(history[name]) == 2 and np.isfinite(history[name]).all(), name
    assert history["discriminator_loss"][-1] != pytest.approx(1.0), "the discriminator trained after its start"
    output = run_python(f"""
import keras, numpy as np, tfvae
model = keras.models.load_model({str(root / 'run' / 'model.keras')!r}, safe_mode=True)
trainer = keras.models.load_model({str(root / 'run' / 'best.keras')!r}, safe_mode=True)
print(type(model).__name__, model.block_out_channels, type(trainer.discriminator).__name__)
""")
    assert output.strip().endswith("AutoencoderKL (8, 16) PatchDiscriminator")
    assert cli.main(["export", str(root / "run" / "best.keras"), "--model-dir", str(root / "exports" / "best")]) == 0
    assert (root / "exports" / "best" / "1" / "saved_model.pb").exists(), "the checkpoint's autoencoder exports"


def test_tensorboard_has_the_losses_and_reconstructions(run):
    _, root = run
    logs = root / "run" / "tensorboard"
    tags = {}
    for name in ("train", "validation", "images"):
        accumulator = EventAccumulator(str(logs / name), size_guidance={"tensors": 0})
        accumulator.Reload()
        tags[name] = accumulator
    for name in METRICS:
        assert [event.step for event in tags["train"].Tensors(f"epoch_{name}")] == [0, 1], name
        assert [event.step for event in tags["validation"].Tensors(f"epoch_{name}")] == [0, 1], name
    assert "epoch_adaptive_weight" in tags["train"].Tags()["tensors"]
    images = tags["images"].Tensors("reconstructions")
    assert [event.step for event in images] == [0, 1]
    width, height, png = tf.make_ndarray(images[-1].tensor_proto)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int(height) == 2 * 16 and int(width) % 16 == 0, "validation images above their reconstructions"


def test_the_export_encodes_and_decodes_in_a_tensorflow_only_process(run):
    _, root = run
    output = run_python(TENSORFLOW_ONLY_PREAMBLE + f"""
import numpy as np
model = tf.saved_model.load({str(root / 'exports' / 'faces' / '1')!r})
x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (2, 32, 24, 3)).astype("float32"))
latents = model.signatures["encode"](x=x)["latents"]
print(latents.shape, model.signatures["decode"](latents=latents)["images"].shape)
""")
    assert output.strip().endswith("(2, 16, 12, 2) (2, 32, 24, 3)")


def test_images_the_model_cannot_take_fail_with_the_fix(tmp_path, capsys, rng):
    folder = write_folder(tmp_path / "odd", 4, 15, rng)
    flags = ["train", "--dataset", str(folder), "--validation-split", "0", "--output-dir", str(tmp_path / "run"), *TINY]
    assert cli.main([*flags, "--image-size", "15"]) == 1
    assert "divisible by 2" in capsys.readouterr().err
    assert cli.main([*flags, "--discriminator-layers", "3"]) == 1
    assert "--discriminator-layers 3 needs images of at least 32 pixels" in capsys.readouterr().err
    assert cli.main([*flags, "--norm-num-groups", "3"]) == 1
    assert "divisible by norm_num_groups" in capsys.readouterr().err
