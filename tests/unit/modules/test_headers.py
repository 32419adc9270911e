"""mod_headers: Header/RequestHeader parsing (Apache's messages), format strings, every action on
the response and request tables, the always/onsuccess tables on normal and error responses,
env=/expr=/early conditions and the per-directory merge -- over a loaded config and a
``hooks.Request``/``Response`` built directly (no server).  The expected values are what
apache2 2.4.71 sends for the same lines (tests/interop/modules/headers compares them live)."""
from __future__ import annotations

import re
import time

import pytest

from httpd_py.config import load
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.http.walk import SectionWalker
from httpd_py.modules import headers
from httpd_py.modules.headers import parse_format, parse_header, pregsub

MODS = "/usr/lib/apache2/modules"


def config(tmp_path, text: str):
    docroot = tmp_path / "htdocs"
    (docroot / "sub").mkdir(parents=True, exist_ok=True)
    conf = tmp_path / "h.conf"
    conf.write_text(f"LoadModule headers_module {MODS}/mod_headers.so\n"
                    f"LoadModule setenvif_module {MODS}/mod_setenvif.so\n"
                    f"LoadModule env_module {MODS}/mod_env.so\n"
                    f"ServerName localhost\nListen 127.0.0.1:8080\n"
                    f'DocumentRoot "{docroot}"\n' + text)
    return load(str(conf), server_root=str(tmp_path), log_warnings=False), docroot


def request(cfg, docroot, path="/a.txt", *, headers=None, method="GET", env=None, query=""):
    vhost = cfg.main
    filename = str(docroot) + path
    conf = SectionWalker(vhost, cfg).lookup(filename, False, path).conf
    return hooks.Request(method=method, uri=path, query=query,
                         headers={k.lower(): v for k, v in (headers or {}).items()},
                         version="1.1", request_line=f"{method} {path} HTTP/1.1",
                         client_ip="127.0.0.1", client_port=40000, local_ip="127.0.0.1",
                         local_port=8080, https=False, vhost=vhost, unparsed_uri=path,
                         filename=filename, conf=conf, env=dict(env or {}), start=time.time())


def respond(req, status=200, hdrs=(), error_page=False, content_type="text/plain"):
    resp = hooks.Response(status, list(hdrs), b"", content_type=content_type,
                          error_page=error_page)
    return headers.output(req, resp)


def run(tmp_path, text, path="/a.txt", *, status=200, hdrs=(), error_page=False, **kw):
    cfg, docroot = config(tmp_path, text)
    req = request(cfg, docroot, path, **kw)
    hooks.run(hooks.POST_READ, req)
    hooks.run(hooks.HEADER_PARSER, req)
    hooks.run(hooks.FIXUPS, req)
    return req, respond(req, status, hdrs, error_page)


def values(resp, name):
    got = [v for k, v in resp.headers if k.lower() == name.lower()]
    if name.lower() == "content-type" and not got and resp.content_type:
        got = [resp.content_type]        # the pipeline writes the field from content_type
    return got


# -- format strings ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, parts", [
    ("plain", ("plain",)),
    ("a\\tb\\nc\\rd\\\\e", ("a\tb\nc\rd\\e",)),
    ("keep\\q\\$1", ("keep\\q\\$1",)),
    ("100%%", ("100%",)),
    ("ends in %", ("ends in %",)),
    ("%{FOO}e!", (("e", "FOO"), "!")),
    ("x %t %D y", ("x ", ("t", ""), " ", ("D", ""), " y")),
    ("%{HTTPS}s", (("s", "HTTPS"),)),
    ("%l", (("l", ""),)),
])
def test_format_strings_parse_as_mod_headers(text, parts):
    assert parse_format(text) == parts


