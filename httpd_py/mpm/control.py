"""``-k start|stop|restart|graceful|graceful-stop`` through the PidFile, and detaching.

``run(load_app, action, foreground=, single_process=)`` is what ``httpd_py.server.run`` calls
(with ``load_app`` building the real App) and what the mpm tests call with a test App.

- The configuration is always loaded first, so ``-k graceful`` or ``-k restart`` with a broken
  config prints the error and signals nothing (as ``apachectl graceful``).
- ``start``: "httpd-py (pid N) already running" (status 0) when the PidFile names a live
  process.  Otherwise bind, open logs and build everything (errors go to the terminal, status
  1), then detach: double fork, setsid, chdir /, stdio to /dev/null.  The command returns once
  the detached master serves (its PidFile written), so ``httpd-py -k start && curl ...`` works.
  ``foreground`` (-DFOREGROUND) keeps the master in front; ``single_process`` (-X) serves in
  this one process.
- ``stop`` (TERM), ``graceful-stop`` (WINCH): "httpd-py (no pid file) not running" or
  "httpd-py (pid N?) not running" when there is nothing to signal (status 0, as Apache).
- ``restart`` (HUP), ``graceful`` (USR1): "httpd-py not running, trying to start" and a start
  when nothing runs.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Callable

from httpd_py.errors import HttpdError
from httpd_py.mpm import pidfile
from httpd_py.mpm.master import Master

ACTIONS = ("start", "stop", "restart", "graceful", "graceful-stop")
_SIGNALS = {"stop": signal.SIGTERM, "graceful-stop": signal.SIGWINCH,
            "restart": signal.SIGHUP, "graceful": signal.SIGUSR1}
READY_TIMEOUT = 60.0


def scoreboard_path(pid_file: str) -> str:
    """Where the file-backed scoreboard lives: beside the PidFile, ``httpd.pid`` -> ``httpd.scoreboard``."""
    base = pid_file[:-4] if pid_file.endswith(".pid") else pid_file
    return base + ".scoreboard"


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(load_app: Callable[[], object], action: str | None = None, *, foreground: bool = False,
        single_process: bool = False, name: str = "httpd-py") -> int:
    """Carry out one ``-k`` action; returns the process exit status."""
    action = action or "start"
    if action not in ACTIONS:
        _err(f"Usage: {name} -k {'|'.join(ACTIONS)}")
        return 1
    try:
        app = load_app()
    except HttpdError as e:
        _err(str(e))
        return 1
    pid_path = app.config.pid_file
    pid = pidfile.read(pid_path)
    live = pid if pid is not None and pidfile.alive(pid) else None

    if action == "start":
        if live:
            print(f"{name} (pid {live}) already running")
            return 0
        return start(load_app, app, foreground=foreground, single_process=single_process,
                     name=name)
    if action in ("stop", "graceful-stop"):
        if not live:
            print(f"{name} (no pid file) not running" if pid is None
                  else f"{name} (pid {pid}?) not running")
            return 0
        os.kill(live, _SIGNALS[action])
        return 0
    # restart, graceful
    if not live:
        print(f"{name} not running, trying to start")
        return start(load_app, app, foreground=foreground, single_process=single_process,
                     name=name)
    os.kill(live, _SIGNALS[action])
    return 0


def start(load_app, app, *, foreground: bool, single_process: bool, name: str) -> int:
    sb_path = scoreboard_path(app.config.pid_file)
    master = Master(load_app, scoreboard_path=sb_path, server_name=name)
    if not (single_process or foreground):
        return _detach_and_serve(master, app, sb_path)
    # Ctrl-C while loading (a slow stapling prefetch): the handler only records it, so it is
    # not lost inside a C callback (cffi prints and drops an exception raised there, e.g.
    # during the TLS warm-up); once the load ends, what it made is removed and we stop.
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        ok = _setup(master, app, sb_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        master.discard()
        raise KeyboardInterrupt
    if not ok:
        return 1
    if single_process:
        return master.serve_single()
    return master.serve()


def _setup(master: Master, app, sb_path: str) -> bool:
    try:
        os.makedirs(os.path.dirname(sb_path) or ".", exist_ok=True)
        master.setup(app)
    except (HttpdError, OSError) as e:
        _err(str(e))
        return False
    return True


def _detach_and_serve(master: Master, app, sb_path: str) -> int:
    """Fork the daemon first, so everything it creates (lock files named after the master's
    pid, the scoreboard) is its own; it does the setup with the terminal still on stderr and
    reports "ready" (or its error) through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:                                     # the command the user ran: wait for "ready"
        os.close(w)
        import select
        # "ready", or an error text then EOF.  Not EOF after "ready": the workers forked before
        # it hold the write end too.
        buf = b""
        while not buf.startswith(b"ready"):
            ready, _, _ = select.select([r], [], [], READY_TIMEOUT)
            data = os.read(r, 4096) if ready else b""
            if not data:
                break
            buf += data
        os.close(r)
        os.waitpid(pid, 0)
        text = buf.decode("utf-8", "replace")
        if text.startswith("ready"):
            return 0
        _err(text.strip() or "the server exited before it was ready (see the ErrorLog)")
        return 1
    # first child: new session, then fork again so the daemon can never regain a terminal
    code = 1
    try:
        os.close(r)
        os.setsid()
        if os.fork():
            os._exit(0)
        try:
            os.makedirs(os.path.dirname(sb_path) or ".", exist_ok=True)
            master.setup(app)
        except (HttpdError, OSError) as e:
            os.write(w, str(e).encode("utf-8", "replace"))
            os._exit(1)
        os.chdir("/")
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        if devnull > 2:
            os.close(devnull)

        def ready() -> None:
            os.write(w, b"ready")
            os.close(w)

        code = master.serve(on_ready=ready)
    except BaseException as e:                  # noqa: BLE001
        try:
            os.write(w, f"{type(e).__name__}: {e}".encode())
        except OSError:
            pass
    finally:
        os._exit(code)
