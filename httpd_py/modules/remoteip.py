"""mod_remoteip: the client address from a header set by trusted proxies (RemoteIPHeader,
RemoteIPInternalProxy[List], RemoteIPTrustedProxy[List], RemoteIPProxiesHeader).

A post_read hook, so that access control (Require ip), ``%a`` and the proxy's X-Forwarded-For
see the address Apache would.  The walk is Apache's (mod_remoteip.c, 2.4):

    address = the connection's peer
    while the header has entries left:
        if proxies are configured and `address` is none of them: stop
        internal = whether the proxy that matched is an internal one
        take the header's last entry (comma separated, spaces trimmed); empty or not an IP: stop
        an external (trusted, or any peer when no proxy is configured) proxy presenting a
        private, loopback or link-local IPv4 address, or an IPv6 one outside 2000::/3: stop
        address = that entry; an external proxy's own address joins the proxies list

Afterwards the header keeps the entries not consumed (or is removed when all were), the
proxies list goes to ``req.notes["remoteip-proxy-ip-list"]`` and to RemoteIPProxiesHeader,
and ``req.client_ip`` is the address found.  Nothing changes when nothing was consumed.

Settings: ``srv.remoteip.config`` (RemoteIPConfig, a vhost's own lines replace the main
server's per field as Apache's merge does).  Log ids HP13101-HP13109.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, replace

from httpd_py import logids
from httpd_py.config import dirconf, values
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.log import error_log

K_CONFIG = dirconf.register("srv.remoteip.config", "override")


@dataclass(frozen=True)
class RemoteIPConfig:
    header: str = ""                 # lower-case header name ("" = module off)
    header_name: str = ""            # as written (for the header the module rewrites)
    proxies: tuple = ()              # (ip_network, internal: bool), in config order
    proxies_header: str = ""         # RemoteIPProxiesHeader, as written


def _cfg(w) -> RemoteIPConfig:
    return w.get(K_CONFIG) or RemoteIPConfig()


def _header(w, args):
    w.set(K_CONFIG, replace(_cfg(w), header=args[0].lower(), header_name=args[0]))


def _proxies_header(w, args):
    w.set(K_CONFIG, replace(_cfg(w), proxies_header=args[0]))


_PARTIAL = re.compile(r"\d{1,3}(?:\.\d{1,3}){0,2}\.?\Z")


def parse_proxy(arg: str) -> list:
    """One RemoteIP*Proxy argument as APR's ipsubnet reads it: an address, address/bits,
    address/netmask, a partial IPv4 address ("10.1" = 10.1.0.0/16), or a host name (all its
    addresses)."""
    ip, slash, mask = arg.partition("/")
    if not slash and _PARTIAL.match(ip) and ip.rstrip(".").count(".") < 3:
        parts = [p for p in ip.split(".") if p]
        if all(0 <= int(p) <= 255 for p in parts):
            return [ipaddress.ip_network(".".join(parts + ["0"] * (4 - len(parts)))
                                         + f"/{8 * len(parts)}")]
    try:
        if slash:
            return [ipaddress.ip_network(f"{ip}/{mask}", strict=False)]
        return [ipaddress.ip_network(ip)]
    except ValueError:
        if slash:
            raise ConfigError(f"RemoteIP: Error parsing IP {arg} the subnet /{mask} is "
                              f"invalid") from None
    try:
        infos = socket.getaddrinfo(arg, None, proto=socket.IPPROTO_TCP)
    except OSError:
        raise ConfigError(f"RemoteIP: Error parsing IP {arg} (not a valid host name)") from None
    return sorted({ipaddress.ip_network(i[4][0]) for i in infos}, key=str)


def _proxies(internal: bool):
    def h(w, args):
        nets = []
        for a in args:
            nets += [(n, internal) for n in parse_proxy(a)]
        c = _cfg(w)
        w.set(K_CONFIG, replace(c, proxies=c.proxies + tuple(nets)))
    return h


def _proxies_list(internal: bool):
    def h(w, args):
        path = values.path(args[0], w.server_root)
        try:
            with open(path, encoding="latin-1") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise ConfigError(f"{w.name}: Could not open file {path}: {e.strerror}") from None
        nets = []
        for no, line in enumerate(lines, 1):
            for word in line.split():
                if word.startswith("#"):
                    break
                try:
                    nets += [(n, internal) for n in parse_proxy(word)]
                except ConfigError as e:
                    raise ConfigError(f"{e} at line {no} of {path}") from None
        c = _cfg(w)
        w.set(K_CONFIG, replace(c, proxies=c.proxies + tuple(nets)))
    return h


def rows():
    from httpd_py.config.directives.base import ITERATE, TAKE1, Directive
    M = "mod_remoteip.c"
    D = Directive
    return [
        D("RemoteIPHeader", M, "SV", TAKE1, "", "The header whose addresses replace the "
          "client address (e.g. X-Forwarded-For)", _header, syntax="header-name"),
        D("RemoteIPInternalProxy", M, "SV", ITERATE, "", "Proxies trusted to present any "
          "address, private ones too", _proxies(True), syntax="ip|ip/bits|host ..."),
        D("RemoteIPInternalProxyList", M, "SV", TAKE1, "", "A file of internal proxies",
          _proxies_list(True), syntax="file-path"),
        D("RemoteIPTrustedProxy", M, "SV", ITERATE, "", "Proxies trusted to present public "
          "addresses", _proxies(False), syntax="ip|ip/bits|host ..."),
        D("RemoteIPTrustedProxyList", M, "SV", TAKE1, "", "A file of trusted proxies",
          _proxies_list(False), syntax="file-path"),
        D("RemoteIPProxiesHeader", M, "SV", TAKE1, "", "A request header that receives the "
          "list of trusted proxies passed", _proxies_header, syntax="header-name"),
    ]


# -- the hook ---------------------------------------------------------------------------------
def _addr(text: str):
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def _not_public(a) -> bool:
    """What an external proxy may not present (RFC 3330 private/local IPv4; IPv6 outside
    global unicast 2000::/3)."""
    if a.version == 4:
        b = a.packed
        return (b[0] in (10, 127) or (b[0] == 169 and b[1] == 254)
                or (b[0] == 172 and (b[1] & 0xF0) == 16) or (b[0] == 192 and b[1] == 168))
    return (a.packed[0] & 0xE0) != 0x20


def resolve(cfg: RemoteIPConfig, peer: str, value: str):
    """(client address, header value left or None, proxies list or "") or None when nothing
    changes.  Pure: the table tests call it directly."""
    current = _addr(peer)
    if current is None:
        return None
    remote: str | None = value
    proxy_ips: list[str] = []
    found = None
    internal = False
    while remote is not None:
        if cfg.proxies:
            for net, is_internal in cfg.proxies:
                if current.version == net.version and current in net:
                    internal = is_internal
                    break
            else:
                break
        head, comma, last = remote.rpartition(",")
        entry = last.strip(" ")
        rest = head if comma else None
        if not entry:
            break
        a = _addr(entry)
        if a is None:
            error_log.debug("remoteip", logids.REMOTEIP_UNPARSABLE,
                            f"RemoteIP: Header {cfg.header_name} value "
                            f"of {entry} cannot be parsed as a client IP")
            break
        if not internal and _not_public(a):
            error_log.debug("remoteip", logids.REMOTEIP_NOT_TRUSTED,
                            f"RemoteIP: Header {cfg.header_name} value "
                            f"of {entry} appears to be a private IP or nonsensical.  Ignored")
            break
        if not internal:
            proxy_ips.append(found if found is not None else peer)
        found = str(a)
        current = a
        remote = rest
    if found is None:
        return None
    return found, remote, ", ".join(proxy_ips)


def post_read(req):
    mods = req.vhost.mods
    if not mods:
        return None
    cfg = req.vhost.mod(K_CONFIG)
    if cfg is None or not cfg.header:
        return None
    value = req.headers.get(cfg.header)
    if not value:
        return None
    got = resolve(cfg, req.client_ip, value)
    if got is None:
        return None
    ip, left, proxies = got
    if left is not None:
        req.headers[cfg.header] = left
    else:
        req.headers.pop(cfg.header, None)
    _rewrite_raw(req, cfg.header, left)
    if proxies:
        req.notes["remoteip-proxy-ip-list"] = proxies
        if cfg.proxies_header:
            req.headers[cfg.proxies_header.lower()] = proxies
            _rewrite_raw(req, cfg.proxies_header.lower(), proxies, cfg.proxies_header)
    error_log.log("remoteip", "trace1", logids.REMOTEIP_USING, f"Using {ip} as client's IP by "
                     + (f"proxies {proxies}" if proxies else "internal proxies"))
    req.notes["remoteip-peer"] = req.client_ip
    req.client_ip = ip
    return None


def _rewrite_raw(req, lname: str, value: str | None, name: str | None = None) -> None:
    """Keep ``req.raw_headers`` (what a proxy passes on) in step with ``req.headers``."""
    raw = getattr(req, "raw_headers", None)
    if raw is None:
        return
    out, done = [], False
    for n, v in raw:
        if n.decode("latin-1").lower() == lname:
            if value is not None and not done:
                out.append((n, value.encode("latin-1")))
                done = True
            continue
        out.append((n, v))
    if value is not None and not done:
        out.append(((name or lname).encode("latin-1"), value.encode("latin-1")))
    req.raw_headers = out


hooks.POST_READ.append(post_read)
hooks.INERT[post_read] = lambda vhost, conf: not (
    vhost.mods and (vhost.mod(K_CONFIG) or RemoteIPConfig()).header)
