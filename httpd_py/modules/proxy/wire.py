"""mod_proxy_http's protocol pieces, pure over bytes (no I/O): the backend request head, the
backend response head parser, hop-by-hop filtering, Apache's path re-encoding.

What Apache 2.4.71 sends a backend (observed with tests/interop/modules/proxy/app.py):

    GET /base/x%20y?q=1 HTTP/1.1          path re-encoded (canonenc), query as the client sent it
    Host: backend:port                    first (the client's Host with ProxyPreserveHost On)
    <client headers, in order>            minus hop-by-hop and Connection-listed ones
    X-Forwarded-For / -Host / -Server     ProxyAddHeaders On (the default), merged with ", "
    Content-Length: n                     or Transfer-Encoding: chunked (a long chunked body)
    Connection: Keep-Alive                (or close with disablereuse)

``ResponseHead`` parses the backend's status line and header lines incrementally
(``feed(data) -> done``); a line longer than ``field_size`` or more than ``fields`` lines is
``BadResponse`` (Apache: 502 Bad Gateway).  Interim 1xx responses other than 101 are skipped
by the caller.
"""
from __future__ import annotations

import re

# RFC 9110 7.6.1 plus the RFC 2616 list Apache strips (Proxy-Authenticate, Proxy-Connection).
HOP_BY_HOP_REQUEST = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                                "transfer-encoding", "upgrade", "content-length"})
HOP_BY_HOP_RESPONSE = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                                 "transfer-encoding", "upgrade", "proxy-authenticate"})

_PATH_OK = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                     b"~$-_.+!*'(),;:@&=/")
_HEX = "0123456789ABCDEF"


class BadResponse(Exception):
    """The backend's response head cannot be used (Apache: 502 Bad Gateway)."""


def canon_path(path: str) -> str:
    """Apache's ap_proxy_canonenc for a decoded reverse-proxy path (enc_path): every byte that is
    not alphanumeric or one of ``~$-_.+!*'(),;:@&=/`` becomes %XX (upper-case hex); '%' too,
    since the path is already decoded."""
    raw = path.encode("utf-8", "surrogateescape")
    if all(b in _PATH_OK for b in raw):
        return path
    out = []
    for b in raw:
        if b in _PATH_OK:
            out.append(chr(b))
        else:
            out.append("%" + _HEX[b >> 4] + _HEX[b & 15])
    return "".join(out)


_TOKENS: dict[str, frozenset] = {}


def connection_tokens(value: str | None) -> frozenset:
    if not value:
        return frozenset()
    got = _TOKENS.get(value)            # the same few values come back on every response
    if got is None:
        got = frozenset(t.strip().lower() for t in value.split(",") if t.strip())
        if len(_TOKENS) < 256:
            _TOKENS[value] = got
    return got


def request_head(method: str, target: str, host: str, headers: list[tuple[str, str]],
                 framing: tuple[str, int] | None, keepalive: bool) -> bytes:
    """The request head for the backend.  ``headers`` are the ones to pass on (already
    filtered, X-Forwarded-* included), ``framing`` ("length", n) or ("chunked", 0) or None."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for n, v in headers:
        lines.append(f"{n}: {v}")
    if framing is not None:
        if framing[0] == "chunked":
            lines.append("Transfer-Encoding: chunked")
        else:
            lines.append(f"Content-Length: {framing[1]}")
    lines.append("Connection: Keep-Alive" if keepalive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def pass_request_headers(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The client's headers minus Host (sent first, separately), the hop-by-hop ones and the
    ones its Connection header names.  ``items``: (name as sent, value) in order."""
    listed = set()
    for n, v in items:
        if n.lower() == "connection":
            listed |= connection_tokens(v)
    out = []
    for n, v in items:
        ln = n.lower()
        if ln == "host" or ln in HOP_BY_HOP_REQUEST or ln in listed:
            continue
        out.append((n, v))
    return out


