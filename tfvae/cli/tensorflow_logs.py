"""TensorFlow's C++ log lines, kept off the terminal of the `tfvae` command unless asked for.

Importing TensorFlow 2.21 prints INFO lines (oneDNN, CUDA drivers, CPU instructions) and starting XLA prints more.
`TF_CPP_MIN_LOG_LEVEL` filters the later ones, but not those logged before abseil's logging is initialised: abseil
writes them to stderr whatever the threshold (abseil-cpp pull requests #1718 and #1957). So the `tfvae` command
imports TensorFlow with file descriptor 2 sent to a temporary file, then writes back everything except the log lines
below its threshold: fatal lines and any text that is not a log line (a Python warning, say) stay visible.
Only the command does this: `import tfvae` leaves TensorFlow, its logging and the process's file descriptors alone.

The threshold is the user's `TF_CPP_MIN_LOG_LEVEL` when set, else 3 (fatal lines only), which the command also
passes to TensorFlow for the lines logged after the import. `-v`/`--verbose` leaves TensorFlow's logging as it is.
"""

import os
import re
import sys
import tempfile

VERBOSE_FLAGS = ("-v", "--verbose")
DEFAULT_LEVEL = 3
SEVERITIES = "IWEF"  # TF_CPP_MIN_LOG_LEVEL 0 shows all of them, 1 from W, 2 from E, 3 only F
# abseil's prefix: severity, MMDD, time (before initialisation, in seconds since the epoch), thread, file:line]
_LOG_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]]+\] ")
_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def import_tensorflow(argv):
    """Imports TensorFlow for the `tfvae` command run with `argv`, its start-up log lines filtered as the module
    says; with `-v`/`--verbose` in `argv`, or TensorFlow imported already, as it is."""
    if "tensorflow" in sys.modules or any(arg in VERBOSE_FLAGS for arg in argv):
        import tensorflow
        return
    user_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "")
    level = int(user_level) if user_level.isdigit() else DEFAULT_LEVEL
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = str(level)
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
