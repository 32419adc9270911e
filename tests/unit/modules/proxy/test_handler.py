"""The proxy-server handler against a scripted backend on loopback: what it sends (head, body
framing, 100-continue), what it answers (streamed bodies, errors), connection reuse.

The backend is a thread that accepts connections and plays a script per connection: each step
reads a request (head, then the body its framing says) and answers bytes.  A ``Body`` fake
stands for the pipeline's ``req.body`` (read(n), length, expecting_continue).
"""
from __future__ import annotations

import os
import socket
import tempfile
import threading

import pytest

from httpd_py.config import load
from httpd_py.http.hooks import OK, Request, Response
from httpd_py.modules.proxy import backend as be
from httpd_py.modules.proxy import handler as H


class Backend:
    """Accepts connections; ``answers`` is a list of callables(conn, request_bytes) -> None,
    one per request in arrival order (connections may carry several)."""

    def __init__(self, answers):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(10)
        while self.answers:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            c.settimeout(10)
            buf = b""
            while self.answers:
                try:
                    req, buf = _read_request(c, buf)
                except (ConnectionError, socket.timeout):
                    break
                if req is None:
                    break
                self.requests.append(req)
                ans = self.answers.pop(0)
                keep = ans(c, req)
                if not keep:
                    break
            c.close()

    def close(self):
        self.sock.close()
        self.thread.join(5)


def _read_request(c, buf: bytes):
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return None, b""
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lower = head.lower()
    if b"expect: 100-continue" in lower:
        c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if b"content-length:" in lower:
        n = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < n:
            rest += c.recv(65536)
        return head + b"\r\n\r\n" + rest[:n], rest[n:]
    if b"transfer-encoding: chunked" in lower:
        while not rest.endswith(b"0\r\n\r\n"):
            rest += c.recv(65536)
        return head + b"\r\n\r\n" + rest, b""
    return head + b"\r\n\r\n", rest


def ok(body=b"hi", extra=b"", keep=True):
    def a(c, req):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body))
        return keep
    return a


class Body:
    def __init__(self, data: bytes, length: int | None, chunks: int = 4096, expecting=False):
        self.data, self.length, self.step = data, length, chunks
        self.expecting_continue = expecting
        self.reads = 0
        self._reader = None

    def read(self, n=65536):
        self._reader = True
        self.reads += 1
        d, self.data = self.data[:min(n, self.step)], self.data[min(n, self.step):]
        return d


def config(text: str):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "httpd.conf")
        with open(path, "w") as f:
            f.write(f"ServerRoot {d}\nServerName front\nListen 127.0.0.1:18997\n" + text)
        return load(path, log_warnings=False)


def request(cfg, uri="/b/x", method="GET", headers=None, body=None, query=""):
    hdrs = {"host": "front"} if headers is None else headers
    raw = [(k.encode(), v.encode()) for k, v in hdrs.items()]
    r = Request(method, uri, query, hdrs, "1.1", f"{method} {uri} HTTP/1.1", "192.0.2.1", 4000,
                "127.0.0.1", 80, False, cfg.main, hostname="front", unparsed_uri=uri,
                server=cfg, raw_headers=raw)
    r.body = body
    assert H.translate(r) == OK
    r.conf = cfg.main.dir
    return r


def drain(resp: Response) -> bytes:
    if isinstance(resp.body, (bytes, bytearray)):
        return bytes(resp.body)
    return b"".join(resp.body)


@pytest.fixture(autouse=True)
def fresh_pool():
    be.POOL.close_all()
    yield
    be.POOL.close_all()


def test_get_head_and_keepalive_reuse():
    b = Backend([ok(b"one"), ok(b"two")])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/base\n")
    r1 = H.handle(request(cfg, query="q=1"))
    assert r1.status == 200 and drain(r1) == b"one"
    r2 = H.handle(request(cfg, "/b/y"))
    assert drain(r2) == b"two"
    b.close()
    assert b.connections == 1                        # the kept connection was reused
    head = b.requests[0].decode()
    assert head.startswith(f"GET /base/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{b.port}\r\n")
    assert "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Host: front\r\n" in head
    assert head.endswith("Connection: Keep-Alive\r\n\r\n")


