"""mod_negotiation (httpd_py/modules/negotiation.py): Accept* parsing (q-values as Apache's
atoq, parameters), type-map parsing, the server-driven algorithm over variant tables, the
headers it adds (Vary, TCN, Content-Location, Alternates), the 406 variant list, the ETag with
a variant-list validator, fix_encoding, and the hooks (MultiViews over a real directory, the
type-map handler) on Requests built from loaded configs.  The expected choices were read off
apache2 2.4.71 with the same files and headers (tests/interop/modules/mime runs them live)."""
from __future__ import annotations

import os

import pytest

from httpd_py.config import load
from httpd_py.http import hooks
from httpd_py.http.walk import SectionWalker
from httpd_py.modules import negotiation as neg_mod
from httpd_py.modules.negotiation import (
    MapError, atoq, f32, get_entry, header_line, merge_vary, parse_type_map,
    structured_etag,
)


# -- parsing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, q", [
    ("", 1.0), ("1", 1.0), ("0", 0.0), ("0.5", 0.5), (".5", 0.5), ("0.123", 0.123),
    ("0.1239", 0.123), ("0.120", 0.12), ("  0.7", 0.7), ("abc", 1.0), ("2", 1.0),
    ("0.", 0.0), ("0.x", 0.0), ("0.05", 0.05),
])
def test_atoq(text, q):
    assert atoq(text) == f32(q)


@pytest.mark.parametrize("line, name, quality, level, charset", [
    ("text/html", "text/html", 1.0, 2.0, ""),                 # HTML defaults to level 2
    ("Text/HTML;level=3", "text/html", 1.0, 3.0, ""),
    ("text/plain; q=0.5", "text/plain", 0.5, 0.0, ""),
    ("text/plain;qs=0.25", "text/plain", 0.25, 0.0, ""),
    ('text/plain; charset="UTF-8"', "text/plain", 1.0, 0.0, "utf-8"),
    ("text/plain; Q = 0.3", "text/plain", 0.3, 0.0, ""),      # blanks around '=' allowed
    ("text/plain;q", "text/plain", 1.0, 0.0, ""),
    ("*/*;q=0.1", "*/*", 0.1, 0.0, ""),
])
def test_get_entry(line, name, quality, level, charset):
    rec, _ = get_entry(line)
    assert (rec.name, rec.quality, rec.level, rec.charset) == (name, f32(quality), level,
                                                              charset)


def test_header_line():
    assert header_line(None) is None
    assert header_line("") == []
    got = header_line("en-US, fr;q=0.5 ,de; q=0 , *;q=0.1")
    assert [(r.name, r.quality) for r in got] == [("en-us", 1.0), ("fr", f32(0.5)),
                                                  ("de", 0.0), ("*", f32(0.1))]


MAP = b"""# a comment
URI: doc.en.html
Content-Type: text/html
Content-Language: en

URI: doc.fr.html
Content-Type: text/html;
 qs=0.5
Content-Language: fr, fr-CA
Description: "french one"

URI: doc.txt
Content-Type: text/plain; charset=utf-8 (a comment)
Content-Length: 8

URI: nothing-but-a-name

Content-Language: en
Content-Type: text/html; charset=UTF-8
Body:----------en--
<p>Hello</p>
----------en--

Content-Language: de
Content-Type: text/html
Body:--de
Hallo--de trailing
"""


def test_parse_type_map():
    vs = parse_type_map(MAP, "doc.var")
    assert [v.file_name for v in vs] == ["doc.en.html", "doc.fr.html", "doc.txt", "doc.var",
                                         "doc.var"]
    en, fr, txt, body, body2 = vs
    assert (en.mime_type, en.languages, en.source_quality, en.level) == \
        ("text/html", ("en",), 1.0, 2.0)
    assert (fr.source_quality, fr.languages, fr.description) == (f32(0.5), ("fr", "fr-ca"),
                                                                 '"french one"')
    assert (txt.charset, txt.bytes) == ("utf-8", 8)
    assert (body.charset, body.languages, MAP[body.body:body.body + body.bytes]) == \
        ("utf-8", ("en",), b"<p>Hello</p>\n")
    assert MAP[body2.body:body2.body + body2.bytes] == b"Hallo"


