import os
import subprocess
import sys

from tfvae import __version__
from tfvae.cli import tensorflow_logs

TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")
BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
INFO = "I0000 00:00:1795520520.412220   12494 port.cc:153] oneDNN custom operations are on.\n"
ERROR = "E0000 00:00:1795520520.412549   12494 cuda_platform.cc:52] failed call to cuInit\n"
FATAL = "F0000 00:00:1795520520.530440   12494 env.cc:12] Check failed: a second line follows\n"
PYTHON_WARNING = "/x/y.py:3: UserWarning: text that is not a log line\n"


def test_log_lines_below_the_level_go_and_everything_else_stays():
    text = PYTHON_WARNING + BANNER + INFO + ERROR + "  its second line\n" + FATAL + "  details\n"
    assert tensorflow_logs.filter_log_lines(text, 3) == PYTHON_WARNING + FATAL + "  details\n"
    assert tensorflow_logs.filter_log_lines(text, 2) == PYTHON_WARNING + ERROR + "  its second line\n" + FATAL + \
        "  details\n"
    assert tensorflow_logs.filter_log_lines(text, 0) == text


def test_the_command_decides_the_level(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert tensorflow_logs.command_log_level(["/venv/bin/tfvae", "train"]) == 3
    assert tensorflow_logs.command_log_level(["/venv/bin/tfvae", "train", "-v"]) is None
    assert tensorflow_logs.command_log_level(["/venv/bin/tfvae", "--verbose", "evaluate"]) is None
    assert tensorflow_logs.command_log_level(["my_script.py", "train"]) is None, "a library user's program"
    for module in ("tfvae", "tfvae.cli"):  # `argv[0]` is "-m" while the package imports
        assert tensorflow_logs.command_log_level(["-m"], ["python3", "-m", module, "train"]) == 3
        assert tensorflow_logs.command_log_level(["-m"], ["python3", "-m", module, "train", "-v"]) is None
    assert tensorflow_logs.command_log_level(["-m"], ["python3", "-m", "pytest", "tests"]) is None
    assert tensorflow_logs.command_log_level(["my_script.py", "-m", "tfvae"],
                                             ["python3", "my_script.py", "-m", "tfvae"]) is None
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert tensorflow_logs.command_log_level(["/venv/bin/tfvae", "train"]) == 1


def run_tfvae(*arguments, command=(TFVAE,)):
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=300, env=env, check=True)


def test_the_command_starts_quietly_and_verbose_shows_tensorflow_logs():
    quiet = run_tfvae("train", "--help")
    assert "--allow-signature-change" in quiet.stdout and quiet.stderr == ""
    as_module = run_tfvae("train", "--help", command=(sys.executable, "-m", "tfvae"))
    assert (as_module.stdout, as_module.stderr) == (quiet.stdout, "")
    verbose = run_tfvae("--version", "--verbose")
    assert verbose.stdout.strip() == f"tfvae {__version__}"
    assert "port.cc" in verbose.stderr or "cpu_feature_guard" in verbose.stderr, verbose.stderr
