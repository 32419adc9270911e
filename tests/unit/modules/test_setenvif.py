"""mod_setenvif and mod_env: parsing (Apache's messages), every attribute, plain-string and regex
tests, $N, unsetting, the server-level (post_read) and per-directory (header_parser) tables, the
mod_env merge, and ``Require env``/``Allow from env=`` reading what SetEnvIf set -- over a loaded
config and a ``hooks.Request`` built directly.  Expected values are apache2 2.4.71's for the
same lines (tests/interop/modules/headers compares them live)."""
from __future__ import annotations

import re
import time

import pytest

from httpd_py.config import dirconf, load, load_htaccess
from httpd_py.errors import ConfigError
from httpd_py.http import access, hooks
from httpd_py.http.access import RequestFacts
from httpd_py.http.walk import SectionWalker
from httpd_py.modules import env as mod_env
from httpd_py.modules.env import env_get, env_set, env_unset
from httpd_py.modules.setenvif import non_regex_pattern, parse_rule

MODS = "/usr/lib/apache2/modules"


def config(tmp_path, text: str):
    docroot = tmp_path / "htdocs"
    (docroot / "sub").mkdir(parents=True, exist_ok=True)
    conf = tmp_path / "s.conf"
    conf.write_text(f"LoadModule setenvif_module {MODS}/mod_setenvif.so\n"
                    f"LoadModule env_module {MODS}/mod_env.so\n"
                    f"LoadModule authz_core_module {MODS}/mod_authz_core.so\n"
                    f"LoadModule access_compat_module {MODS}/mod_access_compat.so\n"
                    f"ServerName localhost\nListen 127.0.0.1:8080\n"
                    f'DocumentRoot "{docroot}"\n' + text)
    return load(str(conf), server_root=str(tmp_path), log_warnings=False), docroot


def request(cfg, docroot, path="/a.txt", *, headers=None, method="GET", version="1.1",
            unparsed=None, vhost=None, env=None, query=""):
    vhost = vhost or cfg.main
    filename = str(docroot) + path
    conf = SectionWalker(vhost, cfg).lookup(filename, False, path).conf
    return hooks.Request(method=method, uri=path, query=query,
                         headers={k.lower(): v for k, v in (headers or {}).items()},
                         version=version, request_line=f"{method} {path} HTTP/{version}",
                         client_ip="127.0.0.1", client_port=40000, local_ip="127.0.0.2",
                         local_port=8080, https=False, vhost=vhost,
                         unparsed_uri=unparsed or path, filename=filename, conf=conf,
                         env=dict(env or {}), start=time.time())


def phases(req):
    """post_read, header_parser, then fixups: what the pipeline runs before the handler."""
    hooks.run(hooks.POST_READ, req)
    hooks.run(hooks.HEADER_PARSER, req)
    hooks.run(hooks.FIXUPS, req)
    return req.env


def env_of(tmp_path, text, path="/a.txt", **kw):
    cfg, docroot = config(tmp_path, text)
    return phases(request(cfg, docroot, path, **kw))


