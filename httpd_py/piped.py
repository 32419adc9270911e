"""Piped logs: ``ErrorLog "|program"`` and ``CustomLog "|program" format`` (Apache's reliable
piped logs), the one place that starts and restarts log programs.

Targets, as Apache 2.4 reads them::

    |program args     run program directly (no shell); args split as apr_tokenize_to_argv:
                      whitespace, with "double" or 'single' quotes and backslash escapes
    ||program args    the same (Apache 2.2's spelling of "no shell", still accepted)
    |$command         /bin/sh -c command

The master owns the pipe; every process writes to it::

    master:   pipe(read_end, write_end)           both kept open for the server's life
              spawn program, stdin = read_end     (posix_spawn: nothing of ours runs in the child)
              workers and helpers inherit write_end (and the handles the logs hand out, dups of it)
    program dies -> the master reaps it (mpm/master.py calls ``reaped``) and starts a new one
              on the SAME read_end: lines written meanwhile wait in the pipe (64 KiB), no
              worker notices, nothing is lost that the dead program had not read yet

So a log program killed or crashed is back within the master's next loop turn (immediately;
after repeated quick deaths with a backoff of 1, 2, 4 ... 60 s, so a program that cannot run
does not spin the master).  Lines are written with one ``write(2)`` each: whole up to PIPE_BUF
(4096 bytes) even with many writers.

Sharing: one ``PipedLog`` per distinct target text, shared by every log using it (two vhosts'
``CustomLog "|/usr/bin/logger" ...`` feed one program) and across restarts (a graceful
restart keeps the program and its pipe: unlike Apache, which starts new log programs each
generation, no line of a still-working old worker is cut off).  Users take a *handle*
(``open_handle``: a dup of the write end that they own and close with ``os.close``); the
maintenance notices closed handles, and a program whose handles are all closed gets EOF (its
pipe ends are closed) and exits.

Log ids (module "core"): HP07101 error (a log program exited; restarting), HP07102 notice (a
log program restarted), HP07103 error (a log program cannot be started again).
"""
from __future__ import annotations

import os
import shlex
import signal
import threading
import time

from httpd_py import logids

MOD = "core"
#: a program that ran at least this long before dying is restarted at once
STEADY = 10.0
MAX_BACKOFF = 60.0
_SIGNALS_TO_RESET = tuple(getattr(signal, n) for n in (
    "SIGPIPE", "SIGXFSZ", "SIGTTIN", "SIGTTOU", "SIGHUP", "SIGINT", "SIGTERM", "SIGUSR1",
    "SIGWINCH", "SIGCHLD", "SIGQUIT") if hasattr(signal, n))


def parse(target: str) -> tuple[list[str], str]:
    """A piped-log target -> (argv, display command).  ValueError when it is not one or its
    command is empty / badly quoted."""
    if not target.startswith("|"):
        raise ValueError(f"not a piped log: {target!r}")
    cmd = target[1:]
    if cmd.startswith("|"):
        cmd = cmd[1:]
    if cmd.startswith("$"):
        cmd = cmd[1:].strip()
        if not cmd:
            raise ValueError("empty piped log command")
        return ["/bin/sh", "-c", cmd], cmd
    cmd = cmd.strip()
    try:
        argv = shlex.split(cmd)
    except ValueError as e:
        raise ValueError(f"piped log {cmd!r}: {e}") from None
    if not argv:
        raise ValueError("empty piped log command")
    return argv, cmd


class PipedLog:
    """One log program and its pipe (see the module docstring)."""

    def __init__(self, target: str):
        self.target = target
        self.argv, self.command = parse(target)
        self.read_fd, self.write_fd = os.pipe()          # non-inheritable (PEP 446)
        self.ino = os.fstat(self.write_fd).st_ino
        self.pid: int | None = None
        self.started = 0.0
        self.quick_deaths = 0
        self.restart_at: float | None = None             # monotonic, when dead
        self.restarts = 0
        self.handles: list[int] = []
        self.closed = False

    def spawn(self) -> int:
        """Start the program with the pipe's read end as stdin (OSError when it cannot)."""
        actions = [(os.POSIX_SPAWN_DUP2, self.read_fd, 0)]
        self.pid = os.posix_spawnp(self.argv[0], self.argv, os.environ, file_actions=actions,
                                   setsigmask=(), setsigdef=_SIGNALS_TO_RESET)
        self.started = time.monotonic()
        self.restart_at = None
        return self.pid

    def open_handle(self) -> int:
        fd = os.dup(self.write_fd)
        self.handles.append(fd)
        return fd

    def live_handles(self) -> int:
        """Drop handles their owner closed (or whose number now names something else)."""
        alive = []
        for fd in self.handles:
            try:
                if os.fstat(fd).st_ino == self.ino:
                    alive.append(fd)
            except OSError:
                pass
        self.handles = alive
        return len(alive)

    def close(self) -> None:
        """Close the pipe ends: the program reads what is left, gets EOF and exits."""
        self.closed = True
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


