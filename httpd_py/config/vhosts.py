"""Which virtual host serves a connection and a name: the one selection, as Apache 2.4 makes it.

Pure (no sockets, no OpenSSL, no DNS).  Used by the server (``tls/sites.py``: per address, then
per SNI name and Host header) and by ``ServerConfig.select_vhost``.

Addresses.  Each ``<VirtualHost>`` address puts its vhost in one *group*, keyed by (address,
port); ``*`` and ``_default_`` are the same wildcard address, port ``*`` (None) is any port.
A connection to IP:PORT is served by the first group that exists among, in this order::

    (IP, PORT)   (IP, *)   (*, PORT)   (*, *)

and by the main server alone when none does.  Only the chosen group's vhosts are candidates: a
``*:443`` vhost never answers on an address that has an ``IP:443`` group, whatever the name.

Names (Host header without its port, or SNI), compared case-insensitively after dropping one
trailing dot.  The group's vhosts are tried in config order; a vhost matches when the name is
its ServerName, one of its plain ServerAliases, or matches one of its wildcard ServerAliases.
The first vhost that matches wins, so an earlier vhost's wildcard alias beats a later vhost's
exact ServerName.  Names are taken as written: a ServerName is never a pattern, a ServerAlias is
a pattern only when it holds ``*`` or ``?`` (``[ab].example.com`` is a plain name, matched only
by itself), ``*`` matches any run of characters (dots too, or none), ``?`` one character, and
there is no bracket class and no escape.  An alias written with a trailing dot never matches.
When no vhost matches a Host name, the first vhost (in the group's order) whose ``<VirtualHost>``
address is written as the name is taken (a ``Host: _default_`` picks the vhost declared
``_default_:PORT``), else the group's first vhost, its default.  An SNI name is matched by names
only (``Group.match_names``), as mod_ssl does.

Cost.  Group lookup is four dict probes.  A name is one dict probe among the group's plain names
(first vhost per name), plus a scan of the wildcard aliases of the vhosts *before* that vhost
(all wildcard aliases when no plain name matches): the number of vhosts with plain names never
adds to the cost.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:                   # model imports this module (select_vhost)
    from httpd_py.config.model import VHost, VHostAddr

WILDCARD_HOSTS = frozenset({"*", "_default_", ""})
ANY = "*"                      # a group's host when it is the wildcard address


def norm_ip(host: str) -> str:
    """An address as groups key it: brackets, zone and IPv4-mapped IPv6 dropped; "*" for the
    wildcards; a name (not an IP) lower-cased as written."""
    if host in WILDCARD_HOSTS or host.lower() == "_default_":
        return ANY
    host = host.strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host.lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def norm_name(name: str) -> str:
    """A Host header value or SNI name as compared: lower-case, no port, one trailing dot off.
    ``[v6]:port`` keeps its brackets; a bare IPv6 address is kept whole."""
    name = name.strip().lower()
    host, sep, port = name.partition("]")
    if name.startswith("[") and sep and (not port or (port[0] == ":" and port[1:].isdigit())):
        name = host + "]"
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.endswith("."):
        name = name[:-1]
    return name


def is_pattern(alias: str) -> bool:
    """Is a ServerAlias a wildcard pattern (Apache: it holds ``*`` or ``?``)?"""
    return "*" in alias or "?" in alias


@functools.lru_cache(maxsize=1024)
def compile_pattern(alias: str) -> re.Pattern[str]:
    """A wildcard ServerAlias as a regex: ``*`` any run (dots too, or none), ``?`` one
    character, everything else literal; case-insensitive."""
    parts = []
    for ch in alias:
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(parts), re.DOTALL | re.IGNORECASE)


def _wild_match(pattern: re.Pattern[str], name: str) -> bool:
    """One wildcard comparison (a function of its own so that tests can count them)."""
    return pattern.fullmatch(name) is not None


def name_matches(vhost: VHost, name: str) -> bool:
    """Does ``name`` (Host without port, or SNI) name ``vhost``: its ServerName, a plain
    ServerAlias, or a wildcard ServerAlias?  Case-insensitive; one trailing dot ignored."""
    name = norm_name(name)
    if not name:
        return False
    if vhost.server_name and vhost.server_name.lower() == name:
        return True
    for alias in vhost.server_aliases:
        alias = alias.lower()
        if alias == name:
            return True
        if is_pattern(alias) and _wild_match(compile_pattern(alias), name):
            return True
    return False


class Group:
    """The vhosts that share one ``<VirtualHost>`` address, in config order; ``vhosts[0]`` is
    the default.  ``host`` is an IP or ``"*"``, ``port`` None for any port."""
    __slots__ = ("host", "port", "vhosts", "_exact", "_wild", "_addr_names")

    def __init__(self, host: str, port: int | None, vhosts: Sequence[VHost],
                 addr_texts: Sequence[Iterable[str]] = ()):
        self.host = host
        self.port = port
        self.vhosts: tuple[VHost, ...] = tuple(vhosts)
        exact: dict[str, int] = {}
        wild: list[tuple[int, re.Pattern[str]]] = []
        for pos, v in enumerate(self.vhosts):
            if v.server_name:
                exact.setdefault(v.server_name.lower(), pos)
            for alias in v.server_aliases:
                alias = alias.lower()
                if is_pattern(alias):
                    wild.append((pos, compile_pattern(alias)))
                else:
                    exact.setdefault(alias, pos)
        addr_names: dict[str, int] = {}
        for pos, texts in enumerate(addr_texts):
            for text in texts:
                addr_names.setdefault(text.lower(), pos)
        self._exact = exact
        self._wild = tuple(wild)
        self._addr_names = addr_names

    def __repr__(self) -> str:
        port = "*" if self.port is None else self.port
        return f"Group({self.host}:{port}, {[v.server_name for v in self.vhosts]})"

    @property
    def default(self) -> VHost:
        return self.vhosts[0]

    def match(self, name: str | None) -> VHost | None:
        """The vhost a Host name selects in this group, or None (no name, nothing matched):
        by ServerName/ServerAlias, else by the ``<VirtualHost>`` address as written."""
        if not name:
            return None
        name = norm_name(name)
        found = self._match_names(name)
        if found is None and name:
            pos = self._addr_names.get(name)
            found = None if pos is None else self.vhosts[pos]
        return found

    def match_names(self, name: str | None) -> VHost | None:
        """Like ``match`` by ServerName/ServerAlias only: mod_ssl's SNI lookup, which never
        compares the name with the ``<VirtualHost>`` address."""
        return self._match_names(norm_name(name)) if name else None

    def _match_names(self, name: str) -> VHost | None:
        if not name:
            return None
        n = len(self.vhosts)
        first = self._exact.get(name, n)
        for pos, pattern in self._wild:      # only vhosts before the plain match can beat it
            if pos >= first:
                break
            if _wild_match(pattern, name):
                return self.vhosts[pos]
        return self.vhosts[first] if first < n else None

    def select(self, name: str | None) -> VHost:
        """The vhost ``name`` selects, else the group's default."""
        return self.match(name) or self.vhosts[0]


