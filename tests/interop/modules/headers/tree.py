"""One document tree and one config fragment for mod_headers, mod_setenvif and mod_env, run
unchanged by Debian's apache2 and by httpd-py (the shape of tests/interop/site).

    tree = build_tree(base)             # base: an empty, world-readable directory
    tree.main_conf("apache", port)      # ServerRoot, modules, Listen, logs, then the fragment

Every feature lives in its own directory under htdocs/ (hdr/actions, hdr/tables, hdr/cond,
hdr/edit, hdr/echo, hdr/fmt, hdr/req, hdr/ct, hdr/loc, hdr/errdoc, env/, access/, ht/) with its
own <Directory> (or .htaccess); the server level holds the early RequestHeader, the SetEnvIf rules
mod_setenvif runs at post_read, SetEnv/PassEnv, two Redirects and one ``Header always``/``Header``
pair that every response shows.  Files get a fixed modification time in the past (``PAST``), so
``If-Modified-Since`` rows get a 304 from both.

``PASS_VAR`` must be in the environment of both servers (PassEnv reads it at start-up): the
conftest sets it before starting them.

The raw client: ``Row`` (one request: method, target sent untouched, headers, HTTP version),
``exchange(port, row) -> Answer`` (one connection, ``Connection: close``) and
``answers_from(port, rows)`` (every row, four at a time).
"""
from __future__ import annotations

import dataclasses
import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.apache import pair_conf

MODULES = ("mpm_prefork", "authz_core", "authz_host", "access_compat", "alias", "dir", "mime",
           "headers", "setenvif", "env")
PAST = 1_600_000_000                     # 2020-09-13: every file's modification time
PASS_VAR = "HTTPD_PY_HEADERS_PASSENV"
PASS_VALUE = "passed from the environment"

TEXT = "text\n"
FILES = [
    "index.html", "a.txt",
    "hdr/actions/f.txt", "hdr/tables/f.txt", "hdr/tables/denied.txt", "hdr/tables/sub/index.html",
    "hdr/cond/f.txt", "hdr/cond/sub/f.txt", "hdr/edit/f.txt", "hdr/echo/f.txt",
    "hdr/fmt/f.txt", "hdr/https/f.txt", "hdr/req/f.txt", "hdr/ct/a.txt", "hdr/ct/b.txt", "hdr/ct/c.txt",
    "hdr/ct/d.txt", "hdr/loc/f.txt", "hdr/loc/f2.txt", "hdr/errdoc/f.txt",
    "hdr/errdoc/errors/404.html",
    "env/f.txt", "env/sub/f.txt", "env/quirk/f.txt",
    "access/srv/f.txt", "access/dir/f.txt", "access/compat/f.txt", "access/setenv/f.txt",
    "access/nothing/f.txt", "access/notenv/f.txt", "ht/f.txt",
]

HTACCESS = {
    "ht": """SetEnvIf X-Ht (.+) HT=$1
Header set X-Ht "%{HT}e"
Header always set X-Ht-Always yes
RequestHeader set X-Ht-Req yes
Header echo ^X-Ht-Req
SetEnv HT_SETENV yes
Header set X-Ht-Setenv "%{HT_SETENV}e"
""",
}


@dataclasses.dataclass(frozen=True)
class Tree:
    base: Path
    docroot: Path
    fragment: Path

    def server_root(self, tag: str) -> Path:
        return self.base / tag

    def main_conf(self, tag: str, port: int) -> str:
        return pair_conf(self.server_root(tag), tag, port, MODULES, self.fragment)

    def pid_file(self, tag: str) -> Path:
        return self.server_root(tag) / "logs" / f"{tag}.pid"


