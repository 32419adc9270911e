"""Waiting connections without a process each: the TLS handshake, the request head and the
keep-alive idle time, stepped non-blocking by the worker's event loop (``mpm/worker.py``).

A prefork worker used to give a whole process to every connection from accept to close, so a
client sending one header byte every two seconds, or an idle keep-alive browser, held a worker
(issue: "slow and idle connections never hold a worker").  Now the worker holds many connections
in an epoll set while they *wait*, and serves one request at a time with the plain blocking
pipeline once a head is complete, as Apache's event MPM hands a connection to a thread only when
there is work:

    open_waiting(sock, addr, listener, slot) -> Waiting | None     after accept (non-blocking)
    step(w) -> WAIT_READ | WAIT_WRITE | READY | DONE                on readiness (or at once)
    deadline(w) -> monotonic time                                   when ``expire`` is due
    expire(w)                                                       the stage's time ran out
    serve_ready(w, slot) -> bool                                    blocking: the request(s);
                                                                    True: back to waiting
    close_waiting(w)

Stage times are the blocking path's: Timeout per read (the handshake and a head), KeepAliveTimeout
between requests, and mod_reqtimeout's handshake/header stages (``http.reqtimeout.Deadlines``)
when the module is loaded: 408 once the request line is in, a silent close before, as the
blocking path and Apache.  The status and SNI callbacks run inside ``do_handshake`` as before.
"""
from __future__ import annotations

import socket
import time

from OpenSSL import SSL

from httpd_py import metrics
from httpd_py.http.protocol import HeadFault, Limits, ProtocolError, parse_head
from httpd_py.http.streams import (_CLOSE, _IPPROTO_TCP, _LINGER, _NEXT, _TCP_NODELAY,
                                   _WILDCARD_BINDS, TLS_READ, PlainStream, TLSStream, _linger,
                                   _plain_http_on_tls_port, _ssl_err, _state, _where_raised,
                                   set_kernel_timeout)
from httpd_py import logids as L
from httpd_py.log import error_log
from httpd_py.tls.handshake import HandshakeFailure
from httpd_py.tls.handshake import classify as classify_handshake
from httpd_py.tls.sites import TLSState

WAIT_READ, WAIT_WRITE, READY, DONE = 1, 2, 3, 4
HANDSHAKE, HEAD, KEEPALIVE = "handshake", "head", "keepalive"


class Waiting:
    """One connection the event loop holds."""
    __slots__ = ("sock", "fd", "addr", "local", "site", "client", "conn", "tls_state",
                 "stream", "buf", "stage", "served", "dl", "limits", "read_size", "start",
                 "last", "head", "closed", "want")

    def __init__(self, sock, addr, local, site, client):
        self.sock, self.fd, self.addr, self.local = sock, sock.fileno(), addr, local
        self.site, self.client = site, client
        self.conn = self.tls_state = self.stream = None
        self.buf = bytearray()
        self.stage = HANDSHAKE
        self.served = 0
        self.dl = None
        self.limits = None
        self.read_size = 65536
        self.start = None               # wall-clock time of the head's first byte
        self.last = time.monotonic()    # the last progress (Timeout counts from it)
        self.head = None                # (RequestHead, consumed) once READY
        self.closed = False
        self.want = WAIT_READ


