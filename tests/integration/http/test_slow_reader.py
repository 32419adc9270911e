"""A client that stops reading a large response does not hold its worker: the write that would
block parks the request (http/park.py) and the worker serves its other connections meanwhile.

Exactly one worker process; client A asks for a 32 MiB file with a 4 KiB receive buffer and
reads nothing more than the head, so the server's writes must stop; client B's request on the
same (only) worker is answered while A stalls; then A reads the whole body.  Plain HTTP and
TLS.  No timing: B either gets its answer or times out.
"""
from __future__ import annotations

import os
import socket

import pytest

from tests.support.one_worker import one_worker
from tests.support.tools import read_to_eof, wait_until

SIZE = 32 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with one_worker(tmp_path_factory.mktemp("slowreader"),
                    {"big.bin": os.urandom(SIZE), "small.txt": b"small\n"}) as ports:
        yield ports


def _connect(port: int, ctx, rcvbuf: int | None = None):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(15)
    raw.connect(("127.0.0.1", port))
    return ctx.wrap_socket(raw, server_hostname="localhost") if ctx else raw


@pytest.mark.parametrize("kind", ["plain", "tls"])
def test_a_stalled_download_leaves_the_worker_to_others(server, kind):
    port, ctx = server[kind]
    a = _connect(port, ctx, rcvbuf=4096)
    try:
        a.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        got = bytearray()
        while b"\r\n\r\n" not in got:
            got += a.recv(4096)
        head, _, body = bytes(got).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        # A reads nothing more: the server's writes stop; B is served by the only worker
        with _connect(port, ctx) as b:
            b.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = read_to_eof(b)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"small\n")
        n = len(body)
        while n < SIZE:
            d = a.recv(1 << 20)
            assert d, f"closed after {n} of {SIZE} bytes"
            n += len(d)
        assert n == SIZE
    finally:
        a.close()


def test_a_parked_write_gives_up_after_the_timeout(server):
    """Timeout 1 on this address: a client that reads nothing has its response cut after the
    timeout (logged as a client gone, the connection closed before the last byte), and the
    worker goes on serving."""
    port, _ = server["short"]
    srv = server["server"]
    a = _connect(port, None, rcvbuf=4096)
    try:
        a.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        wait_until(lambda: "client went away after" in srv.log_text(), 20,
                   what="the server to give up the parked write")
        n = 0
        while True:
            d = a.recv(1 << 20)
            if not d:
                break
            n += len(d)
        assert 0 < n < SIZE
    finally:
        a.close()
    with _connect(port, None) as b:
        b.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert b.recv(65536).startswith(b"HTTP/1.1 200")