def fragment(D: Path) -> str:
    return rf"""# ---- shared by apache2 and httpd-py: tests/interop/modules/headers/tree.py ----
TypesConfig /etc/mime.types
DocumentRoot "{D}"
DirectoryIndex index.html
<Directory />
    Options FollowSymLinks
    AllowOverride None
    Require all denied
</Directory>
<Directory "{D}">
    Require all granted
</Directory>

# every response: the two tables at server level
Header always set X-Srv-Always s
Header set X-Srv-Succ s

# mod_headers early, then mod_setenvif's server-level rules (post_read)
RequestHeader set X-Early-Req early-value early
SetEnvIf X-Early-Req ^early SAW_EARLY
SetEnvIf X-Test "^(a)(b)?" HAS_TEST=got-$1-$2
SetEnvIfNoCase X-Nocase ^abc NOCASE
SetEnvIf Request_Method POST ISPOST
SetEnvIf Remote_Addr ^127\.0\.0\.1$ LOCAL
SetEnvIf Server_Addr ^127\. SADDR=$0
SetEnvIf Request_Protocol "HTTP/1\.0" OLDPROTO
SetEnvIf Request_URI "^(/env/.*)" SRV_URI=$1
SetEnvIf ^X-Rx.* ^z RXNAME=$0
BrowserMatch "^Mozilla/4" OLD_MOZ
BrowserMatchNoCase bot IS_BOT=$0
BrowserMatch curl CURL=$0
SetEnvIfExpr "%{{QUERY_STRING}} =~ /q=(\w+)/" QV=$1
SetEnvIf Remote_Host . RHOST=$0
SetEnvIf X-Drop . !HAS_TEST
SetEnvIf X-Test ^open$ LET_IN
SetEnv FROM_SETENV server
PassEnv {PASS_VAR}

Redirect /hdr/tables/moved /hdr/tables/f.txt
Redirect gone /hdr/tables/gone

<Directory "{D}/hdr/actions">
    Header set X-Set one
    Header set X-Set two
    Header add X-Add one
    Header add X-Add two
    Header append X-App one
    Header append X-App two
    Header merge X-Merge a
    Header merge X-Merge b
    Header merge X-Merge a
    Header merge X-Merge "\"b\""
    Header merge X-Merge "\"b\""
    Header setifempty X-Sie first
    Header setifempty X-Sie second
    Header add X-Gone a
    Header unset X-Gone
    Header set X-Quoted "a \"q\" b"
    Header set X-Escapes "tab\there back\\slash pct%% keep\q end%"
    Header set X-Colon: "colon name"
    Header note X-Set note-set
    Header set X-Srv-Succ dir
    Header always set X-Srv-Always dir
    Header unset X-Never-There
</Directory>

<Directory "{D}/hdr/tables">
    Header always set X-Always a
    Header set X-Succ s
    Header onsuccess set X-Onsuccess o
    Header always set X-Dup a
    Header set X-Dup b
    Header always append X-App one
    Header append X-App two
    Header always unset ETag
    Header always setifempty X-Sie always
    Header always edit Location "^http:" "edited:"
    Header edit Location "^http:" "edited-succ:"
    Header always set X-Status-404 yes "expr=%{{REQUEST_STATUS}} == 404"
    <Files denied.txt>
        Require all denied
    </Files>
</Directory>

<Directory "{D}/hdr/cond">
    SetEnvIf X-Flag on FLAG
    Header set X-If-Flag yes env=FLAG
    Header set X-If-Not-Flag yes env=!FLAG
    Header set X-If-Lower yes env=flag
    Header set X-If-Test yes env=HAS_TEST
    Header always set X-Expr-Sub yes "expr=%{{REQUEST_URI}} =~ m#/sub/#"
    Header set X-Expr-Query yes "expr=%{{QUERY_STRING}} == 'x=1'"
    Header set X-Expr-Hdr yes "expr=%{{req:X-Flag}} == 'on' || req('X-Other') -strmatch 'o*'"
    Header always set X-Expr-404 yes "expr=%{{REQUEST_STATUS}} -eq 404"
    Header set X-Val "expr=%{{REQUEST_METHOD}}:%{{QUERY_STRING}}:%{{tolower:ABC}}"
    Header always set X-Val-Always "expr=%{{REQUEST_URI}}"
</Directory>

<Directory "{D}/hdr/edit">
    Header set X-E "one two one"
    Header add X-E "xone"
    Header edit X-E one 1
    Header set X-Es "one two one"
    Header edit* X-Es one 1
    Header set X-Cap "user=alice; role=admin"
    Header edit X-Cap "^user=([a-z]+); role=(\w+)$" "$2:$1 [$0] \$1 $9"
    Header set X-Anchor aaa
    Header edit* X-Anchor ^a b
    Header set X-Nomatch abc
    Header edit X-Nomatch zzz q
    Header edit X-Absent a b
    Header set X-Tag "o-o"
    Header edit* X-Tag "(o)" "%{{HAS_TEST}}e$1"
    Header always set X-Always-Edit abc
    Header always edit X-Always-Edit b B
    Header edit Content-Type "^text/(plain)" "application/x-$1"
</Directory>

<Directory "{D}/hdr/echo">
    Header echo ^X-E
    Header always echo ^Y-
    Header echo "^Accept$"
    Header echo Early
</Directory>

<Directory "{D}/hdr/fmt">
    Header set X-Fmt "%t %D"
    Header set X-Env "%{{HAS_TEST}}e|%{{NONE}}e|%{{FROM_SETENV}}e|%%|100%"
    Header set X-Load "%l"
</Directory>
<Directory "{D}/hdr/https">
    Header set X-Https "%{{HTTPS}}s"
</Directory>

<Directory "{D}/hdr/req">
    RequestHeader set X-Req-Set set-value
    RequestHeader append X-Req-In appended
    RequestHeader merge X-Req-Merge dup
    RequestHeader add X-Req-Add added
    RequestHeader unset X-Req-Drop
    RequestHeader edit X-Req-Edit "(\d+)" "<$1>"
    RequestHeader edit* X-Req-Edits "a" "A"
    RequestHeader setifempty X-Req-Sie sie
    RequestHeader set X-Req-Cond cond env=HAS_TEST
    RequestHeader set X-Req-Fmt "%{{HAS_TEST}}e"
    SetEnvIf X-Req-Set . SEEN_REQ_SET
    Header set X-Seen "%{{SEEN_REQ_SET}}e"
    Header echo ^X-Req
</Directory>

<Directory "{D}/hdr/ct">
    <Files a.txt>
        Header set Content-Type "text/x-set"
    </Files>
    <Files b.txt>
        Header unset Content-Type
    </Files>
    <Files c.txt>
        Header setifempty Content-Type "text/x-never"
    </Files>
    <Files d.txt>
        Header append Content-Type "x=1"
    </Files>
</Directory>

<Directory "{D}/hdr/loc">
    Header append X-Chain dir
    <Files f2.txt>
        Header append X-Chain files
    </Files>
</Directory>
<Location /hdr/loc>
    Header append X-Chain loc
</Location>

<Directory "{D}/hdr/errdoc">
    ErrorDocument 404 /hdr/errdoc/errors/404.html
    Header set X-Errdoc-Succ yes
    Header always set X-Errdoc-Always yes
</Directory>

<Directory "{D}/env">
    SetEnvIf Request_URI "(.*)" DIR_URI=$1
    SetEnvIf X-Level . LEVEL=top TOP
    SetEnv FROM_SETENV dir
    SetEnv HAS_TEST from-setenv
    Header set X-Env "srv_uri=%{{SRV_URI}}e dir_uri=%{{DIR_URI}}e test=%{{HAS_TEST}}e nocase=%{{NOCASE}}e post=%{{ISPOST}}e local=%{{LOCAL}}e saddr=%{{SADDR}}e old=%{{OLDPROTO}}e rx=%{{RXNAME}}e"
    Header set X-Env2 "moz=%{{OLD_MOZ}}e bot=%{{IS_BOT}}e curl=%{{CURL}}e qv=%{{QV}}e rhost=%{{RHOST}}e early=%{{SAW_EARLY}}e"
    Header set X-Env3 "setenv=%{{FROM_SETENV}}e pass=%{{{PASS_VAR}}}e level=%{{LEVEL}}e top=%{{TOP}}e"
</Directory>
<Directory "{D}/env/sub">
    SetEnvIf X-Level . LEVEL=sub !TOP
    UnsetEnv FROM_SETENV {PASS_VAR}
</Directory>
<Directory "{D}/env/quirk">
    SetEnvIf QUIRK ^$ QUIRK=x
    SetEnvIf QUIRK ^x$ SEEN_QUIRK
    SetEnvIf Request_URI . OTHER
    SetEnvIf QUIRK2 ^$ QUIRK2=y
    SetEnvIf Request_URI . OTHER2
    SetEnvIf QUIRK2 ^y$ SEEN_QUIRK2
    Header set X-Quirk "%{{QUIRK}}e %{{SEEN_QUIRK}}e %{{QUIRK2}}e %{{SEEN_QUIRK2}}e"
</Directory>

<Directory "{D}/access/srv">
    Require env LET_IN
</Directory>
<Directory "{D}/access/dir">
    SetEnvIf X-Key ^k(\d)$ KEY=$1
    Require env KEY
</Directory>
<Directory "{D}/access/compat">
    Order deny,allow
    Deny from all
    Allow from env=LET_IN
</Directory>
<Directory "{D}/access/setenv">
    SetEnv LET_IN 1
    Require env LET_IN
</Directory>
<Directory "{D}/access/nothing">
    Require env NEVER_SET_ANYWHERE
</Directory>
<Directory "{D}/access/notenv">
    <RequireAll>
        Require all granted
        Require not env IS_BOT
    </RequireAll>
</Directory>

<Directory "{D}/ht">
    AllowOverride FileInfo
</Directory>
"""


