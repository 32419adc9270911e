"""Run the real ``httpd-py`` on a config text, as a separate process, for integration tests.

    from tests.support.server import httpd
    from tests.support.tools import free_port

    port = free_port()
    conf = f'''
    Listen 127.0.0.1:{port}
    DocumentRoot "{docroot}"
    '''
    with httpd(tmp_path, conf) as srv:          # started, serving, stopped (SIGTERM) at exit
        ... curl http://127.0.0.1:{port}/ ...
        srv.log_text()                          # the ErrorLog
        srv.restart(graceful=True)              # USR1, returns once the new generation serves
        srv.board()                             # the scoreboard (httpd_py.mpm.scoreboard.BoardView)

What ``httpd(tmp, conf_text, args=(), wait=True, timeout=30)`` does:

- writes ``conf_text`` to ``tmp/httpd.conf`` and adds, only when the text lacks them:
  ``ServerRoot "tmp"``, ``PidFile tmp/run/httpd.pid``, ``ErrorLog tmp/logs/error_log``, and,
  when the test runs as root, ``User root`` + ``Group root``: pytest's tmp directories
  (/tmp/pytest-of-root) are 0700, so workers dropped to ``nobody`` (the default) could not read
  a DocumentRoot there.  Give your own ``User``/``Group`` lines to test privilege dropping (with
  a world-readable DocumentRoot);
- starts ``python -m httpd_py -f tmp/httpd.conf -DFOREGROUND [args]`` (cwd ``tmp``);
- waits, bounded by ``timeout``, until the PidFile names the process and the ErrorLog has
  HP01001 ("configured -- resuming normal operations"); if the process exits first it raises
  ``ServerFailed`` carrying the exit status, stderr and the ErrorLog.  ``wait=False`` skips that
  (for tests of start-up failures: then use ``srv.wait_exit()``);
- at exit: SIGTERM, wait (bounded), SIGKILL as a last resort.

``start_server(...)`` is the same without the context manager (call ``srv.stop()``).
``run_httpd(tmp, *args)`` runs one ``httpd-py`` command (``-k stop``, ``-t``...) to completion.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Sequence

from tests.support.tools import wait_until

HP_READY = "HP01001"


class ServerFailed(AssertionError):
    pass


def _has(conf: str, directive: str) -> bool:
    return re.search(rf"^\s*{directive}\s", conf, re.IGNORECASE | re.MULTILINE) is not None


def _directive_value(conf: str, directive: str) -> str | None:
    m = re.search(rf"^\s*{directive}\s+\"?([^\"\n]+?)\"?\s*$", conf, re.IGNORECASE | re.MULTILINE)
    return m.group(1) if m else None


def write_config(tmp: Path, conf_text: str, name: str = "httpd.conf") -> Path:
    """Write the config with the defaults described in the module docstring; returns its path."""
    tmp = Path(tmp)
    (tmp / "run").mkdir(exist_ok=True)
    (tmp / "logs").mkdir(exist_ok=True)
    head = []
    if not _has(conf_text, "ServerRoot"):
        head.append(f'ServerRoot "{tmp}"')
    if not _has(conf_text, "PidFile"):
        head.append(f'PidFile "{tmp / "run" / "httpd.pid"}"')
    if not _has(conf_text, "ErrorLog"):
        head.append(f'ErrorLog "{tmp / "logs" / "error_log"}"')
    if os.geteuid() == 0 and not _has(conf_text, "User"):
        head += ["User root", "Group root"]
    path = tmp / name
    path.write_text("\n".join(head) + "\n" + conf_text + "\n")
    return path


class HttpdServer:
    """One ``httpd-py -DFOREGROUND`` process (see the module docstring)."""

    def __init__(self, tmp: Path, conf_text: str, args: Sequence[str] = ()):
        self.dir = Path(tmp)
        self.conf_text = conf_text
        self.args = list(args)
        self.conf = write_config(self.dir, conf_text)
        root = _directive_value(conf_text, "ServerRoot") or str(self.dir)
        pid = _directive_value(conf_text, "PidFile") or str(self.dir / "run" / "httpd.pid")
        err = _directive_value(conf_text, "ErrorLog") or str(self.dir / "logs" / "error_log")
        self.pid_file = Path(pid if os.path.isabs(pid) else os.path.join(root, pid))
        self.error_log = Path(err if os.path.isabs(err) else os.path.join(root, err))
        self.proc: subprocess.Popen | None = None

    @property
    def scoreboard_path(self) -> str:
        p = str(self.pid_file)
        return (p[:-4] if p.endswith(".pid") else p) + ".scoreboard"

    # --- life cycle ---------------------------------------------------------------------------
    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "httpd_py", "-f", str(self.conf), *extra]

    def start(self, wait: bool = True, timeout: float = 30) -> "HttpdServer":
        self.proc = subprocess.Popen(self.command("-DFOREGROUND", *self.args), cwd=self.dir,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def _failed(self, what: str) -> ServerFailed:
        err = ""
        if self.proc is not None and self.proc.poll() is not None and self.proc.stderr:
            err = self.proc.stderr.read()
        code = self.proc.returncode if self.proc is not None else None
        return ServerFailed(f"httpd-py {what} (exit status {code})\nstderr:\n{err}\n"
                            f"error log:\n{self.log_text()}")

    def wait_ready(self, timeout: float = 30, count: int = 1) -> None:
        """Wait until the server serves (``count`` HP01001 lines: 2 after one restart...)."""
        def ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise self._failed("exited before serving")
            return self.pid() is not None and self.log_text().count(f" {HP_READY}: ") >= count
        try:
            wait_until(ready, timeout, what="httpd-py to serve")
        except ServerFailed:
            raise
        except AssertionError:
            raise self._failed(f"did not serve within {timeout} s") from None

    def pid(self) -> int | None:
        try:
            text = self.pid_file.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def restart(self, graceful: bool = True, timeout: float = 30) -> None:
        """USR1 (graceful) or HUP; returns once the new generation serves."""
        n = self.log_text().count(f" {HP_READY}: ")
        self.signal(signal.SIGUSR1 if graceful else signal.SIGHUP)
        self.wait_ready(timeout, count=n + 1)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        code: int | None = self.proc.poll()
        if code is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                code = None
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        return code

    # --- observing ----------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except OSError:
            return ""

    def board(self):
        from httpd_py.mpm.scoreboard import read_board
        return read_board(self.scoreboard_path)


def start_server(tmp: Path, conf_text: str, *, args: Sequence[str] = (), wait: bool = True,
                 timeout: float = 30) -> HttpdServer:
    return HttpdServer(tmp, conf_text, args).start(wait=wait, timeout=timeout)


@contextlib.contextmanager
def httpd(tmp: Path, conf_text: str, *, args: Sequence[str] = (), wait: bool = True,
          timeout: float = 30) -> Iterator[HttpdServer]:
    srv = HttpdServer(tmp, conf_text, args)
    try:
        srv.start(wait=wait, timeout=timeout)
        yield srv
    finally:
        srv.stop()


def run_httpd(tmp: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``httpd-py ARGS`` to completion (cwd ``tmp``), capturing its output."""
    return subprocess.run([sys.executable, "-m", "httpd_py", *args], cwd=tmp,
                          capture_output=True, text=True, timeout=timeout)
