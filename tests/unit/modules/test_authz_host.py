"""mod_authz_host: APR-compatible subnet parsing and matching, Require local, Require host."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from httpd_py.errors import ConfigError
from httpd_py.modules.authz_host import (
    HostMatcher, IPMatcher, SocketResolver, double_reverse_name, in_domain, is_local, parse_ip,
)


class TableResolver:
    """A resolver from two tables; records the calls."""

    def __init__(self, reverse: dict[str, str], forward: dict[str, list[str]]):
        self._reverse, self._forward = reverse, forward
        self.calls: list[tuple[str, str]] = []

    def reverse(self, ip: str) -> str | None:
        self.calls.append(("reverse", ip))
        return self._reverse.get(ip)

    def forward(self, name: str) -> list[str]:
        self.calls.append(("forward", name))
        return self._forward.get(name, [])


# (Require ip word, client address, matches?)
MATCH_TABLE = [
    # full IPv4
    ("192.0.2.7", "192.0.2.7", True),
    ("192.0.2.7", "192.0.2.8", False),
    ("010.001.002.003", "10.1.2.3", True),          # APR's inet_pton allows leading zeros
    # partial IPv4: whole octets only
    ("10", "10.200.3.4", True),
    ("10", "11.0.0.1", False),
    ("10.1", "10.1.255.255", True),
    ("10.1", "10.2.0.1", False),
    ("10.1.", "10.1.0.9", True),
    ("10.1.", "10.10.0.9", False),
    ("172.16.5", "172.16.5.254", True),
    ("172.16.5.", "172.16.6.1", False),
    ("1.2.3.4.", "1.2.3.4", True),                  # four octets with a dot: a /32 network
    ("1.2.3.4.", "1.2.3.5", False),
    # CIDR
    ("10.0.0.0/8", "10.255.255.255", True),
    ("10.0.0.0/8", "11.0.0.0", False),
    ("192.168.1.0/24", "192.168.1.200", True),
    ("192.168.1.0/24", "192.168.2.1", False),
    ("192.168.1.77/24", "192.168.1.3", True),       # host bits are cleared
    ("0.0.0.0/1", "127.255.255.255", True),
    ("0.0.0.0/1", "128.0.0.0", False),
    ("203.0.113.9/32", "203.0.113.9", True),
    ("203.0.113.9/32", "203.0.113.10", False),
    ("10.0.0.0/+8", "10.9.9.9", True),              # strtol reads "+8"
    ("10.0.0.0/08", "10.9.9.9", True),
    # netmask, also non-contiguous and all-zero
    ("10.0.0.0/255.0.0.0", "10.1.2.3", True),
    ("10.0.0.0/255.0.0.0", "9.1.2.3", False),
    ("10.0.0.1/255.0.255.0", "10.77.0.200", True),
    ("10.0.0.1/255.0.255.0", "10.77.1.200", False),
    ("1.2.3.4/0.0.0.0", "198.51.100.1", True),
    ("1.2.3.4/0.0.0.0", "2001:db8::1", False),      # still an IPv4 rule
    # IPv4-mapped clients match IPv4 rules
    ("10.0.0.0/8", "::ffff:10.1.2.3", True),
    ("192.0.2.7", "::ffff:192.0.2.7", True),
    ("192.0.2.7", "::FFFF:c000:0207", True),
    ("10.1", "::ffff:10.1.0.1", True),
    ("10.0.0.0/8", "::ffff:11.1.2.3", False),
    # IPv6
    ("2001:db8::1", "2001:db8::1", True),
    ("2001:db8::1", "2001:DB8:0:0:0:0:0:1", True),
    ("2001:db8::1", "2001:db8::2", False),
    ("2001:db8::/32", "2001:db8:ffff::1", True),
    ("2001:db8::/32", "2001:db9::1", False),
    ("2001:db8::/48", "2001:db8:0:ffff::1", True),
    ("2001:db8::/48", "2001:db8:1::1", False),
    ("2001:db8:0:1::/64", "2001:db8:0:1:aaaa::", True),
    ("::/1", "7fff::1", True),
    ("::/1", "8000::1", False),
    ("::1", "::1", True),
    ("::1/128", "::1", True),
    ("fe80::/10", "fe80::1%eth0", True),            # the client's zone index is ignored
    ("::1.2.3.4", "::1.2.3.4", True),               # IPv4-compatible is plain IPv6
    ("::1.2.3.4", "1.2.3.4", False),
    ("00002001:db8::1", "2001:db8::1", True),       # APR checks a group's value, not its digits
    ("1:2:3:4::5:6:7:8", "1:2:3:4:5:6:7:8", True),  # APR ignores "::" in a full address
    ("2001:db8::1:", "2001:db8::1", True),          # and a single ':' after the last group
    ("::01.2.3.4", "::102:304", True),              # leading zeros in an embedded quad
    # families never cross (apart from mapped clients against IPv4 rules)
    ("::/1", "1.2.3.4", False),
    ("::/1", "::ffff:1.2.3.4", False),              # a mapped client only meets IPv4 rules
    ("10.0.0.0/8", "2001:db8::1", False),
    # nonsense clients never match
    ("10.0.0.0/8", "", False),
    ("10.0.0.0/8", "10.0.0", False),
    ("10.0.0.0/8", "not-an-ip", False),
]


@pytest.mark.parametrize("word, client, expected", MATCH_TABLE)
def test_parse_and_match(word, client, expected):
    assert parse_ip([word]).matches(client) is expected


def test_several_words_match_any():
    m = parse_ip(["10.0.0.0/8", "192.168.1", "2001:db8::/32"])
    assert m.matches("10.1.1.1") and m.matches("192.168.1.5") and m.matches("2001:db8::9")
    assert not m.matches("172.16.0.1")


def test_matcher_is_immutable_and_hashable():
    a, b = parse_ip(["10.1", "::1"]), parse_ip(["10.1.", "::1/128"])
    assert a == b and hash(a) == hash(b) and isinstance(a, IPMatcher)
    with pytest.raises(AttributeError):
        a.subnets = ()  # type: ignore[misc]


BAD_IP = "The specified IP address is invalid."
BAD_MASK = "The specified network mask is invalid."

# (word, message after "ip address 'word' appears to be invalid", "" for none)
INVALID_TABLE = [
    ("example.org", ""),                    # not an address at all (APR's EINVAL)
    ("10.0.0.1a", ""),
    ("localhost", ""),
    ("*", ""),
    ("abc/8", ""),
    ("", ": " + BAD_IP),                    # APR: "" looks like an address; refused here
    ("/8", ": " + BAD_IP),
    ("10.0.0.256", ": " + BAD_IP),
    ("256", ": " + BAD_IP),
    ("10..1", ": " + BAD_IP),
    (".10.1", ": " + BAD_IP),
    ("1.2.3.4.5", ": " + BAD_IP),
    ("1.2.3.4..", ": " + BAD_IP),
    ("00000000000000010", ": " + BAD_IP),   # APR's partial-network buffer is 16 bytes
    ("10.1/16", ": " + BAD_IP),             # partial address with a mask
    ("10.1./16", ": " + BAD_IP),
    ("::ffff:1.2.3.4", ": " + BAD_IP),      # IPv4-mapped rules are refused
    ("::ffff:0:0/96", ": " + BAD_IP),
    ("fe80::1%eth0", ": " + BAD_IP),        # no zone index in rules
    ("1:::2", ": " + BAD_IP),
    ("1::2::3", ": " + BAD_IP),
    ("1:2:3:4:5:6:7:8:9", ": " + BAD_IP),
    ("12345::", ": " + BAD_IP),
    ("2001:db8::g", ": " + BAD_IP),
    ("::1.2.3", ": " + BAD_IP),
    ("1.2.3.4::", ": " + BAD_IP),
    ("10.0.0.0/0", ": " + BAD_MASK),        # APR wants 1..32 bits
    ("::/0", ": " + BAD_MASK),
    ("10.0.0.0/33", ": " + BAD_MASK),
    ("2001:db8::/129", ": " + BAD_MASK),
    ("10.0.0.0/-8", ": " + BAD_MASK),
    ("10.0.0.0/", ": " + BAD_MASK),
    ("10.0.0.0/8/9", ": " + BAD_MASK),
    ("10.0.0.0/8x", ": " + BAD_MASK),
    ("10.0.0.0/255.0.0", ": " + BAD_MASK),
    ("10.0.0.0/256.0.0.0", ": " + BAD_MASK),
    ("2001:db8::/ffff::", ": " + BAD_MASK),
    ("2001:db8::/255.255.0.0", ": " + BAD_MASK),   # a netmask is IPv4 only
]


@pytest.mark.parametrize("word, suffix", INVALID_TABLE)
def test_invalid_words(word, suffix):
    with pytest.raises(ConfigError) as info:
        parse_ip(["10.0.0.0/8", word])
    assert str(info.value) == f"ip address '{word}' appears to be invalid{suffix}"


def test_no_argument():
    with pytest.raises(ConfigError, match="'require ip' requires an argument"):
        parse_ip([])


LOCAL_TABLE = [
    ("127.0.0.1", "192.0.2.1", True),
    ("127.255.0.9", "192.0.2.1", True),
    ("::1", "2001:db8::1", True),
    ("::ffff:127.0.0.1", "::ffff:192.0.2.1", True),
    ("192.0.2.1", "192.0.2.1", True),             # the server's own address
    ("192.0.2.1", "::ffff:192.0.2.1", True),      # mapped and plain are the same address
    ("::ffff:192.0.2.1", "192.0.2.1", True),
    ("2001:db8::5", "2001:db8::5%eth0", True),
    ("192.0.2.2", "192.0.2.1", False),
    ("128.0.0.1", "192.0.2.1", False),
    ("::2", "::3", False),
    ("::127.0.0.1", "::3", False),                # IPv4-compatible is not loopback
    ("garbage", "garbage", False),
]


@pytest.mark.parametrize("remote, local, expected", LOCAL_TABLE)
def test_is_local(remote, local, expected):
    assert is_local(remote, local) is expected


DOMAIN_TABLE = [
    ("example.org", "example.org", True),
    ("example.org", "www.example.org", True),
    ("example.org", "a.b.example.org", True),
    ("example.org", "badexample.org", False),
    ("example.org", "example.org.evil.net", False),
    (".example.org", "www.example.org", True),
    (".example.org", "example.org", False),
    ("Example.ORG", "WWW.example.org", True),
    ("org", "example.org", True),
    ("www.example.org", "example.org", False),
]


@pytest.mark.parametrize("domain, host, expected", DOMAIN_TABLE)
def test_in_domain(domain, host, expected):
    assert in_domain(domain, host) is expected


RESOLVER = TableResolver(
    reverse={
        "192.0.2.10": "WWW.Example.ORG",          # good double reverse
        "192.0.2.11": "liar.example.org",         # forward answer does not include the client
        "192.0.2.12": "gone.example.org",         # forward lookup fails
        "2001:db8::10": "v6.example.org",
        "192.0.2.13": "mapped.example.org",
    },
    forward={
        "WWW.Example.ORG": ["198.51.100.1", "192.0.2.10"],
        "liar.example.org": ["198.51.100.2"],
        "v6.example.org": ["2001:db8::10", "192.0.2.99"],
        "mapped.example.org": ["::ffff:192.0.2.13"],
    },
)

HOST_TABLE = [
    (["example.org"], "192.0.2.10", True),
    (["www.example.org"], "192.0.2.10", True),
    ([".example.org"], "192.0.2.10", True),
    (["other.net", "example.org"], "192.0.2.10", True),
    (["other.net"], "192.0.2.10", False),
    (["example.org"], "::ffff:192.0.2.10", True),   # looked up as its IPv4 address
    (["example.org"], "192.0.2.11", False),          # double-reverse mismatch
    (["example.org"], "192.0.2.12", False),          # forward lookup failed
    (["example.org"], "192.0.2.14", False),          # no PTR
    (["example.org"], "2001:db8::10", True),
    (["example.org"], "192.0.2.13", True),           # forward answer is the mapped form
    ([], "192.0.2.10", False),
]


@pytest.mark.parametrize("names, client, expected", HOST_TABLE)
def test_host_matcher(names, client, expected):
    assert HostMatcher(names).matches(client, RESOLVER) is expected


def test_host_matcher_value_semantics():
    assert HostMatcher(["a.org", "b.org"]) == HostMatcher(("a.org", "b.org"))
    assert hash(HostMatcher(["a.org"])) == hash(HostMatcher(["a.org"]))


def test_double_reverse_returns_lowercase_name():
    assert double_reverse_name("192.0.2.10", RESOLVER) == "www.example.org"
    assert double_reverse_name("not an ip", RESOLVER) is None


def test_failing_resolver_means_no_name():
    class Broken:
        def reverse(self, ip):
            raise RuntimeError("boom")

        def forward(self, name):
            raise RuntimeError("boom")

    assert HostMatcher(["example.org"]).matches("192.0.2.10", Broken()) is False


def test_socket_resolver_caches_and_never_raises(monkeypatch):
    import socket

    calls = []

    def fake_getnameinfo(sockaddr, flags):
        calls.append(sockaddr)
        if sockaddr[0] == "192.0.2.1":
            return "one.example", "0"
        raise socket.herror("no name")

    def fake_getaddrinfo(name, port, **kw):
        calls.append(name)
        if name == "one.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", 0))]
        raise socket.gaierror("no such name")

    monkeypatch.setattr(socket, "getnameinfo", fake_getnameinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    now = [0.0]
    r = SocketResolver(ttl=10, clock=lambda: now[0])
    assert r.reverse("192.0.2.1") == "one.example"
    assert r.reverse("192.0.2.1") == "one.example"
    assert r.reverse("192.0.2.2") is None
    assert r.forward("one.example") == ["192.0.2.1"]
    assert r.forward("nope.example") == []
    assert len(calls) == 4
    now[0] = 11.0
    assert r.reverse("192.0.2.1") == "one.example"
    assert len(calls) == 5
    assert HostMatcher(["example"]).matches("192.0.2.1", r)


_word_chars = st.sampled_from(list("0123456789abcdefABCDEF.:/%+-x ") + ["::", "255", "ffff"])
_words = st.one_of(st.text(max_size=40), st.lists(_word_chars, max_size=20).map("".join))
_clients = st.one_of(st.text(max_size=40), st.ip_addresses().map(str),
                     st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"))


@settings(max_examples=400, deadline=None)
@given(words=st.lists(_words, min_size=0, max_size=3), client=_clients)
def test_parse_only_raises_config_error_and_match_never_raises(words, client):
    try:
        matcher = parse_ip(words)
    except ConfigError:
        return
    assert matcher.matches(client) in (True, False)
    assert is_local(client, client) in (True, False)


@settings(max_examples=300, deadline=None)
@given(addr=st.ip_addresses(v=6))
def test_ipv6_text_forms_parse_to_the_same_address(addr):
    from httpd_py.modules.authz_host import ipsubnet_create

    if addr.ipv4_mapped is not None:
        return
    for text in {addr.compressed, addr.exploded, addr.compressed.upper()}:
        subnet = ipsubnet_create(text)
        assert (subnet.family, subnet.network) == (6, int(addr))
