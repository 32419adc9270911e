"""One document tree and one config fragment for mod_mime, mod_negotiation, mod_deflate and
mod_filter, run unchanged by Debian's apache2 and by httpd-py (the shape of tests/interop/site).

    tree = build_tree(base)             # base: an empty, world-readable directory
    tree.main_conf("apache", port)      # ServerRoot, modules, Listen, logs, then the fragment

Layout under htdocs/ (one feature per directory, each with its own <Directory>):

    mime/         AddLanguage/AddCharset/AddEncoding/AddType/DefaultLanguage over names with
                  several extensions; mime/sub: the Remove* lines; mime/force: ForceType (and
                  ForceType None below); mime/ht: a .htaccess (AllowOverride FileInfo)
    neg/          Options MultiViews: language, type, charset and unknown-extension variants;
                  neg/any: MultiviewsMatch Any; negacc/: variants access control refuses;
                  mvm/: a handler extension (NegotiatedOnly)
    tm/           type maps (AddHandler type-map var): URI variants, inline Body: variants, a
                  broken map, a missing variant, a map naming a map (506)
    lang/         LanguagePriority + ForceLanguagePriority Prefer Fallback; lang/none: None
    cs/           charset variants (Accept-Charset)
    enc/          precompressed variants (AddEncoding gzip .gz) and AddOutputFilterByType
    gz/           AddOutputFilterByType DEFLATE text/html text/plain
    gz2/          SetOutputFilter DEFLATE; nogzip/, onlyhtml/, forcegz/ get no-gzip,
                  gzip-only-text/html=1 and force-gzip from SetEnvIf Request_URI
    gz3/          AddOutputFilter DEFLATE html
    errdoc/       Debian's localized error pages (/usr/share/apache2/error, as
                  conf-available/localized-error-pages.conf sets them up, without mod_include)

Two name-based vhosts on the same port change the per-server settings: ``nochange.test``
(DeflateAlterETag NoChange, a smaller window and memLevel, a small DeflateBufferSize,
CacheNegotiatedDocs On) and ``remove.test`` (DeflateAlterETag Remove, DeflateCompressionLevel
1); ``localhost`` is the first (default) one.

Every file and directory gets a fixed modification time in the past (``PAST``): ETags (and the
variant-list validator of MultiViews answers, which is the directory's) are the same for both
servers and never weak.

The raw client: ``Row`` (one request: method, target sent untouched, headers, HTTP version, Host),
``exchange(port, row) -> Answer`` (one connection, ``Connection: close``, body kept, chunked
decoded) and ``answers_from(port, rows)`` (every row, four at a time).
"""
from __future__ import annotations

import dataclasses
import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.apache import pair_conf

MODULES = ("mpm_prefork", "authz_core", "authz_host", "alias", "dir", "mime", "negotiation",
           "deflate", "filter", "setenvif")
PAST = 1_600_000_000                     # 2020-09-13: every file's and directory's mtime
ERROR_DIR = "/usr/share/apache2/error"

BIG_HTML = ("<html><body>\n" + "".join(f"<p>line {i}: the quick brown fox jumps over the lazy "
                                        f"dog</p>\n" for i in range(120)) + "</body></html>\n")
BIG_TEXT = "".join(f"{i:05d} lorem ipsum dolor sit amet\n" for i in range(150))
BIG_CSS = "".join(f".c{i} {{ color: #{i:06x}; }}\n" for i in range(150))

TYPE_MAP = """# a type map with URI variants
URI: doc.en.html
Content-Type: text/html
Content-Language: en

URI: doc.fr.html
Content-Type: text/html;
 qs=0.5
Content-Language: fr
Description: "la version francaise"

URI: doc.txt
Content-Type: text/plain; charset=utf-8
"""

INLINE_MAP = """Content-language: en
Content-type: text/html; charset=UTF-8
Body:----------en--
<p>Hello</p>
----------en--

Content-language: fr
Content-type: text/html; charset=UTF-8
Body:----------fr--
<p>Bonjour</p>
----------fr--
"""

