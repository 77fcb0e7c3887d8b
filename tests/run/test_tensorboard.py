"""A real `tfvae train --tensorboard` run, read back through a real TensorBoard server on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from helpers import run_command

TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")
TENSORBOARD = os.path.join(os.path.dirname(sys.executable), "tensorboard")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port, path, **query):
    url = f"http://127.0.0.1:{port}{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.fixture(scope="module")
def tensorboard_server(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    run_command([TFVAE, "train", "--epochs", "2", "--latent-size", "2", "--tensorboard", "--image-every", "1",
                 "--jit-compile", "off", "--quiet", "--output-dir", str(run_dir),
                 "--export-root", str(run_dir / "exports"),
                 "--data-dir", str(run_dir / "tfds")])
    port = free_port()
    server = subprocess.Popen(
        [TENSORBOARD, "--logdir", str(run_dir / "tensorboard"), "--host", "127.0.0.1", "--port", str(port),
         "--load_fast", "false", "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                tags = json.loads(get(port, "/data/plugin/scalars/tags"))
                if {"train", "validation"} <= set(tags) and "epoch_elbo" in tags["validation"]:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "TensorBoard did not serve the run in time"
            time.sleep(1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_scalars_for_train_and_validation(tensorboard_server):
    tags = json.loads(get(tensorboard_server, "/data/plugin/scalars/tags"))
    for run in ("train", "validation"):
        expected = {"epoch_elbo", "epoch_kl", "epoch_reconstruction", "epoch_loss", "active_units",
                    "kl_per_channel/0", "kl_per_channel/1"}
        assert expected <= set(tags[run]), (run, sorted(tags[run]))
    assert {"epoch_learning_rate", "kl_weight"} <= set(tags["train"])
    points = json.loads(get(tensorboard_server, "/data/plugin/scalars/scalars", run="validation", tag="epoch_elbo"))
    assert [step for _, step, _ in points] == [0, 1]


def test_images_and_histograms(tensorboard_server):
    images = json.loads(get(tensorboard_server, "/data/plugin/images/tags"))
    assert {"reconstructions", "prior_samples", "manifold"} <= set(images["images"])
    entries = json.loads(get(tensorboard_server, "/data/plugin/images/images", run="images", tag="manifold"))
    assert [entry["step"] for entry in entries] == [0, 1]
    png = get(tensorboard_server, "/data/plugin/images/individualImage?" + entries[-1]["query"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    histograms = json.loads(get(tensorboard_server, "/data/plugin/histograms/tags"))
    assert {"posterior/mean", "posterior/logvar"} <= set(histograms["validation"])
