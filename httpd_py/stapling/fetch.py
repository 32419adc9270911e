"""The only place that talks to OCSP responders.

``Fetcher`` wraps one requests Session per process (created after fork: a Session inherited
across fork shares its keep-alive sockets with siblings, see python-probe Q6), with
``trust_env = False`` (no HTTP(S)_PROXY or .netrc from the environment: SSLOCSPProxyURL is the
only proxy) and no redirects.

SSLStaplingResponderTimeout is a TOTAL deadline over DNS, connect, sending and every read,
enforced three ways: the name is resolved in a helper thread joined with the time left; each
connect attempt gets the time left; and the process's watchdog thread (``_Watchdog``, one for
every fetch in flight) shuts the connection's socket down when the deadline passes, which ends any recv in progress (requests' own read timeout restarts on every
recv, so a responder dripping one byte a second would otherwise hold the worker indefinitely).

Requests: RFC 5019 GET when the URL stays short, else POST ``application/ocsp-request``, both with
``Connection: close`` (as Apache).  Every failure becomes a ``FetchResult`` with a typed ``error``;
nothing raises past this module.
"""
from __future__ import annotations

import enum
import http.client
import ipaddress
import os
import socket
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass

import requests
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from httpd_py import metrics
from httpd_py.stapling.request import get_url

MAX_RESPONSE = 10239            # a cache record holds at most 10240 bytes including the flag


class FetchError(enum.StrEnum):
    """Why a fetch brought no body (a str, so logs and the staple store keep their words)."""
    OK = ""
    TIMEOUT = "timeout"                  # the total deadline passed (SSLStaplingResponderTimeout)
    CONNECT = "connect"
    DNS = "dns"
    HTTP_STATUS = "http-status"
    TOO_BIG = "too-big"
    UNSUPPORTED_URL = "unsupported-url"
    OTHER = "other"


OK, TIMEOUT, CONNECT, DNS, HTTP_STATUS, TOO_BIG, UNSUPPORTED_URL, OTHER = (
    FetchError.OK, FetchError.TIMEOUT, FetchError.CONNECT, FetchError.DNS,
    FetchError.HTTP_STATUS, FetchError.TOO_BIG, FetchError.UNSUPPORTED_URL, FetchError.OTHER)


@dataclass(frozen=True)
class FetchResult:
    ok: bool
    der: bytes = b""
    error: FetchError = OK
    detail: str = ""
    url: str = ""
    method: str = ""
    elapsed: float = 0.0


class _Deadline(Exception):
    """The total deadline passed (deliberately not an OSError: urllib3 would rewrap it)."""