@pytest.mark.parametrize("data", [b"URI doc.html\n", b"URI:\n"])
def test_parse_type_map_errors(data):
    with pytest.raises(MapError):
        parse_type_map(data, "x.var")


def test_parse_type_map_bad_length_stops_reading():
    logged = []
    vs = parse_type_map(b"URI: a.html\nContent-Type: text/html\n\nURI: b.html\n"
                        b"Content-Length: 12x\n\nURI: c.html\nContent-Type: text/html\n\n",
                        "x.var", logged.append)
    assert [v.file_name for v in vs] == ["a.html"] and "12x" in logged[0]


def test_parse_type_map_body_without_end_tag():
    logged = []
    assert parse_type_map(b"Content-Type: text/html\nBody:--x\nno end\n", "x.var",
                          logged.append) == []
    assert "no end tag" in logged[0]


# -- the algorithm --------------------------------------------------------------------------------
class Req:
    def __init__(self, headers=None, method="GET", env=None, conf=None):
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.method = method
        self.env = env or {}
        self.conf = conf
        self.err_headers_out = []
        self.notes = {}
        self.path_info = ""
        self.filename = "/x"
        self.client_ip = "127.0.0.1"
        self.server = self.vhost = None


class Conf:
    def __init__(self, priority=None, force=0):
        self.values = {neg_mod.LANGUAGE_PRIORITY: priority, neg_mod.FORCE_PRIORITY: force}
        self.mods = True

    def mod(self, key, default=None):
        got = self.values.get(key)
        return default if got is None else got


def spec(name, ctype="text/html", lang=None, enc=None, size=10, qs=None):
    if qs is not None:
        ctype += f"; qs={qs}"
    return neg_mod._spec_from_type(name, ctype, languages=lang, encoding=enc, bytes=size,
                                   path=f"/nonexistent/{name}")


PAGES = [spec("page.en.html", lang=("en",), size=8), spec("page.fr.html", lang=("fr",), size=9),
         spec("page.html.de", lang=("de",), size=10)]


def choose(specs, headers=None, priority=None, force=0, method="GET", env=None):
    req = Req(headers, method, env, Conf(priority, force))
    n = neg_mod.parse_accept_headers(req)
    n.variants = [neg_mod.Variant(s) for s in specs]
    status, best = neg_mod.do_negotiation(req, n, False)
    return status, (best.spec.file_name if best else None), dict(req.err_headers_out), req


@pytest.mark.parametrize("headers, priority, force, expected", [
    ({}, None, 0, "page.en.html"),                       # all equal: the first in name order
    ({"Accept-Language": "fr"}, None, 0, "page.fr.html"),
    ({"Accept-Language": "de"}, None, 0, "page.html.de"),
    ({"Accept-Language": "it"}, None, 0, 406),
    ({"Accept-Language": "it"}, ("de", "en"), neg_mod.FLP_FALLBACK, "page.html.de"),
    ({}, ("de", "en", "fr"), neg_mod.FLP_PREFER, "page.html.de"),
    ({"Accept-Language": "en-US"}, None, 0, "page.en.html"),     # the en-US -> en fiddle
    ({"Accept-Language": "en-gb, fr;q=0.5"}, None, 0, "page.fr.html"),
    ({"Accept-Language": "*"}, ("de",), neg_mod.FLP_PREFER, "page.html.de"),
    ({"Accept-Language": "fr;q=0, *;q=0.5"}, ("de", "en", "fr"),
     neg_mod.FLP_PREFER | neg_mod.FLP_FALLBACK, "page.html.de"),
    ({"Accept-Language": "fr;q=0.5, de;q=0.5"}, ("de", "fr"), 0, "page.html.de"),
    ({"Accept-Language": "fr;q=0.5, de;q=0.5"}, None, 0, "page.fr.html"),   # shorter wins
    ({"Accept": "image/png"}, None, 0, 406),
])
def test_language_choices(headers, priority, force, expected):
    status, best, _, _ = choose(PAGES, headers, priority, force)
    assert (status or best) == expected


