"""config/vhosts.py: the one vhost selection (address groups, then names), as Apache 2.4 makes it.

Every row is checked three ways: ``VHostIndex.select``, ``ServerConfig.select_vhost`` and the
server's path (``tls.sites.Sites.site_for(...).select_or_default``).  The expected answers of the
edge rows were observed on Debian's apache2 2.4 (see tests/interop/config/test_vhost_selection.py,
which repeats the interesting ones against a running apache2).
"""
from __future__ import annotations

import pytest

from httpd_py.config import vhosts as vh
from httpd_py.config.model import ServerConfig, VHost, VHostAddr
from httpd_py.tls.sites import build_sites


def v(addrs: str, name: str, *aliases: str) -> VHost:
    """A vhost from ``"host:port host:port"`` (port ``*`` for any) and its names (lower-cased as
    the ServerName/ServerAlias handlers store them)."""
    out = []
    for a in addrs.split():
        host, _, port = a.rpartition(":")
        out.append(VHostAddr(host.strip("[]"), None if port == "*" else int(port)))
    return VHost(addrs=tuple(out), server_name=name.lower(),
                 server_aliases=tuple(x.lower() for x in aliases))


MAIN = VHost(server_name="main.test")

SETS: dict[str, tuple[VHost, ...]] = {
    # name-based *:443 (with _default_ in the same group), IP groups, any-port groups
    "mixed": (
        v("*:443", "first.test"),
        v("_default_:443", "a.test", "[ab].example.com", "*.wild.test"),
        v("*:443", "b.test", "x.wild.test", "?.x"),
        v("*:443", "G.test", "h.test."),
        v("127.0.0.2:*", "c.test"),
        v("127.0.0.2:*", "d.test"),
        v("127.0.0.2:443", "e.test"),
        v("*:*", "f.test"),
        v("1.2.3.4:443", "ip3.test"),
        v("1.2.3.4:443", "ip3b.test", "*.ip3.test", "ip3.test"),
        v("[::1]:443", "v6.test"),
        v("127.0.0.3:443 *:443", "multi.test"),
    ),
    # no any-port group: other ports reach the main server
    "no_any": (
        v("*:80", "w80.test"),
        v("10.0.0.1:80", "ip80.test"),
        v("10.0.0.1:80", "ip80b.test", "*"),
    ),
    # no group at all
    "none": (),
}

