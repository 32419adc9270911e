"""One document tree and one config fragment for mod_autoindex, run unchanged by Debian's
apache2 and by httpd-py (the shape of tests/interop/site).

    tree = build_tree(base)             # base: an empty, world-readable directory
    tree.main_conf("apache", port)      # ServerRoot, modules, Listen, logs, then the fragment

The server-level configuration is Debian's own: ``Include`` of
/etc/apache2/mods-available/alias.conf (``Alias /icons/``) and autoindex.conf (IndexOptions
FancyIndexing VersionSort HTMLTable NameWidth=* DescriptionWidth=* Charset=UTF-8, the AddIcon*
table, ReadmeName README.html, HeaderName HEADER.html, IndexIgnore); each directory under
htdocs/ then changes one thing in its own <Directory> (or .htaccess, <Location>, <Files>).

Every file and directory gets a fixed modification time (``MTIME`` plus a step per name), so
dates and the ``C=M`` order are the same for both servers; sizes are exact (big files are
sparse).  Names cover spaces, quotes, ``<``, ``&``, ``%``, ``:``, UTF-8 and latin-1 bytes.

The raw client is here too: ``fetch(port, target) -> Reply`` (HTTP/1.1, one connection,
``Connection: close``, chunked bodies decoded).
"""
from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

from tests.support.apache import pair_conf

MODULES = ("mpm_prefork", "authz_core", "authz_host", "alias", "dir", "mime", "autoindex")
DEBIAN_CONF = "/etc/apache2/mods-available"
MTIME = 1_700_000_000          # 2023-11-14, a fixed base for every file's modification time

