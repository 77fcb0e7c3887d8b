"""A smoke run of scripts/benchmark_data.py on a tiny generated folder."""

import json
import os
import sys

from helpers import run_command

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "benchmark_data.py")


def test_data_benchmark_prints_its_tables_on_a_tiny_folder(tmp_path):
    stdout = run_command([sys.executable, SCRIPT, "--sizes", "40", "--rate-images", "200", "--repeats", "1",
                          "--root", str(tmp_path), "--out", str(tmp_path / "results.json")], timeout=900)
    assert "peak RSS growth from 40 to 40 images: +0.0%" in stdout and "pipeline / train step:" in stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["peak_rss_mib"]["40"] > 100 and results["images_per_second"]["pipeline"] > 0
    assert len(os.listdir(tmp_path / "jpeg64-40")) == 40  # one subfolder per image: 40 < 100 subfolders