def build_tree(base: Path) -> Tree:
    base = Path(base)
    D = base / "htdocs"
    for rel in FILES:
        p = D / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(TEXT if not rel.endswith(".html") else f"<html>{rel}</html>\n")
    for rel, text in HTACCESS.items():
        (D / rel / ".htaccess").write_text(text)
    for tag in ("apache", "httpd-py"):
        (base / tag / "logs").mkdir(parents=True)
    frag = base / "site.conf"
    frag.write_text(fragment(D))
    for dirpath, _, filenames in os.walk(base):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = os.path.join(dirpath, f)
            os.chmod(p, 0o644)
            os.utime(p, (PAST, PAST))
    return Tree(base=base, docroot=D, fragment=frag)


# ---- the raw client ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Row:
    """One request; ``id`` is its pytest id, ``apache`` the status Apache 2.4 gives it."""
    id: str
    target: str
    apache: int
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    version: str = "1.1"
    also: tuple[str, ...] = ()          # compared although usually ignored (content-type, etag)

    def raw(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/{self.version}", "Host: localhost"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.method in ("POST", "PUT"):
            lines.append("Content-Length: 0")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int | None
    headers: tuple[tuple[str, str], ...]        # (lower-case name, value) in order
    note: str = ""

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


def exchange(port: int, row: Row, timeout: float = 10.0) -> Answer:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(row.raw())
            data = b""
            while len(data) < 1 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        return Answer(None, (), f"{type(e).__name__}: {e}")
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    m = re.match(r"HTTP/1\.\d (\d{3})", lines[0])
    if not m:
        return Answer(None, (), f"status line {lines[0]!r}")
    hdrs = []
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs.append((k.strip().lower(), v.strip(" \t")))
    return Answer(int(m.group(1)), tuple(hdrs))


def answers_from(port: int, rows: list[Row]) -> dict[str, Answer]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([r.id for r in rows], pool.map(lambda r: exchange(port, r), rows)))
