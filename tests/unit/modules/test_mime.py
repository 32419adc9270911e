"""mod_mime (httpd_py/modules/mime.py): find_ct over names (every extension, in order),
analyze_ct's rebuilding of the type, the per-directory merge with Remove*, the directive rows
(errors as Apache words them) and the type_checker hook on a Request built from a loaded
config and the section walk.  Expected values were read off apache2 2.4 (tests/interop/modules/
mime compares the same cases live)."""
from __future__ import annotations

import pytest

from httpd_py.config import load
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.http.walk import SectionWalker
from httpd_py.modules import mime
from httpd_py.modules.mime import ExtInfo, MimeDir, analyze_ct, rebuild_type, resolve

TYPES = {"html": "text/html", "txt": "text/plain", "gz": "application/gzip",
         "bak": "application/x-trash", "xyz": "chemical/x-xyz", "css": "text/css"}


def md(**exts) -> MimeDir:
    return MimeDir.make({k: ExtInfo(**v) for k, v in exts.items()})


DEBIANISH = md(en={"language": "en"}, fr={"language": "fr"}, de={"language": "de"},
               utf8={"charset": "utf-8"}, latin1={"charset": "iso-8859-1"},
               gz={"encoding": "x-gzip"}, z={"encoding": "x-compress"},
               var={"handler": "type-map"}, foo={"type": "text/x-foo"},
               shtml={"type": "text/html", "out_filters": "INCLUDES"},
               dfl={"out_filters": "DEFLATE"})


# -- find_ct -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, ctype, langs, enc, charset, handler", [
    ("a.html", "text/html", (), None, None, None),
    ("a.html.en", "text/html", ("en",), None, None, None),
    ("a.en.html", "text/html", ("en",), None, None, None),
    ("a.html.fr.de", "text/html", ("fr", "de"), None, None, None),
    ("a.txt.utf8", "text/plain; charset=utf-8", (), None, "utf-8", None),
    ("c.latin1.txt", "text/plain; charset=iso-8859-1", (), None, "iso-8859-1", None),
    ("a.html.gz", "application/gzip", (), "x-gzip", None, None),       # last type wins
    ("a.tar.gz.z", "application/gzip", (), "x-gzip, x-compress", None, None),
    ("x.foo.html", "text/html", (), None, None, None),
    ("x.html.foo", "text/x-foo", (), None, None, None),               # AddType over a later ext
    ("b.FR.HTML", "text/html", ("fr",), None, None, None),             # extensions: any case
    ("d..html", "text/html", (), None, None, None),                    # empty extension skipped
    (".hidden.html", "text/html", (), None, None, None),               # leading dot: base name
    (".png", None, (), None, None, None),
    ("f.var", None, (), None, None, "type-map"),
    ("noext", None, (), None, None, None),
    ("g.html.bak", "application/x-trash", (), None, None, None),
    ("trailing.html.", "text/html", (), None, None, None),
])
def test_find_ct(name, ctype, langs, enc, charset, handler):
    got = resolve(name, DEBIANISH, TYPES)
    assert (got.content_type, got.languages, got.encoding, got.charset, got.handler) == \
        (ctype, langs, enc, charset, handler)


@pytest.mark.parametrize("name, exceptions", [
    ("a.html", ("a",)),
    ("a.html.en", ("a",)),
    ("a.unknown.html", ("a", "unknown")),
    ("a.unknown", None),                   # nothing recognised: no list at all
    ("a.b.c", None),
    ("index.html.var", ("index", "var")),   # a handler is not "found" (NegotiatedOnly)
    ("s.dfl.html", ("s", "dfl")),          # filters do not count (NegotiatedOnly)
    ("A.Unknown.html", ("A", "Unknown")),  # kept as written
])
def test_exception_list(name, exceptions):
    assert resolve(name, DEBIANISH, TYPES).exceptions == exceptions


@pytest.mark.parametrize("multimatch, name, exceptions", [
    (mime.MULTIMATCH_HANDLERS, "f.var", ("f",)),
    (0, "f.var", None),
    (mime.MULTIMATCH_FILTERS, "s.dfl.html", ("s",)),
    (mime.MULTIMATCH_ANY, "a.unknown.html", ("a",)),
    (mime.MULTIMATCH_ANY, "a.unknown", ("a",)),
])
def test_multiviews_match_flags(multimatch, name, exceptions):
    d = MimeDir.make(dict(DEBIANISH.table), multimatch=multimatch)
    assert resolve(name, d, TYPES).exceptions == exceptions


