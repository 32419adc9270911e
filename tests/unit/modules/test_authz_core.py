"""mod_authz_core: parse_require (every provider, every refusal), the tree builders (add_rule,
add_container, check_negative_only) and evaluate/check against a small fake request, as
Apache 2.4's add_authz_provider / add_authz_section / authz_core_check_section /
apply_authz_sections / authorize_user_core."""
from __future__ import annotations

import pytest

from httpd_py.config import load
from httpd_py.errors import ConfigError
from httpd_py.http.access import RequestFacts
from httpd_py.modules.authz_core import (
    DENIED, DENIED_NO_USER, GENERAL_ERROR, GRANTED, NEED_USER, NEUTRAL, OK, Container, Methods,
    Rule, add_container, add_rule, check, check_negative_only, evaluate, parse_require,
    some_auth_required,
)


class Req:
    """What the providers read of a request (authz_core.AuthzRequest)."""

    def __init__(self, method="GET", remote_ip="192.0.2.1", local_ip="192.0.2.100", user=None,
                 env=None, groups=None):
        self.method, self.remote_ip, self.local_ip, self.user = method, remote_ip, local_ip, user
        self.env_vars = dict(env or {})
        self._groups = groups          # {user: {group, ...}}; None: the group file is unusable

    def groups_of(self, user):
        if self._groups is None:
            return None
        return frozenset(self._groups.get(user, ()))

    def expr_context(self):
        f = RequestFacts(method=self.method, remote_ip=self.remote_ip, local_ip=self.local_ip,
                         local_port=443, headers={"host": "h"}, uri="/x", query="", https=True,
                         protocol="HTTP/1.1", request_line=f"{self.method} /x HTTP/1.1")
        f.user = self.user
        f.env_vars = self.env_vars
        return f


def R(line: str, methods: Methods | None = None) -> Rule:
    """A Require line without the word Require."""
    words = line.split()
    raw = ""
    if "expr" in words[:2]:
        raw = line.split(None, words.index("expr") + 1)[words.index("expr") + 1:] or [""]
        raw = raw[0]
    return parse_require(words, raw, methods)


def ALL(*items):
    return Container("and", False, tuple(items))


def ANY(*items):
    return Container("or", False, tuple(items))


def NONE(*items):
    return Container("or", True, tuple(items))


def msg_of(fn, *a):
    with pytest.raises(ConfigError) as e:
        fn(*a)
    return e.value.msg


# -- parse_require ------------------------------------------------------------------------------
@pytest.mark.parametrize("line, provider, args, negate", [
    ("all granted", "all", ("granted",), False),
    ("all DENIED", "all", ("DENIED",), False),
    ("not all granted", "all", ("granted",), True),
    ("NOT ip 10.0.0.1", "ip", ("10.0.0.1",), True),
    ("ip 10.0.0.0/8 192.168.1 2001:db8::/32", "ip", ("10.0.0.0/8", "192.168.1", "2001:db8::/32"),
     False),
    ("host example.org .example.net", "host", ("example.org", ".example.net"), False),
    ("forward-dns www.example.org", "forward-dns", ("www.example.org",), False),
    ("local", "local", (), False),
    ("method GET POST", "method", ("GET", "POST"), False),
    ("env A B", "env", ("A", "B"), False),
    ("user alice bob", "user", ("alice", "bob"), False),
    ("valid-user", "valid-user", (), False),
    ("group staff", "group", ("staff",), False),
    ("expr %{REQUEST_METHOD} == 'GET'", "expr", None, False),
])
def test_parse_require_accepts(line, provider, args, negate):
    r = R(line)
    assert (r.provider, r.negate, r.methods) == (provider, negate, None)
    if args is not None:
        assert r.args == args
    assert r.text.startswith("Require ")


def test_parse_require_all_matcher_and_methods_kept():
    assert R("all granted").matcher is True and R("all denied").matcher is False
    m = Methods(frozenset({"POST"}))
    assert R("all denied", m).methods == m


