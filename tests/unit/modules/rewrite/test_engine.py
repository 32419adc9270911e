"""mod_rewrite's engine, pure: argument and flag parsing, expansion, every rule flag, every
condition operator, the per-directory prefix logic, the server and per-directory decisions.
Expected values are Apache 2.4.71's (the interop suite checks the same against apache2)."""
from __future__ import annotations

import os

import pytest

from httpd_py.errors import ConfigError
from httpd_py.modules.rewrite import engine as E
from httpd_py.modules.rewrite.maps import MapSpec, read_text_map

DOCROOT = "/srv/www"


def state(uri="/", args=None, **kw) -> E.State:
    kw.setdefault("document_root", DOCROOT)
    kw.setdefault("server_name", "ex.test")
    kw.setdefault("server_port", 80)
    return E.State(uri=uri, filename=None, args=args, **kw)


def rules(*lines, **kw):
    out, conds = [], []
    for ln in lines:
        if ln.startswith("COND "):
            conds.append(E.parse_cond(ln[5:]))
        else:
            out.append(E.parse_rule(ln, tuple(conds), **kw))
            conds = []
    return tuple(out)


def tr(uri, *lines, args=None, maps=None, options=0, **kw) -> tuple[E.Decision, E.State]:
    st = state(uri, args, **kw)
    return E.translate(st, rules(*lines), options, maps or {}), st


# -- parsing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,words", [
    ("a b", ("a", "b", None)),
    ("a b [L]", ("a", "b", "[L]")),
    ('"a b" c', ("a b", "c", None)),
    ("'a b' 'c d' [L]", ("a b", "c d", "[L]")),
    ("a\\ b c", ("a\\ b", "c", None)),
    ("  a   b   [L]  ", ("a", "b", "[L]")),
    ("a b [L] extra", ("a", "b", "[L]")),
])
def test_argline(text, words):
    assert E.parse_argline(text) == words


@pytest.mark.parametrize("text", ["a", "", "   "])
def test_argline_errors(text):
    with pytest.raises(ValueError):
        E.parse_argline(text)


def test_flag_field():
    assert E.parse_flag_field("[L,R=301, NC ]") == [("L", None), ("R", "301"), ("NC", None)]
    assert E.parse_flag_field("[L,,R]") == [("L", None)]
    with pytest.raises(ValueError):
        E.parse_flag_field("L")


@pytest.mark.parametrize("line,msg", [
    ("^a b [X]", "RewriteRule: unknown flag 'X'"),
    ("^a b [R=299]", "RewriteRule: invalid HTTP response code '299' for flag 'R'"),
    ("^a b [BNE]", "RewriteRule: flag 'BNE' wants a list of characters (i.e. [BNE=...])"),
    ("^a b L]", "RewriteRule: bad flag delimiters"),
    ("^a", "RewriteRule: bad argument line '^a'"),
    ("^(a b [L]", "RewriteRule: cannot compile regular expression '^(a'"),
    ("^a b [P]", "RewriteRule: flag [P] needs mod_proxy"),
])
def test_rule_errors(line, msg):
    with pytest.raises(ConfigError) as e:
        E.parse_rule(line)
    assert e.value.msg.startswith(msg)


@pytest.mark.parametrize("line,msg", [
    ("%{X} a [XX]", "RewriteCond: unknown flag 'XX'"),
    ("%{X} (a", "RewriteCond: cannot compile regular expression '(a'"),
    ("%{X}", "RewriteCond: bad argument line '%{X}'"),
    ("%1 -gt 10", "RewriteCond: bad flag delimiters"),
])
def test_cond_errors(line, msg):
    with pytest.raises(ConfigError) as e:
        E.parse_cond(line)
    assert e.value.msg == msg


def test_handler_flag_refused_unless_known():
    with pytest.raises(ConfigError):
        E.parse_rule("^a b [H=cgi-script]", handler_ok=lambda h: False)
    assert E.parse_rule("^a b [H=server-status]", handler_ok=lambda h: True).handler == \
        "server-status"


