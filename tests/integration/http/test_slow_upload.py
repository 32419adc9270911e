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
import ssl

import pytest

from httpd_py.devtools.pki import make_pki
from tests.support.apache import minimal_conf
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, read_to_eof, wait_until


def _serve(root, reqtimeout: bool):
    (root / "logs").mkdir()
    docs = root / "htdocs"
    docs.mkdir()
    (docs / "small.txt").write_bytes(b"small\n")
    pki = make_pki(root / "pki", ("localhost",))
    leaf = pki.leaf("localhost", "ec")
    port, tls_port, short_port = free_port(), free_port(), free_port()
    modules = ("mpm_prefork", "authz_core", "ssl") + (("reqtimeout",) if reqtimeout else ())
    conf = minimal_conf(root, modules, listen=f"127.0.0.1:{port}", extra=f"""
Listen 127.0.0.1:{tls_port}
Listen 127.0.0.1:{short_port}
StartServers 1
MinSpareServers 1
MaxSpareServers 1
MaxRequestWorkers 1
Timeout 30
{"RequestReadTimeout handshake=0 header=0 body=30" if reqtimeout else ""}
DocumentRoot {docs}
<Directory {docs}>
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:{tls_port}>
    ServerName localhost
    SSLEngine on
    SSLCertificateFile {leaf.cert_file}
    SSLCertificateKeyFile {leaf.key_file}
</VirtualHost>
<VirtualHost 127.0.0.1:{short_port}>
    ServerName localhost
    Timeout 1
</VirtualHost>
""")
    srv = httpd(root, conf + "LogLevel info\n")
    ctx = ssl.create_default_context(cafile=str(pki.root_file))
    return srv, port, {"plain": (port, None), "tls": (tls_port, ctx),
                       "short": (short_port, None)}


@pytest.fixture(scope="module", params=["stream", "reqtimeout"])
def server(tmp_path_factory, request):
    """Without mod_reqtimeout the body is read by the stream (its read parks); with its body
    stage, the stage's own wait for the socket parks."""
    srv, port, ports = _serve(tmp_path_factory.mktemp("slowupload"),
                              request.param == "reqtimeout")
    with srv as s:
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        yield {**ports, "server": s}


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
