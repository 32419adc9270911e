"""One worker process, many proxied requests in flight: a request waiting for its backend is
parked (http/park.py) and the worker serves its other connections meanwhile.

The backend's ``/gate/NAME/N`` answers only once N requests for NAME wait there together (or
says "closed" after 10 s), so these tests see concurrency as an event, never as a timing:
with one worker that slept in each backend read, a gate for 2 or more would never open.
"""
from __future__ import annotations

import concurrent.futures
import socket
import ssl
import uuid

import pytest

from tests.support.apache import minimal_conf
from tests.support.server import httpd
from tests.support.tools import (free_port, port_accepting, read_to_eof, silent_backends,
                                 upload, wait_until)

MODULES = ("mpm_prefork", "authz_core", "proxy", "proxy_http", "proxy_wstunnel", "ssl",
           "log_config", "status")


def _get(port: int, path: str, timeout: float = 30, tls: ssl.SSLContext | None = None
         ) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.0 GET."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        s = tls.wrap_socket(raw, server_hostname="localhost") if tls else raw
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"
                  .encode())
        data = read_to_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture()
def black_hole():
    """(hole, mute): tests.support.tools.silent_backends."""
    with silent_backends() as ports:
        yield ports


def _holes(ports: tuple[int, int]) -> str:
    hole, mute = ports
    return (f"ProxyPass /hole/ http://127.0.0.1:{hole}/ connectiontimeout=4\n"
            f"ProxyPass /tlshole/ https://127.0.0.1:{mute}/ connectiontimeout=4\n"
            f"ProxyPass /sink/ http://127.0.0.1:{mute}/ timeout=12\n")


@pytest.fixture()
def one_worker(tmp_path, backends, proxy_site, request):
    """httpd-py with one worker process (two at most, so that a graceful restart's new
    generation has a slot while the old worker finishes; exactly one when the test is marked
    ``only_one``) in front of backend b1."""
    most = 1 if request.node.get_closest_marker("only_one") else 2
    root = tmp_path / "srv"
    (root / "logs").mkdir(parents=True)
    port, tls_port = free_port(), free_port()
    certs = proxy_site / "backends"
    conf = minimal_conf(root, MODULES, listen=f"127.0.0.1:{port}", extra=f"""
Listen 127.0.0.1:{tls_port}
LogFormat "%>s %{{SSL_PROTOCOL}}x %r" parked
CustomLog {root}/logs/access.log parked
StartServers 1
MinSpareServers 1
MaxSpareServers 1
MaxRequestWorkers {most}
ProxyTimeout 20
ProxyPass /ws/ ws://127.0.0.1:{backends.b1}/ws/
ProxyPass /short/ http://127.0.0.1:{backends.b1}/short/ timeout=1
ProxyPass /app/ http://127.0.0.1:{backends.b1}/
{_holes(request.getfixturevalue("black_hole"))
 if request.node.get_closest_marker("black_hole") else ""}
<Location /server-status>
    SetHandler server-status
</Location>
SSLProxyEngine On
SSLProxyCACertificateFile {certs / "ca.pem"}
ProxyPass /tlsapp/ https://localhost:{backends.tls}/
<VirtualHost 127.0.0.1:{tls_port}>
    ServerName localhost
    SSLEngine on
    SSLCertificateFile {certs / "backend.pem"}
    SSLCertificateKeyFile {certs / "backend.key"}
</VirtualHost>
""")
    with httpd(root, conf) as srv:
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        srv.tls_port = tls_port
        srv.access_log = root / "logs" / "access.log"
        srv.tls = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        yield srv, port


def _waiting(port: int, name: str) -> int:
    status, body = _get(port, f"/app/gate/{name}/0")
    assert status == 200, body
    return int(body.split()[1])


def test_one_worker_holds_many_proxied_requests(one_worker):
    _, port = one_worker
    name, n = uuid.uuid4().hex, 6
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda _: _get(port, f"/app/gate/{name}/{n}"), range(n)))
    assert answers == [(200, f"opened {n}".encode())] * n