def test_type_map_choices_as_apache():
    specs = [spec("doc.en.html", lang=("en",)), spec("doc.fr.html", lang=("fr",), qs=0.5),
             spec("doc.txt", "text/plain; charset=utf-8")]
    assert choose(specs)[1] == "doc.en.html"
    assert choose(specs, {"Accept-Language": "fr"})[1] == "doc.txt"
    assert choose(specs, {"Accept": "text/plain"})[1] == "doc.txt"
    assert choose(specs, {"Accept": "text/html;q=0.5, text/plain;q=0.4"})[1] == "doc.en.html"
    assert choose(specs, {"Accept-Language": "de"})[1] == "doc.txt"


def test_charset_choices_as_apache():
    c = [spec("c.html.latin1", "text/html; charset=iso-8859-1"),
         spec("c.html.utf8", "text/html; charset=utf-8")]
    d = [spec("d.html", "text/html"), spec("d.html.utf8", "text/html; charset=utf-8")]
    assert choose(c)[1] == "c.html.utf8" and choose(d)[1] == "d.html.utf8"
    for h in ("iso-8859-1", "koi8-r", "*;q=0.1, utf-8;q=0.05"):
        assert choose(c, {"Accept-Charset": h})[1] == "c.html.latin1"
        assert choose(d, {"Accept-Charset": h})[1] == "d.html"
    assert choose(c, {"Accept-Charset": "utf-8"})[1] == "c.html.utf8"


def test_encoding_choices_as_apache():
    e = [spec("e.html"), spec("e.html.gz", "application/gzip", enc="gzip", size=38)]
    assert choose(e)[1] == "e.html"
    assert choose(e, {"Accept-Encoding": "gzip"})[1] == "e.html.gz"
    assert choose(e, {"Accept-Encoding": "gzip;q=0"})[1] == "e.html"
    assert choose(e, {"Accept-Encoding": "identity;q=0"})[0] == 406
    assert choose(e, {"Accept-Encoding": "br"})[1] == "e.html"
    assert choose(e, {"Accept-Encoding": "gzip"}, env={"no-gzip": "1"})[1] == "e.html"
    t = [spec("t.txt", "text/plain"), spec("t.txt.gz", "application/gzip", enc="x-gzip")]
    assert choose(t, {"Accept-Encoding": "x-gzip"})[1] == "t.txt.gz"
    assert choose(t, {"Accept-Encoding": "*"})[1] == "t.txt"


def test_level_and_prefer_language():
    h = [spec("a.html3", "text/html; level=3"), spec("a.html2", "text/html; level=2")]
    assert choose(h)[1] == "a.html2"
    assert choose(h, {"Accept": "text/html;level=3"})[1] == "a.html3"
    assert choose(PAGES, env={"prefer-language": "de"})[1] == "page.html.de"
    assert choose(PAGES, {"Accept-Language": "fr"}, env={"prefer-language": "it"})[1] == \
        "page.fr.html"


def test_headers_of_a_choice():
    _, _, hdrs, req = choose(PAGES, {"Accept-Language": "fr"})
    assert hdrs == {"Content-Location": "page.fr.html", "Vary": "negotiate,accept-language",
                    "TCN": "choice"}
    _, _, hdrs, _ = choose(PAGES, {"Accept-Language": "fr"}, method="POST")
    assert hdrs == {"Vary": "accept-language"}                 # not transparent
    one = [spec("plain.txt", "text/plain")]
    assert choose(one)[2] == {"Content-Location": "plain.txt", "Vary": "negotiate",
                              "TCN": "choice"}


