"""Supervision of the master's helper processes (the App's ``helpers()``: the stapling
service's background stapler).  The master owns the loop, the signals and the forks; this class
owns which helpers run, for which generation, and when a dead one comes back.

    start_generation(helpers, gen)   fork each (name, target) of the App's new generation
    start(name, target, gen)         fork one: signals reset, die with the master, drop
                                     privileges, run target (SIGTERM = stop); exit 0 / 1
    reaped(pid, code, ...)           the master's reap: a helper of the current generation that
                                     exits is restarted after 1, 2, 4 .. 60 s (reset once it ran
                                     HELPER_MAX_BACKOFF); True when ``pid`` was a helper
    start_due(now, gen)              the master's once-a-second tick: restarts that are due
    stop_generation(gen) / stop_all()  SIGTERM to a generation's helpers / to all of them
    pids()                           the live helper pids (the master's reclaim waits for them)

A fork the master puts off (``fork()`` raises ``ForkDeferred`` while a restart's loader thread
is inside a C library) is queued and retried in FORK_RETRY.

Piped loggers (``ErrorLog "|cmd"``, ``CustomLog "|cmd"``) are supervised processes of the same
kind: they get their own class beside this one, with the same four entry points (start a
generation's, reaped, start_due, stop), called from the same places in ``master.Master``
(``_start_generation_processes``, ``_reap``, the one-second tick, ``_stop_all``).
"""
from __future__ import annotations

import gc
import os
import signal
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from httpd_py import log, logids
from httpd_py.mpm import privileges
from httpd_py.mpm.process import die_with_parent

MOD = "mpm_prefork"
HELPER_MAX_BACKOFF = 60.0
FORK_RETRY = 0.02          # a fork put off by the loader thread is retried this soon


class ForkDeferred(Exception):
    """The master cannot fork right now (a restart's loader thread holds a C-library lock)."""


@dataclass
class HelperProc:
    name: str
    target: Callable[[], None]
    generation: int
    started: float
    failures: int = 0


@dataclass
class PendingHelper:
    name: str
    target: Callable[[], None]
    generation: int
    due: float
    failures: int


def signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


class HelperSupervisor:
    """The helper processes of a master (see the module docstring).

    ``fork()``: the master's fork (handled signals blocked; raises ``ForkDeferred``);
    ``creds()``: the current generation's credentials (privileges are dropped in the child).
    """

    def __init__(self, fork: Callable[[], int], creds: Callable[[], "privileges.Credentials | None"]):
        self._fork = fork
        self._creds = creds
        self.procs: dict[int, HelperProc] = {}
        self.pending: list[PendingHelper] = []

    # -- starting ------------------------------------------------------------------------------
    def start_generation(self, helpers: list[tuple[str, Callable[[], None]]], generation: int) -> None:
        for name, target in helpers:
            self.start(name, target, generation)

    def start(self, name: str, target: Callable[[], None], generation: int,
              failures: int = 0) -> None:
        master_pid = os.getpid()
        try:
            pid = self._fork()
        except ForkDeferred:
            self.pending.append(PendingHelper(name, target, generation,
                                              time.monotonic() + FORK_RETRY, failures))
            return
        except OSError as e:
            log.error_log.error(MOD, logids.MPM_FORK_FAILED,
                                f"fork: Unable to fork helper {name}: {e}")
            self.pending.append(PendingHelper(name, target, generation,
                                              time.monotonic() + 1.0, failures + 1))
            return
        if pid == 0:
            self._run_child(name, target, master_pid)
        self.procs[pid] = HelperProc(name, target, generation, time.monotonic(), failures)

    def _run_child(self, name: str, target: Callable[[], None], master_pid: int) -> "NoReturn":  # noqa: F821
        code = 1
        try:
            for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGWINCH, signal.SIGUSR1):
                signal.signal(sig, signal.SIG_IGN)
            for sig in (signal.SIGTERM, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            die_with_parent(master_pid)
            privileges.drop(self._creds())
            # as in workers: what the master built goes to the collector's permanent
            # generation, so a full collection here never walks (and copies) the master's heap
            gc.freeze()
            target()
            code = 0
        except BaseException as e:                                 # noqa: BLE001
            try:
                log.error_log.error(MOD, logids.MPM_HELPER_FAILED,
                                    f"helper {name} failed: {type(e).__name__}: {e}")
                log.error_log.debug(MOD, logids.MPM_HELPER_FAILED, traceback.format_exc())
            except BaseException:                                  # noqa: BLE001
                pass
        finally:
            os._exit(code)

    def start_due(self, now: float, generation: int) -> None:
        due = [p for p in self.pending if p.due <= now]
        self.pending = [p for p in self.pending if p.due > now]
        for p in due:
            if p.generation == generation:
                self.start(p.name, p.target, p.generation, p.failures)

    # -- reaping -------------------------------------------------------------------------------
    def reaped(self, pid: int, code: int, generation: int, restart: bool) -> bool:
        """``pid`` exited with ``code`` (waitstatus_to_exitcode); True when it was a helper.
        ``restart``: the server goes on (not stopping or halting), so a helper of the current
        generation comes back after its backoff."""
        helper = self.procs.pop(pid, None)
        if helper is None:
            return False
        if helper.generation != generation or not restart:
            return True
        ran = time.monotonic() - helper.started
        failures = 0 if ran > HELPER_MAX_BACKOFF else helper.failures + 1
        delay = min(HELPER_MAX_BACKOFF, 2.0 ** max(0, failures - 1))
        how = f"signal {signame(-code)}" if code < 0 else f"status {code}"
        log.error_log.error(MOD, logids.MPM_HELPER_FAILED, f"helper {helper.name} (pid {pid}) "
                            f"exited with {how}; restarting in {delay:g} s")
        self.pending.append(PendingHelper(helper.name, helper.target, helper.generation,
                                          time.monotonic() + delay, failures))
        return True

    # -- stopping ------------------------------------------------------------------------------
    def stop_generation(self, generation: int) -> None:
        """SIGTERM to the helpers of ``generation``; its queued restarts are dropped."""
        for pid, h in self.procs.items():
            if h.generation == generation:
                _kill(pid, signal.SIGTERM)
        self.pending = []

    def stop_all(self) -> None:
        for pid in self.procs:
            _kill(pid, signal.SIGTERM)
        self.pending = []

    def pids(self) -> list[int]:
        return list(self.procs)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
