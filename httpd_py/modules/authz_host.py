"""mod_authz_host: ``Require ip``, ``Require host`` and ``Require local``, pure Python.

Parsing follows APR's ``apr_ipsubnet_create`` as mod_authz_host calls it (one word at a time, split
at the first ``/``), because that is what decides which configs Apache accepts:

* a word "looks like an IP" when it contains ``:`` or is only digits and dots; anything else is
  APR's EINVAL ("not an address at all"), which ``Require ip`` reports as
  ``ip address 'X' appears to be invalid`` and ``Allow from`` takes as a host name;
* a full address is read as APR's inet_pton does (IPv4: four decimal octets, leading zeros
  allowed; IPv6: hex groups, one ``::``, optional trailing dotted quad, no ``%scope``, with the old
  parser's quirks: see ``_pton6``);
  an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is refused: APR stores IPv4 rules as IPv4 only;
* without a mask, a partial IPv4 address of whole octets is a network: ``10.1`` and ``10.1.``
  mean 10.1.0.0/16, ``10`` means 10.0.0.0/8, and ``1.2.3.4.`` means 1.2.3.4/32;
  with a mask a partial address is refused (``10.1/16`` is invalid);
* the mask is a bit count in 1..32 (1..128 for IPv6) as C's ``strtol`` reads it (``+8`` is 8), or a
  dotted IPv4 netmask, which may be non-contiguous and may be ``0.0.0.0``; ``/0`` is refused;
  a netmask is refused for an IPv6 address; bits beyond the mask are cleared;
* any other address problem is APR_EBADIP, a mask problem APR_EBADMASK, each reported with APR's
  message after the word.

Matching follows ``apr_ipsubnet_test``: an IPv4 client matches IPv4 rules only; an IPv4-mapped IPv6
client (``::ffff:1.2.3.4``) is tested as its IPv4 address against IPv4 rules only; any other IPv6
client matches IPv6 rules only (current APR; some older releases let an IPv6 client meet IPv4
rules by accident).  A ``%scope`` suffix on the client address is ignored.

Host names use Apache's double-reverse lookup: reverse-resolve the client, forward-resolve that
name, and accept the name only if the forward answers include the client's address (IPv4 and its
IPv4-mapped form are equal).  A configured name matches the host itself or, compared from the
end case-insensitively, any host whose matched tail starts right after a dot; a leading dot
(``.example.org``) therefore matches subdomains only.  The lookup lives behind a small
``Resolver`` protocol so tests can pass a table.
"""
from __future__ import annotations

import ipaddress
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Protocol

from httpd_py.errors import ConfigError

__all__ = [
    "IPMatcher", "parse_ip", "is_local", "HostMatcher", "Resolver", "SocketResolver",
    "default_resolver", "double_reverse_name", "in_domain", "Subnet", "SubnetError",
    "ipsubnet_create", "looks_like_ip", "parse_word",
]

# APR's error strings, reported after the word by both mod_authz_host and mod_access_compat.
EBADIP_MSG = "The specified IP address is invalid."
EBADMASK_MSG = "The specified network mask is invalid."

_V4, _V6 = 4, 6
_ALL32 = 0xFFFFFFFF
_ALL128 = (1 << 128) - 1
# C's isspace in the "C" locale, which strtol skips before the number.
_STRTOL_BITS = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)\Z")


class SubnetError(Exception):
    """Why a word is not a subnet: ``kind`` is "einval", "badip" or "badmask" (APR's statuses)."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind

    @property
    def apr_message(self) -> str:
        return EBADMASK_MSG if self.kind == "badmask" else EBADIP_MSG


@dataclass(frozen=True)
class Subnet:
    """One parsed rule: address family (4 or 6), network and mask as integers."""
    family: int
    network: int
    mask: int

    def contains(self, family: int, addr: int) -> bool:
        return family == self.family and addr & self.mask == self.network


# --- APR-compatible text parsing -------------------------------------------------------------

def looks_like_ip(word: str) -> bool:
    """APR's filter: contains ':' (meant as IPv6) or only digits and dots (meant as IPv4).

    As in APR, the empty string passes (so ``/8`` is a bad address, not a host name).
    """
    if ":" in word:
        return True
    return all(c == "." or "0" <= c <= "9" for c in word)


def _pton4(text: str) -> int | None:
    """inet_pton(AF_INET) as APR implements it: a.b.c.d, decimal, leading zeros allowed."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not part or not all("0" <= c <= "9" for c in part):
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = value << 8 | octet
    return value


_HEX = "0123456789abcdefABCDEF"