def test_406_headers_and_variant_list():
    status, _, hdrs, req = choose(PAGES, {"Accept-Language": "it"})
    assert status == 406
    assert hdrs["Alternates"] == (
        '{"page.en.html" 1 {type text/html} {language en} {length 8}}, '
        '{"page.fr.html" 1 {type text/html} {language fr} {length 9}}, '
        '{"page.html.de" 1 {type text/html} {language de} {length 10}}')
    assert hdrs["TCN"] == "list" and hdrs["Vary"] == "negotiate,accept-language"
    assert req.notes["variant-list"] == (
        'Available variants:\n<ul>\n'
        '<li><a href="page.en.html">page.en.html</a> , type text/html, language en</li>\n'
        '<li><a href="page.fr.html">page.fr.html</a> , type text/html, language fr</li>\n'
        '<li><a href="page.html.de">page.html.de</a> , type text/html, language de</li>\n'
        '</ul>\n')


def test_transparent_negotiation_list_is_300():
    status, best, hdrs, _ = choose(PAGES, {"Negotiate": "trans", "Accept-Language": "it"})
    assert status == 300 and hdrs["TCN"] == "list"
    status, best, hdrs, _ = choose(PAGES, {"Negotiate": "vlist"})
    assert status == 300                                   # a TCN client may not be chosen for


@pytest.mark.parametrize("q, text", [(1.0, "1"), (0.5, "0.5"), (0.25, "0.25"), (0.125, "0.125"),
                                     (0.0, "0")])
def test_alternates_quality_text(q, text):
    assert neg_mod._qstr(f32(q)) == text


def test_merge_vary_dedupes_and_joins():
    h = [("Vary", "negotiate, accept-language"), ("X", "1"), ("vary", "Accept-Language, Foo")]
    merge_vary(h, ("Accept-Encoding", "foo"))
    assert h == [("Vary", "negotiate,accept-language,Foo,Accept-Encoding"), ("X", "1")]


@pytest.mark.parametrize("etag, vlv, expected", [
    ('"8-60dd710212000"', '"661d879ed6b94"', '"8-60dd710212000;661d879ed6b94'),
    ('"7-60dd"', '"d5-60dd"', '"7-60dd;d5-60dd'),
    ('W/"7-60dd"', '"d5"', 'W/"7-60dd;d5'),
    ('"7-60dd"', 'W/"d5"', 'W/"7-60dd;d5'),
])
def test_structured_etag(etag, vlv, expected):
    assert structured_etag(etag, vlv) == expected


@pytest.mark.parametrize("ae, enc, expected", [
    ("gzip", "x-gzip", "gzip"), ("x-gzip", "gzip", "x-gzip"), ("gzip, x-gzip", "x-gzip", "gzip"),
    ("br", "x-gzip", "x-gzip"), ("x-compress", "x-gzip", "x-gzip"),
])
def test_fix_encoding(ae, enc, expected):
    assert neg_mod.fix_encoding(Req({"Accept-Encoding": ae}), enc) == expected


@pytest.mark.parametrize("name, exceptions, ok", [
    ("page", ("page",), True), ("page", ("page", "bak"), False),
    ("page.bak", ("page", "bak"), True), ("index.html", ("index", "foo"), False),
    ("a.b.c", ("a", "c"), True), ("a.c.b", ("a", "b"), True), ("a", ("b",), False),
])
def test_exceptions_match(name, exceptions, ok):
    assert neg_mod._exceptions_match(name, exceptions) is ok


# -- the hooks over real files --------------------------------------------------------------------
MODS = ("LoadModule negotiation_module /usr/lib/apache2/modules/mod_negotiation.so\n")


def site(tmp_path, files: dict, body: str = ""):
    d = tmp_path / "docs"
    for rel, data in files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        os.utime(p, (1704067200, 1704067200))
    d.mkdir(exist_ok=True)
    conf = tmp_path / "httpd.conf"
    conf.write_text(f"Listen 127.0.0.1:18080\nServerRoot {tmp_path}\nDocumentRoot {d}\n"
                    f"ErrorLog {tmp_path}/error.log\n{MODS}"
                    f"AddLanguage en .en\nAddLanguage fr .fr\nAddLanguage de .de\n"
                    f"AddHandler type-map var\n<Directory {d}>\nOptions +MultiViews\n"
                    f"</Directory>\n{body}")
    return load(str(conf), log_warnings=False), d


