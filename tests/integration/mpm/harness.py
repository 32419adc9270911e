"""Drive ``tests.integration.mpm.testapp`` (the prefork master with an echo App) as a real process."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from httpd_py.mpm import pidfile
from httpd_py.mpm.scoreboard import BoardView, read_board
from tests.support.tools import free_port, wait_until

REPO = Path(__file__).resolve().parents[3]


class EchoServer:
    def __init__(self, tmp: Path, **spec):
        self.dir = tmp
        self.port = spec.pop("port", None) or free_port()
        self.spec_path = tmp / "spec.json"
        self.pid_file = str(tmp / "run" / "httpd.pid")
        self.scoreboard = str(tmp / "run" / "httpd.scoreboard")
        self.error_log = tmp / "error.log"
        self.spec = {"listens": [["127.0.0.1", self.port]], "pid_file": self.pid_file,
                     "error_log": str(self.error_log), "tag": "a", "log_level": "info",
                     "user": "root" if os.geteuid() == 0 else None,
                     "prefork": {"start_servers": 2, "min_spare_servers": 1,
                                 "max_spare_servers": 4}}
        prefork = spec.pop("prefork", {})
        self.spec.update(spec)
        self.spec["prefork"] = {**self.spec["prefork"], **prefork}
        self.write_spec()
        self.proc: subprocess.Popen | None = None

    # --- process ------------------------------------------------------------------------------
    def write_spec(self, **changes) -> None:
        self.spec.update(changes)
        tmp = self.spec_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.spec))
        os.replace(tmp, self.spec_path)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tests.integration.mpm.testapp", str(self.spec_path), *args]

    def run_k(self, action: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(self.command("-k", action), cwd=REPO, capture_output=True,
                              text=True, timeout=timeout)

    def start(self, *args: str, wait: bool = True) -> "EchoServer":
        self.proc = subprocess.Popen(self.command("--foreground", *args), cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if wait:
            self.wait_serving()
        return self

    def wait_serving(self, timeout: float = 15) -> None:
        def ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: "
                                     f"{self.proc.stderr.read()}\n{self.log()}")
            return self.master_pid() and "HP01001" in self.log()
        wait_until(ready, timeout, what="server to serve")

    def master_pid(self) -> int | None:
        return pidfile.read(self.pid_file)

    def signal(self, sig: int) -> None:
        os.kill(self.master_pid(), sig)

    def wait_exit(self, timeout: float = 20) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        pid = self.master_pid()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        elif pid and pidfile.alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not pidfile.alive(pid), 20, what="daemon to stop")
        if self.proc is not None:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()

    # --- observing ----------------------------------------------------------------------------
    def log(self) -> str:
        try:
            return self.error_log.read_text()
        except FileNotFoundError:
            return ""

    def count_log(self, msgid: str) -> int:
        return self.log().count(f" {msgid}: ")

    def wait_log(self, msgid: str, count: int = 1, timeout: float = 15) -> None:
        wait_until(lambda: self.count_log(msgid) >= count, timeout,
                   what=f"{count}x {msgid} in the error log:\n{self.log()}")

    def board(self) -> BoardView:
        return read_board(self.scoreboard)

    def worker_pids(self, generation: int | None = None) -> set[int]:
        return {s.pid for s in self.board().workers(generation)}

    def children(self) -> set[int]:
        """Live child processes of the master, from /proc (independent of the scoreboard)."""
        master = self.master_pid()
        out = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master and fields[0] != "Z":
                out.add(int(entry))
        return out

    # --- clients ------------------------------------------------------------------------------
    def connect(self, host: str = "127.0.0.1") -> "EchoClient":
        return EchoClient(socket.create_connection((host, self.port), timeout=10))

    def request(self, text: str = "ping", host: str = "127.0.0.1") -> tuple[int, str, str]:
        with self.connect(host) as c:
            return c.ask(text)


class EchoClient:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.f = sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_reply(self) -> tuple[int, str, str]:
        line = self.f.readline()
        if not line:
            raise ConnectionError("connection closed without an answer")
        pid, tag, text = line.decode().rstrip("\n").split(" ", 2)
        return int(pid), tag, text

    def ask(self, text: str) -> tuple[int, str, str]:
        self.send(text.encode() + b"\n")
        return self.read_reply()

    def closed_by_server(self) -> bool:
        return self.f.readline() == b""

    def close(self) -> None:
        self.f.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
