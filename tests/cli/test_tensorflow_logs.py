import os
import subprocess
import sys

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


def run_tfvae(*arguments, command=(TFVAE,), check=True):
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=300, env=env, check=check)


def test_the_command_starts_quietly_and_verbose_shows_tensorflow_logs(tmp_path):
    quiet = run_tfvae("train", "--help")
    assert "--allow-signature-change" in quiet.stdout and quiet.stderr == ""
    as_module = run_tfvae("train", "--help", command=(sys.executable, "-m", "tfvae"))
    assert (as_module.stdout, as_module.stderr) == (quiet.stdout, "")
    missing = str(tmp_path / "missing.keras")
    imported = run_tfvae("evaluate", missing, check=False)  # imports TensorFlow, then fails on the missing file
    assert imported.stderr == f"tfvae evaluate: {missing}: no such model file.\n"
    verbose = run_tfvae("evaluate", missing, "--verbose", check=False)
    assert "port.cc" in verbose.stderr or "cpu_feature_guard" in verbose.stderr, verbose.stderr
