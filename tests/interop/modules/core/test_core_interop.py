"""Core odds and ends side by side with apache2: ServerTokens, ServerSignature, TraceEnable,
UseCanonicalName, Redirect to a URL-path (absolute Location), RedirectMatch, AliasMatch,
AddDefaultCharset, FileETag, SetHandler none, LimitInternalRecursion's parsing.

One tree, one config fragment, both servers started once for the module on their own loopback
ports (workers as www-data).  Each row sends one raw request to both and compares status and the
headers the feature sets; bodies where the body is the feature (TRACE, error pages with the
signature line, product names normalised: "Apache/2.4.x (Debian)" vs "httpd-py/0.1.0 (Unix)" are
the only difference ServerTokens makes).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.apache import apache_serving, load_modules
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, require_tool, wait_until

MODULES = ("mpm_prefork", "authz_core", "authz_host", "alias", "dir", "mime")
PAST = 1_600_000_000            # file mtimes: far from "now" (Apache weakens fresh ETags)


@dataclass(frozen=True)
class Row:
    id: str
    target: str
    method: str = "GET"
    host: str = "a.test"
    headers: tuple = ()
    compare: tuple = ("location",)          # headers compared besides the status
    body: bool = False                      # compare bodies (normalised)

    def raw(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1", f"Host: {self.host}",
                 *(f"{k}: {v}" for k, v in self.headers), "Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Answer:
    status: int | None
    headers: dict
    body: bytes


def exchange(port: int, row: Row) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(row.raw().replace(b"PORT", str(port).encode()))
        data = b""
        while len(data) < 1 << 20:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.\d (\d{3})", lines[0])
    hdrs: dict = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    if "chunked" in ", ".join(hdrs.get("transfer-encoding", ())).lower():
        body = _dechunk(body)
    return Answer(int(m.group(1)) if m else None, {k: ", ".join(v) for k, v in hdrs.items()}, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        n = int(size.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out += rest[:n]
        data = rest[n + 2:]
    return out


def _norm(text: str, port: int) -> str:
    text = re.sub(r"Apache(/[\d.]+( \(Debian\))?)?", "SERVER", text)
    text = re.sub(r"httpd-py(/[\d.]+( \(Unix\))?)?", "SERVER", text)
    return text.replace(f":{port}", ":PORT").replace(f"Port {port}", "Port PORT")


def fragment(base: Path) -> str:
    d = base / "htdocs"
    return f"""
ServerTokens Prod
ServerSignature On
DocumentRoot "{d}"
<Directory />
    Require all denied
    AllowOverride None
</Directory>
<Directory "{d}">
    Require all granted
</Directory>
<Directory "{base}/am">
    Require all granted
</Directory>
<Directory "{d}/cs-on">
    AddDefaultCharset On
</Directory>
<Directory "{d}/cs-utf8">
    AddDefaultCharset utf-8
</Directory>
<Directory "{d}/et-none">
    FileETag None
</Directory>
<Directory "{d}/et-size">
    FileETag Size
</Directory>
<Directory "{d}/et-all">
    FileETag All
</Directory>
<Directory "{d}/et-minus">
    FileETag -MTime
</Directory>
<Directory "{d}/et-plus">
    FileETag None
</Directory>
<Directory "{d}/et-plus/sub">
    FileETag +Size
</Directory>
<Directory "{d}/sig-off">
    ServerSignature Off
</Directory>
<Directory "{d}/sig-email">
    ServerSignature EMail
</Directory>
<Directory "{d}/handler-none">
    SetHandler none
</Directory>
LimitInternalRecursion 5 7
<VirtualHost *:PORT>
    ServerName a.test
    ServerAdmin webmaster@a.test
    Redirect /moved /index.html
    Redirect permanent /perm /target/
    Redirect 303 /other http://elsewhere.test/x
    Redirect gone /old
    RedirectMatch ^/rm/(.*)\\.html$ /target/$1.txt
    RedirectMatch 301 ^/rmabs/(\\w+) http://b.test/$1
    RedirectMatch 410 ^/rxgone
    AliasMatch ^/am/([a-z]+)/(.*)$ "{base}/am/$1/$2"
</VirtualHost>
<VirtualHost *:PORT>
    ServerName b.test
    ServerAdmin admin@b.test
    TraceEnable Off
    ServerSignature EMail
    UseCanonicalName On
    Redirect /moved /index.html
