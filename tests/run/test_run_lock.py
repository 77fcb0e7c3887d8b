import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tfvae.files.run_lock import LOCK_NAME, RunLock, RunLockedError, read_holder
from tfvae.run.resumable_run import newest_backup

TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")
# The command's own default: TensorFlow's C++ log lines hidden, so stderr holds tfvae's messages alone.
QUIET_ENV = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}


def dead_pid():
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_one_holder_at_a_time_and_a_dead_holder_is_taken_over(tmp_path):
    here = socket.gethostname()
    with RunLock(str(tmp_path / "run")):
        assert read_holder(str(tmp_path / "run" / LOCK_NAME)) == {"pid": os.getpid(), "host": here}
        with pytest.raises(RunLockedError, match=f"in use by another run \\(pid {os.getpid()} on {here}"):
            RunLock(str(tmp_path / "run")).__enter__()
    assert not (tmp_path / "run").exists(), "the lock goes with the run, and so does the folder it made for nothing"

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_NAME).write_text(json.dumps({"pid": dead_pid(), "host": here}))
    with RunLock(str(tmp_path / "run")):
        assert read_holder(str(tmp_path / "run" / LOCK_NAME))["pid"] == os.getpid()
    assert os.listdir(tmp_path / "run") == [], "a folder that was there stays"
    with RunLock(str(tmp_path / "written")):
        (tmp_path / "written" / "config.json").write_text("{}")
    assert os.listdir(tmp_path / "written") == ["config.json"]

    elsewhere = {"pid": dead_pid(), "host": here + "-elsewhere"}
    (tmp_path / "run" / LOCK_NAME).write_text(json.dumps(elsewhere))
    with pytest.raises(RunLockedError, match="-elsewhere"):
        RunLock(str(tmp_path / "run")).__enter__()
    assert read_holder(str(tmp_path / "run" / LOCK_NAME)) == elsewhere, "another host's lock is never taken over"


def epochs_logged(run_dir):
    if not (run_dir / "history.csv").exists():
        return []
    with open(run_dir / "history.csv", newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def test_two_runs_on_one_directory_then_ctrl_c_then_resume(tmp_path):
    np.save(tmp_path / "images.npy", np.random.default_rng(0).random((400, 8, 8)).astype(np.float32))
    run_dir = tmp_path / "run"

    def command(epochs):
        return [TFVAE, "train", "--quiet", "--dataset", str(tmp_path / "images.npy"), "--epochs", str(epochs),
                "--batch-size", "10", "--hidden-units", "16", "--latent-size", "2", "--jit-compile", "off",
                "--steps-per-execution", "1", "--output-dir", str(run_dir), "--export-root", str(tmp_path / "exports")]

    started = [subprocess.Popen(command(1000), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=QUIET_ENV) for _ in range(2)]
    try:
        deadline = time.monotonic() + 300
        while all(process.poll() is None for process in started):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        loser, = (process for process in started if process.poll() is not None)
        winner, = (process for process in started if process is not loser)
        assert winner.poll() is None, "the second run stops at once; the first goes on"
        stderr = loser.stderr.read()
        assert loser.returncode == 1 and stderr.count("\n") == 1, stderr
        assert f"is in use by another run (pid {winner.pid} on {socket.gethostname()}" in stderr

        while len(epochs_logged(run_dir)) < 2:
            assert winner.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        winner.send_signal(signal.SIGINT)
        winner.wait(timeout=120)
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
    stderr = winner.stderr.read()
    assert winner.returncode == 130, stderr
    assert stderr.strip() == (f"tfvae train: interrupted; {run_dir / 'backup'} keeps the last finished epoch, and the "
                              "same command resumes from it.")
    finished = epochs_logged(run_dir)
    assert finished == list(range(len(finished))) and len(finished) >= 2
    assert newest_backup(str(run_dir / "backup")).endswith(f"epoch-{len(finished)}"), "the last finished epoch"
    assert os.listdir(run_dir / "backup") == [f"epoch-{len(finished)}"], "one whole backup, nothing partial"
    assert not (run_dir / LOCK_NAME).exists()

    subprocess.run(command(len(finished) + 1), check=True, capture_output=True, timeout=600, env=QUIET_ENV)
    assert epochs_logged(run_dir) == list(range(len(finished) + 1)), "resumed at the interrupted epoch"
