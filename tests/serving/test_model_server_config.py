import os

import pytest
from serving_protos import read_model_server_config, tiny_vae

from tfvae import cli
from tfvae.serving import ServingConfigError, export, model_server


def configs_by_name(export_root):
    config = read_model_server_config(os.path.join(export_root, model_server.MODEL_CONFIG_FILE))
    return {entry.name: entry for entry in config.model_config_list.config}


@pytest.mark.parametrize("text, present, served", [
    ("latest:2", [1, 2, 5], [2, 5]),
    ("latest:9", [1, 2], [1, 2]),
    ("all", [1, 3], [1, 3]),
    ("specific:3,1", [1, 2, 3], [1, 3]),
    ("specific:4", [1, 2], []),
])
def test_served_versions_follow_tf_servings_policies(text, present, served):
    assert model_server.served_versions(text, present) == served


@pytest.mark.parametrize("text", ["latest", "latest:0", "latest:1,2", "all:1", "specific:", "specific:a", "newest:1"])
def test_a_malformed_policy_names_the_accepted_forms(text):
    with pytest.raises(ValueError, match="latest:N, all or specific:V1,V2"):
        model_server.parse_versions(text)


def test_every_export_rewrites_the_config_of_every_model_in_the_export_root(tmp_path):
    root = tmp_path / "saved_models"
    vae = tiny_vae()
    export.export_saved_model(vae, str(root / "frey_face"))
    export.export_saved_model(vae, str(root / "frey_face"), serve_versions="latest:2", labels={"stable": 1})
    export.export_saved_model(vae, str(root / "autoencoder"))
    export.export_saved_model(vae, str(root / "frey_face"), serve_versions="specific:1,3", labels={"canary": 3})

    configs = configs_by_name(root)
    assert list(configs) == ["autoencoder", "frey_face"]
    frey_face = configs["frey_face"]
    assert frey_face.base_path == str(root / "frey_face") and os.path.isabs(frey_face.base_path)
    assert frey_face.model_platform == "tensorflow"
    assert frey_face.model_version_policy.WhichOneof("policy_choice") == "specific"
    assert list(frey_face.model_version_policy.specific.versions) == [1, 3]
    assert dict(frey_face.version_labels) == {"stable": 1, "canary": 3}
    assert configs["autoencoder"].model_version_policy.latest.num_versions == 1
    assert not configs["autoencoder"].version_labels
    assert sorted(os.listdir(root)) == ["autoencoder", "batching_parameters.pbtxt", "frey_face", "models.config"]


def test_a_label_on_a_version_that_is_not_served_is_refused_before_anything_is_written(tmp_path):
    model_dir = str(tmp_path / "vae")
    export.export_saved_model(tiny_vae(), model_dir, labels={"stable": 1})
    before = open(tmp_path / "models.config").read()
    with pytest.raises(ServingConfigError, match=r"label stable names version 1, which versions latest:1 do not serve "
                                                 r"\(served: \[2\]\).*--serve-versions"):
        export.export_saved_model(tiny_vae(), model_dir)
    with pytest.raises(ServingConfigError, match="serve none of the versions present"):
        export.export_saved_model(tiny_vae(), model_dir, serve_versions="specific:7")
    assert export.list_versions(model_dir) == [1] and sorted(os.listdir(model_dir)) == ["1", "serving.json"]
    assert open(tmp_path / "models.config").read() == before
    export.export_saved_model(tiny_vae(), model_dir, serve_versions="latest:2")
    assert dict(configs_by_name(tmp_path)["vae"].version_labels) == {"stable": 1}


def test_export_command_sets_versions_and_labels_and_serving_config_regenerates_the_file(tmp_path, capsys):
    model = tiny_vae()
    model.save(tmp_path / "vae.keras")
    root = tmp_path / "served"
    export.export_saved_model(model, str(root / "vae"))
    assert cli.main(["export", str(tmp_path / "vae.keras"), "--model-dir", str(root / "vae"), "--serve-versions",
                          "all", "--label", "stable=1", "--label", "canary=2"]) == 0
    config = configs_by_name(root)["vae"]
    assert config.model_version_policy.WhichOneof("policy_choice") == "all"
    assert dict(config.version_labels) == {"stable": 1, "canary": 2}

    os.remove(root / "models.config")
    os.rename(root / "vae", root / "renamed")
    capsys.readouterr()
    assert cli.main(["serving-config", str(root)]) == 0
    assert capsys.readouterr().out.strip() == f"model config: {root / 'models.config'}"
    assert list(configs_by_name(root)) == ["renamed"]
    assert dict(configs_by_name(root)["renamed"].version_labels) == {"stable": 1, "canary": 2}


def test_export_command_reports_a_refused_label_in_one_line(tmp_path, capsys):
    model = tiny_vae()
    model.save(tmp_path / "vae.keras")
    argv = ["export", str(tmp_path / "vae.keras"), "--model-dir", str(tmp_path / "vae"), "--label", "stable=2"]
    assert cli.main(argv) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("tfvae export: ") and "label stable names version 2" in line
    assert not os.path.exists(tmp_path / "vae"), "nothing written"
    assert cli.main([*argv[:-1], "a b=1"]) == 1
    assert "got 'a b'" in capsys.readouterr().err
    assert cli.main(["serving-config", str(tmp_path / "missing")]) == 1
    assert "is not a folder" in capsys.readouterr().err
