"""The comparison scripts of the KL autoencoder run end to end on tiny settings (tfvae's side only: PyTorch is never a
test dependency)."""

import os
import sys

import pytest
from helpers import run_command

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts")
TINY = ["--block-out-channels", "8", "16", "--norm-num-groups", "4", "--layers-per-block", "1"]

pytest.importorskip("skimage")


def test_float32_accuracy_prints_tfvae_errors_against_float64():
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "compare_float32_accuracy.py"), "--size", "32",
                          *TINY], timeout=900)
    row = next(line.split() for line in stdout.splitlines() if line.startswith("tfvae "))
    assert all(0 < float(error) < 1e-4 for error in row[1:])


def test_reconstruction_quality_prints_psnr_and_ssim_per_seed():
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "compare_reconstruction_quality.py"), "--seeds", "0",
                          "1", "--steps", "2", "--batch", "2", "--size", "16", "--validation-crops", "2", *TINY],
                         timeout=900)
    assert stdout.count('"framework": "tfvae"') == 2
    row = next(line.split() for line in stdout.splitlines() if line.startswith("tfvae "))
    assert float(row[1]) > 0 and 0 < abs(float(row[4])) <= 1