def request(cfg, path: str, uri: str, headers=None, method="GET", version="1.1"):
    conf = SectionWalker(cfg.main, cfg).lookup(path, False, uri).conf
    return hooks.Request(method=method, uri=uri, query="", headers=headers or {},
                         version=version, request_line=f"{method} {uri} HTTP/{version}",
                         client_ip="127.0.0.1", client_port=1, local_ip="127.0.0.1",
                         local_port=80, https=False, vhost=cfg.main, server=cfg,
                         filename=path, conf=conf, unparsed_uri=uri, start=1796432256.0)


def test_multiviews_hook(tmp_path):
    cfg, d = site(tmp_path, {"page.en.html": "english\n", "page.fr.html": "francais\n",
                             "page.html.de": "deutsch!!\n", "only.bak": "bak\n",
                             "page.html.zzz": "x\n", "dir.en/x": "x"})
    os.utime(d, (1704067200, 1704067200))
    r = request(cfg, f"{d}/page", "/page", {"accept-language": "fr"})
    assert neg_mod.multiviews(r, str(d), "page") == f"{d}/page.fr.html"
    assert dict(r.err_headers_out)["Vary"] == "negotiate,accept-language"
    assert r.notes["vlist-validator"] == '"%x"' % (1704067200 * 1_000_000)
    r = request(cfg, f"{d}/page.html", "/page.html", {"accept-language": "de"})
    assert neg_mod.multiviews(r, str(d), "page.html") == f"{d}/page.html.de"
    r = request(cfg, f"{d}/only", "/only")
    assert neg_mod.multiviews(r, str(d), "only") == f"{d}/only.bak"
    r = request(cfg, f"{d}/none", "/none")
    assert neg_mod.multiviews(r, str(d), "none") is None
    r = request(cfg, f"{d}/dir", "/dir")
    assert neg_mod.multiviews(r, str(d), "dir") is None          # directories are skipped
    r = request(cfg, f"{d}/page", "/page", {"accept-language": "it"})
    assert neg_mod.multiviews(r, str(d), "page") == 406


def test_multiviews_names_matched_none_negotiable_is_404(tmp_path):
    cfg, d = site(tmp_path, {"t.php": "x", "w.foo": "y"}, "AddHandler type-map .php\n")
    for name in ("t", "w"):
        r = request(cfg, f"{d}/{name}", f"/{name}")
        assert neg_mod.multiviews(r, str(d), name) == 404


def test_multiviews_needs_the_module(tmp_path):
    global MODS
    saved, MODS = MODS, ""
    try:
        cfg, d = site(tmp_path, {"page.en.html": "x"})
    finally:
        MODS = saved
    r = request(cfg, f"{d}/page", "/page")
    assert neg_mod.multiviews(r, str(d), "page") is None


