"""The connection's byte streams and the small socket helpers both the blocking path
(``http/connection.py``) and the workers' event loop (``http/waiting.py``) use: plain and TLS
streams with one timeout/closed vocabulary, kernel timeouts, lingering close, how a connection's
HTTP loop ended, and the readable 400 for plain HTTP on a TLS port."""
from __future__ import annotations

import errno
import os
import socket
import struct
import time
import traceback

from OpenSSL import SSL

from httpd_py.http.park import wait_client
from httpd_py.http.static import http_date

_EOF, _CLOSE, _LINGER, _NEXT = 0, 1, 2, 3   # how a connection's HTTP loop ended (_NEXT: goes on)
LINGER_SECONDS = 2.0
LINGER_BYTES = 512 * 1024
TLS_READ = 16 * 1024                     # one TLS record's plaintext at most per SSL_read
_IPPROTO_TCP, _TCP_NODELAY = socket.IPPROTO_TCP, socket.TCP_NODELAY
_SOL_SOCKET, _SO_RCVTIMEO, _SO_SNDTIMEO = socket.SOL_SOCKET, socket.SO_RCVTIMEO, socket.SO_SNDTIMEO
_WILDCARD_BINDS = frozenset(("", "0.0.0.0", "::", "*"))


_TIMEVALS: dict[float, bytes] = {}


def _timeval(seconds: float) -> bytes:
    tv = _TIMEVALS.get(seconds)
    if tv is None:
        secs = max(0.0, seconds)
        tv = struct.pack("ll", int(secs), int((secs - int(secs)) * 1_000_000))
        if len(_TIMEVALS) < 64:
            _TIMEVALS[seconds] = tv
    return tv


def set_kernel_timeout(sock: socket.socket, seconds: float) -> None:
    tv = _timeval(seconds)
    sock.setsockopt(_SOL_SOCKET, _SO_RCVTIMEO, tv)
    sock.setsockopt(_SOL_SOCKET, _SO_SNDTIMEO, tv)


def set_recv_timeout(sock: socket.socket, seconds: float) -> None:
    sock.setsockopt(_SOL_SOCKET, _SO_RCVTIMEO, _timeval(seconds))


class StreamTimeout(Exception):
    pass


class StreamClosed(Exception):
    pass


_PLAIN_WOULD_BLOCK = (BlockingIOError, TimeoutError)
_TLS_WOULD_BLOCK = (SSL.WantReadError, SSL.WantWriteError)


class _Lazy:
    """Blocking on demand.  The event loop serves a request on its still non-blocking socket
    with ``lazy`` set: the first read or write that would block turns the socket blocking (its
    kernel timeouts were set when the connection was opened) and is retried, and from then on
    a would-block is the timeout, as on a blocking socket.  A small response never blocks, so
    most requests cost no FIONBIO ioctl either way (``serve_ready`` restores non-blocking only
    when ``block`` ran)."""
    lazy = False
    timeout = 0.0           # the connection's Timeout (a parked write waits this long)
    sock: socket.socket | None

    def block(self) -> None:
        if self.lazy:
            self.lazy = False
            if self.sock is not None:
                self.sock.setblocking(True)

    def _send_lazily(self, send, would_block: tuple, data) -> None:
        """``send`` (one write, returns the count) until ``data`` is out; a write that would
        block turns the socket blocking and is retried with the same bytes (once blocking,
        ``would_block`` is the timeout and goes to the caller)."""
        n = len(data)
        off = 0
        view = None                     # made only when a write took part of the bytes
        while off < n:
            try:
                off += send(data if view is None else view[off:])
                if off < n and view is None:
                    view = memoryview(data)
            except would_block as e:
                if not self.lazy:
                    raise
                if self.timeout:
                    # under the event loop the request parks until the client can take more
                    # (a slow reader holds no worker); a TLS write may first need its bytes
                    got = wait_client(self.sock.fileno(), self.timeout,
                                      isinstance(e, SSL.WantReadError))
                    if got is not None:
                        if got:
                            continue
                        raise
                self.block()

    def _read_waits(self, write: bool = False) -> bool:
        """A read that would block on a lazy stream: under the event loop the request parks
        until the client sends (``write``: until it can take bytes, a TLS read that must
        write first) for at most Timeout, and False means that passed; elsewhere the socket
        turns blocking.  True: read again.  (A client that sends its body slowly holds no
        worker: the loop serves the others meanwhile.)"""
        if self.timeout:
            got = wait_client(self.sock.fileno(), self.timeout, not write)
            if got is not None:
                return got
        self.block()
        return True