@pytest.mark.parametrize("line, fragment", [
    ("bogus x", "Unknown Authz provider: bogus"),
    ("not bogus", "Unknown Authz provider: bogus"),
    ("ldap-user alice", "not built into httpd-py"),
    ("ldap-group cn=x", "not built into httpd-py"),
    ("file-owner", "not built into httpd-py"),
    ("file-group", "not built into httpd-py"),
    ("dbm-group g", "not built into httpd-py"),
    ("dbd-group g", "not built into httpd-py"),
    ("not ldap-dn x", "not built into httpd-py"),
    ("all foo", "granted"),
    ("all", "granted"),
    ("all granted denied", "granted"),
    ("ip", "requires an argument"),
    ("ip not-an-ip!", ""),
    ("host", "requires an argument"),
    ("forward-dns", "requires an argument"),
    ("local x", "does not take an argument"),
    ("method", "requires at least one argument"),
    ("expr", "requires an expression"),
    ("expr %{REQUEST_METHOD} ==", "Cannot parse expression in require line"),
])
def test_parse_require_refuses(line, fragment):
    assert fragment in msg_of(R, line)


def test_parse_require_no_words():
    with pytest.raises(ConfigError):
        parse_require([], "", None)
    with pytest.raises(ConfigError):
        parse_require(["not"], "", None)


# Apache looks providers up in a hash keyed by the exact name (ap_lookup_provider): only "not"
# is compared case-insensitively.
@pytest.mark.parametrize("line", ["ALL granted", "Valid-User", "IP 10.0.0.1"])
def test_provider_names_are_case_sensitive_as_apache(line):
    assert "Unknown Authz provider" in msg_of(R, line)


# Apache's method provider parses names with ap_method_number_of: unknown names are refused.
def test_require_method_unknown_name_refused_as_apache():
    assert "Invalid Method 'BOGUS'" in msg_of(R, "method BOGUS")


# -- building trees: add_rule / add_container / check_negative_only ------------------------------
def test_add_rule_builds_the_implicit_require_any():
    t = add_rule(add_rule(None, R("ip 10.0.0.1")), R("user bob"))
    assert t == ANY(R("ip 10.0.0.1"), R("user bob"))
    assert add_rule(ALL(R("all granted")), R("not ip 10.0.0.1")).items[-1].negate


@pytest.mark.parametrize("section, expected", [
    (None, "negative Require directive has no effect in <RequireAny> directive"),
    (ANY(), "negative Require directive has no effect in <RequireAny> directive"),
    (NONE(R("ip 10.0.0.1")), "negative Require directive has no effect in <RequireNone> "
                             "directive"),
    (Container("or", False, (), merged=True),
     "negative Require directive has no effect in AuthMerging Any directive"),
])
def test_add_rule_negative_in_or_refused(section, expected):
    assert msg_of(add_rule, section, R("not ip 10.0.0.1")) == expected


@pytest.mark.parametrize("parent, child, expected", [
    (None, NONE(R("ip 10.0.0.1")),
     "<RequireNone> directive has no effect in <RequireAny> directive"),
    (ANY(R("all granted")), NONE(R("ip 10.0.0.1")),
     "<RequireNone> directive has no effect in <RequireAny> directive"),
    (None, ALL(), "<RequireAll> directive contains no authorization directives"),
    (None, ANY(), "<RequireAny> directive contains no authorization directives"),
    (ALL(R("all granted")), NONE(), "<RequireNone> directive contains no authorization "
                                    "directives"),
])
def test_add_container_refusals(parent, child, expected):
    assert msg_of(add_container, parent, child, "<x") == expected


