"""Helpers shared by the tests."""

import os
import subprocess
import sys

SHARED_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


def run_python(code, timeout=300, env=None):
    """Runs `code` in a fresh Python process; fails the test on a non-zero exit, else returns its stdout."""
    return run_command([sys.executable, "-c", code], timeout=timeout, env=env)


def run_command(command, timeout=300, env=None):
    """Runs `command`; fails the test on a non-zero exit, else returns its stdout."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env)
    assert result.returncode == 0, f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    return result.stdout


# Makes tfvae and TensorFlow Probability unimportable, as in a TF Serving-like consumer of a SavedModel.
TENSORFLOW_ONLY_PREAMBLE = """
import importlib.abc, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tfvae", "tensorflow_probability"):
            raise ImportError(name + " is blocked: this process may use TensorFlow only")
sys.meta_path.insert(0, _Blocked())
import tensorflow as tf
"""
