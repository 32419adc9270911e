"""mod_autoindex: the pure pieces (apr_strfsize, escaping, wildcard and fnmatch matching,
strnatcmp, the C=/O=/F=/V=/P= parser, description cutting, the layouts), IndexOptions parsing
and merging as Apache's add_opts / merge_autoindex_configs (with the walk grouping), config
errors with Apache's wording, and the DIRECTORY_LISTING hook on a small tree with a Request
built directly (the pipeline's look-ups given as fakes).  The same listings are compared with
apache2 byte for byte in tests/interop/modules/autoindex."""
from __future__ import annotations

import os
import time

import pytest

from httpd_py.config import load
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.http.walk import SectionWalker
from httpd_py.modules import autoindex as ai
from httpd_py.modules.autoindex import (
    EMPTY, FANCY_INDEXING, FOLDERS_FIRST, SUPPRESS_ICON, SUPPRESS_LAST_MOD, SUPPRESS_SIZE,
    TABLE_INDEXING, VERSION_SORT, Entry, IndexConf, Sub, effective, escape_html, escape_path,
    fn_match, fnmatch_test, merge, parse_query, strfsize, strnatcmp, terminate_description,
    wild_match,
)

MODS = "/usr/lib/apache2/modules"


# ---- formatting ----------------------------------------------------------------------------
@pytest.mark.parametrize("size, text", [
    (-1, b"  - "), (0, b"  0 "), (5, b"  5 "), (972, b"972 "), (973, b"1.0K"),
    (1024, b"1.0K"), (1536, b"1.5K"), (9 * 1024 - 1, b"9.0K"), (9 * 1024 + 972, b"9.9K"),
    (9 * 1024 + 973, b" 10K"), (10240, b" 10K"), (511 * 1024 + 511, b"511K"),
    (511 * 1024 + 512, b"512K"), (972 * 1024 + 1023, b"973K"), (973 * 1024, b"1.0M"),
    (1 << 20, b"1.0M"), (5 * (1 << 20) + 123, b"5.0M"), (3 << 30, b"3.0G"),
    (5 << 40, b"5.0T"), (100_000, b" 98K"),
])
def test_strfsize_as_apr(size, text):
    assert strfsize(size) == text


def test_escape_html_only_lt_gt_amp_quot():
    assert escape_html(b"a<b>&\"'\xc3\xa9") == b"a&lt;b&gt;&amp;&quot;'\xc3\xa9"
    assert escape_html(b"plain") == b"plain"


@pytest.mark.parametrize("name, href", [
    (b"a b.txt", b"a%20b.txt"), (b"q?.txt", b"q%3f.txt"), (b"h#.txt", b"h%23.txt"),
    (b"caf\xc3\xa9", b"caf%c3%a9"), (b"l\xe9", b"l%e9"), (b"a:b", b"./a:b"),
    (b"dir:x/", b"./dir:x/"), (b"/p:q/", b"/p:q/"), (b"$-_.+!*'(),;@&=~", b"$-_.+!*'(),;@&=~"),
    (b"%20", b"%2520"), (b"[x]", b"%5bx%5d"), (b"t\tab", b"t%09ab"), (b'"', b"%22"),
    (b"<", b"%3c"),
])
def test_escape_path_as_ap_os_escape_path(name, href):
    assert escape_path(name) == href


def test_escape_path_partial_has_no_dot_slash():
    assert escape_path(b"a:b*", partial=True) == b"a:b*"


# ---- matching -----------------------------------------------------------------------------------
@pytest.mark.parametrize("s, pattern, icase, ok", [
    (b"/x/a.txt", b"*.txt", False, True), (b"/x/a.TXT", b"*.txt", False, False),
    (b"text/plain", b"TEXT/*", True, True), (b"a/b", b"a*b", False, True),
    (b"ab", b"a?", False, True), (b"a", b"a?", False, False), (b"", b"*", False, True),
    (b"a.b", b"a.b", False, True), (b"axb", b"a.b", False, False), (b"x[1]", b"x[1]", False, True),
])
def test_wild_match_as_ap_strcmp_match(s, pattern, icase, ok):
    assert wild_match(s, pattern, icase) is ok


