"""mod_autoindex: the listing of a directory that has no DirectoryIndex file (``Options Indexes``).

Behaviour follows httpd 2.4.71's mod_autoindex as Debian ships it (read for behaviour, checked
against apache2 in tests/interop/modules/autoindex), byte for byte:

* Names are bytes.  File names, the URI, AddDescription texts and icon URLs go out as the bytes
  they are (no transcoding), HTML-escaped (``< > & "``) where Apache escapes them and
  percent-escaped with lower-case hex for hrefs (``ap_os_escape_path``: ``./`` before a name
  whose first ``:`` comes before any ``/``).  Descriptions, alt texts, IndexHeadInsert and the
  style sheet URL are written raw, as Apache writes them.
* Three layouts: a ``<ul>`` (plain), a ``<pre>`` block with padded columns (FancyIndexing) and
  a ``<table>`` (HTMLTable); the query arguments ``C=N|M|S|D``, ``O=A|D``, ``F=0|1|2``,
  ``V=0|1`` and ``P=pattern`` (separated by ``;`` or ``&``; parsing stops at the first word it
  does not know) choose the sort, the layout, version sorting and a name filter, unless
  ``IndexOptions IgnoreClient``.
* Sorting: the parent entry first, then (FoldersFirst) directories, then by the key with names
  as the tie-break (``strcmp``; ``IgnoreCase``: ``strcasecmp`` first; ``VersionSort``: APR's
  ``strnatcmp``, whose non-digit bytes compare as signed chars, so UTF-8 names sort before
  ASCII ones).
* Sizes as ``apr_strfsize`` (``  - ``, `` 12 ``, ``1.2K``, `` 12M``), dates in local time
  (``%Y-%m-%d %H:%M``, or ``%d-%b-%Y %H:%M`` with UseOldDateFormat).
* Icons, alt texts and descriptions: the first matching item wins; a section's items come
  before the ones it inherits (Apache appends the inherited array after the section's own).
  AddIcon/AddAlt/IndexIgnore items only apply under the path of the section that wrote them
  (Apache's ``cmd->path`` + ``*``): written in ``<Location>`` or ``<If>`` they never match a file.
* HeaderName/ReadmeName: a file found through the request pipeline (``req.lookup_uri``, see
  below) of type text/html is included as it is (and replaces the preamble and the H1); any
  other text/* type is included HTML-escaped inside ``<pre>``.  A readme replaces the
  ServerSignature footer.

Per-directory configuration: one key, ``dir.autoindex.conf``, holding an ``IndexConf`` (frozen;
its patterns compiled when the directive is read).  Every directive of a section updates the
section's own IndexConf; ``merge_one`` is Apache's merge_autoindex_configs.  Apache merges the
sections of one walk (directory + .htaccess, files, location, if) together first and only then
onto the server defaults, and this merge is not associative, so the registered rule ``merge``
keeps a ``Chain`` of one group per walk and ``effective`` folds it when a request needs it:

    IndexConf
      opts, inc, dec        IndexOptions bits: a section with a non-incremental IndexOptions
                            replaces ``opts`` (its own +/- words on later lines are dropped by
                            the merge, as Apache's), one with only +/- words adds ``inc`` and
                            removes ``dec`` from what it inherits; ``None`` clears everything
      name_width/adjust     NameWidth=n|* (adjust: UNSET inherits, FIXED, STAR)
      desc_width/adjust     DescriptionWidth=n|*
      icon_width/height     IconWidth[=n], IconHeight[=n] (0: none; 0 never overrides)
      sort_key, sort_dir    IndexOrderDefault ("N"/"M"/"S"/"D", "A"/"D"; "" inherits)
      icons, alts           (Item(kind, scope, to, data), ...) from AddIcon*/AddAlt*
      descs                 (Desc(pattern, text, full_path, wildcards), ...)
      ignores, ignore_reset IndexIgnore items; IndexIgnoreReset drops the inherited ones
      default_icon, header, readme, style_sheet, head_insert, ctype, charset, date_format

The listing is the ``hooks.DIRECTORY_LISTING`` hook ``listing(req, directory)``; the pipeline
calls it for GET/HEAD of a directory with ``Options Indexes`` and no DirectoryIndex file (the
listed path is ``req.filename``, Apache's r->filename, symlinks unresolved).  Apache runs a
sub-request per entry and for the header/readme files; here:

* each entry goes through ``req.allowed(filename, is_dir, uri)`` (the pipeline's walk and
  access checks; refused: left out, or listed without a type under ShowForbidden), a symlink
  also through the listed directory's Options (FollowSymLinks / SymLinksIfOwnerMatch), and its
  type and encoding are what the TYPE_CHECKER hooks give a copy of the request;
* when the Request has them, whole sub-requests from the pipeline are used instead:

      req.lookup_dirent(filename: str, uri: str, is_dir: bool) -> sub
      req.lookup_uri(uri: str) -> sub

  ``sub`` has ``status`` (200 when it may be served, else what access gave: 401, 403, ...),
  ``filename``, ``is_file`` (a regular file), ``content_type`` and ``content_encoding``.
  Without ``lookup_uri`` a HeaderName/ReadmeName is looked for in the listed directory only
  (a name without ``/``): nothing outside it is read.
"""
from __future__ import annotations

import copy
import functools
import os
import re
import stat
import time
from dataclasses import dataclass, field, replace
from typing import Any

from httpd_py import logids
from httpd_py.config import dirconf, values
from httpd_py.config.dirconf import effective_options
from httpd_py.config.directives.base import FLAG, ITERATE, ITERATE2, RAW, TAKE1, TAKE2, Directive
from httpd_py.config.parser import split_args
from httpd_py.config.reader import section_text
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.http.static import MimeTypes, http_date, make_etag
from httpd_py.log import error_log
from httpd_py.version import server_token

MODULE = "mod_autoindex.c"
_ENC, _ERR = "utf-8", "surrogateescape"

# -- IndexOptions bits ----------------------------------------------------------------------------
NO_OPTIONS = 1 << 0
ICONS_ARE_LINKS = 1 << 1
SCAN_HTML_TITLES = 1 << 2
SUPPRESS_ICON = 1 << 3
SUPPRESS_LAST_MOD = 1 << 4
SUPPRESS_SIZE = 1 << 5
SUPPRESS_DESC = 1 << 6
SUPPRESS_PREAMBLE = 1 << 7
SUPPRESS_COLSORT = 1 << 8
SUPPRESS_RULES = 1 << 9
FOLDERS_FIRST = 1 << 10
VERSION_SORT = 1 << 11
TRACK_MODIFIED = 1 << 12
FANCY_INDEXING = 1 << 13
TABLE_INDEXING = 1 << 14
IGNORE_CLIENT = 1 << 15
IGNORE_CASE = 1 << 16
EMIT_XHTML = 1 << 17
SHOW_FORBIDDEN = 1 << 18
ADD_ALT_CLASS = 1 << 19
OPTION_UNSET = 1 << 20

_OPTION_WORDS = {
    "fancyindexing": FANCY_INDEXING, "foldersfirst": FOLDERS_FIRST, "htmltable": TABLE_INDEXING,
    "iconsarelinks": ICONS_ARE_LINKS, "ignorecase": IGNORE_CASE, "ignoreclient": IGNORE_CLIENT,
    "scanhtmltitles": SCAN_HTML_TITLES, "suppresscolumnsorting": SUPPRESS_COLSORT,
    "suppressdescription": SUPPRESS_DESC, "suppresshtmlpreamble": SUPPRESS_PREAMBLE,
    "suppressicon": SUPPRESS_ICON, "suppresslastmodified": SUPPRESS_LAST_MOD,
    "suppresssize": SUPPRESS_SIZE, "suppressrules": SUPPRESS_RULES,
    "trackmodified": TRACK_MODIFIED, "versionsort": VERSION_SORT, "xhtml": EMIT_XHTML,
    "showforbidden": SHOW_FORBIDDEN, "addaltclass": ADD_ALT_CLASS,
}

ADJ_FIXED, ADJ_STAR, ADJ_UNSET = 0, 1, 2
DEFAULT_ICON_WIDTH, DEFAULT_ICON_HEIGHT = 20, 22
DEFAULT_NAME_WIDTH = DEFAULT_DESC_WIDTH = 23
BY_PATH, BY_TYPE, BY_ENCODING = "path", "type", "encoding"