def test_add_container_nests_and_flattens():
    a = R("ip 10.0.0.1")
    # <RequireAny> inside the implicit <RequireAny>: its rules join the parent
    assert add_container(None, ANY(a, R("user bob")), "<RequireAny") == ANY(a, R("user bob"))
    # <RequireAll> inside the implicit <RequireAny>: a child
    assert add_container(None, ALL(a), "<RequireAll") == ANY(ALL(a))
    # <RequireNone> inside <RequireAll>: allowed, kept as a negated child
    got = add_container(ALL(R("valid-user")), NONE(a), "<RequireNone")
    assert got == ALL(R("valid-user"), NONE(a))


@pytest.mark.parametrize("tree, expected", [
    (ANY(ALL(R("not ip 10.0.0.1"))),
     "<RequireAll> directive contains only negative authorization directives"),
    (ANY(ALL(R("not ip 10.0.0.1"), R("not user bob"))),
     "<RequireAll> directive contains only negative authorization directives"),
    # De Morgan: a <RequireNone> in a <RequireAll> counts as negated rules
    (ANY(ALL(NONE(R("ip 10.0.0.1")))),
     "<RequireAll> directive contains only negative authorization directives"),
    (ANY(ALL(R("ip 10.0.0.2"), ALL(R("not ip 10.0.0.1")))),
     "<RequireAll> directive contains only negative authorization directives"),
])
def test_check_negative_only_refuses(tree, expected):
    assert msg_of(check_negative_only, tree) == expected


def test_check_negative_only_top_level_wording():
    assert msg_of(check_negative_only, ALL(R("not ip 10.0.0.1"))) == (
        "<Directory>, <Location>, or similar directive contains only negative authorization "
        "directives")


@pytest.mark.parametrize("tree", [
    ANY(R("all granted")),
    ANY(ALL(R("valid-user"), R("not ip 10.0.0.1"))),
    ANY(ALL(R("ip 10.0.0.2"), NONE(R("ip 10.0.0.1"), R("user bob")))),
    ANY(ALL(NONE(R("ip 10.0.0.1")), R("all granted"))),
])
def test_check_negative_only_accepts(tree):
    check_negative_only(tree)


# the same refusals through a loaded configuration
def _load(tmp_path, body):
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    p = tmp_path / "httpd.conf"
    p.write_text(f"Listen 127.0.0.1:18080\nServerRoot {tmp_path}\nDocumentRoot {docs}\n"
                 f"ErrorLog {tmp_path}/error.log\n<Directory {docs}>\n{body}\n</Directory>\n")
    return load(str(p), log_warnings=False)


@pytest.mark.parametrize("body, fragment", [
    ("Require not ip 10.0.0.1",
     "negative Require directive has no effect in <RequireAny> directive"),
    ("<RequireNone>\nRequire ip 10.0.0.1\n</RequireNone>",
     "<RequireNone> directive has no effect in <RequireAny> directive"),
    ("<RequireAll>\n</RequireAll>", "<RequireAll> directive contains no authorization"),
    ("<RequireAll>\nRequire not ip 10.0.0.1\n</RequireAll>",
     "<RequireAll> directive contains only negative authorization directives"),
    ("Require all foo", "granted"),
    ("Require nosuch x", "Unknown Authz provider: nosuch"),
    ("Require ldap-user x", "not built into httpd-py"),
    ("<RequireAll foo>\nRequire all granted\n</RequireAll>", "doesn't take additional arguments"),
])
def test_config_refusals(tmp_path, body, fragment):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, body)
    assert fragment in e.value.msg


def test_config_tree_shape_with_limit(tmp_path):
    cfg = _load(tmp_path, "<RequireAll>\nRequire valid-user\n<Limit POST>\nRequire ip 10.0.0.1\n"
                          "</Limit>\n</RequireAll>\n<LimitExcept GET>\nRequire user bob\n"
                          "</LimitExcept>")
    (sec,) = cfg.main.sections
    t = sec.conf.authz
    assert t.op == "or" and not t.negate
    inner, bob = t.items
    assert inner.op == "and" and inner.items[0].methods is None
    assert inner.items[1].methods == Methods(frozenset({"POST"}))
    assert bob.methods == Methods(frozenset({"GET"}), invert=True)


