"""Slow and idle connections never hold a worker (the workers' event loop, http/waiting.py).

Real forked servers on loopback:

* slowloris: 40 connections each sending one byte of a never-ending head every second, against
  4 workers with mod_reqtimeout (header=2-4,MinRate=500); a normal client asking for ``/`` every
  250 ms is answered every time, and every slow connection is cut by reqtimeout;
* 1,000 idle keep-alive TLS connections held open against 8 workers: new clients are still
  answered, and every idle connection still works afterwards;
* hostile TLS input (a truncated ClientHello, a ClientHello one byte at a time, garbage) leaves
  the worker serving others;
* a graceful restart closes idle keep-alive connections and loses no request in flight.

Latency figures are measured by scripts/bench (docs/benchmarks.md); here only bounds no
prefork-without-event-loop server could meet (it fails these outright: every worker is held).
"""
from __future__ import annotations

import os
import signal
import socket
import ssl
import statistics
import threading
import time
from pathlib import Path

import pytest

from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, require_tool, wait_until

HEAD = b"GET / HTTP/1.1\r\nHost: w.test\r\n"


def _conf(tmp: Path, port: int, workers: int, extra: str = "", tls: Path | None = None) -> str:
    (tmp / "htdocs").mkdir(exist_ok=True)
    (tmp / "htdocs" / "index.html").write_text("hello\n")
    ssl_lines = ""
    if tls is not None:
        ssl_lines = (f"SSLEngine on\nSSLCertificateFile {tls}/cert.pem\n"
                     f"SSLCertificateKeyFile {tls}/key.pem\n")
    return f"""ServerRoot {tmp}
LoadModule reqtimeout_module /usr/lib/apache2/modules/mod_reqtimeout.so
Listen 127.0.0.1:{port}
ServerName w.test
DocumentRoot {tmp}/htdocs
ErrorLog {tmp}/error.log
LogLevel info
PidFile {tmp}/httpd.pid
StartServers {workers}
MinSpareServers 1
MaxSpareServers {workers}
ServerLimit {workers}
MaxRequestWorkers {workers}
KeepAliveTimeout 60
MaxKeepAliveRequests 0
{ssl_lines}{extra}
"""


def _get(port: int, timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: w.test\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:60]
    return time.monotonic() - t0


def test_slowloris_never_starves_a_normal_client(tmp_path):
    port = free_port()
    conf = _conf(tmp_path, port, 4, "RequestReadTimeout header=2-4,MinRate=500\n")
    cut_after: list[float] = []
    stop = threading.Event()

    def slow(i: int) -> None:
        end = time.monotonic() + 12
        while not stop.is_set() and time.monotonic() < end:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError:
                time.sleep(0.1)
                continue
            opened = time.monotonic()
            try:
                s.sendall(HEAD[:1])
                k = 1
                while not stop.is_set() and time.monotonic() < end:
                    r, _, _ = select_read(s, 1.0)
                    if r:
                        data = s.recv(4096)
                        if not data or data.startswith(b"HTTP/1.1 408"):
                            cut_after.append(time.monotonic() - opened)
                            break
                    s.sendall(bytes([(b"X-Slow: aaaa\r\n" * 100)[k % 1400]]))
                    k += 1
            except OSError:
                cut_after.append(time.monotonic() - opened)
            finally:
                s.close()

    with httpd(tmp_path, conf):
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        threads = [threading.Thread(target=slow, args=(i,), daemon=True) for i in range(40)]
        for t in threads:
            t.start()
        latencies, failures = [], []
        end = time.monotonic() + 8
        while time.monotonic() < end:          # bounded: 8 s of requests, 250 ms apart
            try:
                latencies.append(_get(port, timeout=10))
            except (OSError, AssertionError) as e:
                failures.append(f"{type(e).__name__}: {e}")
            time.sleep(0.25)
        stop.set()
        for t in threads:
            t.join(15)
    assert failures == []
    assert len(latencies) >= 20
    assert sorted(latencies)[int(len(latencies) * 0.99) - 1] < 1.0
    # every slow connection was cut by reqtimeout (header=2-4: a few seconds, never held on)
    assert cut_after, "reqtimeout cut no slow connection"
    assert max(cut_after) < 8.0, max(cut_after)


