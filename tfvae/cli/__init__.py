"""The `tfvae` command: `main` imports TensorFlow quietly, then runs `commands`."""


def main(argv=None):
    """Runs the `tfvae` command with `argv` (default: `sys.argv[1:]`); returns its exit status.

    TensorFlow is imported first, with its start-up log lines filtered (`tensorflow_logs`), then the command runs,
    without libjpeg's messages on bad files (`decoder_messages`) unless `-v`/`--verbose` is in `argv`.
    """
    import contextlib
    import sys

    from tfvae.cli.decoder_messages import without_decoder_messages
    from tfvae.cli.tensorflow_logs import VERBOSE_FLAGS, import_tensorflow

    argv = sys.argv[1:] if argv is None else argv
    import_tensorflow(argv)
    from tfvae.cli import commands

    verbose = any(arg in VERBOSE_FLAGS for arg in argv)
    with contextlib.nullcontext() if verbose else without_decoder_messages():
        return commands.main(argv)


__all__ = ["main"]
