"""The `tfvae` command: `tfvae train`, `evaluate`, `export`, `encode` and `serving-config`.

`main` parses the command line without TensorFlow (`parser`), so `--help` and `--version` answer at once; a command
then imports TensorFlow with its start-up lines filtered (`tensorflow_logs`) and runs (`commands`), without
libjpeg's messages on bad files (`decoder_messages`) unless `-v`/`--verbose` is given.
"""

import contextlib
import os
import sys

BROKEN_PIPE_STATUS = 141  # 128 + SIGPIPE, as shells report a process whose reader went away


def main(argv=None):
    """Runs the `tfvae` command with `argv` (default: `sys.argv[1:]`); returns its exit status.

    A reader that goes away (`tfvae evaluate ... | head -1`) ends the command quietly.
    """
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # Python's advice: send what is left to /dev/null, so that the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS


def _main(argv):
    from tfvae.cli.decoder_messages import without_decoder_messages
    from tfvae.cli.parser import build_parser
    from tfvae.cli.tensorflow_logs import VERBOSE_FLAGS, import_tensorflow
    from tfvae.run.config import ConfigError

    try:
        parser = build_parser(argv)
    except ConfigError as error:  # a --config file that cannot be read
        command = next((arg for arg in argv if not arg.startswith("-")), None)
        print(f"tfvae {command}: {error}" if command else f"tfvae: {error}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    import_tensorflow(argv)
    from tfvae.cli import commands

    verbose = any(arg in VERBOSE_FLAGS for arg in argv)
    with contextlib.nullcontext() if verbose else without_decoder_messages():
        return commands.run(args)


__all__ = ["main"]
