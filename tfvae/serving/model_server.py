"""TF Serving's model config file: which models a server loads from an export root, which versions, with which labels.

`<export_root>/models.config` is a text-format `tensorflow.serving.ModelServerConfig` with one `config` entry per
model folder that holds at least one version, for `tensorflow_model_server --model_config_file=...`:

    model_config_list {
      config {
        name: "frey_face"
        base_path: "/srv/saved_models/frey_face"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 3 versions: 4 } }
        version_labels { key: "canary" value: 4 }
        version_labels { key: "stable" value: 3 }
      }
    }

It is generated from the folder, never edited by hand: each model's choices live in `<model>/serving.json`
(`{"versions": "latest:1", "labels": {"stable": 3}}`), a file TF Serving ignores, as it ignores every entry of a model
folder whose name is not an integer. `base_path` is absolute: mount the export root at the same path in a container.

Versions served (`ModelVersionPolicy`), written `latest:N` (the newest N, TF Serving's default with N = 1), `all`, or
`specific:V1,V2,...`. A label names one served version: TF Serving refuses a label on a version it has not loaded.
"""

import json
import os
import re

from google.protobuf import text_encoding

from tfvae.files.atomic import save_atomically

MODEL_CONFIG_FILE = "models.config"
SETTINGS_FILE = "serving.json"
DEFAULT_VERSIONS = "latest:1"
_LABEL = re.compile(r"[A-Za-z0-9_-]+")


class ServingConfigError(ValueError):
    """Settings of a model that TF Serving would refuse, or that serve none of its versions."""


def list_versions(model_dir):
    """The integer versions present under `model_dir`, oldest first."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(entry) for entry in os.listdir(model_dir) if re.fullmatch(r"[1-9][0-9]*", entry))


def parse_versions(text):
    """`("latest", N)`, `("all", None)` or `("specific", (V1, V2, ...))` from `latest:N`, `all` or `specific:V1,V2`.

    Raises:
        ValueError: naming the accepted forms.
    """
    kind, _, values = text.partition(":")
    numbers = values.split(",") if values else []
    if not all(number.isdigit() and int(number) > 0 for number in numbers):
        numbers = None
    if kind == "all" and not values:
        return "all", None
    if kind == "latest" and numbers and len(numbers) == 1:
        return "latest", int(numbers[0])
    if kind == "specific" and numbers:
        return "specific", tuple(sorted({int(number) for number in numbers}))
    raise ValueError(f"versions to serve must be latest:N, all or specific:V1,V2,... with positive integers, got "
                     f"{text!r}.")


def served_versions(versions, present):
    """The versions among `present` (sorted integers) that TF Serving loads under the policy `versions`."""
    kind, value = parse_versions(versions)
    if kind == "latest":
        return present[-value:]
    if kind == "specific":
        return [version for version in present if version in value]
    return list(present)


def read_settings(model_dir):
    """`{"versions": policy text, "labels": {label: version}}` of the model at `model_dir` (defaults if unset)."""
    path = os.path.join(model_dir, SETTINGS_FILE)
    settings = {"versions": DEFAULT_VERSIONS, "labels": {}}
    if os.path.exists(path):
        with open(path) as file:
            settings.update(json.load(file))
    return settings


def updated_settings(model_dir, versions=None, labels=None):
    """The model's settings with `versions` (policy text) replaced and `labels` (`{label: version}`) added or moved."""
    settings = read_settings(model_dir)
    if versions is not None:
        parse_versions(versions)
        settings["versions"] = versions
    labels = labels or {}
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ServingConfigError(f"A version label is letters, digits, '-' and '_' (it goes into the REST URL "
                                     f"/v1/models/NAME/labels/LABEL), got {label!r}.")
    settings["labels"] = {**settings["labels"], **{label: int(version) for label, version in labels.items()}}
    return settings


def check_settings(settings, present, model_dir):
    """Raises ServingConfigError, naming the fix, unless the policy serves some of `present` (sorted integers) and
    every label names a served version."""
    served = served_versions(settings["versions"], present)
    if not served:
        raise ServingConfigError(f"{model_dir}: versions {settings['versions']} serve none of the versions present "
                                 f"{present}; choose others with --serve-versions.")
    unserved = {label: version for label, version in settings["labels"].items() if version not in served}
    if unserved:
        label, version = next(iter(unserved.items()))
        raise ServingConfigError(
            f"{model_dir}: label {label} names version {version}, which versions {settings['versions']} do not "
            f"serve (served: {served}); TF Serving refuses such a label. Serve it (--serve-versions) or move the "
            f"label (--label {label}=VERSION)."
        )


def save_settings(model_dir, settings):
    def write(path):
        with open(path, "w") as file:
            json.dump(settings, file, indent=2, sort_keys=True)

    save_atomically(write, os.path.join(model_dir, SETTINGS_FILE))


def write_model_server_config(export_root):
    """Writes `<export_root>/models.config` for every model folder there with a version; returns its path.

    Raises:
        ServingConfigError: when a model's settings do not fit the versions present (see `check_settings`).
    """
    entries = []
    for name in sorted(os.listdir(export_root)):
        model_dir = os.path.join(export_root, name)
        present = list_versions(model_dir)
        if present:
            settings = read_settings(model_dir)
            check_settings(settings, present, model_dir)
            entries.append(_model_config(name, os.path.abspath(model_dir), settings))
    text = "model_config_list {\n" + "".join(entries) + "}\n"
    path = os.path.join(export_root, MODEL_CONFIG_FILE)
    save_atomically(lambda partial: _write_text(partial, text), path)
    return path


def _model_config(name, base_path, settings):
    kind, value = parse_versions(settings["versions"])
    if kind == "latest":
        policy = f"latest {{ num_versions: {value} }}"
    elif kind == "specific":
        policy = "specific { " + " ".join(f"versions: {version}" for version in value) + " }"
    else:
        policy = "all {}"
    labels = "".join(f'    version_labels {{ key: "{label}" value: {version} }}\n'
                     for label, version in sorted(settings["labels"].items()))
    return ("  config {\n"
            f'    name: "{_quoted(name)}"\n'
            f'    base_path: "{_quoted(base_path)}"\n'
            '    model_platform: "tensorflow"\n'
            f"    model_version_policy {{ {policy} }}\n"
            f"{labels}"
            "  }\n")


def _quoted(text):
    return text_encoding.CEscape(text, as_utf8=True)


def _write_text(path, text):
    with open(path, "w") as file:
        file.write(text)