def test_disablereuse_sends_close_and_does_not_pool():
    b = Backend([ok(keep=False), ok(keep=False)])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/ disablereuse=On\n")
    for _ in range(2):
        drain(H.handle(request(cfg)))
    b.close()
    assert b.connections == 2 and b"Connection: close" in b.requests[0]


def test_stale_pooled_connection_is_retried_once():
    def close_after(c, req):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA")
        return False                                 # the backend closes the kept connection
    b = Backend([close_after, ok(b"B")])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/\n")
    assert drain(H.handle(request(cfg))) == b"A"
    assert drain(H.handle(request(cfg))) == b"B"
    b.close()


def test_body_with_length_streams_in_pieces():
    data = os.urandom(300_000)
    b = Backend([ok()])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/\n")
    body = Body(data, len(data))
    drain(H.handle(request(cfg, method="PUT", body=body,
                           headers={"host": "front", "content-length": str(len(data))})))
    b.close()
    assert b.requests[0].endswith(data) and body.reads > 10
    assert b"Content-Length: 300000\r\n" in b.requests[0]


def test_small_chunked_body_is_sent_with_a_length():
    b = Backend([ok()])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/\n")
    drain(H.handle(request(cfg, method="POST", body=Body(b"tiny", None),
                           headers={"host": "front", "transfer-encoding": "chunked"})))
    b.close()
    assert b"Content-Length: 4\r\n" in b.requests[0] and b.requests[0].endswith(b"\r\n\r\ntiny")
    assert b"chunked" not in b.requests[0].lower()


def test_long_chunked_body_stays_chunked():
    data = b"z" * 50_000
    b = Backend([ok()])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/\n")
    drain(H.handle(request(cfg, method="POST", body=Body(data, None),
                           headers={"host": "front", "transfer-encoding": "chunked"})))
    b.close()
    req = b.requests[0]
    assert b"Transfer-Encoding: chunked\r\n" in req and req.endswith(b"0\r\n\r\n")
    head, _, chunked = req.partition(b"\r\n\r\n")
    from httpd_py.http.body import CHUNKED, BodyReader, Framing
    out, done = BodyReader(Framing(CHUNKED)).feed(chunked)
    assert done and out == data


def test_expect_100_waits_for_the_backend():
    b = Backend([ok(b"after")])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/\n")
    body = Body(b"payload", 7, expecting=True)
    r = H.handle(request(cfg, method="POST", body=body,
                         headers={"host": "front", "content-length": "7",
                                  "expect": "100-continue"}))
    assert drain(r) == b"after"
    b.close()
    assert b"expect: 100-continue" in b.requests[0].lower() and b.requests[0].endswith(b"payload")


