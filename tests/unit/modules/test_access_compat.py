"""mod_access_compat: Order/Allow/Deny/Satisfy parsing and check_dir_access decisions."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from httpd_py.errors import ConfigError
from httpd_py.modules.access_compat import (
    ALLOW_DENY, DENY_ALLOW, MUTUAL_FAILURE, HostRule, access_allowed, parse_allow_deny,
    parse_order, parse_satisfy,
)


class TableResolver:
    def __init__(self, reverse: dict[str, str], forward: dict[str, list[str]]):
        self._reverse, self._forward = reverse, forward

    def reverse(self, ip: str) -> str | None:
        return self._reverse.get(ip)

    def forward(self, name: str) -> list[str]:
        return self._forward.get(name, [])


RESOLVER = TableResolver(
    reverse={"192.0.2.10": "www.example.org", "192.0.2.11": "spoof.example.org",
             "192.0.2.12": "crawler.bad.net"},
    forward={"www.example.org": ["192.0.2.10"], "spoof.example.org": ["203.0.113.1"],
             "crawler.bad.net": ["192.0.2.12"]},
)


@pytest.mark.parametrize("arg, expected", [
    ("Allow,Deny", ALLOW_DENY), ("deny,allow", DENY_ALLOW), ("DENY,ALLOW", DENY_ALLOW),
    ("Mutual-Failure", MUTUAL_FAILURE),
])
def test_parse_order(arg, expected):
    assert parse_order(arg) == expected


@pytest.mark.parametrize("arg", ["allow", "deny, allow", "allow;deny", "", "allow,deny,"])
def test_parse_order_rejects(arg):
    with pytest.raises(ConfigError, match="^unknown order$"):
        parse_order(arg)


@pytest.mark.parametrize("arg, expected", [("All", "all"), ("any", "any"), ("ANY", "any")])
def test_parse_satisfy(arg, expected):
    assert parse_satisfy(arg) == expected


@pytest.mark.parametrize("arg", ["some", "", "all,any"])
def test_parse_satisfy_rejects(arg):
    with pytest.raises(ConfigError, match=r"^Satisfy either 'any' or 'all'\.$"):
        parse_satisfy(arg)


# (words after "from", expected (kind, value) per word)
CLASSIFY_TABLE = [
    (["all"], [("all", "all")]),
    (["ALL"], [("all", "ALL")]),
    (["env=let_me_in"], [("env", "let_me_in")]),
    (["ENV=!blocked"], [("env-not", "blocked")]),
    (["env="], [("env", "")]),
    (["10.1"], [("ip", "10.1")]),
    (["10.0.0.0/8", "2001:db8::/32"], [("ip", "10.0.0.0/8"), ("ip", "2001:db8::/32")]),
    (["example.org", ".example.net"], [("host", "example.org"), ("host", ".example.net")]),
    (["10.1.2.3a"], [("host", "10.1.2.3a")]),     # not only digits and dots: a host name
    (["allx"], [("host", "allx")]),
]


@pytest.mark.parametrize("words, expected", CLASSIFY_TABLE)
def test_classification(words, expected):
    rule = parse_allow_deny(["from", *words])
    assert [(t.kind, t.value) for t in rule.terms] == expected
    assert rule.methods is None


@pytest.mark.parametrize("args, message", [
    (["to", "all"], "allow and deny must be followed by 'from'"),
    (["all"], "Allow requires at least two arguments, 'from' followed by hostnames or "
              "IP-address wildcards"),
    (["from", "example.org/8"], "An IP address was expected"),
    (["from", "/8"], "The specified IP address is invalid."),
    (["from", "10.0.0.256"], "The specified IP address is invalid."),
    (["from", "10.1/16"], "The specified IP address is invalid."),
    (["from", "::ffff:10.0.0.1"], "The specified IP address is invalid."),
    (["from", "10.0.0.0/0"], "The specified network mask is invalid."),
    (["from", "10.0.0.0/abc"], "The specified network mask is invalid."),
])
def test_parse_allow_deny_rejects(args, message):
    with pytest.raises(ConfigError) as info:
        parse_allow_deny(args)
    assert str(info.value) == message


def test_from_is_case_insensitive_and_rules_are_values():
    assert parse_allow_deny(["FROM", "10.1"]) == parse_allow_deny(["from", "10.1"])
    rule = parse_allow_deny(["from", "all"])
    limited = rule.with_methods(["POST", "PUT"])
    assert rule.methods is None and limited.methods == frozenset({"POST", "PUT"})
    assert hash(limited) == hash(parse_allow_deny(["from", "all"]).with_methods(["PUT", "POST"]))
    with pytest.raises(AttributeError):
        rule.methods = frozenset()  # type: ignore[misc]


def R(*words: str) -> HostRule:
    return parse_allow_deny(["from", *words])


ALL = R("all")
LAN = R("10.0.0.0/8")
BAD = R("10.6.6.6")
GOOD_ENV = R("env=let_me_in")
NOT_ENV = R("env=!trusted")
EXAMPLE = R("example.org")
BADNET = R(".bad.net")
POST_ONLY = R("all").with_methods(["POST"])
GET_ONLY_LAN = R("10.0.0.0/8").with_methods(["GET"])
EXCEPT_GET = R("all").with_methods(["GET", "OPTIONS"], excluded=True)

# (order, allows, denies, method, client, env, allowed?)
DECISIONS = [
    # Allow,Deny: default deny, Deny wins
    (ALLOW_DENY, (), (), "GET", "10.1.1.1", {}, False),
    (ALLOW_DENY, (ALL,), (), "GET", "10.1.1.1", {}, True),
    (ALLOW_DENY, (LAN,), (), "GET", "192.0.2.1", {}, False),
    (ALLOW_DENY, (LAN,), (BAD,), "GET", "10.6.6.6", {}, False),
    (ALLOW_DENY, (LAN,), (BAD,), "GET", "10.6.6.7", {}, True),
    (ALLOW_DENY, (), (BAD,), "GET", "10.1.1.1", {}, False),
    (ALLOW_DENY, (ALL,), (ALL,), "GET", "10.1.1.1", {}, False),
    # Deny,Allow: default allow, Allow wins
    (DENY_ALLOW, (), (), "GET", "10.1.1.1", {}, True),
    (DENY_ALLOW, (), (ALL,), "GET", "10.1.1.1", {}, False),
    (DENY_ALLOW, (LAN,), (ALL,), "GET", "10.1.1.1", {}, True),
    (DENY_ALLOW, (LAN,), (ALL,), "GET", "192.0.2.1", {}, False),
    (DENY_ALLOW, (ALL,), (BAD,), "GET", "10.6.6.6", {}, True),
    (DENY_ALLOW, (), (BAD,), "GET", "10.6.6.7", {}, True),
    # Mutual-failure: allowed only by an Allow and no Deny
    (MUTUAL_FAILURE, (), (), "GET", "10.1.1.1", {}, False),
    (MUTUAL_FAILURE, (LAN,), (), "GET", "10.1.1.1", {}, True),
    (MUTUAL_FAILURE, (LAN,), (BAD,), "GET", "10.6.6.6", {}, False),
    (MUTUAL_FAILURE, (LAN,), (), "GET", "192.0.2.1", {}, False),
    # env= and env=! (names case-insensitive, any value counts as set)
    (ALLOW_DENY, (GOOD_ENV,), (), "GET", "192.0.2.1", {"let_me_in": ""}, True),
    (ALLOW_DENY, (GOOD_ENV,), (), "GET", "192.0.2.1", {"LET_ME_IN": "1"}, True),
    (ALLOW_DENY, (GOOD_ENV,), (), "GET", "192.0.2.1", {"other": "1"}, False),
    (DENY_ALLOW, (), (NOT_ENV,), "GET", "192.0.2.1", {}, False),
    (DENY_ALLOW, (), (NOT_ENV,), "GET", "192.0.2.1", {"trusted": "yes"}, True),
    (ALLOW_DENY, (LAN, GOOD_ENV), (), "GET", "192.0.2.1", {"let_me_in": "1"}, True),
    # method-limited rules count only for their methods (HEAD is GET)
    (DENY_ALLOW, (), (POST_ONLY,), "POST", "10.1.1.1", {}, False),
    (DENY_ALLOW, (), (POST_ONLY,), "GET", "10.1.1.1", {}, True),
    (ALLOW_DENY, (GET_ONLY_LAN,), (), "GET", "10.1.1.1", {}, True),
    (ALLOW_DENY, (GET_ONLY_LAN,), (), "HEAD", "10.1.1.1", {}, True),
    (ALLOW_DENY, (GET_ONLY_LAN,), (), "POST", "10.1.1.1", {}, False),
    (DENY_ALLOW, (), (EXCEPT_GET,), "GET", "10.1.1.1", {}, True),
    (DENY_ALLOW, (), (EXCEPT_GET,), "HEAD", "10.1.1.1", {}, True),
    (DENY_ALLOW, (), (EXCEPT_GET,), "DELETE", "10.1.1.1", {}, False),
    (DENY_ALLOW, (), (EXCEPT_GET,), "PROPFIND", "10.1.1.1", {}, False),
    # host names through the double-reverse check
    (ALLOW_DENY, (EXAMPLE,), (), "GET", "192.0.2.10", {}, True),
    (ALLOW_DENY, (EXAMPLE,), (), "GET", "::ffff:192.0.2.10", {}, True),
    (ALLOW_DENY, (EXAMPLE,), (), "GET", "192.0.2.11", {}, False),   # forward does not match
    (ALLOW_DENY, (EXAMPLE,), (), "GET", "192.0.2.99", {}, False),   # no PTR at all
    (DENY_ALLOW, (), (BADNET,), "GET", "192.0.2.12", {}, False),
    (DENY_ALLOW, (), (BADNET,), "GET", "192.0.2.10", {}, True),
    (ALLOW_DENY, (R("10.0.0.0/8", "example.org"),), (), "GET", "192.0.2.10", {}, True),
    # IPv6 and mapped clients
    (ALLOW_DENY, (R("2001:db8::/32"),), (), "GET", "2001:db8::1", {}, True),
    (ALLOW_DENY, (LAN,), (), "GET", "::ffff:10.2.3.4", {}, True),
    (DENY_ALLOW, (), (R("2001:db8::/32"),), "GET", "::ffff:10.2.3.4", {}, True),
]


@pytest.mark.parametrize("order, allows, denies, method, client, env, expected", DECISIONS)
def test_access_allowed(order, allows, denies, method, client, env, expected):
    assert access_allowed(order, allows, denies, method, client, env, RESOLVER) is expected


def test_unknown_order_is_a_programming_error():
    with pytest.raises(ValueError):
        access_allowed("sideways", (), (), "GET", "10.0.0.1", {}, RESOLVER)


@settings(max_examples=300, deadline=None)
@given(words=st.one_of(st.lists(st.text(max_size=30), max_size=4),
                      st.lists(st.text(max_size=30), min_size=1, max_size=3).map(
                          lambda w: ["from", *w])),
       client=st.one_of(st.text(max_size=30), st.ip_addresses().map(str)))
def test_parse_only_raises_config_error_and_decisions_never_raise(words, client):
    try:
        rule = parse_allow_deny(words)
    except ConfigError:
        return
    for order in (ALLOW_DENY, DENY_ALLOW, MUTUAL_FAILURE):
        assert access_allowed(order, (rule,), (rule,), "GET", client, {"A": "1"},
                              RESOLVER) in (True, False)