DOCTYPE_HTML = (b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" '
                b'"http://www.w3.org/TR/html4/strict.dtd">\n')
DOCTYPE_XHTML = (b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
                 b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n')


def _b(text: str) -> bytes:
    """A config or path string back to the bytes it was read from."""
    return text.encode(_ENC, _ERR)


def _s(data: bytes) -> str:
    return data.decode(_ENC, _ERR)


def _wire(text) -> bytes:
    """The query string as it came off the wire (the Request holds it as latin-1 text)."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode(_ENC, _ERR)


# -- matching, as Apache's util.c and APR do it ------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _wild_rx(pattern: bytes, icase: bool) -> re.Pattern:
    """ap_strcmp_match / ap_strcasecmp_match: ``*`` any bytes (``/`` too), ``?`` one byte."""
    out = []
    for c in pattern:
        if c == 0x2A:
            out.append(b".*")
        elif c == 0x3F:
            out.append(b".")
        else:
            out.append(re.escape(bytes((c,))))
    return re.compile(b"".join(out), re.S | (re.I if icase else 0))


def wild_match(s: bytes, pattern: bytes, icase: bool = False) -> bool:
    return _wild_rx(pattern, icase).fullmatch(s) is not None


def is_matchexp(s: bytes) -> bool:
    return b"*" in s or b"?" in s


def fnmatch_test(pattern: bytes) -> bool:
    """apr_fnmatch_test: ``*`` or ``?``, or a ``[`` with a later ``]`` (``\\`` escapes)."""
    nesting, i, n = 0, 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c in (0x2A, 0x3F):
            return True
        if c == 0x5C:
            i += 1
            if i >= n:
                return False
        elif c == 0x5B:
            nesting += 1
        elif c == 0x5D and nesting:
            return True
        i += 1
    return False


@functools.lru_cache(maxsize=4096)
def _fn_rx(pattern: bytes, noescape: bool) -> re.Pattern:
    """apr_fnmatch without APR_FNM_PATHNAME as a regex: ``*``, ``?``, ``[...]`` (``!``/``^``
    negate, ranges, a leading ``]`` is literal, an unclosed ``[`` is literal), ``\\`` escapes
    unless ``noescape``."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 0x2A:
            out.append(b".*")
        elif c == 0x3F:
            out.append(b".")
        elif c == 0x5B:
            got = _bracket(pattern, i + 1, noescape)
            if got is None:
                out.append(re.escape(b"["))
            else:
                cls, i = got
                out.append(cls)
                continue
        elif c == 0x5C and not noescape and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i:i + 1]))
        else:
            out.append(re.escape(bytes((c,))))
        i += 1
    return re.compile(b"".join(out), re.S)


def _bracket(p: bytes, i: int, noescape: bool) -> tuple[bytes, int] | None:
    n = len(p)
    neg = False
    if i < n and p[i] in (0x21, 0x5E):
        neg, i = True, i + 1
    parts: list[bytes] = []
    first = True
    while i < n:
        c = p[i]
        if c == 0x5D and not first:
            body = b"".join(parts)
            if not body:
                return (b"[^\\x00-\\xff]" if not neg else b"[\\x00-\\xff]"), i + 1
            return b"[" + (b"^" if neg else b"") + body + b"]", i + 1
        first = False
        if c == 0x5C and not noescape and i + 1 < n:
            i += 1
            c = p[i]
        if i + 2 < n and p[i + 1] == 0x2D and p[i + 2] != 0x5D:
            hi_i = i + 2
            hi = p[hi_i]
            if hi == 0x5C and not noescape and hi_i + 1 < n:
                hi_i += 1
                hi = p[hi_i]
            if c <= hi:
                parts.append(re.escape(bytes((c,))) + b"-" + re.escape(bytes((hi,))))
            i = hi_i + 1
            continue
        parts.append(re.escape(bytes((c,))))
        i += 1
    return None


def fn_match(pattern: bytes, name: bytes, *, noescape: bool = False, period: bool = False) -> bool:
    if period and name.startswith(b".") and not pattern.startswith(b"."):
        return False
    return _fn_rx(pattern, noescape).fullmatch(name) is not None


# -- escaping and formatting --------------------------------------------------------------------------
_PATH_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                       b"$-_.+!*'(),:;@&=/~")


def escape_html(s: bytes) -> bytes:
    """ap_escape_html: ``< > & "`` only; other bytes (UTF-8 or not) pass unchanged."""
    if not any(c in s for c in (b"<", b">", b"&", b'"')):
        return s
    return (s.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
            .replace(b'"', b"&quot;"))


def escape_path(s: bytes, partial: bool = False) -> bytes:
    """ap_os_escape_path: %xx (lower-case hex) for every byte outside the safe set; without
    ``partial``, ``./`` first when a ``:`` comes before the first ``/`` (so the name is not
    read as a scheme)."""
    out = bytearray()
    if not partial:
        colon, slash = s.find(b":"), s.find(b"/")
        if colon >= 0 and (slash < 0 or colon < slash):
            out += b"./"
    for c in s:
        if c in _PATH_SAFE:
            out.append(c)
        else:
            out += b"%%%02x" % c
    return bytes(out)


def unescape_url(s: bytes) -> bytes | None:
    """ap_unescape_url: %XX decoded; None for a bad escape or an encoded ``/`` or NUL."""
    if b"%" not in s:
        return s
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == 0x25:
            h = s[i + 1:i + 3]
            if len(h) != 2 or not all(x in b"0123456789abcdefABCDEF" for x in h):
                return None
            v = int(h, 16)
            if v in (0, 0x2F):
                return None
            out.append(v)
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def strfsize(size: int) -> bytes:
    """apr_strfsize: four characters, binary magnitudes (K = 1024)."""
    if size < 0:
        return b"  - "
    if size < 973:
        return (b"%3d " % size)[:4]
    units = b"KMGTPE"
    o = 0
    while True:
        remain = size & 1023
        size >>= 10
        if size >= 973:
            o += 1
            continue
        if size < 9 or (size == 9 and remain < 973):
            remain = (remain * 5 + 256) // 512
            if remain >= 10:
                size, remain = size + 1, 0
            return (b"%d.%d%c" % (size, remain, units[o]))[:4]
        if remain >= 512:
            size += 1
        return (b"%3d%c" % (size, units[o]))[:4]


_SPACE = frozenset(b" \t\n\v\f\r")
_DIGITS = frozenset(b"0123456789")


def _cmp_right(a: bytes, i: int, b: bytes, j: int) -> int:
    """Two digit runs not starting with 0: the longer wins, else the first difference."""
    bias = 0
    while True:
        ca, cb = a[i], b[j]
        da, db = ca in _DIGITS, cb in _DIGITS
        if not da and not db:
            return bias
        if not da:
            return -1
        if not db:
            return 1
        if not bias and ca != cb:
            bias = -1 if ca < cb else 1
        i, j = i + 1, j + 1


def _cmp_left(a: bytes, i: int, b: bytes, j: int) -> int:
    """Runs where one starts with 0 ("fractional"): the first difference wins."""
    while True:
        ca, cb = a[i], b[j]
        da, db = ca in _DIGITS, cb in _DIGITS
        if not da and not db:
            return 0
        if not da:
            return -1
        if not db:
            return 1
        if ca != cb:
            return -1 if ca < cb else 1
        i, j = i + 1, j + 1


def _common_prefix(a: bytes, b: bytes) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:                      # slices compare in C: a binary search beats a loop
        mid = (lo + hi + 1) >> 1
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def strnatcmp(a: bytes, b: bytes, fold_case: bool = False) -> int:
    """APR's apr_strnatcmp/apr_strnatcasecmp (Martin Pool's natural order): digit runs compare
    as numbers (a run starting with 0 as a fraction), white space is skipped, other bytes
    compare as C's signed ``char`` (so bytes >= 0x80 sort first).

    Over an identical prefix the algorithm walks both strings in step, so it starts after the
    common prefix, backed off to the start of a digit run it cuts (a run is compared whole).
    Folding ASCII case up front is the same as APR folding each compared pair (digits and
    spaces do not change)."""
    if fold_case:
        a, b = a.upper(), b.upper()
    k = _common_prefix(a, b)
    while k and a[k - 1] in _DIGITS:
        k -= 1
    a, b = a + b"\0", b + b"\0"      # C strings: the terminator stops every scan
    i = j = k
    while True:
        ca, cb = a[i], b[j]
        while ca in _SPACE:
            i += 1
            ca = a[i]
        while cb in _SPACE:
            j += 1
            cb = b[j]
        if ca in _DIGITS and cb in _DIGITS:
            r = (_cmp_left if ca == 0x30 or cb == 0x30 else _cmp_right)(a, i, b, j)
            if r:
                return r
        if not ca and not cb:
            return 0
        if ca != cb:
            sa = ca - 256 if ca > 127 else ca
            sb = cb - 256 if cb > 127 else cb
            return -1 if sa < sb else 1
        i, j = i + 1, j + 1