@pytest.mark.parametrize("pattern,kind,operand,negate", [
    ("^a", E.K_REGEX, "^a", False),
    ("!^a", E.K_REGEX, "^a", True),
    ("-f", E.K_FILE, "-f", False), ("!-d", E.K_DIR, "-d", True), ("-s", E.K_SIZE, "-s", False),
    ("-l", E.K_LINK, "-l", False), ("-L", E.K_LINK, "-L", False), ("-h", E.K_LINK, "-h", False),
    ("-x", E.K_XBIT, "-x", False), ("-F", E.K_LU_FILE, "-F", False),
    ("-U", E.K_LU_URL, "-U", False),
    ("=abc", E.K_STR_EQ, "abc", False), ('=""', E.K_STR_EQ, "", False),
    ("<b", E.K_STR_LT, "b", False), ("<=b", E.K_STR_LE, "b", False),
    (">b", E.K_STR_GT, "b", False), (">=b", E.K_STR_GE, "b", False),
    ("-lt5", E.K_INT_LT, "5", False), ("-le5", E.K_INT_LE, "5", False),
    ("-gt5", E.K_INT_GT, "5", False), ("-ge5", E.K_INT_GE, "5", False),
    ("-eq5", E.K_INT_EQ, "5", False), ("-ne5", E.K_INT_EQ, "5", True),
    ("!-ne5", E.K_INT_EQ, "5", False),
    ("-ipmatch10.0.0.1", E.K_REGEX, "-ipmatch10.0.0.1", False),   # not an operator here
    ("-q", E.K_REGEX, "-q", False),
])
def test_cond_kinds(pattern, kind, operand, negate):
    c = E.parse_cond(f"%{{X}} {pattern}")
    assert (c.kind, c.operand, c.negate) == (kind, operand, negate)


def test_nocase_on_file_test_is_dropped_with_a_warning():
    warnings = []
    c = E.parse_cond("%{X} -f [NC]", warnings.append)
    assert not c.nocase and "NoCase option for non-regex pattern" in warnings[0]


def test_trailing_qmark_and_qsd_flags():
    assert E.parse_rule("^a /b?").flags & E.F_QSNONE
    assert E.parse_rule("^a /b?").output == "/b"
    r = E.parse_rule("^a /b? [QSA]")
    assert r.flags & E.F_QSL and r.output == "/b?"
    assert E.parse_rule("^a /b [QSD]").flags & E.F_QSNONE
    assert not E.parse_rule("^a /b?x=1 [QSD]").flags & E.F_QSNONE


# -- escaping ---------------------------------------------------------------------------------------
def test_escape_uri_lowercase_hex():
    assert E.escape_uri("/a b/%/é?#") == "/a%20b/%25/%e9%3f%23"
    assert E.escape_uri("$-_.+!*'(),:;@&=/~") == "$-_.+!*'(),:;@&=/~"


@pytest.mark.parametrize("flags,escapes,noescapes,text,want", [
    ("[B]", None, None, "a b&c/d.e", "a+b%26c%2fd%2ee"),
    ("[B,BNP]", None, None, "a b", "a%20b"),
    ("[B=&/]", "&/", None, "a b&c/d", "a b%26c%2fd"),
    ("[B,BNE=/]", None, "/", "a/b c", "a/b+c"),
    ("[BCTLS]", None, None, "a b\x01/é", "a+b%01/é"),
])
def test_escape_backref(flags, escapes, noescapes, text, want):
    r = E.parse_rule(f"^(.*)$ /x?$1 {flags}")
    assert (r.escapes, r.noescapes) == (escapes, noescapes)
    assert E.escape_backref(text, r.escapes, r.noescapes, r.flags) == want


def test_unescape():
    assert E.unescape_url("a%2Fb%41%zz%4") == "a/bA%zz%4"


@pytest.mark.parametrize("uri,length", [
    ("http://a/b", 7), ("HTTPS://a", 8), ("ftp://x", 6), ("mailto:x@y", 7), ("news:x", 5),
    ("ws://x", 5), ("unix:/x", 5), ("unix://x", 7), ("/http://x", 0), ("gopher:/x", 0),
    ("abc", 0),
])
def test_absolute_uri(uri, length):
    assert E.absolute_uri(uri)[0] == length


def test_escape_absolute_uri():
    assert E.escape_absolute_uri("http://h/a b%", 7) == "http://h/a%20b%25"
    assert E.escape_absolute_uri("http://h", 7) == "http://h"
    assert E.escape_absolute_uri("ldap://h/a b?c d?e", 7) == "ldap://h/a%20b?c%20d?e"


# -- expansion -------------------------------------------------------------------------------------
def ctx(st=None, maps=None):
    return E.Ctx(st or state("/x"), None, maps or {})