@pytest.mark.parametrize("pattern, yes", [
    (b"*.txt", True), (b"a?", True), (b"[ab]", True), (b"[ab", False), (b"]", False),
    (b"\\*", False), (b"plain", False), (b"a\\", False),
])
def test_fnmatch_test(pattern, yes):
    assert fnmatch_test(pattern) is yes


@pytest.mark.parametrize("pattern, name, ok", [
    (b"*.txt", b"a.txt", True), (b"*.txt", b".a.txt", False), (b".*", b".a", True),
    (b"[ab]*", b"b.c", True), (b"[!ab]*", b"b.c", False), (b"[^ab]*", b"c", True),
    (b"[a-c]", b"b", True), (b"[]]", b"]", True), (b"[[]x]*", b"[x].txt", True),
    (b"[x", b"[x", True), (b"?", b"\xc3", True), (b"\\*", b"\\x", True),
])
def test_fn_match_for_p_patterns(pattern, name, ok):
    assert fn_match(pattern, name, noescape=True, period=True) is ok


def test_fn_match_escapes_for_descriptions():
    assert fn_match(b"*a\\*b*", b"xa*bx")
    assert not fn_match(b"*a\\*b*", b"xaYbx")


# ---- natural order ---------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, sign", [
    (b"file2", b"file10", -1), (b"file10", b"file2", 1), (b"file02", b"file1", -1),
    (b"v1.9", b"v1.10", -1), (b"x0.25", b"x0.5", 1),   # runs after "." are whole numbers (b"a 2", b"a  10", -1),
    (b"same", b"same", 0), (b"caf\xc3\xa9", b"cafe", -1),   # signed char: UTF-8 first
    (b"File3", b"file1", -1), (b"10", b"9", 1),
])
def test_strnatcmp(a, b, sign):
    r = strnatcmp(a, b)
    assert (r > 0) - (r < 0) == sign


def _reference_strnatcmp(a: bytes, b: bytes, fold: bool) -> int:
    """APR's strnatcmp0 read literally (signed chars, one character a step): the oracle."""
    def at(s, i):
        return s[i] if i < len(s) else 0

    def digit(c):
        return 0x30 <= c <= 0x39

    def right(i, j):
        bias = 0
        while True:
            ca, cb = at(a, i), at(b, j)
            if not digit(ca) and not digit(cb):
                return bias
            if not digit(ca):
                return -1
            if not digit(cb):
                return 1
            if ca < cb and not bias:
                bias = -1
            elif ca > cb and not bias:
                bias = 1
            i, j = i + 1, j + 1

    def left(i, j):
        while True:
            ca, cb = at(a, i), at(b, j)
            if not digit(ca) and not digit(cb):
                return 0
            if not digit(ca):
                return -1
            if not digit(cb):
                return 1
            if ca < cb:
                return -1
            if ca > cb:
                return 1
            i, j = i + 1, j + 1

    i = j = 0
    while True:
        ca, cb = at(a, i), at(b, j)
        while ca in b" \t\n\v\f\r":
            i += 1
            ca = at(a, i)
        while cb in b" \t\n\v\f\r":
            j += 1
            cb = at(b, j)
        if digit(ca) and digit(cb):
            r = (left if ca == 0x30 or cb == 0x30 else right)(i, j)
            if r:
                return r
        if not ca and not cb:
            return 0
        if fold:
            ca = ca - 32 if 0x61 <= ca <= 0x7A else ca
            cb = cb - 32 if 0x61 <= cb <= 0x7A else cb
        sa, sb = (ca - 256 if ca > 127 else ca), (cb - 256 if cb > 127 else cb)
        if sa < sb:
            return -1
        if sa > sb:
            return 1
        i, j = i + 1, j + 1