def select_read(s: socket.socket, timeout: float):
    import select
    return select.select([s], [], [], timeout)


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory) -> Path:
    require_tool("openssl")
    d = tmp_path_factory.mktemp("tls")
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem"), "-days", "2", "-subj", "/CN=w.test"],
                   check=True, capture_output=True)
    return d


def _tls_client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _keepalive_get(s) -> None:
    s.sendall(b"GET / HTTP/1.1\r\nHost: w.test\r\n\r\n")
    data = b""
    while b"hello\n" not in data:
        chunk = s.recv(4096)
        assert chunk, "connection closed"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")


def test_a_thousand_idle_keepalive_tls_connections_hold_no_worker(tmp_path, tls_material):
    port = free_port()
    conf = _conf(tmp_path, port, 8, tls=tls_material)
    ctx = _tls_client()
    held = []
    with httpd(tmp_path, conf):
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        try:
            for _ in range(1000):
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                s = ctx.wrap_socket(raw, server_hostname="w.test")
                _keepalive_get(s)            # one request, then idle in keep-alive
                held.append(s)
            # new clients are answered while 1,000 connections wait idle
            took = []
            for _ in range(50):
                t0 = time.monotonic()
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                with ctx.wrap_socket(raw, server_hostname="w.test") as s:
                    _keepalive_get(s)
                took.append(time.monotonic() - t0)
            assert statistics.median(took) < 1.0
            # and every idle connection still serves its next request
            for s in held[::50]:
                _keepalive_get(s)
        finally:
            for s in held:
                s.close()


@pytest.mark.parametrize("hostile", ["truncated", "byte-by-byte", "garbage"])
def test_hostile_tls_input_leaves_the_worker_serving(tmp_path, tls_material, hostile):
    port = free_port()
    conf = _conf(tmp_path, port, 1, tls=tls_material)   # ONE worker: it must serve both
    ctx = _tls_client()
    with httpd(tmp_path, conf):
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        # a real ClientHello to cut up: what Python's client sends first
        bad = socket.create_connection(("127.0.0.1", port), timeout=10)
        hello = _client_hello()
        if hostile == "truncated":
            bad.sendall(hello[: len(hello) // 2])
        elif hostile == "garbage":
            bad.sendall(os.urandom(300))
        else:
            bad.sendall(hello[:1])
        try:
            # the single worker answers another client while the hostile one is open
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            with ctx.wrap_socket(raw, server_hostname="w.test") as s:
                _keepalive_get(s)
            if hostile == "byte-by-byte":
                for b in hello[1:40]:
                    bad.sendall(bytes([b]))
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                with ctx.wrap_socket(raw, server_hostname="w.test") as s:
                    _keepalive_get(s)
        finally:
            bad.close()


def _client_hello() -> bytes:
    """The bytes Python's TLS client sends first (a ClientHello record)."""
    out, inc = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = _tls_client().wrap_bio(inc, out, server_hostname="w.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = out.read()
    assert data[:1] == b"\x16"
    return data


def test_graceful_restart_closes_idle_keepalive_and_finishes_requests(tmp_path):
    port = free_port()
    conf = _conf(tmp_path, port, 2)
    with httpd(tmp_path, conf) as srv:
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)
        idle.sendall(b"GET / HTTP/1.1\r\nHost: w.test\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200 ")
        pid = int((tmp_path / "httpd.pid").read_text())
        os.kill(pid, signal.SIGUSR1)
        # the idle keep-alive connection is closed by its (old-generation) worker
        idle.settimeout(15)
        assert idle.recv(4096) == b""
        idle.close()
        # and the server goes on answering
        wait_until(lambda: _ok(port), 15, what="answers after the graceful restart")


def _ok(port: int) -> bool:
    try:
        _get(port)
        return True
    except (OSError, AssertionError):
        return False