# directory -> {name: content (bytes) or size (int: a sparse file of that many bytes)}
# a name ending in "/" is a (sub)directory; None for an empty one
TEXT = b"hello\n"
HTML_TITLED = b"<html><head><title>\nA Titled\nPage</title></head><body>x</body></html>\n"
FILES: dict[str, dict[str, bytes | int | None]] = {
    "debian": {
        "a.txt": TEXT, "b.html": b"<p>b</p>\n", "c.c": b"int x;\n", "d.py": b"x = 1\n",
        "e.tar": 10240, "f.gz": 2000, "g.zip": 973, "h.tgz": 972, "img.png": 4096,
        "pic.jpg": 1536, "snd.ogg": 9 * 1024 - 1, "vid.ogm": 9 * 1024 + 973, "clip.mp4": 1 << 20,
        "doc.pdf": 5 * (1 << 20) + 123, "x.odt": 100, "unknown.xyz": 1, "README": TEXT,
        "core": 0, "script.sh": b"#!/bin/sh\n", "style.css": b"p{}\n", "data.json": b"{}\n",
        "big.iso": 3 * (1 << 30), "huge.img": 5 * (1 << 40), "world.wrl.gz": 50,
        "sub/": None, "sub2/": None, ".hidden": TEXT, "backup~": TEXT, "#auto#": TEXT,
        "RCS/": None, "CVS/": None, "file,v": TEXT, "file,t": TEXT, "..dots": TEXT,
        "Zeta.txt": TEXT, "alpha.txt": TEXT, "Beta.txt": TEXT,
    },
    "names": {
        "with space.txt": TEXT, "quote\"d.txt": TEXT, "apos'.txt": TEXT, "lt<gt>.txt": TEXT,
        "amp&amp.txt": TEXT, "pct%20.txt": TEXT, "a:b.txt": TEXT, "q?mark.txt": TEXT,
        "hash#.txt": TEXT, "plus+eq=.txt": TEXT, "caf\u00e9.txt": TEXT, "\u65e5\u672c.txt": TEXT,
        b"latin\xe9.txt": TEXT, "tab\there.txt": TEXT, "semi;colon.txt": TEXT,
        "a very long file name that is longer than twenty-three.txt": TEXT,
        "dir with space/": None, "caf\u00e9 dir/": None, "[brackets].txt": TEXT,
        "UPPER.TXT": TEXT, "lower.txt": TEXT, "~tilde.txt": TEXT, "dollar$.txt": TEXT,
    },
    "ver": {
        "file1.txt": TEXT, "file2.txt": TEXT, "file10.txt": TEXT, "file02.txt": TEXT,
        "v1.2.txt": TEXT, "v1.10.txt": TEXT, "v1.9.txt": TEXT, "File3.txt": TEXT,
        "a 2.txt": TEXT, "a  10.txt": TEXT, "x0.5": TEXT, "x0.25": TEXT, "caf\u00e9": TEXT,
        "cafe": TEXT, "Cafe": TEXT, "10": TEXT, "9": TEXT, "dir1/": None, "dir10/": None,
        "dir2/": None,
    },
    "plain": {"a.txt": TEXT, "b.html": TEXT, "sub/": None, "with space.txt": TEXT,
              "lt<.txt": TEXT},
    "fancy": {"a.txt": TEXT, "b.html": TEXT, "sub/": None, "big.bin": 5000,
              "a rather long name for the pre layout.txt": TEXT, "zz.gif": 10},
    "narrow": {"a.txt": TEXT, "exactly10c": TEXT, "eleven-char": TEXT,
               "much longer than ten.txt": TEXT, "long-dir-name-here/": None,
               "caf\u00e9\u00e9\u00e9\u00e9.txt": TEXT},
    "tablefix": {"a.txt": TEXT, "twelve-chars": TEXT, "thirteen-char": TEXT,
                 "a much longer name than twelve.txt": TEXT, "dir/": None},
    "tableonly": {"a.txt": TEXT, "sub/": None},
    "suppress": {"a.txt": TEXT, "b.c": TEXT, "sub/": None},
    "suppre": {"a.txt": TEXT, "b.txt": TEXT, "c.txt": TEXT, "sub/": None},
    "preamble": {"HEADER.html": b"<html><head><title>Mine</title></head><body>\n<h2>Mine</h2>\n",
                 "README.html": b"<p>readme</p></body></html>\n", "a.txt": TEXT},
    "folders": {"b.txt": TEXT, "A.txt": TEXT, "a.txt": TEXT, "zdir/": None, "Adir/": None,
                "mdir/": None, "c.txt": TEXT},
    "links": {"a.txt": TEXT, "b.png": 10, "sub/": None},
    "xhtml": {"a.txt": TEXT, "b.png": 10, "c.gz": 10, "sub/": None, "d.unknown": TEXT},
    "xpre": {"a.txt": TEXT, "sub/": None},
    "ctype": {"a.txt": TEXT},
    "nocharset": {"a.txt": TEXT},
    "ignore": {"keep.txt": TEXT, "x.log": TEXT, "secret1": TEXT, "secret-dir/": None,
               "with space.txt": TEXT, "reset/": None, "other.tmp": TEXT},
    "ignore/reset": {"a.log": TEXT, "b.tmp": TEXT, ".dot": TEXT, "c.txt": TEXT},
    "noparent": {"a.txt": TEXT},
    "order": {"small.txt": b"x", "medium.txt": b"x" * 2000, "large.txt": 100_000,
              "zero.txt": b"", "sub/": None},
    "orderdate": {"first.txt": TEXT, "second.txt": TEXT, "third.txt": TEXT, "sub/": None},
    "desc": {"a.txt": TEXT, "b.txt": TEXT, "long.html": TEXT, "tags.html": TEXT,
             "entity.txt": TEXT, "report-2024.pdf": 10, "sub/": None, "plain.c": TEXT},
    "desc/sub": {"x.txt": TEXT},
    "headtxt": {"HEADER.txt": b"Header <b>text</b> & more\n", "README.txt":
                b"Readme > plain\n", "a.txt": TEXT},
    "headhtml": {"HEADER.html": b"<h2>Custom header</h2>\n", "README.html":
                 b"<p>custom readme</p>\n", "a.txt": TEXT},
    "headmissing": {"a.txt": TEXT},
    "headdir": {"HEADER.html/": None, "a.txt": TEXT},
    "headother": {"HEADER.png": 10, "README.bin": 10, "a.txt": TEXT},
    "scan": {"titled.html": HTML_TITLED, "untitled.html": b"<p>none</p>\n",
             "text.txt": b"<title>not html</title>\n", "described.html": HTML_TITLED},
    "old": {"a.txt": TEXT, "sub/": None},
    "empty": {},
    "iconset": {"a.txt": TEXT, "b.special": TEXT, "c.png": 10, "d.unknown": TEXT, "sub/": None,
              "e.gz": 10},
    "alts": {"a.txt": TEXT, "b.png": 10, "c.unknown": TEXT, "sub/": None},
    "loc": {"a.txt": TEXT, "b.c": TEXT},
    "noindex": {"a.txt": TEXT},
    "ht": {"a.txt": TEXT, "b.c": TEXT, "sub/": None, ".htaccess": b"", "zz.txt": TEXT},
    "idx": {"index.html": b"<p>index</p>\n", "a.txt": TEXT},
    "denied": {"open.txt": TEXT, "secret.txt": TEXT, "x.bak": TEXT, "private/": None,
               "public/": None},
    "showforbidden": {"open.txt": TEXT, "secret.txt": TEXT, "private/": None},
    "links-sym": {"real.txt": TEXT},
    "nofollow": {"real.txt": TEXT},
    "tablebare": {"a.txt": TEXT, "b.png": 10, "sub/": None},
    "prelinks": {"a.txt": TEXT, "b.png": 10, "sub/": None, "c.unknown": TEXT},
    "enc": {"a.txt.gz": 10, "b.tar.Z": 10, "c.bz2": 10, "d.html.gz": 10, "e.txt": TEXT},
    "stylealt": {"a.txt": TEXT, "b.png": 10, "sub/": None},
    "opts-none": {"a.txt": TEXT},
    "opts-twice": {"a.txt": TEXT, "sub/": None},
    "opts-incr": {"a.txt": TEXT, "sub/": None},
    "opts-incr/deeper": {"a.txt": TEXT, "sub/": None},
    "ignoreclient": {"a.txt": TEXT, "b.txt": b"bb"},
    "track": {"a.txt": TEXT},
    "sig": {"a.txt": TEXT},
    "sigmail": {"a.txt": TEXT},
    "sigreadme": {"README.html": b"<p>readme replaces the signature</p>\n", "a.txt": TEXT},
    "ht2": {"a.txt": TEXT, "b.c": TEXT, "sub/": None},
    "ht2/sub": {"c.txt": TEXT},
    "hdrabs": {"a.txt": TEXT},
    "shared": {"HEADER.html": b"<h2>shared header</h2>\n", "index.html": b"idx\n"},
    "pat": {"a.txt": TEXT, "b.txt": TEXT, "a.c": TEXT, ".a.txt": TEXT, "[x].txt": TEXT,
            "star*.txt": TEXT},
}
SYMLINKS = {                    # link -> target (relative to htdocs)
    "links-sym/to-file.txt": "links-sym/real.txt",
    "links-sym/to-dir": "debian/sub",
    "links-sym/dangling": "links-sym/nothing-here",
    "links-sym/to-fancy": "fancy",
    "nofollow/to-file.txt": "links-sym/real.txt",
    "nofollow/to-dir": "debian/sub",
}
HTACCESS = {
    "ht": (b"IndexOptions -HTMLTable +FoldersFirst\n"
           b'AddDescription "from htaccess" *.txt\n'
           b"IndexIgnore zz*\n"),
    "ht2": (b"AddIcon /icons/bomb.gif .txt\n"
            b"IndexOptions +IconsAreLinks\n"),
}
ALIASED = {"x.txt": TEXT, "y/": None}      # outside htdocs, under Alias /al/


