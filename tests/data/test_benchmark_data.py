"""A smoke run of scripts/benchmark_data.py on two tiny generated folders."""

import json
import os
import sys

from helpers import run_command

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "benchmark_data.py")


def test_data_benchmark_reports_the_growth_and_ratio_of_what_it_measured(tmp_path):
    stdout = run_command([sys.executable, SCRIPT, "--sizes", "20", "40", "--rate-images", "200", "--repeats", "1",
                          "--root", str(tmp_path), "--out", str(tmp_path / "results.json")], timeout=900)
    results = json.loads((tmp_path / "results.json").read_text())
    memory, rates = results["peak_rss_mib"], results["images_per_second"]
    assert memory["20"] > 100 and memory["40"] > 100 and rates["pipeline"] > 0 and rates["conv train step"] > 0
    growth = 100 * (memory["40"] / memory["20"] - 1)
    assert f"peak RSS growth from 20 to 40 images: {growth:+.1f}%" in stdout
    assert results["ratio"] == rates["pipeline"] / rates["conv train step"]
    assert f"pipeline / train step: {results['ratio']:.2f}x" in stdout
    assert sorted(os.listdir(tmp_path / "jpeg64-40")) == [f"{index:02d}" for index in range(40)]
