"""Nothing leaks over 10,000 proxied requests: the workers' descriptors and resident memory are
the same (within a small bound) after 10,000 requests as after a 500-request warm-up.  Keep-alive
clients, small echoes and some 64 KiB bodies, through the kept backend connections; half the
requests take a fresh backend connection (disablereuse), a few hit the dead backend (503).
"""
from __future__ import annotations

import os
import socket

import pytest

pytestmark = pytest.mark.slow

REQUESTS = 10_000
WARMUP = 500
TARGETS = (b"/app/x", b"/noreuse/x", b"/app/big/65536", b"/app/y?q=1", b"/down/x")


def _workers(master: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == master:
                out.append(int(d))
    return out


def _usage(pid: int) -> tuple[int, int]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return fds, rss


def _read_response(s, buf: bytearray) -> bytearray:
    while b"\r\n\r\n" not in buf:
        got = s.recv(65536)
        assert got, "connection closed"
        buf += got
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lower = head.lower()
    assert lower.startswith(b"http/1.1 ")
    if b"transfer-encoding: chunked" in lower:
        data = bytearray(rest)
        while not data.endswith(b"0\r\n\r\n"):
            got = s.recv(65536)
            assert got
            data += got
        return bytearray()
    n = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
    data = bytearray(rest)
    while len(data) < n:
        got = s.recv(65536)
        assert got
        data += got
    return bytearray(data[n:])


def _run(port: int, count: int) -> int:
    done = 0
    while done < count:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            buf = bytearray()
            for i in range(90):             # under MaxKeepAliveRequests (100)
                if done >= count:
                    break
                t = TARGETS[done % len(TARGETS)]
                last = i == 89 or done + 1 >= count
                if t == b"/down/x":
                    # a 503 closes the connection (as apache2's)
                    s.sendall(b"GET " + t + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    _read_response(s, buf)
                    done += 1
                    break
                s.sendall(b"GET " + t + b" HTTP/1.1\r\nHost: localhost\r\n"
                          + (b"Connection: close\r\n" if last else b"") + b"\r\n")
                buf = _read_response(s, buf)
                done += 1
    return done


def test_no_leak_over_10000_requests(httpd_py_server):
    port = httpd_py_server.port
    master = httpd_py_server.pid()
    _run(port, WARMUP)
    before = {p: _usage(p) for p in _workers(master)}
    assert before
    _run(port, REQUESTS)
    after = {p: _usage(p) for p in _workers(master)}
    print("workers (fds, rss kB) before", before, "after", after)
    same = [p for p in before if p in after]
    assert same, "every worker was replaced during the run"
    for p in same:
        (fd0, rss0), (fd1, rss1) = before[p], after[p]
        assert fd1 <= fd0 + 2, (p, fd0, fd1)
        assert rss1 - rss0 < 8 * 1024, (p, rss0, rss1)      # kB
