import os
import sys

from helpers import run_command

SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "scripts")


def test_serving_benchmark_prints_its_table():
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "benchmark_serving.py"), "--repeats", "3"])
    rows = [line for line in stdout.splitlines() if line.split()[0].isdigit()]
    assert len(rows) == 10 and sum("SavedModel serving_default" in row for row in rows) == 2
