#!/usr/bin/env python3
"""The floor of a reverse proxy in Python, for ``scripts/bench_proxy.py --floor``: not httpd-py.

    python3 scripts/proxy_floor.py PORT BACKEND_PORT WORKERS

What a Python proxy costs on this machine with nothing but the exchange: WORKERS forked
processes, each an epoll loop over its client connections (EPOLLEXCLUSIVE on the shared
listener), one kept-alive backend connection per process read blocking, the request's
hop-by-hop headers dropped and X-Forwarded-For/-Host/-Server appended, the backend's answer
(Content-Length bodies only) passed on with its hop-by-hop headers dropped and keep-alive
headers added.  No configuration, no logging, no access control, no error pages: the lower
bound that httpd-py's per-request path is measured against (docs/benchmarks.md).
"""
from __future__ import annotations

import os
import select
import socket
import sys

HOP = {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade",
       b"proxy-connection"}


def backend(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def exchange(be: socket.socket, head: bytes, client_ip: str) -> tuple[bytes, bool]:
    """(the response for the client, whether the client asked to close)."""
    lines = head.split(b"\r\n")
    out = [lines[0]]
    host, close = b"", False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        low = name.lower()
        if low == b"connection":
            close = b"close" in value.lower()
        if low in HOP:
            continue
        if low == b"host":
            host = value.strip()
        out.append(line)
    out += [b"X-Forwarded-For: " + client_ip.encode(), b"X-Forwarded-Host: " + host,
            b"X-Forwarded-Server: localhost"]
    be.sendall(b"\r\n".join(out) + b"\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        got = be.recv(65536)
        if not got:
            raise ConnectionError("the backend closed")
        data += got
    rhead, _, body = data.partition(b"\r\n\r\n")
    rlines = rhead.split(b"\r\n")
    resp, length = [rlines[0]], 0
    for line in rlines[1:]:
        name, _, value = line.partition(b":")
        low = name.lower()
        if low in HOP:
            continue
        if low == b"content-length":
            length = int(value)
        resp.append(line)
    while len(body) < length:
        got = be.recv(65536)
        if not got:
            raise ConnectionError("the backend closed inside the body")
        body += got
    resp.append(b"Connection: close" if close else b"Keep-Alive: timeout=5, max=100")
    return b"\r\n".join(resp) + b"\r\n\r\n" + body, close


def work(ls: socket.socket, bport: int) -> None:
    be = backend(bport)
    ep = select.epoll()
    ep.register(ls.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
    conns: dict[int, tuple[socket.socket, str]] = {}
    while True:
        for fd, _ in ep.poll():
            if fd == ls.fileno():
                try:
                    c, addr = ls.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns[c.fileno()] = (c, addr[0])
                ep.register(c.fileno(), select.EPOLLIN)
                continue
            c, ip = conns[fd]
            try:
                data = c.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            close = not data
            if data:
                head = data.partition(b"\r\n\r\n")[0]      # (wrk's and curl's GETs: one read)
                try:
                    answer, close = exchange(be, head, ip)
                except (OSError, ValueError):                # the backend closed a kept one
                    be.close()
                    be = backend(bport)
                    answer, close = exchange(be, head, ip)
                try:
                    c.sendall(answer)
                except OSError:
                    close = True
            if close:
                ep.unregister(fd)
                c.close()
                del conns[fd]


def main() -> int:
    port, bport, workers = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(512)
    ls.setblocking(False)
    for _ in range(workers):
        if os.fork() == 0:
            try:
                work(ls, bport)
            finally:
                os._exit(0)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
