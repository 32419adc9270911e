"""Connections to backends: connect (plain or TLS), a per-process pool of kept-alive
connections, and the reads and writes a proxied request does.  The only I/O of mod_proxy
besides the WebSocket relay.

Pool (one per worker process, as a prefork child's connection pool in Apache): idle
connections per worker name, at most ``max`` (default 1: a prefork process serves one request
at a time; when the worker parks requests, as many as its requests have used at once) kept,
closed when older than ``ttl`` idle, never kept with ``disablereuse``.  Before
a kept connection is reused it is polled: readable means the backend closed it (or sent bytes
nobody asked for) and it is dropped.  The pool notices a fork (its pid changes) and forgets
the parent's connections without touching them.

Errors: ``ConnectFailed`` (refused, unreachable, connect timeout, TLS handshake), ``ReadTimeout``
(the worker's timeout passed with nothing read) and ``Closed`` (the backend closed or reset).

Timeouts: a plain TCP connection stays a blocking socket with the worker's timeout as kernel
timeouts (SO_RCVTIMEO / SO_SNDTIMEO, set when it changes), so a send or a read is one system
call (``settimeout()`` would make each a poll() and the call, and cost an ioctl to set); an
expired kernel timeout is EAGAIN, reported as ``ReadTimeout``.  TLS connections keep the ssl
module's timeouts.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import ssl
import struct
import time

from httpd_py.http.park import parkable, wait_readable, wait_writable
from httpd_py.modules.proxy.conf import SSLProxySettings, Worker

_DONTWAIT = socket.MSG_DONTWAIT
# a backend read blocks the worker this long before the request parks (see BackendConn.recv)
PARK_AFTER = 0.002
FAST_AGAIN = 0.001      # a parked read answered this soon: the backend is quick again
SLOW: set = set()       # pool keys of backends whose requests park at once (per process)
_PARK_TV = struct.pack("ll", 0, int(PARK_AFTER * 1_000_000))


class BackendError(Exception):
    pass


class ConnectFailed(BackendError):
    pass


class TLSFailed(ConnectFailed):
    """The TCP connection worked, the TLS handshake or the certificate check did not
    (Apache: 500 "Error during SSL Handshake with remote server")."""


class ReadTimeout(BackendError):
    pass


class Closed(BackendError):
    pass


def _timeval(seconds: float) -> bytes:
    s = max(0.0, seconds)
    return struct.pack("ll", int(s), int((s - int(s)) * 1_000_000))


class BackendConn:
    __slots__ = ("sock", "key", "created", "last_used", "reused", "peer", "timeout", "kernel",
                 "rcv", "out", "sent", "_poll")

    def __init__(self, sock, key: str, peer: str):
        self.sock = sock
        self.key = key
        self.created = self.last_used = time.monotonic()
        self.reused = False
        self.peer = peer
        self.timeout: float | None = -1.0      # not set by settimeout() yet
        self.kernel = False             # blocking, the timeout in SO_RCVTIMEO / SO_SNDTIMEO
        self.rcv = None                 # SO_RCVTIMEO as set (PARK_AFTER while parking)
        self.out = None                 # the Pool that lent it to a request, until back or closed
        self.sent = False               # bytes sent since the last read (nothing to read yet)
        self._poll = None

    def settimeout(self, t: float) -> None:
        """The I/O timeout (seconds); nothing to do when it is the one already set."""
        if t == self.timeout:
            return
        if not isinstance(self.sock, ssl.SSLSocket) and t is not None and t > 0:
            if not self.kernel:
                self.sock.settimeout(None)
                self.kernel = True
            tv = _timeval(t)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
            self.rcv = t
        else:
            if self.kernel:
                zero = _timeval(0)
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, zero)
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, zero)
                self.kernel = False
            self.sock.settimeout(t)
        self.timeout = t

    def sendall(self, data: bytes) -> None:
        """All of ``data``.  Under the worker's event loop a write the backend cannot take yet
        (it stopped reading a large body) parks the request until it can, at most the
        timeout per wait, instead of blocking the worker."""
        self.sent = True
        try:
            if self.kernel:
                try:
                    off = self.sock.send(data, _DONTWAIT)   # a request head: all, nearly always
                except BlockingIOError:
                    off = 0
                if off >= len(data):
                    return
                if parkable():
                    return self._send_parking(data, off)
                data = memoryview(data)[off:]
            elif self.timeout and isinstance(self.sock, ssl.SSLSocket) and parkable():
                return self._send_parking_tls(data)
            self.sock.sendall(data)
        except (socket.timeout, BlockingIOError):       # BlockingIOError: SO_SNDTIMEO expired
            raise ReadTimeout("timeout writing to the backend") from None
        except (OSError, ssl.SSLError) as e:
            raise Closed(f"writing to the backend: {e}") from None

    def _send_parking(self, data, off: int) -> None:
        """The rest of ``data`` from ``off``: wait in the loop until the backend takes more."""
        sock = self.sock
        n = len(data)
        view = memoryview(data)
        while True:
            if not wait_writable(sock.fileno(), self.timeout, self):
                raise ReadTimeout("timeout writing to the backend")
            try:
                off += sock.send(view[off:], _DONTWAIT)
            except BlockingIOError:
                continue
            if off >= n:
                return

    def _send_parking_tls(self, data) -> None:
        sock = self.sock
        view = memoryview(data)
        off, n = 0, len(view)
        while off < n:
            off += _tls_parking(sock, lambda: sock.send(view[off:]), self.timeout, self)

    def recv(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes, b"" at the end.

        Under the worker's event loop a plain connection may park the request (``http.park``):
        the worker serves its other connections until the backend answers or the timeout
        passes.  A backend that answers quickly is read blocking, as before (parking costs the
        loop a wake-up per read and the quick answers' batching, which a fast backend never
        pays back): the read blocks at most PARK_AFTER (SO_RCVTIMEO, in the kernel's ticks: up
        to ~8 ms), then parks.  A backend that made a request park is "slow" (``SLOW``, per
        pool key): its requests park at once, until one is answered within FAST_AGAIN."""
        if self.kernel and self.timeout > PARK_AFTER and parkable():
            key = self.key
            if key in SLOW:
                if self.sent:                   # a slow backend has not answered already
                    self.sent = False
                else:
                    try:
                        return self.sock.recv(n, _DONTWAIT)
                    except BlockingIOError:
                        pass
                    except OSError as e:
                        raise Closed(f"reading from the backend: {e}") from None
                t0 = time.monotonic()
                if not wait_readable(self.sock.fileno(), self.timeout, self):
                    raise ReadTimeout("timeout reading from the backend")
                if time.monotonic() - t0 < FAST_AGAIN:
                    SLOW.discard(key)
            else:
                self.sent = False
                if self.rcv != PARK_AFTER:
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _PARK_TV)
                    self.rcv = PARK_AFTER
                try:
                    return self.sock.recv(n)
                except BlockingIOError:         # PARK_AFTER passed: park for the rest
                    pass
                except OSError as e:
                    raise Closed(f"reading from the backend: {e}") from None
                SLOW.add(key)
                if not wait_readable(self.sock.fileno(), self.timeout - PARK_AFTER, self):
                    raise ReadTimeout("timeout reading from the backend")
        elif self.kernel:
            if self.rcv != self.timeout:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                     _timeval(self.timeout))
                self.rcv = self.timeout
        elif (self.timeout and self.timeout > PARK_AFTER and not self.sock.pending()
              and parkable()):
            return self._recv_parking(n)
        try:
            return self.sock.recv(n)
        except (socket.timeout, BlockingIOError):       # BlockingIOError: SO_RCVTIMEO expired
            raise ReadTimeout("timeout reading from the backend") from None
        except ssl.SSLZeroReturnError:
            return b""
        except (OSError, ssl.SSLError) as e:
            raise Closed(f"reading from the backend: {e}") from None

    def _recv_parking(self, n: int) -> bytes:
        """An HTTPS read under the event loop (``_tls_parking``, a poll of at most PARK_AFTER
        before each park).  Readable is not enough to block in the read: TLS 1.3's session
        tickets make the socket readable with no application data behind them."""
        sock = self.sock
        try:
            return _tls_parking(sock, lambda: sock.recv(n), self.timeout, self, self._readable)
        except socket.timeout:
            raise ReadTimeout("timeout reading from the backend") from None
        except ssl.SSLZeroReturnError:
            return b""
        except (OSError, ssl.SSLError) as e:
            raise Closed(f"reading from the backend: {e}") from None

    def fileno(self) -> int:
        return self.sock.fileno()

    def pending(self) -> int:
        return self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) else 0

    def close(self) -> None:
        if self.out is not None:
            self.out.returned(self)
        try:
            self.sock.close()
        except OSError:
            pass

    def _readable(self, seconds: float) -> bool:
        """Bytes (or the end) to read within ``seconds``; a kept poll object, no epoll."""
        p = self._poll
        if p is None:
            p = self._poll = select.poll()
            p.register(self.sock.fileno(), select.POLLIN)
        return bool(p.poll(int(seconds * 1000)))

    def stale(self) -> bool:
        """Closed by the backend (or holding unasked-for bytes) since it was pooled (once per
        proxied request: ``_readable`` inlined)."""
        p = self._poll
        try:
            if p is None:
                p = self._poll = select.poll()
                p.register(self.sock.fileno(), select.POLLIN)
            return bool(p.poll(0))
        except (OSError, ValueError):
            return True


