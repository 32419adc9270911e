"""ProxyPass matching (mod_proxy's alias_match), ProxyPassMatch substitution, the canonical
target, and config parsing through the real loader."""
from __future__ import annotations

import os
import tempfile

import pytest

from httpd_py.config import load
from httpd_py.errors import ConfigError
from httpd_py.http.hooks import OK, Request
from httpd_py.modules.proxy import conf as C
from httpd_py.modules.proxy import handler as H


@pytest.mark.parametrize("uri, fake, n", [
    ("/app", "/app", 4),
    ("/app/x", "/app", 4),
    ("/appx", "/app", 0),
    ("/app/x", "/app/", 5),
    ("/app", "/app/", 0),
    ("//app//x", "/app/", 7),
    ("/", "/", 1),
    ("/anything", "/", 1),
    ("/", "/app", 0),
    ("/ap", "/app", 0),
])
def test_alias_match(uri, fake, n):
    assert H.alias_match(uri, fake) == n


def load_text(text: str):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "httpd.conf")
        with open(path, "w") as f:
            f.write(f"ServerRoot {d}\nServerName localhost\nListen 127.0.0.1:18999\n" + text)
        return load(path, log_warnings=False)


def req(cfg, uri, query="", unparsed=None):
    v = cfg.main
    return Request("GET", uri, query, {"host": "front:8080"}, "1.1", f"GET {uri} HTTP/1.1",
                   "192.0.2.9", 5555, "127.0.0.1", 8080, False, v, hostname="front",
                   unparsed_uri=unparsed or (uri + ("?" + query if query else "")),
                   server=cfg)


CONF = """
ProxyPass /app/private !
ProxyPass /app http://b1:8001/base
ProxyPass /root/ http://b2/
ProxyPassMatch ^/m/(.*)\\.png$ http://b3/img/$1.png
ProxyPassMatch \\.gif$ http://b4
ProxyPass /raw http://b5 nocanon
ProxyPass /nq http://b6 noquery
<Location /loc>
    ProxyPass http://b7/inside
</Location>
<LocationMatch ^/lm/>
    ProxyPass http://b8
</LocationMatch>
"""


@pytest.mark.parametrize("uri, query, unparsed, target", [
    ("/app/x y", "a=%20", "/app/x%20y?a=%20", "http://b1:8001/base/x%20y?a=%20"),
    ("/app", "", None, "http://b1:8001/base"),
    ("/app/private/x", "", None, None),
    ("/appx", "", None, None),
    ("/root/a/b", "", None, "http://b2/a/b"),
    ("/m/cat.png", "", None, "http://b3/img/cat.png"),
    ("/deep/x.gif", "", None, "http://b4/deep/x.gif"),
    ("/raw/a%2Fb c", "q=1", "/raw/a%2Fb%20c?q=1", "http://b5/a%2Fb%20c?q=1"),
    ("/nq/x", "q=1", None, "http://b6/x?q=1"),       # noquery is mod_proxy_fcgi's only
    ("/loc/y", "", None, "http://b7/inside/y"),
    ("/lm/z", "", None, None),      # ProxyPass in <LocationMatch>: a literal prefix (apache2)
    ("/elsewhere", "", None, None),
])
def test_translate(uri, query, unparsed, target):
    cfg = load_text(CONF)
    r = req(cfg, uri, query, unparsed)
    got = H.translate(r)
    if target is None:
        assert got is None and r.handler is None
        return
    assert got == OK and r.handler == "proxy-server" and r.filename.startswith("proxy:")
    origin, path = H.canonical_target(r.filename[6:], r)
    assert origin + path == target


def test_no_proxy_directives_is_a_dict_check():
    cfg = load_text("")
    assert H.translate(req(cfg, "/app")) is None


def test_workers_and_sharing():
    cfg = load_text("ProxyPass /a http://B1:81 timeout=7 retry=0 disablereuse=On max=3 "
                    "ttl=9\nProxyPass /b http://b1:81/sub timeout=1\n")
    workers = cfg.main.mod(C.K_WORKERS)
    assert len(workers) == 1
    w = workers[0]
    assert (w.name, w.host, w.port) == ("http://b1:81", "b1", 81)
    p = w.params
    assert (p.timeout, p.retry, p.disablereuse, p.max, p.ttl) == (7, 0, True, 3, 9)
    assert any("shares worker" in x for x in cfg.warnings)


def test_balancer_outside_sections():
    cfg = load_text("BalancerMember balancer://pool http://m1:1 loadfactor=2 route=r1\n"
                    "BalancerMember balancer://pool http://m2:2 status=+H route=r2\n"
                    "ProxySet balancer://pool stickysession=JSESSIONID nofailover=On\n"
                    "ProxyPass /bal balancer://pool lbmethod=byrequests\n")
    (b,) = cfg.main.mod(C.K_BALANCERS)
    assert b.name == "balancer://pool" and b.sticky == ("JSESSIONID",) and b.nofailover
    assert [m.params.loadfactor for m in b.members] == [2, 1]
    assert "hot-standby" in b.members[1].params.status
    assert b.members[0].slot != b.members[1].slot


