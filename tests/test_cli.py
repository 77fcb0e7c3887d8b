import json
import os
import sys

from helpers import TENSORFLOW_ONLY_PREAMBLE, run_command, run_python

TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")


def test_help_lists_the_commands_and_flags():
    assert "train" in run_command([TFVAE, "--help"]) and "export" in run_command([TFVAE, "--help"])
    train_help = run_command([TFVAE, "train", "--help"])
    for flag in ("--latent-size", "--epochs", "--batch-size", "--learning-rate", "--seed", "--output-dir"):
        assert flag in train_help


def test_train_runs_offline_and_exports_a_loadable_saved_model(tmp_path):
    output_dir, export_root = tmp_path / "run", tmp_path / "saved_models"
    stdout = run_command(
        [TFVAE, "train", "--epochs", "1", "--latent-size", "2", "--output-dir", str(output_dir),
         "--export-root", str(export_root), "--model-name", "faces"]
    )
    assert "SavedModel:" in stdout
    history = json.loads((output_dir / "history.json").read_text())
    assert len(history["elbo"]) == 1 and len(history["epoch_seconds"]) == 1
    assert json.loads((output_dir / "config.json").read_text())["latent_size"] == 2
    assert (output_dir / "model.keras").exists()
    version_dir = export_root / "faces" / "1"
    assert (version_dir / "saved_model.pb").exists()
    result = run_python(
        TENSORFLOW_ONLY_PREAMBLE
        + f"""
import numpy as np
x = np.random.default_rng(0).random((3, 560)).astype("float32")
reconstruction = tf.saved_model.load({str(version_dir)!r}).signatures["serving_default"](x=tf.constant(x))
print(reconstruction["reconstruction"].shape)
"""
    )
    assert result.strip().endswith("(3, 560)")


def test_export_command_writes_the_next_version(tmp_path):
    output_dir, export_root = tmp_path / "run", tmp_path / "saved_models"
    run_command([TFVAE, "train", "--epochs", "1", "--quiet", "--output-dir", str(output_dir),
                 "--export-root", str(export_root)])
    stdout = run_command([TFVAE, "export", str(output_dir / "model.keras"),
                          "--model-dir", str(export_root / "frey_face"), "--keep", "1"])
    assert stdout.strip().endswith(os.path.join("frey_face", "2"))
    assert sorted(os.listdir(export_root / "frey_face")) == ["2"]