def _strcmp(a: bytes, b: bytes) -> int:
    return (a > b) - (a < b)


def _strcasecmp(a: bytes, b: bytes) -> int:
    return _strcmp(a.lower(), b.lower())


# -- configuration ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """An AddIcon*/AddAlt*/IndexIgnore entry: applies to names under ``scope`` (a wildcard
    pattern: the writing section's path + ``*``) matching ``to`` (by path, MIME type or
    encoding)."""
    kind: str
    scope: bytes
    to: bytes
    data: bytes = b""
    scope_rx: re.Pattern = field(default=None, compare=False, repr=False)
    to_rx: re.Pattern = field(default=None, compare=False, repr=False)


def make_item(kind: str, to: bytes, section_path: bytes, data: bytes = b"") -> Item:
    scope = section_path + b"*"
    if kind == BY_PATH and not is_matchexp(to):
        to = b"*" + to
    if kind == "ignore":
        to = to.rpartition(b"/")[2]           # only the last part counts
    return Item(kind, scope, to, data, _wild_rx(scope, False),
                _wild_rx(to, kind in (BY_TYPE, BY_ENCODING)))


@dataclass(frozen=True)
class Desc:
    """AddDescription: ``pattern`` (``*text*``, ``*/text*`` with a ``/``) matched with fnmatch,
    or, without wildcards, found as a substring of the name."""
    pattern: bytes
    text: bytes
    full_path: bool
    wildcards: bool
    rx: re.Pattern = field(default=None, compare=False, repr=False)


def make_desc(text: bytes, to: bytes) -> Desc:
    full = b"/" in to
    wild = full or fnmatch_test(to)
    pattern = ((b"*/" if full else b"*") + to + b"*") if wild else to
    return Desc(pattern, text, full, wild, _fn_rx(pattern, False) if wild else None)


@dataclass(frozen=True)
class IndexConf:
    default_icon: bytes | None = None
    style_sheet: bytes | None = None
    head_insert: bytes | None = None
    header: bytes | None = None
    readme: bytes | None = None
    opts: int = OPTION_UNSET
    inc: int = 0
    dec: int = 0
    name_width: int = DEFAULT_NAME_WIDTH
    name_adjust: int = ADJ_UNSET
    desc_width: int = DEFAULT_DESC_WIDTH
    desc_adjust: int = ADJ_UNSET
    icon_width: int = 0
    icon_height: int = 0
    sort_key: str = ""
    sort_dir: str = ""
    icons: tuple = ()
    alts: tuple = ()
    descs: tuple = ()
    ignores: tuple = ()
    ignore_reset: bool = False
    ctype: bytes | None = None
    charset: bytes | None = None
    date_format: str | None = None
    origin: str = "server"      # where it was written: server, directory, files, location, if


EMPTY = IndexConf()


def merge_one(base: IndexConf, add: IndexConf) -> IndexConf:
    """Apache's merge_autoindex_configs: a later config (``add``) over ``base``."""
    if add.opts == NO_OPTIONS:
        opts, inc, dec = NO_OPTIONS, 0, 0
    else:
        if add.opts == OPTION_UNSET:
            inc = (base.inc | add.inc) & ~add.dec
            dec = base.dec | add.dec
            opts = base.opts & ~NO_OPTIONS
        else:
            inc = dec = 0       # a non-incremental section drops its own later +/- words
            opts = add.opts
        opts = (opts | inc) & ~dec
    name = ((base.name_width, base.name_adjust) if add.name_adjust == ADJ_UNSET
            else (add.name_width, add.name_adjust))
    desc = ((base.desc_width, base.desc_adjust) if add.desc_adjust == ADJ_UNSET
            else (add.desc_width, add.desc_adjust))

    def pick(a, b):             # a string set in the later section wins, even ""
        return a if a is not None else b

    def num(a, b):              # 0 (and "") never override
        return a if a else b

    return IndexConf(
        origin=base.origin,
        default_icon=pick(add.default_icon, base.default_icon),
        style_sheet=pick(add.style_sheet, base.style_sheet),
        head_insert=pick(add.head_insert, base.head_insert),
        header=pick(add.header, base.header),
        readme=pick(add.readme, base.readme),
        opts=opts, inc=inc, dec=dec,
        name_width=name[0], name_adjust=name[1], desc_width=desc[0], desc_adjust=desc[1],
        icon_width=num(add.icon_width, base.icon_width),
        icon_height=num(add.icon_height, base.icon_height),
        sort_key=num(add.sort_key, base.sort_key), sort_dir=num(add.sort_dir, base.sort_dir),
        icons=add.icons + base.icons, alts=add.alts + base.alts, descs=add.descs + base.descs,
        ignores=add.ignores if add.ignore_reset else add.ignores + base.ignores,
        ctype=pick(add.ctype, base.ctype), charset=pick(add.charset, base.charset),
        date_format=pick(add.date_format, base.date_format),
    )

@dataclass(frozen=True)
class Chain:
    """Merged per-directory value: one IndexConf per walk ("server" defaults, then the
    "directory", "files", "location" and "if" groups, each merged within itself).  Apache
    merges the sections of one walk together first and only then onto what came before, and
    its merge is not associative (two nested +/- IndexOptions sections make a non-incremental
    result that drops the server's options), so the groups are kept apart until ``effective``.
    """
    groups: tuple


def merge(base, add):
    """The registered merge rule (dirconf.merge_mods): ``add`` is one section's own IndexConf
    (or a vhost's defaults over the main server's)."""
    if isinstance(add, Chain):
        for _origin, conf in add.groups:
            base = merge(base, conf)
        return base
    groups = base.groups if isinstance(base, Chain) else ((base.origin, base),)
    last_origin, last = groups[-1]
    if last_origin == add.origin:
        groups = groups[:-1] + ((last_origin, merge_one(last, add)),)
    else:
        groups = groups + ((add.origin, add),)
    return groups[0][1] if len(groups) == 1 else Chain(groups)


def effective(value) -> IndexConf:
    """The config a request uses: the server's defaults (Apache's lookup_defaults, which
    always exists for the main server) merged with each walk's group in turn."""
    if value is None:
        return EMPTY
    groups = value.groups if isinstance(value, Chain) else ((value.origin, value),)
    origin, acc = groups[0]
    if origin != "server":
        acc = merge_one(EMPTY, acc)
    for _origin, conf in groups[1:]:
        acc = merge_one(acc, conf)
    return acc


_EFFECTIVE: dict[int, tuple] = {}


def effective_cached(value) -> IndexConf:
    got = _EFFECTIVE.get(id(value))
    if got is None or got[0] is not value:
        if len(_EFFECTIVE) >= 1024:
            _EFFECTIVE.clear()
        got = (value, effective(value))
        _EFFECTIVE[id(value)] = got
    return got[1]


KEY = dirconf.register("dir.autoindex.conf", merge)


# -- directive handlers -------------------------------------------------------------------------------
def _own(w) -> IndexConf:
    return w.own(KEY) or EMPTY


def _put(w, conf: IndexConf) -> None:
    w.set(KEY, replace(conf, origin=section_origin(w)))


_ORIGINS = {"<directory": "directory", "<directorymatch": "directory", "<files": "files",
            "<filesmatch": "files", "<location": "location", "<locationmatch": "location",
            "<if": "if", "<elseif": "if", "<else": "if"}


def section_origin(w) -> str:
    """Which of Apache's walks merges the section being read."""
    sec = w.dir_section
    if sec is None:
        return "server"
    if getattr(w, "htaccess", None) is not None:
        return "directory"
    return _ORIGINS.get(sec.lname, "directory")


