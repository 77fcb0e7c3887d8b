import json
import os
import stat
import sys

from helpers import run_command

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "benchmark_autoencoder_kl.py")
STAND_IN = {"images_per_second": 0.5, "first_step_seconds": 3.0, "peak_mib": 321.0}


def test_autoencoder_kl_benchmark_compares_each_framework_with_tfvae(tmp_path):
    # A stand-in for the PyTorch interpreter answers every measurement with fixed numbers: its rows must show them,
    # and its "vs tfvae" column their ratio to tfvae's measured rate.
    stand_in = tmp_path / "pytorch"
    stand_in.write_text(f"#!/bin/sh\necho '{json.dumps(STAND_IN)}'\n")
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    stdout = run_command([sys.executable, SCRIPT, "--block-out-channels", "8", "16", "--norm-num-groups", "4",
                          "--train-size", "16", "--train-batch", "2", "--encode-size", "32", "--encode-batch", "2",
                          "--repeats", "1", "--rounds", "1", "--pytorch", str(stand_in)], timeout=900)
    rows = [line.rsplit(maxsplit=4) for line in stdout.splitlines() if line.startswith(("train", "encode"))]
    labels = [(" ".join(row[0].split()[:4]), " ".join(row[0].split()[4:])) for row in rows]
    assert labels == [("train 16x16, batch 2", "tfvae"), ("train 16x16, batch 2", "diffusers (PyTorch)"),
                      ("encode 32x32, batch 2", "tfvae"), ("encode 32x32, batch 2", "diffusers (PyTorch)")]
    for tfvae_row, other_row in (rows[:2], rows[2:]):
        tfvae_rate = float(tfvae_row[1])
        assert tfvae_rate > 0 and float(tfvae_row[4]) > 100
        assert other_row[1:] == ["0.50", f"{0.5 / tfvae_rate:.2f}", "3.0", "321"]