def test_strnatcmp_matches_the_literal_reading_on_random_names():
    import random
    rnd = random.Random(7)
    alphabet = [b"0", b"1", b"9", b"00", b"a", b"A", b"b", b".", b" ", b"\t", b"\xc3\xa9", b"~"]
    names = [b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 7)))
             for _ in range(400)]
    names += [b"file1", b"file01", b"file10", b"file 1", b"file  10", b"x0.25", b"x0.5"]
    for a in names:
        for b in names[:60]:
            for fold in (False, True):
                want = _reference_strnatcmp(a, b, fold)
                got = strnatcmp(a, b, fold)
                assert (got > 0) - (got < 0) == want, (a, b, fold)


def test_strnatcasecmp_folds_ascii():
    assert strnatcmp(b"File3", b"file10", True) < 0
    assert strnatcmp(b"ABC", b"abc", True) == 0


# ---- the query ------------------------------------------------------------------------------------
def test_query_sets_key_order_format_version_pattern():
    q = parse_query(b"C=S;O=D;F=2;V=0;P=*.txt", "N", "A", FANCY_INDEXING | VERSION_SORT)
    assert (q.key, q.direction, q.pattern) == ("S", "D", b"*.txt")
    assert q.opts & TABLE_INDEXING and not q.opts & VERSION_SORT
    assert q.colargs == b";F=2;V=0;P=*.txt"


@pytest.mark.parametrize("query, key, direction", [
    (b"C=X;O=D", "N", "A"),            # an unknown value stops the parsing
    (b"C=n", "N", "A"), (b"garbage;C=S", "N", "A"), (b"O=D&C=M", "M", "D"),
    (b"C=S;", "S", "A"), (b"C=SX", "N", "A"),
])
def test_query_stops_at_the_first_unknown_word(query, key, direction):
    q = parse_query(query, "N", "A", 0)
    assert (q.key, q.direction) == (key, direction)


def test_query_bad_pattern_is_ignored_and_empty_clears():
    assert parse_query(b"P=%zz", "N", "A", 0).pattern is None
    assert parse_query(b"P=%2F", "N", "A", 0).pattern is None
    q = parse_query(b"P=a*;P=", "N", "A", 0)
    assert q.pattern is None and q.colargs == b";P=a*"     # as Apache: the link keeps it


def test_query_ignored_with_ignore_client():
    q = parse_query(b"C=S;O=D", "N", "A", ai.IGNORE_CLIENT)
    assert (q.key, q.direction) == ("N", "A") and q.opts & ai.SUPPRESS_COLSORT


# ---- descriptions -----------------------------------------------------------------------------
@pytest.mark.parametrize("desc, opts, width, out", [
    (b"short", 0, 23, b"short"),
    (b"0123456789abcdef", 0, 10, b"012345678>"),
    (b"<b>0123456789</b>abcdef", 0, 10, b"<b>0123456789</b>"),   # a tag right at the cut
    (b"&amp;123456789abc", 0, 10, b"&amp;12345678>"),
    (b"0123456789abcdef", SUPPRESS_SIZE, 10, b"0123456789abcdef"),
    (b"0" * 40, SUPPRESS_ICON | SUPPRESS_LAST_MOD, 10, b"0" * 34 + b">"),
    (b"open <b never closed", 0, 10, b"open <b never closed"),   # Apache reads past the end
])
def test_terminate_description(desc, opts, width, out):
    assert terminate_description(EMPTY, desc, opts, width) == out


# ---- IndexOptions and the merge ---------------------------------------------------------------
class W:
    """The walk context a handler sees (only what autoindex reads)."""

    def __init__(self):
        self.store: dict = {}
        self.dir_section = None
        self.htaccess = None
        self.name = "IndexOptions"

    def own(self, key, default=None):
        return self.store.get(key, default)

    def set(self, key, value):
        self.store[key] = value


def opts_of(*lines: str) -> IndexConf:
    w = W()
    for line in lines:
        ai.index_options(w, line.split())
    return w.store[ai.KEY]


