"""Debian's apache2 beside httpd-py: a minimal config, ``apache2 -t``/``-S`` runs, and Apache
as a server.

Every function finds apache2 with ``require_tool`` (CI fails, elsewhere skips, when it is missing).
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

from tests.support.tools import port_accepting, require_tool, wait_until

MODULES = "/usr/lib/apache2/modules"

# Apache: "AH00526: Syntax error on line N of FILE:" (walk) or "apache2: Syntax error on line N
# of FILE: ..." (read), nested for includes: the innermost (last) location is the error's.
SYNTAX_ERROR_AT = re.compile(r"Syntax error on line (\d+) of ([^:\n]+):")


def load_modules(*names: str) -> str:
    """``LoadModule NAME_module MODULES/mod_NAME.so`` lines, one per name in order, joined by
    newlines (no final newline: a template's own line ends the last)."""
    return "\n".join(f"LoadModule {n}_module {MODULES}/mod_{n}.so" for n in names)


_PAIR_SIZING = "StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\n"


def pair_conf(root: Path | str, tag: str, port: int, modules: Iterable[str], include: Path | str,
              extra: str = "", sizing: str = _PAIR_SIZING) -> str:
    """The per-server main config of a side-by-side suite: server TAG ("apache" or "httpd-py")
    under ROOT (its own logs, pid file, mutexes), the modules, loopback PORT, workers as
    www-data, ``sizing`` (prefork's counts, and whatever must precede the fragment), then
    ``Include`` of the fragment both servers share, then ``extra``."""
    return (f'ServerRoot "{root}"\n'
            + load_modules(*modules)
            + "\nServerName localhost\n"
            f'ErrorLog "{root}/logs/error.log"\n'
            "LogLevel info\n"
            f'PidFile "{root}/logs/{tag}.pid"\n'
            f'DefaultRuntimeDir "{root}/logs"\n'
            f"Mutex file:{root}/logs default\n"
            f"Listen 127.0.0.1:{port}\n"
            "User www-data\nGroup www-data\n"
            + sizing
            + f'Include "{include}"\n' + extra)


def minimal_conf(root: Path | str, modules: Iterable[str] = ("mpm_prefork",), *,
                 defines: Iterable[str] = (), pid_file: str = "logs/pid",
                 listen: str = "127.0.0.1:18080", extra: str = "") -> str:
    """The smallest httpd.conf both servers accept under ROOT (which must hold ``logs/``):
    ServerRoot, ``Define`` lines, the modules, ServerName, ErrorLog, PidFile and Mutex in
    ROOT/logs, one Listen, then ``extra``."""
    return (f"ServerRoot {root}\n"
            + "".join(f"Define {d}\n" for d in defines)
            + load_modules(*modules)
            + f"\nServerName localhost\nErrorLog {root}/logs/error.log\n"
            f"PidFile {root}/{pid_file}\nMutex file:{root}/logs default\nListen {listen}\n"
            + extra)


def apache_env(**extra: str) -> dict[str, str]:
    """A small fixed environment for apache2: the caller's PATH, the C locale, and ``extra``."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", **extra}


def run_apache(root: Path | str, conf: Path | str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``apache2 -d ROOT -f CONF ARGS...`` (e.g. ``-t``, ``-S``), its output captured as text."""
    apache = require_tool("apache2")
    return subprocess.run([apache, "-d", str(root), "-f", str(conf), *args], capture_output=True,
                          text=True, timeout=timeout, env=apache_env() if env is None else env)


def run_apache_each(root: Path | str, confs: Iterable[Path], *args: str
                    ) -> list[subprocess.CompletedProcess[str]]:
    """``run_apache`` on every file, four at a time (apache2's start-up is most of each run)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda conf: run_apache(root, conf, *args), confs))


def vhost_lines(text: str) -> list[str]:
    """The "VirtualHost configuration:" block of ``-S`` output, up to the ServerRoot line."""
    lines = text.splitlines()
    start = lines.index("VirtualHost configuration:")
    end = next(i for i, l in enumerate(lines) if l.startswith("ServerRoot:"))
    return lines[start:end]


@contextlib.contextmanager
def apache_serving(conf: Path, root: Path, port: int, pid_file: Path) -> Iterator[None]:
    """apache2 started (``-k start``) on CONF until the block ends; PID_FILE is CONF's PidFile.
    Waits until the pid file exists and PORT accepts, and after SIGTERM until the master is gone."""
    a2 = require_tool("apache2")
    env = dict(os.environ, APACHE_RUN_DIR=str(root), APACHE_LOCK_DIR=str(root),
               APACHE_LOG_DIR=str(root))
    p = subprocess.run([a2, "-d", str(root), "-f", str(conf), "-k", "start"], capture_output=True,
                       timeout=30, env=env)
    assert p.returncode == 0, p.stderr.decode()
    try:
        wait_until(lambda: pid_file.exists() and port_accepting(port), 15, what="apache2 listening")
        yield
    finally:
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not _alive(pid), 20, what="apache2 stopped")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