def test_expand_backrefs_vars_escapes():
    c = ctx(state("/x", "q=1", headers={"host": "h.test", "x-a": "v"}))
    c.rr = E.compile_regex("^/(x)", False).search("/x")
    c.rc = E.compile_regex("q=(\\d)", False).search("q=1")
    assert E.expand(r"$1-%1-$2-%{QUERY_STRING}-%{HTTP:X-A}-\$1-$x-%{-${", c)[0] == \
        "x-1--q=1-v-$1-$x-%{-${"
    assert c.vary_this == ["X-A"]


def test_expand_unsafe_qmark():
    c = ctx()
    c.rr = E.compile_regex("^(.*)$", False).search("a?b")
    assert E.expand("/p/$1", c, track_qmark=True) == ("/p/a?b", 1)
    assert E.expand("/p?$1", c, track_qmark=True) == ("/p?a?b", 0)
    assert E.expand("/p", c, track_qmark=True) == ("/p", -1)
    qsl = E.parse_rule("^(.*)$ /p?$1 [QSL]")
    assert E.expand("/p?$1", c, qsl, track_qmark=True)[1] == 1      # the last '?' decides


def test_expand_maps(tmp_path):
    f = tmp_path / "m.txt"
    f.write_text("k v\n")
    maps = {"m": MapSpec("m", "txt", str(f)), "up": MapSpec("up", "int", func="toupper")}
    c = ctx(maps=maps)
    assert E.expand("${m:k}|${m:zz|d}|${up:${m:k}}|${none:k|dflt}|${m:zz}", c)[0] == \
        "v|d|V|dflt|"


def test_text_map_reading_rules():
    m = read_text_map("# c\nk v w\n indented x\nnovalue\nk second\nkey\tval\n" + "z" * 1030 +
                      " long\n")
    # the 1030-byte line is read as 1024 bytes (no value: skipped) and then "zzzzzz long"
    assert m == {"k": "v", "key": "val", "zzzzzz": "long"}


@pytest.mark.parametrize("var,want", [
    ("HTTPS", "off"), ("REQUEST_URI", "/a/b"), ("QUERY_STRING", "x=1"),
    ("REQUEST_METHOD", "GET"), ("THE_REQUEST", "GET /a/b?x=1 HTTP/1.1"),
    ("SERVER_NAME", "ex.test"), ("SERVER_PORT", "80"), ("REMOTE_ADDR", "192.0.2.1"),
    ("REMOTE_PORT", "5555"), ("SERVER_ADDR", "192.0.2.9"), ("DOCUMENT_ROOT", DOCROOT),
    ("HTTP_HOST", "ex.test"), ("HTTP_USER_AGENT", "ua"), ("HTTP_X_OTHER", ""),
    ("HTTP:x-other", "o"), ("ENV:E1", "env"), ("ENV:NOPE_NEVER_SET", ""), ("API_VERSION",
                                                                            "20120211:142"),
    ("IS_SUBREQ", "false"), ("IPV6", "off"), ("REQUEST_SCHEME", "http"),
    ("SERVER_PROTOCOL", "HTTP/1.1"), ("REQUEST_FILENAME", "/a/b"), ("SCRIPT_FILENAME", "/a/b"),
    ("PATH_INFO", ""), ("SCRIPT_USER", "<unknown>"), ("NO_SUCH", ""), ("abc", ""),
    ("request_uri", "/a/b"), ("SSL:SSL_PROTOCOL", ""), ("CONN_REMOTE_ADDR", "192.0.2.1"),
])
def test_variables(var, want):
    st = state("/a/b", "x=1", the_request="GET /a/b?x=1 HTTP/1.1", remote_ip="192.0.2.1",
               remote_port=5555, local_ip="192.0.2.9",
               headers={"host": "ex.test", "user-agent": "ua", "x-other": "o"},
               env={"E1": "env"})
    st.filename = "/a/b"
    assert E.lookup_variable(var, ctx(st)) == want


def test_time_variables():
    c = ctx()
    assert len(E.lookup_variable("TIME", c)) == 14
    assert E.lookup_variable("TIME_WDAY", c) in "0123456"
    assert len(E.lookup_variable("TIME_YEAR", c)) == 4