_CONTEXTS: dict = {}


def tls_context(s: SSLProxySettings) -> ssl.SSLContext:
    ctx = _CONTEXTS.get(s)
    if ctx is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        if s.verify in ("require", "optional"):
            ctx.verify_mode = ssl.CERT_REQUIRED if s.verify == "require" else ssl.CERT_OPTIONAL
            if s.ca_file:
                ctx.load_verify_locations(s.ca_file)
            ctx.check_hostname = s.verify == "require" and s.check_name
        else:
            ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        _CONTEXTS[s] = ctx
    return ctx


def connect(worker: Worker, connect_timeout: float, io_timeout: float,
            ssl_settings: SSLProxySettings | None, sni: str | None = None) -> BackendConn:
    # under the event loop the connect and the TLS handshake park while they wait
    parking = bool(connect_timeout and connect_timeout > 0 and parkable())
    try:
        if parking:
            sock = _connect_parking(worker.host, worker.port, connect_timeout)
        else:
            sock = socket.create_connection((worker.host, worker.port), timeout=connect_timeout)
    except socket.timeout:
        raise ConnectFailed(f"attempt to connect to {worker.hostport} timed out") from None
    except OSError as e:
        raise ConnectFailed(f"attempt to connect to {worker.hostport} failed: "
                            f"{e.strerror or e}") from None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if worker.params.keepalive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if worker.tls:
            ctx = tls_context(ssl_settings or SSLProxySettings())
            # an IP address is matched against IP names and sends no SNI (the ssl module
            # knows); a name is both the SNI and the name checked
            sock = ctx.wrap_socket(sock, server_hostname=sni or worker.host,
                                   do_handshake_on_connect=not parking)
            if parking:         # (a backend that never answers the ClientHello holds no worker)
                _tls_parking(sock, sock.do_handshake, connect_timeout, sock)
            s = ssl_settings or SSLProxySettings()
            if not ctx.check_hostname and s.check_name:
                why = peer_problem(sock.getpeercert(binary_form=True), sni or worker.host)
                if why:
                    raise ssl.CertificateError(why)
        conn = BackendConn(sock, worker.name, worker.hostport)
        conn.settimeout(io_timeout)
    except (OSError, ssl.SSLError, ssl.CertificateError, ValueError) as e:
        sock.close()
        raise TLSFailed(f"TLS handshake with {worker.hostport} failed: {e}") from None
    return conn


