"""The `tfvae` command: `main` imports TensorFlow quietly, then runs `commands`."""


def main(argv=None):
    """Runs the `tfvae` command with `argv` (default: `sys.argv[1:]`); returns its exit status.

    TensorFlow is imported first, with its start-up log lines filtered (`tensorflow_logs`), then the command runs.
    """
    import sys

    from tfvae.cli.tensorflow_logs import import_tensorflow

    argv = sys.argv[1:] if argv is None else argv
    import_tensorflow(argv)
    from tfvae.cli import commands

    return commands.main(argv)


__all__ = ["main"]
