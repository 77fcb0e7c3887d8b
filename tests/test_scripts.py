import json
import os
import sys

from helpers import run_command

SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "scripts")


def test_serving_benchmark_prints_its_table():
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "benchmark_serving.py"), "--repeats", "3"])
    rows = [line for line in stdout.splitlines() if line.split()[0].isdigit()]
    assert len(rows) == 10 and sum("SavedModel serving_default" in row for row in rows) == 2


def test_training_benchmark_measures_one_configuration():
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "benchmark.py"), "--one", "100,False,2",
                          "--steps", "4"])
    measured = json.loads(stdout.strip().splitlines()[-1])
    assert measured["examples_per_second"] > 0 and measured["first_step_seconds"] > 0 and measured["peak_mib"] > 0


def test_aevb_reproduction_writes_its_csv_and_figure(tmp_path):
    run_command([sys.executable, os.path.join(SCRIPTS, "reproduce_aevb.py"), "--datasets", "frey_face", "--latents",
                 "2", "--optimizers", "adagrad", "adam", "--budget", "1e4", "--out", str(tmp_path)], timeout=600)
    lines = (tmp_path / "aevb.csv").read_text().splitlines()
    assert lines[0] == "dataset,latent_size,optimizer,samples,train_elbo,test_elbo,seconds"
    assert [line.split(",")[2:4] for line in lines[1:]] == [["adagrad", "10000"], ["adam", "10000"]]
    assert (tmp_path / "aevb.png").read_bytes()[:4] == b"\x89PNG"
