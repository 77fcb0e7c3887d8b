import os
import sys

from helpers import run_command

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "scripts", "benchmark_autoencoder_kl.py")


def test_autoencoder_kl_benchmark_prints_its_table_for_tfvae():
    stdout = run_command([sys.executable, SCRIPT, "--block-out-channels", "8", "16", "--norm-num-groups", "4",
                          "--train-size", "16", "--train-batch", "2", "--encode-size", "32", "--encode-batch", "2",
                          "--repeats", "1", "--rounds", "1"], timeout=900)
    rows = [line.split() for line in stdout.splitlines() if line.startswith(("train", "encode", "decode"))]
    assert [row[:2] for row in rows] == [["train", "16x16,"], ["encode", "32x32,"], ["decode", "32x32,"]]
    assert "command: " in stdout and "tensorflow " in stdout
    assert all(row[4] == "tfvae" and float(row[5]) > 0 and float(row[6]) == 1.0 for row in rows)