# -- conditions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cond,value,want", [
    ("%{QUERY_STRING} ^a", "abc", True), ("%{QUERY_STRING} !^a", "abc", False),
    ("%{QUERY_STRING} ^A [NC]", "abc", True), ("%{QUERY_STRING} =abc", "abc", True),
    ("%{QUERY_STRING} =ABC [NC]", "abc", True), ('%{QUERY_STRING} =""', "", True),
    ("%{QUERY_STRING} >b", "c", True), ("%{QUERY_STRING} >b", "aa", True),   # longer wins
    ("%{QUERY_STRING} <b", "aa", False), ("%{QUERY_STRING} <=b", "b", True),
    ("%{QUERY_STRING} >=B [NC]", "b", True), ("%{QUERY_STRING} <B", "a", False),
    ("%{QUERY_STRING} -lt5", "4", True), ("%{QUERY_STRING} -le5", "5", True),
    ("%{QUERY_STRING} -gt5", "12abc", True), ("%{QUERY_STRING} -ge5", "x", False),
    ("%{QUERY_STRING} -eq0", "x", True), ("%{QUERY_STRING} -ne5", "5", False),
    ('%{QUERY_STRING} "-gt 5"', "6", True),
    ('expr "%{QUERY_STRING} == \'abc\'"', "abc", True),
])
def test_cond_operators(cond, value, want):
    c = E.parse_cond(cond)
    assert E.apply_cond(c, ctx(state("/", value))) is want


def test_file_conditions(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "empty").write_text("")
    (tmp_path / "d").mkdir()
    os.symlink("f", tmp_path / "l")
    (tmp_path / "x").write_text("#!")
    os.chmod(tmp_path / "x", 0o755)
    table = [("-f", "f", True), ("-f", "d", False), ("-d", "d", True), ("-s", "f", True),
             ("-s", "empty", False), ("-l", "l", True), ("-l", "f", False),
             ("-x", "x", True), ("-x", "f", False), ("-F", "f", True), ("-F", "none", False),
             ("!-f", "none", True)]
    for op, name, want in table:
        c = E.parse_cond(f"{tmp_path}/%{{QUERY_STRING}} {op}")
        assert E.apply_cond(c, ctx(state("/", name))) is want, (op, name)


def test_lookup_uri_callback():
    st = state("/", "p")
    st.lookup_uri = lambda uri: 403 if uri == "/p" else 200
    assert E.apply_cond(E.parse_cond("/%{QUERY_STRING} -U"), ctx(st)) is False
    st.args = "q"
    assert E.apply_cond(E.parse_cond("/%{QUERY_STRING} -U"), ctx(st)) is True


# -- rules: server context ---------------------------------------------------------------------------
def test_redirects_and_statuses():
    d, _ = tr("/old/a b", r"^/old/(.*)$ /new/$1 [R=301]", args="x=1")
    assert (d.kind, d.status, d.location) == ("redirect", 301, "http://ex.test/new/a%20b?x=1")
    d, _ = tr("/a", "^/a /b [R]", server_port=8080)
    assert d.location == "http://ex.test:8080/b"
    d, _ = tr("/a", "^/a http://o.test/x")
    assert (d.kind, d.status) == ("redirect", 302)
    d, _ = tr("/a", "^/a /b%20c [R,NE]")                # %2: a (missing) cond back-reference
    assert d.location == "http://ex.test/b0c"
    d, _ = tr("/a", r"^/a /b\%20c [R,NE]")
    assert d.location == "http://ex.test/b%20c"
    d, _ = tr("/a", r"^/a /b\%20c [R]")
    assert d.location == "http://ex.test/b%2520c"
    for flag, status in (("[F]", 403), ("[G]", 410), ("[R=404]", 404), ("[R=500]", 500)):
        d, _ = tr("/a", f"^/a - {flag}")
        assert (d.kind, d.status) == ("status", status)
    assert tr("/a", "^/a /b [R=seeother]")[0].status == 303
    assert tr("/a", "^/a /b [R=permanent]")[0].status == 301


def test_local_results_and_prefix_stat():
    d, _ = tr("/a", "^/a /b.html")
    assert (d.kind, d.filename) == ("file", DOCROOT + "/b.html")
    d, _ = tr("/a", "^/a /usr/share/doc")       # /usr exists and the substitution spelt it
    assert d.filename == "/usr/share/doc"
    d, _ = tr("/etc/passwd", "^(.*) $1")       # /etc exists but came from the URL
    assert d.filename == DOCROOT + "/etc/passwd"
    d, _ = tr("/etc/passwd", "^(.*) $1 [UnsafePrefixStat]")
    assert d.filename == "/etc/passwd"
    d, _ = tr("/a", "^/a //b")
    assert d.filename == DOCROOT + "/b"
    d, _ = tr("/a", "^/a /b/../../x")
    assert (d.kind, d.status) == ("status", 403)
    d, _ = tr("/a", "^/a b")                   # relative in server context: '/' added
    assert d.filename == DOCROOT + "/b"