class WaitingMixin:
    """The event-loop side of ``ConnectionHandler`` (it supplies the request pipeline)."""

    def open_waiting(self, sock: socket.socket, client_addr, listener_addr, slot=None):
        if isinstance(listener_addr, tuple) and listener_addr[0] not in _WILDCARD_BINDS:
            local = listener_addr
        else:
            try:
                local = sock.getsockname()
            except OSError:
                local = getattr(listener_addr, "addr", listener_addr)
        client = f"{client_addr[0]}:{client_addr[1]}" if client_addr else "-"
        sock.setblocking(False)
        try:
            sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
        except OSError:
            pass
        site = self.sites.site_for(local[0], local[1])
        w = Waiting(sock, client_addr, local, site, client)
        d = site.default
        # the serving step's kernel timeouts, once per connection: they do not touch the
        # non-blocking waiting reads, and nothing changes them before the lingering close
        set_kernel_timeout(sock, d.timeout)
        w.limits = self._limits_for(d)
        w.dl = self._new_deadlines(d)
        if site.ssl:
            if site.context is None:
                raise RuntimeError(f"SSL address {local} has no TLS context")
            conn = SSL.Connection(site.context, sock)
            w.tls_state = TLSState(site)
            conn.set_app_data(w.tls_state)
            conn.set_accept_state()
            w.conn = conn
            w.stream = TLSStream(conn, sock)
            w.read_size = TLS_READ
            if w.dl is not None and w.dl.limits("handshake").enabled:
                w.dl.start("handshake", time.monotonic())
        else:
            w.stream = PlainStream(sock)
            w.stage = HEAD
            if w.dl is not None:
                w.dl.start("header", time.monotonic())
        w.stream.timeout = d.timeout        # a parked write waits this long (http.park)
        return w

    def _limits_for(self, d) -> Limits:
        limits = self._limits.get(id(d))
        if limits is None:
            po = d.http_protocol_options
            limits = self._limits[id(d)] = Limits(d.limit_request_line, d.limit_request_field_size,
                                                  d.limit_request_fields, po[0] == "Strict",
                                                  po[1] == "RegisteredMethods", po[2] == "Allow0.9")
        return limits

    # --- stepping ------------------------------------------------------------------------------
    def step(self, w: Waiting) -> int:
        """Make what progress the socket allows; never blocks."""
        try:
            if w.stage == HANDSHAKE:
                got = self._step_handshake(w)
                if got != READY:
                    return got
            return self._step_head(w)
        except Exception as e:          # one connection never takes the loop down
            error_log.error("http", L.HTTP_UNEXPECTED, f"unexpected {type(e).__name__} while waiting: "
                            f"{e} ({_where_raised(e)})", client=w.client)
            self.close_waiting(w)
            return DONE

    def after_serve(self, w: Waiting) -> int:
        """The next step once a request was served: wait for the socket when nothing is
        buffered here or in OpenSSL (epoll is level-triggered, so bytes that arrived meanwhile
        wake it at once), without a read that would only say "would block" (for TLS a
        WantReadError raised through pyOpenSSL, for every request of a keep-alive client)."""
        if not w.buf and not w.closed and (w.conn is None or not w.conn.pending()):
            w.want = WAIT_READ
            return WAIT_READ
        return self.step(w)

    def _step_handshake(self, w: Waiting) -> int:
        try:
            w.conn.do_handshake()
        except SSL.WantReadError:
            w.want = WAIT_READ
            return WAIT_READ
        except SSL.WantWriteError:
            w.want = WAIT_WRITE
            return WAIT_WRITE
        except (SSL.Error, OSError) as e:
            metrics.handshake_failed()
            error_log.info("ssl", L.SSL_HANDSHAKE_FAILED, f"TLS handshake failed: {_ssl_err(e)}",
                           client=w.client)
            if classify_handshake(e) is HandshakeFailure.PLAIN_HTTP:
                w.sock.setblocking(True)
                _plain_http_on_tls_port(w.sock, w.site)
            self.close_waiting(w)
            return DONE
        metrics.handshake(w.conn)
        # ACK the client's Finished now: with no NewSessionTicket to carry it, a client that
        # writes its request separately (Nagle on) would wait for the delayed ACK (40 ms)
        try:
            w.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass
        w.stage = HEAD
        w.last = time.monotonic()
        if w.dl is not None:
            w.dl.stop()
            w.dl.start("header", w.last)
        return READY

    def _step_head(self, w: Waiting) -> int:
        buf = w.buf
        while True:
            if buf:
                try:
                    parsed = parse_head(buf, w.limits)
                except ProtocolError as e:
                    msgid = {414: L.HTTP_REQUEST_LINE_TOO_LONG}.get(e.status, L.HTTP_HEADER_TOO_LARGE if e.kind is HeadFault.LIMIT
                                                 else L.HTTP_BAD_REQUEST)
                    self._blocking(w)
                    self._early_error(w.stream, w.site.default, e.status, w.client, msgid,
                                      e.reason)
                    self._end(w, _LINGER)
                    return DONE
                if parsed is not None:
                    w.head = parsed
                    return READY
            data = self._recv(w)
            if data is None:
                return w.want
            if not data:
                self.close_waiting(w)
                return DONE
            now = time.monotonic()
            if w.start is None:
                w.start = time.time()
            if w.stage == KEEPALIVE:
                w.stage = HEAD
                if w.dl is not None and w.dl.stage is None:
                    w.dl.start("header", now)
            w.last = now
            buf += data
            if w.dl is not None:
                w.dl.received(len(data), now)
                if w.dl.expired(now):
                    self.expire(w)
                    return DONE

    def _recv(self, w: Waiting) -> bytes | None:
        """Bytes, b"" at the end, None when nothing is there yet (``w.want`` says which way)."""
        if w.conn is None:
            try:
                return w.sock.recv(w.read_size)
            except (BlockingIOError, InterruptedError):
                w.want = WAIT_READ
                return None
            except OSError:
                return b""
        try:
            return w.conn.recv(w.read_size)
        except SSL.WantReadError:
            w.want = WAIT_READ
            return None
        except SSL.WantWriteError:
            w.want = WAIT_WRITE
            return None
        except SSL.ZeroReturnError:
            return b""
        except (SSL.Error, OSError):
            return b""

    # --- time ----------------------------------------------------------------------------------
    def deadline(self, w: Waiting) -> float:
        d = w.site.default
        if w.stage == KEEPALIVE and not w.buf:
            return w.last + d.keep_alive_timeout
        limit = w.last + d.timeout
        if w.dl is not None and w.dl.stage is not None:
            at = w.dl.deadline()            # absolute: the stage's end, MinRate included
            if at is not None:
                return min(limit, at)
        return limit

    def expire(self, w: Waiting) -> None:
        """The stage ran out: handshake and keep-alive close silently; a head gets 408 once its
        request line is in under mod_reqtimeout, as the blocking path."""
        if w.closed:
            return
        if w.stage == HANDSHAKE:
            metrics.handshake_failed()
            if w.dl is not None:
                error_log.info("reqtimeout", L.REQTIMEOUT_EXPIRED, "Request handshake read timeout",
                               client=w.client)
            else:
                error_log.info("ssl", L.SSL_HANDSHAKE_TIMEOUT, "TLS handshake timed out", client=w.client)
            self.close_waiting(w)
            return
        if w.stage == KEEPALIVE and not w.buf:
            self.close_waiting(w)
            return
        if w.dl is not None:
            self._blocking(w)
            self._end(w, self._header_timeout(w.stream, w.site.default, w.buf, w.client))
            return
        if w.buf:
            error_log.info("http", L.HTTP_READ_TIMEOUT, "timeout reading the request", client=w.client)
            self._blocking(w)
            self._early_error(w.stream, w.site.default, 408, w.client, None, None)
            self._end(w, _LINGER)
            return
        self._end(w, _CLOSE)

    # --- serving -------------------------------------------------------------------------------
    def _blocking(self, w: Waiting) -> None:
        w.sock.setblocking(True)            # kernel timeouts set once by open_waiting

    def serve_ready(self, w: Waiting, slot=None) -> bool:
        """Serve the parsed head (and any complete pipelined ones), blocking; True when the
        connection goes back to waiting for its next request."""
        w.stream.lazy = True                # blocking only if a read or write would block
        self._tls_conn = w.conn
        self._deadlines = w.dl
        self._force_close = False
        try:
            while True:
                head, consumed = w.head
                w.head = None
                del w.buf[:consumed]
                w.served += 1
                # the head is in: no "reading" state here (_one_request sets "writing", as
                # Apache's SERVER_BUSY_WRITE once a request was read)
                how = self._one_request(w.stream, w.sock, w.site, w.tls_state, (None, None),
                                        w.addr, w.local, slot, w.client, head, w.buf, w.limits,
                                        w.read_size, w.served, w.start or time.time())
                w.start = None
                if how != _NEXT:
                    self._end(w, how)
                    return False
                if w.buf:
                    try:
                        parsed = parse_head(w.buf, w.limits)
                    except ProtocolError:
                        parsed = None           # the waiting step answers it
                    if parsed is not None:
                        w.head = parsed
                        w.start = time.time()
                        continue
                break
        except Exception as e:
            error_log.error("http", L.HTTP_UNEXPECTED, f"unexpected {type(e).__name__} while serving: "
                            f"{e} ({_where_raised(e)})", client=w.client)
            self.close_waiting(w)
            return False
        finally:
            self._tls_conn = None
            self._deadlines = None
            if slot is not None:
                _state(slot, "idle")
        if w.stream.lazy:
            w.stream.lazy = False           # never turned blocking: nothing to restore
        else:
            w.sock.setblocking(False)
        w.stage = KEEPALIVE if not w.buf else HEAD
        w.last = time.monotonic()
        if w.dl is not None:
            w.dl.stop()
            if w.buf:
                w.dl.start("header", w.last)
        return True

    def _end(self, w: Waiting, how: int) -> None:
        """Close as the blocking path does: a lingering close when the client may still be
        sending (_LINGER), else at once."""
        if w.closed:
            return
        if how == _LINGER:
            w.stream.close()
            try:
                w.sock.setblocking(True)
            except OSError:
                pass
            _linger(w.sock)
        self.close_waiting(w)

    def close_waiting(self, w: Waiting) -> None:
        if w.closed:
            return
        w.closed = True
        if w.stream is not None:
            w.stream.close()            # TLS close_notify, best effort
        try:
            w.sock.close()
        except OSError:
            pass