@pytest.mark.parametrize("text, message", [
    ("%x", "Unrecognized header format %x"),
    ("%{FOO}", "Unrecognized header format %"),
    ("%{FOO", "Unrecognized header format %"),
    ("%i", "not built"),
    ("%b", "not built"),
    ("%{SSL_PROTOCOL}s", "only %{HTTPS}s"),
])
def test_format_errors(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_format(text)


@pytest.mark.parametrize("template, text, pattern, want", [
    ("[$1]", "abc", "(b)", "[b]"),
    ("$0-$0", "abc", "b", "b-b"),
    ("$2|$9", "abc", "(b)", "|"),          # groups the regex does not have are empty
    ("\\$1&\\q", "abc", "(b)", "$1&q"),      # a backslash makes the next character literal
    ("no dollars", "abc", "b", "no dollars"),
])
def test_pregsub(template, text, pattern, want):
    assert pregsub(template, re.search(pattern, text)) == want


# -- directive parsing -----------------------------------------------------------------------------
@pytest.mark.parametrize("words, request_, message", [
    ([], False, "first argument must be 'add', 'set', 'setifempty', 'append', 'merge', "
                "'unset', 'echo', 'note', 'edit', or 'edit*'."),
    (["always"], False, "first argument must be"),
    (["replace", "X", "v"], False, "first argument must be"),
    (["always", "set", "X", "v"], True, "first argument must be"),   # no tables on requests
    (["set", "X"], False, "Header requires three arguments"),
    (["edit", "X", "a"], False, "Header edit requires a match and a substitution"),
    (["edit", "X", "(", "b"], False, "Header edit regex could not be compiled"),
    (["unset", "X", "env=A", "env=B"], False, "header unset takes two arguments"),
    (["echo", "X", "env=A", "env=B"], False, "Header echo takes two arguments"),
    (["echo", "X"], True, "Header echo only valid on Header directives"),
    (["echo", "("], False, "Header echo regex could not be compiled"),
    (["set", "X", "v", "env=A", "more"], False, "Too many arguments to directive"),
    (["edit", "X", "a", "b", "env=A", "more"], False, "takes only 2, 3, 4 or 5 arguments"),
    (["set", "X", "v", "env="], False, "missing environment variable name"),
    (["set", "X", "v", "env=!"], False, "missing environment variable name"),
    (["set", "X", "v", "sometimes"], False, "Unknown parameter: sometimes"),
    (["set", "X", "v", "expr=%{NOPE} == 1"], False, "Can't parse envclause/expression"),
    (["set", "X", "expr=%{NOPE}"], False, "Can't parse value expression"),
])
def test_directive_errors(words, request_, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_header(words, request_)


def test_directive_shapes():
    table, a = parse_header(["always", "set", "X-A:", "v", "env=!NO"], False)
    assert (table, a.action, a.header, a.value, a.env) == ("err", "set", "X-A", ("v",), "!NO")
    table, a = parse_header(["onsuccess", "UNSET", "X", "early"], False)
    assert (table, a.action, a.early) == ("out", "unset", True)
    table, a = parse_header(["edit*", "X", "^(a)", "$1%{V}e"], True)
    assert table == "in" and a.regex.pattern == "^(a)" and a.value == ("$1", ("e", "V"))
    _, a = parse_header(["set", "X", "v", "expr=%{REQUEST_URI} =~ m#^/a#"], False)
    assert a.cond is not None and a.env is None


def test_config_errors_name_the_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        config(tmp_path, "\nHeader set X\n")
    assert e.value.line == 8 and "three arguments" in str(e.value)


# -- response actions ----------------------------------------------------------------------------
def test_every_action_on_a_normal_response(tmp_path):
    _, resp = run(tmp_path, """
Header merge X-M "a"
Header merge X-M "b"
Header merge X-M "a"
Header merge X-M "\\"b\\""
Header add X-E "one two one"
Header add X-E "one"
Header edit* X-E one 1
Header edit X-Absent one 1
Header setifempty X-S first
Header setifempty X-S second
Header append X-App a
Header append X-App b
Header set X-Set a
Header set X-Set b
Header add X-Gone a
Header unset X-Gone
Header set X-Tab "a\\tb"
""", hdrs=[("ETag", '"e"')])
    assert values(resp, "X-M") == ['a, b, "b"']
    assert values(resp, "X-E") == ["1 two 1", "1"]
    assert values(resp, "X-Absent") == []
    assert values(resp, "X-S") == ["first"]
    assert values(resp, "X-App") == ["a, b"]
    assert values(resp, "X-Set") == ["b"]
    assert values(resp, "X-Gone") == []
    assert values(resp, "X-Tab") == ["a\tb"]
    assert values(resp, "ETag") == ['"e"']


def test_edit_with_captures_and_anchors(tmp_path):
    _, resp = run(tmp_path, """
Header set X-A "abc"
Header edit X-A "b(c)$" "[$1\\$0]"
Header set X-B "aaa"
Header edit* X-B "^a" "b"
Header set X-C "xyz"
Header edit X-C "nomatch" "q"
""")
    assert values(resp, "X-A") == ["a[c$0]"]
    assert values(resp, "X-B") == ["bbb"]     # edit* searches each remainder anew (^ again)
    assert values(resp, "X-C") == ["xyz"]


def test_always_and_onsuccess_tables(tmp_path):
    text = """
Header always set X-Always a
Header set X-Succ s
Header always set X-Dup a
Header set X-Dup b
Header always unset ETag
Header always append X-App one
Header onsuccess append X-App two
"""
    _, ok = run(tmp_path, text, hdrs=[("ETag", '"e"')])
    assert values(ok, "X-Always") == ["a"] and values(ok, "X-Succ") == ["s"]
    assert values(ok, "X-Dup") == ["a", "b"]           # two lines, as Apache
    assert values(ok, "ETag") == ['"e"']               # always unset: err_headers_out only
    assert values(ok, "X-App") == ["one", "two"]
    assert ok.headers[0] == ("X-Always", "a")          # err_headers_out first
    for status in (404, 302, 301, 403):
        _, err = run(tmp_path, text, status=status, error_page=True,
                     hdrs=[("Location", "http://h/x")] if status < 400 else ())
        assert values(err, "X-Always") == ["a"] and values(err, "X-Succ") == []
        assert values(err, "X-Dup") == ["a"] and values(err, "X-App") == ["one"]
    _, nm = run(tmp_path, text, status=304)
    assert values(nm, "X-Succ") == ["s"]               # a handler's 304: both tables


def test_conditions_env_and_expr(tmp_path):
    text = """
Header set X-If yes env=FLAG
Header set X-IfNot yes env=!FLAG
Header set X-Case yes env=flag
Header set X-Expr yes "expr=%{REQUEST_URI} =~ m#^/sub#"
Header set X-Status s "expr=%{REQUEST_STATUS} == 200"
"""
    _, r1 = run(tmp_path, text, env={"FLAG": ""})
    assert values(r1, "X-If") == ["yes"] and values(r1, "X-IfNot") == []
    assert values(r1, "X-Case") == ["yes"]             # apr_table: names without case
    assert values(r1, "X-Expr") == [] and values(r1, "X-Status") == ["s"]
    _, r2 = run(tmp_path, text, "/sub/b.txt")
    assert values(r2, "X-If") == [] and values(r2, "X-IfNot") == ["yes"]
    assert values(r2, "X-Expr") == ["yes"]


def test_format_tags_at_request_time(tmp_path):
    req, resp = run(tmp_path, 'Header set X-Env "%{FOO}e|%{NONE}e|%t|%D|%%|%l|%{HTTPS}s"',
                    env={"foo": "bar"})
    v = values(resp, "X-Env")[0].split("|")
    assert v[:2] == ["bar", "(null)"]
    assert re.fullmatch(r"t=\d{16}", v[2]) and re.fullmatch(r"D=\d+", v[3])
    assert abs(int(v[2][2:]) - int(req.start * 1e6)) < 2
    assert v[4] == "%" and re.fullmatch(r"l=[\d.]+/[\d.]+/[\d.]+", v[5]) and v[6] == "off"


def test_value_expression(tmp_path):
    _, resp = run(tmp_path, """Header set X-V "expr=%{REQUEST_URI}-%{tolower:ABC}-'q'\\t"
""")
    assert values(resp, "X-V") == ["/a.txt-abc-'q'\t"]


def test_echo_and_note(tmp_path):
    req, resp = run(tmp_path, """
Header echo ^X-
Header always echo ^Y-
Header set X-S v
Header note X-S mynote
Header note X-None other
""", headers={"X-Test": "a", "x-other": "b", "Y-y": "c", "Accept": "d"})
    assert values(resp, "X-Test") == ["a"] and values(resp, "X-Other") == ["b"]
    assert values(resp, "Y-y") == ["c"] and values(resp, "Accept") == []
    assert req.notes == {"mynote": "v"}


def test_echo_uses_the_names_the_client_wrote(tmp_path):
    cfg, docroot = config(tmp_path, "Header echo ^x-\n")
    req = request(cfg, docroot, headers={"x-lower": "a", "X-Upper": "b"})
    req.raw_headers = [(b"x-lower", b"a"), (b"X-Upper", b"b")]
    resp = respond(req)
    assert [(k, v) for k, v in resp.headers if k.lower().startswith("x-")] == [("x-lower", "a")]


def test_content_type(tmp_path):
    cfg, docroot = config(tmp_path, """
<Files a.txt>
Header set Content-Type text/x-set
</Files>
<Files b.txt>
Header unset Content-Type
</Files>
<Files c.txt>
Header edit Content-Type ^text/ application/
</Files>
<Files d.txt>
Header setifempty Content-Type text/x-d
</Files>
<Files e.txt>
Header append Content-Type x=1
</Files>
""")
    for name, want in (("a.txt", ["text/x-set"]), ("b.txt", []),
                       ("c.txt", ["application/plain"]), ("d.txt", ["text/x-d"]),
                       ("e.txt", ["text/plain"]), ("f.txt", ["text/plain"])):
        resp = respond(request(cfg, docroot, "/" + name))
        assert values(resp, "Content-Type") == want, name
        if name == "f.txt":
            assert resp.content_type == "text/plain" and not resp.headers   # untouched


def test_sections_merge_server_then_directory(tmp_path):
    text = f"""
Header set X-Has server
Header set X-Order 1
<Directory "{tmp_path}/htdocs/sub">
Header unset X-Has
Header append X-Order 2
</Directory>
"""
    _, top = run(tmp_path, text)
    assert values(top, "X-Has") == ["server"] and values(top, "X-Order") == ["1"]
    _, sub = run(tmp_path, text, "/sub/b.txt")
    assert values(sub, "X-Has") == [] and values(sub, "X-Order") == ["1, 2"]


# -- request headers -------------------------------------------------------------------------------
def test_request_headers_late_and_early(tmp_path):
    req, resp = run(tmp_path, """
RequestHeader set X-Early yes early
SetEnvIf X-Early yes SAW_EARLY
RequestHeader set X-Late yes
SetEnvIf X-Late yes SAW_LATE
RequestHeader append X-In two
RequestHeader merge X-In one
RequestHeader edit X-Edit (a+) <$1>
RequestHeader unset X-Drop
RequestHeader setifempty X-In three
RequestHeader set X-Cond yes env=SAW_EARLY
RequestHeader note X-In innote
Header echo ^X-
""", headers={"X-In": "one", "X-Edit": "baab", "X-Drop": "d"})
    h = req.headers
    assert h["x-early"] == "yes" and h["x-late"] == "yes" and h["x-cond"] == "yes"
    assert h["x-in"] == "one, two" and h["x-edit"] == "b<aa>b" and "x-drop" not in h
    assert "SAW_EARLY" in req.env and "SAW_LATE" not in req.env   # early: before post_read rules
    assert req.notes["innote"] == "one, two"
    assert values(resp, "X-Late") == ["yes"]                       # echo sees RequestHeader


def test_early_inside_a_section_never_runs(tmp_path):
    text = f"""
<Directory "{tmp_path}/htdocs">
RequestHeader set X-Early yes early
Header set X-Early-Out yes early
</Directory>
"""
    req, resp = run(tmp_path, text)
    assert "x-early" not in req.headers and values(resp, "X-Early-Out") == []


def test_early_response_headers_go_to_the_request_tables(tmp_path):
    req, _ = run(tmp_path, "Header set X-E1 v early\nHeader always set X-E2 w early\n")
    assert req.headers_out == [("X-E1", "v")] and req.err_headers_out == [("X-E2", "w")]


def test_hooks_decline_at_once_without_directives(tmp_path):
    cfg, docroot = config(tmp_path, "")
    req = request(cfg, docroot)
    resp = hooks.Response(200, [("ETag", "x")], b"", content_type="text/plain")
    assert headers.output(req, resp) is resp and resp.headers == [("ETag", "x")]
    assert headers.fixup(req) is None and headers.post_read(req) is None


def test_expressions_add_the_headers_they_read_to_vary(tmp_path):
    # apache2: "Vary: X-Alw,User-Agent,X-B,X-Http,X-Mine" for these lines (Host adds nothing)
    _, resp = run(tmp_path, """
Header set X-A 1 "expr=%{HTTP_USER_AGENT} =~ /curl/ && %{req:X-B} == '' && %{HTTP_HOST} != ''"
Header set X-C 1 "expr=http('X-Http') == ''"
Header always set X-D 1 "expr=req('X-Alw') == ''"
Header append Vary X-Mine
""", headers={"User-Agent": "curl/8", "Host": "h"})
    assert values(resp, "Vary") == ["X-Alw,User-Agent,X-B,X-Http,X-Mine"]
    _, resp = run(tmp_path, 'Header set X-A 1 "expr=%{REQUEST_URI} == \'/\'"\n',
                  hdrs=[("Vary", "Accept-Encoding")])
    assert values(resp, "Vary") == ["Accept-Encoding"]


def test_setenvif_expr_adds_vary_to_headers_out(tmp_path):
    req, _ = run(tmp_path, "SetEnvIfExpr \"req('X-Sei') == ''\" SEI\n")
    assert req.env == {"SEI": "1"} and req.headers_out == [("Vary", "X-Sei")]