def test_vhost_inherits_main_rules_first():
    cfg = load_text("ProxyPass /a http://main\n<VirtualHost *:18999>\nServerName v\n"
                    "ProxyPass /b http://vh\n</VirtualHost>\n")
    rules = cfg.vhosts[0].mod(C.K_PASSES)
    assert [r.url for r in rules] == ["http://main", "http://vh"]


@pytest.mark.parametrize("text, words", [
    ("ProxyPass /a ftp://x\n", "scheme"),
    ("ProxyPass /a http://x bogus=1\n", "unknown Worker parameter"),
    ("ProxyPass /a http://x timeout=abc\n", "Timeout"),
    ("ProxyPass /a http://x loadfactor=0\n", "LoadFactor"),
    ("ProxyPass /a http://x justaword\n", "key=value"),
    ("ProxyPass /a\n", "needs a path"),
    ("ProxyRequests On\n", "forward proxying"),
    ("ProxyVia sometimes\n", "ProxyVia"),
    ("BalancerMember http://x\n", "balancer name"),
    ("BalancerMember balancer://p http://x\nProxySet balancer://p lbmethod=bytraffic\n",
     "lbmethod"),
    ("ProxySet balancer://p lbmethod=byrequests\n", "can not find"),
    ("<Directory />\nProxyPass http://x\n</Directory>\n", "cannot occur"),
    ("ProxyPassMatch ^/(unclosed http://x\n", "compiled"),
])
def test_config_errors(text, words):
    with pytest.raises(ConfigError) as e:
        load_text(text)
    assert words in str(e.value)


@pytest.fixture
def section_hook(monkeypatch):
    """The walker calling a section row's handler with its node: the hook mod_proxy asks the
    lead for (build._section), simulated here."""
    from httpd_py.config import build
    orig = build._section

    def hooked(d, node, w, loc):
        if d.handler is not None:
            return d.handler(w, node)
        return orig(d, node, w, loc)
    monkeypatch.setattr(build, "_section", hooked)


def test_proxy_section_defines_a_balancer(section_hook):
    cfg = load_text("<Proxy balancer://p>\n  BalancerMember http://m1:1 route=a\n"
                    "  BalancerMember http://m2:2 loadfactor=3\n"
                    "  ProxySet lbmethod=byrequests stickysession=S\n"
                    "  Require all granted\n</Proxy>\nProxyPass /x balancer://p\n")
    (b,) = cfg.main.mod(C.K_BALANCERS)
    assert b.name == "balancer://p" and b.sticky == ("S",)
    assert [(m.name, m.params.route, m.params.loadfactor) for m in b.members] == [
        ("http://m1:1", "a", 1), ("http://m2:2", "", 3)]


def test_proxy_section_refuses_what_it_does_not_apply(section_hook):
    with pytest.raises(ConfigError) as e:
        load_text("<Proxy *>\n  Require ip 10.0.0.0/8\n</Proxy>\n")
    assert "not applied" in str(e.value) and "line 5" in str(e.value)


def test_proxy_section_is_read_or_listed_as_ignored():
    """Without the walker's section hook the section is listed as ignored; with it, read."""
    cfg = load_text("<Proxy balancer://p>\n  BalancerMember http://m1:1\n</Proxy>\n")
    ignored = any(name == "<Proxy>" for name, _ in cfg.ignored_directives)
    defined = bool(cfg.main.mod(C.K_BALANCERS))
    assert ignored != defined


def test_proxy_block_and_continue_and_inherit_rows():
    cfg = load_text("ProxyBlock evil.example *.bad\nProxy100Continue Off\n"
                    "ProxyPassInherit Off\nProxyPass /a http://b\n"
                    "<VirtualHost *:18999>\nServerName v\nProxyPass /v http://c\n</VirtualHost>\n")
    assert cfg.main.mod(C.K_BLOCK) == ("evil.example", "*.bad")
    assert cfg.main.dir.mod(C.K_CONTINUE) is False
    v = cfg.vhosts[0]
    assert [r.url for r in v.mod(C.K_OWN_PASSES)] == ["http://c"]
    assert [r.url for r in v.mod(C.K_PASSES)] == ["http://b", "http://c"]


def test_blocked_host_is_403():
    cfg = load_text("ProxyBlock internal\nProxyPass /a http://db.internal.example/\n")
    r = req(cfg, "/a/x")
    assert H.translate(r) == OK
    r.conf = cfg.main.dir
    got = H.handle(r)
    assert got.status == 403 and b"Connect to remote machine blocked" in got.body


@pytest.mark.parametrize("text, words", [
    ("ProxyPassInterpolateEnv On\n", "not built"),
    ("<ProxyMatch ^http://x>\nRequire ip 10.0.0.1\n</ProxyMatch>\n", "not applied"),
])
def test_refused_until_built(text, words):
    with pytest.raises(ConfigError) as e:
        load_text(text)
    assert words in str(e.value)