FILES: dict[str, str] = {
    "index.html": "<p>index</p>\n",
    # mod_mime
    **{f"mime/{n}": f"{n} content\n" for n in (
        "a.html", "a.html.en", "a.en.html", "a.txt.utf8", "a.html.gz", "a.tar.gz", "a.xyz",
        "a.html.fr.de", "x.foo.html", "x.html.foo", "b.FR.html", "c.latin1.txt", "d..html",
        ".hidden.html", "g.html.bak", "h.htm8", "h.htm8.latin1", "noext", "p.css", "m.html.en.gz",
        "f.var")},
    **{f"mime/sub/{n}": f"{n} content\n" for n in (
        "a.html.fr.de", "x.html.foo", "a.xyz", "a.html.gz", "a.txt.utf8", "y.html.en")},
    "mime/force/a.html": "forced\n",
    "mime/force/none/a.html": "not forced\n",
    "mime/ht/a.html.it": "italiano\n",
    "mime/ht/b.html.fr": "francais\n",
    # MultiViews
    "neg/page.en.html": "english\n", "neg/page.fr.html": "francais\n",
    "neg/page.html.de": "deutsch!!\n", "neg/doc.en.txt": "text en\n", "neg/doc.html": "<p>html</p>\n",
    "neg/only.bak": "bak\n", "neg/plain.txt": "plain\n", "neg/x.html.zzz": "unknown ext\n",
    "neg/page.d/inner.txt": "a directory named like a variant\n",
    "neg/any/x.html.zzz": "unknown ext, MultiviewsMatch Any\n",
    "negacc/page.en.html": "english\n", "negacc/page.fr.html": "refused\n",
    "negacc/only.fr.html": "refused\n",
    "mvm/s.php": "handler\n", "mvm/s.html": "html\n", "mvm/t.php": "handler only\n",
    # type maps
    "tm/doc.var": TYPE_MAP, "tm/doc.en.html": "EN doc\n", "tm/doc.fr.html": "FR doc\n",
    "tm/doc.txt": "TXT doc\n",
    "tm/inline.var": INLINE_MAP,
    "tm/broken.var": "URI doc.en.html\nContent-Type: text/html\n",
    "tm/gone.var": "URI: gone.html\nContent-Type: text/html\n",
    "tm/nested.var": "URI: doc.var\nContent-Type: text/html\n",
    # languages
    "lang/p.html.en": "en page\n", "lang/p.html.de": "de page\n", "lang/p.html.fr": "fr page\n",
    "lang/q.html": "nolang\n", "lang/q.html.en": "q en\n",
    "lang/big.html.en": BIG_HTML.replace("fox", "en fox"),
    "lang/big.html.fr": BIG_HTML.replace("fox", "renard"),
    "lang/none/p.html.en": "en page\n", "lang/none/p.html.de": "de page\n",
    # charsets
    "cs/c.html.utf8": "u8\n", "cs/c.html.latin1": "l1\n", "cs/d.html": "n\n", "cs/d.html.utf8": "u\n",
    # encodings
    "enc/e.html": "plain html\n", "enc/t.txt": "txt\n",
    "enc/big.html": BIG_HTML,
    # deflate
    "gz/big.html": BIG_HTML, "gz/big.txt": BIG_TEXT, "gz/big.css": BIG_CSS, "gz/small.html": "small\n",
    "gz2/big.html": BIG_HTML, "gz2/big.css": BIG_CSS, "gz2/fifty.html": "w" * 50,
    "gz2/s68.html": "w" * 68, "gz2/s69.html": "w" * 69,
    **{f"gz2/{d}/big.{e}": c for d in ("nogzip", "onlyhtml", "forcegz")
       for e, c in (("html", BIG_HTML), ("txt", BIG_TEXT))},
    "gz3/a.html": BIG_HTML, "gz3/a.txt": BIG_TEXT,
    # error documents
    "errdoc/f.txt": "text\n", "errdoc/denied.txt": "secret\n",
}

# precompressed variants: name -> source (gzip, mtime 0, no name, as `gzip -n`)
GZIPPED = {"enc/e.html.gz": "enc/e.html", "enc/t.txt.gz": "enc/t.txt",
           "enc/big.html.gz": "enc/big.html"}

