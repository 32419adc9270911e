"""What every child of the master does first (workers and helpers alike)."""
from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(master_pid: int) -> None:
    """Ask the kernel for SIGTERM when the master dies; exit at once if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != master_pid:       # the master died before prctl took effect
        os._exit(0)


class Janitor:
    """``-X`` as root with a ``User`` to drop to: the one serving process can no longer remove
    its PidFile and scoreboard (root's directory) when it stops.  A small child started before
    the drop keeps root, does nothing but wait for the serving process to close a pipe (at its
    exit, however it exits) and then removes those files.  It ignores the terminal's signals
    (Ctrl-C reaches the whole foreground process group) and reads nothing but EOF."""

    def __init__(self, paths: list[str]):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                                   # the janitor
            try:
                os.close(w)
                os.closerange(3, r)                    # listeners, logs, locks: not its business
                os.closerange(r + 1, os.sysconf("SC_OPEN_MAX"))
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                            signal.SIGUSR1, signal.SIGWINCH, signal.SIGTSTP):
                    signal.signal(sig, signal.SIG_IGN)
                while os.read(r, 64):
                    pass
                for p in paths:
                    try:
                        os.unlink(p)
                    except OSError:
                        pass
            finally:
                os._exit(0)
        os.close(r)
        self.pid, self._w = pid, w

    def finish(self) -> None:
        """The serving process stops: let the janitor clean up, and wait for it."""
        if self._w >= 0:
            os.close(self._w)
            self._w = -1
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
