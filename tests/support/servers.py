"""Real redis-server and memcached on free loopback ports, for any test that needs one.

    from tests.support.servers import redis_server, memcached_server, hung_server

    with redis_server() as (host, port): ...        # started, reachable, stopped on exit
    with memcached_server() as (host, port): ...
    with hung_server() as (host, port): ...         # accepts connections, never answers

Each waits (bounded) until the server accepts connections and stops it on exit (SIGTERM, then
SIGKILL after a bound).  A missing binary fails under CI and skips elsewhere (require_tool).
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import threading
from typing import Iterator

from tests.support.tools import free_port, port_accepting, require_tool, wait_until

HOST = "127.0.0.1"


@contextlib.contextmanager
def _daemon(argv_for_port, what: str, attempts: int = 3) -> Iterator[tuple[str, int]]:
    last = ""
    for _ in range(attempts):                # a free port may be taken between check and bind
        port = free_port(HOST)
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(argv_for_port(port), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            try:
                try:
                    wait_until(lambda: proc.poll() is not None or port_accepting(port, HOST),
                               timeout=10, what=f"{what} on port {port}")
                except AssertionError:
                    pass
                if proc.poll() is None and port_accepting(port, HOST):
                    yield HOST, port
                    return
                out.seek(0)
                last = out.read()[-2000:].decode(errors="replace")
            finally:
                _stop(proc)
    raise AssertionError(f"{what} did not start: {last}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    """A throw-away redis-server: no persistence, loopback only."""
    exe = require_tool("redis-server")
    with tempfile.TemporaryDirectory(prefix="hp-redis-") as d:
        def argv(port: int) -> list[str]:
            return [exe, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                    "--dir", d, "--daemonize", "no", "--protected-mode", "yes",
                    "--loglevel", "warning"]
        with _daemon(argv, "redis-server") as addr:
            yield addr


@contextlib.contextmanager
def memcached_server(memory_mb: int = 64) -> Iterator[tuple[str, int]]:
    """A throw-away memcached: TCP on loopback only, no UDP."""
    exe = require_tool("memcached")

    def argv(port: int) -> list[str]:
        a = [exe, "-l", HOST, "-p", str(port), "-U", "0", "-m", str(memory_mb)]
        if os.geteuid() == 0:
            a += ["-u", "root"]              # memcached refuses to run as root without -u
        return a
    with _daemon(argv, "memcached") as addr:
        yield addr


@contextlib.contextmanager
def hung_server() -> Iterator[tuple[str, int]]:
    """A loopback socket that accepts connections and never answers (a hung server)."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind((HOST, 0))
    lsock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_loop() -> None:
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
                held.append(conn)            # keep it open, read nothing, say nothing
            except OSError:
                continue

    t = threading.Thread(target=accept_loop, daemon=True)
    t.start()
    try:
        yield HOST, lsock.getsockname()[1]
    finally:
        stop.set()
        t.join(timeout=2)
        for c in held:
            c.close()
        lsock.close()
