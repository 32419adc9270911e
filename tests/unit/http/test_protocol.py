"""Request-head parsing: every input fed whole, line by line and byte by byte."""
from __future__ import annotations

import pytest

from httpd_py.http.protocol import HeadFault, Limits, ProtocolError, parse_head, response_head

LIM = Limits(request_line=100, field_size=60, fields=5)


def feed(data: bytes, mode: str, limits: Limits = LIM):
    """Feed ``data`` into a buffer in pieces; return the first parse result (or None)."""
    if mode == "whole":
        pieces = [data]
    elif mode == "lines":
        pieces = [l for l in data.splitlines(keepends=True)]
    else:
        pieces = [data[i:i + 1] for i in range(len(data))]
    buf = bytearray()
    for p in pieces:
        buf += p
        got = parse_head(buf, limits)
        if got is not None:
            return got
    return None


MODES = ["whole", "lines", "bytes"]


@pytest.mark.parametrize("mode", MODES)
def test_simple_get(mode):
    head, used = feed(b"GET /a?b HTTP/1.1\r\nHost: x.test\r\nUser-Agent:  curl/8 \r\n\r\nNEXT", mode)
    assert (head.method, head.target, head.version) == ("GET", b"/a?b", "1.1")
    assert head.headers == {"host": "x.test", "user-agent": "curl/8"}
    assert head.keep_alive and not head.body
    assert head.request_line == "GET /a?b HTTP/1.1"
    assert used == len(b"GET /a?b HTTP/1.1\r\nHost: x.test\r\nUser-Agent:  curl/8 \r\n\r\n")


@pytest.mark.parametrize("mode", MODES)
def test_bare_lf_and_leading_empty_lines_unsafe(mode):
    unsafe = Limits(request_line=100, field_size=60, fields=5, strict=False)
    head, used = feed(b"\r\n\nHEAD / HTTP/1.0\nConnection: keep-alive\n\n", mode, unsafe)
    assert head.method == "HEAD" and head.version == "1.0" and head.keep_alive


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.0\n\n",                                # apache2: 400
    b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\n\r\n",
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",
])
def test_bare_lf_is_400_when_strict(raw, mode):
    with pytest.raises(ProtocolError) as ei:
        feed(raw, mode)
    assert ei.value.status == 400


@pytest.mark.parametrize("mode", MODES)
def test_leading_crlf_is_skipped_when_strict(mode):
    head, used = feed(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", mode)
    assert head.method == "GET" and used == 4 + 27


@pytest.mark.parametrize("mode", MODES)
def test_obs_fold_is_joined(mode):
    head, _ = feed(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\tmore\r\n\r\n", mode)
    assert head.headers["x-a"] == "1 folded more"


@pytest.mark.parametrize("mode", MODES)
def test_http09_and_later_versions(mode):
    head, used = feed(b"GET /x\r\n", mode)
    assert (head.version, head.target, used, head.request_line) == ("0.9", b"/x", 8, "GET /x")
    head, _ = feed(b"GET /x HTTP/2.0\r\nHost: a\r\n\r\n", mode)
    assert head.version == "1.1" and head.request_line == "GET /x HTTP/2.0" and head.keep_alive
    with pytest.raises(ProtocolError) as ei:
        feed(b"GET /x\r\n", mode, Limits(allow09=False))
    assert ei.value.status == 400


def test_registered_methods():
    assert parse_head(b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", LIM)[0].method == "FOO"
    with pytest.raises(ProtocolError) as ei:
        parse_head(b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", Limits(registered_methods=True))
    assert ei.value.status == 501
    assert parse_head(b"MKCOL / HTTP/1.1\r\nHost: a\r\n\r\n", Limits(registered_methods=True))


@pytest.mark.parametrize("raw,keep", [
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Close\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", True),
])
def test_keep_alive_semantics(raw, keep):
    assert parse_head(raw, LIM)[0].keep_alive is keep


@pytest.mark.parametrize("raw,body", [
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", True),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", False),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", True),
])
def test_body_detection(raw, body):
    assert parse_head(raw, LIM)[0].body is body


def test_repeated_fields_join():
    head, _ = parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nAccept: x\r\nAccept: y\r\n\r\n", LIM)
    assert head.headers["accept"] == "x, y"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("raw,status", [
    (b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 100 + b"\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X%d: v\r\n" % i for i in range(6)) + b"\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                                   # no Host
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),                       # space before colon
    (b"GET / HTTP/1.1\r\n folded\r\nHost: a\r\n\r\n", 400),         # fold before any field
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
    (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 400),
    (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/01.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    (b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: \r\n\r\n", 400),
    (b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", 400),
    (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),     # a TLS ClientHello
])
def test_errors(raw, status, mode):
    with pytest.raises(ProtocolError) as ei:
        feed(raw, mode)
    assert ei.value.status == status


def test_limits_enforced_before_the_head_completes():
    with pytest.raises(ProtocolError) as ei:
        parse_head(b"GET /" + b"a" * 200, LIM)              # no LF yet
    assert ei.value.status == 414
    with pytest.raises(ProtocolError) as ei:
        parse_head(b"GET / HTTP/1.1\r\nX: " + b"v" * 100, LIM)
    assert ei.value.status == 400
    assert parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n", LIM) is None


def test_pipelined_requests_consume_exactly_one_head():
    data = bytearray(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    h1, used = parse_head(data, LIM)
    del data[:used]
    h2, used2 = parse_head(data, LIM)
    assert (h1.target, h2.target, used2) == (b"/1", b"/2", len(data))


def test_response_head():
    assert response_head(200, "OK", [(b"Content-Length", b"0")]) == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def test_repeated_header_lines_parse_the_same_and_share_no_mutable_state():
    raw = b"GET /a HTTP/1.1\r\nHost: x.test\r\nAccept: */*\r\nX-Long: " + b"v" * 2000 + b"\r\n\r\n"
    first, _ = parse_head(bytearray(raw), Limits())
    first.headers["accept"] = "changed by a hook"
    first.raw_headers.append((b"X", b"y"))
    second, _ = parse_head(bytearray(raw), Limits())
    assert second.headers == {"host": "x.test", "accept": "*/*", "x-long": "v" * 2000}
    assert second.raw_headers == [(b"Host", b"x.test"), (b"Accept", b"*/*"), (b"X-Long", b"v" * 2000)]


def test_a_refused_header_line_is_refused_every_time():
    bad = b"GET / HTTP/1.1\r\nHost: x.test\r\nX-Bad: a\x01b\r\n\r\n"
    for _ in range(2):
        with pytest.raises(ProtocolError) as e:
            parse_head(bytearray(bad), Limits())
        assert e.value.status == 400
    good_then_over_limit = b"GET / HTTP/1.1\r\nHost: x.test\r\nX-A: " + b"a" * 100 + b"\r\n\r\n"
    assert parse_head(bytearray(good_then_over_limit), Limits()) is not None
    with pytest.raises(ProtocolError) as e:           # the limit is checked before the memo
        parse_head(bytearray(good_then_over_limit), Limits(field_size=50))
    assert e.value.kind is HeadFault.LIMIT