def test_expect_answered_early_leaves_the_body_unread():
    """A backend that answers a forwarded Expect with a final status: the client's body is not
    read (the pipeline drains or closes)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def run():
        c, _ = srv.accept()
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += c.recv(4096)
        c.sendall(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    cfg = config(f"ProxyPass /b http://127.0.0.1:{srv.getsockname()[1]}/\n")
    body = Body(b"never", 5, expecting=True)
    r = H.handle(request(cfg, method="POST", body=body, headers={
        "host": "front", "content-length": "5", "expect": "100-continue"}))
    t.join(5)
    srv.close()
    assert r.status == 413 and body.reads == 0


def test_chunked_response_streams_and_half_written_response_raises():
    more = threading.Event()

    def chunked(c, req):
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        more.wait(10)                   # the rest only once the handler has answered
        c.sendall(b"6\r\n world\r\n0\r\n\r\n")
        return True

    def half(c, req):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"h" * 40)
        return False
    b = Backend([chunked, half])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/\n")
    r = H.handle(request(cfg))
    assert not isinstance(r.body, bytes)         # answered with the first data: streamed
    more.set()
    assert drain(r) == b"hello world"
    r2 = H.handle(request(cfg))
    got = b""
    with pytest.raises(be.BackendError):
        for piece in r2.body:
            got += piece
    assert got == b"h" * 40
    b.close()


def test_refused_is_503_and_bad_head_is_502():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    cfg = config(f"ProxyPass /b http://127.0.0.1:{dead}/\n")
    assert H.handle(request(cfg)) == 503

    def junk(c, req):
        c.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        return False
    b = Backend([junk])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/\n")
    assert H.handle(request(cfg)) == 502
    b.close()


def test_timeout_is_proxy_error():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)                     # accepts (the kernel does), never answers
    cfg = config(f"ProxyPass /b http://127.0.0.1:{srv.getsockname()[1]}/ timeout=1\n")
    r = H.handle(request(cfg))
    srv.close()
    assert isinstance(r, Response) and r.status == 502 and b"Proxy Error" in r.body


def test_response_headers_filtered_and_reversed():
    def redirect(c, req):
        c.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://inner:9/base/next\r\n"
                  b"Connection: close, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: t\r\n"
                  b"Set-Cookie: s=1; Path=/base/p; Domain=inner\r\nServer: backend\r\n"
                  b"Content-Length: 0\r\n\r\n")
        return False
    b = Backend([redirect])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/base\n"
                 "ProxyPassReverse /b http://inner:9/base\n"
                 "ProxyPassReverseCookiePath /base /b\nProxyPassReverseCookieDomain inner front\n"
                 "ProxyVia On\n")
    r = H.handle(request(cfg, headers={"host": "front:8080"}))
    b.close()
    names = [n.lower() for n, _ in r.headers]
    assert "x-drop" not in names and "keep-alive" not in names and "connection" not in names
    assert r.header("location") == "http://front:8080/b/next"
    assert r.header("set-cookie") == "s=1; Path=/b; Domain=front"
    assert r.header("via") == "1.1 front:8080"


def test_error_override_returns_the_status():
    b = Backend([lambda c, req: (c.sendall(b"HTTP/1.1 404 Nope\r\nContent-Length: 3\r\n\r\nabc"),
                                 False)[1]])
    cfg = config(f"ProxyPass /b http://127.0.0.1:{b.port}/\nProxyErrorOverride On\n")
    assert H.handle(request(cfg)) == 404
    b.close()


def _tls_server(cert, key):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def run():
        for _ in range(4):
            try:
                c, _ = srv.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(c, server_side=True) as t:
                    t.recv(4096)
                    t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntls")
            except (OSError, ssl.SSLError):
                pass
    threading.Thread(target=run, daemon=True).start()
    return srv


@pytest.mark.parametrize("settings, host, ok", [
    ({"engine": True}, "localhost", True),                           # verify none
    ({"engine": True}, "127.0.0.1", False),          # ... but the name is checked (mod_ssl)
    ({"engine": True, "check_peer_name": False}, "127.0.0.1", True),
    ({"engine": True, "check_peer_cn": False}, "127.0.0.1", True),     # Name unset: CN decides
    ({"engine": True, "verify": "require", "ca": True}, "localhost", True),
    ({"engine": True, "verify": "require", "ca": True}, "127.0.0.1", False),   # name check
    ({"engine": True, "verify": "require", "ca": True, "check_peer_name": False},
     "127.0.0.1", True),
    ({"engine": True, "verify": "require"}, "localhost", False),     # unknown CA
])
def test_tls_backends(tmp_path, settings, host, ok):
    from tests.interop.modules.proxy.conftest import _certs
    from httpd_py.modules.proxy.conf import SSLProxySettings, Worker
    ca, cert, key = _certs(tmp_path)
    srv = _tls_server(cert, key)
    port = srv.getsockname()[1]
    s = SSLProxySettings(engine=settings["engine"], verify=settings.get("verify", "none"),
                         ca_file=str(ca) if settings.get("ca") else None,
                         check_peer_name=settings.get("check_peer_name"),
                         check_peer_cn=settings.get("check_peer_cn", True))
    w = Worker(f"https://{host}:{port}", "https", host, port)
    try:
        c = be.connect(w, 5, 5, s)
    except be.ConnectFailed:
        assert not ok
    else:
        assert ok
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv().endswith(b"tls")
        c.close()
    srv.close()