def _pton6(text: str) -> int | None:
    """inet_pton(AF_INET6) as APR implements it (Vixie's 1996 parser), quirks included.

    No zone index; a group is limited by value, not digits ("00001" is 1); a dotted quad may end
    the address; "::" may stand for no group at all ("1:2:3:4::5:6:7:8"); and a single ':' after
    the last group is ignored ("1::2:" is 1::2).
    """
    if not text:
        return None
    pos = 0
    if text[0] == ":":
        if text[1:2] != ":":
            return None
        pos = 1
    groups: list[int] = []
    gap: int | None = None          # where "::" stands, as an index into groups
    token = pos                     # start of the current group, for a trailing dotted quad
    value, in_group = 0, False
    while pos < len(text):
        c = text[pos]
        pos += 1
        if c in _HEX:
            value = value << 4 | int(c, 16)
            if value > 0xFFFF:
                return None
            in_group = True
        elif c == ":":
            token = pos
            if not in_group:
                if gap is not None:
                    return None
                gap = len(groups)
            elif len(groups) >= 8:
                return None
            else:
                groups.append(value)
                value, in_group = 0, False
        elif c == "." and len(groups) <= 6 and (v4 := _pton4(text[token:])) is not None:
            groups += [v4 >> 16, v4 & 0xFFFF]
            in_group = False
            break
        else:
            return None
    if in_group:
        if len(groups) >= 8:
            return None
        groups.append(value)
    if gap is not None:
        groups[gap:gap] = [0] * (8 - len(groups))
    if len(groups) != 8:
        return None
    result = 0
    for group in groups:
        result = result << 16 | group
    return result


def _partial_network(text: str) -> Subnet:
    """APR's legacy network form: up to four whole decimal octets, each optionally dot-ended.

    APR would read "" as 0.0.0.0 with an empty mask, matching every IPv4 client; Apache's word
    splitter never hands it an empty word, so an empty one here is refused rather than trusted.
    """
    if not text or len(text) >= len("255.255.255.255") + 1:
        raise SubnetError("badip")
    network = mask = 0
    shift = 24
    rest = text
    while rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        if digits == 0:
            raise SubnetError("badip")
        chunk, rest = rest[:digits], rest[digits:]
        if rest.startswith("."):
            rest = rest[1:]
        elif rest:
            raise SubnetError("badip")
        if shift < 0:
            raise SubnetError("badip")
        octet = int(chunk)
        if octet > 255:
            raise SubnetError("badip")
        network |= octet << shift
        mask |= 0xFF << shift
        shift -= 8
    return Subnet(_V4, network, mask)


def _mask_bits(text: str, maxbits: int) -> int | None:
    m = _STRTOL_BITS.match(text)
    if m is None:
        return None
    bits = int(m.group(2)) * (-1 if m.group(1) == "-" else 1)
    return bits if 0 < bits <= maxbits else None


def ipsubnet_create(addr: str, mask: str | None = None) -> Subnet:
    """Parse like ``apr_ipsubnet_create(addr, mask)``; raise SubnetError with APR's status."""
    if not looks_like_ip(addr):
        raise SubnetError("einval")
    v6 = _pton6(addr)
    if v6 is not None:
        if v6 >> 32 == 0xFFFF:
            raise SubnetError("badip")      # IPv4-mapped: write the IPv4 form instead
        subnet = Subnet(_V6, v6, _ALL128)
    else:
        v4 = _pton4(addr)
        if v4 is not None:
            subnet = Subnet(_V4, v4, _ALL32)
        elif mask is None:
            subnet = _partial_network(addr)
        else:
            raise SubnetError("badip")
    if mask is not None:
        maxbits = 128 if subnet.family == _V6 else 32
        bits = _mask_bits(mask, maxbits)
        if bits is not None:
            subnet = Subnet(subnet.family, subnet.network,
                            ((1 << bits) - 1) << (maxbits - bits))
        else:
            netmask = _pton4(mask)
            if netmask is None or subnet.family != _V4:
                raise SubnetError("badmask")
            subnet = Subnet(_V4, subnet.network, netmask)
    return Subnet(subnet.family, subnet.network & subnet.mask, subnet.mask)


def parse_word(word: str) -> Subnet:
    """One config word: split at the first '/', then ``ipsubnet_create``."""
    addr, sep, mask = word.partition("/")
    return ipsubnet_create(addr, mask if sep else None)


# --- client addresses ------------------------------------------------------------------------

_CLIENTS: dict = {}         # per process: a keep-alive client asks again and again


def _client(ip: str) -> tuple[int, int] | None:
    """(family, integer) of a client address as the socket gives it; mapped IPv4 becomes IPv4
    (memoised: parsing costs about a microsecond per request)."""
    got = _CLIENTS.get(ip, _CLIENTS)
    if got is not _CLIENTS:
        return got
    got = _parse_client(ip)
    if isinstance(ip, str):
        if len(_CLIENTS) >= 4096:
            _CLIENTS.clear()
        _CLIENTS[ip] = got
    return got


def _parse_client(ip: str) -> tuple[int, int] | None:
    if not isinstance(ip, str):
        return None
    ip = ip.partition("%")[0]
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if addr.version == 4:
        return _V4, int(addr)
    value = int(addr)
    if value >> 32 == 0xFFFF:
        return _V4, value & _ALL32
    return _V6, value


@dataclass(frozen=True)
class IPMatcher:
    """The subnets of one ``Require ip`` line (or one ``Allow from`` address); any one matches."""
    subnets: tuple[Subnet, ...]

    def matches(self, ip: str) -> bool:
        client = _client(ip)
        if client is None:
            return False
        return any(s.contains(*client) for s in self.subnets)