def test_type_map_handler_redirects_to_the_uri_variant(tmp_path):
    uri_only = MAP[:MAP.index(b"URI: nothing")]             # no Body: records (transparent)
    cfg, d = site(tmp_path, {"tm/doc.var": uri_only, "tm/doc.en.html": "EN", "tm/doc.fr.html": "FR",
                             "tm/doc.txt": "TXT doc\n"})
    r = request(cfg, f"{d}/tm/doc.var", "/tm/doc.var", {"accept": "text/plain"},
                version="1.0")
    assert neg_mod.handle_map_file(r) == hooks.OK
    assert r.internal_redirect == "/tm/doc.txt"
    h = dict(r.err_headers_out)
    assert (h["Content-Location"], h["TCN"]) == ("doc.txt", "choice")
    assert h["Vary"] == "negotiate,accept,accept-language,accept-charset"
    st = os.stat(f"{d}/tm/doc.var")
    assert r.notes["vlist-validator"] == '"%x-%x"' % (st.st_size, st.st_mtime_ns // 1000)
    assert r.notes["no-cache"] is True                     # HTTP/1.0, CacheNegotiatedDocs Off


def test_type_map_handler_inline_body(tmp_path):
    cfg, d = site(tmp_path, {"tm/inline.var": MAP})
    r = request(cfg, f"{d}/tm/inline.var", "/tm/inline.var", {"accept-language": "de"})
    resp = neg_mod.handle_map_file(r)
    assert isinstance(resp, hooks.Response)
    assert (resp.status, resp.body, resp.content_type) == (200, b"Hallo", "text/html")
    assert ("Content-Language", "de") in resp.headers
    assert dict(r.err_headers_out) == {"Vary": "accept,accept-language,accept-charset"}
    r = request(cfg, f"{d}/tm/inline.var", "/tm/inline.var", method="PUT")
    assert neg_mod.handle_map_file(r) == 405


def test_type_map_handler_missing_variant_and_missing_map(tmp_path):
    cfg, d = site(tmp_path, {"tm/m.var": b"URI: gone.html\nContent-Type: text/html\n"})
    r = request(cfg, f"{d}/tm/m.var", "/tm/m.var")
    assert neg_mod.handle_map_file(r) == hooks.OK          # the redirect answers 404
    assert r.internal_redirect == "/tm/gone.html"
    assert dict(r.err_headers_out)["Content-Location"] == "gone.html"
    r = request(cfg, f"{d}/tm/nothere.var", "/tm/nothere.var")
    assert neg_mod.handle_map_file(r) == 404


def test_output_rewrites_etag_expires_and_encoding(tmp_path):
    cfg, d = site(tmp_path, {})
    r = request(cfg, f"{d}/x", "/x", {"accept-encoding": "gzip"})
    r.notes["vlist-validator"] = '"abc"'
    r.notes["no-cache"] = True
    r.content_encoding = "x-gzip"
    resp = hooks.Response(200, [("ETag", '"1-2"'), ("Content-Encoding", "x-gzip")], b"x")
    out = neg_mod.output(r, resp)
    assert out.header("ETag") == '"1-2;abc'
    assert out.header("Expires") == "Sat, 05 Dec 2026 00:57:36 GMT"
    assert out.header("Content-Encoding") == "gzip"


def test_directives(tmp_path):
    cfg, d = site(tmp_path, {}, f"<Directory {tmp_path}/docs/x>\nLanguagePriority de en\n"
                                f"LanguagePriority fr\nForceLanguagePriority Prefer\n"
                                f"ForceLanguagePriority Fallback\n</Directory>\n"
                                f"CacheNegotiatedDocs On\n")
    conf = SectionWalker(cfg.main, cfg).lookup(f"{d}/x/y", False, "/x/y").conf
    assert conf.mod(neg_mod.LANGUAGE_PRIORITY) == ("de", "en", "fr")
    assert conf.mod(neg_mod.FORCE_PRIORITY) == neg_mod.FLP_PREFER | neg_mod.FLP_FALLBACK
    assert cfg.main.mod(neg_mod.CACHE_NEGOTIATED) is True


@pytest.mark.parametrize("line, msg", [
    ("ForceLanguagePriority None Prefer", "Cannot combine ForceLanguagePriority options None "
                                          "and Prefer"),
    ("ForceLanguagePriority Prefer None", "Cannot combine ForceLanguagePriority options with "
                                          "None"),
    ("ForceLanguagePriority Sometimes", "Invalid ForceLanguagePriority option Sometimes"),
    ("CacheNegotiatedDocs maybe", "CacheNegotiatedDocs must be On or Off"),
])
def test_directive_errors(tmp_path, line, msg):
    from httpd_py.errors import ConfigError
    with pytest.raises(ConfigError) as e:
        site(tmp_path, {}, line + "\n")
    assert e.value.msg.startswith(msg)
