"""Run the real httpd-py (``python -m httpd_py -f CONF -DFOREGROUND``) for the background
stapling tests: its own session (so ``kill -9`` can take the whole server down at once), its
error log watched for HP ids, graceful restart (USR1), restart (HUP), stop (TERM)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.tools import free_port, wait_until
from tests.unit.stapling_bg.conftest import ClockedResponder

ROOT = Path(__file__).resolve().parents[3]


def vhost_lines(pki, name: str, port: int, url: str, kinds=("rsa", "ec"), extra=()) -> list[str]:
    lines = [f"<VirtualHost *:{port}>", f"  ServerName {name}", "  SSLEngine on"]
    for k in kinds:
        leaf = pki.leaf(name, k)
        lines += [f"  SSLCertificateFile {leaf.cert_file}", f"  SSLCertificateKeyFile {leaf.key_file}"]
    lines += ["  SSLUseStapling on", f"  SSLStaplingForceURL {url}", *("  " + e for e in extra),
              "</VirtualHost>"]
    return lines


class RealServer:
    def __init__(self, d: Path, pki, url: str, names=("a.test",), *, cache: str | None = None,
                 stapling=(), per_vhost=None, port: int | None = None, store: bool = True,
                 workers: int = 2):
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        (d / "run").mkdir(exist_ok=True)
        (d / "htdocs").mkdir(exist_ok=True)
        (d / "htdocs" / "index.html").write_text("ok\n")
        self.port = port or free_port()
        self.error_log = d / "error.log"
        self.pid_file = d / "run" / "httpd.pid"
        lines = [f"ServerRoot {d}", f"Listen 127.0.0.1:{self.port}", f"PidFile {self.pid_file}",
                 f"ErrorLog {self.error_log}", "LogLevel info", f"DocumentRoot {d}/htdocs",
                 f"StartServers {workers}", f"MinSpareServers {max(1, workers - 1)}",
                 f"MaxSpareServers {workers + 2}",
                 f"DefaultRuntimeDir {d}/run", f"SSLStaplingCache {cache or 'shmcb'}"]
        if os.geteuid() == 0:
            lines += ["User root", "Group root"]        # pytest's tmp dirs are 0700
        if store:
            lines.append(f"SSLStaplingStoreDir {d}/store")
        lines += list(stapling)
        for n in names:
            lines += vhost_lines(pki, n, self.port, url, extra=(per_vhost or {}).get(n, ()))
        self.conf = d / "httpd.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def log(self) -> str:
        return self.error_log.read_text() if self.error_log.exists() else ""

    def count(self, hp: str) -> int:
        return len(re.findall(rf"\] {hp}:", self.log()))

    def launch(self) -> int:
        """Start the process; return the HP01001 count to pass to ``wait_ready``."""
        ready = self.count("HP01001")
        self.proc = subprocess.Popen([sys.executable, "-m", "httpd_py", "-f", str(self.conf),
                                      "-DFOREGROUND"], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return ready

    def start(self) -> "RealServer":
        self.wait_ready(self.launch())
        return self

    def wait_ready(self, before: int, timeout: float = 30) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"httpd-py exited {self.proc.returncode}: "
                                     f"{self.proc.stdout.read().decode(errors='replace')}\n{self.log()}")
            return self.count("HP01001") > before
        wait_until(ready, timeout=timeout, what="HP01001 (resuming normal operations)")

    def master_pid(self) -> int:
        return self.proc.pid

    def signal_restart(self, sig: int) -> None:
        before = self.count("HP01001")
        os.kill(self.master_pid(), sig)
        self.wait_ready(before)

    def kill9_all(self) -> None:
        """The whole server dies at once (master, workers, helpers): a crash."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> "RealServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Timeline(ClockedResponder):
    """Records when each serial was asked."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.asked: dict[int, list[float]] = {}

    def answer(self, ref, mode=None):
        with self._lock:
            self.asked.setdefault(ref.serial, []).append(time.time())
        return super().answer(ref, mode)

    def times(self, serial: int) -> list[float]:
        with self._lock:
            return list(self.asked.get(serial, ()))