# -- evaluate -----------------------------------------------------------------------------------
POST_ONLY = Methods(frozenset({"POST"}))
GET_ONLY = Methods(frozenset({"GET"}))
EXCEPT_GET = Methods(frozenset({"GET"}), invert=True)


@pytest.mark.parametrize("item, req, expected", [
    # providers
    (R("all granted"), Req(), GRANTED),
    (R("all denied"), Req(), DENIED),
    (R("ip 10.0.0.0/8"), Req(remote_ip="10.1.2.3"), GRANTED),
    (R("ip 10.0.0.0/8"), Req(remote_ip="192.0.2.1"), DENIED),
    (R("ip 2001:db8::/32"), Req(remote_ip="2001:db8::1"), GRANTED),
    (R("local"), Req(remote_ip="127.0.0.1"), GRANTED),
    (R("local"), Req(remote_ip="192.0.2.1", local_ip="192.0.2.1"), GRANTED),
    (R("local"), Req(remote_ip="192.0.2.1", local_ip="192.0.2.2"), DENIED),
    (R("method GET POST"), Req(method="POST"), GRANTED),
    (R("method GET POST"), Req(method="PUT"), DENIED),
    (R("env A B"), Req(env={"B": ""}), GRANTED),            # set-but-empty counts
    (R("env A"), Req(env={"AB": "1"}), DENIED),
    (R("valid-user"), Req(), DENIED_NO_USER),
    (R("valid-user"), Req(user="bob"), GRANTED),
    (R("user alice bob"), Req(), DENIED_NO_USER),
    (R("user alice bob"), Req(user="bob"), GRANTED),
    (R("user alice bob"), Req(user="carol"), DENIED),
    (R("group staff"), Req(), DENIED_NO_USER),
    (R("group staff"), Req(user="bob", groups={"bob": {"staff"}}), GRANTED),
    (R("group staff admin"), Req(user="bob", groups={"bob": {"admin"}}), GRANTED),
    (R("group staff"), Req(user="bob", groups={"bob": {"other"}}), DENIED),
    (R("group staff"), Req(user="bob", groups=None), GENERAL_ERROR),
    (R("expr %{REQUEST_METHOD} == 'GET'"), Req(), GRANTED),
    (R("expr %{REQUEST_METHOD} == 'GET'"), Req(method="POST"), DENIED),
    (R("expr %{REMOTE_USER} == 'bob'"), Req(), DENIED_NO_USER),
    (R("expr %{REMOTE_USER} == 'bob'"), Req(user="bob"), GRANTED),
    (R("expr %{REMOTE_USER} == 'bob'"), Req(user="eve"), DENIED),
    # negation: granted -> denied, denied / denied-no-user -> neutral
    (R("not all granted"), Req(), DENIED),
    (R("not all denied"), Req(), NEUTRAL),
    (R("not valid-user"), Req(), NEUTRAL),
    (R("not valid-user"), Req(user="bob"), DENIED),
    (R("not ip 10.0.0.1"), Req(remote_ip="10.0.0.1"), DENIED),
    (R("not ip 10.0.0.1"), Req(remote_ip="10.0.0.2"), NEUTRAL),
])
def test_evaluate_rule(item, req, expected):
    assert evaluate(item, req) == expected


