"""Request body framing and decoding, sans-I/O: what Apache 2.4.71 accepts and refuses.

``request_framing(head)`` decides how the body after a parsed head is delimited (RFC 9112
section 6.3, with Apache's answers, observed on Debian's apache2 2.4.71):

* ``Transfer-Encoding``: all its fields joined; the comma-separated codings (case-insensitive,
  empty items skipped) must end in ``chunked``, else 400 (``chunked, identity``, ``identity``,
  ``chunked;q=1``, an empty value).  ``gzip, chunked`` is accepted (the coding is not undone:
  the handler ignores bodies).  With ``Content-Length`` too, Content-Length is dropped and the
  connection closes after the response (``Framing.close``).
* ``Content-Length``: one field of decimal digits only (``+5``, ``0x5``, ``-1``, ``5, 5``, two
  fields even with the same value, an empty value, more than 63 bits: 400).
* neither: no body.

``BodyReader(framing, limit, field_limits)`` is fed the bytes that follow the head,
``feed(data) -> (body_bytes, done)``; bytes fed after ``done`` are the next request's and are
kept in ``leftover``.  Errors raise ``ProtocolError`` with Apache's status:

* more body than ``limit`` (LimitRequestBody, 0 = unlimited): 413;
* chunk size: hex digits (leading zeros ignored), then optional spaces/tabs, then an optional
  ``;extension`` of visible characters, spaces and tabs, then CRLF; no digits, a leading space,
  a bare LF, a control character: 400; a size above 2**63 - 1: 413;
* chunk data not followed by exactly CRLF: 400;
* trailers: header lines as in the head (``name: value``, CRLF, obs-fold joined); a line without
  a colon, a control character, a bare LF: 400; over LimitRequestFieldSize or more than
  LimitRequestFields trailer lines: 400.

State machine (state, input) -> state::

    SIZE --hex--> SIZE --[ \\t]--> SIZE_WS --;--> EXT --CRLF--> DATA (n > 0) | TRAILER (n = 0)
    DATA --n bytes--> DATA_CR --CRLF--> SIZE
    TRAILER --line--> TRAILER --empty line--> DONE
"""
from __future__ import annotations

import re
from typing import NamedTuple

from httpd_py.http.protocol import Limits, ProtocolError, RequestHead

NONE, LENGTH, CHUNKED = "none", "length", "chunked"
MAX_SIZE = 2 ** 63 - 1

_DIGITS = re.compile(rb"[0-9]+")
_TRAILER_FIELD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*(.*?)[ \t]*")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_BAD_EXT = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HEX = frozenset(b"0123456789abcdefABCDEF")


class Framing(NamedTuple):
    kind: str               # NONE, LENGTH or CHUNKED
    length: int = 0         # LENGTH: the Content-Length
    close: bool = False     # close the connection after the response (CL and TE both sent)

    @property
    def has_body(self) -> bool:
        return self.kind == CHUNKED or self.length > 0


NO_BODY = Framing(NONE)


def request_framing(head: RequestHead) -> Framing:
    """How the body after HEAD is delimited; ProtocolError(400) for what Apache refuses."""
    headers = head.headers
    te = headers.get("transfer-encoding")
    cl = headers.get("content-length")
    if te is not None:
        codings = [c.strip().lower() for c in te.split(",")]
        codings = [c for c in codings if c]
        if not codings or codings[-1] != "chunked":
            raise ProtocolError(400, f"unknown Transfer-Encoding: {te}")
        return Framing(CHUNKED, 0, cl is not None)
    if cl is None:
        return NO_BODY
    if sum(1 for name, _ in head.raw_headers if name.lower() == b"content-length") > 1:
        raise ProtocolError(400, "repeated Content-Length")
    raw = cl.encode("latin-1")
    if _DIGITS.fullmatch(raw) is None:
        raise ProtocolError(400, f"invalid Content-Length {cl!r}")
    n = int(raw)
    if n > MAX_SIZE:
        raise ProtocolError(400, f"Content-Length {cl} too large")
    return Framing(LENGTH, n) if n else NO_BODY


# chunked decoder states
_SIZE, _SIZE_WS, _EXT, _SIZE_LF, _DATA, _DATA_CR, _DATA_LF, _TRAILER, _DONE = range(9)


