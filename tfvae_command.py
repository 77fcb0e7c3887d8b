"""The `tfvae` console script: starts the command without importing tfvae's library or TensorFlow.

While this module is loaded, `import tfvae` leaves the library to be imported on first use (see `tfvae/__init__.py`):
`tfvae --help` and `tfvae --version` then answer without TensorFlow, and the other commands import TensorFlow with its
start-up log lines filtered (`tfvae.cli.tensorflow_logs`) before anything else imports it.
"""

import sys


def main(argv=None):
    from tfvae.cli import main as run_command

    return run_command(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
