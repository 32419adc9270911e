"""mod_reqtimeout applied by the real server (forked workers, real sockets, TLS): a slow header,
a slow body and a stalled TLS handshake are cut at their stage's limit, as Debian's apache2
2.4.71 cuts them (408 once the request line is complete, a silent close before that and for
the handshake), while Timeout (60 s here) would have waited much longer.  Bounds are generous
(the stage is 2 s; a cut must come after 1.5 s and well before Timeout), never tight."""
from __future__ import annotations

import socket
import time

import pytest

from httpd_py.devtools.pki import make_pki
from tests.support.server import httpd
from tests.support.tools import free_port, wait_until

STAGE = 2.0


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reqtimeout")
    root = tmp / "htdocs"
    root.mkdir()
    (root / "index.html").write_text("hello\n")
    pki = make_pki(tmp / "pki", ("rt.test",), kinds=("ec",), ocsp_url=None)
    leaf = pki.leaf("rt.test", "ec")
    port, tls_port = free_port(), free_port()
    conf = f"""LoadModule reqtimeout_module /usr/lib/apache2/modules/mod_reqtimeout.so
Listen 127.0.0.1:{port}
Listen 127.0.0.1:{tls_port}
DocumentRoot "{root}"
Timeout 60
KeepAliveTimeout 30
LogLevel warn reqtimeout:info
RequestReadTimeout handshake=2 header=2-4,MinRate=500 body=2,MinRate=500
StartServers 2
<VirtualHost 127.0.0.1:{tls_port}>
    ServerName rt.test
    SSLEngine on
    SSLCertificateFile {leaf.cert_file}
    SSLCertificateKeyFile {leaf.key_file}
</VirtualHost>
"""
    with httpd(tmp, conf) as srv:
        yield srv, port, tls_port


def _until_closed(s: socket.socket, limit: float = 20.0) -> tuple[bytes, float]:
    """Read until the server closes; (what it sent, seconds since the call)."""
    t0 = time.monotonic()
    s.settimeout(limit)
    got = b""
    while True:
        try:
            data = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        got += data
    return got, time.monotonic() - t0


def test_slow_headers_after_the_request_line_get_408(servers):
    srv, port, _ = servers
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")        # no end of head
        got, took = _until_closed(s)
    assert got.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in got
    assert STAGE - 0.5 <= took < 15, took
    wait_until(lambda: "HP03050: Request header read timeout" in srv.log_text(), 5,
               what="Apache's AH01382 line (HP03050)")


def test_a_partial_request_line_is_closed_silently(servers):
    _, port, _ = servers
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GE")
        got, took = _until_closed(s)
    assert got == b""
    assert STAGE - 0.5 <= took < 15, took


def test_a_trickle_is_cut_at_the_maximum_even_with_bytes_arriving(servers):
    """One byte every 0.5 s never satisfies MinRate=500 for long: cut by header=2-4 (4 s at the
    most), where Timeout alone would never cut it."""
    _, port, _ = servers
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\n")
        t0 = time.monotonic()
        cut = None
        for i in range(40):                    # bounded: 20 s at the most
            try:
                s.sendall(b"X")
            except OSError:
                cut = time.monotonic() - t0
                break
            s.settimeout(0.5)
            try:
                data = s.recv(65536)
            except TimeoutError:
                continue
            cut = time.monotonic() - t0
            assert data == b"" or data.startswith(b"HTTP/1.1 408 ")
            break
    assert cut is not None and cut < 12, cut


def test_slow_body_gets_408(servers):
    _, port, _ = servers
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        got, took = _until_closed(s)
    assert got.startswith(b"HTTP/1.1 408 "), got[:80]
    assert STAGE - 0.5 <= took < 15, took


def test_keep_alive_wait_is_keepalivetimeout_not_the_header_stage(servers):
    """After a response the next request's header stage starts at its first byte: an idle
    keep-alive connection is not cut at 2 s."""
    _, port, _ = servers
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(10)
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        time.sleep(STAGE + 1.5)                 # idle longer than the header stage, < KeepAlive
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        second = s.recv(65536)
    assert second.startswith(b"HTTP/1.1 200 ")


def test_a_stalled_tls_handshake_is_closed(servers):
    _, _, tls_port = servers
    with socket.create_connection(("127.0.0.1", tls_port)) as s:
        s.sendall(b"\x16\x03\x01")             # the start of a ClientHello, then nothing
        got, took = _until_closed(s)
    assert STAGE - 0.5 <= took < 15, took
