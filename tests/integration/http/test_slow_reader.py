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
import ssl

import pytest

from httpd_py.devtools.pki import make_pki
from tests.support.apache import minimal_conf
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, read_to_eof, wait_until

SIZE = 32 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("slowreader")
    (root / "logs").mkdir()
    docs = root / "htdocs"
    docs.mkdir()
    (docs / "big.bin").write_bytes(os.urandom(SIZE))
    (docs / "small.txt").write_bytes(b"small\n")
    pki = make_pki(root / "pki", ("localhost",))
    leaf = pki.leaf("localhost", "ec")
    port, tls_port, short_port = free_port(), free_port(), free_port()
    conf = minimal_conf(root, ("mpm_prefork", "authz_core", "ssl"), listen=f"127.0.0.1:{port}",
                        extra=f"""
Listen 127.0.0.1:{tls_port}
Listen 127.0.0.1:{short_port}
StartServers 1
MinSpareServers 1
MaxSpareServers 1
MaxRequestWorkers 1
Timeout 30
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
    with httpd(root, conf + "LogLevel info\n") as srv:
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        ctx = ssl.create_default_context(cafile=str(pki.root_file))
        yield {"plain": (port, None), "tls": (tls_port, ctx), "short": (short_port, None),
               "server": srv}


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