def test_reduce_self_url():
    d, _ = tr("/a", "^/a http://ex.test:8080/b", conf_port=8080, server_names=("ex.test",))
    assert (d.kind, d.filename) == ("file", DOCROOT + "/b")
    d, _ = tr("/a", "^/a http://ex.test/b", server_names=("ex.test",))      # ServerName w/o port
    assert d.kind == "redirect"
    d, _ = tr("/a", "^/a http://127.0.0.1:81/b", server_addrs=(("127.0.0.1", 81),))
    assert d.kind == "file"


def test_query_flags():
    def q(line, args):
        return tr("/a", line, args=args)[1].args
    assert q("^/a /b?n=1", "o=1") == "n=1"
    assert q("^/a /b?n=1 [QSA]", "o=1") == "n=1&o=1"
    assert q("^/a /b [QSA]", "o=1") == "o=1"
    assert q("^/a /b [QSD]", "o=1") is None
    assert q("^/a /b?n=1 [QSD]", "o=1") == "n=1"
    assert q("^/a /b?", "o=1") is None
    assert q("^/a /b?c?d [QSL]", "o=1") == "d"
    assert q("^/a /b?c?d", "o=1") == "c?d"
    assert q("^/a /b", "o=1") == "o=1"
    assert q("^/a /b?& [QSA]", None) == "&"            # "&&", one trailing '&' dropped


def test_unsafe_qmark_and_bad_query():
    d, st = tr("/a?b", r"^/(.*)$ /x/$1")
    assert (d.kind, d.status) == ("status", 403) and st.errors[0][0] == "HP12010"
    d, _ = tr("/a?b", r"^/(.*)$ /x/$1 [UnsafeAllow3F]")
    assert d.kind == "file"
    d, st = tr("/a", "^/a /b?x=%{HTTP:X}", headers={"x": "a b"})
    assert (d.kind, d.status) == ("status", 403) and st.errors[0][0] == "HP12013"


def test_skip_chain_next_last_end():
    assert tr("/a", "^/a - [S=1]", "^/a /skipped", "^/a /c")[0].filename == DOCROOT + "/c"
    assert tr("/a", "^/a - [C]", "^/x /chained", "^/a /after")[0].filename == DOCROOT + \
        "/after"
    assert tr("/x", "^/y - [C]", "^/x /chained [L]", "^/x /after")[0].filename == DOCROOT + \
        "/after"
    assert tr("/n/a-b-c", "^/n/(.*)-(.*)$ /n/$1_$2 [N]", "^/n/(.*) /$1")[0].filename == \
        DOCROOT + "/a_b_c"
    d, st = tr("/l", "^/l(.*)$ /l$1x [N=5]")
    assert (d.kind, d.status) == ("status", 500) and st.errors[0][0] == "HP12012"
    assert tr("/a", "^/a /b [L]", "^/b /c")[0].filename == DOCROOT + "/b"
    assert tr("/a", "^/a /b", "^/b /c")[0].filename == DOCROOT + "/c"
    d, st = tr("/a", "^/a /b [END]", "^/b /c")
    assert d.filename == DOCROOT + "/b" and st.pool["rewrite-end"]


def test_pass_through_env_cookie_type():
    d, _ = tr("/a", "^/a /alias/x [PT]")
    assert (d.kind, d.uri) == ("passthrough", "/alias/x")
    d, st = tr("/a", "^/a - [E=A:1,E=B,E=!C]", env={"C": "x"})
    assert st.env == {"A": "1", "B": "", "SCRIPT_URL": "/a", "SCRIPT_URI": "http://ex.test/a"}
    d, st = tr("/a", "^/a /b [CO=n:v:.ex.test:0:/p:secure:httponly:Strict,CO=n:w:x]")
    assert st.err_headers_out == [
        ("Set-Cookie", "n=v; path=/p; domain=.ex.test; secure; HttpOnly; SameSite=Strict")]
    d, st = tr("/a", "^/a /b [CO=n:v:d:60]", request_time=0.0)
    assert st.err_headers_out[0][1].endswith("expires=Thu, 01-Jan-1970 01:00:00 GMT")
    d, st = tr("/a", "^/a /b [T=Text/Plain,H=x]")
    assert st.notes["rewrite-forced-mimetype"] == "text/plain"


