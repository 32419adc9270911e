"""Request framing and bodies: named raw requests sent to apache2 2.4.71 and to httpd-py on one
shared plain-HTTP config; per case the same status and the same "connection still open after
the response" (a second ``GET /x`` on the connection is answered, or not).

Both servers run ``Timeout 2`` so a case that leaves a server waiting (none should) costs two
seconds, not sixty.  Documented differences (docs/interop.md) are only where httpd-py is
stricter for security; none are listed today.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from tests.support.apache import apache_serving, load_modules
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, require_tool, wait_until

H = b"Host: localhost\r\n"
TE = b"Transfer-Encoding: chunked\r\n"
EXPECT = b"Expect: 100-continue\r\n"
FOLLOW = b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n"


def post(fields: bytes, body: bytes = b"", path: bytes = b"/x", version: bytes = b"1.1") -> bytes:
    return b"POST " + path + b" HTTP/" + version + b"\r\n" + fields + b"\r\n" + body


def chunked(body: bytes, path: bytes = b"/x") -> bytes:
    return post(H + TE, body, path)


# name -> (raw request, body sent after a 100 Continue or None)
CASES: dict[str, tuple[bytes, bytes | None]] = {
    "plain-get": (FOLLOW, None),
    "bare-lf-request": (b"GET /x HTTP/1.0\n\n", None),
    "bare-lf-after-request-line": (b"GET /x HTTP/1.1\n" + H + b"\r\n", None),
    "bare-lf-after-field": (b"GET /x HTTP/1.1\r\nHost: localhost\n\r\n", None),
    "leading-crlf": (b"\r\n" + FOLLOW, None),
    "leading-bare-lf": (b"\n" + FOLLOW, None),
    "http-0.9": (b"GET /x\r\n", None),
    "http-0.9-version": (b"GET /x HTTP/0.9\r\n" + H + b"\r\n", None),
    "http-2.0-request-line": (b"GET /x HTTP/2.0\r\n" + H + b"\r\n", None),
    "http-1.2-request-line": (b"GET /x HTTP/1.2\r\n" + H + b"\r\n", None),
    "lowercase-http": (b"GET /x http/1.1\r\n" + H + b"\r\n", None),
    "two-spaces": (b"GET  /x HTTP/1.1\r\n" + H + b"\r\n", None),
    "tab-separator": (b"GET\t/x HTTP/1.1\r\n" + H + b"\r\n", None),
    "trailing-space": (b"GET /x HTTP/1.1 \r\n" + H + b"\r\n", None),
    "relative-target": (b"GET x HTTP/1.1\r\n" + H + b"\r\n", None),
    "absolute-target": (b"GET http://localhost/x HTTP/1.1\r\n" + H + b"\r\n", None),
    "unknown-method": (b"FOO /x HTTP/1.1\r\n" + H + b"\r\n", None),
    "lowercase-method": (b"get /x HTTP/1.1\r\n" + H + b"\r\n", None),
    "invalid-method-token": (b"G@T /x HTTP/1.1\r\n" + H + b"\r\n", None),
    "no-host-1.1": (b"GET /x HTTP/1.1\r\n\r\n", None),
    "two-hosts": (b"GET /x HTTP/1.1\r\n" + H + H + b"\r\n", None),
    "host-with-space": (b"GET /x HTTP/1.1\r\nHost: local host\r\n\r\n", None),
    "host-with-at": (b"GET /x HTTP/1.1\r\nHost: a@b\r\n\r\n", None),
    "obs-fold": (b"GET /x HTTP/1.1\r\n" + H + b"X-A: 1\r\n  folded\r\n\r\n", None),
    "obs-fold-first": (b"GET /x HTTP/1.1\r\n folded\r\n" + H + b"\r\n", None),
    "bare-cr-in-field": (b"GET /x HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", None),
    "nul-in-field": (b"GET /x HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", None),
    "space-before-colon": (b"GET /x HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n", None),
    "cl-body": (post(H + b"Content-Length: 5\r\n", b"hello"), None),
    "cl-zero": (post(H + b"Content-Length: 0\r\n"), None),
    "no-length-post": (post(H), None),
    "cl-and-te": (post(H + b"Content-Length: 5\r\n" + TE, b"5\r\nhello\r\n0\r\n\r\n"), None),
    "te-and-cl": (post(H + TE + b"Content-Length: 5\r\n", b"5\r\nhello\r\n0\r\n\r\n"), None),
    "te-chunked": (chunked(b"5\r\nhello\r\n0\r\n\r\n"), None),
    "te-gzip-chunked": (post(H + b"Transfer-Encoding: gzip, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), None),
    "te-chunked-identity": (post(H + b"Transfer-Encoding: chunked, identity\r\n", b"5\r\nhello\r\n0\r\n\r\n"), None),
    "te-identity": (post(H + b"Transfer-Encoding: identity\r\n"), None),
    "te-chunked-param": (post(H + b"Transfer-Encoding: chunked;q=1\r\n", b"0\r\n\r\n"), None),
    "te-two-fields": (post(H + b"Transfer-Encoding: gzip\r\n" + TE, b"0\r\n\r\n"), None),
    "te-http-1.0": (post(H + TE, b"5\r\nhello\r\n0\r\n\r\n", version=b"1.0"), None),
    "te-http-1.0-keepalive": (post(b"Connection: keep-alive\r\n" + TE, b"0\r\n\r\n", version=b"1.0"), None),
    "cl-duplicate-same": (post(H + b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), None),
    "cl-duplicate-different": (post(H + b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), None),
    "cl-list": (post(H + b"Content-Length: 5, 5\r\n", b"hello"), None),
    "cl-plus": (post(H + b"Content-Length: +5\r\n", b"hello"), None),
    "cl-leading-space": (post(H + b"Content-Length:  5\r\n", b"hello"), None),
    "cl-trailing-space": (post(H + b"Content-Length: 5 \r\n", b"hello"), None),
    "cl-hex": (post(H + b"Content-Length: 0x5\r\n", b"hello"), None),
    "cl-huge": (post(H + b"Content-Length: 99999999999999999999999\r\n", b"hello"), None),
    "cl-negative": (post(H + b"Content-Length: -1\r\n", b"hello"), None),
    "cl-empty": (post(H + b"Content-Length:\r\n"), None),
    "chunk-extension": (chunked(b"5;ext=1\r\nhello\r\n0\r\n\r\n"), None),
    "chunk-extension-quoted": (chunked(b'5;ext="q s"\r\nhello\r\n0\r\n\r\n'), None),
    "chunk-size-trailing-space": (chunked(b"5 \r\nhello\r\n0\r\n\r\n"), None),
    "chunk-size-leading-space": (chunked(b" 5\r\nhello\r\n0\r\n\r\n"), None),
    "chunk-size-invalid-hex": (chunked(b"z\r\nhello\r\n0\r\n\r\n"), None),
    "chunk-size-0x": (chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), None),
    "chunk-size-empty": (chunked(b"\r\nhello\r\n0\r\n\r\n"), None),
    "chunk-size-leading-zeros": (chunked(b"00000000000000000005\r\nhello\r\n0\r\n\r\n"), None),
    "chunk-size-overflow": (chunked(b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), None),
    "chunk-size-sign-bit": (chunked(b"8000000000000000\r\nhello\r\n0\r\n\r\n"), None),
    "chunk-extension-control": (chunked(b"5;\x01\r\nhello\r\n0\r\n\r\n"), None),
    "chunk-data-no-crlf": (chunked(b"5\r\nhelloXX0\r\n\r\n"), None),
    "chunk-data-bare-lf": (chunked(b"5\r\nhello\n0\r\n\r\n"), None),
    "chunk-size-bare-lf": (chunked(b"5\nhello\r\n0\r\n\r\n"), None),
    "last-chunk-bare-lf": (chunked(b"5\r\nhello\r\n0\n\n"), None),
    "missing-final-crlf": (chunked(b"5\r\nhello\r\n0\r\n") + FOLLOW, None),
    "trailers": (chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"), None),
    "trailer-malformed": (chunked(b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n"), None),
    "trailer-too-long": (chunked(b"5\r\nhello\r\n0\r\nX-T: " + b"a" * 9000 + b"\r\n\r\n"), None),
    "trailers-too-many": (chunked(b"5\r\nhello\r\n0\r\n" + b"X-T: 1\r\n" * 101 + b"\r\n"), None),
    "pipelined-after-cl-body": (post(H + b"Content-Length: 5\r\n", b"hello") + FOLLOW, None),
    "pipelined-after-chunked-body": (chunked(b"5\r\nhello\r\n0\r\n\r\n") + FOLLOW, None),
    "expect-100-continue": (post(H + EXPECT + b"Content-Length: 5\r\n"), b"hello"),
    "expect-100-chunked": (post(H + EXPECT + TE), b"5\r\nhello\r\n0\r\n\r\n"),
    "expect-100-on-404": (post(H + EXPECT + b"Content-Length: 5\r\n", path=b"/missing"), b"hello"),
    "expect-100-no-body": (b"GET /x HTTP/1.1\r\n" + H + EXPECT + b"\r\n", None),
    "expect-unknown": (post(H + b"Expect: foo\r\nContent-Length: 5\r\n", b"hello"), None),
    "expect-100-over-limit": (post(H + EXPECT + b"Content-Length: 50\r\n", path=b"/lim/f"), b"x" * 50),
    "limit-cl-413": (post(H + b"Content-Length: 11\r\n", b"hello world", b"/lim/f"), None),
    "limit-cl-at-limit": (post(H + b"Content-Length: 10\r\n", b"helloworld", b"/lim/f"), None),
    "limit-cl-413-no-body-sent": (post(H + b"Content-Length: 11\r\n", b"", b"/lim/f"), None),
    "limit-chunked-413": (chunked(b"b\r\nhello world\r\n0\r\n\r\n", b"/lim/f"), None),
    "limit-chunked-413-second-chunk": (chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"/lim/f"), None),
    "limit-chunked-at-limit": (chunked(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", b"/lim/f"), None),
    "limit-on-404": (b"GET /lim/missing HTTP/1.1\r\n" + H + b"Content-Length: 11\r\n\r\nhello world", None),
    "body-on-404": (b"GET /missing HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello", None),
    "body-on-405": (b"PUT /x HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello", None),
    "body-on-options": (b"OPTIONS /x HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello", None),
    "body-on-unknown-method": (b"FOO /x HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello", None),
}


class _Reader:
    def __init__(self, sock: socket.socket):
        self.sock, self.buf, self.eof = sock, b"", False

    def _more(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise
        except OSError:
            data = b""
        self.eof = not data
        self.buf += data
        return bool(data)

    def response(self):
        """The next response's status ("0.9" for a bare HTTP/0.9 answer), None when nothing
        (or nothing readable) came before EOF or the timeout."""
        try:
            while b"\r\n\r\n" not in self.buf:
                if self.buf and not self.buf.startswith(b"HTTP/"[:len(self.buf)]):
                    while not self.eof and self._more():
                        pass
                    self.buf = b""
                    return "0.9"
                if self.eof or not self._more():
                    if self.buf and not self.buf.startswith(b"HTTP/"):
                        self.buf = b""
                        return "0.9"
                    return None
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ")[1])
            fields = {}
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                fields[k.strip().lower()] = v.strip()
            self.buf = rest
            if status < 200:
                return status
            if b"content-length" not in fields:      # delimited by the close
                while not self.eof and self._more():
                    pass
                self.buf = b""
                return status
            n = int(fields[b"content-length"])
            while len(self.buf) < n:
                if self.eof or not self._more():
                    return None
            self.buf = self.buf[n:]
            return status
        except (socket.timeout, TimeoutError):
            return None


def exchange(port: int, raw: bytes, after_100: bytes | None) -> tuple[tuple, object]:
    """(statuses of the answer, interim ones included; the answer to a following GET /x or
    "closed")."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        r = _Reader(s)
        s.sendall(raw)
        statuses = []
        while True:
            st = r.response()
            statuses.append(st)
            if st == 100 and after_100 is not None:
                s.sendall(after_100)
                after_100 = None
            if st != 100:
                break
        try:
            s.sendall(FOLLOW)
            after = r.response()
        except OSError:
            after = None
        return tuple(statuses), "closed" if after is None else after


