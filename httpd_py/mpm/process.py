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
