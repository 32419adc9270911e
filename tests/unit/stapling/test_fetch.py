"""fetch.Fetcher against the in-process responder on loopback: methods, faults, the total deadline."""
from __future__ import annotations

import socket
import time

import pytest

from httpd_py.devtools.responder import Responder
from httpd_py.stapling import fetch as F
from httpd_py.stapling.certid import CertID
from httpd_py.stapling.request import build_request, get_url
from httpd_py.stapling.verdict import check_response
from tests.support.tools import free_port


@pytest.fixture(scope="module")
def leaf(pki):
    return pki.leaf("a.test", "ec")


@pytest.fixture(scope="module")
def cid(pki, leaf):
    return CertID.from_certs(leaf.cert, pki.inter)


@pytest.fixture
def responder(pki):
    with Responder.for_pki(pki, drip_interval=0.25) as r:
        yield r


@pytest.fixture
def fetcher():
    f = F.Fetcher()
    yield f
    f.close()


def _fetch(fetcher, url, cid, timeout=2.0, **kw):
    return fetcher.fetch(url, build_request(cid), deadline=time.monotonic() + timeout, **kw)


def test_get_when_short_and_response_validates(pki, responder, fetcher, cid):
    r = _fetch(fetcher, responder.url, cid)
    assert r.ok and r.method == "GET", r
    assert responder.methods == ["GET"] and responder.count(cid.serial) == 1
    assert check_response(r.der, cid, pki.inter, time.time()).kind == "good"
    hdrs = responder.seen_headers[0]
    assert hdrs.get("connection") == "close"


def test_post_when_url_too_long(pki, responder, fetcher, cid):
    long_base = responder.url + "x" * 300 + "/"
    assert get_url(long_base, build_request(cid)) is None
    r = _fetch(fetcher, long_base, cid)
    assert r.ok and r.method == "POST"
    assert responder.seen_headers[0]["content-type"] == "application/ocsp-request"


def test_request_carries_no_nonce_or_extension(cid):
    from cryptography.x509 import ocsp
    req = ocsp.load_der_ocsp_request(build_request(cid))
    assert len(req.extensions) == 0 and req.serial_number == cid.serial


@pytest.mark.parametrize("mode,error", [
    ("http-500", F.HTTP_STATUS),
    ("redirect", F.HTTP_STATUS),
    ("huge", F.TOO_BIG),
    ("empty", F.OTHER),
    ("close", F.CONNECT),
])
def test_fault_modes(responder, fetcher, cid, mode, error):
    responder.mode = mode
    r = _fetch(fetcher, responder.url, cid)
    assert not r.ok and r.error == error, r
    if mode == "redirect":
        assert responder.requests == 1        # the redirect was not followed


@pytest.mark.parametrize("mode", ["html", "garbage", "truncated", "tryLater"])
def test_bodies_are_returned_for_validation(responder, fetcher, cid, mode):
    responder.mode = mode
    r = _fetch(fetcher, responder.url, cid)
    assert r.ok and r.der                     # transport fine; verdict decides


def test_connection_refused(fetcher, cid):
    r = _fetch(fetcher, f"http://127.0.0.1:{free_port()}/", cid)
    assert not r.ok and r.error == F.CONNECT


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "ldap://x/", "http:///nohost", "not a url"])
def test_unsupported_urls(fetcher, cid, url):
    r = _fetch(fetcher, url, cid)
    assert not r.ok and r.error == F.UNSUPPORTED_URL


def test_unresolvable_name(fetcher, cid):
    r = _fetch(fetcher, "http://ocsp.invalid/", cid, timeout=5)
    assert not r.ok and r.error in (F.DNS, F.TIMEOUT), r


@pytest.mark.parametrize("mode", ["hang", "drip"])
def test_total_deadline(responder, fetcher, cid, mode):
    """A hung or dripping responder: the fetch ends at the deadline (drip sends a byte every
    0.25 s, which per-recv timeouts would never stop)."""
    responder.mode = mode
    start = time.monotonic()
    r = _fetch(fetcher, responder.url, cid, timeout=1.0)
    took = time.monotonic() - start
    assert not r.ok and r.error == F.TIMEOUT, r
    assert took < 1.0 + 1.5, took             # bounded by the deadline, not by the responder


def test_slow_headers_hit_the_deadline(fetcher, cid):
    """A listener that accepts and trickles the status line byte by byte."""
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()

    def serve():
        c, _ = srv.accept()
        for b in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 1000:
            if stop.wait(0.1):
                break
            try:
                c.send(bytes([b]))
            except OSError:
                break
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        start = time.monotonic()
        r = _fetch(fetcher, f"http://127.0.0.1:{srv.getsockname()[1]}/", cid, timeout=1.0)
        assert not r.ok and r.error == F.TIMEOUT and time.monotonic() - start < 2.5
    finally:
        stop.set()
        srv.close()
        t.join(5)


def test_proxy_gets_absolute_uri(responder, fetcher, cid):
    r = _fetch(fetcher, "http://ocsp.example.invalid/", cid, proxy_url=responder.url)
    assert r.ok, r
    assert responder.paths[0].startswith("http://ocsp.example.invalid/")


def test_environment_proxy_is_ignored(responder, fetcher, cid, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1/")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1/")
    assert _fetch(fetcher, responder.url, cid).ok


def test_fetch_any_tries_every_url_in_turn(responder, fetcher, cid):
    dead = f"http://127.0.0.1:{free_port()}/"
    best, attempts = fetcher.fetch_any([dead, responder.url], build_request(cid), timeout=3)
    assert best.ok and [a.ok for a in attempts] == [False, True]


def test_fetch_any_shares_one_deadline(responder, fetcher, cid):
    responder.mode = "hang"
    start = time.monotonic()
    best, attempts = fetcher.fetch_any([responder.url, responder.url], build_request(cid), timeout=1.0)
    assert best.error == F.TIMEOUT and len(attempts) == 1
    assert time.monotonic() - start < 2.5


def test_https_responder(pki, cid):
    from httpd_py.devtools.pki import make_leaf
    leaf = make_leaf(pki, "localhost", "ec", suffix="-tls")
    with Responder.for_pki(pki, tls=(str(leaf.cert_file), str(leaf.key_file))) as r:
        f = F.Fetcher(verify=str(pki.root_file))
        try:
            res = _fetch(f, r.url, cid, timeout=5)
            assert res.ok and r.url.startswith("https://"), res
            assert check_response(res.der, cid, pki.inter, time.time()).kind == "good"
        finally:
            f.close()
        f = F.Fetcher()                       # the default trust store does not know this CA
        try:
            res = _fetch(f, r.url, cid, timeout=5)
            assert not res.ok and res.error == F.CONNECT
        finally:
            f.close()


def test_dns_is_inside_the_deadline(fetcher, cid, monkeypatch):
    """getaddrinfo has no timeout; a resolver that never answers (faked here: no DNS on this
    machine) must not hold the fetch past its deadline."""
    import threading
    release = threading.Event()
    real = socket.getaddrinfo

    def stuck(host, *a, **kw):
        if host == "ocsp.stuck.test":
            release.wait(10)
            raise socket.gaierror("gave up")
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", stuck)
    try:
        start = time.monotonic()
        r = _fetch(fetcher, "http://ocsp.stuck.test/", cid, timeout=0.5)
        assert not r.ok and r.error == F.TIMEOUT, r
        assert time.monotonic() - start < 2.0
    finally:
        release.set()
