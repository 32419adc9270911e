"""mod_proxy, mod_proxy_http, mod_proxy_balancer, mod_proxy_wstunnel and mod_remoteip side by
side: the same fragment (conftest.py) under Debian's apache2 and under httpd-py, in front of the
same uvicorn backends (app.py), the same raw requests to both.

Per row of CORPUS, ``test_row[id]`` compares what the client sees (client.normalised): status,
response headers (Date, Server, Keep-Alive and Connection aside; the server's own port written
PORT), the body (for an echo: what the backend received -- method, path, raw path, query,
headers in order, body length and hash), and whether the connection was cut mid-body.  Pages
the proxy writes itself (503, 502, 403...) are compared whole, as every other body.

Sequences whose order matters (byrequests rotation, the retry window) and WebSockets have their
own tests below.  A difference is accepted only when listed in DOCUMENTED (and in
docs/interop.md, section mod_proxy); there are none.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.interop.modules.proxy.client import Row, exchange, normalised, ws_echo

R = Row
BIG = bytes(range(256)) * 4096                # 1 MiB
MID = b"m" * 100_000


def _rows() -> list[Row]:
    rows = [
        # ---- ProxyPass prefixes, exclusions, the path and query as sent on ----
        R("app-root", "/app/"),
        R("app-path", "/app/a/b/c"),
        R("app-exact", "/app"),
        R("app-exact-slash-more", "/app/x/"),
        R("app-space", "/app/x%20y"),
        R("app-percent", "/app/100%25"),
        R("app-encoded-slash", "/app/a%2Fb"),
        R("app-plus", "/app/a+b"),
        R("app-reserved", "/app/~$!&'()*,;=:@"),
        R("app-latin1", "/app/caf%E9"),
        R("app-utf8", "/app/%C3%A9t%C3%A9"),
        R("app-brackets", "/app/%5Bx%5D%7B%7D"),
        R("app-hash", "/app/a%23b"),
        R("app-qmark-in-path", "/app/a%3Fb?real=1"),
        R("app-query", "/app/q?a=1&b=2"),
        R("app-query-encoded", "/app/q?a=%20b&c=%2F"),
        R("app-query-raw-odd", "/app/q?x=a|b&y='z'"),
        R("app-query-empty", "/app/q?"),
        R("app-double-slash", "//app//x"),
        R("app-dot-segments", "/app/x/../y/./z"),
        R("app-absolute-form", "http://localhost/app/abs"),
        R("appx-not-matched", "/appx/y"),
        R("excluded", "/excluded/x"),
        R("excluded-subpath", "/app/excluded/x"),
        R("not-proxied", "/nothing-here"),
        R("nocanon-encoded", "/nc/a%2Fb%20c?q=%41"),
        R("nocanon-plain", "/nc/plain"),
        R("noquery", "/nq/x?dropped=1"),
        R("match-regex", "/rx/abc/def.json"),
        R("match-regex-miss", "/rx/ABC/def.json"),
        R("match-suffix", "/any/where/x.echo?k=v"),
        R("location", "/loc/deep/er"),
        R("location-exact", "/loc/"),
        R("locationmatch", "/lm/one"),
        R("preserve-host", "/preserve/x", host="front.example:8443"),
        R("no-xf-headers", "/noxf/x"),
        R("access-denied", "/denied/x"),
        # ---- methods and bodies ----
        R("head", "/app/h", method="HEAD"),
        R("options", "/app/o", method="OPTIONS"),
        R("delete", "/app/d", method="DELETE"),
        R("post-empty", "/app/p", method="POST"),
        R("post-small", "/app/p", method="POST", body=b"hello=world",
          headers=(("Content-Type", "application/x-www-form-urlencoded"),)),
        R("put-small", "/app/p", method="PUT", body=b"put body"),
        R("patch", "/app/p", method="PATCH", body=b"{}"),
        R("post-100k", "/app/p", method="POST", body=MID),
        R("post-1m", "/app/p", method="POST", body=BIG),
        R("post-chunked-small", "/app/c", method="POST", body=b"tiny chunked", chunked=True),
        R("post-chunked-100k", "/app/c", method="POST", body=MID, chunked=True),
        R("post-chunked-1m", "/app/c", method="POST", body=BIG, chunked=True),
        R("post-expect", "/app/e", method="POST", body=b"expected",
          headers=(("Expect", "100-continue"),)),
        R("post-expect-big", "/app/e", method="POST", body=MID,
          headers=(("Expect", "100-continue"),)),
        R("head-big", "/app/big/1000", method="HEAD"),
        # ---- request headers as the backend receives them ----
        R("hdr-custom", "/app/h", headers=(("X-Custom", "v1"), ("Accept", "text/plain"))),
        R("hdr-repeated", "/app/h", headers=(("X-Rep", "a"), ("X-Rep", "b"))),
        R("hdr-cookie", "/app/h", headers=(("Cookie", "a=1; b=2"),)),
        R("hdr-authorization", "/app/h", headers=(("Authorization", "Basic dTpw"),)),
        R("hdr-connection-listed", "/app/h",
          headers=(("Connection", "X-Secret"), ("X-Secret", "s"), ("X-Open", "o"))),
        R("hdr-keep-alive", "/app/h", headers=(("Keep-Alive", "timeout=5"),)),
        R("hdr-te", "/app/h", headers=(("TE", "trailers"),)),
        R("hdr-upgrade-plain", "/app/h", headers=(("Upgrade", "h2c"),)),
        R("hdr-proxy-connection", "/app/h", headers=(("Proxy-Connection", "keep-alive"),)),
        R("hdr-trailer", "/app/h", headers=(("Trailer", "X-T"),)),
        R("hdr-client-xff", "/app/h", headers=(("X-Forwarded-For", "198.51.100.7"),)),
        R("hdr-client-xfh", "/app/h", headers=(("X-Forwarded-Host", "orig.example"),)),
        R("hdr-client-via", "/app/h", headers=(("Via", "1.1 upstream"),)),
        R("hdr-host-port", "/app/h", host="localhost:81"),
        R("hdr-host-other", "/app/h", host="other.example"),
        R("hdr-empty-value", "/app/h", headers=(("X-Empty", ""),)),
        R("hdr-long-value", "/app/h", headers=(("X-Long", "v" * 4000),)),
        R("hdr-many", "/app/h", headers=tuple((f"X-N{i}", str(i)) for i in range(40))),
        # ---- responses ----
        *[R(f"status-{c}", f"/app/status/{c}") for c in
          (200, 201, 202, 204, 301, 304, 400, 401, 403, 404, 405, 410, 418, 429, 500, 502, 503,
           504)],
        R("status-head-404", "/app/status/404", method="HEAD"),
        R("redirect-reverse", "/app/redirect/foo"),
        R("redirect-reverse-query", "/app/redirect/foo?x=1"),
        R("redirect-location", "/loc/redirect/inloc/bar"),
        R("redirect-other-host", "/app/redirect/z", headers=(("X-Ignored", "1"),),
          host="elsewhere.example"),
        R("redirect-balancer", "/bal/redirect/b?ROUTEID=x.r1"),
        R("cookies-rewritten", "/cookies/cookie"),
        R("cookies-not-rewritten", "/app/cookie"),
        R("resp-hop-by-hop", "/app/headers"),
        R("big-1m", "/app/big/1048576"),
        R("big-0", "/app/big/0"),
        R("bigchunked-300k", "/app/bigchunked/300000"),
        R("bigchunked-0", "/app/bigchunked/0"),
        R("override-404", "/override/status/404"),
        R("override-500", "/override/status/500"),
        R("override-200", "/override/status/200"),
        R("override-301", "/override/status/301"),
        # ---- faults ----
        R("down", "/down/x"),
        R("down-post", "/down/x", method="POST", body=b"lost"),
        R("hang-timeout", "/t2/hang"),
        R("slowhead-over", "/t2/slowhead/3"),
        R("slowhead-under", "/t2/slowhead/0.5"),
        R("drip-ok", "/t2/drip/4/0.4"),
        R("drip-stalls", "/t2/drip/2/3"),
        R("half-cut", "/app/half/5000"),
        R("half-cut-big", "/app/half/200000"),
        R("huge-header", "/app/hugeheader/9000"),
        R("large-header-ok", "/app/hugeheader/7000"),
        R("noreuse", "/noreuse/x"),
        R("keepalive-worker", "/ka/x"),
        # ---- balancers whose answer does not depend on order ----
        R("sticky-cookie-r2", "/bal/who", headers=(("Cookie", "ROUTEID=abc.r2"),)),
        R("sticky-cookie-r1", "/bal/who", headers=(("Cookie", "x=1; ROUTEID=abc.r1"),)),
        R("sticky-query-r2", "/bal/who?ROUTEID=q.r2"),
        R("sticky-path-r1", "/bal/who;ROUTEID=p.r1"),
        R("sticky-echo", "/bal/e?ROUTEID=z.r1", method="POST", body=b"sticky body"),
        R("failover", "/failover/who"),
        R("failover-echo", "/failover/e?x=1"),
        R("all-dead", "/alldead/x"),
        R("hot-standby", "/standby/who"),
        # ---- vhosts: Via, mod_remoteip, TLS backends ----
        R("via-on", "/app/v", host="via.test"),
        R("via-on-client-via", "/app/v", host="via.test", headers=(("Via", "1.0 first"),)),
        R("via-on-status", "/app/status/404", host="via.test"),
        R("via-block", "/app/v", host="block.test", headers=(("Via", "1.1 hidden"),)),
        R("via-off-passes", "/app/v", headers=(("Via", "1.1 shown"),)),
        R("rip-public", "/app/r", host="rip.test", headers=(("X-Forwarded-For", "192.0.2.7"),)),
        R("rip-chain", "/app/r", host="rip.test",
          headers=(("X-Forwarded-For", "203.0.113.1, 10.0.0.9"),)),
        R("rip-private-internal", "/app/r", host="rip.test",
          headers=(("X-Forwarded-For", "10.1.2.3"),)),
        R("rip-garbage", "/app/r", host="rip.test",
          headers=(("X-Forwarded-For", "not-an-ip"),)),
        R("rip-require-ok", "/app/only-doc/x", host="rip.test",
          headers=(("X-Forwarded-For", "192.0.2.55"),)),
        R("rip-require-denied", "/app/only-doc/x", host="rip.test",
          headers=(("X-Forwarded-For", "203.0.113.55"),)),
        R("rip-require-no-header", "/app/only-doc/x", host="rip.test"),
        R("rip-ipv6", "/app/r", host="rip.test", headers=(("X-Forwarded-For", "2001:db8::5"),)),
        R("riptrust-public", "/app/r", host="riptrust.test",
          headers=(("X-Real-Client", "203.0.113.5"),)),
        R("riptrust-private-refused", "/app/r", host="riptrust.test",
          headers=(("X-Real-Client", "10.0.0.1"),)),
        R("riptrust-two", "/app/r", host="riptrust.test",
          headers=(("X-Real-Client", "198.51.100.2, 203.0.113.5"),)),
        R("tls-verified", "/tls/x", host="tls.test"),
        R("tls-verified-post", "/tls/p", host="tls.test", method="POST", body=b"over tls"),
        R("tls-name-mismatch", "/tlsbyip/x", host="tls.test"),
        R("tls-no-verify", "/tlsbyip/x", host="tlsnoverify.test"),
        R("tls-engine-off", "/tls/x", host="tlsoff.test"),
        R("proxytimeout-hang", "/pt/hang", host="ptimeout.test"),
        R("proxytimeout-ok", "/pt/slowhead/0.2", host="ptimeout.test"),
        # ---- ProxyRequests Off: absolute-form targets are this server's own paths ----
        R("absolute-other-host", "http://other.example/app/abs"),
        R("absolute-https-form", "https://localhost/app/abs2"),
        R("connect-refused", "localhost:443", method="CONNECT"),
        # ---- ProxyPassInherit, ProxyBlock, Proxy100Continue, <ProxyMatch> ----
        R("noinherit-main-rule", "/app/x", host="noinherit.test"),
        R("noinherit-own-rule", "/own/x", host="noinherit.test"),
        R("blocked-host", "/app/x", host="blocked.test"),
        R("blocked-balancer", "/bal/who?ROUTEID=x.r1", host="blocked.test"),
        R("nocontinue-expect", "/nocont/e", method="POST", body=b"no expect forwarded",
          headers=(("Expect", "100-continue"),)),
        R("nocontinue-plain", "/nocont/p", method="POST", body=b"plain"),
        R("proxymatch-section", "/pm/x"),
        # ---- WebSocket-capable mounts asked plain HTTP ----
        R("ws-mount-plain-get", "/ws/plain"),
        R("up-mount-plain-get", "/up/plain"),
    ]
    for i, m in enumerate(("GET", "POST", "PUT", "DELETE")):
        for mount in ("/loc/m", "/lm/m", "/preserve/m", "/noxf/m", "/t2/m"):
            rows.append(R(f"method-{m.lower()}{mount.replace('/', '-')}", mount, method=m,
                          body=b"b" * (i * 10)))
    return rows


CORPUS = _rows()

# row id -> why httpd-py answers differently (each also in docs/interop.md, mod_proxy): none
DOCUMENTED: dict[str, str] = {}


def _answers(port: int) -> dict:
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda r: exchange(port, r), CORPUS))
    return {r.id: a for r, a in zip(CORPUS, got)}


@pytest.fixture(scope="module")
def apache_answers(apache_port):
    return _answers(apache_port), apache_port


@pytest.fixture(scope="module")
def httpd_py_answers(httpd_py_port):
    return _answers(httpd_py_port), httpd_py_port


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 150
    assert len({r.id for r in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("row", CORPUS, ids=lambda r: r.id)
def test_row(row, apache_answers, httpd_py_answers, request):
    if row.id in DOCUMENTED:
        request.applymarker(pytest.mark.xfail(reason=DOCUMENTED[row.id], strict=True))
    a_all, a_port = apache_answers
    h_all, h_port = httpd_py_answers
    a, h = normalised(a_all[row.id], a_port), normalised(h_all[row.id], h_port)
    assert h == a
    la, lh = a_all[row.id].header("content-length"), h_all[row.id].header("content-length")
    if la is not None and lh is not None and "title" not in a:
        assert lh == la                         # a length both sent is the same length


def test_content_length_passed_on(httpd_py_answers):
    """A backend's Content-Length reaches the client (the 1 MB body is not re-chunked)."""
    h_all, _ = httpd_py_answers
    assert h_all["big-1m"].header("content-length") == "1048576"
    assert h_all["big-1m"].header("transfer-encoding") is None


