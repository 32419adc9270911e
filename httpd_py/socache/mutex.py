"""The global (cross-process) mutex behind Apache's ``Mutex`` directive, on lock files.

``GlobalMutex(spec)`` is made at config time, ``create()`` runs in the master (it creates the
lock file ``<dir>/<name>.<pid>``, or ``<dir>/<name>`` with OmitPID, mode 0600), ``child_init()``
in every worker after fork, and ``hold()`` takes it.  After fork a child keeps the inherited
descriptor for POSIX record locks (``default``, ``file``, ``fcntl``): a record lock belongs to
the process that takes it, whatever descriptor it uses, so the child never opens the path and a
ServerRoot or DefaultRuntimeDir its User cannot traverse (a 0700 directory, as ``mktemp -d``
makes) is fine, as with Apache's inherited fcntl mutexes.  Only ``flock`` re-opens the file
(a flock(2) lock belongs to the open file description, which fork shares: through the inherited
descriptor it would exclude nobody).  ``forget_path()`` removes the file while the descriptor
stays open (``-X``: one process, nobody will re-open it)::

    with mutex.hold() as held:                        # the whole mutex, blocking
        ...
    with mutex.hold(key=certid, timeout=5.0) as held:  # one key only; held False on timeout
        ...

Mechanisms (Apache names): ``default``, ``file`` and ``fcntl`` use POSIX record locks
(``fcntl.lockf``); ``flock`` uses ``flock(2)`` for whole holds.  A keyed hold locks one byte at
an offset taken from a 62-bit hash of the key (``lockf`` byte-range), so two certificates never
wait on each other, while a whole hold (the whole file range) excludes every key.  Under
``flock`` a whole hold is a flock(2) lock, independent of keyed holds (flock has no ranges).

Why record locks by default: they belong to the process, not to the descriptor, so a lock is
freed the moment its holder dies even when the holder had forked a child that still has the
descriptor open (a flock lock would stay held until that child exits), and they give byte
ranges, hence per-key exclusion on one file.

Why not portalocker on the hot path: on POSIX ``portalocker.lock`` is a thin layer over
``fcntl.flock`` that costs ~14 us per lock+unlock in argument checking (python-probe.md Q5:
36-46k ops/s against 110-140k with the raw call), and ``portalocker.Lock()``'s defaults poll every
0.25 s.  We make the same system calls directly, blocking in the kernel (F_SETLKW / LOCK_EX)
when no timeout is given; with a timeout we try without blocking and back off (0.5 ms doubling
to 20 ms) until the deadline.

Threads of one process exclude each other too (a condition variable in front of the file lock):
a POSIX record lock belongs to the process, so without it two threads would both "hold" it.

A lock that cannot be taken because of a system error is logged (HP05030) and ``hold`` yields
False: the caller decides, as Apache continues without the lock (AH01948).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
import threading
import time
from typing import Iterator

from httpd_py import logids
from httpd_py.config.model import MutexSpec
from httpd_py.errors import ConfigError, SocacheError
from httpd_py.log import error_log
from httpd_py.socache.base import MODULE

MECHANISMS = ("default", "file", "fcntl", "flock")
_KEY_SPACE = 1 << 62             # keyed lock offsets: 1 .. 2**62 (byte 0 stays for nothing)


def describe(spec: MutexSpec) -> str:
    """The ``-S`` line for one mutex, as Apache's ap_dump_mutexes prints it."""
    if spec.using_defaults:
        return f"Mutex {spec.name}: using_defaults"
    if spec.mechanism == "none":
        return f"Mutex {spec.name}: none"
    omit = " [OmitPid]" if spec.omit_pid else ""
    return f'Mutex {spec.name}: dir="{spec.directory}" mechanism={spec.mechanism}{omit}'


def key_offset(key: bytes) -> int:
    """Byte offset of ``key``'s lock in the lock file (stable across processes)."""
    h = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
    return 1 + h % _KEY_SPACE


