"""mod_proxy_http's pure pieces: path re-encoding, the response head parser (fed whole, by line
and by byte), hop-by-hop filtering, the backend request head."""
from __future__ import annotations

import pytest

from httpd_py.modules.proxy import wire


@pytest.mark.parametrize("path, expected", [
    ("/a/b", "/a/b"),
    ("/x y/z", "/x%20y/z"),
    ("/100%", "/100%25"),
    ("/q?x", "/q%3Fx"),
    ("/h#f", "/h%23f"),
    ("/~u/$-_.+!*'(),;:@&=", "/~u/$-_.+!*'(),;:@&="),
    ("/caf\udce9", "/caf%E9"),            # a byte that was not UTF-8 (surrogateescape)
    ("/\xe9t\xe9", "/%C3%A9t%C3%A9"),
    ("/a\"<>\\^`{|}", "/a%22%3C%3E%5C%5E%60%7B%7C%7D"),
])
def test_canon_path(path, expected):
    assert wire.canon_path(path) == expected


HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
        b"X-Folded: a\r\n b\r\n\r\nhello")


def _feed(pieces):
    rh = wire.ResponseHead()
    done = False
    for p in pieces:
        done = rh.feed(p)
        if done:
            break
    return rh


@pytest.mark.parametrize("split", ["whole", "lines", "bytes"])
def test_response_head_any_split(split):
    if split == "whole":
        pieces = [HEAD]
    elif split == "lines":
        pieces = [l + b"\n" for l in HEAD.split(b"\n")]
        pieces[-1] = pieces[-1][:-1]
    else:
        pieces = [HEAD[i:i + 1] for i in range(len(HEAD))]
    rh = _feed(pieces)
    assert rh.done and rh.status == 200 and rh.reason == "OK"
    assert rh.header("content-type") == "text/plain"
    assert rh.header("x-folded") == "a b"
    assert rh.body_framing("GET") == ("length", 5)
    assert (rh.leftover + b"".join(pieces[len(pieces):])).startswith(b"h") or split != "whole"


@pytest.mark.parametrize("raw, framing", [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", ("chunked", 0)),
    (b"HTTP/1.1 200 OK\r\n\r\n", ("close", 0)),
    (b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n", ("none", 0)),
    (b"HTTP/1.1 304 Not Modified\r\n\r\n", ("none", 0)),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\n", ("length", 7)),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n", ("length", 7)),
])
def test_body_framing(raw, framing):
    rh = _feed([raw])
    assert rh.body_framing("GET") == framing
    assert rh.body_framing("HEAD") == ("none", 0)


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
])
def test_bad_length(raw):
    with pytest.raises(wire.BadResponse):
        _feed([raw]).body_framing("GET")


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"SMTP ready\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * 9000 + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n",
])
def test_bad_heads(raw):
    with pytest.raises(wire.BadResponse):
        _feed([raw])


def test_long_line_refused_before_its_end():
    rh = wire.ResponseHead()
    rh.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(wire.BadResponse):
        for _ in range(10):
            rh.feed(b"x" * 1000)


@pytest.mark.parametrize("raw, keep", [
    (b"HTTP/1.1 200 OK\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", True),
])
def test_keep_alive(raw, keep):
    assert _feed([raw]).keep_alive is keep


def test_request_headers_drop_hop_by_hop_and_listed():
    got = wire.pass_request_headers([
        ("Host", "a"), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "s"),
        ("Keep-Alive", "1"), ("TE", "trailers"), ("Upgrade", "h2c"), ("Accept", "*/*"),
        ("Content-Length", "5"), ("Transfer-Encoding", "chunked"), ("Expect", "100-continue"),
        ("Proxy-Connection", "x")])
    assert got == [("Accept", "*/*"), ("Expect", "100-continue")]


def test_response_headers_drop_hop_by_hop_and_listed():
    got = wire.pass_response_headers([
        ("Connection", "x-listed"), ("x-listed", "1"), ("Keep-Alive", "t"),
        ("Proxy-Authenticate", "Basic"), ("Upgrade", "h2c"), ("Trailer", "x"),
        ("Transfer-Encoding", "chunked"), ("X-Kept", "k"), ("Content-Length", "3")])
    assert got == [("X-Kept", "k"), ("Content-Length", "3")]


def test_request_head():
    head = wire.request_head("POST", "/p?q", "b:81", [("Accept", "*/*")], ("length", 5), True)
    assert head == (b"POST /p?q HTTP/1.1\r\nHost: b:81\r\nAccept: */*\r\n"
                    b"Content-Length: 5\r\nConnection: Keep-Alive\r\n\r\n")
    head = wire.request_head("PUT", "/", "b", [], ("chunked", 0), False)
    assert b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" in head


def test_chunk():
    assert wire.chunk(b"hello") == b"5\r\nhello\r\n"
    assert wire.chunk(b"") == b""


def test_response_head_memo_gives_the_same_parse_and_keeps_the_limits():
    """Header lines parsed once are taken from a memo the next time (a backend repeats them):
    the same headers, and the line-count and line-size limits still apply to them."""
    from httpd_py.modules.proxy.wire import BadResponse, ResponseHead
    head = (b"HTTP/1.1 200 OK\r\nServer: memo-test\r\nX-Memo-A:  one \r\n"
            b"X-Memo-B: two\r\nContent-Length: 0\r\n\r\n")
    first, second = ResponseHead(), ResponseHead()
    assert first.feed(head) and second.feed(head)
    assert second.headers == first.headers == [("Server", "memo-test"), ("X-Memo-A", "one"),
                                               ("X-Memo-B", "two"), ("Content-Length", "0")]
    few = ResponseHead(fields=2)
    with pytest.raises(BadResponse, match="too many"):
        few.feed(head)
    short = ResponseHead(field_size=10)
    with pytest.raises(BadResponse, match="too long"):
        short.feed(head)
