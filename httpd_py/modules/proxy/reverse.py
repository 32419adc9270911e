"""ProxyPassReverse and ProxyPassReverseCookieDomain/Path: pure rewriting of a backend's
response headers (Apache's ap_proxy_location_reverse_map and ap_proxy_cookie_reverse_map).

* ``Location``, ``Content-Location`` and ``URI``: the first rule whose backend URL (a balancer's
  members' URLs for balancer://) starts the value (case-insensitively) replaces that prefix
  with the rule's URL-path, made absolute with the request's scheme, Host name and the Host
  header's port (left out when absent or the scheme's default), as apache2 does.
* ``Set-Cookie``: a ``path=`` attribute starting with an internal path becomes the public path
  (the whole value, as apache2 does); a ``domain=`` attribute ending in an internal domain is replaced by the public
  domain; the rest of the cookie is kept as sent.
"""
from __future__ import annotations

import re

URL_HEADERS = ("location", "content-location", "uri")


def base_url(scheme: str, host_header: str | None, server_name: str) -> str:
    """scheme://name[:port] of the request as ap_construct_url builds it with UseCanonicalName
    Off: the Host header's name, and its port only when it names one that is not the scheme's
    default (apache2 2.4.71 writes no port for "Host: localhost" on any listener); without a
    Host header, ServerName."""
    name, port = server_name, None
    if host_header:
        h = host_header.strip()
        m = re.match(r"(\[[^\]]*\]|[^:]*)(?::(\d*))?\Z", h)
        if m:
            name = m.group(1) or server_name
            if m.group(2):
                port = int(m.group(2))
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{name}" + ("" if port in (None, default) else f":{port}")


def map_location(value: str, rules: tuple, balancers: dict, base: str) -> str:
    for rule in rules:
        reals = [rule.url]
        if rule.url.lower().startswith("balancer://"):
            name, slash, rest = rule.url[len("balancer://"):].partition("/")
            b = balancers.get("balancer://" + name.lower())
            reals = [m.name + slash + rest for m in b.members] if b else []
        for real in reals:
            if len(value) >= len(real) and value[:len(real)].lower() == real.lower():
                u = rule.path + value[len(real):]
                if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", u):
                    return u
                return base + u
    return value


_ATTR = re.compile(r"(;\s*)(path|domain)=([^;]*)", re.I)


def map_cookie(value: str, paths: tuple, domains: tuple) -> str:
    def sub(m: re.Match) -> str:
        attr, v = m.group(2), m.group(3)
        if attr.lower() == "path":
            for internal, public in paths:
                if v.startswith(internal):
                    return f"{m.group(1)}{attr}={public}"
        else:
            for internal, public in domains:
                if len(v) >= len(internal) and v[len(v) - len(internal):].lower() == \
                        internal.lower():
                    return f"{m.group(1)}{attr}={public}"
        return m.group(0)
    return _ATTR.sub(sub, value)


def rewrite_headers(headers: list, rules: tuple, paths: tuple, domains: tuple,
                    balancers: dict, base: str) -> list:
    if not rules and not paths and not domains:
        return headers
    out = []
    for n, v in headers:
        ln = n.lower()
        if rules and ln in URL_HEADERS:
            v = map_location(v, rules, balancers, base)
        elif (paths or domains) and ln in ("set-cookie", "set-cookie2"):
            v = map_cookie(v, paths, domains)
        out.append((n, v))
    return out
