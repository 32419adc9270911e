"""The prefork master: binds, forks, supervises, restarts.  It knows processes, sockets and
signals, nothing of TLS or HTTP (those live behind the ``App``).

Shape (gunicorn's arbiter for the loop, Apache's prefork for the behaviour)::

    setup():  app = load_app(); creds = resolve(User, Group); listeners = bind_all(Listen)
              app.before_fork(listeners); scoreboard (mmap, before any fork)
    serve():  signal handlers only append to a queue; set_wakeup_fd wakes the loop.
              fork StartServers workers and app.helpers(); PidFile; "resuming normal operations"
              loop: select(self-pipe, 1 s tick) -> reap (waitpid(-1, WNOHANG) until nothing
                    is left) -> act on queued signals -> commit a finished restart load ->
                    once a second: spare maintenance and due helper restarts
    restart:  HUP/USR1 start a loader thread: load_app(); resolve + bind (under the fork gate);
              before_fork.  The loop keeps reaping, replacing workers (old generation) and taking
              signals; when the thread ends it wakes the loop, which commits on the main thread
              (listeners swapped, old workers signalled, new ones forked) or logs HP01006.

Signals (as Apache): TERM/INT stop (workers die at once; TERM again at 3, 5, 7 s, KILL at 9 s);
HUP restart (fresh config, old workers get TERM); USR1 graceful restart (old workers finish their
connection); WINCH graceful stop (close listeners, wait for workers up to
GracefulShutdownTimeout, 0 = forever).  WINCH is taken with sigtimedwait at each wake-up (within
the 1 s tick): one sent by a process counts, one the kernel sends for a terminal resize is
ignored (Apache -DFOREGROUND stops when its terminal is resized).  A restart whose config does not load, bind or
before_fork keeps the old generation serving and logs HP01006.  A worker of the current
generation that exits with ``worker.BOOT_ERROR`` halts the server (exit status 1): respawning a
worker that cannot start would loop forever.

Why a thread and not a forked loader: the generation a load builds (TLS contexts, the stapling
service, open logs, sockets) must live in the master that forks the workers; a loader process
could only hand back bytes.  The thread only builds objects, and every fork stays on the main
thread.  Forking while another thread runs is safe for the child unless that thread holds a lock
the child will need.  Python's own locks (import, threading, logging) are reset at fork; the
ErrorLog has none (the child gets its generation's ErrorLog setting back, since a loading
before_fork may have pointed it at the new file).  What is left are C libraries called with the
GIL released: OpenSSL (pyOpenSSL's cffi calls, ssl, hashlib, our tls/) and glibc's resolver and
NSS.  Holding the GIL, the master sees each thread's innermost Python frame; a thread inside one
of those calls (``fork_hazard``), or the loader inside the fork gate (privileges.resolve and
bind_all), puts the fork off by FORK_RETRY.  The stapling prefetch spends its time waiting on
sockets, where forking is safe.  A stop during a load waits for the thread (up to
LOADER_STOP_WAIT) and shuts the unused generation down; a restart asked during a load runs
after it (as Apache, whose master takes it after its blocking load).

Spare maintenance (Apache's perform_idle_server_maintenance): idle = current-generation workers
whose slot says starting or idle.  More than MaxSpareServers: one idle worker is told to stop
(SIGUSR1).  Fewer than MinSpareServers: spawn ``rate`` workers (rate 1, doubling each second the
shortage persists, up to 32; reset when satisfied), never past MaxSpareServers idle, never into
more than MaxRequestWorkers slots (old-generation workers still hold theirs: HP01008 once).
Unlike Apache, a burst never overshoots MaxSpareServers, so it cannot cause kill/spawn churn,
and a worker lost unexpectedly (crash, SIGKILL, MaxConnectionsPerChild) triggers the maintenance
at once (at most every REFILL_INTERVAL) instead of at the next one-second tick.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from httpd_py import log, logids, piped
from httpd_py.errors import HttpdError, StartupError
from httpd_py.mpm import pidfile, privileges
from httpd_py.mpm.helpers import FORK_RETRY, ForkDeferred, HelperSupervisor, signame
from httpd_py.mpm.listeners import Listener, bind_all
from httpd_py.mpm.process import Janitor
from httpd_py.mpm.scoreboard import IDLE, STARTING, STATE_LETTERS, STATE_NAMES, Pressure, Scoreboard
from httpd_py.mpm.worker import BOOT_ERROR, Worker, run_in_child

MOD = "mpm_prefork"
MAX_SPAWN_RATE = 32
REFILL_INTERVAL = 0.2
LOADER_STOP_WAIT = 30.0    # a stop waits this long for a running restart's load to finish
PRESSURE_REARM = 10.0      # a queue-pressure episode ends after this long without pressure
_TCP_INFO_UNACKED = 24     # struct tcp_info: tcpi_unacked, the accept queue of a LISTEN socket
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGWINCH,
            signal.SIGCHLD)
_SIG_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGWINCH)


@dataclass
class WorkerProc:
    pid: int
    slot: int
    generation: int
    stopping: bool = False


@dataclass
class _Prepared:
    """A generation bound and ``before_fork``-ed, not yet current."""
    app: object
    creds: "privileges.Credentials | None"
    listeners: list[Listener]
    fresh: list[Listener]


class _Loader:
    """One restart's configuration load (``load_app`` + bind + ``before_fork``) on a thread.

    The thread only builds objects; the main loop keeps reaping, replacing workers and taking
    signals meanwhile, and commits the result (or logs HP01006) once the thread has ended.
    """

    def __init__(self, master: "Master", graceful: bool):
        self.master = master
        self.graceful = graceful
        self.started = time.monotonic()
        self.prepared: _Prepared | None = None
        self.error: BaseException | None = None
        self.forks = 0                   # workers and helpers forked while it ran
        self.deferred = 0                # forks put off because the thread was in a C library
        self.thread = threading.Thread(target=self._run, name="httpd-config-loader", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            app = self.master.load_app()
            self.prepared = self.master._prepare_generation(app)
        except BaseException as e:                                # noqa: BLE001
            self.error = e
        finally:
            try:
                os.write(self.master._wake_w, b"L")             # wake the loop
            except OSError:
                pass

    def done(self) -> bool:
        return not self.thread.is_alive()


_hazard_prefixes: tuple[str, ...] | None = None
# Calls that release the GIL inside glibc's resolver (its locks are not reset in a child).
_HAZARD_CALLS = frozenset({"getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
                           "getnameinfo", "getfqdn"})


def _hazard_paths() -> tuple[str, ...]:
    """Where Python code calls into OpenSSL with the GIL released (pyOpenSSL's cffi calls, the
    ssl and hashlib modules, our own tls/ package): a thread inside may hold an OpenSSL lock."""
    global _hazard_prefixes
    if _hazard_prefixes is None:
        import importlib.util
        out = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tls")
               + os.sep]
        for name in ("OpenSSL", "cryptography", "cffi", "ssl", "hashlib"):
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            if spec is None or not spec.origin:
                continue
            if spec.submodule_search_locations:
                out.append(os.path.dirname(spec.origin) + os.sep)
            else:
                out.append(spec.origin)
        _hazard_prefixes = tuple(out)
    return _hazard_prefixes


def fork_hazard() -> str | None:
    """Why forking now could leave a lock held forever in the child, or None.

    The caller holds the GIL, so every other thread is either between two bytecodes (it holds
    no C lock then) or inside a C call that released the GIL.  Such a call can only be reached
    from Python, so the thread's innermost Python frame names it: a frame in a package that
    calls OpenSSL without the GIL, or in a resolver call, is a hazard.
    """
    me = threading.get_ident()
    paths = _hazard_paths()
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        code = frame.f_code
        if code.co_filename.startswith(paths) or code.co_name in _HAZARD_CALLS:
            return f"{code.co_name} ({code.co_filename}:{frame.f_lineno})"
    return None


_ForkDeferred = ForkDeferred    # not now: the restart's loader thread might hold a lock
_signame = signame


class Master:
    """Run a prefork server for the Apps ``load_app()`` builds.

    ``scoreboard_path``: back the scoreboard with this file (readable from outside), or None for
    anonymous shared memory.  ``write_pidfile``: manage ``config.pid_file``.
    """

    def __init__(self, load_app: Callable[[], object], *, scoreboard_path: str | None = None,
                 write_pidfile: bool = True, server_name: str = "httpd-py"):
        self.load_app = load_app
        self.scoreboard_path = scoreboard_path
        self.write_pidfile = write_pidfile
        self.server_name = server_name
        self.app = None
        self.generation = 0
        self.listeners: list[Listener] = []
        self.creds: privileges.Credentials | None = None
        self.board: Scoreboard | None = None
        self.workers: dict[int, WorkerProc] = {}
        # helper processes (the App's helpers()); piped loggers get a supervisor beside it
        self.helpers = HelperSupervisor(self._fork, lambda: self.creds)
        self.sig_queue: list[int] = []
        self.spawn_rate = 1
        self.maxed_logged = False
        self.halt_reason: str | None = None
        self.stopping = False
        self._refill = False
        self._last_refill = 0.0
        self.pid_file: str | None = None
        self._wake_r = self._wake_w = -1
        self.loader: _Loader | None = None
        self._restart_pending: bool | None = None      # graceful flag of a restart asked mid-load
        self._fork_gate = threading.Lock()             # the loader binds under it; forks take it
        self._log_state: tuple | None = None           # the current generation's ErrorLog setting
        self._pressure = Pressure()                    # what the scoreboard header shows
        self._pressure_seen = 0.0                      # monotonic: last check under pressure
        self._pressure_logged = False                  # HP01029 written for this episode

    # ------------------------------------------------------------------------------------------
    # setup: everything that can fail with a message on the terminal, before any detaching
    # ------------------------------------------------------------------------------------------
    def setup(self, app=None) -> None:
        """Load the first generation: config, credentials, listeners, before_fork, scoreboard.

        ``app``: an App already loaded (by ``-k`` handling), else ``load_app()`` is called.
        Raises HttpdError (ConfigError, StartupError) with a printable message.
        """
        app = self.load_app() if app is None else app
        self._install_generation(app)
        slots = max(1, app.config.prefork.server_limit)
        self.board = Scoreboard(slots, self.scoreboard_path)

    def _install_generation(self, app) -> None:
        """Bind and prepare ``app``; on success it becomes the current generation."""
        self._commit_generation(self._prepare_generation(app))

    def _prepare_generation(self, app) -> "_Prepared":
        """Resolve, bind and ``before_fork`` a new generation without installing it.

        Runs on the loader thread during a restart, so it changes no state of the master.
        Resolving and binding hold the fork gate: no worker forks while glibc's NSS or a
        half-done bind_all could be copied into it.  A worker forked later shares the fresh
        listeners; if the generation fails they are shut down for every process (unlisten).
        """
        cfg = app.config
        with self._fork_gate:
            creds = privileges.resolve(cfg.user, cfg.group)
            keep = {lst.key: lst for lst in self.listeners}
            listeners = bind_all(cfg.listens, cfg.prefork.listen_backlog, keep)
            fresh = [lst for lst in listeners if lst.key not in keep]
        try:
            app.before_fork(listeners)
        except HttpdError:
            self._drop_unborn(fresh)
            raise
        except Exception as e:                                    # noqa: BLE001
            self._drop_unborn(fresh)
            log.error_log.debug(MOD, logids.MPM_BEFORE_FORK_TRACEBACK, traceback.format_exc())
            raise StartupError(f"{type(e).__name__}: {e}") from e
        except BaseException:
            self._drop_unborn(fresh)
            raise
        return _Prepared(app, creds, listeners, fresh)

    def _drop_unborn(self, fresh: list[Listener]) -> None:
        # unlisten: a worker forked during the load shares these sockets
        for lst in fresh:
            lst.close(unlisten=True)

    def _commit_generation(self, prepared: "_Prepared") -> None:
        """Make a prepared generation current (main thread, no fork in between)."""
        app, creds, listeners = prepared.app, prepared.creds, prepared.listeners
        cfg = app.config
        kept = {lst.key for lst in listeners}
        for lst in self.listeners:
            if lst.key not in kept:
                lst.close(unlisten=True)
        self.listeners = listeners
        self.app = app
        self._log_state = log.error_log.snapshot()
        creds_changed = creds != self.creds or self.generation == 0
        self.creds = creds
        self.generation += 1
        self.pid_file = cfg.pid_file
        if self.board is not None:
            self.board.set_generation(self.generation)
            if cfg.prefork.server_limit != len(self.board.slots):
                # the scoreboard was sized at start (Apache: AH00179)
                log.error_log.warn(MOD, logids.MPM_SERVER_LIMIT_CHANGED,
                                   f"changing ServerLimit to {cfg.prefork.server_limit} from "
                                   f"{len(self.board.slots)} is not allowed during restart; "
                                   f"keeping {len(self.board.slots)}")
        if not creds_changed:
            pass
        elif creds is not None and creds.implicit:
            log.error_log.notice(MOD, logids.MPM_DEFAULT_USER,
                                 f"no User configured: workers run as {creds.user} "
                                 f"(uid {creds.uid}, gid {creds.gid})")
        elif creds is not None and creds.uid == 0:
            log.error_log.warn(MOD, logids.MPM_USER_ROOT, "User root: workers keep root privileges")

    # ------------------------------------------------------------------------------------------
    # serve: the main loop
    # ------------------------------------------------------------------------------------------
    def serve(self, on_ready: Callable[[], None] | None = None) -> int:
        """Run until stopped; returns the process exit status (0, or 1 after a halt)."""
        assert self.app is not None and self.board is not None, "setup() first"
        self.board.set_generation(self.generation)
        self._install_signals()
        try:
            self._start_generation_processes()
            if self.write_pidfile and self.pid_file:
                pidfile.write(self.pid_file)
            log.error_log.notice(MOD, logids.MPM_RESUMING,
                                 f"{self.server_name} configured -- resuming normal operations")
            if on_ready is not None:
                on_ready()
            return self._loop()
        finally:
            self._cleanup()

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in _HANDLED:
            signal.signal(sig, self._record_signal)
        # SIGWINCH stays blocked and is collected with sigtimedwait, which tells who sent it: a
        # terminal resize (SI_KERNEL) must not gracefully stop a -DFOREGROUND server, as it
        # does Apache's; `kill -WINCH` / `-k graceful-stop` (SI_USER) does.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGWINCH})
        for sig in (signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)

    def _collect_winch(self) -> None:
        while True:
            try:
                info = signal.sigtimedwait({signal.SIGWINCH}, 0)
            except InterruptedError:
                continue
            if info is None:
                return
            if info.si_code <= 0:              # SI_USER, SI_QUEUE, SI_TKILL: someone sent it
                self.sig_queue.append(signal.SIGWINCH)
            else:
                log.error_log.debug(MOD, logids.MPM_WINCH_IGNORED,
                                    "SIGWINCH from the terminal ignored")

    def _record_signal(self, signum, frame) -> None:
        # Handlers only record; the loop acts (SIGCHLD just wakes the loop, which reaps).
        if signum != signal.SIGCHLD and len(self.sig_queue) < 16:
            self.sig_queue.append(signum)

    def _sleep(self, timeout: float) -> None:
        if self._refill:
            timeout = min(timeout, max(0.0, self._last_refill + REFILL_INTERVAL - time.monotonic()))
        try:
            ready, _, _ = select.select([self._wake_r], [], [], max(0.0, timeout))
        except InterruptedError:
            return
        if ready:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass

    def _loop(self) -> int:
        next_tick = time.monotonic() + 1.0
        while True:
            self._sleep(next_tick - time.monotonic())
            self._reap()
            if self.halt_reason:
                log.error_log.emerg(MOD, logids.MPM_HALT, f"{self.halt_reason}; shutting down")
                self._stop_all(graceful=False)
                return 1
            self._collect_winch()
            while self.sig_queue:
                sig = self.sig_queue.pop(0)
                if sig in (signal.SIGTERM, signal.SIGINT):
                    log.error_log.notice(MOD, logids.MPM_SHUTDOWN,
                                         f"caught {_SIG_NAMES[sig]}, shutting down")
                    self._stop_all(graceful=False)
                    return 0
                if sig == signal.SIGWINCH:
                    log.error_log.notice(MOD, logids.MPM_GRACEFUL_STOP,
                                         "caught SIGWINCH, shutting down gracefully")
                    self._stop_all(graceful=True)
                    return 0
                if sig == signal.SIGHUP:
                    log.error_log.notice(MOD, logids.MPM_RESTART,
                                         "SIGHUP received.  Attempting to restart")
                    self._restart(graceful=False)
                elif sig == signal.SIGUSR1:
                    log.error_log.notice(MOD, logids.MPM_GRACEFUL_RESTART,
                                         "Graceful restart requested, doing restart")
                    self._restart(graceful=True)
            if self.loader is not None and self.loader.done():
                self._finish_restart()
            now = time.monotonic()
            if now >= next_tick:
                self._maintain()
                self._check_pressure(now)
                self.helpers.start_due(now, self.generation)
                piped.maintain()
                next_tick = now + 1.0
                self._refill = False
            elif self._refill and now - self._last_refill >= REFILL_INTERVAL:
                # Apache waits for the next second; a lost worker is replaced at once here
                # (at most every REFILL_INTERVAL, so a crashing worker cannot spin the master).
                self._refill = False
                self._last_refill = now
                self._maintain()

    # ------------------------------------------------------------------------------------------
    # processes
    # ------------------------------------------------------------------------------------------
    def _fork(self) -> int:
        """fork() with the handled signals blocked, so the child resets them before any arrives.

        While a restart's loader thread runs, a fork is put off (``_ForkDeferred``) when the
        thread could hold a lock the child would inherit held: inside the fork gate (NSS,
        binding) or inside a C library call (``fork_hazard``).
        """
        if not self._fork_gate.acquire(blocking=False):
            raise _ForkDeferred("the restart is binding its listeners")
        try:
            loading = self.loader is not None and not self.loader.done()
            if loading:
                hazard = fork_hazard()
                if hazard is not None:
                    self.loader.deferred += 1
                    if self.loader.deferred == 1 or self.loader.deferred % 500 == 0:
                        log.error_log.debug(MOD, logids.MPM_FORK_DEFERRED,
                                            f"fork put off while the restart loads "
                                            f"({self.loader.deferred}x): a thread is in {hazard}")
                    raise _ForkDeferred(hazard)
            old = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
            try:
                pid = os.fork()
            except OSError:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
                raise
            if pid == 0:
                # the child: drop the master's loop state before anything can run
                signal.set_wakeup_fd(-1)
                for fd in (self._wake_r, self._wake_w):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                self.sig_queue = []
                self.loader = None
                if self._log_state is not None:
                    # a loading generation may have pointed the ErrorLog at its own file
                    log.error_log.restore(self._log_state)
                return 0
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
            if loading:
                self.loader.forks += 1
            return pid
        finally:
            self._fork_gate.release()

    def _free_slots(self) -> list[int]:
        limit = min(len(self.board.slots), max(1, self.app.config.prefork.max_request_workers))
        used = {w.slot for w in self.workers.values()}
        return [i for i in range(limit) if i not in used]

    def _spawn_worker(self, slot_index: int) -> int | None:
        slot = self.board.slots[slot_index]
        master_pid = os.getpid()
        slot.claim(0, self.generation)
        try:
            pid = self._fork()
        except _ForkDeferred:
            slot.release()
            self._retry_forks_soon()
            return None
        except OSError as e:
            slot.release()
            log.error_log.error(MOD, logids.MPM_FORK_FAILED,
                                f"fork: Unable to fork new process: {e}")
            return None
        if pid == 0:
            try:
                slot.set_pid(os.getpid())
                worker = Worker(self.app, self.listeners, slot, self.creds, master_pid,
                                self.app.config.prefork.max_connections_per_child)
                worker.install_signals()
                signal.pthread_sigmask(signal.SIG_SETMASK, set())
            except BaseException:                                  # noqa: BLE001
                os._exit(BOOT_ERROR)
            run_in_child(worker)
        slot.set_pid(pid)
        self.workers[pid] = WorkerProc(pid, slot_index, self.generation)
        return pid

    def _spawn_workers(self, n: int) -> int:
        started = 0
        for slot_index in self._free_slots()[:max(0, n)]:
            if self._spawn_worker(slot_index) is None:
                break
            started += 1
        return started

    def _retry_forks_soon(self) -> None:
        """A fork was put off: run the refill maintenance again in FORK_RETRY."""
        self._refill = True
        self._last_refill = time.monotonic() - REFILL_INTERVAL + FORK_RETRY

    def _start_generation_processes(self) -> None:
        pf = self.app.config.prefork
        self.spawn_rate = 1
        self.maxed_logged = False
        self._pressure_logged = False       # once per generation and episode
        self._spawn_workers(max(1, pf.start_servers))
        try:
            helpers = list(self.app.helpers())
        except Exception as e:                                    # noqa: BLE001
            log.error_log.error(MOD, logids.MPM_HELPERS_UNLISTED,
                                f"cannot list helpers: {type(e).__name__}: {e}")
            helpers = []
        self.helpers.start_generation(helpers, self.generation)

    def _reap(self) -> None:
        # a stop already on its way (SIGTERM to the whole process group, as systemd's
        # control-group kill sends it, reaches the children first): their exits are the stop,
        # not failures to log and restart
        ending = self.stopping or any(s in _STOP_SIGNALS for s in self.sig_queue)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if piped.reaped(pid, status):     # a piped log's program: restarted at once
                continue
            code = os.waitstatus_to_exitcode(status)
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self.board.slots[worker.slot].release()
                if worker.generation == self.generation and not worker.stopping:
                    self._refill = True     # a crash or MaxConnectionsPerChild: refill early
                if code == BOOT_ERROR and worker.generation == self.generation:
                    self.halt_reason = f"worker pid {pid} failed to boot (exit status {code})"
                elif code < 0 and not ((worker.stopping or ending) and -code in (signal.SIGTERM,
                                                                                   signal.SIGUSR1)):
                    log.error_log.notice(MOD, logids.MPM_CHILD_EXITED,
                                         f"child pid {pid} exit signal {_signame(-code)} ({-code})")
                elif code > 0:
                    log.error_log.notice(MOD, logids.MPM_CHILD_EXITED,
                                         f"child pid {pid} exited with status {code}")
                continue
            self.helpers.reaped(pid, code, self.generation,
                                restart=not self.halt_reason and not ending)

    # ------------------------------------------------------------------------------------------
    # maintenance
    # ------------------------------------------------------------------------------------------
    def _current(self) -> list[WorkerProc]:
        return [w for w in self.workers.values()
                if w.generation == self.generation and not w.stopping]

    def idle_workers(self) -> list[WorkerProc]:
        out = []
        for w in self._current():
            state = self.board.mm[self.board.slots[w.slot].offset + 8]
            if state in (STARTING, IDLE):
                out.append(w)
        return out

    def _maintain(self) -> None:
        pf = self.app.config.prefork
        min_spare = max(1, pf.min_spare_servers)
        max_spare = max(min_spare + 1, pf.max_spare_servers)
        idle = self.idle_workers()
        if len(idle) > max_spare:
            # Apache asks the highest idle slot to go (via its pod); ours is a SIGUSR1.
            victim = max(idle, key=lambda w: w.slot)
            victim.stopping = True
            self._signal(victim.pid, signal.SIGUSR1)
            self.spawn_rate = 1
        elif len(idle) < min_spare:
            free = self._free_slots()
            if not free:
                if not self.maxed_logged:
                    log.error_log.error(MOD, logids.MPM_MAX_REQUEST_WORKERS,
                                        "server reached MaxRequestWorkers setting, consider "
                                        "raising the MaxRequestWorkers setting")
                    self.maxed_logged = True
                self.spawn_rate = 1
                return
            n = min(self.spawn_rate, len(free), max_spare - len(idle))
            if self.spawn_rate >= 8:
                log.error_log.info(MOD, logids.MPM_SPAWNING,
                                   f"server seems busy, (you may need to increase StartServers, "
                                   f"or Min/MaxSpareServers), spawning {n} children, there are "
                                   f"{len(idle)} idle, and {len(self._current())} total children")
            self._spawn_workers(n)
            self.spawn_rate = min(MAX_SPAWN_RATE, self.spawn_rate * 2)
        else:
            self.spawn_rate = 1

    def queued_connections(self) -> int:
        """Connections waiting in the listeners' accept queues (Linux: tcp_info of a LISTEN
        socket reports its accept-queue length as tcpi_unacked); 1 when one is only readable."""
        total = 0
        for lst in self.listeners:
            try:
                info = lst.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
                total += struct.unpack_from("<I", info, _TCP_INFO_UNACKED)[0]
            except (OSError, struct.error, AttributeError):
                try:
                    total += bool(select.select([lst.sock], [], [], 0)[0])
                except (OSError, ValueError):
                    pass
        return total

    def _check_pressure(self, now: float) -> None:
        """Every worker busy and connections queued: HP01029 once per generation and episode,
        with the scoreboard's picture; the header shows busy_since/queued (see scoreboard)."""
        saturated = not self._free_slots() and not self.idle_workers()
        queued = self.queued_connections() if saturated else 0
        p = self._pressure
        if saturated and queued:
            self._pressure_seen = now
            if not p.busy_since:
                p = Pressure(time.time(), queued, queued, p.episodes + 1)
            else:
                p = Pressure(p.busy_since, queued, max(p.queued_peak, queued), p.episodes)
            self._set_pressure(p)
            if not self._pressure_logged:
                self._pressure_logged = True
                log.error_log.error(MOD, logids.MPM_QUEUE_PRESSURE, self._pressure_picture(queued))
        elif p.busy_since and now - self._pressure_seen >= PRESSURE_REARM:
            took = time.time() - p.busy_since - (now - self._pressure_seen)
            log.error_log.info(MOD, logids.MPM_QUEUE_PRESSURE_OVER,
                               f"no connection queued for {PRESSURE_REARM:g} s: every worker was "
                               f"busy with connections waiting for {max(0.0, took):.1f} s, "
                               f"at most {p.queued_peak} queued")
            self._set_pressure(Pressure(0.0, 0, 0, p.episodes))
            self._pressure_logged = False
        elif p.busy_since and p.queued:
            self._set_pressure(Pressure(p.busy_since, 0, p.queued_peak, p.episodes))

    def _set_pressure(self, p: Pressure) -> None:
        self._pressure = p
        self.board.set_pressure(p)

    def _pressure_picture(self, queued: int) -> str:
        """Apache's AH00161 with the scoreboard: state letters counted, the oldest requests."""
        infos = [self.board.slots[w.slot].read() for w in self.workers.values()]
        counts: dict[str, int] = {}
        for i in infos:
            letter = STATE_LETTERS[STATE_NAMES.index(i.state)]
            counts[letter] = counts.get(letter, 0) + 1
        picture = " ".join(f"{k}={counts.get(k, 0)}" for k in "RWKC_S" if counts.get(k) or k == "_")
        now = time.time()
        oldest = sorted((i for i in infos if i.state not in ("idle", "starting", "dead")),
                        key=lambda i: i.last_used)[:3]
        lines = "; ".join(f"pid {i.pid} {i.state} {now - i.last_used:.1f} s "
                          f"\"{i.request[:80]}\"" for i in oldest)
        return (f"server reached MaxRequestWorkers setting, consider raising the "
                f"MaxRequestWorkers setting: all {len(infos)} workers busy, {queued} "
                f"connection(s) queued ({picture}); oldest: {lines or '-'}")

    # ------------------------------------------------------------------------------------------
    # restart and stop
    # ------------------------------------------------------------------------------------------
    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _restart(self, graceful: bool) -> None:
        """Start loading the next generation on the loader thread (the loop commits it)."""
        if self.loader is not None:
            # Apache would take this signal after its (blocking) load: one more restart follows
            self._restart_pending = graceful and (self._restart_pending is not False)
            log.error_log.info(MOD, logids.MPM_RESTART_QUEUED, "a restart is already loading the "
                               "configuration; another one follows it")
            return
        self.loader = _Loader(self, graceful)
        self.loader.start()

    def _finish_restart(self) -> None:
        """The loader thread ended: commit its generation, or keep the old one (HP01006)."""
        loader, self.loader = self.loader, None
        loader.thread.join()
        took = time.monotonic() - loader.started
        if loader.prepared is None:
            e = loader.error
            msg = str(e).replace("\n", " ") if e is not None else "the load did not finish"
            log.error_log.error(MOD, logids.MPM_RESTART_FAILED,
                                f"restart failed, the old configuration keeps serving: {msg}")
        else:
            self._switch_generation(loader.prepared, loader.graceful)
        log.error_log.info(MOD, logids.MPM_LOAD_DONE,
                           f"configuration loaded in {took:.3f} s; meanwhile {loader.forks} "
                           f"processes were forked ({loader.deferred} forks put off)")
        pending, self._restart_pending = self._restart_pending, None
        if pending is not None:
            self._restart(pending)

    def _abandon_load(self) -> None:
        """Stopping while a restart loads: wait for the thread, then undo what it built."""
        loader, self.loader = self.loader, None
        self._restart_pending = None
        if loader is None:
            return
        loader.thread.join(LOADER_STOP_WAIT)
        if loader.thread.is_alive():
            log.error_log.error(MOD, logids.MPM_LOAD_ABANDONED, f"the restart's configuration load "
                                f"did not end within {LOADER_STOP_WAIT:g} s; stopping without it")
            return
        if loader.prepared is not None:
            self._drop_unborn(loader.prepared.fresh)
            try:
                loader.prepared.app.shutdown(False)
            except Exception as e:                                # noqa: BLE001
                log.error_log.error(MOD, logids.MPM_APP_SHUTDOWN_FAILED,
                                    f"shutting down the unused generation: {e}")

    def _switch_generation(self, prepared: _Prepared, graceful: bool) -> None:
        old_app, old_gen, old_pid_file = self.app, self.generation, self.pid_file
        self._commit_generation(prepared)
        if self.write_pidfile and self.pid_file != old_pid_file:
            try:
                if old_pid_file:
                    pidfile.remove(old_pid_file)
                if self.pid_file:
                    pidfile.write(self.pid_file)
            except OSError as e:
                log.error_log.error(MOD, logids.MPM_PIDFILE_FAILED, f"PidFile {self.pid_file}: {e}")
        for w in self.workers.values():
            if w.generation == old_gen:
                w.stopping = True
                self._signal(w.pid, signal.SIGUSR1 if graceful else signal.SIGTERM)
        self.helpers.stop_generation(old_gen)
        try:
            old_app.shutdown(graceful)
        except Exception as e:                                    # noqa: BLE001
            log.error_log.error(MOD, logids.MPM_APP_SHUTDOWN_FAILED,
                                f"shutting down the old generation: {e}")
        self._start_generation_processes()
        log.error_log.notice(MOD, logids.MPM_RESUMING,
                             f"{self.server_name} configured -- resuming normal operations")

    def _children(self) -> list[int]:
        return [*self.workers, *self.helpers.pids()]

    def _stop_all(self, graceful: bool) -> None:
        self.stopping = True
        piped.stop_restarting()
        for w in self.workers.values():
            w.stopping = True          # their exit on our signal is not news
        for lst in self.listeners:
            lst.close(unlisten=True)
        self.listeners = []
        self.helpers.stop_all()
        if graceful:
            for w in self.workers.values():
                w.stopping = True
                self._signal(w.pid, signal.SIGUSR1)
            timeout = self.app.config.prefork.graceful_shutdown_timeout
            deadline = time.monotonic() + timeout if timeout > 0 else None
            while self.workers and (deadline is None or time.monotonic() < deadline):
                self._sleep(1.0 if deadline is None else min(1.0, deadline - time.monotonic()))
                self._reap()
                if any(s in (signal.SIGTERM, signal.SIGINT) for s in self.sig_queue):
                    break
            self.sig_queue = []
        self._reclaim()
        self._abandon_load()
        try:
            self.app.shutdown(graceful, final=True)
        except Exception as e:                                    # noqa: BLE001
            log.error_log.error(MOD, logids.MPM_APP_SHUTDOWN_FAILED,
                                f"shutdown: {type(e).__name__}: {e}")

    def _reclaim(self) -> None:
        """Apache's reclaim_child_processes: TERM now and at 3, 5, 7 s, KILL at 9 s, give up at 10."""
        start = time.monotonic()
        schedule = [(0.0, signal.SIGTERM), (3.0, signal.SIGTERM), (5.0, signal.SIGTERM),
                    (7.0, signal.SIGTERM), (9.0, signal.SIGKILL), (10.0, None)]
        self._reap()
        for at, sig in schedule:
            while self._children() and time.monotonic() - start < at:
                self._sleep(at - (time.monotonic() - start))
                self._reap()
            if not self._children():
                return
            if sig is None:
                log.error_log.error(MOD, logids.MPM_CHILDREN_STUCK,
                                    f"could not make child processes {self._children()} exit")
                return
            if sig == signal.SIGKILL:
                log.error_log.error(MOD, logids.MPM_CHILDREN_STUCK,
                                    f"child processes {self._children()} still did not exit, "
                                    "sending a SIGKILL")
            for pid in self._children():
                self._signal(pid, sig)

    def discard(self) -> None:
        """A setup interrupted (Ctrl-C during the load, e.g. a slow stapling prefetch): undo
        what it made (the generation's lock files, the scoreboard, the PidFile, listeners)."""
        if self.app is not None:
            try:
                self.app.shutdown(False, final=True)
            except Exception:                                     # noqa: BLE001
                pass
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGWINCH})
        except (OSError, ValueError):
            pass
        if self.write_pidfile and self.pid_file:
            pidfile.remove(self.pid_file)
        if self.board is not None:
            self.board.close(unlink=True)
        for lst in self.listeners:
            lst.close()
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:
            pass
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    # ------------------------------------------------------------------------------------------
    # -X: one process, no fork
    # ------------------------------------------------------------------------------------------
    def serve_single(self, on_ready: Callable[[], None] | None = None) -> int:
        """-X: serve in this process (no workers, no fork); helpers run as daemon threads.

        TERM and INT stop after the current connection; restarts are not supported here.
        """
        assert self.app is not None and self.board is not None, "setup() first"
        slot = self.board.slots[0]
        slot.claim(os.getpid(), self.generation)
        worker = Worker(self.app, self.listeners, slot, self.creds, os.getppid(), 0)
        if self.write_pidfile and self.pid_file:
            pidfile.write(self.pid_file)
        janitor = None
        try:
            worker.install_signals()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, worker.request_stop)
            try:
                self.app.single_process()
                if self.creds is not None and self.creds.uid != 0 and os.geteuid() == 0:
                    # after the drop this process cannot remove its PidFile and scoreboard
                    janitor = Janitor([p for p in (self.pid_file if self.write_pidfile else None,
                                                   self.board.path) if p])
                privileges.drop(self.creds)
                self.app.child_init()
            except Exception as e:                                # noqa: BLE001
                log.error_log.emerg(MOD, logids.MPM_BOOT_FAILED,
                                    f"failed to boot: {type(e).__name__}: {e}")
                return 1
            for name, target in self.app.helpers():
                threading.Thread(target=target, name=name, daemon=True).start()
            log.error_log.notice(MOD, logids.MPM_RESUMING,
                                 f"{self.server_name} configured -- resuming normal operations")
            if on_ready is not None:
                on_ready()
            return worker.run(boot=False)
        finally:
            try:
                self.app.shutdown(False, final=True)
            except Exception:                                     # noqa: BLE001
                pass
            try:
                self._cleanup()
            except OSError:
                pass
            if janitor is not None:
                janitor.finish()
