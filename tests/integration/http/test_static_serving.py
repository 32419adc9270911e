"""HTTP/1.1 static serving over plain TCP, with real forked workers and real clients (curl, raw
sockets): keep-alive, 304, 206/416, limits, errors and ErrorDocument, Alias, Redirect, the
path-traversal corpus, access and error logs, scoreboard slot calls."""
from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess

import pytest

from httpd_py.config.model import AliasSpec, RedirectSpec
from tests.support.tlshttp_harness import COMBINED, config, serve, vhost, with_log
from tests.support.tools import free_port, require_tool, wait_until

SECRET = b"TOP-SECRET-OUTSIDE"
BODY = bytes(range(256)) * 4          # 1024 bytes


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http")
    root = tmp / "htdocs"
    (root / "sub").mkdir(parents=True)
    (root / "noindex").mkdir()
    (root / "errors").mkdir()
    (root / "index.html").write_bytes(b"<h1>home</h1>\n")
    (root / "file.bin").write_bytes(BODY)
    (root / "big.bin").write_bytes(os.urandom(700_000))
    (root / "sub" / "index.html").write_bytes(b"sub index\n")
    (root / "style.css").write_bytes(b"body{}\n")
    (root / "data.custom").write_bytes(b"custom\n")
    (root / "errors" / "404.html").write_bytes(b"<p>custom not found page</p>\n")
    (root / ".htpasswd").write_bytes(SECRET)
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (tmp / "secret.txt").write_bytes(SECRET)
    os.symlink(outside / "secret.txt", root / "link-out")
    os.symlink(outside, root / "dir-out")
    os.symlink(root / "file.bin", root / "link-in")
    alias_dir = tmp / "aliased"
    alias_dir.mkdir()
    (alias_dir / "a.txt").write_bytes(b"from alias\n")
    other = tmp / "other"
    other.mkdir()
    (other / "index.html").write_bytes(b"other vhost\n")
    port = free_port()
    www = vhost("www.test", root, port, server_aliases=("alias.www.test",),
                limit_request_line=300, limit_request_field_size=200, limit_request_fields=12,
                max_keep_alive_requests=3, keep_alive_timeout=1.0,
                error_documents=((404, "/errors/404.html"), (410, "Gone for good")),
                aliases=(AliasSpec("/files/", str(alias_dir) + "/"),),
                redirects=(RedirectSpec(301, "/old", "http://www.test/new"),
                           RedirectSpec(410, "/gone", None)),
                add_types=(("custom", "application/x-custom"),))
    www = with_log(www, tmp / "access.log", COMBINED + " %D %{X-Test}i")
    oth = vhost("other.test", other, port)
    cfg = config(tmp, (www, oth), (port,))
    slot_file = tmp / "slot.txt"
    with serve(cfg, tmp, workers=2, slot_path=str(slot_file)) as running:
        running.tmp = tmp
        running.slot_file = slot_file
        yield running


def curl(site, *args, host="www.test", timeout=15):
    require_tool("curl")
    cmd = ["curl", "-sS", "--resolve", f"{host}:{site.port}:127.0.0.1", "--path-as-is", *args]
    cmd = [a.replace("URL", f"http://{host}:{site.port}") for a in cmd]
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def head_lines(out: bytes) -> list[str]:
    return out.decode("latin-1").split("\r\n")


def status_of(out: bytes) -> int:
    return int(out.split(b" ", 2)[1])


