"""mod_access_compat: ``Order``, ``Allow``, ``Deny`` and ``Satisfy`` (Apache 2.2 style), pure Python.

Each ``Allow from``/``Deny from`` line becomes one HostRule; each word after "from" one HostTerm,
classified as Apache does, in order:

1. ``env=!VAR`` (prefix case-insensitive): matches when VAR is *not* set;
2. ``env=VAR``: matches when VAR is set (to anything, even ""); variable names are compared
   case-insensitively, as Apache's tables do;
3. ``all`` (case-insensitive): matches every client;
4. a word with ``/``: must be an address with a mask (see authz_host); otherwise
   "An IP address was expected", or APR's message for a bad address or mask;
5. a word that looks like an address (only digits and dots, or containing ``:``): an address or
   partial address, or APR's message ("The specified IP address is invalid.") -- so ``10.1.2.300``
   is an error, not a host name;
6. anything else is a host name, matched after a double-reverse lookup (authz_host.in_domain).

``access_allowed`` is ``check_dir_access`` for one request: only rules whose methods include the
request's method count (HEAD counts as GET, as in Apache's method numbers), and:

============== ============= ====================================================
Order          default       result
============== ============= ====================================================
Allow,Deny     deny          allowed if some Allow matches and no Deny matches
Deny,Allow     allow         denied if some Deny matches and no Allow matches
Mutual-failure deny          allowed if some Allow matches and no Deny matches
============== ============= ====================================================

When a directory has no Order, Allow or Deny at all, Apache's defaults (Deny,Allow with empty
lists) allow everything, so mod_access_compat never restricts such a request; the caller does not
call ``access_allowed`` then (it would return True).  ``Order`` inside ``<Limit>`` sets the order
for those methods only, so the caller passes the order in force for the request's method.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from httpd_py.errors import ConfigError
from httpd_py.modules.authz_host import (
    HostMatcher, IPMatcher, Resolver, SubnetError, parse_word,
)

__all__ = [
    "ALLOW_DENY", "DENY_ALLOW", "MUTUAL_FAILURE", "SATISFY_ALL", "SATISFY_ANY",
    "parse_order", "parse_allow_deny", "HostRule", "HostTerm", "parse_satisfy", "access_allowed",
]

ALLOW_DENY, DENY_ALLOW, MUTUAL_FAILURE = "allow,deny", "deny,allow", "mutual-failure"
SATISFY_ALL, SATISFY_ANY = "all", "any"

_ORDERS = (ALLOW_DENY, DENY_ALLOW, MUTUAL_FAILURE)


def parse_order(arg: str) -> str:
    """``Order`` argument, case-insensitive -> one of the three constants."""
    order = arg.lower()
    if order not in _ORDERS:
        raise ConfigError("unknown order")
    return order


def parse_satisfy(arg: str) -> str:
    """``Satisfy`` argument, case-insensitive -> "all" or "any"."""
    value = arg.lower()
    if value not in (SATISFY_ALL, SATISFY_ANY):
        raise ConfigError("Satisfy either 'any' or 'all'.")
    return value


def _method_number(method: str) -> str:
    # Apache gives HEAD the method number of GET, so <Limit GET> covers HEAD and vice versa.
    return "GET" if method == "HEAD" else method


@dataclass(frozen=True)
class HostTerm:
    """One word after "from": ``kind`` is "all", "env", "env-not", "ip" or "host"; ``value`` is the
    variable name or the word as written; ``ip``/``host`` hold the matcher for those kinds."""
    kind: str
    value: str
    ip: IPMatcher | None = None
    host: HostMatcher | None = None

    def matches(self, remote_ip: str, env: Mapping[str, str],
                resolver: Resolver | None = None) -> bool:
        if self.kind == "all":
            return True
        if self.kind in ("env", "env-not"):
            wanted = self.value.lower()
            present = any(key.lower() == wanted for key in env)
            return present if self.kind == "env" else not present
        if self.kind == "ip" and self.ip is not None:
            return self.ip.matches(remote_ip)
        if self.kind == "host" and self.host is not None:
            return self.host.matches(remote_ip, resolver)
        return False


@dataclass(frozen=True)
class HostRule:
    """One ``Allow from ...``/``Deny from ...`` line: it matches when any of its words does.

    Apache stores one entry per word, all with the line's methods; since a list matches when any
    entry does, one rule per line with its words as ``terms`` decides the same.  ``methods``
    None means every method; otherwise the rule counts only for those methods, or, with
    ``methods_excluded``, for every method except those (``<LimitExcept>``).
    """
    terms: tuple[HostTerm, ...]
    methods: frozenset[str] | None = None
    methods_excluded: bool = False

    def with_methods(self, methods: Iterable[str], *, excluded: bool = False) -> "HostRule":
        """This rule limited to ``methods`` (``<Limit>``), or to all others (``<LimitExcept>``).

        Method names are case-sensitive, as in Apache; HEAD is the same method as GET.
        """
        return replace(self, methods=frozenset(_method_number(m) for m in methods),
                       methods_excluded=excluded)

    def applies_to(self, method: str) -> bool:
        if self.methods is None:
            return True
        return (_method_number(method) in self.methods) != self.methods_excluded

    def matches(self, remote_ip: str, env: Mapping[str, str],
                resolver: Resolver | None = None) -> bool:
        """Does a word of this rule match the client (methods aside)?  Never raises."""
        return any(term.matches(remote_ip, env, resolver) for term in self.terms)


def _term(word: str) -> HostTerm:
    lowered = word.lower()
    if lowered.startswith("env=!"):
        return HostTerm("env-not", word[5:])
    if lowered.startswith("env="):
        return HostTerm("env", word[4:])
    if lowered == "all":
        return HostTerm("all", word)
    try:
        subnet = parse_word(word)
    except SubnetError as e:
        if e.kind != "einval":
            raise ConfigError(e.apr_message) from None
        if "/" in word:
            raise ConfigError("An IP address was expected") from None
        return HostTerm("host", word, host=HostMatcher([word]))
    return HostTerm("ip", word, ip=IPMatcher((subnet,)))


def parse_allow_deny(args: list[str], directive: str = "Allow") -> HostRule:
    """Arguments after ``Allow``/``Deny``: "from" (any case) then one or more words.

    ``directive`` only names the directive in the message for a missing argument (the directive
    table normally checks the count first).
    """
    if len(args) < 2:
        raise ConfigError(f"{directive} requires at least two arguments, "
                          "'from' followed by hostnames or IP-address wildcards")
    if args[0].lower() != "from":
        raise ConfigError("allow and deny must be followed by 'from'")
    return HostRule(tuple(_term(word) for word in args[1:]))


def _find(rules: tuple[HostRule, ...], method: str, remote_ip: str, env: Mapping[str, str],
          resolver: Resolver | None) -> bool:
    return any(rule.applies_to(method) and rule.matches(remote_ip, env, resolver)
               for rule in rules)


def access_allowed(order: str, allows: tuple[HostRule, ...], denies: tuple[HostRule, ...],
                   method: str, remote_ip: str, env: Mapping[str, str],
                   resolver: Resolver | None = None) -> bool:
    """mod_access_compat's verdict for one request: True to allow, False for 403."""
    allowed = _find(allows, method, remote_ip, env, resolver)
    denied = _find(denies, method, remote_ip, env, resolver)
    if order == DENY_ALLOW:
        return allowed or not denied
    if order in (ALLOW_DENY, MUTUAL_FAILURE):
        return allowed and not denied
    raise ValueError(f"unknown order {order!r}")