def test_plain_words_replace_and_reset_increments():
    c = opts_of("+FoldersFirst", "FancyIndexing")
    assert c.opts & FANCY_INDEXING and not c.inc
    c = opts_of("FancyIndexing", "+HTMLTable -SuppressSize")
    assert c.inc == TABLE_INDEXING and c.dec == SUPPRESS_SIZE


@pytest.mark.parametrize("line, message", [
    ("+None", "Cannot combine '+' or '-' with 'None' keyword"),
    ("None FancyIndexing", "Cannot combine other IndexOptions keywords with 'None'"),
    ("Bogus", "Invalid directory indexing option"),
    ("-IconWidth=3", "Cannot combine '-' with IconWidth=n"),
    ("NameWidth", "NameWidth with no value may only appear as '-NameWidth'"),
    ("NameWidth=4", "NameWidth value must be greater than 5"),
    ("-NameWidth=9", "Cannot combine '-' with NameWidth=n"),
    ("DescriptionWidth=11", "DescriptionWidth value must be greater than 12"),
    ("+DescriptionWidth", "DescriptionWidth with no value may only appear as "
                          "'-DescriptionWidth'"),
    ("NameWidth=abc", "is not a whole number"),
])
def test_index_options_errors(line, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("+", r"\+")):
        opts_of(line)


def test_none_wins_when_last_and_widths_parse():
    c = opts_of("FancyIndexing None")
    assert c.opts == ai.NO_OPTIONS
    c = opts_of("NameWidth=* DescriptionWidth=40 IconWidth IconHeight=7 Charset=X Type=t/p")
    assert (c.name_adjust, c.desc_width, c.desc_adjust) == (ai.ADJ_STAR, 40, ai.ADJ_FIXED)
    assert (c.icon_width, c.icon_height, c.charset, c.ctype) == (20, 7, b"X", b"t/p")


def sec(origin: str, *lines: str) -> IndexConf:
    return IndexConf(**{**opts_of(*lines).__dict__, "origin": origin})


DEBIAN = sec("server", "FancyIndexing VersionSort HTMLTable NameWidth=*")


def test_incremental_section_adds_to_the_server_options():
    e = effective(merge(DEBIAN, sec("directory", "-HTMLTable +FoldersFirst")))
    assert e.opts & FANCY_INDEXING and e.opts & FOLDERS_FIRST and not e.opts & TABLE_INDEXING
    assert e.name_adjust == ai.ADJ_STAR


def test_non_incremental_section_replaces_and_drops_its_own_later_increments():
    e = effective(merge(DEBIAN, sec("directory", "FancyIndexing", "+HTMLTable")))
    assert e.opts & FANCY_INDEXING and not e.opts & (TABLE_INDEXING | VERSION_SORT)


def test_server_level_increments_are_not_applied_without_a_merge():
    raw = sec("server", "FancyIndexing", "+HTMLTable")
    assert not effective(raw).opts & TABLE_INDEXING
    assert effective(merge(raw, sec("files", "+SuppressSize"))).opts & TABLE_INDEXING


def test_two_incremental_sections_of_one_walk_drop_the_server_options():
    # Apache merges the directory walk's sections together first: the result is no longer
    # "unset" and replaces the server's FancyIndexing (checked against apache2)
    chain = merge(merge(DEBIAN, sec("directory", "-HTMLTable +SuppressSize")),
                  sec("directory", "+HTMLTable -SuppressSize +SuppressLastModified"))
    e = effective(chain)
    assert not e.opts & FANCY_INDEXING and e.opts & SUPPRESS_LAST_MOD
    # the same two in different walks keep the server's options
    e = effective(merge(merge(DEBIAN, sec("directory", "-HTMLTable +SuppressSize")),
                        sec("location", "+HTMLTable -SuppressSize +SuppressLastModified")))
    assert e.opts & FANCY_INDEXING


def test_none_clears_increments_below():
    e = effective(merge(merge(DEBIAN, sec("directory", "None")), sec("location", "+IconsAreLinks")))
    assert e.opts & ai.ICONS_ARE_LINKS and not e.opts & FANCY_INDEXING