def raw(site, request: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", site.port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def get_raw(site, target: bytes, host: bytes = b"www.test") -> bytes:
    return raw(site, b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")


def test_get_index_and_types(site):
    r = curl(site, "-i", "URL/")
    assert r.returncode == 0
    hdr, body = r.stdout.split(b"\r\n\r\n", 1)
    assert status_of(hdr) == 200 and body == b"<h1>home</h1>\n"
    assert b"Content-Type: text/html" in hdr and b"ETag: \"" in hdr and b"Last-Modified:" in hdr
    r = curl(site, "-s", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{content_type}\n", "URL/style.css", "URL/data.custom")
    assert r.stdout == b"text/css\napplication/x-custom\n"


def test_keep_alive_reuses_connection_until_max_requests(site):
    r = curl(site, "-v", "URL/file.bin", "URL/file.bin", "URL/file.bin", "URL/file.bin", "-o", "/dev/null",
             "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null")
    err = r.stderr.decode()
    assert r.returncode == 0, err
    # MaxKeepAliveRequests 3: requests 1-3 share a connection, the 3rd says close, the 4th reconnects.
    assert err.count("Re-using existing connection") == 2
    assert err.count("< Keep-Alive: timeout=1, max=") == 3
    assert err.count("< Connection: close") == 1
    assert err.count("Connected to") == 2


def test_keep_alive_timeout_closes_idle_connection(site):
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: www.test\r\n\r\n")
        got = b""
        while b"<h1>home</h1>\n" not in got:
            got += s.recv(65536)
        assert s.recv(100) == b""        # the server closed after KeepAliveTimeout 1 s, within 10 s


def test_head(site):
    r = curl(site, "-I", "URL/file.bin")
    hdr = r.stdout
    assert status_of(hdr) == 200 and b"Content-Length: 1024" in hdr
    assert hdr.endswith(b"\r\n\r\n")


def test_conditional_304(site):
    r = curl(site, "-i", "URL/file.bin")
    etag = re.search(rb'ETag: ("[^"]+")', r.stdout).group(1).decode()
    lm = re.search(rb"Last-Modified: ([^\r]+)", r.stdout).group(1).decode()
    r = curl(site, "-i", "-H", f"If-None-Match: {etag}", "URL/file.bin")
    assert status_of(r.stdout) == 304 and r.stdout.endswith(b"\r\n\r\n") and etag.encode() in r.stdout
    r = curl(site, "-i", "-H", f"If-Modified-Since: {lm}", "URL/file.bin")
    assert status_of(r.stdout) == 304
    r = curl(site, "-i", "-H", 'If-None-Match: "nope"', "-H", f"If-Modified-Since: {lm}", "URL/file.bin")
    assert status_of(r.stdout) == 200
    r = curl(site, "-i", "-H", 'If-Match: "nope"', "URL/file.bin")
    assert status_of(r.stdout) == 412


def test_range_206_and_416(site):
    r = curl(site, "-i", "-r", "10-19", "URL/file.bin")
    hdr, body = r.stdout.split(b"\r\n\r\n", 1)
    assert status_of(hdr) == 206 and body == BODY[10:20]
    assert b"Content-Range: bytes 10-19/1024" in hdr and b"Content-Length: 10" in hdr
    r = curl(site, "-s", "-r", "-5", "URL/file.bin")
    assert r.stdout == BODY[-5:]
    r = curl(site, "-i", "-r", "5000-", "URL/file.bin")
    assert status_of(r.stdout) == 416 and b"Content-Range: bytes */1024" in r.stdout
    r = curl(site, "-i", "-r", "0-1,5-6", "URL/file.bin")
    assert status_of(r.stdout) == 200 and r.stdout.endswith(BODY)
    r = curl(site, "-i", "-r", "0-9", "-H", 'If-Range: "stale"', "URL/file.bin")
    assert status_of(r.stdout) == 200


def test_large_file_and_range_into_it(site):
    data = (site.tmp / "htdocs" / "big.bin").read_bytes()
    r = curl(site, "-s", "URL/big.bin")
    assert r.stdout == data
    r = curl(site, "-s", "-r", "300000-650000", "URL/big.bin")
    assert r.stdout == data[300000:650001]


def test_limits(site):
    r = curl(site, "-i", "URL/" + "a" * 400)
    assert status_of(r.stdout) == 414
    r = curl(site, "-i", "-H", "X-Big: " + "b" * 300, "URL/")
    assert status_of(r.stdout) == 400
    many = []
    for i in range(15):
        many += ["-H", f"X-H{i}: v"]
    r = curl(site, "-i", *many, "URL/")
    assert status_of(r.stdout) == 400
    # a request line over the limit that never ends is answered 414 without waiting for CRLF
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall(b"GET /" + b"x" * 1000)
        assert s.recv(100).startswith(b"HTTP/1.1 414 ")
    wait_until(lambda: "HP03002" in site.error_text() and "HP03003" in site.error_text(), 5,
               what="limit log ids")


def test_malformed_request_400(site):
    assert raw(site, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(site, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")     # no Host


def test_error_statuses_and_error_document(site):
    r = curl(site, "-i", "URL/missing.html")
    assert status_of(r.stdout) == 404 and b"custom not found page" in r.stdout
    # a directory without index and no mod_autoindex loaded: 404, as Apache (AH00128)
    r = curl(site, "-i", "URL/noindex/")
    assert status_of(r.stdout) == 404
    # POST to a static file is served, as Apache's default handler does; PUT is 405
    r = curl(site, "-i", "-X", "POST", "-d", "x=1", "URL/index.html")
    assert status_of(r.stdout) == 200
    r = curl(site, "-i", "-X", "PUT", "-d", "x=1", "URL/index.html")
    assert status_of(r.stdout) == 405 and b"Allow: HEAD,GET,POST,OPTIONS,TRACE" in r.stdout
    r = curl(site, "-i", "-X", "FROB", "URL/index.html")
    assert status_of(r.stdout) == 501
    r = curl(site, "-i", "-X", "OPTIONS", "URL/index.html")
    assert status_of(r.stdout) == 200 and b"Allow: HEAD,GET,POST,OPTIONS,TRACE" in r.stdout
    r = curl(site, "-i", "URL/gone/x")
    assert status_of(r.stdout) == 410 and r.stdout.endswith(b"Gone for good")
    wait_until(lambda: "HP03010" in site.error_text() and "HP03011" in site.error_text(), 5,
               what="404/403 log ids")


def test_alias_redirect_and_directory(site):
    r = curl(site, "-s", "URL/files/a.txt")
    assert r.stdout == b"from alias\n"
    r = curl(site, "-i", "URL/old/page?x=1")
    assert status_of(r.stdout) == 301 and b"Location: http://www.test/new/page?x=1" in r.stdout
    r = curl(site, "-i", "URL/sub")
    assert status_of(r.stdout) == 301 and f"Location: http://www.test:{site.port}/sub/".encode() in r.stdout
    r = curl(site, "-sL", "URL/sub")
    assert r.stdout == b"sub index\n"


def test_name_based_plain_vhosts(site):
    assert curl(site, "-s", "URL/", host="other.test").stdout == b"other vhost\n"
    assert curl(site, "-s", "URL/", host="alias.www.test").stdout == b"<h1>home</h1>\n"
    assert curl(site, "-s", "URL/", host="unknown.test").stdout == b"<h1>home</h1>\n"  # first vhost


TRAVERSAL = [
    b"/../secret.txt", b"/../../../../etc/passwd", b"/%2e%2e/secret.txt", b"/%2E%2E/%2e%2e/secret.txt",
    b"/..%2fsecret.txt", b"/%2e%2e%2fsecret.txt", b"/%252e%252e/secret.txt", b"/%252e%252e%252fsecret.txt",
    b"/sub/../../secret.txt", b"/sub/%2e%2e/%2e%2e/secret.txt", b"/./../secret.txt",
    b"/..\\secret.txt", b"/..%5csecret.txt", b"/sub\\..\\..\\secret.txt", b"/%5c..%5c..%5csecret.txt",
    b"/index.html%00.txt", b"/%00/../secret.txt", b"/secret.txt%00",
    b"/.htpasswd", b"/%2ehtpasswd",
    b"/files/../secret.txt", b"/files/..%2f..%2fsecret.txt", b"/files/%2e%2e/%2e%2e/secret.txt",
    b"/files/../../outside/secret.txt", b"/files", b"/files/../htdocs/../outside/secret.txt",
    b"//../secret.txt", b"/%c0%ae%c0%ae/secret.txt", b"/.%2e/secret.txt",
    b"http://www.test/../secret.txt",
]


@pytest.mark.parametrize("target", [b"/link-out", b"/dir-out/secret.txt"])
def test_symlinks_out_of_the_tree_followed_with_followsymlinks_as_apache(site, target):
    """Options FollowSymLinks (Apache's default) follows a symlink wherever it points, as
    Apache does; -FollowSymLinks refusing them is in tests/interop/site (links-* rows)."""
    resp = get_raw(site, target)
    assert resp.startswith(b"HTTP/1.1 200 ") and SECRET in resp


@pytest.mark.parametrize("target", TRAVERSAL)
def test_path_traversal_corpus_gets_nothing_outside(site, target):
    resp = get_raw(site, target)
    status = int(resp.split(b" ", 2)[1])
    assert SECRET not in resp
    assert status in (301, 400, 403, 404), resp[:200]


def test_symlink_inside_tree_is_served(site):
    assert curl(site, "-s", "URL/link-in").stdout == BODY


def test_access_log_lines(site):
    curl(site, "-s", "-o", "/dev/null", "-A", "agent/1", "-e", "http://ref/", "-H", "X-Test: yes", "URL/file.bin")
    log = site.tmp / "access.log"
    line = wait_until(lambda: next((l for l in log.read_text().splitlines() if '"agent/1"' in l), None), 5,
                      what="access log line")
    m = re.fullmatch(r'127\.0\.0\.1 - - \[[^\]]+\] "GET /file\.bin HTTP/1\.1" 200 1024 "http://ref/" "agent/1" (\d+) yes', line)
    assert m, line


def test_slot_states_and_requests_recorded(site):
    curl(site, "-s", "-o", "/dev/null", "URL/index.html?slot-probe")
    text = wait_until(lambda: "slot-probe" in site.slot_file.read_text() and site.slot_file.read_text(), 5,
                      what="slot record")
    assert "request GET /index.html?slot-probe HTTP/1.1" in text
    for state in ("reading", "writing", "closing", "idle"):
        assert f"state {state}" in text


def test_no_tracebacks_in_error_log(site):
    assert "Traceback" not in site.error_text() and "HP03001" not in site.error_text()


def _read_responses(s, count: int) -> list[bytes]:
    """Read ``count`` Content-Length-framed responses from socket ``s``."""
    buf, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            data = s.recv(65536)
            assert data, f"connection closed after {len(out)} responses"
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        n = int(re.search(rb"Content-Length: (\d+)", head).group(1)) if not head.startswith(b"HTTP/1.1 304") else 0
        while len(rest) < n:
            data = s.recv(65536)
            assert data
            rest += data
        out.append(head + b"\r\n\r\n" + rest[:n])
        buf = rest[n:]
    return out


def test_pipelined_requests_answered_in_order(site):
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: www.test\r\n\r\n"
                  b"GET /file.bin HTTP/1.1\r\nHost: www.test\r\n\r\n"
                  b"GET /sub/ HTTP/1.1\r\nHost: www.test\r\n\r\n")
        r1, r2, r3 = _read_responses(s, 3)
    assert r1.endswith(b"<h1>home</h1>\n") and r2.endswith(BODY) and r3.endswith(b"sub index\n")
    assert b"Connection: close" in r3       # MaxKeepAliveRequests 3


def test_http10_keep_alive(site):
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        for _ in range(2):
            s.sendall(b"GET /index.html HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            (r,) = _read_responses(s, 1)
            assert r.startswith(b"HTTP/1.1 200 ") and b"Connection: Keep-Alive" in r
        s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        (r,) = _read_responses(s, 1)
        assert b"Connection: close" in r
        assert s.recv(10) == b""


def test_request_body_is_read_and_the_connection_kept(site):
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall(b"POST /index.html HTTP/1.1\r\nHost: www.test\r\nContent-Length: 100000\r\n\r\n"
                  + b"x" * 100000 + b"GET /index.html HTTP/1.1\r\nHost: www.test\r\n\r\n")
        r1, r2 = _read_responses(s, 2)
        assert r1.startswith(b"HTTP/1.1 200 ") and b"Keep-Alive: " in r1
        assert r2.startswith(b"HTTP/1.1 200 ")
        s.sendall(b"POST /index.html HTTP/1.1\r\nHost: www.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\nz\r\n")
        (r,) = _read_responses(s, 1)
        assert r.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in r


def test_graceful_stop_ends_keep_alive_after_the_current_request(site):
    stop = site.slot_file.with_name(site.slot_file.name + ".stop")
    try:
        with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: www.test\r\n\r\n")
            (r,) = _read_responses(s, 1)
            assert b"Keep-Alive: " in r
            stop.touch()
            s.sendall(b"GET /file.bin HTTP/1.1\r\nHost: www.test\r\n\r\n")
            (r,) = _read_responses(s, 1)
            assert r.endswith(BODY) and b"Connection: close" in r      # answered, not lost
            assert s.recv(10) == b""
    finally:
        stop.unlink(missing_ok=True)


def test_ipv6_listener_and_client(tmp_path):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.fail("::1 is not available on this machine's loopback")
    (tmp_path / "index.html").write_bytes(b"over v6\n")
    port = free_port("::1")
    cfg = config(tmp_path, (vhost("v6.test", tmp_path, port),), (port,), host="::1")
    with serve(cfg, tmp_path, workers=1):
        r = subprocess.run(["curl", "-sS", "-g", f"http://[::1]:{port}/"], capture_output=True, timeout=15)
    assert r.stdout == b"over v6\n"


def test_unexpected_error_gives_500_logs_hp03001_and_worker_survives(tmp_path):
    # A MIME type that cannot be sent in a header (non-Latin-1) makes the handler raise.
    (tmp_path / "x.weird").write_bytes(b"w")
    (tmp_path / "ok.txt").write_bytes(b"fine\n")
    port = free_port()
    v = vhost("e.test", tmp_path, port, add_types=(("weird", "text/\u20ac"),))
    with serve(config(tmp_path, (v,), (port,)), tmp_path, workers=1) as running:
        r = subprocess.run(["curl", "-sS", "-i", f"http://127.0.0.1:{port}/x.weird"], capture_output=True, timeout=15)
        assert r.stdout.startswith(b"HTTP/1.1 500 ")
        r = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{port}/ok.txt"], capture_output=True, timeout=15)
        assert r.stdout == b"fine\n"
        text = wait_until(lambda: "HP03001" in running.error_text() and running.error_text(), 5, what="HP03001")
    assert "UnicodeEncodeError" in text and "Traceback" not in text


def test_no_header_injection_through_redirects(site):
    resp = get_raw(site, b"/old/x%0d%0aX-Injected:%20yes")
    head = resp.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 301 ")
    assert b"\r\nX-Injected" not in head and b"Location: http://www.test/new/x%0D%0AX-Injected:%20yes" in head


def test_kept_descriptor_follows_replacement_and_a_moved_out_file(site):
    """One keep-alive connection (one worker, which keeps served files open between requests):
    a replaced file is served fresh; the same inode moved out behind a symlink is served from
    where the symlink now points (FollowSymLinks, as Apache), never from a stale descriptor."""
    root = site.tmp / "htdocs"
    path = root / "swap.txt"
    path.write_bytes(b"first\n")
    req = b"GET /swap.txt HTTP/1.1\r\nHost: www.test\r\n\r\n"
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall(req)
        (r1,) = _read_responses(s, 1)
        tmp = root / "swap.tmp"
        tmp.write_bytes(b"second\n")
        os.replace(tmp, path)
        s.sendall(req)
        (r2,) = _read_responses(s, 1)
        moved = site.tmp / "outside" / "swap-moved.txt"
        os.rename(path, moved)
        os.symlink(moved, path)
        s.sendall(req)
        (r3,) = _read_responses(s, 1)
    assert r1.startswith(b"HTTP/1.1 200 ") and r1.endswith(b"first\n")
    assert r2.startswith(b"HTTP/1.1 200 ") and r2.endswith(b"second\n")
    assert r3.startswith(b"HTTP/1.1 200 ") and r3.endswith(b"second\n")
