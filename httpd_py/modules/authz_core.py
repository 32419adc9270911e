"""mod_authz_core: `Require`, `<RequireAll>`, `<RequireAny>`, `<RequireNone>`, `AuthMerging`,
and the providers of the modules httpd-py builds in (authz_core: all, env, method, expr;
authz_host: ip, host, forward-dns, local; authz_user: user, valid-user; authz_groupfile: group).

Built at config time into an immutable tree; evaluated per request as Apache's
``apply_authz_sections`` does (behaviour from the 2.4 manual and mod_authz_core):

* a container's result starts NEUTRAL; in an AND container (RequireAll) a DENIED child decides,
  DENIED_NO_USER wins over GRANTED/NEUTRAL; in an OR container (RequireAny, the implicit one of a
  section) a GRANTED child decides, DENIED_NO_USER wins over DENIED;
* negation (``Require not``, RequireNone): GRANTED becomes DENIED, DENIED or DENIED_NO_USER
  become NEUTRAL (not being refused grants nothing);
* a rule or container limited to other methods (<Limit>/<LimitExcept>) is GRANTED inside an
  AND parent and NEUTRAL inside an OR parent;
* ``check(tree, req, after_authn)`` then maps the tree's result to OK, "authn" (a user is
  needed), 401, 403 or 500 as Apache's authorize_user_core does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from httpd_py.errors import ConfigError
from httpd_py.modules import authz_host

GRANTED, DENIED, DENIED_NO_USER, NEUTRAL, GENERAL_ERROR = (
    "granted", "denied", "denied-no-user", "neutral", "general-error")

#: providers httpd-py implements; other providers Apache ships are refused at start-up
PROVIDERS = ("all", "env", "method", "expr", "ip", "host", "forward-dns", "local", "user",
             "valid-user", "group")
#: providers of Apache modules httpd-py does not build: refused (fail closed)
UNBUILT = ("file-owner", "file-group", "dbm-group", "dbd-group", "ldap-user", "ldap-group",
           "ldap-dn", "ldap-attribute", "ldap-filter", "ldap-search")


class AuthzRequest(Protocol):
    """What the providers read from a request."""
    method: str
    remote_ip: str
    local_ip: str
    user: str | None

    env_vars: dict            # the request's environment (set-but-empty counts as set)
    def groups_of(self, user: str) -> frozenset | None: ...   # None: group file unusable
    def expr_context(self) -> Any: ...


@dataclass(frozen=True)
class Methods:
    """Methods a rule is limited to: <Limit m ...> (names) or <LimitExcept m ...> (invert)."""
    names: frozenset
    invert: bool = False

    def applies(self, method: str) -> bool:
        # Apache numbers HEAD as GET: <Limit GET> covers HEAD
        return ((method if method != "HEAD" else "GET") in self.names) != self.invert


@dataclass(frozen=True)
class Rule:
    """One ``Require [not] provider args``."""
    provider: str
    args: tuple
    negate: bool = False
    methods: Methods | None = None         # None: every method
    matcher: Any = field(default=None, compare=False, hash=False)
    text: str = ""

    def applies(self, method: str) -> bool:
        return self.methods is None or self.methods.applies(method)


@dataclass(frozen=True)
class Container:
    """A <RequireAll> ("and"), <RequireAny>/section ("or"), <RequireNone> ("or", negate)."""
    op: str
    negate: bool
    items: tuple
    merged: bool = False                   # made by AuthMerging

    def applies(self, method: str) -> bool:
        return any(i.applies(method) for i in self.items)


#: method names Apache registers (ap_method_number_of)
METHODS = frozenset("GET HEAD PUT POST DELETE CONNECT OPTIONS TRACE PATCH PROPFIND PROPPATCH "
                    "MKCOL COPY MOVE LOCK UNLOCK VERSION-CONTROL CHECKOUT UNCHECKOUT CHECKIN "
                    "UPDATE LABEL REPORT MKWORKSPACE MKACTIVITY BASELINE-CONTROL MERGE".split())


# -- config time ------------------------------------------------------------------------------
def parse_require(words: list[str], raw_args: str, methods: Methods | None,
                  *, loaded: frozenset | None = None) -> Rule:
    """A Require line's words -> Rule; ConfigError as Apache words its refusals."""
    negate = False
    if words and words[0].lower() == "not":
        negate, words = True, words[1:]
    if not words:
        raise ConfigError("Require requires at least one argument, specifies authorization "
                          "requirements")
    name = words[0]             # provider names are case-sensitive, as Apache looks them up
    args = tuple(words[1:])
    if name in UNBUILT:
        raise ConfigError(f"Require {words[0]}: the '{name}' authorization provider is not "
                          f"built into httpd-py (refused rather than ignored: it decides who "
                          f"may see what)")
    if name not in PROVIDERS:
        raise ConfigError(f"Unknown Authz provider: {words[0]}")
    matcher = None
    if name == "all":
        if len(args) != 1 or args[0].lower() not in ("granted", "denied"):
            raise ConfigError("'Require all' does not take an argument, or the argument is "
                              "not 'granted' or 'denied'")
        matcher = args[0].lower() == "granted"
    elif name == "ip":
        if not args:
            raise ConfigError("Require ip requires an argument")
        matcher = authz_host.parse_ip(list(args))
    elif name in ("host", "forward-dns"):
        if not args:
            raise ConfigError(f"Require {name} requires an argument")
        matcher = authz_host.HostMatcher(list(args))
    elif name == "local":
        if args:
            raise ConfigError("'Require local' does not take an argument")
    elif name == "method":
        if not args:
            raise ConfigError("'Require method' requires at least one argument")
        for a in args:
            if a not in METHODS:
                raise ConfigError(f"Invalid Method '{a}'")
        # Apache numbers HEAD as GET
        matcher = frozenset("GET" if a == "HEAD" else a for a in args)
    elif name == "expr":
        text = raw_args.strip()
        if not text:
            raise ConfigError("Require expr requires an expression")
        from httpd_py.expr import parse_condition
        try:
            matcher = parse_condition(text)
        except ConfigError as e:
            raise ConfigError(f"Cannot parse expression in require line: {e}") from None
    elif name in ("user", "group", "env"):
        matcher = frozenset(args)
    text = "Require " + ("not " if negate else "") + " ".join(words)
    return Rule(name, args, negate, methods, matcher, text)