class GlobalMutex:
    """One named cross-process mutex (see the module docstring)."""

    def __init__(self, spec: MutexSpec):
        mech = (spec.mechanism or "default").lower()
        if mech in ("none", "no"):
            raise ConfigError(f"None is not allowed for mutex type {spec.name}")
        if mech == "yes":
            mech = "default"
        if mech not in MECHANISMS:
            raise ConfigError(f"Invalid Mutex argument {spec.mechanism} (Mutex mechanisms are: "
                              f"'default', 'file', 'fcntl', 'flock')")
        self.spec = spec
        self.mechanism = mech
        self.path: str | None = None
        self._fd: int | None = None
        self._owner_pid = 0
        self._reset_threads()

    def _reset_threads(self) -> None:
        self._cv = threading.Condition(threading.Lock())
        self._t_whole = False
        self._t_keys: set[int] = set()
        self._t_waiting = 0

    # ---- lifecycle -------------------------------------------------------------------------

    def create(self) -> None:
        """Master: create the lock file and open it."""
        directory = self.spec.directory or tempfile.gettempdir()
        name = self.spec.name if self.spec.omit_pid else f"{self.spec.name}.{os.getpid()}"
        self.path = os.path.join(directory, name)
        self._open()

    def child_init(self) -> None:
        """Worker after fork: record locks keep the inherited descriptor (the locks this
        process takes are its own); ``flock`` opens the file again (its own open file
        description)."""
        self._reset_threads()            # the forking thread is the only one left
        if self.mechanism != "flock" and self._fd is not None:
            self._owner_pid = os.getpid()
            return
        if self.path is None:
            raise SocacheError(f"mutex {self.spec.name}: child_init() before create() (or after "
                               f"forget_path())")
        if self._fd is not None:
            # Closing the inherited descriptor would drop the parent's POSIX locks only if we
            # were the parent; in the child it releases nothing that matters.
            os.close(self._fd)
            self._fd = None
        self._open()

    def forget_path(self) -> None:
        """Remove the lock file now and keep locking through the open descriptor (the ``-X``
        process is alone: no child will open the path, and after dropping privileges it could
        not remove it any more)."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = None

    def destroy(self, unlink: bool = True) -> None:
        """Master at shutdown: close and remove the lock file.

        ``unlink=False`` at a graceful restart: the next generation (same master pid, same
        path) then opens the same file, so its workers and the old generation's still-running
        workers exclude each other (a file-backed shmcb is shared across generations)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if unlink and self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _open(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            os.fchmod(fd, 0o600)
        except OSError as e:
            error_log.error(MODULE, logids.MUTEX_CREATE_FAILED,
                            f"mutex {self.spec.name}: cannot create lock file {self.path}: {e}")
            raise SocacheError(f"mutex {self.spec.name}: cannot create lock file "
                               f"{self.path}: {e}") from e
        self._fd = fd
        self._owner_pid = os.getpid()

    # ---- locking ---------------------------------------------------------------------------

    def _busy(self, off: int | None) -> bool:
        if off is None:
            return self._t_whole or (bool(self._t_keys) and self.mechanism != "flock")
        return off in self._t_keys or (self._t_whole and self.mechanism != "flock")

    def _enter(self, off: int | None, timeout: float | None) -> bool:
        """In-process exclusion between threads (a record lock is the process's, so two
        threads would both "hold" it, and one thread's whole-range unlock would drop another
        thread's key locks).  Under flock, whole and keyed holds are independent here too."""
        with self._cv:
            if self._busy(off):
                deadline = None if timeout is None else time.monotonic() + timeout
                self._t_waiting += 1
                try:
                    while self._busy(off):
                        if deadline is None:
                            self._cv.wait()
                        else:
                            left = deadline - time.monotonic()
                            if left <= 0:
                                return False
                            self._cv.wait(left)
                finally:
                    self._t_waiting -= 1
            if off is None:
                self._t_whole = True
            else:
                self._t_keys.add(off)
            return True

    def _leave(self, off: int | None) -> None:
        with self._cv:
            if off is None:
                self._t_whole = False
            else:
                self._t_keys.discard(off)
            if self._t_waiting:
                self._cv.notify_all()

    def _lock(self, off: int | None, blocking: bool) -> bool:
        """One file-lock attempt; True when taken, False when busy (non-blocking only)."""
        op = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            if off is None and self.mechanism == "flock":
                fcntl.flock(self._fd, op)
            elif off is None:
                fcntl.lockf(self._fd, op, 0, 0, os.SEEK_SET)     # the whole file range
            else:
                fcntl.lockf(self._fd, op, 1, off, os.SEEK_SET)
            return True
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise

    def _unlock(self, off: int | None) -> None:
        if off is None and self.mechanism == "flock":
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        elif off is None:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 0, 0, os.SEEK_SET)
        else:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, off, os.SEEK_SET)

    @contextlib.contextmanager
    def hold(self, key: bytes | None = None, timeout: float | None = None) -> Iterator[bool]:
        """Hold the whole mutex (key None) or one key's lock; yields False if not taken.

        ``timeout`` None blocks in the kernel until the lock is free; a number bounds the wait
        (0: a single try).  The lock is released when the block ends, also on an exception.
        Threads of one process exclude each other too.  Not re-entrant.
        """
        if self._fd is None:
            raise SocacheError(f"mutex {self.spec.name}: hold() before create()")
        if self._owner_pid != os.getpid():
            # Forgotten child_init(): the descriptor is the master's, re-open it now.
            self.child_init()
        off = None if key is None else key_offset(key)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._enter(off, timeout):
            yield False
            return
        try:
            if deadline is None:
                held = self._lock(off, blocking=True)
            else:
                held = self._lock(off, blocking=False)
                pause = 0.0005
                while not held:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    time.sleep(min(pause, left))
                    pause = min(pause * 2, 0.02)
                    held = self._lock(off, blocking=False)
        except OSError as e:
            error_log.warn(MODULE, logids.MUTEX_LOCK_FAILED,
                           f"mutex {self.spec.name}: failed to acquire lock: {e}")
            held = False
        if not held:
            self._leave(off)
        try:
            yield held
        finally:
            if held:
                try:
                    self._unlock(off)
                except OSError as e:
                    error_log.warn(MODULE, logids.MUTEX_LOCK_FAILED,
                                   f"mutex {self.spec.name}: failed to release lock: {e}")
                self._leave(off)

    # Fast path for a hot loop: ``acquire()`` / ``release()`` avoid the generator of hold()
    # (~1 us); blocking, whole mutex only.  Call release() only after acquire() returned True.
    def acquire(self) -> bool:
        if self._owner_pid != os.getpid():
            self.child_init()
        self._enter(None, None)
        try:
            self._lock(None, blocking=True)
            return True
        except OSError as e:
            error_log.warn(MODULE, logids.MUTEX_LOCK_FAILED,
                           f"mutex {self.spec.name}: failed to acquire lock: {e}")
            self._leave(None)
            return False
        except BaseException:
            self._leave(None)
            raise

    def release(self) -> None:
        try:
            self._unlock(None)
        except OSError as e:
            error_log.warn(MODULE, logids.MUTEX_LOCK_FAILED,
                           f"mutex {self.spec.name}: failed to release lock: {e}")
        finally:
            self._leave(None)