def parse_ip(args: list[str]) -> IPMatcher:
    """``Require ip`` arguments -> IPMatcher; ConfigError with mod_authz_host's wording."""
    if not args:
        raise ConfigError("'require ip' requires an argument")
    subnets = []
    for word in args:
        try:
            subnets.append(parse_word(word))
        except SubnetError as e:
            if e.kind == "einval":
                raise ConfigError(f"ip address '{word}' appears to be invalid") from None
            raise ConfigError(
                f"ip address '{word}' appears to be invalid: {e.apr_message}") from None
    return IPMatcher(tuple(subnets))


_LOOPBACK_V4 = Subnet(_V4, 0x7F000000, 0xFF000000)
_LOOPBACK_V6 = Subnet(_V6, 1, _ALL128)


def is_local(remote_ip: str, local_ip: str) -> bool:
    """``Require local``: loopback (127.0.0.0/8, ::1, mapped 127/8) or the connection's own address.

    Address equality treats 1.2.3.4 and ::ffff:1.2.3.4 as the same (apr_sockaddr_equal).
    """
    client = _client(remote_ip)
    if client is None:
        return False
    if _LOOPBACK_V4.contains(*client) or _LOOPBACK_V6.contains(*client):
        return True
    return client == _client(local_ip)


# --- host names ------------------------------------------------------------------------------

class Resolver(Protocol):
    def reverse(self, ip: str) -> str | None: ...
    def forward(self, name: str) -> list[str]: ...


class SocketResolver:
    """The system resolver with a small cache; never raises (a failure is "no name").

    ``reverse`` asks for a name only (NI_NAMEREQD, as APR's getnameinfo does), so an address
    without a PTR record gives None rather than its own text.
    """

    def __init__(self, ttl: float = 60.0, max_entries: int = 1024, clock=time.monotonic):
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, object]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple[str, str], compute):
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = compute()
        with self._lock:
            if len(self._cache) >= self._max:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                while len(self._cache) >= self._max:
                    del self._cache[next(iter(self._cache))]
            self._cache[key] = (now + self._ttl, value)
        return value

    def reverse(self, ip: str) -> str | None:
        def lookup() -> str | None:
            try:
                name, _ = socket.getnameinfo((ip, 0), socket.NI_NAMEREQD)
            except (OSError, UnicodeError, ValueError, OverflowError):
                return None
            return name or None
        return self._cached(("r", ip), lookup)

    def forward(self, name: str) -> list[str]:
        def lookup() -> list[str]:
            try:
                infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError, ValueError):
                return []
            return list(dict.fromkeys(str(info[4][0]) for info in infos))
        return list(self._cached(("f", name), lookup))


_default: tuple[int, SocketResolver] | None = None


def default_resolver() -> SocketResolver:
    """One SocketResolver per process (a forked worker starts with an empty cache)."""
    global _default
    pid = os.getpid()
    if _default is None or _default[0] != pid:
        _default = (pid, SocketResolver())
    return _default[1]


def double_reverse_name(remote_ip: str, resolver: Resolver | None = None) -> str | None:
    """The client's host name, lower-cased, if it passes the double-reverse check; else None."""
    client = _client(remote_ip)
    if client is None:
        return None
    family, value = client
    # A mapped client is looked up as its IPv4 address, as APR does before getnameinfo.
    text = str(ipaddress.IPv4Address(value) if family == _V4 else ipaddress.IPv6Address(value))
    resolver = resolver if resolver is not None else default_resolver()
    try:
        name = resolver.reverse(text)
        if not name:
            return None
        answers = resolver.forward(name)
    except Exception:       # a resolver must not fail the request; treat it as "no name"
        return None
    if any(_client(answer) == client for answer in answers or ()):
        return name.lower()
    return None


def in_domain(domain: str, host: str) -> bool:
    """Apache's rule: ``domain`` ends ``host`` (case-insensitive) on a label boundary.

    "example.org" matches example.org and www.example.org, not badexample.org;
    ".example.org" matches www.example.org, not example.org itself.
    """
    if len(host) < len(domain) or host[len(host) - len(domain):].lower() != domain.lower():
        return False
    if len(host) == len(domain):
        return True
    return domain.startswith(".") or host[len(host) - len(domain) - 1] == "."


@dataclass(frozen=True, init=False)
class HostMatcher:
    """The names of one ``Require host`` line (or one ``Allow from`` name); any one matches.

    An empty list matches nothing (Apache accepts ``Require host`` with no names).  Apache 2.4
    also evaluates ``%{...}`` expressions inside the names; httpd-py takes them literally.
    """
    names: tuple[str, ...]

    def __init__(self, names: Iterable[str]):
        object.__setattr__(self, "names", tuple(names))

    def matches(self, remote_ip: str, resolver: Resolver | None = None) -> bool:
        if not self.names:
            return False
        host = double_reverse_name(remote_ip, resolver)
        return host is not None and any(in_domain(name, host) for name in self.names)