def _tls_parking(sock: ssl.SSLSocket, op, timeout: float, owner, ready=None):
    """``op()`` (an SSL call) on ``sock`` made non-blocking, parked in the worker's loop while
    it wants the peer's bytes (readable) or room to write (writable), within ``timeout`` in
    all (socket.timeout after); ``ready(seconds)``: a poll tried first, for at most
    PARK_AFTER, before parking for readable (a quick answer costs no loop round trip).  The
    socket's timeout is put back after."""
    deadline = time.monotonic() + timeout
    saved = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        while True:
            try:
                return op()
            except ssl.SSLWantReadError:
                wait = wait_readable
            except ssl.SSLWantWriteError:
                wait = wait_writable
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            if wait is wait_readable and ready is not None:
                if ready(min(PARK_AFTER, left)):
                    continue
                left -= PARK_AFTER
            if not wait(sock.fileno(), max(0.0, left), owner):
                raise socket.timeout("timed out")
    finally:
        sock.settimeout(saved)


def _connect_parking(host: str, port: int, timeout: float) -> socket.socket:
    """socket.create_connection under the event loop: each address in turn, a non-blocking
    connect, and while it is in progress the request parks until the socket is writable (a
    backend whose SYNs go unanswered holds no worker); within ``timeout`` in all.  Raises
    socket.timeout or the last address's OSError, as create_connection does."""
    deadline = time.monotonic() + timeout
    err: OSError | None = None
    for family, kind, proto, _, addr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(addr)
            if code == errno.EINPROGRESS:
                done = select.poll()            # on loopback the handshake is done already
                done.register(sock.fileno(), select.POLLOUT)
                if not done.poll(0):
                    left = deadline - time.monotonic()
                    if left <= 0 or not wait_writable(sock.fileno(), left, sock):
                        raise socket.timeout("timed out")
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            return sock
        except socket.timeout:
            sock.close()
            raise
        except OSError as e:
            sock.close()
            err = e
    raise err if err is not None else OSError("getaddrinfo returned nothing")


