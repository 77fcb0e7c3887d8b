"""Files written so that none is ever left half written.

Every file is written beside its final path under a hidden temporary name and renamed over it once complete
(`os.replace` is atomic on POSIX): a full disk, a kill or Ctrl-C in the middle of a save leaves the previous file as
it was. `tfvae train` writes its final `model.keras`, the best-model checkpoint and the backup that resumes a run this
way.
"""

import os

_PARTIAL_PREFIX = ".partial-"


def save_atomically(save, path):
    """Calls `save(temporary_path)`, then renames the temporary file to `path`; on any error, `path` is untouched.

    The temporary name keeps the end of `path` (`.keras`), which Keras' savers check.

    Raises:
        OSError: naming `path`, when the write fails (a full disk: ENOSPC).
    """
    directory, name = os.path.split(path)
    partial_path = os.path.join(directory, f"{_PARTIAL_PREFIX}{os.getpid()}-{name}")
    try:
        save(partial_path)
        os.replace(partial_path, path)
    except OSError as error:
        if error.errno is None:
            raise
        raise OSError(error.errno, os.strerror(error.errno), path) from error
    finally:
        if os.path.exists(partial_path):
            os.remove(partial_path)