</VirtualHost>
<VirtualHost *:PORT>
    ServerName c.test
    TraceEnable extended
    ServerSignature Off
</VirtualHost>
"""


def build(base: Path) -> None:
    d = base / "htdocs"
    files = {
        "index.html": "<html>index</html>\n", "a.txt": "plain\n", "page.html": "<p>x</p>\n",
        "cs-on/a.txt": "a\n", "cs-on/b.html": "<b>b</b>\n", "cs-on/c.css": "p{}\n",
        "cs-utf8/a.txt": "a\n", "cs-utf8/b.html": "<b>b</b>\n", "cs-utf8/c.json": "{}\n",
        "et-none/a.txt": "etag none\n", "et-size/a.txt": "etag size\n",
        "et-all/a.txt": "etag all\n", "et-minus/a.txt": "etag minus\n",
        "et-plus/a.txt": "p\n", "et-plus/sub/a.txt": "plus size\n",
        "sig-off/.keep": "", "sig-email/.keep": "", "handler-none/a.txt": "handler none\n",
        "target/x.txt": "target\n",
    }
    for rel, text in files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (base / "am" / "one").mkdir(parents=True)
    (base / "am" / "one" / "f.txt").write_text("aliasmatch\n")
    for root, dirs, fnames in os.walk(base):
        os.chmod(root, 0o755)
        for f in fnames:
            os.chmod(os.path.join(root, f), 0o644)
            os.utime(os.path.join(root, f), (PAST, PAST))


def main_conf(base: Path, tag: str, port: int) -> str:
    root = base / tag
    (root / "logs").mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    frag = fragment(base).replace("PORT", str(port))
    (root / "site.conf").write_text(frag)
    return (f'ServerRoot "{root}"\n' + load_modules(*MODULES) + "\n"
            f"ServerName localhost\nErrorLog \"{root}/logs/error.log\"\nLogLevel info\n"
            f'PidFile "{root}/logs/{tag}.pid"\nDefaultRuntimeDir "{root}/logs"\n'
            f"Mutex file:{root}/logs default\nListen 127.0.0.1:{port}\n"
            "User www-data\nGroup www-data\nStartServers 2\nMinSpareServers 1\n"
            "MaxSpareServers 4\nTypesConfig /etc/mime.types\n"
            f'Include "{root}/site.conf"\n')


R = Row
TRACE_H = (("X-Trace-Me", "yes"), ("Max-Forwards", "3"))
CORPUS = [
    # ServerTokens Prod + ServerSignature On: error pages carry the footer
    R("404-signature", "/missing", body=True),
    R("404-head", "/missing", method="HEAD", compare=("content-length", "content-type")),
    R("403-signature", "/../../etc/passwd"),
    R("405-signature", "/a.txt", method="DELETE", compare=("allow",), body=True),
    R("sig-off-404", "/sig-off/missing", body=True),
    R("sig-email-404", "/sig-email/missing", body=True),
    R("sig-vhost-email", "/missing", host="b.test", body=True),
    R("sig-vhost-off", "/missing", host="c.test", body=True),
    R("sig-with-port", "/missing", host="a.test:PORT", body=True),
    # Redirect with a URL-path target: an absolute Location built from the Host header
    R("redirect-urlpath", "/moved", body=True),
    R("redirect-urlpath-sub", "/moved/deeper"),
    R("redirect-urlpath-query", "/moved?q=1&r=2"),
    R("redirect-host-port", "/moved", host="a.test:PORT"),
    R("redirect-canonical", "/moved", host="b.test"),
    R("redirect-canonical-port", "/moved", host="b.test:PORT"),
    R("redirect-permanent", "/perm/x/y"),
    R("redirect-303", "/other"),
    R("redirect-gone", "/old/thing", body=True),
    R("redirect-head", "/moved", method="HEAD"),
    # RedirectMatch
    R("rm-capture", "/rm/page.html"),
    R("rm-nomatch", "/rm/page.txt"),
    R("rm-absolute", "/rmabs/word/rest"),
    R("rm-gone", "/rxgone/x"),
    R("rm-query", "/rm/q.html?x=1"),
    # AliasMatch
    R("am-file", "/am/one/f.txt", compare=("content-type", "content-length")),
    R("am-missing", "/am/one/none.txt"),
    R("am-nomatch-digits", "/am/1/f.txt"),
    # AddDefaultCharset
    R("cs-off-txt", "/a.txt", compare=("content-type",)),
    R("cs-on-txt", "/cs-on/a.txt", compare=("content-type",)),
    R("cs-on-html", "/cs-on/b.html", compare=("content-type",)),
    R("cs-on-css", "/cs-on/c.css", compare=("content-type",)),
    R("cs-utf8-txt", "/cs-utf8/a.txt", compare=("content-type",)),
    R("cs-utf8-html", "/cs-utf8/b.html", compare=("content-type",)),
    R("cs-utf8-json", "/cs-utf8/c.json", compare=("content-type",)),
    # FileETag
    R("etag-default", "/a.txt", compare=("etag",)),
    R("etag-none", "/et-none/a.txt", compare=("etag",)),
    R("etag-size", "/et-size/a.txt", compare=("etag",)),
    R("etag-all", "/et-all/a.txt", compare=("etag",)),
    R("etag-minus-mtime", "/et-minus/a.txt", compare=("etag",)),
    R("etag-plus-size", "/et-plus/sub/a.txt", compare=("etag",)),
    R("etag-none-inm", "/et-none/a.txt", headers=(("If-None-Match", "*"),), compare=("etag",)),
    # SetHandler none: the default handler serves the file
    R("handler-none", "/handler-none/a.txt", compare=("content-type", "content-length")),
    # TraceEnable
    R("trace-on", "/a.txt", method="TRACE", headers=TRACE_H, compare=("content-type",), body=True),
    R("trace-on-missing", "/nothing/here", method="TRACE", compare=("content-type",), body=True),
    R("trace-on-denied", "/../x", method="TRACE", compare=("content-type",)),
    R("trace-off", "/a.txt", method="TRACE", host="b.test", compare=("allow",)),
    R("trace-extended", "/a.txt", method="TRACE", host="c.test", headers=TRACE_H,
      compare=("content-type",), body=True),
]


@pytest.fixture(scope="module")
def base():
    require_tool("apache2")
    b = Path(tempfile.mkdtemp(prefix="core-"))
    os.chmod(b, 0o755)
    build(b)
    try:
        yield b
    finally:
        shutil.rmtree(b, ignore_errors=True)


@pytest.fixture(scope="module")
def answers(base):
    out = {}
    ap, hp = free_port(), free_port()
    conf = base / "apache" / "apache.conf"
    text = main_conf(base, "apache", ap)
    conf.write_text(text)
    with apache_serving(conf, base / "apache", ap, pid_file=base / "apache" / "logs" / "apache.pid"):
        with ThreadPoolExecutor(4) as pool:
            out["apache"] = (ap, dict(zip([r.id for r in CORPUS],
                                          pool.map(lambda r: exchange(ap, r), CORPUS))))
    with httpd(base / "httpd-py", main_conf(base, "httpd-py", hp)):
        wait_until(lambda: port_accepting(hp), 15, what="httpd-py listening")
        with ThreadPoolExecutor(4) as pool:
            out["httpd-py"] = (hp, dict(zip([r.id for r in CORPUS],
                                            pool.map(lambda r: exchange(hp, r), CORPUS))))
    return out


@pytest.mark.parametrize("row", CORPUS, ids=[r.id for r in CORPUS])
def test_httpd_py_answers_as_apache(row, answers):
    ap, a = answers["apache"][0], answers["apache"][1][row.id]
    hp, h = answers["httpd-py"][0], answers["httpd-py"][1][row.id]
    assert a.status is not None, "apache2 gave no answer"
    assert h.status == a.status, (row.id, a.status, h.status)
    for name in row.compare:
        av, hv = a.headers.get(name), h.headers.get(name)
        if av is not None:
            av = _norm(av, ap)
        if hv is not None:
            hv = _norm(hv, hp)
        if name == "allow" and av is not None and hv is not None:     # Apache's order varies
            av, hv = sorted(av.split(",")), sorted(hv.split(","))
        assert hv == av, f"{name}: apache {av!r}, httpd-py {hv!r}"
    if row.body:
        ab = _norm(a.body.decode("latin-1"), ap)
        hb = _norm(h.body.decode("latin-1"), hp)
        assert hb == ab


def test_server_tokens_prod_header(answers):
    """ServerTokens Prod: the product name alone, on both."""
    assert answers["apache"][1]["404-signature"].headers["server"] == "Apache"
    assert answers["httpd-py"][1]["404-signature"].headers["server"] == "httpd-py"
