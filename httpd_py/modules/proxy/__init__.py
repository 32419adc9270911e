"""mod_proxy, mod_proxy_http, mod_proxy_balancer and mod_proxy_wstunnel (reverse proxying).

    conf.py      directive handlers and the frozen values they build (PassRule, Worker,
                 Balancer, ReverseRule, SSLProxySettings); the settings keys
    wire.py      pure HTTP/1.1 for the backend side (request head, response head parser,
                 hop-by-hop headers, Apache's path re-encoding)
    reverse.py   ProxyPassReverse and the cookie rewrites (pure)
    balancer.py  the state shared by all processes (an anonymous shared mapping made in the
                 master at import) and byrequests with sticky sessions
    backend.py   sockets: connect, TLS, the per-process keep-alive pool
    handler.py   the translate hook (ProxyPass) and the "proxy-server" handler (HTTP, balancer,
                 WebSocket tunnel)
    express.py   the lane: a plain proxied GET served without the phases (hooks.LANES)

``rows()`` is the directive table's part for these modules; importing the package registers the
settings keys, the translate hook and the handler.  ``<Proxy URL>`` and ``<ProxyMatch>`` are
section rows whose handler the config walker calls with the node (``conf.proxy_section``):
BalancerMember and ProxySet inside ``<Proxy balancer://name>`` define the balancer, ``Require
all granted`` is accepted, anything else is refused (per-<Proxy> access rules are not applied).
"""
from __future__ import annotations

from httpd_py.modules.proxy import conf as _c
from httpd_py.modules.proxy import handler as _handler  # noqa: F401  (registers the hooks)
from httpd_py.modules.proxy import express as _express  # noqa: F401  (registers the lane)


def rows():
    from httpd_py.config.directives.base import FLAG, ITERATE, RAW, TAKE1, TAKE2, TAKE23, Directive
    P, SSL = "mod_proxy.c", "mod_ssl.c"
    D = Directive
    rows = [
        D("ProxyPass", P, "A", RAW, "", "Map a URL-path (or the enclosing <Location>) to a "
          "backend URL, or '!' to exclude it; key=value worker parameters",
          _c.proxy_pass(False), syntax="[path] !|url [key=value ...] [nocanon] [noquery]"),
        D("ProxyPassMatch", P, "A", RAW, "", "ProxyPass with a regular expression; $1.. in the "
          "URL", _c.proxy_pass(True), syntax="[regex] !|url [key=value ...]"),
        D("ProxyPassReverse", P, "A", RAW, "", "Rewrite Location, Content-Location and URI "
          "response headers that point at the backend", _c.proxy_pass_reverse,
          syntax="[path] url [interpolate]"),
        D("ProxyPassReverseCookieDomain", P, "A", RAW, "", "Rewrite the Domain of backend "
          "cookies", _c.cookie_rule(_c.K_COOKIE_DOMAIN), syntax="internal public"),
        D("ProxyPassReverseCookiePath", P, "A", RAW, "", "Rewrite the Path of backend cookies",
          _c.cookie_rule(_c.K_COOKIE_PATH), syntax="internal public"),
        D("ProxyPreserveHost", P, "A", FLAG, "Off", "Send the client's Host header to the "
          "backend", _c.flag_key(_c.K_PRESERVE_HOST)),
        D("ProxyAddHeaders", P, "A", FLAG, "On", "Add X-Forwarded-For, -Host and -Server",
          _c.flag_key(_c.K_ADD_HEADERS)),
        D("ProxyErrorOverride", P, "A", RAW, "Off", "Answer backend errors (4xx, 5xx) with "
          "this server's error pages", _error_override, syntax="On|Off"),
        D("ProxyVia", P, "SV", TAKE1, "Off", "Via headers: Off (pass), On, Full, Block",
          _c.proxy_via, syntax="On|Off|Full|Block"),
        D("ProxyTimeout", P, "SV", TAKE1, "Timeout", "Backend timeout for workers without "
          "timeout=", _c.proxy_timeout, syntax="seconds"),
        D("ProxyRequests", P, "SV", FLAG, "Off", "Forward proxying (Off only: On is refused)",
          _c.proxy_requests),
        D("<Proxy", P, "SV", RAW, "", "Container for a proxied URL; <Proxy balancer://name> "
          "holds BalancerMember and ProxySet", _c.proxy_section, syntax="url"),
        D("BalancerMember", P, "A", RAW, "", "A member of a balancer, with worker parameters",
          _c.balancer_member, syntax="[balancer://name] url [key=value ...]"),
        D("ProxySet", P, "A", RAW, "", "Parameters of a balancer or worker",
          _c.proxy_set, syntax="[url] key=value ..."),
        D("ProxyPassInherit", P, "SV", FLAG, "On", "Accepted; a vhost uses the main server's "
          "ProxyPass rules (first) either way, as apache2 2.4.71 does",
          _c.flag_key(_c.K_INHERIT)),
        D("Proxy100Continue", P, "A", FLAG, "On", "Forward Expect: 100-continue to the backend "
          "and wait for its answer before sending the body", _c.flag_key(_c.K_CONTINUE)),
        D("ProxyBlock", P, "SV", ITERATE, "", "Backend host names (words, or *) never proxied "
          "to: 403", _c.proxy_block, syntax="*|word|host|domain ..."),
        D("ProxyPassInterpolateEnv", P, "A", FLAG, "Off", "${VAR} in proxy URLs (Off only: On "
          "is refused)", _c.interpolate_env),
        D("<ProxyMatch", P, "SV", RAW, "", "Container for proxied URLs matching a regex "
          "(Require all granted only)", _c.proxy_match_section, syntax="regex"),
    ]
    ssl_rows = [
        D("SSLProxyEngine", SSL, "SV", FLAG, "off", "TLS towards https:// and wss:// backends",
          _c.ssl_engine),
        D("SSLProxyVerify", SSL, "SV", TAKE1, "none", "Backend certificate verification",
          _c.ssl_verify, syntax="none|optional|require|optional_no_ca"),
        D("SSLProxyCACertificateFile", SSL, "SV", TAKE1, "", "CAs that sign backend "
          "certificates", _c.ssl_ca_file, syntax="file-path"),
        D("SSLProxyCheckPeerName", SSL, "SV", FLAG, "on", "The backend certificate must name "
          "the host, whatever SSLProxyVerify says (and be within its validity)",
          _c.ssl_check_name),
        D("SSLProxyCheckPeerCN", SSL, "SV", FLAG, "on", "The same check when "
          "SSLProxyCheckPeerName is not set", _c.ssl_check_cn),
    ]
    # mod_ssl's other rows live in config/directives/mod_ssl.py; these five are mod_proxy's
    rows += ssl_rows
    return rows


def _error_override(w, args):
    from httpd_py.config import values
    from httpd_py.errors import ConfigError
    if not args:
        raise ConfigError("ProxyErrorOverride must be On or Off")
    on = values.flag(args[0], w.name)
    for a in args[1:]:
        if not a.isdigit() or not 400 <= int(a) <= 599:
            raise ConfigError("ProxyErrorOverride: status codes must be 400-599")
    w.set(_c.K_ERROR_OVERRIDE, on)
