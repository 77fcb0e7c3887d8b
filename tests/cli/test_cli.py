import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import SHARED_DATA, TENSORFLOW_ONLY_PREAMBLE, run_command, run_python

from tfvae import cli
from tfvae.cli import parser
from tfvae.run import config

TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")
SHARED_MNIST = os.path.join(SHARED_DATA, "mnist")


def train(tmp_path, *flags):
    """Runs `tfvae train` into tmp_path/run and returns (stdout, run directory)."""
    run_dir = tmp_path / "run"
    stdout = run_command([TFVAE, "train", "--quiet", "--jit-compile", "off", "--output-dir", str(run_dir),
                          "--export-root", str(tmp_path / "saved_models"), "--data-dir", str(tmp_path / "tfds"),
                          *flags])
    return stdout, run_dir


def test_help_lists_the_commands_and_flags():
    main_help = run_command([TFVAE, "--help"])
    assert "train" in main_help and "export" in main_help
    train_help = run_command([TFVAE, "train", "--help"])
    for flag in ("--dataset", "--model", "--likelihood", "--latent-size", "--epochs", "--batch-size",
                 "--learning-rate", "--seed", "--beta", "--kl-warmup-steps", "--free-bits", "--validation-split",
                 "--early-stopping-patience", "--tensorboard", "--config", "--output-dir", "--binarize"):
        assert flag in train_help


def test_default_train_runs_offline_and_exports_a_loadable_saved_model(tmp_path):
    stdout, run_dir = train(tmp_path, "--epochs", "1", "--latent-size", "2", "--model-name", "faces")
    assert "SavedModel:" in stdout and "validation ELBO" in stdout
    for name in ("config.json", "history.csv", "history.json", "model.keras", "best.keras", "summary.png"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "backup").exists(), "a finished run leaves no backup to resume from"
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["elbo"]) == len(history["val_elbo"]) == len(history["epoch_seconds"]) == 1
    assert (run_dir / "summary.png").read_bytes()[:4] == b"\x89PNG"
    version_dir = tmp_path / "saved_models" / "faces" / "1"
    assert 'name: "faces"' in (tmp_path / "saved_models" / "models.config").read_text(), "TF Serving's files too"
    assert (version_dir / "assets.extra" / "tf_serving_warmup_requests").exists()
    output = run_python(TENSORFLOW_ONLY_PREAMBLE + f"""
import numpy as np
x = np.random.default_rng(0).random((3, 560)).astype("float32")
print(tf.saved_model.load({str(version_dir)!r}).signatures["serving_default"](x=tf.constant(x))["reconstruction"].shape)
""")
    assert output.strip().endswith("(3, 560)")


def test_a_config_file_repeats_a_run(tmp_path):
    train(tmp_path / "first", "--epochs", "1", "--latent-size", "3", "--beta", "0.5", "--seed", "4")
    config = tmp_path / "first" / "run" / "config.json"
    assert json.loads(config.read_text())["beta"] == 0.5
    train(tmp_path / "second", "--config", str(config))
    first, second = (json.loads((tmp_path / run / "run" / "history.json").read_text()) for run in ("first", "second"))
    np.testing.assert_allclose(second["val_elbo"], first["val_elbo"], rtol=1e-5)
    argv = ["train", "--config", str(config), "--epochs", "1"]
    settings = parser.train_settings(parser.build_parser(argv).parse_args(argv))
    assert settings["epochs"] == 1 and settings["latent_size"] == 3, "flags given with --config win over the file"


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason="../shared/data/mnist is absent")
def test_mnist_idx_folder_trains_offline_with_dynamic_binarization(tmp_path):
    stdout, run_dir = train(tmp_path, "--dataset", SHARED_MNIST, "--binarize", "--epochs", "1", "--batch-size",
                            "500", "--latent-size", "5", "--hidden-units", "100", "--model-name", "mnist")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["likelihood"] == "bernoulli" and config["binarize"] is True
    history = json.loads((run_dir / "history.json").read_text())
    assert -300 < history["val_elbo"][0] < -100, history
    assert (tmp_path / "saved_models" / "mnist" / "1" / "saved_model.pb").exists()

    # Three active units by construction: the posterior means of units 3 and 4 no longer depend on x, and those of
    # units 0 to 2 get an input-dependent part well above the threshold (variance 0.01 over the data).
    model = keras.models.load_model(run_dir / "model.keras", safe_mode=True)
    mean_dense = model.encoder.get_layer("gaussian_head").mean_dense
    kernel = mean_dense.kernel.numpy()
    kernel[:, :3] += np.random.default_rng(0).normal(0, 0.1, size=(100, 3))
    kernel[:, 3:] = 0
    mean_dense.kernel.assign(kernel)
    model.save(tmp_path / "three_active.keras")
    evaluated = run_command([TFVAE, "evaluate", str(tmp_path / "three_active.keras"), "--dataset", SHARED_MNIST,
                             "--binarize", "--samples", "200", "--limit", "300"])
    lines = dict(line.split(": ", 1) for line in evaluated.splitlines() if ": " in line and "/300" not in line)
    assert "300/300" in evaluated, "a progress bar over the examples"
    elbo, kl = (float(value) for value in re.fullmatch(r"(\S+) \(KL (\S+)\)", lines["ELBO per example"]).groups())
    kl_per_channel = [float(value) for value in lines["KL per latent channel"].split()]
    assert len(kl_per_channel) == 5 and sum(kl_per_channel) == pytest.approx(kl, abs=0.01)
    assert int(lines["active units"]) == 3
    estimate, error = (float(value) for value in re.fullmatch(
        r"(\S+) \+- (\S+) \(standard error\)", lines["log-likelihood (importance-weighted, K=200)"]).groups())
    assert elbo < estimate < 0 and 0 < error < 1