def _parked_now(port: int) -> int:
    status, body = _get(port, "/server-status?auto", timeout=5)
    assert status == 200, body
    line = next(x for x in body.decode().splitlines() if x.startswith("RequestsParked: "))
    return int(line.split()[1])


@pytest.mark.only_one
def test_server_status_counts_the_parked_requests(one_worker):
    """Two requests parked at a gate for three show in ``?auto`` (RequestsParked: 2, the
    worker's own count as of its loop's last turn); the third opens the gate, and the count
    goes back to 0."""
    _, port = one_worker
    name = uuid.uuid4().hex
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        first = [pool.submit(_get, port, f"/app/gate/{name}/3") for _ in range(2)]
        wait_until(lambda: _parked_now(port) == 2, 10, what="two parked requests counted")
        last = pool.submit(_get, port, f"/app/gate/{name}/3")
        assert [f.result() for f in (*first, last)] == [(200, b"opened 3")] * 3
    wait_until(lambda: _parked_now(port) == 0, 10, what="no parked request counted")


def test_requests_to_an_https_backend_park_too(one_worker):
    """An HTTPS backend's reads park as a plain one's do: one worker holds 4 requests at the
    TLS backend's gate, which opens only once all 4 wait there together."""
    _, port = one_worker
    name, n = uuid.uuid4().hex, 4
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda _: _get(port, f"/tlsapp/gate/{name}/{n}"), range(n)))
    assert answers == [(200, f"opened {n}".encode())] * n


def test_parked_requests_time_out_alone(one_worker):
    """A request parked past its worker's timeout gets the proxy error while the worker goes
    on serving others (which open their own gate)."""
    _, port = one_worker
    name = uuid.uuid4().hex
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        hung = pool.submit(_get, port, "/short/slowhead/3")
        gate = [pool.submit(_get, port, f"/app/gate/{name}/3") for _ in range(3)]
        assert [f.result() for f in gate] == [(200, b"opened 3")] * 3
        status, body = hung.result()
    assert status == 502 and b"Error reading from remote server" in body


def test_graceful_restart_finishes_parked_requests(one_worker):
    """SIGUSR1 while three requests are parked: the old worker stops accepting, finishes
    them once the new generation's worker sends the fourth through, then exits."""
    srv, port = one_worker
    name = uuid.uuid4().hex
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        first = [pool.submit(_get, port, f"/app/gate/{name}/4") for _ in range(3)]
        wait_until(lambda: _waiting(port, name) == 3, 15, what="three requests at the gate")
        srv.restart(graceful=True)
        last = pool.submit(_get, port, f"/app/gate/{name}/4")
        got = [f.result() for f in (*first, last)]
    assert got == [(200, b"opened 4")] * 4
    assert "unexpected" not in srv.log_text()


def test_parked_tls_and_plain_requests_keep_their_own_connection_state(one_worker):
    """Three TLS and three plain requests parked together on one worker: each is answered on
    its own connection and logged with its own connection's TLS facts (the handler's request
    state is saved and restored around every park)."""
    srv, port = one_worker
    name, n = uuid.uuid4().hex, 6
    jobs = [(srv.tls_port, srv.tls, f"/app/gate/{name}/{n}?tls={i}") for i in range(3)] + \
           [(port, None, f"/app/gate/{name}/{n}?plain={i}") for i in range(3)]
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda j: _get(j[0], j[2], tls=j[1]), jobs))
    assert answers == [(200, f"opened {n}".encode())] * n
    wait_until(lambda: srv.access_log.read_text().count(f"/app/gate/{name}/") == n, 10,
               what="six access-log lines")
    lines = [l for l in srv.access_log.read_text().splitlines() if name in l]
    tls_protocols = {l.split()[1] for l in lines if "tls=" in l}
    assert len(lines) == n
    assert tls_protocols <= {"TLSv1.2", "TLSv1.3"} and tls_protocols, lines
    assert {l.split()[1] for l in lines if "plain=" in l} == {"-"}, lines


def _established_to(port: int) -> set[int]:
    """Local ports of the loopback TCP connections established to ``port`` (/proc/net/tcp:
    on this machine only the proxy under test talks to that backend)."""
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state == "01" and int(remote.split(":")[1], 16) == port:
                ports.add(int(local.split(":")[1], 16))
    return ports