def fragment(d: Path, al: Path) -> str:
    """The shared config: Debian's alias.conf and autoindex.conf, then one section per
    directory under htdocs/."""
    return f"""\
# ---- shared by apache2 and httpd-py: tests/interop/modules/autoindex/tree.py ----
ServerAdmin webmaster@example.test
TypesConfig /etc/mime.types
AddType application/x-gzip .gz .tgz
HostnameLookups Off
DocumentRoot "{d}"
DirectoryIndex index.html
Include {DEBIAN_CONF}/alias.conf
Include {DEBIAN_CONF}/autoindex.conf
Alias /al/ "{al}/"

<Directory />
    Options FollowSymLinks
    AllowOverride None
    Require all denied
</Directory>
<Directory "{d}">
    Options Indexes FollowSymLinks
    AllowOverride None
    Require all granted
</Directory>

<Directory "{d}/plain">
    IndexOptions None
</Directory>
<Directory "{d}/fancy">
    IndexOptions -HTMLTable
</Directory>
<Directory "{d}/narrow">
    IndexOptions FancyIndexing NameWidth=10 DescriptionWidth=15
    AddDescription "a description that is certainly longer than fifteen" *.txt
</Directory>
<Directory "{d}/tablefix">
    IndexOptions HTMLTable FancyIndexing NameWidth=12
</Directory>
<Directory "{d}/tableonly">
    IndexOptions HTMLTable
</Directory>
<Directory "{d}/suppress">
    IndexOptions +SuppressDescription +SuppressLastModified +SuppressSize +SuppressColumnSorting
</Directory>
<Directory "{d}/suppre">
    IndexOptions FancyIndexing SuppressIcon SuppressLastModified SuppressRules
    AddDescription "0123456789012345678901234567890123456789012345678901234567890" a.txt
    AddDescription "<i>0123456789</i>0123456789012345678901234567890123456789012" b.txt
    AddDescription "&amp;123456789&lt;1234567890123456789012345678901234567890123" c.txt
</Directory>
<Directory "{d}/preamble">
    IndexOptions +SuppressHTMLPreamble
</Directory>
<Directory "{d}/folders">
    IndexOptions +FoldersFirst +IgnoreCase -VersionSort
</Directory>
<Directory "{d}/links">
    IndexOptions +IconsAreLinks IconHeight IconWidth=16
</Directory>
<Directory "{d}/xhtml">
    IndexOptions +XHTML +AddAltClass
    IndexStyleSheet "/style.css"
    IndexHeadInsert "<meta name=\\"robots\\" content=\\"noindex\\">"
</Directory>
<Directory "{d}/xpre">
    IndexOptions FancyIndexing XHTML IconWidth IconHeight
</Directory>
<Directory "{d}/ctype">
    IndexOptions Charset=ISO-8859-1 Type=text/plain
</Directory>
<Directory "{d}/nocharset">
    IndexOptions Charset=
</Directory>
<Directory "{d}/ignore">
    IndexIgnore *.log secret* "with space.txt"
</Directory>
<Directory "{d}/ignore/reset">
    IndexIgnoreReset On
    IndexIgnore *.tmp
</Directory>
<Directory "{d}/noparent">
    IndexIgnore ..
</Directory>
<Directory "{d}/order">
    IndexOrderDefault Descending Size
</Directory>
<Directory "{d}/orderdate">
    IndexOrderDefault Ascending Date
</Directory>
<Directory "{d}/desc">
    AddDescription "Plain text" a.txt
    AddDescription "Second <b>bold</b>" b.txt
    AddDescription "A description of a page that goes on and on for quite a while" long.html
    AddDescription "<a href=\\"x\\">linked</a> text after the link that is long" tags.html
    AddDescription "caf&eacute; &amp; cr&egrave;me entity text long enough" entity.txt
    AddDescription "Reports" report-*.pdf
    AddDescription "The sub directory" sub
    AddDescription "C source" *.c
    AddDescription "Parent" ..
</Directory>
<Directory "{d}/headtxt">
    HeaderName HEADER.txt
    ReadmeName README.txt
</Directory>
<Directory "{d}/headmissing">
    HeaderName nothere.html
    ReadmeName nothere.txt
</Directory>
<Directory "{d}/headother">
    HeaderName HEADER.png
    ReadmeName README.bin
</Directory>
<Directory "{d}/scan">
    IndexOptions +ScanHTMLTitles
    AddDescription "Given" described.html
</Directory>
<Directory "{d}/old">
    IndexOptions +UseOldDateFormat
</Directory>
<Directory "{d}/iconset">
    AddIcon /icons/hand.right.gif *.special
    AddIconByType (PIC,/icons/image3.gif) image/png
    AddIcon /icons/dir.png ^^DIRECTORY^^
    AddIcon /icons/up.png ..
    AddIcon /icons/blank.png ^^BLANKICON^^
    DefaultIcon /icons/ball.red.png
</Directory>
<Directory "{d}/alts">
    AddAlt "Text file" *.txt
    AddAltByType "A picture" image/*
    AddAlt "Folder" ^^DIRECTORY^^
    DefaultIcon /icons/unknown.gif
</Directory>
<Location "/loc/">
    IndexIgnore *.txt
    AddIcon /icons/bomb.gif .c
</Location>
<Directory "{d}/noindex">
    Options -Indexes
</Directory>
<Directory "{d}/ht">
    AllowOverride Indexes
</Directory>
<Directory "{d}/denied">
    <Files "secret.txt">
        Require all denied
    </Files>
</Directory>
<Directory "{d}/denied/private">
    Require all denied
</Directory>
<FilesMatch "\\.bak$">
    Require all denied
</FilesMatch>
<Directory "{d}/showforbidden">
    IndexOptions +ShowForbidden
    <Files "secret.txt">
        Require all denied
    </Files>
</Directory>
<Directory "{d}/showforbidden/private">
    Require all denied
</Directory>
<Directory "{d}/stylealt">
    IndexOptions +AddAltClass
    IndexStyleSheet "/s.css"
</Directory>
<Directory "{d}/opts-none">
    IndexOptions None
    IndexOptions +FancyIndexing
</Directory>
<Directory "{d}/opts-twice">
    IndexOptions FancyIndexing
    IndexOptions +HTMLTable
</Directory>
<Directory "{d}/opts-incr">
    IndexOptions -HTMLTable +SuppressSize
</Directory>
<Directory "{d}/opts-incr/deeper">
    IndexOptions +HTMLTable -SuppressSize +SuppressLastModified
</Directory>
<Directory "{d}/ignoreclient">
    IndexOptions +IgnoreClient
</Directory>
<Directory "{d}/links-sym">
    AddDescription "seen through the link" */links-sym/*
    AddIcon /icons/bomb.gif .txt
</Directory>
<Directory "{d}/enc">
    AddEncoding x-gzip .gz
    AddEncoding x-compress .Z
    AddType application/x-bzip2 .bz2
</Directory>
<Directory "{d}/tablebare">
    IndexOptions +SuppressIcon +SuppressRules +IconsAreLinks
</Directory>
<Directory "{d}/prelinks">
    IndexOptions -HTMLTable +IconsAreLinks +SuppressColumnSorting -VersionSort IconWidth=9
    DefaultIcon "/icons/a b&c.gif"
</Directory>
<Directory "{d}/nofollow">
    Options Indexes
</Directory>
<Directory "{d}/track">
    IndexOptions +TrackModified
</Directory>
<Directory "{d}/sig">
    ServerSignature On
</Directory>
<Directory "{d}/sigmail">
    ServerSignature EMail
</Directory>
<Directory "{d}/sigreadme">
    ServerSignature On
</Directory>
<Directory "{d}/ht2">
    AllowOverride Indexes
</Directory>
<Directory "{d}/hdrabs">
    HeaderName /shared/HEADER.html
</Directory>
<Directory "{al}">
    Options Indexes
    Require all granted
</Directory>
"""