def pass_response_headers(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    listed = set()
    for n, v in items:
        if n.lower() == "connection":
            listed |= connection_tokens(v)
    return [(n, v) for n, v in items
            if n.lower() not in HOP_BY_HOP_RESPONSE and n.lower() not in listed]


_STATUS = re.compile(r"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?\Z", re.ASCII | re.S)
_WS = " \t\n\r\x0b\x0c"          # what bytes.strip() strips (str.strip() strips more)
# header lines already parsed, by their text (a backend repeats all but Date on every
# response): at most _MEMO_LINES lines of at most _MEMO_LINE characters, never a refused one
_LINES: dict[str, tuple[str, str]] = {}
_MEMO_LINES, _MEMO_LINE = 512, 1024


class ResponseHead:
    """Incremental parser of one backend response head.  Each ``feed`` takes every complete
    line it has at once (one decode, one split: a head that arrives in one read is parsed in
    one pass); ``header()`` looks names up in an index built once per head."""

    def __init__(self, field_size: int = 8190, fields: int = 100):
        self.field_size = field_size
        self.fields = fields
        self.buf = bytearray()
        self.status = 0
        self.reason = ""
        self.version = (1, 1)
        self.headers: list[tuple[str, str]] = []
        self.leftover = b""
        self.done = False
        self._pos = 0
        self._index: dict[str, str] | None = None

    def feed(self, data: bytes) -> bool:
        buf = self.buf
        buf += data
        pos = self._pos
        last = buf.rfind(b"\n")
        if last < pos:
            if len(buf) - pos > self.field_size:
                raise BadResponse("response header line too long")
            return False
        self._index = None
        fs = self.field_size
        headers = self.headers
        for raw in buf[pos:last].decode("latin-1").split("\n"):
            n = len(raw)
            pos += n + 1
            hit = _LINES.get(raw)
            if hit is not None and self.status and n <= fs:
                if len(headers) >= self.fields:
                    raise BadResponse("too many response header lines")
                headers.append(hit)
                continue
            line = raw.rstrip("\r")
            if len(line) > fs:
                raise BadResponse("response header line too long")
            if not self.status:
                m = _STATUS.match(line)
                if m is None:
                    raise BadResponse(f"bad status line {line[:80].encode('latin-1')!r}")
                self.version = (int(m.group(1)), int(m.group(2)))
                self.status = int(m.group(3))
                self.reason = m.group(4) or ""
                continue
            if not line:
                self.leftover = bytes(buf[pos:])
                self.buf = bytearray()
                self.done = True
                return True
            c = line[0]
            if (c == " " or c == "\t") and headers:                  # obs-fold
                n, v = headers[-1]
                headers[-1] = (n, v + " " + line.strip(_WS))
                continue
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip(_WS):
                raise BadResponse(f"bad header line {line[:80].encode('latin-1')!r}")
            if len(headers) >= self.fields:
                raise BadResponse("too many response header lines")
            parsed = (name, value.strip(_WS))
            headers.append(parsed)
            if n <= _MEMO_LINE and len(_LINES) < _MEMO_LINES:
                _LINES[raw] = parsed
        self._pos = pos
        if len(buf) - pos > self.field_size:
            raise BadResponse("response header line too long")
        return False

    def index(self) -> dict[str, str]:
        """Lower-case name -> the values of every line of that name joined with ", "."""
        idx = self._index
        if idx is None:
            idx = {}
            for n, v in self.headers:
                ln = n.lower()
                idx[ln] = f"{idx[ln]}, {v}" if ln in idx else v
            self._index = idx
        return idx

    def header(self, name: str) -> str | None:
        return self.index().get(name.lower())

    @property
    def keep_alive(self) -> bool:
        tokens = connection_tokens(self.header("connection"))
        if self.version < (1, 1):
            return "keep-alive" in tokens
        return "close" not in tokens

    def body_framing(self, method: str) -> tuple[str, int]:
        """("none", 0), ("length", n), ("chunked", 0) or ("close", 0): read until EOF."""
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            return ("none", 0)
        te = self.header("transfer-encoding")
        if te is not None:
            if te.split(",")[-1].strip().lower() == "chunked":
                return ("chunked", 0)
            return ("close", 0)
        cl = self.header("content-length")
        if cl is not None and cl.isascii() and cl.isdigit():
            return ("length", int(cl))
        if cl is not None:
            parts = {p.strip() for p in cl.split(",")}
            one = next(iter(parts))
            if len(parts) != 1 or not (one.isascii() and one.isdigit()):     # not "²"
                raise BadResponse(f"bad Content-Length {cl!r}")
            return ("length", int(next(iter(parts))))
        return ("close", 0)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


LAST_CHUNK = b"0\r\n\r\n"