HTACCESS = {
    "mime/ht": "AddLanguage it .it\nRemoveLanguage .fr\nDefaultLanguage pt\n",
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
    return rf"""# ---- shared by apache2 and httpd-py: tests/interop/modules/mime/tree.py ----
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

AddLanguage en .en
AddLanguage fr .fr
AddLanguage de .de

SetEnvIf Request_URI "/nogzip/" no-gzip
SetEnvIf Request_URI "/onlyhtml/" gzip-only-text/html=1
SetEnvIf Request_URI "/forcegz/" force-gzip

<Directory "{D}/mime">
    AddCharset UTF-8 .utf8
    AddCharset ISO-8859-1 .latin1
    AddEncoding x-gzip .gz
    AddLanguage fr .FR
    DefaultLanguage de
    AddType text/x-foo .foo
    AddType "text/html; charset=UTF-8" .htm8
</Directory>
<Directory "{D}/mime/sub">
    RemoveLanguage .fr
    RemoveType .foo .xyz
    RemoveEncoding .gz
    RemoveCharset .utf8
    AddLanguage xx .en
</Directory>
<Directory "{D}/mime/force">
    ForceType Image/GIF
</Directory>
<Directory "{D}/mime/force/none">
    ForceType None
</Directory>
<Directory "{D}/mime/ht">
    AllowOverride FileInfo
</Directory>

<Directory "{D}/neg">
    Options +MultiViews
</Directory>
<Directory "{D}/neg/any">
    MultiviewsMatch Any
</Directory>
<Directory "{D}/negacc">
    Options +MultiViews
    <Files "*.fr.html">
        Require all denied
    </Files>
</Directory>
<Directory "{D}/mvm">
    Options +MultiViews
    AddHandler type-map .php
</Directory>

<Directory "{D}/tm">
    AddHandler type-map var
    LanguagePriority fr en
</Directory>

<Directory "{D}/lang">
    Options +MultiViews
    LanguagePriority de en fr
    ForceLanguagePriority Prefer Fallback
    AddOutputFilterByType DEFLATE text/html
</Directory>
<Directory "{D}/lang/none">
    ForceLanguagePriority None
</Directory>

<Directory "{D}/cs">
    Options +MultiViews
    AddCharset UTF-8 .utf8
    AddCharset ISO-8859-1 .latin1
</Directory>

<Directory "{D}/enc">
    Options +MultiViews
    AddEncoding gzip .gz
    AddOutputFilterByType DEFLATE text/html text/plain
</Directory>

<Directory "{D}/gz">
    AddOutputFilterByType DEFLATE text/html text/plain
</Directory>
<Directory "{D}/gz2">
    SetOutputFilter DEFLATE
</Directory>
<Directory "{D}/gz3">
    AddOutputFilter DEFLATE html
</Directory>

# Debian's localized error pages (conf-available/localized-error-pages.conf; mod_include is
# not loaded, so the variants' SSI text is served as it is by both servers)
Alias /error/ "{ERROR_DIR}/"
<Directory "{ERROR_DIR}">
    AddHandler type-map var
    Require all granted
    LanguagePriority en cs de es fr it nl sv pt-br ro
    ForceLanguagePriority Prefer Fallback
</Directory>
<Directory "{D}/errdoc">
    ErrorDocument 404 /error/HTTP_NOT_FOUND.html.var
    ErrorDocument 403 /error/HTTP_FORBIDDEN.html.var
    <Files denied.txt>
        Require all denied
    </Files>
</Directory>

# DeflateAlterETag is per server: two name-based vhosts on the same address
<VirtualHost *>
    ServerName localhost
</VirtualHost>
<VirtualHost *>
    ServerName nochange.test
    DeflateAlterETag NoChange
    DeflateWindowSize 10
    DeflateMemLevel 5
    DeflateBufferSize 1024
    CacheNegotiatedDocs On
</VirtualHost>
<VirtualHost *>
    ServerName remove.test
    DeflateAlterETag Remove
    DeflateCompressionLevel 1
</VirtualHost>
"""


def _gzip_n(data: bytes) -> bytes:
    """gzip -n: no name, mtime 0 (deterministic)."""
    import gzip
    return gzip.compress(data, mtime=0)


def build_tree(base: Path) -> Tree:
    """Build the tree and the fragment under BASE (which must exist); returns the Tree."""
    base = Path(base)
    D = base / "htdocs"
    D.mkdir()
    for rel, text in FILES.items():
        p = D / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for rel, src in GZIPPED.items():
        (D / rel).write_bytes(_gzip_n((D / src).read_bytes()))
    for rel, text in HTACCESS.items():
        (D / rel / ".htaccess").write_text(text)
    for server in ("apache", "httpd-py"):
        for sub in ("logs", "run"):
            (base / server / sub).mkdir(parents=True)
    frag = base / "site.conf"
    frag.write_text(fragment(D))
    for dirpath, dirnames, filenames in os.walk(base):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    for dirpath, dirnames, filenames in os.walk(D, topdown=False):
        for f in filenames:
            os.utime(os.path.join(dirpath, f), (PAST, PAST))
        os.utime(dirpath, (PAST, PAST))
    return Tree(base=base, docroot=D, fragment=frag)


# ---- the raw client -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Row:
    """One request; ``id`` is its pytest id, ``apache`` the status Apache 2.4 gives it."""
    id: str
    target: str
    apache: int
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    version: str = "1.1"
    host: str = "localhost"

    def raw(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/{self.version}", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.method in ("POST", "PUT"):
            lines.append("Content-Length: 0")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int | None
    headers: tuple[tuple[str, str], ...]        # (lower-case name, value) in order
    body: bytes = b""
    note: str = ""

    def value(self, name: str) -> str | None:
        got = [v for k, v in self.headers if k == name]
        return ", ".join(got) if got else None


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        line, _, rest = data.partition(b"\r\n")
        size = int(line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


def exchange(port: int, row: Row, timeout: float = 10.0) -> Answer:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(row.raw())
            data = b""
            while len(data) < 4 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        return Answer(None, (), b"", f"{type(e).__name__}: {e}")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.\d (\d{3})", lines[0])
    if not m:
        return Answer(None, (), b"", f"status line {lines[0]!r}")
    hdrs = []
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs.append((k.strip().lower(), v.strip(" \t")))
    if any(k == "transfer-encoding" and "chunked" in v.lower() for k, v in hdrs):
        body = _dechunk(body)
    return Answer(int(m.group(1)), tuple(hdrs), body)


def answers_from(port: int, rows: list[Row]) -> dict[str, Answer]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([r.id for r in rows], pool.map(lambda r: exchange(port, r), rows)))