@dataclasses.dataclass(frozen=True)
class Tree:
    base: Path
    docroot: Path
    fragment: Path

    def server_root(self, tag: str) -> Path:
        return self.base / tag

    def main_conf(self, tag: str, port: int, extra: str = "") -> str:
        return pair_conf(self.server_root(tag), tag, port, MODULES, self.fragment, extra)

    def pid_file(self, tag: str) -> Path:
        return self.server_root(tag) / "logs" / f"{tag}.pid"


def _name(n: str | bytes) -> bytes:
    return n if isinstance(n, bytes) else n.encode("utf-8")


def build_tree(base: Path) -> Tree:
    """Build htdocs/ and the fragment under BASE; every file 0644, every directory 0755, every
    modification time fixed."""
    base = Path(base)
    d = base / "htdocs"
    d.mkdir()
    (d / "index.html").write_bytes(b"<p>root</p>\n")
    step = 0
    stamped: list[tuple[bytes, int]] = [(os.fsencode(d / "index.html"), 0)]
    for rel, files in FILES.items():
        top = os.fsencode(d / rel)
        os.makedirs(top, exist_ok=True)
        for name, content in files.items():
            step += 1
            path = os.path.join(top, _name(name))
            if path.endswith(b"/"):
                os.makedirs(path, exist_ok=True)
                stamped.append((path.rstrip(b"/"), step))
                continue
            with open(path, "wb") as f:
                if isinstance(content, int):
                    f.truncate(content)
                else:
                    f.write(content)
            stamped.append((path, step))
    for rel, text in HTACCESS.items():
        (d / rel / ".htaccess").write_bytes(text)
    al = base / "aliased"
    al.mkdir()
    for name, content in ALIASED.items():
        step += 1
        if name.endswith("/"):
            (al / name).mkdir()
        else:
            (al / name).write_bytes(content)
        stamped.append((os.fsencode(al / name.rstrip("/")), step))
    for link, target in SYMLINKS.items():
        os.symlink(d / target, d / link)
    for server in ("apache", "httpd-py"):
        (base / server / "logs").mkdir(parents=True)
    frag = base / "autoindex.conf"
    frag.write_text(fragment(d, al))
    for dirpath, _dirs, filenames in os.walk(os.fsencode(base)):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, 0o644)
    # times last (creating entries changes a directory's mtime): files by step, directories
    # of htdocs at MTIME (orderdate/ holds three files an hour apart)
    for path, k in stamped:
        t = MTIME + k * 3600 + 7
        os.utime(path, (t, t))
    done = {p for p, _ in stamped}
    for top in (d, al):
        for dirpath, _dirs, _files in os.walk(os.fsencode(top), topdown=False):
            if dirpath.rstrip(b"/") not in done:
                os.utime(dirpath, (MTIME, MTIME))
    return Tree(base=base, docroot=d, fragment=frag)