class _Watch:
    """Per-fetch state: the absolute deadline and the sockets to kill when it passes."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.socks: list[socket.socket] = []
        self.fired = False
        self.lock = threading.Lock()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def register(self, sock: socket.socket) -> None:
        with self.lock:
            if self.fired:
                _kill(sock)
            self.socks.append(sock)

    def fire(self) -> None:
        with self.lock:
            self.fired = True
            for s in self.socks:
                _kill(s)


def _kill(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


_local = threading.local()


class _Watchdog:
    """One thread per process that fires each pending fetch's ``_Watch`` at its deadline (a
    ``threading.Timer`` per fetch cost a thread start and stop per request: 1,000 certificates
    at start-up made 1,000 threads).  The thread exists only while a fetch is pending: it ends
    when the last one is cancelled, so a master forks without it.  A child starts its own."""

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self._cv = threading.Condition(threading.Lock())
        self._pending: dict[int, tuple[float, _Watch]] = {}
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._wake_at = float("inf")        # when the thread wakes next (notify only if sooner)

    def add(self, watch: "_Watch") -> int:
        with self._cv:
            self._seq += 1
            token = self._seq
            self._pending[token] = (watch.deadline, watch)
            if self._thread is None:
                self._wake_at = watch.deadline
                self._thread = threading.Thread(target=self._run, name="ocsp-watchdog", daemon=True)
                self._thread.start()
            elif watch.deadline < self._wake_at:
                self._cv.notify()
            return token

    def cancel(self, token: int) -> None:
        with self._cv:
            if self._pending.pop(token, None) is not None and not self._pending:
                self._cv.notify()

    def _run(self) -> None:
        due: list[_Watch] = []
        while True:
            with self._cv:
                if not self._pending:
                    self._thread = None
                    return
                now = time.monotonic()
                for token, (deadline, watch) in list(self._pending.items()):
                    if deadline <= now:
                        del self._pending[token]
                        due.append(watch)
                if not due:
                    self._wake_at = min(d for d, _ in self._pending.values())
                    self._cv.wait(self._wake_at - now)
                    self._wake_at = float("inf")
                    continue
            for watch in due:                       # outside the lock: fire() shuts sockets
                watch.fire()
            due.clear()


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog._reset)


def resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """getaddrinfo bounded by ``timeout`` (it has no timeout of its own)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except ValueError:
        pass
    box: dict = {}

    def run():
        try:
            box["addrs"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            box["error"] = e

    t = threading.Thread(target=run, name="ocsp-dns", daemon=True)
    t.start()
    t.join(max(0.0, timeout))
    if t.is_alive():
        raise _Deadline(f"DNS lookup of {host} exceeded the deadline")
    if "error" in box:
        raise socket.gaierror(f"cannot resolve {host}: {box['error']}")
    return box["addrs"]


class _DeadlineMixin:
    """urllib3 connection that resolves and connects within the current fetch's deadline and
    registers its socket with the watchdog.  Tries every resolved address in turn."""

    def _new_conn(self):  # type: ignore[override]
        watch: _Watch | None = getattr(_local, "watch", None)
        if watch is None:
            return super()._new_conn()
        addrs = resolve(self._dns_host, self.port, watch.remaining())
        last: Exception | None = None
        original = self._dns_host
        for family, _, _, _, sockaddr in addrs:
            left = watch.remaining()
            if left <= 0:
                raise _Deadline("connect exceeded the deadline")
            self._dns_host = sockaddr[0]
            self.timeout = left
            try:
                sock = super()._new_conn()
            except Exception as e:  # NewConnectionError, ConnectTimeoutError
                last = e
                continue
            finally:
                self._dns_host = original
            watch.register(sock)
            return sock
        raise last or OSError("no address")


def _connect(host: str, port: int, watch: _Watch) -> socket.socket:
    """A TCP connection to ``host``:``port`` within ``watch``'s deadline (as ``_DeadlineMixin``:
    resolved within the time left, every address in turn), registered with the watchdog."""
    last: Exception | None = None
    for family, kind, proto, _, sockaddr in resolve(host, port, watch.remaining()):
        left = watch.remaining()
        if left <= 0:
            raise _Deadline("connect exceeded the deadline")
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)    # as urllib3
            sock.settimeout(left)
            sock.connect(sockaddr)
        except OSError as e:
            sock.close()
            last = e
            continue
        watch.register(sock)
        return sock
    raise last or OSError("no address")


#: a URL the plain path sends as it is: printable ASCII, no space (anything else goes through
#: requests/urllib3, which percent-encode it)
_PLAIN_URL = re.compile(r"[!-~]+\Z")
_DEFAULT_HEADERS = tuple(requests.utils.default_headers().items())


class _HTTPConnection(_DeadlineMixin, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *a, **kw):
        super().init_poolmanager(*a, **kw)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, proxy, **kw):
        pm = super().proxy_manager_for(proxy, **kw)
        pm.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        return pm


