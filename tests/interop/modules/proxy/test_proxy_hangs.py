"""Backends that hang before answering, apache2 and httpd-py on the same config: what the client
gets must be the same.

Loopback listeners stand in for the backends (tests.support.tools.silent_backends; nothing
answers):
``/hole/`` a port whose accept queue is full, so the kernel drops the SYN (the connect hangs,
as with a host that is down); ``/tlshole/`` an HTTPS backend whose connects complete but whose
TLS ClientHello is never answered; ``/sink/`` a backend that takes the connection and reads
nothing, so a large upload's writes stop.  httpd-py parks these requests in its event loop
(tests/interop/modules/proxy/test_proxy_parking.py shows that the worker serves others
meanwhile); here only the answers are compared, after the short timeouts of the config.
"""
from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

from tests.support.apache import apache_serving, pair_conf
from tests.support.server import httpd
from tests.support.tools import (free_port, port_accepting, read_to_eof, silent_backends,
                                 upload, wait_until)

MODULES = ("mpm_prefork", "authz_core", "proxy", "proxy_http", "ssl", "socache_shmcb")
UPLOAD = 32 << 20


@pytest.fixture(scope="module")
def holes():
    with silent_backends() as ports:
        yield ports


@pytest.fixture(scope="module")
def servers(holes):
    hole, mute = holes
    base = Path(tempfile.mkdtemp(prefix="proxy-hangs-"))
    os.chmod(base, 0o755)
    fragment = base / "fragment.conf"
    fragment.write_text(f"""SSLProxyEngine On
SSLProxyVerify none
SSLProxyCheckPeerName Off
ProxyPass /hole/ http://127.0.0.1:{hole}/ connectiontimeout=2
ProxyPass /tlshole/ https://127.0.0.1:{mute}/ connectiontimeout=2 timeout=2
ProxyPass /sink/ http://127.0.0.1:{mute}/ timeout=3
""")
    ports = {}
    roots = {}
    for tag in ("apache", "httpd-py"):
        root = base / tag
        (root / "logs").mkdir(parents=True)
        os.chmod(root, 0o755)
        os.chmod(root / "logs", 0o777)
        ports[tag] = free_port()
        roots[tag] = root
        (root / "httpd.conf").write_text(pair_conf(root, tag, ports[tag], MODULES, fragment))
    srv_root = roots["httpd-py"]
    with apache_serving(roots["apache"] / "httpd.conf", roots["apache"], ports["apache"],
                        roots["apache"] / "logs" / "apache.pid"):
        with httpd(srv_root, (srv_root / "httpd.conf").read_text()):
            wait_until(lambda: port_accepting(ports["httpd-py"]), 15, what="httpd-py listening")
            yield ports


def _answer(data: bytes) -> tuple[bytes, bytes]:
    """(status line, body) of a response, b"" for both when there was none."""
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], body


def _status(port: int, path: str) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                  .encode())
        return _answer(read_to_eof(s))


def _upload_status(port: int) -> tuple[bytes, bytes]:
    """What a 32 MiB POST to /sink/ gets (b"" when the connection just closed)."""
    return _answer(upload(port, "/sink/x", UPLOAD))


@pytest.mark.parametrize("path", ["/hole/x", "/tlshole/x"])
def test_a_hung_connect_or_handshake_gets_apaches_answer(servers, path):
    """The status line and the error page: 503 for the connect, "500 Proxy Error" (Error during
    SSL Handshake with remote server) for the handshake."""
    got = {tag: _status(port, path) for tag, port in servers.items()}
    assert got["httpd-py"] == got["apache"], got
    assert got["apache"][0] in (b"HTTP/1.1 503 Service Unavailable",
                                b"HTTP/1.1 500 Proxy Error"), got


def test_a_backend_that_reads_nothing_of_an_upload_gets_apaches_answer(servers):
    """504 Gateway Timeout and its page once the backend took nothing more for the timeout."""
    got = {tag: _upload_status(port) for tag, port in servers.items()}
    assert got["httpd-py"] == got["apache"], got
    assert got["apache"][0] == b"HTTP/1.1 504 Gateway Timeout", got