def test_output_filters_and_default_language():
    d = MimeDir.make(dict(DEBIANISH.table), default_language="de")
    got = resolve("p.dfl.shtml", d, TYPES)
    assert got.out_filters == ("DEFLATE", "INCLUDES")  # as given to MimeDir (rows lower-case)
    assert got.languages == ("de",)
    assert resolve("p.html.en", d, TYPES).languages == ("en",)   # DefaultLanguage only if none


def test_no_config_is_types_only():
    got = resolve("a.html.en", None, TYPES)
    assert (got.content_type, got.languages, got.exceptions) == ("text/html", (), ("a", "en"))


# -- the type as mod_mime rebuilds it --------------------------------------------------------------
@pytest.mark.parametrize("ctype, charset, expected", [
    ("text/html", None, "text/html"),
    ("text/html", "utf-8", "text/html; charset=utf-8"),
    ("text/html;charset=UTF-8", None, "text/html; charset=UTF-8"),
    ("text/html; charset=UTF-8", "koi8-r", "text/html; charset=koi8-r"),
    ("text/html; level=3; charset=x; charset=y", "z", "text/html; level=3; charset=z"),
    ("text/plain; format=flowed", "utf-8", "text/plain; format=flowed; charset=utf-8"),
    ('text/plain; a="q u o"', None, 'text/plain; a="q u o"'),
    ("text /html", None, "text /html"),                # Apache keeps the blank in the type
    ("texthtml", "utf-8", "texthtml"),                 # unreadable: left as it was
    ("text/html;", None, "text/html;"),
    ("text/html; a", None, "text/html"),          # a parameter without '=' is dropped
])
def test_rebuild_type(ctype, charset, expected):
    assert rebuild_type(ctype, charset) == expected


def test_analyze_ct_parts():
    assert analyze_ct("a/b; x=1;y=2") == ("a", "b", [("x", "1"), ("y", "2")])
    assert analyze_ct("") is None
    assert analyze_ct("a/") is None
    assert analyze_ct('a/b; x="unterminated') == ("a", "b", [("x", '"unterminated')])


# -- merge --------------------------------------------------------------------------------------
def test_merge_overlays_field_by_field():
    base = md(html={"type": "text/x-a", "language": "en"})
    new = md(html={"charset": "utf-8"})
    got = mime.merge(base, new).table["html"]
    assert (got.type, got.language, got.charset) == ("text/x-a", "en", "utf-8")


def test_removes_apply_at_merge_to_inherited_and_own():
    base = md(fr={"language": "fr"}, gz={"encoding": "gzip"})
    new = MimeDir.make({"xx": ExtInfo(language="xx")}, removes=(("fr", "language"),
                                                              ("xx", "language")))
    got = mime.merge(base, new)
    assert got.table["fr"].language is None
    assert got.table["xx"].language is None         # Apache removes the section's own too
    assert got.table["gz"].encoding == "gzip"
    assert got.removes == ()


def test_remove_type_hides_types_config():
    d = md(html={"type": ""})
    assert resolve("a.html", d, TYPES).content_type is None
    assert resolve("a.html", d, TYPES).exceptions is None


def test_scalar_fields_override_when_set():
    base = MimeDir.make({}, default_language="de", multimatch=mime.MULTIMATCH_ANY,
                        use_path_info=1)
    assert mime.merge(base, MimeDir()).default_language == "de"
    assert mime.merge(base, MimeDir()).multimatch == mime.MULTIMATCH_ANY
    assert mime.merge(base, MimeDir()).use_path_info == 1
    assert mime.merge(base, MimeDir.make({}, use_path_info=0)).use_path_info == 0


# -- directives -------------------------------------------------------------------------------
def ld(tmp_path, body: str, modules: str = ""):
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    p = tmp_path / "httpd.conf"
    p.write_text(f"Listen 127.0.0.1:18080\nServerRoot {tmp_path}\nDocumentRoot {docs}\n"
                 f"ErrorLog {tmp_path}/error.log\n{modules}{body}")
    return load(str(p), log_warnings=False)


def err(tmp_path, body: str) -> str:
    with pytest.raises(ConfigError) as e:
        ld(tmp_path, body)
    return e.value.msg