def test_timeouts_bounded(httpd_py_answers):
    """No answer waited past its worker's timeout (2 s on /t2/, plus slack)."""
    h_all, _ = httpd_py_answers
    for rid in ("hang-timeout", "slowhead-over", "drip-stalls", "proxytimeout-hang"):
        assert h_all[rid].seconds < 6, (rid, h_all[rid].seconds)


def _who(port: int, path: str, n: int, **kw) -> list[str]:
    return [exchange(port, Row("seq", path, **kw)).body.decode() for _ in range(n)]


def test_byrequests_rotation(apache_port, httpd_py_port):
    """One worker process each: byrequests gives the same sequence."""
    a = _who(apache_port, "/bal/who", 6)
    h = _who(httpd_py_port, "/bal/who", 6)
    assert sorted(set(a)) == ["b1", "b2"]
    assert h == a


def test_byrequests_loadfactor(apache_port, httpd_py_port):
    a = _who(apache_port, "/weighted/who", 8)
    h = _who(httpd_py_port, "/weighted/who", 8)
    assert a.count("b1") == 6 and h == a


def test_down_stays_503_while_retrying(apache_port, httpd_py_port):
    """A plain worker: every request tries the backend again (Apache 2.4.71 does not put a
    ProxyPass worker outside a balancer in error)."""
    for port in (apache_port, httpd_py_port):
        got = [exchange(port, Row("d", "/down/again")).status for _ in range(3)]
        assert got == [503, 503, 503]