def peer_problem(der: bytes | None, host: str) -> str | None:
    """mod_ssl's checks that apply even with SSLProxyVerify none: SSLProxyCheckPeerName (the
    certificate's DNS/IP names, else its CN, must match the host) and SSLProxyCheckPeerExpire
    (not expired, already valid).  None when it passes."""
    import datetime
    import fnmatch
    import ipaddress
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    if not der:
        return "the backend sent no certificate"
    cert = x509.load_der_x509_certificate(der)
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert.not_valid_after_utc < now or cert.not_valid_before_utc > now:
        return "the backend certificate is expired or not yet valid"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        ips = san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        dns, ips = [], []
    if ip is not None:
        if ip in ips:
            return None
    else:
        for name in dns:
            if name.lower() == host.lower() or (name.startswith("*.") and "." in host and
                                                fnmatch.fnmatch(host.lower(), name.lower())
                                                and host.count(".") == name.count(".")):
                return None
    if not dns and not ips:
        cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if host.lower() in (str(c).lower() for c in cns):
            return None
    return f"the backend certificate does not name {host}"


def _is_ip(host: str) -> bool:
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host)
            return True
        except OSError:
            pass
    return False


class Pool:
    """A fork is noticed by an at-fork hook (no getpid() per request): the child forgets the
    parent's connections without touching them."""

    def __init__(self):
        self.idle: dict[str, list[BackendConn]] = {}
        self.lent: dict[str, int] = {}      # key -> connections in use by requests now
        self.peak: dict[str, int] = {}      # key -> the most ever in use at once
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.idle = {}              # the parent's sockets: not ours to use or close
        self.lent = {}
        self.peak = {}

    def lend(self, c: BackendConn) -> BackendConn:
        """``c`` (kept or new) now serves a request until put back or closed."""
        if c.out is None:
            c.out = self
            n = self.lent[c.key] = self.lent.get(c.key, 0) + 1
            if n > self.peak.get(c.key, 0):
                self.peak[c.key] = n
        return c

    def returned(self, c: BackendConn) -> None:
        c.out = None
        n = self.lent.get(c.key, 0) - 1
        if n > 0:
            self.lent[c.key] = n
        else:
            self.lent.pop(c.key, None)

    def get(self, worker: Worker, key: str | None = None) -> BackendConn | None:
        conns = self.idle.get(key or worker.name)
        ttl = worker.params.ttl
        now = time.monotonic() if ttl is not None else 0.0
        while conns:
            c = conns.pop()
            if (ttl is not None and now - c.last_used > ttl) or c.stale():
                c.close()
                continue
            c.reused = True
            return self.lend(c)
        return None

    def put(self, worker: Worker, c: BackendConn, key: str | None = None) -> None:
        if c.out is not None:
            c.out.returned(c)
        if worker.params.disablereuse:
            c.close()
            return
        key = key or worker.name
        conns = self.idle.setdefault(key, [])
        # max=, or one (a prefork process serves one request at a time), or when requests
        # park: as many as this process's requests have used at once (a connection closed
        # here would be opened again by the next request: churn, and TIME_WAIT sockets,
        # under a slow backend's load; the backend's keep-alive timeout, or ttl=, ends the
        # ones a past burst left)
        limit = max(1, worker.params.max or (self.peak.get(key, 1) if parkable() else 1))
        if len(conns) >= limit:
            c.close()
            return
        if worker.params.ttl is not None:
            c.last_used = time.monotonic()      # (only ttl= looks at it)
        conns.append(c)

    def close_all(self) -> None:
        for conns in self.idle.values():
            for c in conns:
                c.close()
        self.idle = {}

    def count(self) -> int:
        return sum(len(v) for v in self.idle.values())


POOL = Pool()