def test_lists_put_the_section_first_and_ignore_reset():
    w = W()
    ai.index_ignore(w, ["*.a"])
    base = w.store[ai.KEY]
    w2 = W()
    w2.dir_section = type("N", (), {"lname": "<directory", "args": "/x>", "name": "<Directory"})()
    ai.index_ignore(w2, ["*.b"])
    ai._icon_handler(ai.BY_PATH)(w2, ["/i.gif", ".c"])
    e = effective(merge(base, w2.store[ai.KEY]))
    assert [i.to for i in e.ignores] == [b"*.b", b"*.a"]
    assert e.ignores[0].scope == b"/x/*"
    ai.index_ignore_reset(w2, ["On"])
    e = effective(merge(base, w2.store[ai.KEY]))
    assert [i.to for i in e.ignores] == [b"*.b"]


def test_add_icon_with_alt_as_apache_splits_it():
    w = W()
    ai._icon_handler(ai.BY_TYPE)(w, ["(TXT,/icons/text.gif)", "text/*"])
    ai._icon_handler(ai.BY_PATH)(w, ["(ODD)", ".x"])
    ai._icon_handler(ai.BY_ENCODING)(w, ["/z.gif", "X-GZIP"])
    c = w.store[ai.KEY]
    assert [(i.data, i.to) for i in c.icons] == [(b"/icons/text.gif", b"text/*"),
                                                  (b"", b"*.x"), (b"/z.gif", b"x-gzip")]
    assert [(i.data, i.to) for i in c.alts] == [(b"TXT", b"text/*"), (b"ODD)", b"*.x")]
    with pytest.raises(ConfigError, match="missing closing paren"):
        ai._icon_handler(ai.BY_PATH)(w, ["(NOPE", ".y"])


def test_find_item_order_type_and_encoding():
    icons = (ai.make_item(ai.BY_ENCODING, b"x-gzip", b"", b"/cmp"),
             ai.make_item(ai.BY_TYPE, b"text/*", b"", b"/txt"),
             ai.make_item(ai.BY_PATH, b".txt", b"", b"/dottxt"),
             ai.make_item(ai.BY_PATH, b"^^DIRECTORY^^", b"", b"/dir"))
    assert ai.find_item(icons, b"/d/a.txt", b"TEXT/plain", None, False) == b"/txt"
    assert ai.find_item(icons, b"/d/a.txt", b"text/plain", b"x-gzip", False) == b"/cmp"
    assert ai.find_item(icons, b"/d/a.txt", None, None, True) == b"/dottxt"
    assert ai.find_item(icons, b"^^DIRECTORY^^", None, None, True) == b"/dir"
    scoped = (ai.make_item(ai.BY_PATH, b".txt", b"/loc/", b"/never"),)
    assert ai.find_item(scoped, b"/srv/loc/a.txt", None, None, True) is None


def test_descriptions_substring_wildcards_and_paths():
    descs = (ai.make_desc(b"Sub", b"sub/x"), ai.make_desc(b"Txt", b"*.txt"),
             ai.make_desc(b"Plain", b"read"))
    assert ai.find_desc(descs, b"/w/sub/x.c") == b"Sub"
    assert ai.find_desc(descs, b"/w/a.txt") == b"Txt"
    assert ai.find_desc(descs, b"/w/thread.c") == b"Plain"     # a substring, as Apache
    assert ai.find_desc(descs, b"/w/other") is None


# ---- the layouts --------------------------------------------------------------------------------
def entries():
    t = 1_700_000_000 * 1_000_000
    return [Entry(b"/up/", icon=b"/back.gif", alt=b"PARENTDIR"),
            Entry(b"a.txt", size=6, lm=t, icon=b"/t.gif", alt=b"TXT", desc=b"Text"),
            Entry(b"sub/", lm=t, icon=b"/d.gif", alt=b"DIR")]


def test_plain_layout():
    q = parse_query(b"", "N", "A", 0)
    assert ai.output_entries(entries(), EMPTY, 0, q) == (
        b'<ul><li><a href="/up/"> Parent Directory</a></li>\n'
        b'<li><a href="a.txt"> a.txt</a></li>\n<li><a href="sub/"> sub/</a></li>\n</ul>\n')