def add_rule(section: Container | None, rule: Rule) -> Container:
    """Append a Require line to a section's (implicit RequireAny) tree."""
    section = section or Container("or", False, ())
    if rule.negate and section.op == "or":
        raise ConfigError(f"negative Require directive has no effect in "
                          f"{describe(section)} directive")
    return Container(section.op, section.negate, section.items + (rule,), section.merged)


def add_container(parent: Container | None, child: Container, name: str) -> Container:
    """Close a <RequireAll|Any|None> section and append it to its parent."""
    if not child.items:
        raise ConfigError(f"{describe(child)} directive contains no authorization directives")
    parent = parent or Container("or", False, ())
    if child.negate and parent.op == "or":
        raise ConfigError(f"{describe(child)} directive has no effect in {describe(parent)} "
                          f"directive")
    if not child.negate and child.op == parent.op:
        return Container(parent.op, parent.negate, parent.items + child.items, parent.merged)
    return Container(parent.op, parent.negate, parent.items + (child,), parent.merged)


def check_negative_only(tree: Container, top: bool = True) -> None:
    """Apache's start-up check: a container holding only negative rules grants nothing."""
    for i in tree.items:
        if isinstance(i, Container):
            check_negative_only(i, False)
    if all(_negative(i, tree) for i in tree.items):
        what = "<Directory>, <Location>, or similar" if top else describe(tree)
        raise ConfigError(f"{what} directive contains only negative authorization directives")