def test_vary_from_header_conditions():
    _, st = tr("/a", "COND %{HTTP:X-A} ^1", "COND %{HTTP_HOST} .", "^/a /b",
               headers={"x-a": "1", "host": "h"})
    assert st.headers_out == [("Vary", "X-A")]
    _, st = tr("/a", "COND %{HTTP:X-A} ^1 [NV]", "^/a /b", headers={"x-a": "1"})
    assert st.headers_out == []


def test_or_conditions_and_captures():
    lines = ("COND %{HTTP:X-A} =1 [OR]", "COND %{HTTP:X-B} =1", "^/a /yes")
    assert tr("/a", *lines, headers={"x-b": "1"})[0].kind == "file"
    assert tr("/a", *lines)[0].kind == "declined"
    d, _ = tr("/a", "COND %{QUERY_STRING} id=(\\d+)", "^/(a)$ /$1-%1", args="id=7")
    assert d.filename == DOCROOT + "/a-7"


def test_not_a_url_path_declines():
    st = state("*")
    st.unparsed_uri = "*"
    assert E.translate(st, rules("^ /x"), 0, {}).kind == "declined"


# -- rules: per-directory context -------------------------------------------------------------------
def fx(filename, *lines, directory=DOCROOT + "/d/", baseurl=None, options=0, uri=None,
       follow=True, args=None, **kw):
    st = state(uri or "/d/x", args, **kw)
    st.filename = filename
    return E.fixup(st, directory, rules(*lines), options, baseurl, {}, follow), st


def test_perdir_prefix_and_internal_redirect():
    d, _ = fx(DOCROOT + "/d/a.txt", r"^a\.txt$ b.txt")
    assert (d.kind, d.uri) == ("internal", "/d/b.txt")
    d, _ = fx(DOCROOT + "/d/a.txt", r"^a\.txt$ b.txt", baseurl="/base/")
    assert d.uri == "/base/b.txt"
    d, _ = fx(DOCROOT + "/d/a.txt", r"^a\.txt$ /abs.txt?q=1")
    assert d.uri == "/abs.txt?q=1"
    d, _ = fx(DOCROOT + "/d/x", r"^x$ x")
    assert d.kind == "ok"                                       # same as before: no loop
    d, _ = fx(DOCROOT + "/d/a", r"^a$ t [R]")                   # no RewriteBase: the path shows
    assert d.location == f"http://ex.test{DOCROOT}/d/t"
    d, _ = fx(DOCROOT + "/d/a", r"^a$ t [R]", baseurl="/d/")
    assert d.location == "http://ex.test/d/t"
    d, _ = fx(DOCROOT + "/d/p", r"^p/more$ q", path_info="/more")
    assert d.uri == "/d/q"
    d, _ = fx(DOCROOT + "/d/p", r"^p/more$ q [DPI]", path_info="/more")
    assert d.uri == "/d/q"


def test_perdir_guards():
    assert fx(DOCROOT + "/d", "^ x")[0].kind == "declined"      # the directory without '/'
    assert fx(DOCROOT + "/d", "^ x", options=E.O_NOSLASH)[0].kind == "internal"
    d, st = fx(DOCROOT + "/d/a", "^a b", follow=False)
    assert (d.kind, d.status) == ("status", 403) and st.errors[0][0] == "HP12016"
    st = state("/d/a")
    st.filename = DOCROOT + "/d/a"
    st.pool["rewrite-end"] = True
    assert E.fixup(st, DOCROOT + "/d/", rules("^a b"), 0, None, {}, True).kind == "declined"


def test_walk_split(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("")
    assert E.walk_split(f"{tmp_path}/d/f") == (f"{tmp_path}/d/f", "")
    assert E.walk_split(f"{tmp_path}/d/x/y/z") == (f"{tmp_path}/d/x", "/y/z")
    assert E.walk_split(f"{tmp_path}/d/f/extra") == (f"{tmp_path}/d/f", "/extra")
    assert E.walk_split(f"{tmp_path}/d/x/") == (f"{tmp_path}/d/x", "/")


def test_subst_prefix_and_docroot_join():
    assert E.subst_prefix_path("/a/b/c", "/a/b/", "/x") == "/x/c"
    assert E.subst_prefix_path("/a/bc", "/a/b/", "/x/") == "/a/bc"
    assert E.docroot_join("/r/", "//a/./b/") == "/r/a/b/"
    assert E.docroot_join("/r", "/a/../..") is None