ROWS = [
    # set, local ip, port, Host/SNI (None: absent), the vhost Apache picks (ServerName)
    ("mixed", "127.0.0.1", 443, None, "first.test"),            # no Host: the group's default
    ("mixed", "127.0.0.1", 443, "", "first.test"),
    ("mixed", "127.0.0.1", 443, "a.test", "a.test"),            # _default_ is the * group
    ("mixed", "127.0.0.1", 443, "b.test", "b.test"),
    ("mixed", "127.0.0.1", 443, "B.TEST", "b.test"),            # case-insensitive
    ("mixed", "127.0.0.1", 443, "b.test.", "b.test"),           # one trailing dot ignored
    ("mixed", "127.0.0.1", 443, "B.Test.:8443", "b.test"),      # port in Host ignored
    ("mixed", "127.0.0.1", 443, "b.test:9", "b.test"),
    ("mixed", "127.0.0.1", 443, "g.test", "g.test"),            # ServerName G.test
    ("mixed", "127.0.0.1", 443, "h.test", "first.test"),        # alias "h.test." never matches
    ("mixed", "127.0.0.1", 443, "nope.test", "first.test"),
    ("mixed", "127.0.0.1", 443, "a.example.com", "first.test"),  # [ab] is no pattern in Apache
    ("mixed", "127.0.0.1", 443, "[ab].example.com", "a.test"),  # ... only its literal self
    ("mixed", "127.0.0.1", 443, "y.wild.test", "a.test"),       # *.wild.test
    ("mixed", "127.0.0.1", 443, "a.b.wild.test", "a.test"),     # * spans dots
    ("mixed", "127.0.0.1", 443, "wild.test", "first.test"),     # *. needs the dot
    ("mixed", "127.0.0.1", 443, "x.wild.test", "a.test"),       # earlier wildcard beats later exact
    ("mixed", "127.0.0.1", 443, "q.x", "b.test"),               # ?.x
    ("mixed", "127.0.0.1", 443, "qq.x", "first.test"),          # ? is one character
    ("mixed", "127.0.0.1", 443, "c.test", "first.test"),        # other groups' names don't count
    ("mixed", "127.0.0.1", 443, "_default_", "a.test"),         # the address as written
    ("mixed", "127.0.0.1", 443, "multi.test", "multi.test"),
    ("mixed", "127.0.0.2", 443, None, "e.test"),                # IP:443 beats IP:* and *:443
    ("mixed", "127.0.0.2", 443, "c.test", "e.test"),
    ("mixed", "127.0.0.2", 443, "b.test", "e.test"),
    ("mixed", "127.0.0.2", 8080, None, "c.test"),               # IP:* beats *:*
    ("mixed", "127.0.0.2", 8080, "d.test", "d.test"),
    ("mixed", "127.0.0.2", 8080, "D.TEST.", "d.test"),
    ("mixed", "127.0.0.2", 8080, "f.test", "c.test"),
    ("mixed", "::ffff:127.0.0.2", 443, None, "e.test"),         # IPv4-mapped address
    ("mixed", "127.0.0.1", 8080, "b.test", "f.test"),           # *:* for any other port
    ("mixed", "1.2.3.4", 443, None, "ip3.test"),                # IP-based: first is default
    ("mixed", "1.2.3.4", 443, "ip3.test", "ip3.test"),          # ServerName of the first ...
    ("mixed", "1.2.3.4", 443, "www.ip3.test", "ip3b.test"),     # ... a wildcard of the second
    ("mixed", "1.2.3.4", 443, "IP3B.test", "ip3b.test"),
    ("mixed", "1.2.3.4", 443, "a.test", "ip3.test"),            # * vhosts are not candidates
    ("mixed", "1.2.3.4", 443, "1.2.3.4", "ip3.test"),
    ("mixed", "::1", 443, "x", "v6.test"),
    ("mixed", "127.0.0.3", 443, "b.test", "multi.test"),        # its own IP group
    ("no_any", "127.0.0.1", 80, "ip80.test", "w80.test"),
    ("no_any", "10.0.0.1", 80, "ip80b.test", "ip80b.test"),
    ("no_any", "10.0.0.1", 80, "anything.at.all", "ip80b.test"),  # alias "*"
    ("no_any", "10.0.0.1", 80, None, "ip80.test"),
    ("no_any", "10.0.0.1", 81, "ip80.test", "main.test"),       # no group: the main server
    ("no_any", "127.0.0.1", 443, "w80.test", "main.test"),
    ("none", "127.0.0.1", 80, "x.test", "main.test"),
    ("none", "127.0.0.1", 80, None, "main.test"),
]


def cfg_of(name: str) -> ServerConfig:
    return ServerConfig(config_file="x", server_root="/", main=MAIN, vhosts=SETS[name], listens=())


@pytest.mark.parametrize("set_name,ip,port,host,expect", ROWS)
def test_selection(set_name, ip, port, host, expect):
    cfg = cfg_of(set_name)
    assert vh.VHostIndex(cfg.vhosts, cfg.main).select(ip, port, host).server_name == expect
    assert cfg.select_vhost(ip, port, host).server_name == expect
    site = build_sites(cfg).site_for(ip, port)       # the server's path (no SSL: no Context)
    assert site.select_or_default(host).server_name == expect


def test_groups_in_apache_order():
    cfg = cfg_of("mixed")
    groups = [(g.host, g.port, g.vhosts) for g in cfg._groups_from_addrs()]
    assert groups == [("*", 443, (0, 1, 2, 3, 11)), ("127.0.0.2", None, (4, 5)),
                      ("127.0.0.2", 443, (6,)), ("*", None, (7,)), ("1.2.3.4", 443, (8, 9)),
                      ("::1", 443, (10,)), ("127.0.0.3", 443, (11,))]
    index = vh.VHostIndex(cfg.vhosts, cfg.main)
    assert index.group_for("127.0.0.9", 443).default.server_name == "first.test"
    assert index.group_for("127.0.0.9", 1).default.server_name == "f.test"
    assert vh.VHostIndex(SETS["no_any"], MAIN).group_for("127.0.0.1", 1) is None