@pytest.mark.parametrize("item, req, expected", [
    # OR: a GRANTED child decides; DENIED_NO_USER wins over DENIED; nothing -> NEUTRAL
    (ANY(R("all denied"), R("all granted")), Req(), GRANTED),
    (ANY(R("all denied"), R("valid-user")), Req(), DENIED_NO_USER),
    (ANY(R("valid-user"), R("all denied")), Req(), DENIED_NO_USER),
    (ANY(R("valid-user"), R("all denied")), Req(user="bob"), GRANTED),
    (ANY(R("user alice"), R("all denied")), Req(user="bob"), DENIED),
    (ANY(R("all granted"), R("group g")), Req(user="bob", groups=None), GRANTED),  # stops early
    (ANY(R("group g"), R("all granted")), Req(user="bob", groups=None), GENERAL_ERROR),
    # AND: a DENIED child decides; DENIED_NO_USER wins over GRANTED
    (ALL(R("all granted"), R("all denied")), Req(), DENIED),
    (ALL(R("all granted"), R("valid-user")), Req(), DENIED_NO_USER),
    (ALL(R("valid-user"), R("all denied")), Req(), DENIED),
    (ALL(R("valid-user"), R("all granted")), Req(user="bob"), GRANTED),
    (ALL(R("all granted"), R("not ip 10.0.0.1")), Req(remote_ip="10.0.0.1"), DENIED),
    (ALL(R("all granted"), R("not ip 10.0.0.1")), Req(remote_ip="10.0.0.2"), GRANTED),
    (ALL(R("not ip 10.0.0.1")), Req(remote_ip="10.0.0.2"), NEUTRAL),
    (ALL(R("valid-user"), R("not user bob")), Req(user="bob"), DENIED),
    (ALL(R("valid-user"), R("not user bob")), Req(user="alice"), GRANTED),
    # <RequireNone>: any GRANTED child -> DENIED; otherwise NEUTRAL
    (NONE(R("ip 10.0.0.1"), R("user bob")), Req(remote_ip="10.0.0.1"), DENIED),
    (NONE(R("ip 10.0.0.1"), R("user bob")), Req(), NEUTRAL),
    (ALL(R("all granted"), NONE(R("ip 10.0.0.1"))), Req(remote_ip="10.0.0.1"), DENIED),
    (ALL(R("all granted"), NONE(R("ip 10.0.0.1"))), Req(), GRANTED),
    # nested
    (ANY(ALL(R("valid-user"), R("ip 10.0.0.1")), R("ip 192.0.2.9")), Req(remote_ip="10.0.0.1"),
     DENIED_NO_USER),
    (ANY(ALL(R("valid-user"), R("ip 10.0.0.1")), R("ip 192.0.2.9")), Req(remote_ip="192.0.2.9"),
     GRANTED),
    (ANY(ALL(R("valid-user"), R("ip 10.0.0.1")), R("ip 192.0.2.9")), Req(remote_ip="192.0.2.8"),
     DENIED),
    (ANY(), Req(), NEUTRAL),
])
def test_evaluate_containers(item, req, expected):
    assert evaluate(item, req, "or") == expected


@pytest.mark.parametrize("item, method, parent, expected", [
    # a rule limited to other methods: GRANTED in an AND parent, NEUTRAL in an OR parent
    (R("all denied", POST_ONLY), "GET", "and", GRANTED),
    (R("all denied", POST_ONLY), "GET", "or", NEUTRAL),
    (R("all denied", POST_ONLY), "POST", "and", DENIED),
    # <Limit GET> covers HEAD (Apache numbers HEAD as GET)
    (R("all denied", GET_ONLY), "HEAD", "or", DENIED),
    (R("all denied", GET_ONLY), "OPTIONS", "or", NEUTRAL),
    # <LimitExcept GET>: everything but GET and HEAD
    (R("all denied", EXCEPT_GET), "GET", "or", NEUTRAL),
    (R("all denied", EXCEPT_GET), "HEAD", "or", NEUTRAL),
    (R("all denied", EXCEPT_GET), "POST", "or", DENIED),
    (R("all denied", EXCEPT_GET), "DELETE", "and", DENIED),
    # containers apply when any child does
    (ANY(R("all denied", POST_ONLY), R("all denied", GET_ONLY)), "PUT", "and", GRANTED),
    (ANY(R("all denied", POST_ONLY), R("all granted")), "GET", "and", GRANTED),
    (ALL(R("all granted"), R("all denied", POST_ONLY)), "GET", "or", GRANTED),
    (ALL(R("all granted"), R("all denied", POST_ONLY)), "POST", "or", DENIED),
    (ANY(R("all granted", POST_ONLY), R("all denied")), "GET", "or", DENIED),
])
def test_evaluate_methods(item, method, parent, expected):
    assert evaluate(item, Req(method=method), parent) == expected