class PlainStream(_Lazy):
    def __init__(self, sock: socket.socket):
        self.sock = sock

    def recv(self, n: int) -> bytes:
        try:
            return self.sock.recv(n)
        except (BlockingIOError, TimeoutError):
            if self.lazy and self._read_waits():
                return self.recv(n)
            raise StreamTimeout() from None
        except ConnectionError:
            return b""

    def pending(self) -> int:
        return 0

    def sendall(self, data) -> None:
        try:
            if self.lazy:
                return self._send_lazily(self.sock.send, _PLAIN_WOULD_BLOCK, data)
            self.sock.sendall(data)
        except (BlockingIOError, TimeoutError):
            raise StreamTimeout() from None
        except OSError as e:
            raise StreamClosed(str(e)) from None

    def close(self) -> None:
        pass


class TLSStream(_Lazy):
    def __init__(self, conn: SSL.Connection, sock: socket.socket | None = None):
        self.conn = conn
        self.sock = sock if sock is not None else getattr(conn, "_socket", None)

    def recv(self, n: int) -> bytes:
        try:
            return self.conn.recv(n)
        except SSL.ZeroReturnError:
            return b""
        except (SSL.WantReadError, SSL.WantWriteError) as e:
            if self.lazy and self._read_waits(isinstance(e, SSL.WantWriteError)):
                return self.recv(n)
            raise StreamTimeout() from None
        except SSL.SysCallError as e:
            if e.args and e.args[0] in (errno.EAGAIN, errno.EWOULDBLOCK):
                if self.lazy and self._read_waits():
                    return self.recv(n)
                raise StreamTimeout() from None
            return b""
        except SSL.Error:
            return b""

    def pending(self) -> int:
        return self.conn.pending()

    def sendall(self, data) -> None:
        try:
            if self.lazy:
                # SSL_write by SSL_write (partial writes are on in pyOpenSSL), so that a write
                # that would block is retried with the same bytes once blocking
                return self._send_lazily(self.conn.send, _TLS_WOULD_BLOCK, data)
            self.conn.sendall(data)
        except (SSL.WantReadError, SSL.WantWriteError):
            raise StreamTimeout() from None
        except (SSL.Error, OSError) as e:
            raise StreamClosed(str(e)) from None

    def close(self) -> None:
        try:
            self.conn.shutdown()   # close_notify; do not wait for the peer's
        except (SSL.Error, OSError):
            pass


def _where_raised(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return "?"
    f = tb[-1]
    return f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}"


def _state(slot, state: str) -> None:
    if slot is not None:
        try:
            slot.set_state(state)
        except Exception:
            pass


def _ssl_err(e: Exception) -> str:
    if isinstance(e, SSL.Error) and e.args and isinstance(e.args[0], list):
        return "; ".join(":".join(str(p) for p in item if p) for item in e.args[0]) or type(e).__name__
    return f"{type(e).__name__}: {e}"


def _plain_http_on_tls_port(sock: socket.socket, site) -> None:
    body = (b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
            b"<title>400 Bad Request</title>\n</head><body>\n<h1>Bad Request</h1>\n"
            b"<p>Your browser sent a request that this server could not understand.<br />\n"
            b"Reason: You're speaking plain HTTP to an SSL-enabled server port.<br />\n"
            b"Instead use the HTTPS scheme to access this URL, please.<br />\n</p>\n</body></html>\n")
    head = (b"HTTP/1.1 400 Bad Request\r\nDate: %s\r\nServer: httpd-py\r\nContent-Length: %d\r\n"
            b"Connection: close\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n"
            % (http_date(time.time()).encode(), len(body)))
    try:
        sock.sendall(head + body)
    except OSError:
        return
    _linger(sock)


def _linger(sock: socket.socket) -> None:
    """Half-close and drain briefly, so unread client data does not turn our close into a RST
    that destroys the response in flight (Apache's lingering close)."""
    try:
        sock.shutdown(socket.SHUT_WR)
        set_recv_timeout(sock, LINGER_SECONDS)
        deadline = time.monotonic() + LINGER_SECONDS
        total = 0
        while total < LINGER_BYTES and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            total += len(data)
    except OSError:
        pass