def test_pre_layout_columns(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        q = parse_query(b"C=N;O=A", "N", "A", FANCY_INDEXING)
        out = ai.output_entries(entries(), EMPTY, FANCY_INDEXING, q)
    finally:
        monkeypatch.undo()
        time.tzset()
    lines = out.split(b"\n")
    assert lines[0].startswith(b'<pre>      <a href="?C=N;O=D">Name</a>' + b" " * 20
                               + b'<a href="?C=M;O=A">Last modified</a>')
    assert lines[1] == (b'<img src="/t.gif" alt="[TXT]"> <a href="a.txt">a.txt</a>' + b" " * 18
                        + b" 2023-11-14 22:13    6   Text")
    assert out.endswith(b"<hr></pre>\n")


def test_table_layout_with_style_sheet_and_suppressions():
    conf = IndexConf(style_sheet=b"/s.css", name_adjust=ai.ADJ_STAR)
    opts = TABLE_INDEXING | SUPPRESS_LAST_MOD | SUPPRESS_SIZE | SUPPRESS_ICON
    out = ai.output_entries(entries(), conf, opts, parse_query(b"", "N", "A", opts))
    assert out.startswith(b'  <table id="indexlist">\n   <tr class="indexhead"><th '
                          b'class="indexcolname"><a href="?C=N;O=D">Name</a></th><th '
                          b'class="indexcoldesc"><a href="?C=D;O=A">Description</a></th></tr>\n'
                          b'   <tr class="indexbreakrow"><th colspan="2"><hr></th></tr>\n')
    assert b'   <tr class="odd"><td class="indexcolname"><a href="a.txt">a.txt</a></td><td ' \
           b'class="indexcoldesc">Text</td></tr>\n' in out


def test_sort_parent_first_folders_first_and_descending():
    es = [Entry(b"b"), Entry(b"/p/"), Entry(b"A/", isdir=True), Entry(b"a")]
    es.sort(key=ai.sort_key_fn("N", False, False, False))
    assert [e.name for e in es] == [b"/p/", b"A/", b"b", b"a"]
    es.sort(key=ai.sort_key_fn("N", True, False, True))
    assert [e.name for e in es] == [b"/p/", b"A/", b"a", b"b"]


# ---- through a loaded configuration and the hook ----------------------------------------------
def config(tmp_path, text: str, files=("a.txt", "b.html", "sub/")):
    docroot = tmp_path / "htdocs"
    (docroot / "d").mkdir(parents=True, exist_ok=True)
    for f in files:
        p = docroot / "d" / f
        if f.endswith("/"):
            p.mkdir(exist_ok=True)
        else:
            p.write_bytes(b"hello\n")
    conf = tmp_path / "h.conf"
    conf.write_text(f"LoadModule autoindex_module {MODS}/mod_autoindex.so\n"
                    f"ServerName localhost\nListen 127.0.0.1:8080\n"
                    f'DocumentRoot "{docroot}"\n<Directory "{docroot}">\nOptions Indexes\n'
                    f"</Directory>\n" + text)
    return load(str(conf), server_root=str(tmp_path), log_warnings=False), docroot


def request(cfg, docroot, path="/d/", *, method="GET", query="", headers=None, **extra):
    filename = str(docroot) + path
    conf = SectionWalker(cfg.main, cfg).lookup(filename.rstrip("/"), True, path).conf
    req = hooks.Request(method=method, uri=path, query=query,
                        headers={"host": "localhost:8080", **(headers or {})}, version="1.1",
                        request_line=f"{method} {path} HTTP/1.1", client_ip="127.0.0.1",
                        client_port=40000, local_ip="127.0.0.1", local_port=8080, https=False,
                        vhost=cfg.main, hostname="localhost", filename=filename, is_dir=True,
                        conf=conf, server=cfg, start=time.time())
    for k, v in extra.items():
        setattr(req, k, v)
    return req


def test_hook_is_registered_and_lists(tmp_path):
    assert ai.listing in hooks.DIRECTORY_LISTING
    cfg, docroot = config(tmp_path, "IndexOptions FancyIndexing\n")
    resp = ai.listing(request(cfg, docroot), str(docroot / "d"))
    assert resp.status == 200
    assert resp.header("Content-Type") == "text/html;charset=ISO-8859-1"
    assert b"<title>Index of /d</title>" in resp.body
    assert b'<a href="a.txt">a.txt</a>' in resp.body and b'<a href="sub/">sub/</a>' in resp.body
    assert resp.body.endswith(b"</body></html>\n")


def test_head_has_no_body_and_post_is_declined(tmp_path):
    cfg, docroot = config(tmp_path, "")
    resp = ai.listing(request(cfg, docroot, method="HEAD"), str(docroot / "d"))
    assert resp.status == 200 and resp.body == b""
    assert ai.listing(request(cfg, docroot, method="POST"), str(docroot / "d")) is None


def test_not_loaded_declines(tmp_path):
    cfg, docroot = config(tmp_path, "")
    req = request(cfg, docroot)
    req.server = type("S", (), {"loaded_modules": ()})()
    assert ai.listing(req, str(docroot / "d")) is None


def test_unreadable_directory_is_403(tmp_path):
    cfg, docroot = config(tmp_path, "")
    req = request(cfg, docroot, "/nothere/")
    assert ai.listing(req, str(docroot / "nothere")) == 403


def test_track_modified_and_charset_type(tmp_path):
    cfg, docroot = config(tmp_path, "IndexOptions TrackModified Charset=UTF-8 Type=text/plain\n")
    resp = ai.listing(request(cfg, docroot), str(docroot / "d"))
    assert resp.header("Content-Type") == "text/plain;charset=UTF-8"
    st = os.stat(docroot / "d")
    assert resp.header("ETag") == f'"{st.st_size:x}-{st.st_mtime_ns // 1000:x}"'
    assert resp.header("Last-Modified")


def test_signature_footer_from_the_core_keys(tmp_path):
    cfg, docroot = config(tmp_path, "ServerSignature On\nServerTokens Prod\n")
    resp = ai.listing(request(cfg, docroot), str(docroot / "d"))
    assert resp.body.endswith(b"<address>httpd-py Server at localhost Port 8080</address>\n"
                              b"</body></html>\n")


def test_pipeline_lookups_filter_entries_and_find_the_header(tmp_path):
    cfg, docroot = config(tmp_path, "IndexOptions FancyIndexing\nHeaderName /hdr.html\n",
                          files=("open.txt", "secret.txt", "auth.txt"))
    (docroot / "hdr.html").write_bytes(b"<h2>hdr</h2>\n")
    seen = []

    def lookup_dirent(filename, uri, is_dir):
        seen.append(uri)
        status = {"secret.txt": 403, "auth.txt": 401}.get(os.path.basename(filename), 200)
        return Sub(status, filename, not is_dir, is_dir, "text/plain")

    def lookup_uri(uri):
        return Sub(200, str(docroot) + uri, True, False, "text/html")

    req = request(cfg, docroot, lookup_dirent=lookup_dirent, lookup_uri=lookup_uri)
    body = ai.listing(req, str(docroot / "d")).body
    assert b"open.txt" in body and b"secret.txt" not in body and b"auth.txt" not in body
    assert "/d/open.txt" in seen
    assert b"<h2>hdr</h2>\n" in body and b"<h1>" not in body
    cfg, docroot = config(tmp_path, "IndexOptions FancyIndexing ShowForbidden\n")
    body = ai.listing(request(cfg, docroot, lookup_dirent=lookup_dirent), str(docroot / "d")).body
    assert b"secret.txt" in body and b"auth.txt" in body


def test_request_allowed_leaves_out_refused_entries_and_their_types(tmp_path):
    cfg, docroot = config(tmp_path, "IndexOptions FancyIndexing\n"
                                    "AddIconByType (TXT,/t.gif) text/*\n",
                          files=("open.txt", "secret.txt", "sub/"))
    asked = []

    def allowed(filename, is_dir, uri):
        asked.append((os.path.basename(filename), is_dir, uri))
        return not filename.endswith("secret.txt")

    body = ai.listing(request(cfg, docroot, allowed=allowed), str(docroot / "d")).body
    assert b"open.txt" in body and b"secret.txt" not in body
    assert ("sub", True, "/d/sub/") in asked and ("open.txt", False, "/d/open.txt") in asked
    cfg, docroot = config(tmp_path, "IndexOptions FancyIndexing ShowForbidden\n"
                                    "AddIconByType (TXT,/t.gif) text/*\n")
    body = ai.listing(request(cfg, docroot, allowed=allowed), str(docroot / "d")).body
    # listed, but a refused sub-request has no type: no icon by type
    assert b'<img src="/t.gif" alt="[TXT]"> <a href="open.txt">' in body
    assert b'\n      <a href="secret.txt">secret.txt</a>' in body        # no icon, no alt


def test_header_and_readme_text_files_are_escaped(tmp_path):
    cfg, docroot = config(tmp_path, "HeaderName H.txt\nReadmeName R.txt\n")
    (docroot / "d" / "H.txt").write_bytes(b"a <b> & c\n")
    (docroot / "d" / "R.txt").write_bytes(b"tail\0hidden\n")
    body = ai.listing(request(cfg, docroot), str(docroot / "d")).body
    assert b"<pre>\na &lt;b&gt; &amp; c\n</pre>\n" in body and b"<h1>" not in body
    assert body.endswith(b"<pre>\ntail</pre>\n</body></html>\n")


@pytest.mark.parametrize("line, message", [
    ("IndexOptions Bogus", "Invalid directory indexing option"),
    ("IndexOrderDefault Up Name", "First keyword must be 'Ascending' or 'Descending'"),
    ("IndexOrderDefault Ascending Colour", "Second keyword must be 'Name', 'Date', 'Size', or "
                                           "'Description'"),
    ("FancyIndexing on", "The FancyIndexing directive is no longer supported"),
    ("AddIcon (X /i.gif .x", "missing closing paren"),
    ("IndexIgnoreReset maybe", "must be On or Off"),
])
def test_config_errors_name_the_line(tmp_path, line, message):
    with pytest.raises(ConfigError, match=message) as e:
        config(tmp_path, f"\n{line}\n")
    assert e.value.line == 9 and e.value.file.endswith("h.conf")


def test_htaccess_needs_allowoverride_indexes(tmp_path):
    cfg, docroot = config(tmp_path, "")
    from httpd_py.config import load_htaccess
    from httpd_py.config.dirconf import Overrides
    path = str(docroot / "d" / ".htaccess")
    with pytest.raises(ConfigError, match="not allowed here"):
        load_htaccess(path, "IndexOptions +FoldersFirst\n", cfg, Overrides(frozenset({"limit"})))
    conf = load_htaccess(path, "IndexIgnore *.c\n", cfg, Overrides(frozenset({"indexes"})))
    got = conf.mod(ai.KEY)
    assert got.origin == "directory" and got.ignores[0].scope == (str(docroot / "d") + "/*").encode()


def test_debian_autoindex_conf_loads(tmp_path):
    if not os.path.exists("/etc/apache2/mods-available/autoindex.conf"):
        (pytest.fail if os.environ.get("CI") else pytest.skip)("Debian's autoindex.conf is not installed (CI: scripts/test installs apache2)")
    cfg, docroot = config(tmp_path, "Include /etc/apache2/mods-available/autoindex.conf\n")
    e = effective(cfg.main.dir.mod(ai.KEY))
    assert e.opts & FANCY_INDEXING and e.opts & TABLE_INDEXING and e.charset == b"UTF-8"
    assert e.readme == b"README.html" and e.header == b"HEADER.html"
    assert ai.find_item(e.icons, b"^^BLANKICON^^", None, None, True) == b"/icons/blank.gif"