_lock = threading.Lock()
_logs: dict[str, PipedLog] = {}
_stopping = False


_error_log = None                 # set by httpd_py.log when it loads (bind): no import back


def bind(error_log) -> None:
    """The error log the piped-log manager reports to (log.py calls this at import)."""
    global _error_log
    _error_log = error_log


class _Stderr:
    """Until log.py binds the error log (never in a running server: log imports this module)."""

    def _w(self, module, ident, text, **_):
        import sys
        sys.stderr.write(f"[{module}] {ident}: {text}\n")

    error = notice = warn = info = debug = _w


def _log():
    return _error_log if _error_log is not None else _Stderr()


def open_handle(target: str) -> int:
    """A write descriptor for piped-log ``target`` (starting its program if none runs yet).

    In the master, before fork.  The caller owns the descriptor (``os.close`` it when done).
    Raises OSError (the program cannot be started) or ValueError (a malformed target).
    """
    with _lock:
        pl = _logs.get(target)
        if pl is None:
            pl = PipedLog(target)
            try:
                pl.spawn()
            except OSError:
                pl.close()
                raise
            _logs[target] = pl
        return pl.open_handle()


def reaped(pid: int, status: int) -> bool:
    """The master reaped ``pid``: if it was a log program, schedule its restart; True if ours."""
    with _lock:
        for pl in _logs.values():
            if pl.pid == pid:
                break
        else:
            return False
        pl.pid = None
        ran = time.monotonic() - pl.started
        pl.quick_deaths = 0 if ran >= STEADY else pl.quick_deaths + 1
        delay = 0.0 if pl.quick_deaths <= 1 else min(MAX_BACKOFF, 2.0 ** (pl.quick_deaths - 2))
        pl.restart_at = time.monotonic() + delay
        stopping = _stopping
    code = os.waitstatus_to_exitcode(status)
    how = f"signal {-code}" if code < 0 else f"status {code}"
    if not stopping and not pl.closed:
        _log().error(MOD, logids.PIPED_EXITED,
                     f"piped log program '{pl.command}' (pid {pid}) exited with "
                                     f"{how}; restarting" + (f" in {delay:g} s" if delay else ""))
    maintain()
    return True


def maintain() -> None:
    """Restart dead log programs that are due; close pipes nobody writes to any more.  Called
    by the master once a second and after each reap."""
    now = time.monotonic()
    started: list[PipedLog] = []
    failed: list[tuple[PipedLog, OSError]] = []
    with _lock:
        for target, pl in list(_logs.items()):
            if not pl.live_handles():
                pl.close()
                del _logs[target]
                continue
            if _stopping or pl.pid is not None or pl.restart_at is None or pl.restart_at > now:
                continue
            try:
                pl.spawn()
                pl.restarts += 1
                started.append(pl)
            except OSError as e:
                pl.quick_deaths += 1
                pl.restart_at = now + min(MAX_BACKOFF, 2.0 ** max(0, pl.quick_deaths - 2))
                failed.append((pl, e))
    for pl in started:
        _log().notice(MOD, logids.PIPED_RESTARTED,
                      f"piped log program '{pl.command}' restarted (pid {pl.pid})")
    for pl, e in failed:
        _log().error(MOD, logids.PIPED_RESTART_FAILED,
                     f"cannot restart piped log program '{pl.command}': "
                                     f"{e.strerror or e}")


def stop_restarting() -> None:
    """The server is stopping: log programs that die now stay dead."""
    global _stopping
    _stopping = True


def programs() -> dict[str, int | None]:
    """target -> pid of its program (None while it is down); for tests and -S style dumps."""
    with _lock:
        return {t: pl.pid for t, pl in _logs.items()}


