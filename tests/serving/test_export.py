import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import TENSORFLOW_ONLY_PREAMBLE, call_every_signature, run_command, run_python

from tfvae import VAE, networks
from tfvae.serving import export

DATA_SIZE, LATENT_SIZE = 12, 3


def make_vae(likelihood):
    keras.utils.set_random_seed(3)
    encoder = networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, 16)
    make_decoder = networks.bernoulli_mlp_decoder if likelihood == "bernoulli" else networks.gaussian_mlp_decoder
    model = VAE(encoder, make_decoder(LATENT_SIZE, DATA_SIZE, 16), likelihood=likelihood, seed=11)
    model.compile(keras.optimizers.Adam(1e-2))
    data = (np.random.default_rng(0).random((128, DATA_SIZE)) < 0.4).astype(np.float32)
    model.fit(data, epochs=1, batch_size=32, verbose=0)
    return model


def keras_results(model, seed_state, x, z):
    """The same calls as CALL_EVERY_SIGNATURE, through the Keras model, from the exported seed state."""
    model.seed_generator.state.assign(seed_state)
    results = {"serving_default/reconstruction": model.reconstruct(x)}
    posterior = model.encode(x)
    results.update({"encode/mean": posterior.mean(), "encode/logvar": posterior.logvar,
                    "encode/z": posterior.sample(seed=model.next_seed())})
    for key, value in model.likelihood.named_parameters(model.decode(z)).items():
        results[f"decode/{key}"] = value
    noise = keras.random.normal((5, LATENT_SIZE), seed=model.seed_generator)
    results.update({"sample/z": noise, "sample/sample": model.likelihood.mean(model.decode(noise))})
    results.update({"sample_from_noise/z": z, "sample_from_noise/sample": model.likelihood.mean(model.decode(z))})
    reconstruction, posterior, _ = model.elbo_terms(x)
    kl = posterior.kl()
    results.update({"elbo/elbo": -(reconstruction + kl), "elbo/kl": kl, "elbo/reconstruction": reconstruction})
    return {key: np.asarray(value) for key, value in results.items()}


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_every_signature_answers_in_a_tensorflow_only_process_like_keras(tmp_path, likelihood):
    model = make_vae(likelihood)
    seed_state = model.seed_generator.state.numpy()
    path = export.export_saved_model(model, str(tmp_path / "vae"))
    rng = np.random.default_rng(5)
    x = (rng.random((7, DATA_SIZE)) < 0.4).astype(np.float32)
    z = rng.normal(size=(7, LATENT_SIZE)).astype(np.float32)
    served, specs = call_every_signature(path, x, z, tmp_path)
    expected = keras_results(model, seed_state, x, z)
    assert sorted(served) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(served[key], expected[key], rtol=1e-5, atol=1e-5, err_msg=key)
    assert served["sample/z"].shape == (5, LATENT_SIZE)

    assert list(specs) == list(export.SIGNATURE_NAMES)
    assert specs["serving_default"]["inputs"] == {"x": [[None, DATA_SIZE], "float32"]}
    assert specs["decode"]["inputs"] == {"z": [[None, LATENT_SIZE], "float32"]}
    assert specs["sample"]["inputs"] == {"num_samples": [[], "int32"]}
    decoded = {"probs"} if likelihood == "bernoulli" else {"mean", "logvar"}
    assert set(specs["decode"]["outputs"]) == decoded
    assert specs["elbo"]["outputs"]["elbo"] == [[None], "float32"]
    for spec in specs.values():
        for shape, dtype in [*spec["inputs"].values(), *spec["outputs"].values()]:
            assert dtype in ("float32", "int32") and (shape == [] or shape[0] is None)


def test_export_traces_the_signatures_and_not_the_models_call(tmp_path, monkeypatch):
    # Keras' `ExportArchive.track(model)` also traces `call` as a default signature that no endpoint uses (a third of
    # a video autoencoder's export); the SavedModel still lists every variable of the model, as `track` does.
    model = make_vae("bernoulli")
    traced, call = [], type(model).call
    monkeypatch.setattr(type(model), "call", lambda self, *args, **kwargs: traced.append(1) or call(self, *args,
                                                                                                    **kwargs))
    loaded = tf.saved_model.load(export.export_saved_model(model, str(tmp_path / "vae")))
    assert not traced
    for collection in ("variables", "trainable_variables", "non_trainable_variables"):
        saved, kept = getattr(loaded, collection), getattr(model, collection)
        assert len(saved) == len(kept), collection
        for saved_variable, variable in zip(saved, kept, strict=True):
            np.testing.assert_array_equal(saved_variable.numpy(), variable.numpy())


def test_saved_model_cli_lists_every_signature(tmp_path):
    path = export.export_saved_model(make_vae("bernoulli"), str(tmp_path / "vae"))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    listing = run_command([cli, "show", "--dir", path, "--all"])
    for name in export.SIGNATURE_NAMES:
        assert f"signature_def['{name}']" in listing
    assert "inputs['x'] tensor_info" in listing and "outputs['reconstruction'] tensor_info" in listing