def test_convolutional_model_with_spatial_latents(tmp_path, rng):
    images = (rng.random((96, 12, 16)) < 0.3).astype(np.uint8) * 255
    np.save(tmp_path / "images.npy", images)
    _, run_dir = train(tmp_path, "--dataset", str(tmp_path / "images.npy"), "--model", "conv", "--latent-size", "2",
                       "--epochs", "2", "--batch-size", "32", "--validation-split", "0.25")
    history = json.loads((run_dir / "history.json").read_text())
    # One validation batch: its loss is the negative ELBO. Binary pixels have probabilities, so log p(x|z) < 0.
    np.testing.assert_allclose(history["val_loss"], -np.array(history["val_elbo"]), rtol=1e-5)
    assert max(history["elbo"] + history["val_elbo"]) < 0 and min(history["kl"]) > 0
    output = run_python(f"""
import keras, tfvae
model = keras.models.load_model({str(run_dir / 'model.keras')!r}, safe_mode=True)
print(model.latent_shape())
""")
    assert output.strip().endswith("(3, 4, 2)")



def test_a_flag_of_another_model_family_is_refused_in_one_line(capsys):
    assert cli.main(["train", "--model", "autoencoder_kl", "--beta", "2", "--epochs", "1"]) == 1
    assert capsys.readouterr().err == (
        "tfvae train: beta is a setting of --model mlp and conv, not of --model autoencoder_kl.\n")
    assert cli.main(["train", "--block-out-channels", "8", "16"]) == 1
    assert "block_out_channels is a setting of --model autoencoder_kl, not of --model mlp." in capsys.readouterr().err


def test_every_config_field_has_a_train_flag_with_its_help_and_family(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in config.all_fields():
        if field.name != "verbose":
            assert "--" + field.name.replace("_", "-") in text, field.name
    assert "--beta BETA [mlp/conv] weight of the KL term (beta-VAE) (default: 1.0)" in text
    assert "--kl-weight KL_WEIGHT [autoencoder_kl] weight of the KL term" in text


def test_help_and_version_answer_without_importing_tensorflow():
    code = ("import sys, tfvae_command\n"
            "for argv in (['--version'], ['train', '--help'], ['evaluate', '--help']):\n"
            "    try:\n        tfvae_command.main(argv)\n    except SystemExit:\n        pass\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    assert run_python(code).splitlines()[-1] == "False False"


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """As `tfvae evaluate ... | head -1`: the command writes after its reader has gone."""
    code = ("import sys\nfrom tfvae import cli\nfrom tfvae.cli import commands\n"
            "commands.run = lambda args: print('a line of output\\n' * 10000) or 0\n"
            "sys.exit(cli.main(['export', 'model.keras', '--model-dir', 'exports']))")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-c", code], stdout=write_end, stderr=subprocess.PIPE, text=True,
                                timeout=300)
    finally:
        os.close(write_end)
    assert result.returncode == 141 and "Traceback" not in result.stderr and "Error" not in result.stderr


def test_the_parser_repeats_constants_of_modules_it_does_not_import_as_they_are():
    from tfvae.autoencoder_kl.objective import RECONSTRUCTION_LOSSES
    from tfvae.data import CACHE_IN_MEMORY_BYTES
    from tfvae.serving.export import WARMUP_IMAGE_SIZE

    assert parser.WARMUP_IMAGE_SIZE == WARMUP_IMAGE_SIZE
    assert config.RECONSTRUCTION_LOSSES == RECONSTRUCTION_LOSSES
    cache_help = config.RunConfig.__dataclass_fields__["cache"].metadata["help"]
    assert f"at most {CACHE_IN_MEMORY_BYTES // 2**20} MiB" in cache_help
