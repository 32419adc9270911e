"""HTTP/1.1 request heads and response heads, sans-I/O: pure functions over bytes.

Why not h11: measured here, h11 costs ~50 us per keep-alive request cycle (event objects,
per-header regex validation, state machine), about half of a small-file request's CPU, which
kept keep-alive throughput under the 0.5x-Apache aim.  This module parses only what a static
server needs, with the server's limits built in, in a few microseconds.

``parse_head(buf, limits)`` looks at the start of ``buf`` (a bytearray the caller fills):

* returns ``None`` when the head is incomplete (and no limit is already exceeded);
* returns ``(RequestHead, consumed)`` for a complete head;
* raises ``ProtocolError(status, reason)``: 414 request line over LimitRequestLine, 400 header
  field over LimitRequestFieldSize, more fields than LimitRequestFields, malformed syntax,
  a continuation line before any field, missing or repeated Host on HTTP/1.1, an invalid Host;
  501 for a method Apache does not know under ``HttpProtocolOptions RegisteredMethods``.

``HttpProtocolOptions`` (``Limits.strict``, ``registered_methods``, ``allow09``), as Apache
2.4.71 answers (observed):

* Strict (default): every line ends in CRLF (a bare LF anywhere in the head, even in an empty
  line before the request line: 400); the request line is exactly ``METHOD SP target SP
  HTTP/d.d`` (two spaces, a tab, a trailing space, ``http/1.1``, ``HTTP/01.1``: 400); the target
  is ``/path``, an absolute URI, or ``*`` for OPTIONS.  Unsafe: a bare LF ends a line too.
* ``HTTP/0.9``, ``HTTP/0.x``: 400; ``HTTP/2.0``, ``HTTP/1.2``: served as HTTP/1.1 (as Apache);
  ``GET /x`` with no version is HTTP/0.9 (Allow0.9, the default: ``version == "0.9"``, the
  answer is the bare body), or 400 under Require1.0.
* obs-fold continuation lines are joined to the field before them (Apache accepts them).

Content-Length and Transfer-Encoding are judged by ``http.body.request_framing``.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP/(\d)\.(\d)")
_LOOSE_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]+([^\x00-\x20\x7f]+)[ \t]+HTTP/(\d)\.(\d)[ \t]*")
_REQUEST_09 = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+)")
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_AUTHORITY = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")   # CONNECT's host:port
_ABSOLUTE = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*://")
_HOST = re.compile(r"(?:[A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")
_GOOD_HOSTS: set[str] = set()          # Host values already found valid (they repeat)
# Header lines already parsed and found valid, as (name, value, lower-case name, value as str):
# a client repeats most of its lines on every request of a connection (Host, User-Agent,
# Accept*, Cookie), and the verdict on a line depends on its bytes alone (the limits are
# checked before the look-up).  Lines up to 1 KiB, at most 512 of them; cleared when full.
_LINES: dict[bytes, tuple[bytes, bytes, str, str]] = {}
_LINES_MAX = 512
# request lines already matched: (line, strict) -> (method, target, major, minor)
_REQUEST_LINES: dict[tuple, tuple] = {}

# Apache's registered methods (ap_method_registry: the RFC 2616/2518/3253 ones)
REGISTERED_METHODS = frozenset((
    "GET", "HEAD", "PUT", "POST", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PROPFIND",
    "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "VERSION-CONTROL", "CHECKOUT",
    "UNCHECKOUT", "CHECKIN", "UPDATE", "LABEL", "REPORT", "MKWORKSPACE", "MKACTIVITY",
    "BASELINE-CONTROL", "MERGE", "INVALID"))


class HeadFault(enum.Enum):
    """What is wrong with a request head (callers branch on this, not on ``reason``)."""
    MALFORMED = "malformed"
    LIMIT = "limit"          # over LimitRequestLine, LimitRequestFieldSize or LimitRequestFields


class ProtocolError(Exception):
    def __init__(self, status: int, reason: str, kind: HeadFault = HeadFault.MALFORMED):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Limits:
    request_line: int = 8190
    field_size: int = 8190
    fields: int = 100
    strict: bool = True                 # HttpProtocolOptions Strict (False: Unsafe)
    registered_methods: bool = False    # RegisteredMethods (False: LenientMethods)
    allow09: bool = True                # Allow0.9 (False: Require1.0)


@dataclass
class RequestHead:
    method: str
    target: bytes
    version: str                       # "1.1", "1.0" or "0.9" (HTTP/2.0 and 1.2 read as "1.1")
    headers: dict[str, str]            # lower-case name -> value (repeated fields joined ", ")
    raw_headers: list[tuple[bytes, bytes]]
    body: bool                         # Transfer-Encoding, or Content-Length not "0"
    keep_alive: bool                   # what the client asks for (before server policy)
    size: int = 0                      # bytes of the head, as received
    protocol: str = ""                 # the request line's protocol when not "HTTP/" + version

    @property
    def request_line(self) -> str:
        if self.version == "0.9":
            return f"{self.method} {self.target.decode('latin-1')}"
        return f"{self.method} {self.target.decode('latin-1')} {self.protocol or 'HTTP/' + self.version}"


def parse_head(buf: bytes | bytearray, limits: Limits = Limits()) -> tuple[RequestHead, int] | None:
    n = len(buf)
    pos = 0
    strict = limits.strict
    # skip empty lines before the request line (RFC 9112 section 2.2)
    while pos < n and buf[pos] in (0x0D, 0x0A):
        if buf[pos] == 0x0D:
            if pos + 1 >= n:
                return None
            if buf[pos + 1] != 0x0A:
                raise ProtocolError(400, "bare CR before the request line")
            pos += 1
        elif strict:
            raise ProtocolError(400, "bare LF before the request line")
        pos += 1
        if pos > 64:
            raise ProtocolError(400, "too many empty lines before the request line")
    nl = buf.find(b"\n", pos)
    if nl < 0:
        if n - pos > limits.request_line + 1:
            raise ProtocolError(414, f"request line longer than LimitRequestLine {limits.request_line}", HeadFault.LIMIT)
        return None
    line_end = nl - 1 if nl > pos and buf[nl - 1] == 0x0D else nl
    if line_end - pos > limits.request_line:
        raise ProtocolError(414, f"request line longer than LimitRequestLine {limits.request_line}", HeadFault.LIMIT)
    if strict and line_end == nl:
        raise ProtocolError(400, "request line not ended by CRLF")
    line = bytes(buf[pos:line_end])
    parts = _REQUEST_LINES.get((line, strict))
    if parts is None:
        m = (_REQUEST_LINE if strict else _LOOSE_REQUEST_LINE).fullmatch(line)
        if m is not None:
            parts = m.groups()
            if len(line) <= 512:                # (a server sees the same request lines again)
                if len(_REQUEST_LINES) >= 1024:
                    _REQUEST_LINES.clear()
                _REQUEST_LINES[(line, strict)] = parts
    if parts is None:
        # decided on the request line alone, whatever follows it (so the verdict does not
        # depend on how the bytes arrive): HTTP/0.9 (no version: no header fields) or 400
        m09 = _REQUEST_09.fullmatch(line)
        if m09 is None:
            raise ProtocolError(400, "malformed request line")
        if not limits.allow09:
            raise ProtocolError(400, "HTTP/0.9 request refused (HttpProtocolOptions Require1.0)")
        if m09.group(2)[:1] != b"/" and _ABSOLUTE.match(m09.group(2)) is None:
            raise ProtocolError(400, "invalid request target")
        return RequestHead(m09.group(1).decode("ascii"), m09.group(2), "0.9", {}, [], False,
                           False, nl + 1 - pos), nl + 1
    # the whole head must be present before we parse the fields
    if strict:
        end = buf.find(b"\r\n\r\n", nl - 1)
        stop = n if end < 0 else end + 4
        if buf.count(b"\n", nl, stop) != buf.count(b"\r\n", nl - 1, stop):
            raise ProtocolError(400, "bare LF in the request head")
        head_end, consumed = end + 1, end + 4
    else:
        end = buf.find(b"\n\r\n", nl)
        end2 = buf.find(b"\n\n", nl)
        if end2 >= 0 and (end < 0 or end2 < end):
            head_end, consumed = end2, end2 + 2
            end = end2
        elif end >= 0:
            head_end, consumed = end, end + 3
    if end < 0:
        # incomplete: enforce the field limits on what has arrived
        _check_partial_fields(buf, nl + 1, limits)
        return None
    method, target, major, minor = parts
    protocol = ""
    if major == b"1" and minor in (b"0", b"1"):
        version = "1.1" if minor == b"1" else "1.0"
    elif major == b"0":
        raise ProtocolError(400, "HTTP/0.x request line")
    else:
        version, protocol = "1.1", f"HTTP/{major.decode()}.{minor.decode()}"
    smethod = method.decode("ascii")
    if target[0] != 0x2F and not (target == b"*" and smethod == "OPTIONS") and (
            _ABSOLUTE.match(target) is None) and not (
            smethod == "CONNECT" and _AUTHORITY.fullmatch(target) is not None):
        raise ProtocolError(400, "invalid request target")
    if limits.registered_methods and smethod not in REGISTERED_METHODS:
        raise ProtocolError(501, f"unregistered method {smethod}")
    headers: dict[str, str] = {}
    raw: list[tuple[bytes, bytes]] = []
    if head_end > nl:
        key = ""
        for line in bytes(buf[nl + 1:head_end]).split(b"\n"):
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > limits.field_size:
                raise ProtocolError(400, f"header field longer than LimitRequestFieldSize {limits.field_size}", HeadFault.LIMIT)
            if line[:1] in (b" ", b"\t"):
                # obs-fold: Apache joins the continuation to the field before it
                if not key:
                    raise ProtocolError(400, "continuation line before any header field")
                more = line.strip(b" \t")
                if _BAD_VALUE.search(more):
                    raise ProtocolError(400, "control character in header value")
                name, value = raw[-1]
                value = value + b" " + more if value else more
                raw[-1] = (name, value)
                headers[key] = headers[key] + " " + more.decode("latin-1") if headers[key] else more.decode("latin-1")
                continue
            known = _LINES.get(line)
            if known is None:
                fm = _FIELD.fullmatch(line)
                if fm is None:
                    raise ProtocolError(400, "malformed header field")
                name, value = fm.group(1), fm.group(2)
                if _BAD_VALUE.search(value):
                    raise ProtocolError(400, "control character in header value")
                known = (name, value, name.decode("ascii").lower(), value.decode("latin-1"))
                if len(line) <= 1024:
                    if len(_LINES) >= _LINES_MAX:
                        _LINES.clear()
                    _LINES[line] = known
            name, value, key, sval = known
            raw.append((name, value))
            if len(raw) > limits.fields and limits.fields:
                raise ProtocolError(400, f"more than LimitRequestFields {limits.fields} header fields", HeadFault.LIMIT)
            if key in headers:
                if key == "host":
                    raise ProtocolError(400, f"repeated {key} header")
                headers[key] = headers[key] + ", " + sval
            else:
                headers[key] = sval
    host = headers.get("host")
    if host is None:
        if version == "1.1":
            raise ProtocolError(400, "HTTP/1.1 request without Host")
    elif host not in _GOOD_HOSTS:
        if _HOST.fullmatch(host) is None or not host or host[0] == ":":
            raise ProtocolError(400, f"invalid Host {host!r}")
        if len(_GOOD_HOSTS) < 256:
            _GOOD_HOSTS.add(host)
    cl = headers.get("content-length")
    body = "transfer-encoding" in headers or (cl is not None and cl != "0")
    connection = headers.get("connection")
    if connection is None:
        keep = version == "1.1"
    else:
        conn_tokens = {t.strip().lower() for t in connection.split(",")}
        keep = ("close" not in conn_tokens) if version == "1.1" else ("keep-alive" in conn_tokens)
    return RequestHead(smethod, bytes(target), version, headers, raw, body, keep,
                       consumed - pos, protocol), consumed


def _check_partial_fields(buf, start: int, limits: Limits) -> None:
    count = 0
    pos = start
    n = len(buf)
    while pos < n:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if n - pos > limits.field_size + 1:
                raise ProtocolError(400, f"header field longer than LimitRequestFieldSize {limits.field_size}", HeadFault.LIMIT)
            return
        if nl - pos > limits.field_size + 1:
            raise ProtocolError(400, f"header field longer than LimitRequestFieldSize {limits.field_size}", HeadFault.LIMIT)
        count += 1
        if count > limits.fields:
            raise ProtocolError(400, f"more than LimitRequestFields {limits.fields} header fields", HeadFault.LIMIT)
        pos = nl + 1


def response_head(status: int, reason: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """Serialise a status line and header fields (names and values already safe bytes)."""
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("latin-1"))]
    for name, value in headers:
        parts.append(name + b": " + value + b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)