# ---- the raw client ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Reply:
    status: int | None
    headers: tuple[tuple[str, str], ...]
    body: bytes
    note: str = ""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def _dechunk(data: bytes) -> bytes:
    out, pos = [], 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return b"".join(out)
        size = int(data[pos:end].split(b";")[0] or b"0", 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2:end + 2 + size])
        pos = end + 2 + size + 2


def fetch(port: int, target: str | bytes, method: str = "GET", host: str | None = None,
          headers: tuple[tuple[str, str], ...] = (), timeout: float = 10.0) -> Reply:
    """One request (the target sent as given) on a new connection; the whole answer."""
    t = target if isinstance(target, bytes) else target.encode("latin-1")
    lines = [method.encode() + b" " + t + b" HTTP/1.1",
             b"Host: " + (host or f"localhost:{port}").encode()]
    lines += [f"{k}: {v}".encode("latin-1") for k, v in headers]
    if method == "POST":
        lines.append(b"Content-Length: 0")
    lines.append(b"Connection: close")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
            data = b""
            while len(data) < 1 << 22:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        return Reply(None, (), b"", f"{type(e).__name__}: {e}")
    head, _, body = data.partition(b"\r\n\r\n")
    lines_in = head.decode("latin-1").split("\r\n")
    parts = lines_in[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return Reply(None, (), b"", f"status line {lines_in[0]!r}")
    hdrs = tuple((k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in lines_in[1:]))
    if any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in hdrs):
        body = _dechunk(body)
    return Reply(int(parts[1]), hdrs, body)