@pytest.mark.parametrize("name,expect", [
    ("a.test", True), ("A.TEST", True), ("a.test.", True), ("a.test:443", True),
    ("www.a.test", True), ("x.y.a.test", True), ("y.a.test", False), ("b.test", False),
    ("a1.test", True), ("a12.test", False), ("a.test..", False), ("", False),
    ("c.example", False), ("[bc].example", True), ("[bc].example:80", True), ("*.lit", False),
])
def test_name_matches(name, expect):
    v1 = VHost(server_name="a.test",
               server_aliases=("www.a.test", "*.y.a.test", "a?.test", "[bc].example"))
    assert vh.name_matches(v1, name) is expect
    assert v1.matches_name(name) is expect
    assert vh.Group("*", 443, (v1,)).match(name) is (v1 if expect else None)


@pytest.mark.parametrize("alias,name,expect", [
    ("*", "anything", True), ("*", "", False), ("a*", "a", True), ("*b*", "xbx", True),
    ("a.b?", "a.bc", True), ("a.b?", "a.b", False), ("a+b.*", "a+b.c", True),
    ("a+b.*", "aab.c", False), ("a\\*", "a\\x", True), ("**.x", "y.x", True),
])
def test_patterns_are_literal_but_for_star_and_question_mark(alias, name, expect):
    assert vh.name_matches(VHost(server_aliases=(alias,)), name) is expect


def test_server_name_is_never_a_pattern():
    star = VHost(server_name="*.a.test")
    assert not vh.name_matches(star, "x.a.test") and vh.name_matches(star, "*.a.test")


@pytest.mark.parametrize("text,expect", [
    ("Example.COM", "example.com"), ("example.com.", "example.com"), ("example.com:80", "example.com"),
    ("[::1]:443", "[::1]"), ("[::1]", "[::1]"), ("::1", "::1"), (" a.b ", "a.b"),
    ("[ab].x:80", "[ab].x"), ("[ab].x", "[ab].x"),
])
def test_norm_name(text, expect):
    assert vh.norm_name(text) == expect


class CountingDict(dict):
    probes = 0

    def get(self, *a):
        CountingDict.probes += 1
        return super().get(*a)


def comparisons(n: int, monkeypatch) -> list[int]:
    """Name comparisons (plain-name probes + wildcard matches) for lookups in a group of n
    exact-name vhosts (plus one wildcard alias on the first and one on the last)."""
    vhosts = [v("*:443", f"v{i}.test", *(("*.first",) if i == 0 else ("*.last",) if i == n - 1
                                         else (f"alias{i}.test",)))
              for i in range(n)]
    group = vh.VHostIndex(vhosts, MAIN).group_for("127.0.0.1", 443)
    group._exact = CountingDict(group._exact)
    wild = []
    monkeypatch.setattr(vh, "_wild_match", lambda p, name: wild.append(1) or p.fullmatch(name))
    counts = []
    for name, expect in ((f"v{n - 1}.test", n - 1), (f"v{n // 2}.test", n // 2),
                         (f"alias{n - 2}.test", n - 2), ("zzz.last", n - 1), ("nope", 0)):
        CountingDict.probes, wild[:] = 0, []
        assert group.select(name) is vhosts[expect]
        counts.append(CountingDict.probes + len(wild))
    return counts


def test_exact_names_cost_the_same_for_10_and_1000_vhosts(monkeypatch):
    small, large = comparisons(10, monkeypatch), comparisons(1000, monkeypatch)
    assert small == large
    assert max(large) <= 3


def test_select_vhost_builds_its_index_once():
    cfg = cfg_of("mixed")
    cfg.select_vhost("127.0.0.1", 443, "a.test")
    index = cfg.__dict__["_vhost_index"]
    cfg.select_vhost("127.0.0.1", 443, "b.test")
    assert cfg.__dict__["_vhost_index"] is index


def test_sni_matches_names_only():
    """mod_ssl looks an SNI name up among ServerName/ServerAlias, never the address as written."""
    cfg = cfg_of("mixed")
    group = vh.VHostIndex(cfg.vhosts, cfg.main).group_for("127.0.0.1", 443)
    assert group.match("_default_").server_name == "a.test"
    assert group.match_names("_default_") is None
    assert group.match_names("Y.wild.test.").server_name == "a.test"
    site = build_sites(cfg).site_for("127.0.0.1", 443)
    assert site.select("_default_").server_name == "a.test" and site.select_sni("_default_") is None
    assert site.select_sni("b.test").server_name == "b.test"