class Fetcher:
    """One per process, created after fork.  ``verify``: requests' TLS verification setting for
    https responders (True: the certifi bundle; or a CA file path)."""

    def __init__(self, *, verify: bool | str = True, use_get: bool = True):
        self.session = requests.Session()
        self.session.trust_env = False
        adapter = _Adapter(max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.verify = verify
        self.use_get = use_get

    def close(self) -> None:
        try:
            self.session.close()
        except Exception:
            pass

    def fetch(self, url: str, req_der: bytes, **kw) -> FetchResult:
        """One request to ``url`` (``_fetch``), counted for /metrics by outcome and latency."""
        r = self._fetch(url, req_der, **kw)
        metrics.responder_request(r.error, r.elapsed)
        return r

    def _fetch(self, url: str, req_der: bytes, *, deadline: float, proxy_url: str | None = None,
               max_size: int = MAX_RESPONSE) -> FetchResult:
        """One request to ``url``; ``deadline`` is absolute, on the time.monotonic() clock."""
        start = time.monotonic()
        method = ""
        try:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return FetchResult(False, error=UNSUPPORTED_URL, detail=f"unsupported responder URL {url!r}", url=url)
            if proxy_url:
                pp = urllib.parse.urlsplit(proxy_url)
                if pp.scheme not in ("http", "https") or not pp.hostname:
                    return FetchResult(False, error=UNSUPPORTED_URL, detail=f"unsupported proxy URL {proxy_url!r}", url=url)
        except ValueError as e:
            return FetchResult(False, error=UNSUPPORTED_URL, detail=f"bad URL {url!r}: {e}", url=url)
        watch = _Watch(deadline)
        left = watch.remaining()
        if left <= 0:
            return FetchResult(False, error=TIMEOUT, detail="no time left before the request", url=url)
        _local.watch = watch
        timer = _watchdog.add(watch)
        resp = None
        pooled = False
        try:
            get = get_url(url, req_der) if self.use_get else None
            if not proxy_url and parts.scheme == "http" and _plain_ok(get or url):
                method = "GET" if get else "POST"
                return self._fetch_plain(get or url, None if get else req_der, method, watch,
                                         max_size, url, start)
            pooled = True
            headers = {"Connection": "close", "Accept": "application/ocsp-response"}
            kw = dict(headers=headers, timeout=(left, left), stream=True, allow_redirects=False,
                      verify=self.verify,
                      proxies={"http": proxy_url, "https": proxy_url} if proxy_url else {})
            if get:
                method = "GET"
                resp = self.session.get(get, **kw)
            else:
                method = "POST"
                headers["Content-Type"] = "application/ocsp-request"
                resp = self.session.post(url, data=req_der, **kw)
            if not 200 <= resp.status_code < 300:
                return FetchResult(False, error=HTTP_STATUS, detail=f"HTTP {resp.status_code} {resp.reason}",
                                   url=url, method=method, elapsed=time.monotonic() - start)
            clen = resp.headers.get("Content-Length")
            if clen is not None and clen.strip().isdigit() and int(clen) > max_size:
                return FetchResult(False, error=TOO_BIG, detail=f"Content-Length {clen} > {max_size}",
                                   url=url, method=method, elapsed=time.monotonic() - start)
            raw = resp.raw
            read = ((lambda n: raw.read(n, decode_content=False)) if hasattr(raw, "read")
                    else (lambda n: b""))
            return _read_limited(read, watch, max_size, url, method, start)
        except Exception as e:  # every failure is a value, never an exception
            elapsed = time.monotonic() - start
            if watch.fired or isinstance(e, _Deadline) or _caused_by(e, _Deadline) or watch.remaining() <= 0:
                return FetchResult(False, error=TIMEOUT, detail=f"deadline of {deadline - start:.1f}s passed "
                                   f"({_short(e)})", url=url, method=method, elapsed=elapsed)
            if _caused_by(e, socket.gaierror):
                return FetchResult(False, error=DNS, detail=_short(e), url=url, method=method, elapsed=elapsed)
            if isinstance(e, (requests.ConnectionError, urllib3.exceptions.HTTPError, OSError,
                              http.client.HTTPException)):
                return FetchResult(False, error=CONNECT, detail=_short(e), url=url, method=method, elapsed=elapsed)
            return FetchResult(False, error=OTHER, detail=_short(e), url=url, method=method, elapsed=elapsed)
        finally:
            _watchdog.cancel(timer)
            _local.watch = None
            if resp is not None:
                try:
                    resp.close()
                except Exception:
                    pass
            # Connection: close, and nothing left in the pool: a connection the watchdog shut
            # down must never be reused by the next fetch
            for adapter in self.session.adapters.values() if pooled else ():
                try:
                    adapter.close()
                except Exception:
                    pass

    def _fetch_plain(self, target: str, body: bytes | None, method: str, watch: _Watch,
                     max_size: int, url: str, start: float) -> FetchResult:
        """The common case (http, no proxy) straight over ``http.client``, without requests'
        and urllib3's layers: the same request (method, target, headers as requests sends
        them), the same checks, a quarter of the CPU (0.25 against 0.95 ms per fetch measured
        on loopback; 1,000 certificates are fetched at every start).  Raises as ``_fetch``'s
        requests path does; ``_fetch`` classifies."""
        parts = urllib.parse.urlsplit(target)
        host, port = parts.hostname, parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = http.client.HTTPConnection(host, port)
        resp = None
        try:
            conn.sock = _connect(host, port, watch)
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in _DEFAULT_HEADERS:
                if name == "Accept":
                    value = "application/ocsp-response"
                elif name == "Connection":
                    value = "close"
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Type", "application/ocsp-request")
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            if not 200 <= resp.status < 300:
                return FetchResult(False, error=HTTP_STATUS, detail=f"HTTP {resp.status} {resp.reason}",
                                   url=url, method=method, elapsed=time.monotonic() - start)
            clen = resp.getheader("Content-Length")
            if clen is not None and clen.strip().isdigit() and int(clen) > max_size:
                return FetchResult(False, error=TOO_BIG, detail=f"Content-Length {clen} > {max_size}",
                                   url=url, method=method, elapsed=time.monotonic() - start)
            return _read_limited(resp.read, watch, max_size, url, method, start)
        finally:
            if resp is not None:
                resp.close()
            conn.close()

    def fetch_any(self, urls, req_der: bytes, *, timeout: float, proxy_url: str | None = None,
                  max_size: int = MAX_RESPONSE, accept=None) -> tuple[FetchResult, list[FetchResult]]:
        """Try each URL in turn under ONE total deadline of ``timeout`` seconds.

        ``accept(result) -> bool`` (default: result.ok) decides whether to stop; returns (the
        accepted or last result, every attempt).
        """
        deadline = time.monotonic() + timeout
        attempts: list[FetchResult] = []
        accept = accept or (lambda r: r.ok)
        for url in urls:
            r = self.fetch(url, req_der, deadline=deadline, proxy_url=proxy_url, max_size=max_size)
            attempts.append(r)
            if accept(r) or r.error == TIMEOUT:
                return r, attempts
        if not attempts:
            r = FetchResult(False, error=UNSUPPORTED_URL, detail="no responder URL")
            return r, [r]
        return attempts[-1], attempts


def _plain_ok(target: str) -> bool:
    """``target`` needs none of urllib3's rewriting (percent-encoding, dot segments, userinfo,
    a fragment): the plain path may send it as it is."""
    if not _PLAIN_URL.match(target):
        return False
    parts = urllib.parse.urlsplit(target)
    return not (parts.fragment or "@" in parts.netloc or "/." in parts.path
                or parts.hostname is None)


def _read_limited(read, watch: _Watch, max_size: int, url: str, method: str,
                  start: float) -> FetchResult:
    """A response body in 4 KiB reads (``read(n)``, b"" at the end) within the deadline and
    ``max_size``, as a FetchResult (too big, empty, or the bytes); a passed deadline raises
    _Deadline for the caller's one failure path."""
    body = bytearray()
    while True:
        if watch.remaining() <= 0:
            raise _Deadline("reading the body exceeded the deadline")
        chunk = read(4096)
        if not chunk:
            break
        body += chunk
        if len(body) > max_size:
            return FetchResult(False, error=TOO_BIG, detail=f"body over {max_size} bytes",
                               url=url, method=method, elapsed=time.monotonic() - start)
    if watch.fired:
        raise _Deadline("deadline passed while reading")
    if not body:
        return FetchResult(False, error=OTHER, detail="empty body", url=url, method=method,
                           elapsed=time.monotonic() - start)
    return FetchResult(True, bytes(body), url=url, method=method, elapsed=time.monotonic() - start)


def _caused_by(e: BaseException, cls) -> bool:
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, cls):
            return True
        for attr in ("reason", "__cause__", "__context__"):
            nxt = getattr(e, attr, None)
            if isinstance(nxt, BaseException):
                e = nxt
                break
        else:
            return False
        seen += 1
    return False


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def warm_up() -> bool:
    """Exercise a whole fetch once, in the master before fork: import every module and codec a
    fetch touches (requests, urllib3, http.client, email's header parser, IDNA, latin-1...).

    Workers run as ``User`` after fork; when Python's standard library is not readable by that
    user (a pyenv under /root, mode 0700), a lazy import in a worker fails with
    ModuleNotFoundError in the middle of a handshake.  Imports made here are inherited.
    Best effort: returns False (and nothing breaks) if the loopback exchange fails.
    """
    import email.parser  # noqa: F401
    import encodings.ascii  # noqa: F401
    import encodings.idna  # noqa: F401
    import encodings.latin_1  # noqa: F401
    import http.client  # noqa: F401
    import ssl  # noqa: F401
    "warm-up.invalid".encode("idna")
    b"x".decode("iso-8859-1")
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen(2)
        srv.settimeout(3)
        port = srv.getsockname()[1]
        body = b"\x30\x03\x0a\x01\x03"

        def serve():
            for _ in range(2):
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                try:
                    c.settimeout(3)
                    c.recv(65536)
                    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
                              b"Content-Length: 5\r\n\r\n" + body)
                except OSError:
                    pass
                finally:
                    c.close()

        t = threading.Thread(target=serve, name="ocsp-warm-up", daemon=True)
        t.start()
        ok = True
        for use_get in (True, False):
            f = Fetcher(use_get=use_get)
            try:
                ok = f._fetch(f"http://127.0.0.1:{port}/", b"\x30\x00",   # (not counted)
                              deadline=time.monotonic() + 3).ok and ok
            finally:
                f.close()
        t.join(3)
        return ok
    except OSError:
        return False
    finally:
        srv.close()