def test_failover_member_skipped_by_every_process(httpd_py_server):
    """The dead member's error state is shared: after a failover, later requests go straight
    to the live member (no second connect attempt logged within retry=30)."""
    port = httpd_py_server.port
    for _ in range(6):
        assert exchange(port, Row("f", "/failover/who")).body == b"b2"
    log = httpd_py_server.log_text()
    assert log.count("HP13001") >= 1


@pytest.mark.parametrize("path, host", [("/ws/echo", "localhost"), ("/up/echo", "localhost"),
                                        ("/wss/echo", "tls.test")])
def test_websocket_echo(path, host, apache_port, httpd_py_port):
    a = ws_echo(apache_port, path, host)
    h = ws_echo(httpd_py_port, path, host)
    assert a == [("text", "echo:hi"), ("bytes", 6000), ("close", 1000)]
    assert h == a


def test_websocket_refused_without_upgrade_param(apache_port, httpd_py_port):
    """/app/ has no upgrade=websocket: the Upgrade header is dropped on the way."""
    a = ws_echo(apache_port, "/app/echo")
    h = ws_echo(httpd_py_port, "/app/echo")
    assert h == a


def test_server_still_answers_after_faults(httpd_py_port, httpd_py_answers):
    t = time.monotonic()
    assert exchange(httpd_py_port, Row("after", "/app/ok")).status == 200
    assert time.monotonic() - t < 2