def section_path(w) -> bytes:
    """Apache's ``cmd->path`` for the directive being read: "" outside sections, the directory
    with a trailing ``/`` for <Directory> and .htaccess, the pattern or regex as written for
    the other sections, ``*If`` inside <If>."""
    sec = w.dir_section
    if sec is None:
        return b""
    if getattr(w, "htaccess", None) is not None:
        return _b(os.path.dirname(sec.args).rstrip("/") + "/")
    lname = sec.lname
    if lname in ("<if", "<elseif", "<else"):
        return b"*If"
    words = split_args(section_text(sec))
    if not words:
        return b""
    if words[0] == "~" and len(words) > 1:
        return _b(words[1])
    if lname == "<directory":
        p = words[0]
        if p != "/":
            p = os.path.normpath(p)
            if p.startswith("//"):
                p = "/" + p.lstrip("/")
            if not p.endswith("/"):
                p += "/"
        return _b(p)
    return _b(words[0])


def _icon_handler(kind: str):
    def h(w, args):
        icon = _b(args[0])
        alt = None
        if icon.startswith(b"("):
            close = icon.find(b")")
            if close < 0:
                raise ConfigError("missing closing paren")
            comma = icon.find(b",")
            if comma < 0:
                alt, rest_at = icon, len(icon)
            else:
                alt, rest_at = icon[:comma], comma + 1
                while rest_at < len(icon) and icon[rest_at] == 0x2C:
                    rest_at += 1
            rest = icon[rest_at:]
            if close >= rest_at:
                rest = icon[rest_at:close]
            icon, alt = rest, alt[1:]
        conf = _own(w)
        path = section_path(w)
        new_alts, new_icons = [], []
        for to in args[1:]:
            t = _target(kind, _b(to))
            if alt is not None:
                new_alts.append(make_item(kind, t, path, alt))
            new_icons.append(make_item(kind, t, path, icon))
        # Apache adds the alt of "(ALT,icon)" before the icon, word by word: same lists
        _put(w, replace(conf, alts=conf.alts + tuple(new_alts),
                        icons=conf.icons + tuple(new_icons)))
    return h


def _target(kind: str, to: bytes) -> bytes:
    if kind == BY_PATH and to == b"**DIRECTORY**":
        return b"^^DIRECTORY^^"
    if kind == BY_ENCODING:
        return to.lower()
    return to


def _alt_handler(kind: str):
    def h(w, args):
        conf = _own(w)
        path = section_path(w)
        alt = _b(args[0])
        items = tuple(make_item(kind, _target(kind, _b(to)), path, alt) for to in args[1:])
        _put(w, replace(conf, alts=conf.alts + items))
    return h


def add_description(w, args):
    conf = _own(w)
    text = _b(args[0])
    _put(w, replace(conf, descs=conf.descs + tuple(make_desc(text, _b(t)) for t in args[1:])))


def index_ignore(w, args):
    conf = _own(w)
    path = section_path(w)
    _put(w, replace(conf, ignores=conf.ignores + tuple(make_item("ignore", _b(a), path)
                                                       for a in args)))


def index_ignore_reset(w, args):
    _put(w, replace(_own(w), ignore_reset=values.flag(args[0], w.name)))


