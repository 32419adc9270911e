"""A client that sends its request body slowly (or stops halfway) does not hold its worker: the
read that would block parks the request (http/park.py) and the worker serves its other
connections meanwhile.

Exactly one worker process; client A sends a POST head with ``Content-Length: 100`` and ten
bytes of the body, then nothing; client B's GET on the same (only) worker is answered while A
stalls; then A sends the rest and gets its answer.  Plain HTTP and TLS, with mod_reqtimeout's
body stage (its own wait for the socket) and without (the stream's read).  No timing: B either
gets its answer or times out.
"""
from __future__ import annotations

import socket

import pytest

from tests.support.one_worker import one_worker
from tests.support.tools import read_to_eof


@pytest.fixture(scope="module", params=["stream", "reqtimeout"])
def server(tmp_path_factory, request):
    """Without mod_reqtimeout the body is read by the stream (its read parks); with its body
    stage, the stage's own wait for the socket parks."""
    rt = request.param == "reqtimeout"
    with one_worker(tmp_path_factory.mktemp("slowupload"), {"small.txt": b"small\n"},
                    ("reqtimeout",) if rt else (),
                    "RequestReadTimeout handshake=0 header=0 body=30" if rt else "") as ports:
        yield ports


def _connect(port: int, ctx):
    raw = socket.create_connection(("127.0.0.1", port), timeout=15)
    return ctx.wrap_socket(raw, server_hostname="localhost") if ctx else raw


def _get_small(port: int, ctx) -> bytes:
    with _connect(port, ctx) as b:
        b.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return read_to_eof(b)


@pytest.mark.parametrize("kind", ["plain", "tls"])
def test_a_stalled_upload_leaves_the_worker_to_others(server, kind):
    port, ctx = server[kind]
    a = _connect(port, ctx)
    try:
        a.sendall(b"POST /small.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n"
                  b"Content-Type: text/plain\r\n\r\n" + b"x" * 10)
        # A sends nothing more: its body read must wait; B is served by the only worker
        answer = _get_small(port, ctx)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"small\n")
        a.sendall(b"y" * 90 + b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\n"
                  b"Connection: close\r\n\r\n")
        got = read_to_eof(a)
        # the POST's answer (whatever the default handler says of a POST to a file), then the
        # pipelined GET's: the body was read whole, the bytes after it are the next request
        assert got.startswith(b"HTTP/1.1 "), got[:200]
        assert got.count(b"HTTP/1.1 ") == 2 and got.endswith(b"small\n"), got[-300:]
    finally:
        a.close()


def test_a_parked_body_read_gives_up_after_the_timeout(server):
    """Timeout 1 on this address: a body that stops coming is answered 408 after the timeout
    and the connection closed, and the worker goes on serving."""
    port, _ = server["short"]
    with _connect(port, None) as a:
        a.sendall(b"POST /small.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n"
                  + b"x" * 10)
        got = read_to_eof(a)
    assert got.startswith(b"HTTP/1.1 408"), got[:200]
    assert _get_small(port, None).startswith(b"HTTP/1.1 200")
