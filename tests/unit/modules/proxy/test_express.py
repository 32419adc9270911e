"""mod_proxy's lane (modules/proxy/express.py) against the phases it stands in for.

Every request below goes through the pipeline twice, with the vhost's lane and without it
(``VHostRuntime.lane = None``: translate, the walk, access, fixups, the proxy-server handler),
to the same scripted backend on loopback, from a kept backend connection (the lane serves only
those).  Compared: what the backend received, what the client received (byte for byte, the
pipeline's own Date aside), the access-log line, whether the client connection stays open.
The requests and answers the lane takes itself are checked to have been taken by it
(``Lane.served``); the others (a header sent twice, Vary, chunked, ...) to have gone on to
the handler or the phases with the same outcome.
"""
from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from httpd_py.config import load
from httpd_py.http import connection
from httpd_py.http.protocol import Limits, parse_head
from httpd_py.modules.proxy import backend as be
from httpd_py.modules.proxy import express
from httpd_py.tls.sites import build_sites

LOG = ('%h %a %l %u "%r" %>s %b %O %I %U %q %H %m %v %X %k "%{Server}o" "%{Content-Type}o" '
       '"%{Keep-Alive}o" "%{Connection}o" "%{X-Forwarded-For}i" "%{Set-Cookie}o"')


class Backend:
    """Keep-alive backend on loopback: records each request head and answers with
    ``self.answer`` (bytes; b"" closes the connection without answering, a tuple of bytes is
    sent piece by piece with a pause between: a head its body does not arrive with)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.answer = b""
        self.requests: list[bytes] = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(10)
        buf = b""
        with c:
            while not self.stop:
                while b"\r\n\r\n" not in buf:
                    try:
                        d = c.recv(65536)
                    except OSError:
                        return
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                self.requests.append(head + b"\r\n\r\n")
                answer = self.answer
                if not answer:
                    return
                if isinstance(answer, tuple):
                    for i, piece in enumerate(answer):
                        if i:
                            time.sleep(0.05)    # the pieces arrive apart (not a sync point)
                        c.sendall(piece)
                else:
                    c.sendall(answer)
                if b"connection: close" in answer_head(answer).lower():
                    return

    def close(self):
        self.stop = True
        self.sock.close()


def answer_head(answer) -> bytes:
    data = b"".join(answer) if isinstance(answer, tuple) else answer
    return data.partition(b"\r\n\r\n")[0]


class Sink:
    def __init__(self):
        self.data = bytearray()

    def sendall(self, data):
        self.data += data

    def recv(self, n):
        return b""

    def pending(self):
        return 0

    def close(self):
        pass


@pytest.fixture(scope="module")
def backend():
    b = Backend()
    yield b
    b.close()


def front(tmp: Path, backend_port: int, extra: str = "", vhost_extra: str = ""):
    """A handler for a config with ProxyPass /p/ to the backend, and an access log."""
    (tmp / "htdocs").mkdir(parents=True, exist_ok=True)
    conf = tmp / "httpd.conf"
    fmt = LOG.replace('"', '\\"')
    conf.write_text(f"""ServerRoot {tmp}
