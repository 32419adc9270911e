"""Body framing and decoding (http.body): every input fed whole, line by line and byte by byte.
Statuses are apache2 2.4.71's answers to the same bytes (tests/interop/http/test_framing.py)."""
from __future__ import annotations

import pytest

from httpd_py.http.body import CHUNKED, LENGTH, NONE, BodyReader, Framing, request_framing
from httpd_py.http.protocol import Limits, ProtocolError, parse_head

MODES = ["whole", "lines", "bytes"]


def framing(fields: bytes, version: bytes = b"1.1") -> Framing:
    head, _ = parse_head(b"POST / HTTP/" + version + b"\r\nHost: a\r\n" + fields + b"\r\n")
    return request_framing(head)


@pytest.mark.parametrize("fields,want", [
    (b"", (NONE, 0, False)),
    (b"Content-Length: 5\r\n", (LENGTH, 5, False)),
    (b"Content-Length: 05\r\n", (LENGTH, 5, False)),
    (b"Content-Length:  5 \r\n", (LENGTH, 5, False)),
    (b"Content-Length: 0\r\n", (NONE, 0, False)),
    (b"Transfer-Encoding: chunked\r\n", (CHUNKED, 0, False)),
    (b"Transfer-Encoding: Chunked\r\n", (CHUNKED, 0, False)),
    (b"Transfer-Encoding: gzip, chunked\r\n", (CHUNKED, 0, False)),
    (b"Transfer-Encoding: ,chunked\r\n", (CHUNKED, 0, False)),
    (b"Transfer-Encoding: chunked, chunked\r\n", (CHUNKED, 0, False)),
    (b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", (CHUNKED, 0, False)),
    (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", (CHUNKED, 0, True)),
])
def test_framing(fields, want):
    assert tuple(framing(fields)) == want


@pytest.mark.parametrize("fields", [
    b"Transfer-Encoding: chunked, identity\r\n", b"Transfer-Encoding: identity\r\n",
    b"Transfer-Encoding: chunked;q=1\r\n", b"Transfer-Encoding: xchunked\r\n",
    b"Transfer-Encoding:\r\n", b"Content-Length: 5\r\nContent-Length: 5\r\n",
    b"Content-Length: 5\r\nContent-Length: 6\r\n", b"Content-Length: 5, 5\r\n",
    b"Content-Length: +5\r\n", b"Content-Length: 0x5\r\n", b"Content-Length: -1\r\n",
    b"Content-Length: 1 2\r\n", b"Content-Length:\r\n",
    b"Content-Length: 99999999999999999999999\r\n",
])
def test_framing_refused(fields):
    with pytest.raises(ProtocolError) as ei:
        framing(fields)
    assert ei.value.status == 400


def pieces(data: bytes, mode: str) -> list[bytes]:
    if mode == "whole":
        return [data]
    if mode == "lines":
        return data.splitlines(keepends=True)
    return [data[i:i + 1] for i in range(len(data))]


def run(fr: Framing, data: bytes, mode: str, limit: int = 0, limits: Limits = Limits()):
    r = BodyReader(fr, limit, limits)
    body = b""
    for p in pieces(data, mode):
        got, done = r.feed(p)
        body += got
        if done:
            break
    return body, r.done, r


CH = Framing(CHUNKED)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("data,body", [
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5;ext=1\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b'5;ext="q s"\r\nhello\r\n0\r\n\r\n', b"hello"),
    (b"5 ;ext\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5 \r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5\t\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5;\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"00000000000000000005\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
    (b"5\r\nhello\r\n0\r\nX-T: 1\r\nX-T: 2\r\n\r\n", b"hello"),
    (b"5\r\nhello\r\n0\r\nX-T: 1\r\n  fold\r\n\r\n", b"hello"),
    (b"5\r\nhello\r\n0;e=1\r\n\r\n", b"hello"),
    (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
])
def test_chunked(data, body, mode):
    got, done, r = run(CH, data + b"NEXT", mode)
    assert (got, done) == (body, True)
    if mode == "whole":
        assert r.leftover == b"NEXT"


def test_leftover_is_the_next_request():
    r = BodyReader(CH)
    assert r.feed(b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n") == (b"hello", True)
    assert r.leftover == b"GET / HTTP/1.1\r\n"
    r = BodyReader(Framing(LENGTH, 5))
    assert r.feed(b"helloGET") == (b"hello", True) and r.leftover == b"GET"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("data,status", [
    (b" 5\r\nhello\r\n0\r\n\r\n", 400),
    (b"z\r\nhello\r\n0\r\n\r\n", 400),
    (b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    (b"+5\r\nhello\r\n0\r\n\r\n", 400),
    (b"-5\r\nhello\r\n0\r\n\r\n", 400),
    (b"\r\nhello\r\n0\r\n\r\n", 400),
    (b"5 5\r\nhello\r\n0\r\n\r\n", 400),
    (b"5;\x01\r\nhello\r\n0\r\n\r\n", 400),
    (b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 413),
    (b"8000000000000000\r\nhello\r\n0\r\n\r\n", 413),
    (b"5\r\nhelloXX0\r\n\r\n", 400),
    (b"5\r\nhello\n0\r\n\r\n", 400),
    (b"5\nhello\r\n0\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\n\n", 400),
    (b"5\r\nhello\r\n0\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n", 400),   # no final CRLF
    (b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\n folded\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nX-T: a\x01\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nX-T: " + b"a" * 9000 + b"\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\n" + b"X-T: 1\r\n" * 101 + b"\r\n", 400),
])
def test_chunked_errors(data, status, mode):
    with pytest.raises(ProtocolError) as ei:
        run(CH, data, mode)
    assert ei.value.status == status


@pytest.mark.parametrize("mode", MODES)
def test_limit_request_body(mode):
    assert run(CH, b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", mode, limit=10)[:2] == (b"helloworld", True)
    for data in (b"b\r\nhello world\r\n0\r\n\r\n", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"):
        with pytest.raises(ProtocolError) as ei:
            run(CH, data, mode, limit=10)
        assert ei.value.status == 413
    assert run(Framing(LENGTH, 10), b"helloworld", mode, limit=10)[:2] == (b"helloworld", True)


def test_content_length_over_the_limit_is_refused_before_reading():
    with pytest.raises(ProtocolError) as ei:
        BodyReader(Framing(LENGTH, 11), limit=10)
    assert ei.value.status == 413
