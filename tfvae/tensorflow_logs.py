"""TensorFlow's C++ log lines, kept off the terminal of the `tfvae` command unless asked for.

Importing TensorFlow 2.21 prints INFO lines (oneDNN, CUDA drivers, CPU instructions) and starting XLA prints more.
`TF_CPP_MIN_LOG_LEVEL` filters the later ones, but not those logged before abseil's logging is initialised: abseil
writes them to stderr whatever the threshold (abseil-cpp pull requests #1718 and #1957). So the `tfvae` command
imports TensorFlow with file descriptor 2 sent to a temporary file, then writes back everything except the log lines
below its threshold: fatal lines and any text that is not a log line (a Python warning, say) stay visible.

The threshold is the user's `TF_CPP_MIN_LOG_LEVEL` when set, else 3 (fatal lines only), which the command also
passes to TensorFlow for the lines logged after the import. `-v`/`--verbose` leaves TensorFlow's logging as it is.
A program that imports tfvae as a library keeps TensorFlow's logging as it is too.
"""

import os
import re
import sys
import tempfile

COMMAND_NAME = "tfvae"
COMMAND_MODULES = ("tfvae", "tfvae.cli")  # python -m tfvae, python -m tfvae.cli
VERBOSE_FLAGS = ("-v", "--verbose")
DEFAULT_LEVEL = 3
SEVERITIES = "IWEF"  # TF_CPP_MIN_LOG_LEVEL 0 shows all of them, 1 from W, 2 from E, 3 only F
# abseil's prefix: severity, MMDD, time (before initialisation, in seconds since the epoch), thread, file:line]
_LOG_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]]+\] ")
_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def import_tensorflow():
    """Imports TensorFlow; in the `tfvae` command, with its start-up log lines filtered as the module says."""
    level = command_log_level(sys.argv, sys.orig_argv)
    if level is None or "tensorflow" in sys.modules:
        import tensorflow
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", str(level))
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            captured.seek(0)
            sys.stderr.write(filter_log_lines(captured.read().decode(errors="replace"), level))
            sys.stderr.flush()


def command_log_level(argv, orig_argv=()):
    """The `TF_CPP_MIN_LOG_LEVEL` the `tfvae` command runs with, or None to leave TensorFlow's logging alone.

    The command is the `tfvae` console script (`argv[0]`), or `python -m tfvae` or `python -m tfvae.cli` (seen in
    the interpreter's own arguments, `orig_argv`: while the package imports, `argv[0]` is only `"-m"`). None outside
    the command and with `-v`/`--verbose`; else the user's `TF_CPP_MIN_LOG_LEVEL` if it is a level, else
    `DEFAULT_LEVEL`.
    """
    arguments = _command_arguments(argv, orig_argv)
    if arguments is None or any(arg in VERBOSE_FLAGS for arg in arguments):
        return None
    user_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "")
    return int(user_level) if user_level.isdigit() else DEFAULT_LEVEL


def _command_arguments(argv, orig_argv):
    """The arguments of the `tfvae` command when this process runs it, else None."""
    if argv and os.path.basename(argv[0]) == COMMAND_NAME:
        return argv[1:]
    orig_argv = list(orig_argv)
    if argv[:1] != ["-m"] or "-m" not in orig_argv[:-1]:  # neither the console script nor a module (-m) runs
        return None
    module = orig_argv.index("-m") + 1  # the interpreter's own -m: its options come before the module
    return orig_argv[module + 1:] if orig_argv[module] in COMMAND_MODULES else None


def filter_log_lines(text, level):
    """`text` without abseil's banner and the log messages (a header line and its continuation lines) whose severity
    is below `level` (0: INFO, 1: WARNING, 2: ERROR, 3: FATAL)."""
    kept, keeping = [], True
    for line in text.splitlines(keepends=True):
        header = _LOG_LINE.match(line)
        if header:
            keeping = SEVERITIES.index(header.group(1)) >= level
        elif line.rstrip("\n") == _BANNER:
            keeping = level == 0
        if keeping:
            kept.append(line)
    return "".join(kept)
