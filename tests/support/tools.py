"""Helpers every test may use: required external tools, free loopback ports, bounded waits.

A test that needs a tool calls ``require_tool("apache2")``: when the tool is missing it FAILS
under CI (``CI`` set; scripts/test installs every tool) and skips on a developer's machine.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from typing import Callable, Iterator, TypeVar

import pytest

T = TypeVar("T")

# Debian keeps daemons in sbin, which a non-login PATH may lack.
_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path=os.pathsep.join(_EXTRA_PATH))


def require_tool(tool: str) -> str:
    """Return the tool's path; fail under CI, skip elsewhere, when it is missing."""
    path = which(tool)
    if path:
        return path
    msg = f"{tool} is not installed (scripts/test installs it)"
    pytest.fail(msg) if os.environ.get("CI") else pytest.skip(msg)  # CI: a missing tool fails
    raise AssertionError("unreachable")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on loopback right now (the kernel picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02,
               what: str = "condition") -> T:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds.

    For waiting on another process's observable state (a port accepting, a pid file written)
    where no event can be awaited directly.  Bounded in time, never an unconditional sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_to_eof(sock) -> bytes:
    """Everything ``sock`` receives until the peer closes (the socket's own timeout applies)."""
    data = bytearray()
    while True:
        got = sock.recv(65536)
        if not got:
            return bytes(data)
        data += got


def port_accepting(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def silent_backends() -> Iterator[tuple[int, int]]:
    """Two loopback ports that stand in for backends that hang: (hole, mute).  ``hole``: a
    listener (backlog 0) that never accepts, its queue filled by connections of our own, so
    the kernel drops further SYNs and a connect to it hangs (a host that is down).  ``mute``:
    a listener that never accepts but has room, so connects complete and whatever is sent sits
    unread (a TLS ClientHello never answered; an upload whose writes stop once the buffers are
    full).  Checked: a connect to ``hole`` does not complete within 1 s."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    port = hole.getsockname()[1]
    fill = []
    mute = socket.socket()
    try:
        for _ in range(8):
            c = socket.socket()
            fill.append(c)
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
        with socket.socket() as probe:
            probe.settimeout(1)
            try:
                probe.connect(("127.0.0.1", port))
                pytest.fail("the listener's queue did not fill: connects to it do not hang")
            except (socket.timeout, TimeoutError):
                pass
        mute.bind(("127.0.0.1", 0))
        mute.listen(64)
        yield port, mute.getsockname()[1]
    finally:
        for s in (*fill, hole, mute):
            s.close()


def upload(port: int, path: str, size: int, timeout: float = 30) -> bytes:
    """A POST of ``size`` bytes (1 MiB writes, Connection: close) to loopback ``port``, then
    everything the server sends until it closes (b"" when it reset the connection).  A server
    that stops reading and closes ends the writes: what it answered is still read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                  f"Content-Length: {size}\r\n\r\n".encode())
        chunk = b"u" * (1 << 20)
        try:
            for _ in range(size >> 20):
                s.sendall(chunk)
            s.sendall(chunk[:size & ((1 << 20) - 1)])
        except OSError:
            pass
        try:
            return read_to_eof(s)
        except ConnectionResetError:
            return b""
