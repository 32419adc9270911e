"""mod_rewrite's directives through the real config loader (contexts, errors, Apache's server and
per-directory merges, the per-directory prefix of each kind of section and of .htaccess) and its
hooks on a ``hooks.Request`` built here (translate, fixup, [T=], the trace lines)."""
from __future__ import annotations

import os

import pytest

from httpd_py import log
from httpd_py.config import load
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.http.walk import SectionWalker
from httpd_py.modules.rewrite import hooks as rh
from httpd_py.modules.rewrite.rows import DIR, server_conf

BASE = "Listen 127.0.0.1:18080\nLoadModule rewrite_module /x/mod_rewrite.so\nServerName main.test\n"


def ld(tmp_path, text):
    (tmp_path / "htdocs").mkdir(exist_ok=True)
    p = tmp_path / "httpd.conf"
    p.write_text(BASE + f'DocumentRoot "{tmp_path}/htdocs"\n' + text)
    return load(str(p), log_warnings=False)


def err(tmp_path, text):
    with pytest.raises(ConfigError) as e:
        ld(tmp_path, text)
    return e.value.msg, e.value.line


def vhost(cfg, name):
    return next(v for v in cfg.vhosts if v.server_name == name)


# -- directives -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,msg", [
    ("RewriteBase /x\n", "RewriteBase: only valid in per-directory config files"),
    ("<Directory />\nRewriteBase x\n</Directory>\n", "RewriteBase: argument is not a valid URL"),
    ("RewriteOptions Nope\n", "RewriteOptions: unknown option 'Nope'"),
    ("RewriteMap m prg:/bin/cat\n", "RewriteMap: prg: maps"),
    ("RewriteMap m dbm:/x.db\n", "RewriteMap: dbm maps"),
    ("RewriteMap m dbd:SELECT\n", "RewriteMap types dbd and fastdbd require mod_dbd!"),
    ("RewriteMap m int:nope\n", "RewriteMap: internal map not found:nope"),
    ("RewriteMap m txt:/nonexistent/map\n", "RewriteMap: file for map m not found:"),
    ("<Directory />\nRewriteMap m int:toupper\n</Directory>\n", "RewriteMap not allowed in"),
    ("RewriteEngine maybe\n", "RewriteEngine must be On or Off"),
    ("RewriteRule ^a b [H=cgi-script]\n", "RewriteRule: handler 'cgi-script' is not built"),
])
def test_config_errors(tmp_path, text, msg):
    got, line = err(tmp_path, text)
    assert got.startswith(msg) and line is not None


def test_rewrite_rule_no_longer_fails_closed(tmp_path):
    cfg = ld(tmp_path, "RewriteEngine On\nRewriteRule ^/a /b [L]\n")
    assert not any(n.startswith("Rewrite") for n, _ in cfg.ignored_directives)
    assert len(server_conf(cfg.main).rules) == 1


def test_server_merge_as_apache(tmp_path):
    cfg = ld(tmp_path, """RewriteEngine On
RewriteMap mm int:toupper
RewriteRule ^/main /m
<VirtualHost *:18080>
    ServerName none.test
</VirtualHost>
<VirtualHost *:18080>
    ServerName own.test
    RewriteRule ^/own /o
</VirtualHost>
<VirtualHost *:18080>
    ServerName inherit.test
    RewriteOptions Inherit
    RewriteRule ^/own /o
</VirtualHost>
<VirtualHost *:18080>
    ServerName before.test
    RewriteOptions InheritBefore
    RewriteRule ^/own /o
</VirtualHost>
<VirtualHost *:18080>
    ServerName off.test
    RewriteEngine Off
</VirtualHost>
""")
    def pats(name):
        return [r.pattern for r in server_conf(vhost(cfg, name)).rules]
    assert pats("none.test") == [] and server_conf(vhost(cfg, "none.test")).state
    assert server_conf(vhost(cfg, "none.test")).map_table() == {}
    assert pats("own.test") == ["^/own"]
    assert pats("inherit.test") == ["^/own", "^/main"]
    assert "mm" in server_conf(vhost(cfg, "inherit.test")).map_table()
    assert pats("before.test") == ["^/main", "^/own"]
    assert not vhost(cfg, "off.test").dir.mod(DIR).state         # the engine state per vhost
    assert vhost(cfg, "own.test").dir.mod(DIR).state


def test_inherit_down(tmp_path):
    cfg = ld(tmp_path, """RewriteEngine On
RewriteOptions InheritDown
RewriteRule ^/main /m
<VirtualHost *:18080>
    ServerName a.test
    RewriteRule ^/own /o
</VirtualHost>
<VirtualHost *:18080>
    ServerName b.test
    RewriteOptions IgnoreInherit
    RewriteRule ^/own /o
</VirtualHost>
""")
    assert [r.pattern for r in server_conf(vhost(cfg, "a.test")).rules] == ["^/own", "^/main"]
    assert [r.pattern for r in server_conf(vhost(cfg, "b.test")).rules] == ["^/own"]