def group_key(addr: VHostAddr) -> tuple[str, int | None]:
    return norm_ip(addr.host), addr.port


def build_groups(vhosts: Sequence[VHost]) -> dict[tuple[str, int | None], list[int]]:
    """(host, port) -> indexes into ``vhosts``, each once, in config order; groups in the order
    their address first appears.  ``_default_`` is grouped with ``*``."""
    groups: dict[tuple[str, int | None], list[int]] = {}
    for i, v in enumerate(vhosts):
        for a in v.addrs:
            idx = groups.setdefault(group_key(a), [])
            if i not in idx:
                idx.append(i)
    return groups


class VHostIndex:
    """Every group of a configuration, built once; lookups by address and name."""

    def __init__(self, vhosts: Sequence[VHost], main: VHost):
        self.main = main
        self.vhosts = tuple(vhosts)
        self.groups: dict[tuple[str, int | None], Group] = {}
        for key, idx in build_groups(self.vhosts).items():
            members = [self.vhosts[i] for i in idx]
            texts = [[a.host for a in v.addrs if group_key(a) == key] for v in members]
            self.groups[key] = Group(key[0], key[1], members, texts)
        self.main_group = Group(ANY, None, (main,))

    def group_for(self, local_ip: str, port: int) -> Group | None:
        """The group serving a connection to local_ip:port (None: only the main server)."""
        ip = norm_ip(local_ip)
        groups = self.groups
        for key in ((ip, port), (ip, None), (ANY, port), (ANY, None)):
            g = groups.get(key)
            if g is not None:
                return g
        return None

    def group_or_main(self, local_ip: str, port: int) -> Group:
        """``group_for``, or the main server as a group of one."""
        return self.group_for(local_ip, port) or self.main_group

    def select(self, local_ip: str, port: int, name: str | None) -> VHost:
        """The vhost that serves ``name`` (Host or SNI, None when absent) on local_ip:port."""
        g = self.group_for(local_ip, port)
        return self.main if g is None else g.select(name)