ServerName front.test
Listen 127.0.0.1:18999
DocumentRoot {tmp}/htdocs
ErrorLog {tmp}/error.log
LogFormat "{fmt}" lane
CustomLog {tmp}/access.log lane
ProxyPass /p/skip !
ProxyPass /p/ http://127.0.0.1:{backend_port}/
{extra}
""")
    cfg = load(str(conf), log_warnings=False)
    sites = build_sites(cfg)
    h = connection.ConnectionHandler(cfg, sites)
    return h, sites.site_for("127.0.0.1", 18999), tmp / "access.log"


def once(h, site, log: Path, raw: bytes, lane: bool, backend: Backend, answer):
    """One request through the handler (the lane on or off), on a kept backend connection."""
    rt = h.runtime(site.default)
    rt.lane = connection._LANE_UNKNOWN if lane else None
    if not be.POOL.count():                     # a kept connection for the request below
        backend.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
        prime, _ = parse_head(bytearray(b"GET /p/prime HTTP/1.1\r\nHost: front.test\r\n\r\n"),
                              Limits())
        h._pending = None
        h._handle_request(Sink(), prime, site, None, None, ("192.0.2.7", 40000),
                          ("127.0.0.1", 18999), None, "192.0.2.7:40000", 1, time.time())
        rt.lane = connection._LANE_UNKNOWN if lane else None
        assert be.POOL.count() == 1
    backend.answer = answer
    backend.requests.clear()
    size = log.stat().st_size if log.exists() else 0
    head, _ = parse_head(bytearray(raw), Limits())
    sink = Sink()
    h._pending = None
    h._force_close = False
    keep = h._handle_request(sink, head, site, None, None, ("192.0.2.7", 40000),
                             ("127.0.0.1", 18999), None, "192.0.2.7:40000", 3, time.time())
    with open(log, "rb") as f:
        f.seek(size)
        line = f.read()
    sent = re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", bytes(sink.data))
    return list(backend.requests), sent, line, keep


REQUESTS = {
    "plain": b"GET /p/a.txt HTTP/1.1\r\nHost: front.test\r\n\r\n",
    "browser": (b"GET /p/dir/page?x=1&y=%41 HTTP/1.1\r\nHost: front.test:8443\r\nUser-Agent: t/1\r\n"
                b"Accept: text/html\r\nAccept-Encoding: gzip\r\nCookie: a=b; c=d\r\nReferer: x\r\n"
                b"X-Empty:\r\n\r\n"),
    "forwarded": (b"GET /p/a.txt HTTP/1.1\r\nHost: front.test\r\nX-Forwarded-For: 10.0.0.1\r\n"
                  b"X-Forwarded-Server: lb\r\n\r\n"),
    "hop-by-hop": (b"GET /p/a.txt HTTP/1.1\r\nHost: front.test\r\nConnection: keep-alive\r\n"
                   b"Keep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: x\r\nTrailer: y\r\n\r\n"),
    "client-close": b"GET /p/a.txt HTTP/1.1\r\nHost: front.test\r\nConnection: close\r\n\r\n",
    "http10": b"GET /p/a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "encoded": b"GET /p/caf%C3%A9%20x/%7Etilde HTTP/1.1\r\nHost: front.test\r\n\r\n",
    "twice": b"GET /p/a.txt HTTP/1.1\r\nHost: front.test\r\nAccept: a\r\nAccept: b\r\n\r\n",
    "named": (b"GET /p/a.txt HTTP/1.1\r\nHost: front.test\r\nConnection: X-Custom\r\n"
              b"X-Custom: 1\r\n\r\n"),
    "upgrade": (b"GET /p/ws HTTP/1.1\r\nHost: front.test\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\n\r\n"),
    "excluded": b"GET /p/skip/x HTTP/1.1\r\nHost: front.test\r\n\r\n",
    "absolute": b"GET http://front.test/p/a.txt HTTP/1.1\r\nHost: front.test\r\n\r\n",
    "head": b"HEAD /p/a.txt HTTP/1.1\r\nHost: front.test\r\n\r\n",
}
# the requests the lane takes itself (with an answer it takes)
LANE_REQUESTS = {"plain", "browser", "forwarded", "hop-by-hop", "client-close", "http10",
                 "encoded"}

_OK = b"HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nServer: backend/1\r\n"
ANSWERS = {
    "ok": _OK + b"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    "no-date-server": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nhi",
    "server-only": b"HTTP/1.1 200 Fine\r\nServer: s\r\nContent-Length: 2\r\n\r\nhi",
    "keepalive-close": _OK + b"Connection: close\r\nContent-Length: 2\r\n\r\nhi",
    "keepalive-header": _OK + b"Keep-Alive: timeout=5, max=99\r\nConnection: Keep-Alive\r\n"
                              b"Content-Length: 2\r\n\r\nhi",
    "spacing": _OK + b"X-A:   spaced  \r\nX-B:\tt\t\r\nx-lower: v\r\nContent-Length:  2 \r\n\r\nhi",
    "cookies": _OK + b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nhi",
    "status-404": _OK.replace(b"200 OK", b"404 Not Found") + b"Content-Length: 3\r\n\r\nno!",
    "status-500": _OK.replace(b"200 OK", b"500 Boom") + b"Content-Length: 3\r\n\r\nbad",
    "redirect": _OK.replace(b"200 OK", b"302 Found") + b"Location: http://127.0.0.1/x\r\n"
                b"Content-Length: 0\r\n\r\n",
    "proxy-auth": _OK + b"Proxy-Authenticate: Basic\r\nContent-Length: 2\r\n\r\nhi",
    # the handler's from here (the lane hands them on)
    "vary": _OK + b"Vary: Accept-Encoding, User-Agent\r\nContent-Length: 2\r\n\r\nhi",
    "chunked": _OK + b"Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    "close-delimited": _OK + b"Connection: close\r\n\r\nuntil the end",
    "no-content": _OK.replace(b"200 OK", b"204 No Content") + b"\r\n",
    "not-modified": _OK.replace(b"200 OK", b"304 Not Modified") + b"ETag: \"x\"\r\n\r\n",
    "split": (_OK + b"Content-Length: 5\r\n\r\n", b"hello"),
    "big-split": (_OK + b"Content-Length: 70000\r\n\r\n" + b"a" * 1000, b"b" * 69000),
    "extra-bytes": _OK + b"Content-Length: 2\r\n\r\nhiTHERE",
    "bad-line": _OK + b"This is not a header\r\nContent-Length: 2\r\n\r\nhi",
    "http10-answer": b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    "interim": b"HTTP/1.1 100 Continue\r\n\r\n" + _OK + b"Content-Length: 2\r\n\r\nhi",
    "two-lengths": _OK + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
    "length-and-chunked": _OK + b"Content-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"2\r\nhi\r\n0\r\n\r\n",
    "obs-fold": _OK + b"X-Folded: a\r\n  b\r\nContent-Length: 2\r\n\r\nhi",
    "named-in-connection": _OK + b"Connection: X-Secret\r\nX-Secret: s\r\nContent-Length: 2\r\n\r\nhi",
    "bare-lf": _OK + b"X-A: 1\nX-B: 2\r\nContent-Length: 2\r\n\r\nhi",
    "two-dates": _OK + b"Date: Fri, 02 Jan 2026 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nhi",
    "closed": b"",
}
LANE_ANSWERS = {"ok", "no-date-server", "server-only", "keepalive-close", "keepalive-header",
                "spacing", "cookies", "status-404", "status-500", "redirect", "proxy-auth"}


@pytest.fixture(autouse=True)
def fresh_pool():
    be.POOL.close_all()
    yield
    be.POOL.close_all()


@pytest.mark.parametrize("request_name, answer", [
    (q, a) for q in sorted(REQUESTS) for a in sorted(ANSWERS)
    if a != "closed" or q == "plain"])     # (one request is enough for a backend that closes)
def test_the_lane_answers_as_the_phases_do(backend, request_name, answer):
    raw = REQUESTS[request_name]
    with tempfile.TemporaryDirectory() as d:
        h, site, log = front(Path(d), backend.port)
        lane_first = h.runtime(site.default)
        without = once(h, site, log, raw, False, backend, ANSWERS[answer])
        be.POOL.close_all()
        before = _served(lane_first)
        with_lane = once(h, site, log, raw, True, backend, ANSWERS[answer])
        taken = _served(h.runtime(site.default)) - before
    assert with_lane == without
    if request_name in LANE_REQUESTS and answer in LANE_ANSWERS:
        assert taken == 1, "the lane did not answer this one itself"
    else:
        assert taken == 0


def _served(rt) -> int:
    lane = rt.lane
    return lane.served if isinstance(lane, express.Lane) else 0


def lane_of(tmp: Path, port: int, extra: str):
    h, site, _ = front(tmp, port, extra)
    rt = h.runtime(site.default)
    return h._lane(rt), rt


@pytest.mark.parametrize("extra", [
    "RewriteEngine On\nRewriteRule ^/x /y",
    "RequestHeader set X-A 1",
    "SetEnv A 1",
    "<If \"%{HTTP_HOST} == 'x'\">\nHeader set X-A 1\n</If>",
])
def test_a_vhost_where_another_module_acts_gets_no_lane(backend, tmp_path, extra):
    lane, _ = lane_of(tmp_path, backend.port, extra)
    assert lane is None


def test_directory_sections_do_not_apply_to_proxied_urls(backend, tmp_path):
    """As apache2's mod_proxy (no <Directory> walk for "proxy:" URLs): Debian's default
    <Directory /> Require all denied does not keep the vhost off the lane."""
    lane, _ = lane_of(tmp_path, backend.port,
                      "<Directory />\nRequire all denied\nSetEnvIf User-Agent x y=1\n</Directory>")
    assert lane is not None


@pytest.mark.parametrize("extra, wire", [
    ("", True),
    ("Header set X-Front 1", False),
    ("AddOutputFilterByType DEFLATE text/plain", False),
    ("<Location /status>\nSetHandler server-status\n</Location>", True),
])
def test_output_hooks_that_may_change_a_response_keep_it_from_the_pre_serialised_head(
        backend, tmp_path, extra, wire):
    lane, rt = lane_of(tmp_path, backend.port, extra)
    assert lane is not None
    assert rt.lane_wire is wire


@pytest.mark.parametrize("extra", [
    "ProxyVia On",
    "ProxyErrorOverride On",
    "ProxyPassReverse /p/ http://127.0.0.1/",
])
def test_rules_whose_settings_the_lane_does_not_copy_go_to_the_phases(backend, tmp_path,
                                                                          extra):
    h, site, log = front(tmp_path, backend.port, extra)
    got = once(h, site, log, REQUESTS["plain"], True, backend, ANSWERS["ok"])
    assert _served(h.runtime(site.default)) == 0
    be.POOL.close_all()
    assert once(h, site, log, REQUESTS["plain"], False, backend, ANSWERS["ok"]) == got


def test_a_location_that_applies_to_the_url_sends_it_through_the_phases(backend, tmp_path):
    extra = "<Location /p/private>\nRequire all denied\n</Location>"
    h, site, log = front(tmp_path, backend.port, extra)
    _, sent, _, _ = once(h, site, log, b"GET /p/private/x HTTP/1.1\r\nHost: front.test\r\n\r\n",
                         True, backend, ANSWERS["ok"])
    assert sent.startswith(b"HTTP/1.1 403 ")
    assert not backend.requests
    _, sent, _, _ = once(h, site, log, REQUESTS["plain"], True, backend, ANSWERS["ok"])
    assert sent.startswith(b"HTTP/1.1 200 ")
    assert _served(h.runtime(site.default)) == 1


class _Slot:
    index = 0
    board = None


def test_mod_status_counts_the_lane_s_answers_as_the_phases(backend, tmp_path):
    """mod_status's accounting (an output hook in hooks.OBSERVERS) sees a lane's response even
    where the other output hooks are skipped: the same counts both ways."""
    from httpd_py import metrics
    from httpd_py.http import hooks
    from httpd_py.modules import status
    metrics.reset_for_tests()
    metrics.create(4)
    metrics.enter(_Slot())
    added = not any(h is status._account for _, h in hooks.OUTPUT)
    if added:
        hooks.add_output(status._account, hooks.ORDER_LAST)
    try:
        counts = []
        for lane in (False, True):
            be.POOL.close_all()
            h, site, log = front(tmp_path / str(lane), backend.port)
            before = metrics.totals()
            before = (before[metrics.ACCESSES], before[metrics.BYTES])
            once(h, site, log, REQUESTS["plain"], lane, backend, ANSWERS["ok"])
            after = metrics.totals()
            counts.append((after[metrics.ACCESSES] - before[0], after[metrics.BYTES] - before[1]))
            if lane:
                rt = h.runtime(site.default)
                assert rt.lane_wire and _served(rt) == 1
        assert counts[0] == counts[1] == (2, 6)       # the priming request's 1 byte, then 5
    finally:
        if added:
            hooks.OUTPUT[:] = [(o, f) for o, f in hooks.OUTPUT if f is not status._account]
        metrics.reset_for_tests()
