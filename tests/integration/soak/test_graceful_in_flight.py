"""What the soak found (docs/reliability.md, "Findings"): a graceful restart (SIGUSR1) must let a
worker finish the connection in hand, as Apache's does.  The worker's SIGUSR1 handler interrupts
the blocking read under OpenSSL (EINTR on a socket with SO_RCVTIMEO is never restarted, signal(7));
OpenSSL reports it as WANT_READ and the connection loop takes that for the kernel timeout:

* a handshake waiting for the ClientHello is dropped at once (HP02002 "TLS handshake timed out");
* a request whose head is half read is answered 408 at once (HP03005).

Fixed: the worker holds SIGUSR1 back while it serves a connection and sees it pending through
slot.stopping() (mpm/worker.py); these tests keep it fixed."""
from __future__ import annotations

import os
import signal
import socket
import ssl
import sys
import time
from pathlib import Path

import pytest

from httpd_py.devtools.pki import make_pki

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
import soaklib  # noqa: E402




@pytest.fixture
def server(tmp_path):
    pki = make_pki(tmp_path / "pki", soaklib.NAMES, ocsp_url="http://127.0.0.1:9/")
    responder = soaklib.make_responder(pki).start()
    (tmp_path / "store").mkdir()
    s = soaklib.Server(0, tmp_path, pki, responder.url, None, tmp_path / "store", workers=1)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        responder.stop()


def graceful(s: soaklib.Server) -> None:
    time.sleep(0.5)                      # the one worker has accepted and blocks reading
    os.kill(s.master_pid(), signal.SIGUSR1)
    time.sleep(0.5)


def test_graceful_restart_lets_a_handshake_in_progress_finish(server):
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        graceful(server)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        c = ctx.wrap_socket(raw, server_hostname="a.test")   # the ClientHello only now
        c.sendall(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 200 ")
    finally:
        raw.close()
    assert server.count("HP02002") == 0


def test_graceful_restart_lets_a_half_read_request_finish(server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10),
                        server_hostname="a.test")
    try:
        c.sendall(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n")   # half a head
        graceful(server)
        c.sendall(b"Connection: close\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 200 ")
    finally:
        c.close()