# -- parsing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, words, message", [
    ("SetEnvIf", [], "Missing header-field name for SetEnvIf"),
    ("SetEnvIf", ["X"], "Missing regular expression for SetEnvIf"),
    ("SetEnvIf", ["X", "a"], "Missing envariable expression for SetEnvIf"),
    ("BrowserMatch", ["a"], "Missing envariable expression for BrowserMatch"),
    ("BrowserMatchNoCase", [], "Missing regular expression for BrowserMatchNoCase"),
    ("SetEnvIf", ["X", "(a", "V"], "SetEnvIf regex could not be compiled."),
    ("SetEnvIf", ["X(", "a", "V"], "SetEnvIfHeader name regex could not be compiled."),
    ("SetEnvIfExpr", [], "Missing expression for SetEnvIfExpr"),
    ("SetEnvIfExpr", ["%{NOPE} == 1", "V"], 'Could not parse expression "%{NOPE} == 1"'),
    ("SetEnvIfExpr", ["true"], "Missing envariable expression for SetEnvIfExpr"),
])
def test_parse_errors(name, words, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_rule(name, words)


def test_features():
    r = parse_rule("SetEnvIf", ["Request_URI", "^/a", "A", "B=2", "!C", "D=", "!E=x", "F=!g"])
    assert r.features == (("A", "1"), ("B", "2"), ("C", None), ("D", "1"), ("!E", "x"),
                          ("F", "!g"))
    assert r.kind == "request_uri" and r.regex is not None and r.pattern is None
    assert parse_rule("SetEnvIf", ["X-Foo", "a", "V"]).kind == "header"
    assert parse_rule("SetEnvIf", ["^X-F.*", "a", "V"]).kind == "header-regex"
    assert parse_rule("BrowserMatchNoCase", ["curl", "V"]).attribute == "User-Agent"


@pytest.mark.parametrize("regex, plain", [
    ("curl", "curl"), ("b\\.txt", "b.txt"), ("a\\\\b", "a\\b"), ("^a", None), ("a.b", None),
    ("a\\w", None), ("x$", None), ("a{2}", None), ("(a)", None), ("", ""),
])
def test_non_regex_pattern(regex, plain):
    assert non_regex_pattern(regex) == plain


# -- matching --------------------------------------------------------------------------------------
def test_every_attribute(tmp_path):
    env = env_of(tmp_path, r"""
SetEnvIf X-Test "^(a)(b)?" HAS_TEST=got-$1-$2 !NOPE
SetEnvIfNoCase x-TEST ^A CASEX
SetEnvIf Request_Method POST ISPOST
SetEnvIf Remote_Addr ^127\. LOCAL=1
SetEnvIf Server_Addr ^127\. SADDR=$0
SetEnvIf Request_Protocol "HTTP/1\.0" OLD
SetEnvIf ^X-T.* ^z RXNAME
SetEnvIf HAS_TEST got FROMVAR=yes
SetEnvIf Remote_Host . RHOST=$0
BrowserMatch curl CURL=$0
BrowserMatchNoCase CURL/7 CURLNC
SetEnvIfExpr "%{QUERY_STRING} =~ /q=(\w+)/" QV=$1
SetEnvIf X-Missing ^$ EMPTY=yes
""", headers={"X-Test": "ab", "X-Tz": "zz", "User-Agent": "curl/7.88"}, env={"NOPE": "1"},
                 query="q=hello")
    assert env == {"HAS_TEST": "got-a-b", "CASEX": "1", "LOCAL": "1", "SADDR": "127.",
                   "RXNAME": "1", "FROMVAR": "yes", "RHOST": "1", "CURL": "$0", "CURLNC": "1",
                   "QV": "hello", "EMPTY": "yes"}
    env = env_of(tmp_path, "SetEnvIf Request_Method POST ISPOST\n"
                           "SetEnvIf Request_Protocol \"HTTP/1\\.0\" OLD\n",
                 method="POST", version="1.0")
    assert env == {"ISPOST": "1", "OLD": "1"}


def test_unset_and_case(tmp_path):
    env = env_of(tmp_path, """
SetEnvIf Request_URI . A=1 B=2 C=3
SetEnvIf Request_URI . !a C=!x
SetEnvIf Request_URI . b=two
""")
    assert env == {"B": "two"}


def test_consecutive_rules_read_the_attribute_once(tmp_path):
    # Apache reads FOO (here an environment variable) once for the two rules in a row: the
    # second does not see the value the first set.
    env = env_of(tmp_path, "SetEnvIf FOO ^$ FOO=x\nSetEnvIf FOO ^x$ SEEN\n")
    assert env == {"FOO": "x"}
    env = env_of(tmp_path, "SetEnvIf FOO ^$ FOO=x\nSetEnvIf Request_URI . Y\n"
                           "SetEnvIf FOO ^x$ SEEN\n")
    assert env == {"FOO": "x", "Y": "1", "SEEN": "1"}


def test_server_rules_see_the_raw_uri_directory_rules_the_decoded_one(tmp_path):
    env = env_of(tmp_path, f"""
SetEnvIf Request_URI "(.*)" SRV_URI=$1
<Directory "{tmp_path}/htdocs">
SetEnvIf Request_URI "(.*)" DIR_URI=$1
</Directory>
""", "/A b.txt", unparsed="http://localhost/%41%20b.txt?x=1")
    assert env == {"SRV_URI": "/%41%20b.txt", "DIR_URI": "/A b.txt"}


def test_directory_rules_merge_in_order(tmp_path):
    text = f"""
SetEnvIf Request_URI . LEVEL=server
<Directory "{tmp_path}/htdocs">
SetEnvIf Request_URI . LEVEL=top TOP
</Directory>
<Directory "{tmp_path}/htdocs/sub">
SetEnvIf Request_URI . LEVEL=sub !TOP
</Directory>
"""
    assert env_of(tmp_path, text) == {"LEVEL": "top", "TOP": "1"}
    assert env_of(tmp_path, text, "/sub/b.txt") == {"LEVEL": "sub"}


def test_vhost_runs_the_main_servers_rules_then_its_own(tmp_path):
    cfg, docroot = config(tmp_path, """
SetEnvIf Request_URI . WHO=main MAIN
<VirtualHost *:8080>
ServerName v.test
SetEnvIf Request_URI . WHO=vhost
</VirtualHost>
""")
    env = phases(request(cfg, docroot, vhost=cfg.vhosts[0]))
    assert env == {"WHO": "vhost", "MAIN": "1"}


def test_htaccess_rules(tmp_path):
    cfg, _ = config(tmp_path, "")
    conf = load_htaccess(str(tmp_path / ".htaccess"), "SetEnvIf Request_URI ^/h HT=$0\n", cfg,
                         dirconf.Overrides(frozenset({"fileinfo"})))
    assert len(conf.mod("dir.setenvif.rules")) == 1
    with pytest.raises(ConfigError, match="not allowed here"):
        load_htaccess(str(tmp_path / ".htaccess"), "SetEnvIf Request_URI ^/h HT\n", cfg,
                      dirconf.Overrides(frozenset({"indexes"})))


# -- mod_env ---------------------------------------------------------------------------------------
def test_setenv_unsetenv_passenv(tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPD_PY_PASS_TEST", "passed")
    monkeypatch.delenv("HTTPD_PY_NOT_SET", raising=False)
    text = f"""
SetEnv A one
SetEnv B
SetEnv C three
PassEnv HTTPD_PY_PASS_TEST HTTPD_PY_NOT_SET
SetEnvIf Request_URI . C=from-setenvif
<Directory "{tmp_path}/htdocs/sub">
UnsetEnv A HTTPD_PY_PASS_TEST
SetEnv D four
SetEnv d lower
</Directory>
"""
    cfg, docroot = config(tmp_path, text)
    assert any("PassEnv variable HTTPD_PY_NOT_SET was undefined" in w for w in cfg.warnings)
    top = phases(request(cfg, docroot))
    assert top == {"C": "from-setenvif", "A": "one", "B": "", "HTTPD_PY_PASS_TEST": "passed"}
    sub = phases(request(cfg, docroot, "/sub/b.txt"))
    assert sub == {"C": "from-setenvif", "B": "", "D": "lower"}


def test_env_merge_rules():
    E, eff = mod_env.EnvConf, mod_env.effective
    base = E((("A", "1"), ("B", "2")))
    assert eff(mod_env.merge(base, E((("a", "x"),), ("B",), "dir"))) == (("A", "x"),)
    assert eff(mod_env.merge(base, E((("C", "3"),), (), "loc"))) == (
        ("A", "1"), ("B", "2"), ("C", "3"))
    vhost = mod_env.merge(base, E((), ("A",)))           # a vhost's UnsetEnv: straight merge
    assert eff(vhost) == (("B", "2"),)


# What apache2 2.4.71 answers (observed): each walk merges its mod_env sections among
# themselves first, dropping their UnsetEnv lists, then onto what the request has.
@pytest.mark.parametrize("sections, want", [
    # <Directory e1> SetEnv A dir, C dir; <Directory e1/e2> UnsetEnv A C
    ([("dir", (("A", "dir"), ("C", "dir")), ()), ("dir", (), ("A", "C"))],
     (("A", "server"), ("B", "server"))),
    # only <Directory e1/e2> UnsetEnv A: the server's A goes
    ([("dir", (), ("A",))], (("B", "server"),)),
    # <Location /e1/e2> UnsetEnv A plus a <Location> without mod_env lines: A goes
    ([("loc", (), ("A",))], (("B", "server"),)),
    # <Directory e1> SetEnv B x; <Location /e1/e2> SetEnv C; <Location /e1> UnsetEnv C B A
    ([("dir", (("B", "x"),), ()), ("loc", (("C", "loc"),), ()), ("loc", (), ("C", "B", "A"))],
     (("A", "server"), ("B", "x"))),
])
def test_env_merge_follows_apaches_walks(sections, want):
    E = mod_env.EnvConf
    conf = E((("A", "server"), ("B", "server")))
    for walk, vars_, unset in sections:
        conf = mod_env.merge(conf, E(vars_, unset, walk))
    assert mod_env.effective(conf) == want


def test_spurious_equals_is_a_warning(tmp_path):
    cfg, _ = config(tmp_path, "SetEnv A=b\n")
    assert any("Spurious usage of '='" in w for w in cfg.warnings)


def test_env_table_without_case():
    env = {"Foo": "1"}
    assert env_get(env, "FOO") == "1" and env_get(env, "bar") is None
    env_set(env, "FOO", "2")
    assert env == {"Foo": "2"}
    env_unset(env, "foo")
    assert env == {}


# -- access control reads the environment ----------------------------------------------------------
def test_require_env_and_allow_from_env_see_setenvif(tmp_path):
    text = f"""
SetEnvIf X-Key ^open$ LET_IN
<Directory "{tmp_path}/htdocs">
SetEnvIf Request_URI ^/sub/ IN_SUB
Require env LET_IN IN_SUB
</Directory>
<Directory "{tmp_path}/htdocs/compat">
Order deny,allow
Deny from all
Allow from env=LET_IN
</Directory>
<Directory "{tmp_path}/htdocs/setenv">
SetEnv LET_IN 1
</Directory>
"""
    cfg, docroot = config(tmp_path, text)

    def status(path, **kw):
        req = request(cfg, docroot, path, **kw)
        hooks.run(hooks.POST_READ, req)
        hooks.run(hooks.HEADER_PARSER, req)
        out = access.check(req.conf, RequestFacts.of(req), None)
        return out.status or 200

    assert status("/a.txt") == 403
    assert status("/a.txt", headers={"X-Key": "open"}) == 200
    assert status("/sub/b.txt") == 200
    assert status("/compat/f.txt") == 403
    assert status("/compat/f.txt", headers={"X-Key": "open"}) == 200
    assert status("/setenv/f.txt") == 403        # SetEnv runs at fixups, after access