def walked(cfg, path: str):
    return SectionWalker(cfg.main, cfg).lookup(path, False, "/x").conf


def test_directives_build_the_table(tmp_path):
    cfg = ld(tmp_path, "AddType Text/X-Foo .FOO bar\nAddCharset UTF-8 .utf8\n"
                       "AddLanguage pt-BR .pt-br\nAddEncoding x-gzip gz\n"
                       "DefaultLanguage en\nAddHandler type-map .var\n")
    d = cfg.main.dir.mod(mime.KEY)
    assert d.table["foo"].type == "text/x-foo" and d.table["bar"].type == "text/x-foo"
    assert d.table["utf8"].charset == "utf-8"            # values lower-cased, as Apache
    assert d.table["pt-br"].language == "pt-br"
    assert d.table["gz"].encoding == "x-gzip"
    assert d.table["var"].handler == "type-map"
    assert d.default_language == "en"
    assert cfg.main.add_types == (("foo", "text/x-foo"), ("bar", "text/x-foo"))   # core's too


def test_sections_merge_in_walk_order(tmp_path):
    d = tmp_path / "docs"
    cfg = ld(tmp_path, f"AddLanguage fr .fr\nAddType text/x-a .a\n"
                       f"<Directory {d}/sub>\nRemoveLanguage .fr\nRemoveType .a .html\n"
                       f"AddType text/x-b .b\n</Directory>\n"
                       f"<Directory {d}/sub/deeper>\nAddLanguage fr .fr\n</Directory>\n")
    top = walked(cfg, f"{d}/x.fr.a").mod(mime.KEY)
    assert resolve("x.fr.a", top, TYPES).content_type == "text/x-a"
    sub = walked(cfg, f"{d}/sub/x.fr.a").mod(mime.KEY)
    got = resolve("x.fr.a.html", sub, TYPES)
    assert (got.content_type, got.languages) == (None, ())
    deeper = walked(cfg, f"{d}/sub/deeper/x.fr.b").mod(mime.KEY)
    assert resolve("x.fr.b", deeper, TYPES).languages == ("fr",)     # re-added below
    assert resolve("x.fr.b", deeper, TYPES).content_type == "text/x-b"


def test_sections_merge_together_before_the_server_defaults(tmp_path):
    """apache2: a subdirectory's RemoveLanguage clears the parent section's entry, and the
    server's own AddLanguage shows again (Apache's walk merges the sections first)."""
    d = tmp_path / "docs"
    cfg = ld(tmp_path, f"AddLanguage fr .fr\n<Directory {d}/a>\nAddLanguage ff .fr\n"
                       f"</Directory>\n<Directory {d}/a/sub>\nRemoveLanguage .fr\n</Directory>\n"
                       f"<Directory {d}/b>\nRemoveLanguage .fr\n</Directory>\n")
    def langs(path):
        return resolve("x.html.fr", walked(cfg, path).mod(mime.KEY), TYPES).languages
    assert langs(f"{d}/x") == ("fr",)
    assert langs(f"{d}/a/x") == ("ff",)
    assert langs(f"{d}/a/sub/x") == ("fr",)
    assert langs(f"{d}/b/x") == ()


@pytest.mark.parametrize("body, msg", [
    ("MultiviewsMatch Any Handlers\n", "Handlers is incompatible with Any and NegotiatedOnly"),
    ("MultiviewsMatch Handlers Any\n", "Any is incompatible with NegotiatedOnly, Filters and "
                                       "Handlers"),
    ("MultiviewsMatch NegotiatedOnly Filters\n", "Filters is incompatible with Any and "
                                                 "NegotiatedOnly"),
    ("MultiviewsMatch Filters NegotiatedOnly\n", "NegotiatedOnly is incompatible with Any, "
                                                 "Filters and Handlers"),
    ("MultiviewsMatch Sometimes\n", "Unrecognized option 'Sometimes'"),
    ("<Location /x>\nMultiviewsMatch Any\n</Location>\n",
     "MultiviewsMatch cannot occur within <Location> section"),
    ("ModMimeUsePathInfo On\n", "ModMimeUsePathInfo not allowed here"),
    ("AddHandler cgi-script .cgi\n", "AddHandler: handler 'cgi-script' is not built into "
                                     "httpd-py"),
    ("AddType text/x\n", "AddType requires at least two arguments"),
    ("RemoveType\n", "RemoveType requires at least one argument"),
    ("DefaultLanguage a b\n", "DefaultLanguage takes one argument"),
])
def test_directive_errors(tmp_path, body, msg):
    assert err(tmp_path, body).startswith(msg)