CONF = """\
Timeout 2
KeepAlive On
TypesConfig /etc/mime.types
DocumentRoot "{docs}"
DirectoryIndex index.html
<Directory />
    Require all denied
</Directory>
<Directory "{docs}">
    Require all granted
</Directory>
<Directory "{docs}/lim">
    LimitRequestBody 10
</Directory>
"""


@pytest.fixture(scope="module")
def tree():
    require_tool("apache2")
    base = Path(tempfile.mkdtemp(prefix="framing-"))
    os.chmod(base, 0o755)
    docs = base / "docs"
    (docs / "lim").mkdir(parents=True)
    (docs / "x").write_text("x\n")
    (docs / "lim" / "f").write_text("lim\n")
    (base / "shared.conf").write_text(CONF.format(docs=docs))
    for tag in ("apache", "httpd-py"):
        (base / tag / "logs").mkdir(parents=True)
    os.system(f"chmod -R a+rX {base}")
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _main_conf(base: Path, tag: str, port: int) -> str:
    root = base / tag
    return (f'ServerRoot "{root}"\n'
            + load_modules("mpm_prefork", "authz_core", "dir", "mime")
            + f'\nServerName localhost\nErrorLog "{root}/logs/error.log"\nLogLevel info\n'
            f'PidFile "{root}/logs/{tag}.pid"\nDefaultRuntimeDir "{root}/logs"\n'
            f"Mutex file:{root}/logs default\nListen 127.0.0.1:{port}\n"
            "User www-data\nGroup www-data\n"
            "StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\n"
            f'Include "{base}/shared.conf"\n')


@pytest.fixture(scope="module")
def apache_port(tree: Path) -> int:
    port = free_port()
    conf = tree / "apache" / "apache.conf"
    conf.write_text(_main_conf(tree, "apache", port))
    with apache_serving(conf, tree / "apache", port, pid_file=tree / "apache" / "logs" / "apache.pid"):
        yield port


@pytest.fixture(scope="module")
def httpd_py_port(tree: Path) -> int:
    port = free_port()
    with httpd(tree / "httpd-py", _main_conf(tree, "httpd-py", port)):
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        yield port


@pytest.fixture(scope="module")
def apache_answers(apache_port: int) -> dict:
    return {name: exchange(apache_port, raw, b100) for name, (raw, b100) in CASES.items()}


def test_corpus_size():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", list(CASES))
def test_same_answer_as_apache(name, apache_answers, httpd_py_port):
    raw, after_100 = CASES[name]
    assert exchange(httpd_py_port, raw, after_100) == apache_answers[name]