def test_parked_requests_reuse_their_backend_connections(one_worker, backends):
    """Six requests parked at once need six backend connections; the next six use the same
    ones again (the pool keeps as many as were in use at once, not one)."""
    _, port = one_worker
    seen = []
    for _ in range(2):
        name, n = uuid.uuid4().hex, 6
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            got = list(pool.map(lambda _: _get(port, f"/app/gate/{name}/{n}"), range(n)))
        assert got == [(200, f"opened {n}".encode())] * n
        seen.append(_established_to(backends.b1))
    assert len(seen[0]) == 6 and seen[1] == seen[0]


@pytest.mark.only_one
def test_an_open_websocket_tunnel_does_not_hold_its_worker(one_worker):
    """With exactly one worker: while a WebSocket tunnel through it is open and idle, the
    worker answers another client (the tunnel is parked between messages), and the tunnel
    still echoes afterwards."""
    from tests.interop.modules.proxy.client import ws_echo
    _, port = one_worker
    between = []

    def messages():
        yield "before"
        between.append(_get(port, "/app/who", timeout=10))
        yield "after"
        yield "close"

    got = ws_echo(port, "/ws/echo", messages=messages())
    assert between == [(200, b"b1")]
    assert got == [("text", "echo:before"), ("text", "echo:after"), ("close", 1000)]


@pytest.mark.only_one
def test_a_stalled_upload_does_not_hold_its_worker(one_worker):
    """With exactly one worker: a client that sends half of a proxied request's body and
    stops does not stall the worker (the body read parks); another client is answered, then
    the rest of the body goes through to the backend whole."""
    import json
    _, port = one_worker
    with socket.create_connection(("127.0.0.1", port), timeout=15) as a:
        a.sendall(b"POST /app/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n"
                  b"Connection: close\r\n\r\n" + b"x" * 10)
        assert _get(port, "/app/who", timeout=10) == (200, b"b1")
        a.sendall(b"y" * 90)
        head, _, body = read_to_eof(a).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    got = json.loads(body)
    assert got["method"] == "POST" and got["body_length"] == 100
    assert got["body_head"].startswith("xxxxxxxxxxyyy")


@pytest.mark.only_one
@pytest.mark.black_hole
@pytest.mark.parametrize("path, expect", [("/hole/x", 503), ("/tlshole/x", 500)])
def test_a_hung_backend_connect_does_not_hold_its_worker(one_worker, path, expect):
    """With exactly one worker: a request whose backend's connect hangs (the SYN is dropped),
    or whose TLS handshake with the backend does (the ClientHello is never answered), waits in
    the loop; another client is answered meanwhile, and the hung one gets Apache's answer
    after connectiontimeout (503; 500 "Error during SSL Handshake with remote server")."""
    _, port = one_worker
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        hung = pool.submit(_get, port, path)
        wait_until(lambda: _parked_now(port) == 1, 10, what="the connecting request parked")
        assert _get(port, "/app/who", timeout=10) == (200, b"b1")
        status, body = hung.result()
    assert status == expect, body
    if expect == 500:
        assert b"Error during SSL Handshake with remote server" in body


@pytest.mark.only_one
@pytest.mark.black_hole
def test_a_backend_that_stops_reading_an_upload_does_not_hold_its_worker(one_worker):
    """With exactly one worker: a 32 MiB upload to a backend that never reads (its socket
    buffers fill, the proxy's writes stop) waits in the loop; another client is answered
    meanwhile; after the timeout the rest of the body is read and dropped (counted from where
    the proxy stopped: it used to wait for the whole length again) and the client gets
    apache2's 504 (test_proxy_hangs.py)."""
    _, port = one_worker
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(upload, port, "/sink/x", 32 << 20)
        # both well inside the backend's timeout (12 s), which would free a blocked worker
        wait_until(lambda: _parked_now(port) == 1, 5, what="the upload parked")
        assert _get(port, "/app/who", timeout=5) == (200, b"b1")
        answer = stuck.result()
    assert answer.startswith(b"HTTP/1.1 504 "), answer[:300]
