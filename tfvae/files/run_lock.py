"""One writer per run directory: a lock file that holds the pid and host of the run that writes there.

The lock is `<run_dir>/lock`, created atomically (`O_CREAT | O_EXCL`) when a run starts and removed when it ends. A
second run on the same directory stops at once with an error naming the holder. A lock whose process is gone (killed,
say, with SIGKILL) on this host is taken over; a lock held from another host is never taken over, since whether its
process lives cannot be known from here: remove the file once that run is certainly over.
"""

import contextlib
import json
import os
import socket
import time

LOCK_NAME = "lock"
_ATTEMPTS = 5
_RETRY_SECONDS = 0.1


class RunLockedError(RuntimeError):
    """Another run holds the lock of the run directory."""


class RunLock:
    """A context manager holding the lock of `run_dir` (created if missing, and removed again if the block wrote
    nothing there) while the block runs.

    Example:

    >>> with RunLock("runs/frey_face"):
    ...     train_and_save()

    Args:
        run_dir: the directory to lock.
        instead: what the user may do instead of waiting, in the message of a `RunLockedError`.

    Raises:
        RunLockedError: on entering, when a live process holds the lock.
        OSError: when the directory cannot be created or written.
    """

    def __init__(self, run_dir, instead="choose another --output-dir"):
        self.run_dir = run_dir
        self.instead = instead
        self.path = os.path.join(run_dir, LOCK_NAME)
        self.holder = {"pid": os.getpid(), "host": socket.gethostname()}

    def __enter__(self):
        self.created = not os.path.isdir(self.run_dir)
        os.makedirs(self.run_dir, exist_ok=True)
        for _ in range(_ATTEMPTS):
            if self._create():
                return self
            holder = read_holder(self.path)
            if holder is None:  # being written by the run that just created it, or left empty by a killed one
                time.sleep(_RETRY_SECONDS)
            elif self._is_stale(holder):
                self._remove_stale(holder)
            else:
                raise RunLockedError(
                    f"{self.run_dir} is in use by another run (pid {holder['pid']} on {holder['host']}, lock file "
                    f"{self.path}); wait for it to end, or {self.instead}."
                )
        raise RunLockedError(f"{self.run_dir}: cannot take the lock {self.path}; if no run uses it, remove the file.")

    def __exit__(self, *exc_info):
        if read_holder(self.path) == self.holder:
            os.remove(self.path)
        if self.created:  # a run that stopped before writing anything leaves no folder behind
            with contextlib.suppress(OSError):  # not empty: written to, or another run's lock came in meanwhile
                os.rmdir(self.run_dir)

    def _create(self):
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as file:
            json.dump(self.holder, file)
        return True

    def _is_stale(self, holder):
        return holder["host"] == self.holder["host"] and not process_alive(holder["pid"])

    def _remove_stale(self, holder):
        """Moves the stale lock aside (a rename: of two runs taking it over at once, one moves it) and deletes it.

        A lock that turns out not to be the stale one read before (another run took it over in between) is put back,
        unless a third run has created one since."""
        aside = f"{self.path}.stale-{self.holder['pid']}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if read_holder(aside) != holder:
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
        os.remove(aside)


def read_holder(path):
    """`{"pid", "host"}` of the lock file at `path`; None if it is missing or unreadable (half written)."""
    try:
        with open(path) as file:
            holder = json.load(file)
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(holder, dict) or not {"pid", "host"} <= holder.keys() or not isinstance(holder["pid"], int):
        return None
    return holder


def process_alive(pid):
    """Whether a process with this pid runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