def test_perdir_prefixes_and_merge(tmp_path):
    d = tmp_path / "htdocs"
    (d / "sub" / "deeper").mkdir(parents=True)
    cfg = ld(tmp_path, f"""RewriteEngine On
<Directory "{d}/sub">
    RewriteBase /s/
    RewriteRule ^a b
</Directory>
<Directory "{d}/sub/deeper">
    RewriteOptions Inherit
    RewriteRule ^c d
</Directory>
<Directory ~ "^{d}/rx">
    RewriteRule ^e f
</Directory>
<Location /loc>
    RewriteRule ^g h
</Location>
""")
    walker = SectionWalker(cfg.main, cfg)
    c = walker.lookup(f"{d}/sub/x", False, "/sub/x").conf.mod(DIR)
    assert (c.directory, c.baseurl, c.state, [r.pattern for r in c.rules]) == \
        (f"{d}/sub/", "/s/", True, ["^a"])
    c = walker.lookup(f"{d}/sub/deeper/x", False, "/sub/deeper/x").conf.mod(DIR)
    assert (c.directory, c.baseurl, [r.pattern for r in c.rules]) == \
        (f"{d}/sub/deeper/", None, ["^c", "^a"])
    c = walker.lookup(f"{d}/rx1/x", False, "/rx1/x").conf.mod(DIR)
    assert c.directory == f"^{d}/rx/"
    c = walker.lookup(f"{d}/x", False, "/loc/x").conf.mod(DIR)
    assert c.directory == "/loc/"
    assert cfg.main.dir.mod(DIR).directory is None                # the server's default


def test_htaccess_prefix(tmp_path):
    from httpd_py.config import load_htaccess
    from httpd_py.config.dirconf import Overrides
    cfg = ld(tmp_path, "")
    conf = load_htaccess(f"{tmp_path}/htdocs/ht/.htaccess",
                         "RewriteEngine On\nRewriteRule ^a b [L]\n", cfg,
                         Overrides(frozenset({"fileinfo"})))
    assert conf.mod(DIR).directory == f"{tmp_path}/htdocs/ht/"
    with pytest.raises(ConfigError):
        load_htaccess(f"{tmp_path}/htdocs/ht/.htaccess", "RewriteEngine On\n", cfg,
                      Overrides(frozenset({"indexes"})))


# -- hooks ------------------------------------------------------------------------------------------
def request(cfg, uri, query="", vhost_=None, **kw):
    v = vhost_ or cfg.main
    return hooks.Request("GET", uri, query, kw.pop("headers", {"host": "main.test"}), "1.1",
                         f"GET {uri} HTTP/1.1", "127.0.0.1", 4000, "127.0.0.1", 18080, False, v,
                         hostname="main.test", unparsed_uri=uri + ("?" + query if query else ""),
                         server=cfg, **kw)


def test_hooks_registered_first():
    assert hooks.TRANSLATE[0] is rh.translate and rh.fixup in hooks.FIXUPS
    assert rh.forced_type in hooks.FIXUPS


def test_translate_hook(tmp_path):
    cfg = ld(tmp_path, """RewriteEngine On
RewriteRule ^/r$ /t [R=301]
RewriteRule ^/f$ - [F]
RewriteRule ^/file$ /x.txt [T=text/x-test,CO=c:v:main.test]
RewriteRule ^/pt$ /alias/x?q=1 [PT]
""")
    r = request(cfg, "/r")
    resp = rh.translate(r)
    assert isinstance(resp, hooks.Response) and resp.status == 301
    assert resp.header("Location") == "http://main.test/t" and b"/t" in resp.body
    assert rh.translate(request(cfg, "/f")) == 403
    r = request(cfg, "/file")
    assert rh.translate(r) == hooks.OK and r.filename == f"{tmp_path}/htdocs/x.txt"
    assert r.env["SCRIPT_URL"] == "/file"
    assert r.err_headers_out == [("Set-Cookie", "c=v; path=/; domain=main.test")]
    assert rh.forced_type(r) is None and r.content_type == "text/x-test"
    r = request(cfg, "/pt")
    assert rh.translate(r) is None and (r.uri, r.query, r.filename) == ("/alias/x", "q=1", "")
    assert rh.translate(request(cfg, "/other")) is None


def test_translate_off_is_cheap(tmp_path):
    cfg = ld(tmp_path, "RewriteRule ^/r$ /t [R]\n")          # engine off: rules never run
    assert rh.translate(request(cfg, "/r")) is None
    cfg = ld(tmp_path, "")
    assert rh.translate(request(cfg, "/r")) is None


def test_fixup_hook_internal_redirect_and_end(tmp_path):
    d = tmp_path / "htdocs"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "a.txt").write_text("a")
    cfg = ld(tmp_path, f"""<Directory "{d}/sub">
    RewriteEngine On
    RewriteRule ^a\\.txt$ b.txt [E=X:1]
    RewriteRule ^b\\.txt$ c.txt [END]
</Directory>
""")
    walker = SectionWalker(cfg.main, cfg)
    r = request(cfg, "/sub/a.txt")
    r.filename = f"{d}/sub/a.txt"
    r.conf = walker.lookup(r.filename, False, r.uri).conf
    assert rh.fixup(r) == hooks.OK and r.internal_redirect == "/sub/c.txt"
    assert r.env["X"] == "1"
    r.internal_redirect = None
    assert rh.fixup(r) is None                                    # END holds across redirects


def test_fixup_without_rules_declines(tmp_path):
    cfg = ld(tmp_path, "RewriteEngine On\n")
    r = request(cfg, "/x")
    r.conf = cfg.main.dir
    assert rh.fixup(r) is None


def test_trace_lines(tmp_path):
    cfg = ld(tmp_path, "LogLevel warn rewrite:trace3\nRewriteEngine On\nRewriteRule ^/a /b\n")
    assert rh.trace_level(cfg.main) == 3
    rfd, wfd = os.pipe()
    old = log.error_log.fd
    log.error_log.fd = wfd
    try:
        rh.translate(request(cfg, "/a"))
    finally:
        log.error_log.fd = old
        os.close(wfd)
    text = os.read(rfd, 65536).decode()
    os.close(rfd)
    lines = text.splitlines()
    assert lines and all("[rewrite:trace" in ln and "HP12100" in ln for ln in lines)
    assert "applying pattern '^/a' to uri '/a'" in text
    assert not any("[rewrite:trace4]" in ln for ln in lines)
    assert "[main.test/sid#" in lines[0] and "/initial] init rewrite engine" in lines[0]