def test_unbuilt_filters_and_handlers_are_listed_not_refused(tmp_path):
    cfg = ld(tmp_path, "AddOutputFilter INCLUDES;DEFLATE .shtml\nAddHandler ldap-status .st\n"
                       "AddInputFilter DEFLATE .z\n")
    names = [n for n, _ in cfg.ignored_directives]
    assert "AddOutputFilter INCLUDES" in names
    assert "AddHandler ldap-status" in names
    assert "AddInputFilter" in names
    assert not any("DEFLATE" in n for n in names if n.startswith("AddOutputFilter"))


def test_multiviews_is_no_longer_listed_as_ignored(tmp_path):
    cfg = ld(tmp_path, "<Directory />\nOptions +MultiViews\n</Directory>\n")
    assert not any("MultiViews" in n for n, _ in cfg.ignored_directives)


def test_stock_mime_conf_loads(tmp_path):
    cfg = ld(tmp_path, "Include /etc/apache2/mods-available/mime.conf\n")
    d = cfg.main.dir.mod(mime.KEY)
    assert d.table["es"] == ExtInfo(type="", language="es")     # RemoveType es, AddLanguage es
    assert d.table["var"].handler == "type-map"
    assert cfg.ignored_directives == ()


# -- the hook -------------------------------------------------------------------------------------
def request(cfg, filename: str, **kw) -> hooks.Request:
    conf = walked(cfg, filename)
    r = hooks.Request(method="GET", uri="/x", query="", headers={}, version="1.1",
                      request_line="GET /x HTTP/1.1", client_ip="127.0.0.1", client_port=1,
                      local_ip="127.0.0.1", local_port=80, https=False, vhost=cfg.main,
                      server=cfg, filename=filename, conf=conf, **kw)
    r.content_type = "core/answer"
    return r


def test_type_checker_sets_what_find_ct_says(tmp_path):
    d = tmp_path / "docs"
    cfg = ld(tmp_path, "AddLanguage fr .fr\nAddCharset UTF-8 .u8\nAddEncoding gzip .gz\n"
                       "AddOutputFilter DEFLATE .html\nAddHandler type-map .var\n")
    r = request(cfg, f"{d}/p.html.fr.u8.gz")
    assert mime.type_checker(r) is None
    assert r.content_type == "application/gzip; charset=utf-8"
    assert (r.content_language, r.content_encoding, r.charset) == (("fr",), "gzip", "utf-8")
    assert r.notes["mime.filters"] == ("deflate",)     # lower-cased, as Apache stores it
    r = request(cfg, f"{d}/map.var")
    mime.type_checker(r)
    assert r.handler == "type-map" and r.content_type is None
    r.notes["mime.filters"] = ("deflate",)          # from before an internal redirect
    mime.type_checker(r)
    assert "mime.filters" not in r.notes


def test_type_checker_force_type_and_none(tmp_path):
    d = tmp_path / "docs"
    cfg = ld(tmp_path, f"<Directory {d}/f>\nForceType Image/GIF\n</Directory>\n"
                       f"<Directory {d}/f/none>\nForceType None\n</Directory>\n")
    r = request(cfg, f"{d}/f/a.html")
    mime.type_checker(r)
    assert r.content_type == "image/gif"
    r = request(cfg, f"{d}/f/none/a.html")
    mime.type_checker(r)
    assert r.content_type == "core/answer"           # no mod_mime line there: core's answer


def test_type_checker_without_directives_keeps_core_answer(tmp_path):
    cfg = ld(tmp_path, "")
    r = request(cfg, str(tmp_path / "docs" / "a.html.en"))
    mime.type_checker(r)
    assert r.content_type == "core/answer" and r.content_language == ()


def test_use_path_info(tmp_path):
    d = tmp_path / "docs"
    cfg = ld(tmp_path, f"AddLanguage fr .fr\n<Directory {d}/p>\nModMimeUsePathInfo On\n"
                       f"</Directory>\n")
    r = request(cfg, f"{d}/p/script", path_info="/extra.html.fr")
    mime.type_checker(r)
    assert (r.content_type, r.content_language) == ("text/html", ("fr",))