def _number(word: str, text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        # Apache reads it with atoi ("20px" is 20, "x" is 0); httpd-py wants a number
        raise ConfigError(f"IndexOptions {word}: '{text}' is not a whole number")
    return int(text)


def index_options(w, args):
    c = _own(w)
    opts, inc, dec = c.opts, c.inc, c.dec
    kw: dict[str, Any] = {}
    for raw in args:
        action = raw[:1] if raw[:1] in ("+", "-") else ""
        word = raw[1:] if action else raw
        lw = word.lower()
        option = _OPTION_WORDS.get(lw, 0)
        if option:
            pass
        elif lw == "none":
            if action:
                raise ConfigError("Cannot combine '+' or '-' with 'None' keyword")
            opts, inc, dec = NO_OPTIONS, 0, 0
        elif lw == "iconwidth":
            kw["icon_width"] = 0 if action == "-" else DEFAULT_ICON_WIDTH
        elif lw.startswith("iconwidth="):
            if action == "-":
                raise ConfigError("Cannot combine '-' with IconWidth=n")
            kw["icon_width"] = _number("IconWidth", word[10:])
        elif lw == "iconheight":
            kw["icon_height"] = 0 if action == "-" else DEFAULT_ICON_HEIGHT
        elif lw.startswith("iconheight="):
            if action == "-":
                raise ConfigError("Cannot combine '-' with IconHeight=n")
            kw["icon_height"] = _number("IconHeight", word[11:])
        elif lw == "namewidth":
            if action != "-":
                raise ConfigError("NameWidth with no value may only appear as '-NameWidth'")
            kw["name_width"], kw["name_adjust"] = DEFAULT_NAME_WIDTH, ADJ_FIXED
        elif lw.startswith("namewidth="):
            if action == "-":
                raise ConfigError("Cannot combine '-' with NameWidth=n")
            if word[10:11] == "*":
                kw["name_adjust"] = ADJ_STAR
            else:
                n = _number("NameWidth", word[10:])
                if n < 5:
                    raise ConfigError("NameWidth value must be greater than 5")
                kw["name_width"], kw["name_adjust"] = n, ADJ_FIXED
        elif lw == "descriptionwidth":
            if action != "-":
                raise ConfigError("DescriptionWidth with no value may only appear as "
                                  "'-DescriptionWidth'")
            kw["desc_width"], kw["desc_adjust"] = DEFAULT_DESC_WIDTH, ADJ_FIXED
        elif lw.startswith("descriptionwidth="):
            if action == "-":
                raise ConfigError("Cannot combine '-' with DescriptionWidth=n")
            if word[17:18] == "*":
                kw["desc_adjust"] = ADJ_STAR
            else:
                n = _number("DescriptionWidth", word[17:])
                if n < 12:
                    raise ConfigError("DescriptionWidth value must be greater than 12")
                kw["desc_width"], kw["desc_adjust"] = n, ADJ_FIXED
        elif lw.startswith("type="):
            kw["ctype"] = _b(word[5:])
        elif lw.startswith("charset="):
            kw["charset"] = _b(word[8:])
        elif lw == "useolddateformat":
            kw["date_format"] = "%d-%b-%Y %H:%M"
        else:
            raise ConfigError("Invalid directory indexing option")
        if not action:
            opts |= option
            inc = dec = 0
        elif action == "+":
            inc |= option
            dec &= ~option
        else:
            dec |= option
            inc &= ~option
    if opts & NO_OPTIONS and opts & ~NO_OPTIONS:
        raise ConfigError("Cannot combine other IndexOptions keywords with 'None'")
    _put(w, replace(c, opts=opts, inc=inc, dec=dec, **kw))


def index_order_default(w, args):
    direction = {"ascending": "A", "descending": "D"}.get(args[0].lower())
    if direction is None:
        raise ConfigError("First keyword must be 'Ascending' or 'Descending'")
    key = {"name": "N", "date": "M", "size": "S", "description": "D"}.get(args[1].lower())
    if key is None:
        raise ConfigError("Second keyword must be 'Name', 'Date', 'Size', or 'Description'")
    _put(w, replace(_own(w), sort_dir=direction, sort_key=key))


def _string(field_name: str):
    def h(w, args):
        _put(w, replace(_own(w), **{field_name: _b(args[0])}))
    return h


def fancy_indexing(w, args):
    raise ConfigError("The FancyIndexing directive is no longer supported. "
                      "Use IndexOptions FancyIndexing.")


def rows() -> list[Directive]:
    M, IX = MODULE, "indexes"
    return [
        Directive("AddIcon", M, "A", ITERATE2, "", "Icon (or (ALT,icon)) for names ending in "
                  "a suffix or matching a wildcard; ^^DIRECTORY^^, ^^BLANKICON^^, ..",
                  _icon_handler(BY_PATH), syntax="icon name ...", override=IX),
        Directive("AddIconByType", M, "A", ITERATE2, "", "Icon for MIME types (wildcards)",
                  _icon_handler(BY_TYPE), syntax="icon MIME-type ...", override=IX),
        Directive("AddIconByEncoding", M, "A", ITERATE2, "", "Icon for content encodings",
                  _icon_handler(BY_ENCODING), syntax="icon encoding ...", override=IX),
        Directive("AddAlt", M, "A", ITERATE2, "", "Alt text of the icon for names",
                  _alt_handler(BY_PATH), syntax="text name ...", override=IX),
        Directive("AddAltByType", M, "A", ITERATE2, "", "Alt text of the icon for MIME types",
                  _alt_handler(BY_TYPE), syntax="text MIME-type ...", override=IX),
        Directive("AddAltByEncoding", M, "A", ITERATE2, "", "Alt text of the icon for content "
                  "encodings", _alt_handler(BY_ENCODING), syntax="text encoding ...",
                  override=IX),
        Directive("AddDescription", M, "A", ITERATE2, "", "Description shown for matching "
                  "names (HTML, written as given)", add_description, syntax="text name ...",
                  override=IX),
        Directive("DefaultIcon", M, "A", TAKE1, "", "Icon for entries no AddIcon* matches",
                  _string("default_icon"), syntax="URL-path", override=IX),
        Directive("FancyIndexing", M, "A", RAW, "", "Refused as Apache 2.4 does: use "
                  "IndexOptions FancyIndexing", fancy_indexing, override="any"),
        Directive("HeaderName", M, "A", TAKE1, "", "File (URL relative to the directory) put "
                  "at the top of the listing", _string("header"), syntax="filename",
                  override=IX),
        Directive("IndexHeadInsert", M, "A", TAKE1, "", "Text inserted in the <head> of the "
                  "listing", _string("head_insert"), syntax='"markup ..."', override=IX),
        Directive("IndexIgnore", M, "A", ITERATE, "", "Names (wildcards) left out of listings",
                  index_ignore, syntax="file ...", override=IX),
        Directive("IndexIgnoreReset", M, "A", FLAG, "Off", "Drop the inherited IndexIgnore "
                  "names", index_ignore_reset, override=IX),
        Directive("IndexOptions", M, "A", RAW, "", "Listing options (FancyIndexing, HTMLTable, "
                  "FoldersFirst, NameWidth=, ...; +/- adjust inherited ones)", index_options,
                  syntax="[+|-]option ...", override=IX),
        Directive("IndexOrderDefault", M, "A", TAKE2, "Ascending Name", "Sort order of a "
                  "listing without C=/O= arguments", index_order_default,
                  syntax="Ascending|Descending Name|Date|Size|Description", override=IX),
        Directive("IndexStyleSheet", M, "A", TAKE1, "", "Style sheet linked from listings (and "
                  "CSS ids/classes in them)", _string("style_sheet"), syntax="URL-path",
                  override=IX),
        Directive("ReadmeName", M, "A", TAKE1, "", "File (URL relative to the directory) put "
                  "at the end of the listing", _string("readme"), syntax="filename",
                  override=IX),
    ]


# -- the listing ------------------------------------------------------------------------------------
@dataclass
class Entry:
    name: bytes                 # the file name (+ "/" for directories); the parent: its URI
    size: int = -1
    lm: int = -1                # modification time, microseconds (apr_time_t); -1 none
    icon: bytes | None = None
    alt: bytes | None = None
    desc: bytes | None = None
    isdir: bool = False         # sorts first (FoldersFirst)


@dataclass
class Sub:
    """The answer of a look-up (Apache's sub-request) when the pipeline gives none."""
    status: int
    filename: str
    is_file: bool
    is_dir: bool = False
    content_type: str | None = None
    content_encoding: str | None = None


def find_item(items: tuple, path: bytes, ctype: bytes | None, encoding: bytes | None,
              path_only: bool) -> bytes | None:
    """The first icon or alt text that applies to ``path`` (Apache's find_item)."""
    special = path[:1] == b"^"
    for it in items:
        if not special and it.scope_rx.fullmatch(path) is None:
            continue
        if not it.to:
            return it.data
        if it.kind == BY_PATH:
            if it.to_rx.fullmatch(path) is not None:
                return it.data
        elif special:
            if _wild_rx(it.to, False).fullmatch(path) is not None:
                return it.data
        elif not path_only:
            if encoding is None:
                if it.kind == BY_TYPE and ctype is not None and \
                        it.to_rx.fullmatch(ctype) is not None:
                    return it.data
            elif it.kind == BY_ENCODING and it.to_rx.fullmatch(encoding) is not None:
                return it.data
    return None


def find_desc(descs: tuple, path: bytes) -> bytes | None:
    only = path.rpartition(b"/")[2]
    for d in descs:
        name = path if d.full_path else only
        if d.wildcards:
            if d.rx.fullmatch(name) is not None:
                return d.text
        elif d.pattern in name:
            return d.text
    return None


def ignored(conf: IndexConf, path: bytes) -> bool:
    last = path.rpartition(b"/")[2]
    for it in conf.ignores:
        if it.scope_rx.fullmatch(path) is not None and it.to_rx.fullmatch(last) is not None:
            return True
    return False


def terminate_description(conf: IndexConf, desc: bytes, opts: int, width: int) -> bytes:
    """Cut a description to ``width`` visible characters (tags take none, an entity one) and
    end it with ``>``, as Apache does."""
    maxsize = width
    if conf.desc_adjust == ADJ_UNSET:
        if opts & SUPPRESS_ICON:
            maxsize += 6
        if opts & SUPPRESS_LAST_MOD:
            maxsize += 19
        if opts & SUPPRESS_SIZE:
            maxsize += 7
    n = len(desc)
    x = 0
    while x < n and (maxsize > 0 or desc[x] == 0x3C):
        c = desc[x]
        if c == 0x3C:
            while x < n and desc[x] != 0x3E:
                x += 1
            if x >= n:
                maxsize = 0
        elif c == 0x26:
            maxsize -= 1
            while x < n and desc[x] != 0x3B:
                x += 1
            if x >= n:
                maxsize = 0
        else:
            maxsize -= 1
        x += 1
    if maxsize == 0 and x < n and x > 0:
        return desc[:x - 1] + b">"
    return desc


def sort_key_fn(key: str, ascending: bool, version: bool, icase: bool):
    def cmp(e1: Entry, e2: Entry) -> int:
        if e1.name[:1] == b"/":
            return -1
        if e2.name[:1] == b"/":
            return 1
        if e1.isdir != e2.isdir:
            return -1 if e1.isdir else 1
        c1, c2 = (e1, e2) if ascending else (e2, e1)
        if key == "M":
            if c1.lm != c2.lm:
                return 1 if c1.lm > c2.lm else -1
        elif key == "S":
            if c1.size != c2.size:
                return 1 if c1.size > c2.size else -1
        elif key == "D":
            d1, d2 = c1.desc or b"", c2.desc or b""
            r = strnatcmp(d1, d2) if version else _strcmp(d1, d2)
            if r:
                return r
        r = 0
        if version:
            if icase:
                r = strnatcmp(c1.name, c2.name, True)
            if not r:
                r = strnatcmp(c1.name, c2.name)
        if not r and icase:
            r = _strcasecmp(c1.name, c2.name)
        if not r:
            r = _strcmp(c1.name, c2.name)
        return r
    return functools.cmp_to_key(cmp)


@dataclass
class Query:
    key: str
    direction: str
    opts: int
    pattern: bytes | None
    colargs: bytes


def parse_query(query: bytes, key: str, direction: str, opts: int) -> Query:
    """The C=, O=, F=, V= and P= arguments (``;`` or ``&`` between them); an unknown word ends
    the parsing.  ``colargs`` is what the column links carry on."""
    if opts & IGNORE_CLIENT:
        return Query(key, direction, opts | SUPPRESS_COLSORT, None, b"")
    fval = vval = ppre = epattern = b""
    pattern: bytes | None = None
    q = query
    while q:
        c3 = q[3:4]
        end_ok = c3 in (b"&", b";", b"")
        step = 4 if c3 else 3
        if q[:2] == b"C=" and q[2:3] and q[2:3] in b"NMSD" and end_ok:
            key = chr(q[2])
            q = q[step:]
        elif q[:2] == b"O=" and q[2:3] in (b"A", b"D") and end_ok:
            direction = chr(q[2])
            q = q[step:]
        elif q[:2] == b"F=" and q[2:3] and q[2:3] in b"012" and end_ok:
            f = q[2:3]
            if f == b"0":
                opts &= ~(FANCY_INDEXING | TABLE_INDEXING)
            elif f == b"1":
                opts = (opts | FANCY_INDEXING) & ~TABLE_INDEXING
            else:
                opts |= FANCY_INDEXING | TABLE_INDEXING
            fval = b";F=" + f
            q = q[step:]
        elif q[:2] == b"V=" and q[2:3] in (b"0", b"1") and end_ok:
            if q[2:3] == b"0":
                opts &= ~VERSION_SORT
            else:
                opts |= VERSION_SORT
            vval = b";V=" + q[2:3]
            q = q[step:]
        elif q[:2] == b"P=":
            q = q[2:]
            m = re.match(rb"[^&;]*", q)
            raw = m.group()
            if not raw:
                pattern = None
            else:
                pattern = unescape_url(raw)
                if pattern is not None:
                    ppre = b";P="
                    epattern = escape_path(pattern, partial=True)
            rest = q[len(raw):]
            q = rest[1:] if len(rest) > 1 else b""
        else:
            break
    return Query(key, direction, opts, pattern, fval + vval + ppre + epattern)


def emit_link(anchor: bytes, column: str, q: Query, nosort: bool) -> bytes:
    if nosort:
        return anchor
    order = "D" if q.key == column and q.direction == "A" else "A"
    return (b'<a href="?C=' + column.encode() + b";O=" + order.encode() + q.colargs + b'">'
            + anchor + b"</a>")


def _img(src: bytes, alt: bytes, conf: IndexConf, opts: int) -> bytes:
    out = b'<img src="' + escape_html(src) + b'" alt="' + alt + b'"'
    if conf.icon_width:
        out += b' width="%d"' % conf.icon_width
    if conf.icon_height:
        out += b' height="%d"' % conf.icon_height
    return out + (b" />" if opts & EMIT_XHTML else b">")


def _date(lm: int, fmt: str) -> bytes:
    return time.strftime(fmt, time.localtime(lm // 1_000_000)).encode("ascii", "replace")


def output_entries(entries: list[Entry], conf: IndexConf, opts: int, q: Query) -> bytes:
    """The column heads and one line (or row) per entry: Apache's output_directories."""
    out: list[bytes] = []
    nosort = bool(opts & SUPPRESS_COLSORT)
    xhtml = b" /" if opts & EMIT_XHTML else b""
    ss = conf.style_sheet is not None
    name_width, desc_width = conf.name_width, conf.desc_width
    fmt = conf.date_format or "%Y-%m-%d %H:%M"
    if opts & (FANCY_INDEXING | TABLE_INDEXING) == FANCY_INDEXING:
        if conf.name_adjust == ADJ_STAR:
            name_width = max([name_width] + [len(e.name) for e in entries])
        if conf.desc_adjust == ADJ_STAR:
            desc_width = max([desc_width] + [len(e.desc) for e in entries if e.desc is not None])
    pad = b" " * max(name_width, 0)
    blank = find_item(conf.icons, b"^^BLANKICON^^", None, None, True)
    breakrow = b""
    if opts & TABLE_INDEXING:
        cols = 1
        out.append(b'  <table id="indexlist">\n   <tr class="indexhead">' if ss
                   else b"  <table>\n   <tr>")
        if not opts & SUPPRESS_ICON:
            out.append(b'<th class="indexcolicon">' if ss else b'<th valign="top">')
            out.append(_img(blank, b"[ICO]", conf, opts) + b"</th>" if blank
                       else b"&nbsp;</th>")
            cols += 1
        out.append(b'<th class="indexcolname">' if ss else b"<th>")
        out.append(emit_link(b"Name", "N", q, nosort))
        for flag, cls, label, col in ((SUPPRESS_LAST_MOD, b"indexcollastmod", b"Last modified",
                                       "M"), (SUPPRESS_SIZE, b"indexcolsize", b"Size", "S"),
                                      (SUPPRESS_DESC, b"indexcoldesc", b"Description", "D")):
            if not opts & flag:
                out.append(b'</th><th class="' + cls + b'">' if ss else b"</th><th>")
                out.append(emit_link(label, col, q, nosort))
                cols += 1
        if not opts & SUPPRESS_RULES:
            breakrow = (b"   <tr" + (b' class="indexbreakrow"' if ss else b"")
                        + b'><th colspan="%d"><hr' % cols + xhtml + b"></th></tr>\n")
        out.append(b"</th></tr>\n" + breakrow)
    elif opts & FANCY_INDEXING:
        out.append(b"<pre>")
        if not opts & SUPPRESS_ICON:
            out.append(_img(blank, b"Icon ", conf, opts) + b" " if blank else b"      ")
        out.append(emit_link(b"Name", "N", q, nosort))
        out.append(pad[4:] + b" ")
        if not opts & SUPPRESS_LAST_MOD:
            out.append(emit_link(b"Last modified", "M", q, nosort) + b"      ")
        if not opts & SUPPRESS_SIZE:
            out.append(emit_link(b"Size", "S", q, nosort) + b"  ")
        if not opts & SUPPRESS_DESC:
            out.append(emit_link(b"Description", "D", q, nosort))
        out.append(b"<hr" + xhtml + b">" if not opts & SUPPRESS_RULES else b"\n")
    else:
        out.append(b"<ul>")

    for x, e in enumerate(entries):
        anchor = escape_html(escape_path(e.name))
        shown = b"Parent Directory" if x == 0 and e.name[:1] == b"/" else e.name
        if opts & TABLE_INDEXING:
            if ss:
                parity = b"odd" if x & 1 else b"even"
                if e.alt and opts & ADD_ALT_CLASS:
                    out.append(b'   <tr class="' + parity + b"-" + e.alt.lower() + b'">')
                else:
                    out.append(b'   <tr class="' + parity + b'">')
            else:
                out.append(b"<tr>")
            if not opts & SUPPRESS_ICON:
                out.append(b'<td class="indexcolicon">' if ss else b'<td valign="top">')
                if opts & ICONS_ARE_LINKS:
                    out.append(b'<a href="' + anchor + b'">')
                icon = e.icon or conf.default_icon
                out.append(_img(icon, b"[" + (e.alt if e.alt else b"   ") + b"]", conf, opts)
                           if icon else b"&nbsp;")
                out.append(b"</a></td>" if opts & ICONS_ARE_LINKS else b"</td>")
            td_name = b'<td class="indexcolname">' if ss else b"<td>"
            if conf.name_adjust == ADJ_STAR:
                out.append(td_name + b'<a href="' + anchor + b'">' + escape_html(shown) + b"</a>")
            else:
                shown, nwidth = _truncate(shown, name_width)
                out.append(td_name + b'<a href="' + anchor + b'">' + escape_html(shown) + b"</a>"
                           + pad[nwidth:])
            if not opts & SUPPRESS_LAST_MOD:
                if e.lm != -1:
                    out.append((b'</td><td class="indexcollastmod">' if ss
                                else b'</td><td align="right">') + _date(e.lm, fmt) + b"  ")
                else:
                    out.append(b'</td><td class="indexcollastmod">&nbsp;' if ss
                               else b"</td><td>&nbsp;")
            if not opts & SUPPRESS_SIZE:
                out.append((b'</td><td class="indexcolsize">' if ss else b'</td><td align="right">')
                           + strfsize(e.size))
            if not opts & SUPPRESS_DESC:
                td = b'</td><td class="indexcoldesc">' if ss else b"</td><td>"
                if e.desc:
                    out.append(td + (e.desc if conf.desc_adjust == ADJ_STAR else
                                     terminate_description(conf, e.desc, opts, desc_width)))
                else:
                    out.append(td + b"&nbsp;")
            out.append(b"</td></tr>\n")
        elif opts & FANCY_INDEXING:
            if not opts & SUPPRESS_ICON:
                if opts & ICONS_ARE_LINKS:
                    out.append(b'<a href="' + anchor + b'">')
                icon = e.icon or conf.default_icon
                out.append(_img(icon, b"[" + (e.alt if e.alt else b"   ") + b"]", conf, opts)
                           if icon else b"     ")
                out.append(b"</a> " if opts & ICONS_ARE_LINKS else b" ")
            shown, nwidth = _truncate(shown, name_width)
            out.append(b'<a href="' + anchor + b'">' + escape_html(shown) + b"</a>"
                       + pad[nwidth:] + b" ")
            if not opts & SUPPRESS_LAST_MOD:
                out.append(_date(e.lm, fmt) + b"  " if e.lm != -1 else b" " * 19)
            if not opts & SUPPRESS_SIZE:
                out.append(strfsize(e.size) + b"  ")
            if not opts & SUPPRESS_DESC and e.desc:
                out.append(terminate_description(conf, e.desc, opts, desc_width))
            out.append(b"\n")
        else:
            out.append(b'<li><a href="' + anchor + b'"> ' + escape_html(shown) + b"</a></li>\n")

    if opts & TABLE_INDEXING:
        out.append(breakrow + b"</table>\n")
    elif opts & FANCY_INDEXING:
        out.append(b"<hr" + xhtml + b"></pre>\n" if not opts & SUPPRESS_RULES else b"</pre>\n")
    else:
        out.append(b"</ul>\n")
    return b"".join(out)


def _truncate(name: bytes, width: int) -> tuple[bytes, int]:
    if len(name) > width:
        name = name[:max(width - 3, 0)] + b"..>"[max(3 - width, 0):]
        return name, width
    return name, len(name)


def preamble(conf: IndexConf, opts: int, title: bytes) -> bytes:
    if opts & EMIT_XHTML:
        out = (DOCTYPE_XHTML + b'<html xmlns="http://www.w3.org/1999/xhtml">\n <head>\n'
               b"  <title>Index of " + title + b"</title>\n")
    else:
        out = DOCTYPE_HTML + b"<html>\n <head>\n  <title>Index of " + title + b"</title>\n"
    if conf.style_sheet is not None:
        out += (b'  <link rel="stylesheet" href="' + conf.style_sheet + b'" type="text/css"'
                + (b" />\n" if opts & EMIT_XHTML else b">\n"))
    if conf.head_insert is not None:
        out += conf.head_insert
    return out + b" </head>\n <body>\n"


def plain_text(data: bytes) -> bytes:
    """A text file inside <pre>, with ``< > &`` escaped (Apache writes each 8 KB block as a C
    string: bytes after a NUL in a piece are lost)."""
    out = [b"<pre>\n"]
    for off in range(0, len(data), 8192):
        block = data[off:off + 8192]
        for piece in re.split(rb"([<>&])", block):
            if piece == b"<":
                out.append(b"&lt;")
            elif piece == b">":
                out.append(b"&gt;")
            elif piece == b"&":
                out.append(b"&amp;")
            else:
                out.append(piece.split(b"\0", 1)[0])
    out.append(b"</pre>\n")
    return b"".join(out)


def _is_html(ctype: str | None) -> bool:
    base = (ctype or "").split(";", 1)[0].strip().lower()
    return base in ("text/html", "application/xhtml+xml")


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def find_title(path: str) -> bytes | None:
    """ScanHTMLTitles: the text after the first ``<title>`` in the first 8 KB, line breaks as
    spaces (a leading one dropped)."""
    try:
        with open(path, "rb") as f:
            data = f.read(8191)
    except OSError:
        return None
    data = data.split(b"\0", 1)[0]
    at = data.lower().find(b"<title>")
    if not data or at < 0:
        return None
    rest = data[at + 7:]
    end = rest.find(b"<")
    if end >= 0:
        rest = rest[:end]
    if rest[:1] in (b"\r", b"\n"):
        rest = rest[1:]
    return rest.replace(b"\r", b" ").replace(b"\n", b" ")


# -- look-ups (Apache's sub-requests) --------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _mime(types_config: str, add_types: tuple) -> MimeTypes:
    return MimeTypes(types_config, add_types)


def _type_of(req, filename: str) -> str | None:
    conf = req.conf
    add = conf.add_types if conf is not None and conf.add_types is not dirconf.UNSET \
        else req.vhost.add_types
    return _mime(req.vhost.types_config, tuple(add)).lookup(filename)


def lookup_dirent(req, filename: str, uri: str, is_dir: bool, is_link: bool = False):
    fn = getattr(req, "lookup_dirent", None)
    if fn is not None:
        return fn(filename, uri, is_dir)
    status = 200
    allowed = getattr(req, "allowed", None)
    if is_link and not _link_allowed(req, filename):
        status = 403
    elif allowed is not None and not allowed(filename, is_dir, uri):
        status = 403            # the walk and access checks refuse it (401 and 403 alike)
    if is_dir:
        return Sub(status, filename, False, True)
    ctype, encoding = _typed(req, filename)
    return Sub(status, filename, True, False, ctype, encoding)


def _typed(req, filename: str) -> tuple[str | None, str | None]:
    """The type phase for one file with the listed directory's config: TypesConfig/AddType,
    then the TYPE_CHECKER hooks (mod_mime's AddType/AddEncoding/ForceType...)."""
    ctype = _type_of(req, filename)
    if not hooks.TYPE_CHECKER:
        return ctype, None
    sub = copy.copy(req)
    sub.filename, sub.path_info, sub.content_type = filename, "", ctype
    sub.content_encoding, sub.content_language, sub.charset = None, (), None
    sub.handler, sub.notes = None, {}
    for h in hooks.TYPE_CHECKER:
        h(sub)
    return sub.content_type, sub.content_encoding


def _link_allowed(req, filename: str) -> bool:
    """Without the pipeline's look-up: a symlink entry as the listed directory's Options allow
    it (FollowSymLinks, or SymLinksIfOwnerMatch with the same owner), as Apache's sub-request
    refuses it otherwise."""
    opts = effective_options(req.conf) if req.conf is not None else frozenset()
    if "followsymlinks" in opts:
        return True
    if "symlinksifownermatch" in opts:
        try:
            return os.lstat(filename).st_uid == os.stat(filename).st_uid
        except OSError:
            return False
    return False


def lookup_uri(req, uri: str, directory: str):
    """The header/readme file: ``uri`` relative to the listed directory's URI, or absolute."""
    if not uri.startswith("/"):
        uri = req.uri[:req.uri.rfind("/") + 1] + uri
    fn = getattr(req, "lookup_uri", None)
    if fn is not None:
        return fn(uri)
    # without the pipeline: a name in the listed directory only
    base = req.uri[:req.uri.rfind("/") + 1]
    if not uri.startswith(base) or "/" in uri[len(base):]:
        return None
    path = os.path.join(directory, uri[len(base):])
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return Sub(404, path, False)
    ctype, encoding = _typed(req, path)
    return Sub(200, path, stat.S_ISREG(st.st_mode), stat.S_ISDIR(st.st_mode), ctype, encoding)


# -- the footer ----------------------------------------------------------------------------------
def signature(req) -> bytes:
    """ServerSignature on a listing (Apache's ap_psignature): an <address> line, or nothing.
    The core's keys (modules/core_http.py) decide: dir.core.server_signature,
    glob.core.server_tokens, dir.core.use_canonical_name."""
    conf = req.conf
    mode = conf.mod("dir.core.server_signature", "off") if conf is not None else "off"
    if mode == "off":
        return b""
    tokens = req.server.mod("glob.core.server_tokens", "full") if req.server is not None \
        else "full"
    banner = _b(server_token(tokens))
    canonical = conf.mod("dir.core.use_canonical_name", "off")
    host = req.hostname if canonical != "on" else ""
    name = escape_html(_b(host or req.server_name or req.local_ip))
    port = b"%d" % _server_port(req, canonical)
    if mode == "email":
        admin = req.vhost.server_admin if req.vhost is not None else ""
        mailto = b"" if admin.lower().startswith("mailto:") else b"mailto:"
        return (b"<address>" + banner + b' Server at <a href="' + mailto
                + escape_html(_b(admin)) + b'">' + name + b"</a> Port " + port
                + b"</address>\n")
    return b"<address>" + banner + b" Server at " + name + b" Port " + port + b"</address>\n"


def _server_port(req, canonical: str) -> int:
    """ap_get_server_port: the Host header's port (UseCanonicalName Off), else ServerName's,
    else the scheme's default."""
    if canonical != "on":
        host = req.headers.get("host", "") if req.headers else ""
        port = host.rpartition(":")[2] if ":" in host and not host.endswith("]") else ""
        if port.isdigit():
            return int(port)
    sn_port = req.vhost.mod("srv.core.server_name_port") if req.vhost is not None else None
    if sn_port:
        return int(sn_port)
    return 443 if req.https else 80


# -- the hook ---------------------------------------------------------------------------------------
def content_type(conf: IndexConf) -> str:
    ctype = conf.ctype if conf.ctype is not None else b"text/html"
    charset = conf.charset if conf.charset is not None else b"ISO-8859-1"
    return _s(ctype + b";charset=" + charset if charset else ctype)


def listing(req, directory: str):
    """hooks.DIRECTORY_LISTING: the listing of ``directory`` for GET and HEAD, None (declined)
    for other methods (Apache's handler declines them)."""
    if req.method not in ("GET", "HEAD"):
        return None
    if req.server is not None and "autoindex_module" not in getattr(req.server,
                                                                  "loaded_modules", ()):
        return None
    conf = effective_cached(req.conf.mod(KEY)) if req.conf is not None else EMPTY
    # Apache's r->filename: the translated path, symlinks not resolved (item scopes, full-path
    # descriptions and IndexIgnore match against it)
    directory = req.filename or directory
    dirname = directory if directory.endswith("/") else directory + "/"
    try:
        fd = os.open(dirname, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        error_log.error("autoindex", logids.AUTOINDEX_UNREADABLE,
                        f"Can't open directory for index: {dirname} "
                        f"({e.strerror})", client=req.client_ip)
        return 403
    try:
        headers = [("Content-Type", content_type(conf))]
        if conf.opts & TRACK_MODIFIED:
            st = os.fstat(fd)
            headers.append(("Last-Modified", http_date(min(st.st_mtime, time.time()))))
            headers.append(("ETag", make_etag(st.st_size, st.st_mtime_ns)))
        if req.method == "HEAD":
            return hooks.Response(200, headers, b"")
        body = render(req, conf, dirname, fd)
    finally:
        os.close(fd)
    return hooks.Response(200, headers, body)


def render(req, conf: IndexConf, dirname: str, fd: int) -> bytes:
    opts = conf.opts
    q = parse_query(_wire(req.query or ""), conf.sort_key or "N", conf.sort_dir or "A", opts)
    opts = q.opts
    uri_b = _b(req.uri)
    title = escape_html(uri_b)
    stripped = title.rstrip(b"/")
    title = stripped if stripped else title[:1]
    out: list[bytes] = [emit_head(req, conf, opts, title, dirname)]

    entries: list[Entry] = []
    ascending = q.direction == "A"
    parent = make_parent_entry(conf, opts, uri_b, _b(dirname))
    if parent is not None:
        entries.append(parent)
    dir_b = _b(dirname)
    with os.scandir(fd) as it:
        names = [(_b(d.name), d.is_symlink()) for d in it]
    for name, is_link in names:
        e = make_entry(req, conf, opts, q, dirname, dir_b, name, is_link)
        if e is not None:
            entries.append(e)
    entries.sort(key=sort_key_fn(q.key, ascending, bool(opts & VERSION_SORT),
                                 bool(opts & IGNORE_CASE)))
    out.append(output_entries(entries, conf, opts, q))
    out.append(emit_tail(req, conf, opts, dirname))
    return b"".join(out)


def emit_head(req, conf: IndexConf, opts: int, title: bytes, dirname: str) -> bytes:
    out = b""
    amble = h1 = True
    suppress = bool(opts & SUPPRESS_PREAMBLE)
    if conf.header is not None:
        sub = lookup_uri(req, _s(conf.header), dirname)
        if sub is not None and sub.status == 200 and sub.is_file and sub.content_type:
            if _is_html(sub.content_type):
                amble = h1 = False
                if not suppress:
                    out += preamble(conf, opts, title)
                data = _read(sub.filename)
                if data is None:
                    amble, h1 = suppress, True
                else:
                    out += data
            elif sub.content_type.lower().startswith("text/"):
                data = _read(sub.filename)
                if data is not None:
                    out += preamble(conf, opts, title)
                    amble = h1 = False
                    out += plain_text(data)
    if amble:
        out += preamble(conf, opts, title)
    if h1:
        out += (b'  <h1 id="indextitle">Index of ' if conf.style_sheet is not None
                else b"<h1>Index of ") + title + b"</h1>\n"
    return out


def emit_tail(req, conf: IndexConf, opts: int, dirname: str) -> bytes:
    out = b""
    no_sig = no_post = False
    if conf.readme is not None:
        sub = lookup_uri(req, _s(conf.readme), dirname)
        if sub is not None and sub.status == 200 and sub.is_file and sub.content_type:
            if _is_html(sub.content_type):
                data = _read(sub.filename)
                if data is not None:
                    out += data
                    no_sig, no_post = True, bool(opts & SUPPRESS_PREAMBLE)
            elif sub.content_type.lower().startswith("text/"):
                data = _read(sub.filename)
                if data is not None:
                    out += plain_text(data)
                    no_sig = True
    if not no_sig:
        out += signature(req)
    if not no_post:
        out += b"</body></html>\n"
    return out


def _parent_uri(uri: bytes) -> bytes | None:
    """``uri + "../"`` normalised; None at the root."""
    segs = [s for s in uri.split(b"/") if s not in (b"", b".")]
    out: list[bytes] = []
    for s in segs + [b".."]:
        if s == b"..":
            if not out:
                return None
            out.pop()
        else:
            out.append(s)
    return b"/" + b"".join(s + b"/" for s in out)


def make_parent_entry(conf: IndexConf, opts: int, uri: bytes, dirname: bytes) -> Entry | None:
    name = _parent_uri(uri)
    if name is None:
        return None
    test = dirname + b".."
    if ignored(conf, test):
        return None
    e = Entry(name)
    if opts & FANCY_INDEXING:
        e.icon = (find_item(conf.icons, test, None, None, True)
                  or find_item(conf.icons, b"^^DIRECTORY^^", None, None, True))
        e.alt = (find_item(conf.alts, test, None, None, True)
                 or find_item(conf.alts, b"^^DIRECTORY^^", None, None, True) or b"PARENTDIR")
        e.desc = find_desc(conf.descs, test)
    return e


def make_entry(req, conf: IndexConf, opts: int, q: Query, dirname: str, dir_b: bytes,
               name: bytes, is_link: bool = False) -> Entry | None:
    if name in (b".", b".."):
        return None
    if q.pattern is not None and not fn_match(q.pattern, name, noescape=True, period=True):
        return None
    full = dir_b + name
    if ignored(conf, full):
        return None
    try:
        st = os.stat(full)          # follows symlinks; a dangling one is left out
    except OSError:
        return None
    is_dir = stat.S_ISDIR(st.st_mode)
    if not is_dir and not stat.S_ISREG(st.st_mode):
        return None
    sname = _s(name)
    sub = lookup_dirent(req, dirname + sname, req.uri + sname + ("/" if is_dir else ""), is_dir,
                        is_link)
    status = sub.status
    if not (200 <= status < 400 or (opts & SHOW_FORBIDDEN and status in (401, 403))):
        return None
    e = Entry(name + b"/" if is_dir else name)
    if opts & (FANCY_INDEXING | TABLE_INDEXING):
        e.lm = st.st_mtime_ns // 1000
        path = full
        if is_dir:
            e.isdir = bool(opts & FOLDERS_FIRST)
            e.icon = (find_item(conf.icons, path, None, None, True)
                      or find_item(conf.icons, b"^^DIRECTORY^^", None, None, True))
            e.alt = (find_item(conf.alts, path, None, None, True)
                     or find_item(conf.alts, b"^^DIRECTORY^^", None, None, True) or b"DIR")
        else:
            ctype = enc = None      # a refused sub-request never reached the type phase
            if 200 <= status < 400:
                ctype = _b(sub.content_type.split(";", 1)[0].strip()) if sub.content_type \
                    else None
                enc = _b(sub.content_encoding) if sub.content_encoding else None
            e.icon = find_item(conf.icons, path, ctype, enc, False)
            e.alt = find_item(conf.alts, path, ctype, enc, False)
            e.size = st.st_size
        e.desc = find_desc(conf.descs, path)
        if e.desc is None and opts & SCAN_HTML_TITLES and not is_dir and status == 200 \
                and _is_html(sub.content_type) and not sub.content_encoding:
            e.desc = find_title(dirname + sname)
    if q.key == "M" and e.lm < 0:
        e.lm = 0
    return e


hooks.DIRECTORY_LISTING.append(listing)