class BodyReader:
    """Consumes one request body from fed bytes (the body content itself is discarded by
    callers that only drain; ``feed`` still returns it)."""

    def __init__(self, framing: Framing, limit: int = 0, field_limits: Limits = Limits()):
        self.framing = framing
        self.limit = limit
        self.limits = field_limits
        self.received = 0               # body bytes so far (decoded)
        self.leftover = b""             # bytes after the body: the next request's
        self.done = not framing.has_body
        if framing.kind == LENGTH:
            if limit and framing.length > limit:
                raise ProtocolError(413, f"Content-Length {framing.length} over LimitRequestBody {limit}")
            self._left = framing.length
        self._state = _SIZE
        self._size = 0
        self._digits = 0
        self._line = bytearray()        # the current chunk-size or trailer line
        self._trailers = 0
        self._last_trailer = False

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if self.done:
            self.leftover += data
            return b"", True
        if self.framing.kind == LENGTH:
            take = data[:self._left]
            self._left -= len(take)
            self.received += len(take)
            if self._left == 0:
                self.done = True
                self.leftover += data[len(take):]
            return take, self.done
        return self._chunked(data)

    # --- chunked --------------------------------------------------------------------------
    def _chunked(self, data: bytes) -> tuple[bytes, bool]:
        out = []
        i, n = 0, len(data)
        while i < n:
            st = self._state
            if st == _DATA:
                take = data[i:i + self._size]
                self._size -= len(take)
                self.received += len(take)
                if self.limit and self.received > self.limit:
                    raise ProtocolError(413, f"chunked body over LimitRequestBody {self.limit}")
                out.append(take)
                i += len(take)
                if self._size == 0:
                    self._state = _DATA_CR
                continue
            c = data[i]
            i += 1
            if st == _SIZE:
                if c in _HEX:
                    if self._size or c != 0x30:
                        self._size = self._size * 16 + int(chr(c), 16)
                        if self._size > MAX_SIZE:
                            raise ProtocolError(413, "chunk size too large")
                    self._digits += 1
                elif self._digits == 0:
                    raise ProtocolError(400, "invalid chunk size")
                elif c in (0x20, 0x09):
                    self._state = _SIZE_WS
                elif c == 0x3B:
                    self._state = _EXT
                elif c == 0x0D:
                    self._state = _SIZE_LF
                else:
                    raise ProtocolError(400, "invalid chunk size")
            elif st == _SIZE_WS:
                if c == 0x3B:
                    self._state = _EXT
                elif c == 0x0D:
                    self._state = _SIZE_LF
                elif c not in (0x20, 0x09):
                    raise ProtocolError(400, "invalid chunk size")
            elif st == _EXT:
                if c == 0x0D:
                    self._state = _SIZE_LF
                elif c != 0x09 and (c < 0x20 or c == 0x7F):
                    raise ProtocolError(400, "control character in chunk extension")
            elif st == _SIZE_LF:
                if c != 0x0A:
                    raise ProtocolError(400, "chunk size line not ended by CRLF")
                self._digits = 0
                if self._size:
                    if self.limit and self.received + self._size > self.limit:
                        raise ProtocolError(413, f"chunked body over LimitRequestBody {self.limit}")
                    self._state = _DATA
                else:
                    self._state = _TRAILER
            elif st == _DATA_CR:
                if c != 0x0D:
                    raise ProtocolError(400, "chunk data not followed by CRLF")
                self._state = _DATA_LF
            elif st == _DATA_LF:
                if c != 0x0A:
                    raise ProtocolError(400, "chunk data not followed by CRLF")
                self._state = _SIZE
            elif st == _TRAILER:
                nl = data.find(b"\n", i - 1)
                if nl < 0:
                    self._line += data[i - 1:]
                    i = n
                else:
                    self._line += data[i - 1:nl + 1]
                    i = nl + 1
                    if self._trailer_line(bytes(self._line)):
                        self.done = True
                        self._state = _DONE
                        self.leftover += data[i:]
                        break
                    self._line.clear()
                if len(self._line) > self.limits.field_size + 2:
                    raise ProtocolError(400, f"trailer longer than LimitRequestFieldSize "
                                             f"{self.limits.field_size}")
        return b"".join(out), self.done

    def _trailer_line(self, line: bytes) -> bool:
        """One complete trailer line (with its LF); True at the empty line ending the trailers."""
        if not line.endswith(b"\r\n"):
            raise ProtocolError(400, "bare LF in trailer")
        line = line[:-2]
        if not line:
            return True
        if len(line) > self.limits.field_size:
            raise ProtocolError(400, f"trailer longer than LimitRequestFieldSize {self.limits.field_size}")
        if line[:1] in (b" ", b"\t"):
            if not self._last_trailer:
                raise ProtocolError(400, "continuation line without a trailer field")
            if _BAD_VALUE.search(line):
                raise ProtocolError(400, "control character in trailer")
            return False
        m = _TRAILER_FIELD.fullmatch(line)
        if m is None:
            raise ProtocolError(400, "malformed trailer field")
        if _BAD_VALUE.search(m.group(1)):
            raise ProtocolError(400, "control character in trailer")
        self._trailers += 1
        self._last_trailer = True
        if self.limits.fields and self._trailers > self.limits.fields:
            raise ProtocolError(400, f"more than LimitRequestFields {self.limits.fields} trailers")
        return False


ChunkedDecoder = BodyReader
