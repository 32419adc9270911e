"""mod_remoteip's walk (Apache's mod_remoteip.c), as a table over the pure resolve()."""
from __future__ import annotations

import os
import tempfile

import pytest

from httpd_py.config import load
from httpd_py.errors import ConfigError
from httpd_py.http.hooks import Request
from httpd_py.modules import remoteip as M


def cfg(trusted=(), internal=()):
    px = tuple((n, False) for a in trusted for n in M.parse_proxy(a)) + \
        tuple((n, True) for a in internal for n in M.parse_proxy(a))
    return M.RemoteIPConfig("x-forwarded-for", "X-Forwarded-For", px)


@pytest.mark.parametrize("c, peer, value, expected", [
    # no proxy list: every peer is trusted (external): public addresses only
    (cfg(), "192.0.2.1", "203.0.113.5", ("203.0.113.5", None, "192.0.2.1")),
    (cfg(), "192.0.2.1", "10.0.0.5", None),
    (cfg(), "192.0.2.1", "198.51.100.1, 203.0.113.5",
     ("198.51.100.1", None, "192.0.2.1, 203.0.113.5")),
    (cfg(), "192.0.2.1", "garbage, 203.0.113.5", ("203.0.113.5", "garbage", "192.0.2.1")),
    (cfg(), "192.0.2.1", " , 203.0.113.5", ("203.0.113.5", " ", "192.0.2.1")),
    # a trusted list: an untrusted peer changes nothing; the walk stops at the first
    # address that is not a listed proxy
    (cfg(trusted=["192.0.2.1"]), "192.0.2.2", "203.0.113.5", None),
    (cfg(trusted=["192.0.2.0/24"]), "192.0.2.7", "198.51.100.1, 203.0.113.5",
     ("203.0.113.5", "198.51.100.1", "192.0.2.7")),
    # internal proxies may present private addresses and do not join the proxies list
    (cfg(internal=["127.0.0.1"]), "127.0.0.1", "10.1.2.3", ("10.1.2.3", None, "")),
    (cfg(internal=["127.0.0.1", "10.0.0.0/8"]), "127.0.0.1", "192.0.2.8, 10.1.2.3",
     ("192.0.2.8", None, "")),
    (cfg(internal=["127.0.0.1"]), "127.0.0.1", "2001:db8::1", ("2001:db8::1", None, "")),
    (cfg(), "192.0.2.1", "fe80::1", None),
    (cfg(), "192.0.2.1", "2a00::1", ("2a00::1", None, "192.0.2.1")),
    (cfg(internal=["10"]), "10.9.9.9", "172.16.0.1", ("172.16.0.1", None, "")),
])
def test_resolve(c, peer, value, expected):
    assert M.resolve(c, peer, value) == expected


@pytest.mark.parametrize("arg, nets", [
    ("10.1", ["10.1.0.0/16"]),
    ("192.0.2.0/255.255.255.0", ["192.0.2.0/24"]),
    ("2001:db8::/32", ["2001:db8::/32"]),
    ("localhost", None),
])
def test_parse_proxy(arg, nets):
    got = [str(n) for n in M.parse_proxy(arg)]
    if nets is None:
        assert got
    else:
        assert got == nets


def test_bad_subnet():
    with pytest.raises(ConfigError):
        M.parse_proxy("10.0.0.0/99")


def test_hook_rewrites_request():
    with tempfile.TemporaryDirectory() as d:
        lst = os.path.join(d, "proxies.txt")
        with open(lst, "w") as f:
            f.write("# internal\n127.0.0.1  # here\n")
        path = os.path.join(d, "httpd.conf")
        with open(path, "w") as f:
            f.write(f"ServerRoot {d}\nServerName localhost\nListen 127.0.0.1:18998\n"
                    f"RemoteIPHeader X-Forwarded-For\nRemoteIPInternalProxyList {lst}\n"
                    f"RemoteIPTrustedProxy 192.0.2.0/24\nRemoteIPProxiesHeader X-Via-Proxies\n")
        c = load(path, log_warnings=False)
    r = Request("GET", "/", "", {"x-forwarded-for": "203.0.113.9, 192.0.2.5"}, "1.1",
                "GET / HTTP/1.1", "127.0.0.1", 1, "127.0.0.1", 80, False, c.main,
                raw_headers=[(b"X-Forwarded-For", b"203.0.113.9, 192.0.2.5")])
    assert M.post_read(r) is None
    assert r.client_ip == "203.0.113.9"
    assert "x-forwarded-for" not in r.headers
    assert r.headers["x-via-proxies"] == "192.0.2.5"
    assert r.raw_headers == [(b"X-Via-Proxies", b"192.0.2.5")]
