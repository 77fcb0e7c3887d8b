"""Every user mistake gives one line on stderr and exit status 1 from `tfvae`, never a traceback.

The cases share one process (each `tfvae` process pays TensorFlow's import): it calls `tfvae.cli.main` for each
command line in turn and reports its exit status and stderr.
"""

import json
import os
import re
import socket
import sys

import keras
import numpy as np
import pytest
from helpers import run_command

from tfvae import VAE, networks
from tfvae.files.run_lock import LOCK_NAME
from tfvae.serving import export

# A case with a file size limit runs with files limited to that many bytes (RLIMIT_FSIZE, SIGXFSZ ignored): writing
# more fails with EFBIG, as a full disk fails with ENOSPC.
RUN_EACH_COMMAND = """
import contextlib, io, json, resource, signal, sys
from tfvae import cli
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
results = []
for argv, file_size_limit in json.loads(sys.argv[1]):
    stderr = io.StringIO()
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit or resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    with contextlib.redirect_stderr(stderr):
        status = cli.main(argv)
    results.append([status, stderr.getvalue()])
print(json.dumps(results))
"""


def small_vae(data_size):
    model = VAE(networks.gaussian_mlp_encoder(data_size, 2, 8), networks.bernoulli_mlp_decoder(2, data_size, 8), seed=0)
    model.build((None, data_size))
    return model


def write_json(path, value):
    path.write_text(json.dumps(value))
    return str(path)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """`{case: (command, exit status, stderr, expected message pattern)}`, every case run in one process."""
    files = tmp_path_factory.mktemp("files")
    (files / "junk.keras").write_bytes(np.random.default_rng(0).bytes(3000))
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(files / "dense.keras")
    small_vae(12).save(files / "vae12.keras")
    export.export_saved_model(small_vae(8), str(files / "served"))
    export.export_saved_model(small_vae(8), str(files / "exports" / "images"))  # where the train cases export
    (files / "a_file").write_text("")
    locked_run = files / "locked_run"
    locked_run.mkdir()
    write_json(locked_run / LOCK_NAME, {"pid": os.getpid(), "host": socket.gethostname()})
    np.save(files / "images.npy", np.random.default_rng(0).random((20, 4, 4)).astype(np.float32))
    train = ["train", "--quiet", "--dataset", str(files / "images.npy"), "--epochs", "1",
             "--export-root", str(files / "exports")]
    cases = {  # name: (argv, the line's pattern[, file size limit])
        "missing model": (["evaluate", str(files / "missing.keras")], r"missing\.keras: no such model file\.$"),
        "model folder": (["evaluate", str(files)], r"files\d* is a folder; give a model file in it, such as "
                         r".*files\d*/model\.keras\.$"),
        "run directory is a file": ([*train, "--output-dir", str(files / "a_file")],
                                    r"a_file: File exists; choose a folder you can write to\.$"),
        "junk model": (["evaluate", str(files / "junk.keras")], r"junk\.keras is not a \.keras archive"),
        "not a VAE": (["export", str(files / "dense.keras"), "--model-dir", str(files / "x")],
                      r"dense\.keras holds a Sequential, not a tfvae\.VAE, tfvae\.AutoencoderKL or "
                      r"tfvae\.AutoencoderKLTrainer\.$"),
        "missing config": (["train", "--config", str(files / "none.json")], r"--config .*none\.json: no such file\.$"),
        "config not JSON": (["train", "--config", str(files / "a_file")], r"cannot read it as a JSON config file"),
        "config not an object": (["train", "--config", write_json(files / "list.json", [1])],
                                 r"expected a JSON object of settings, got list\.$"),
        "unknown setting": (["train", "--config", write_json(files / "unknown.json", {"epochs": 2, "colour": 1})],
                            r"unknown settings \['colour'\]; known ones: \[.*'epochs'"),
        "wrong type": (["train", "--config", write_json(files / "type.json", {"epochs": "2"})],
                       r"epochs must be an integer, got '2'\.$"),
        "bad value": (["train", "--config", write_json(files / "value.json", {"latent_size": 0})],
                      r"latent_size must be at least 1, got 0\.$"),
        "negative KL weight": ([*train, "--beta", "-1"], r"beta must be >= 0, got -1\.0\.$"),
        "negative seed": ([*train, "--seed", "-1"], r"seed must be in \[0, 2\*\*31\), got -1\.$"),
        "pattern as model name": ([*train, "--model-name", "train-*"], r"model_name may hold letters, digits, .*"
                                  r"got 'train-\*'\.$"),
        "unwritable run directory": ([*train, "--output-dir", str(files / "a_file" / "run")],
                                     r"a_file/run: Not a directory; choose a folder you can write to\.$"),
        "run directory in use": ([*train, "--output-dir", str(locked_run)],
                                 rf"locked_run is in use by another run \(pid {os.getpid()} on {socket.gethostname()}"),
        "signature change": (["export", str(files / "vae12.keras"), "--model-dir", str(files / "served")],
                             r"the signatures differ from those of version 1 \(.*serving_default input x: float32 "
                             r"\[\?, 8\] -> float32 \[\?, 12\].*--allow-signature-change\.$"),
        "signature change, refused before training": ([*train, "--output-dir", str(files / "retrained")],
                                                      r"not exporting to .*exports/images: the signatures differ "
                                                      r".*--allow-signature-change\.$"),
        "disk full": ([*train, "--output-dir", str(files / "full_disk_run")],
                      r"full_disk_run/backup/\.staging-epoch-1/model\.keras: File too large while saving; "
                      r"the files saved before are intact\. Free some space", 4000),
    }
    arguments = json.dumps([[case[0], case[2] if len(case) > 2 else None] for case in cases.values()])
    statuses = json.loads(run_command([sys.executable, "-c", RUN_EACH_COMMAND, arguments]).strip().splitlines()[-1])
    return {name: (argv[0], *status, pattern)
            for (name, (argv, pattern, *_)), status in zip(cases.items(), statuses, strict=True)}


def test_each_user_mistake_gives_one_line_and_exit_status_1(results):
    assert len(results) == 19
    for case, (command, status, stderr, pattern) in results.items():
        lines = stderr.splitlines()
        assert status == 1 and len(lines) == 1, f"{case}: status {status}, stderr:\n{stderr}"
        assert lines[0].startswith(f"tfvae {command}: ") and re.search(pattern, lines[0]), f"{case}: {lines[0]}"