def _negative(item, parent: Container) -> bool:
    if isinstance(item, Rule):
        return item.negate
    if item.negate and item.op != parent.op:
        # De Morgan: its children join the parent with their sign flipped
        return all(not _negative(c, item) for c in item.items)
    return item.negate


def describe(c: Container) -> str:
    if c.merged:
        return "AuthMerging " + ("All" if c.op == "and" else "Any")
    if c.op == "and":
        return "<RequireNotAll>" if c.negate else "<RequireAll>"
    return "<RequireNone>" if c.negate else "<RequireAny>"


# -- request time -----------------------------------------------------------------------------
def _provider(rule: Rule, req: AuthzRequest) -> str:
    p = rule.provider
    if p == "all":
        return GRANTED if rule.matcher else DENIED
    if p == "ip":
        return GRANTED if rule.matcher.matches(req.remote_ip) else DENIED
    if p == "local":
        return GRANTED if authz_host.is_local(req.remote_ip, req.local_ip) else DENIED
    if p in ("host", "forward-dns"):
        return GRANTED if rule.matcher.matches(req.remote_ip) else DENIED
    if p == "method":
        return GRANTED if ("GET" if req.method == "HEAD" else req.method) in rule.matcher \
            else DENIED
    if p == "env":
        return GRANTED if any(n in req.env_vars for n in rule.args) else DENIED
    if p == "expr":
        try:
            ok = rule.matcher.evaluate(req.expr_context())
        except Exception:
            return GENERAL_ERROR
        if ok:
            return GRANTED
        return DENIED_NO_USER if (req.user is None and rule.matcher.uses_user) else DENIED
    if p == "valid-user":
        return GRANTED if req.user is not None else DENIED_NO_USER
    if p == "user":
        if req.user is None:
            return DENIED_NO_USER
        return GRANTED if req.user in rule.matcher else DENIED
    if p == "group":
        if req.user is None:
            return DENIED_NO_USER
        groups = req.groups_of(req.user)
        if groups is None:
            return GENERAL_ERROR
        return GRANTED if groups & rule.matcher else DENIED
    return GENERAL_ERROR


def evaluate(item, req: AuthzRequest, parent_op: str = "and") -> str:
    """One rule or container's result for ``req`` (see the module docstring)."""
    if not item.applies(req.method):
        return GRANTED if parent_op == "and" else NEUTRAL
    if isinstance(item, Rule):
        result = _provider(item, req)
    else:
        result = NEUTRAL
        for child in item.items:
            r = evaluate(child, req, item.op)
            if r == GENERAL_ERROR:
                return r
            if r == NEUTRAL:
                continue
            if item.op == "and":
                if r == DENIED:
                    result = r
                    break
                if (r == DENIED_NO_USER and result != DENIED) or result == NEUTRAL:
                    result = r
            else:
                if r == GRANTED:
                    result = r
                    break
                if (r == DENIED_NO_USER and result == DENIED) or result == NEUTRAL:
                    result = r
    if item.negate:
        if result == GRANTED:
            result = DENIED
        elif result in (DENIED, DENIED_NO_USER):
            result = NEUTRAL
    return result


OK, NEED_USER = 0, -1


def check(tree: Container | None, req: AuthzRequest, *, auth_type: str | None,
          after_authn: bool, forbidden_on_fail: bool = False) -> int:
    """OK (0), NEED_USER (-1: authenticate, then call again with after_authn) or an HTTP status
    (401, 403, 500), as Apache's authorize_user_core."""
    if tree is None:
        return 500 if auth_type else OK
    result = evaluate(tree, req, "and")
    if result == GRANTED:
        return OK
    if result == DENIED_NO_USER:
        return 401 if after_authn else NEED_USER
    if result in (DENIED, NEUTRAL):
        if not after_authn or not auth_type:
            return 403
        return 403 if forbidden_on_fail else 401
    return 500


def some_auth_required(tree: Container | None, method: str) -> bool:
    return tree is not None and tree.applies(method)