def test_versions_count_up_are_never_overwritten_and_can_be_pruned(tmp_path):
    model, model_dir = make_vae("bernoulli"), str(tmp_path / "vae")
    assert export.export_saved_model(model, model_dir).endswith(os.path.join("vae", "1"))
    assert export.export_saved_model(model, model_dir).endswith(os.path.join("vae", "2"))
    marker = os.path.join(model_dir, "2", "saved_model.pb")
    before = os.path.getmtime(marker)
    with pytest.raises(FileExistsError, match="never overwritten"):
        export.export_saved_model(model, model_dir, version=2)
    assert os.path.getmtime(marker) == before
    export.export_saved_model(model, model_dir, version=10, keep=2)
    assert export.list_versions(model_dir) == [2, 10]
    assert sorted(os.listdir(model_dir)) == ["10", "2"], "no staging folder may stay behind"
    with pytest.raises(ValueError, match="positive"):
        export.export_saved_model(model, model_dir, version=0)


def test_a_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    model, model_dir = make_vae("bernoulli"), str(tmp_path / "vae")
    export.export_saved_model(model, model_dir)

    def fail_midway(obj, path, **kwargs):
        os.makedirs(os.path.join(path, "variables"))
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        export.export_saved_model(model, model_dir)
    assert sorted(os.listdir(model_dir)) == ["1"]


# Exports version 2 with a rename that waits, so that the parent's SIGKILL lands while the export is under way.
EXPORT_THEN_WAIT = """
import os, sys, time
import keras
import tfvae
from tfvae.serving import export
model = keras.models.load_model(sys.argv[1], safe_mode=True)
rename = os.rename
def slow_rename(source, target):
    print("written, renaming", flush=True)
    time.sleep(60)
    rename(source, target)
os.rename = slow_rename
export.export_saved_model(model, sys.argv[2])
"""


def test_killing_an_export_midway_keeps_old_versions_and_shows_no_partial_version(tmp_path):
    model, model_dir = make_vae("gaussian"), str(tmp_path / "vae")
    export.export_saved_model(model, model_dir)
    model.save(tmp_path / "vae.keras")
    reference = tf.saved_model.load(os.path.join(model_dir, "1")).signatures["decode"](z=tf.ones((2, LATENT_SIZE)))
    process = subprocess.Popen(
        [sys.executable, "-c", EXPORT_THEN_WAIT, str(tmp_path / "vae.keras"), model_dir],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    try:
        assert process.stdout.readline().strip() == "written, renaming"
        staging = [entry for entry in os.listdir(model_dir) if entry != "1"]
        assert len(staging) == 1 and staging[0].startswith(".staging-2-")
        assert os.path.exists(os.path.join(model_dir, staging[0], "saved_model.pb"))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert export.list_versions(model_dir) == [1]
    again = tf.saved_model.load(os.path.join(model_dir, "1")).signatures["decode"](z=tf.ones((2, LATENT_SIZE)))
    for key in reference:
        np.testing.assert_array_equal(again[key], reference[key])
    # The next export clears the dead process's staging folder and takes version 2.
    assert export.export_saved_model(model, model_dir).endswith(os.path.join("vae", "2"))
    assert sorted(os.listdir(model_dir)) == ["1", "2"]


def test_export_command_reads_a_keras_file(tmp_path):
    model = make_vae("bernoulli")
    model.save(tmp_path / "vae.keras")
    export.export_saved_model(model, str(tmp_path / "served"))
    tfvae = os.path.join(os.path.dirname(sys.executable), "tfvae")
    stdout = run_command([tfvae, "export", str(tmp_path / "vae.keras"), "--model-dir", str(tmp_path / "served"),
                          "--version", "7", "--keep", "1"])
    assert stdout.strip().endswith(os.path.join("served", "7"))
    assert export.list_versions(str(tmp_path / "served")) == [7]
    run_python(TENSORFLOW_ONLY_PREAMBLE + f"tf.saved_model.load({str(tmp_path / 'served' / '7')!r})")


def test_the_documented_signature_table_matches_the_export():
    documented = [line.split("|")[1].strip(" `") for line in export.__doc__.splitlines() if line.startswith("| `")]
    assert tuple(documented) == export.SIGNATURE_NAMES


def test_a_version_with_other_signatures_is_refused_unless_asked_for(tmp_path):
    model_dir = str(tmp_path / "vae")
    export.export_saved_model(make_vae("bernoulli"), model_dir)
    assert export.read_signatures(os.path.join(model_dir, "1"))["decode"] == {
        "inputs": {"z": ("float32", (-1, LATENT_SIZE))}, "outputs": {"probs": ("float32", (-1, DATA_SIZE))}}
    gaussian = make_vae("gaussian")
    with pytest.raises(export.SignatureChangeError,
                       match=r"version 1 \(decode output logvar: none -> float32 \[\?, 12\]; decode output mean: none "
                             r"-> float32 \[\?, 12\]; decode output probs: float32 \[\?, 12\] -> none\).*"
                             r"--model-name.*--allow-signature-change"):
        export.export_saved_model(gaussian, model_dir)
    assert sorted(os.listdir(model_dir)) == ["1"], "nothing written, no staging folder left"
    assert export.export_saved_model(gaussian, model_dir, allow_signature_change=True).endswith("2")
    assert export.export_saved_model(gaussian, model_dir).endswith("3"), "the newest version is the reference"
