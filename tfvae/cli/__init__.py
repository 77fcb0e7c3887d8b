"""The `tfvae` command: `tfvae train`, `tfvae evaluate` and `tfvae export`.

`main` parses the command line without TensorFlow (`parser`), so `--help` and `--version` answer at once; a command
then imports TensorFlow with its start-up lines filtered (`tensorflow_logs`) and runs (`commands`).
"""

import sys


def main(argv=None):
    """Runs the `tfvae` command with `argv` (default: `sys.argv[1:]`); returns its exit status."""
    from tfvae.cli.parser import build_parser
    from tfvae.cli.tensorflow_logs import import_tensorflow
    from tfvae.run.config import ConfigError

    argv = sys.argv[1:] if argv is None else argv
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

    return commands.run(args)


__all__ = ["main"]