# Apache's method provider compares method numbers; HEAD is M_GET.
@pytest.mark.parametrize("line, method", [("method GET", "HEAD"), ("method HEAD", "GET")])
def test_require_method_head_is_get_as_apache(line, method):
    assert evaluate(R(line), Req(method=method)) == GRANTED


def test_some_auth_required():
    assert not some_auth_required(None, "GET")
    assert some_auth_required(ANY(R("valid-user")), "GET")
    assert not some_auth_required(ANY(R("valid-user", POST_ONLY)), "GET")
    assert some_auth_required(ANY(R("valid-user", POST_ONLY)), "POST")


# -- check (authorize_user_core) -----------------------------------------------------------------
@pytest.mark.parametrize("tree, req, auth_type, after, forbidden, expected", [
    (None, Req(), None, False, False, OK),
    (None, Req(), "basic", False, False, 500),          # AuthType without Require
    (ANY(R("all granted")), Req(), None, False, False, OK),
    (ANY(R("all granted")), Req(), "basic", True, False, OK),
    # needs a user
    (ANY(R("valid-user")), Req(), "basic", False, False, NEED_USER),
    (ANY(R("valid-user")), Req(), None, False, False, NEED_USER),
    (ANY(R("valid-user")), Req(), "basic", True, False, 401),
    (ANY(R("valid-user")), Req(user="bob"), "basic", True, False, OK),
    # denied: 403 before authentication or without AuthType
    (ANY(R("all denied")), Req(), None, False, False, 403),
    (ANY(R("all denied")), Req(), "basic", False, False, 403),
    (ANY(R("user alice")), Req(user="bob"), None, True, False, 403),
    # denied after authentication: 401 (try again), or 403 with AuthzSendForbiddenOnFailure
    (ANY(R("user alice")), Req(user="bob"), "basic", True, False, 401),
    (ANY(R("user alice")), Req(user="bob"), "basic", True, True, 403),
    # neutral behaves as denied
    (ALL(R("not ip 10.0.0.1")), Req(), None, False, False, 403),
    (ALL(R("not ip 10.0.0.1")), Req(user="bob"), "basic", True, False, 401),
    (ALL(R("not ip 10.0.0.1")), Req(user="bob"), "basic", True, True, 403),
    # a provider error
    (ANY(R("group g")), Req(user="bob", groups=None), "basic", True, False, 500),
    # the top is an AND parent: a tree limited to other methods grants
    (ANY(R("all denied", POST_ONLY)), Req(method="GET"), None, False, False, OK),
    (ANY(R("all denied", POST_ONLY)), Req(method="POST"), None, False, False, 403),
])
def test_check_table(tree, req, auth_type, after, forbidden, expected):
    assert check(tree, req, auth_type=auth_type, after_authn=after,
                 forbidden_on_fail=forbidden) == expected


def test_merged_container_evaluates_like_its_op():
    a, b = ANY(R("ip 10.0.0.1")), ANY(R("valid-user"))
    and_ = Container("and", False, (a, b), merged=True)
    or_ = Container("or", False, (a, b), merged=True)
    assert check(and_, Req(remote_ip="10.0.0.1"), auth_type="basic", after_authn=False) \
        == NEED_USER
    assert check(and_, Req(remote_ip="10.0.0.2"), auth_type="basic", after_authn=False) == 403
    assert check(or_, Req(remote_ip="10.0.0.1"), auth_type="basic", after_authn=False) == OK
    assert check(or_, Req(remote_ip="10.0.0.2"), auth_type="basic", after_authn=False) \
        == NEED_USER
