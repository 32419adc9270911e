"""mod_ssl's OCSP stapling rows (Apache's and httpd-py's own) and SSLStaplingCache.

Each row names the model field it fills (``ssl.stapling.*`` of ``StaplingConfig``, or a
``server.*`` field of ``ServerConfig``), its parser and its default: what a directive becomes is
read here, what reads it is listed in docs/directives.md ("Where each directive goes")."""
from __future__ import annotations

from urllib.parse import urlsplit

from httpd_py.config import modules, values
from httpd_py.config.directives.base import (
    FLAG, TAKE1, Directive, Parser, choice, flag, path, seconds)
from httpd_py.errors import ConfigError


def _stapling_cache(w, args):
    w.glob("stapling_cache", values.socache(args[0], "SSLStaplingCache", w.server_root,
                                            providers=modules.socache_providers(w.load_modules)))


def _responder_timeout(w, text: str) -> float:
    v = values.seconds(text, w.name)
    if v == 0:
        raise ConfigError(f"{w.name}: 0 would make every OCSP fetch fail at once; use >= 1")
    return float(v)


def _http_url(w, text: str) -> str:
    u = urlsplit(text)
    if u.scheme.lower() not in ("http", "https") or not u.hostname:
        raise ConfigError(f"{w.name}: '{text}' is not an http:// or https:// URL")
    try:
        u.port
    except ValueError:
        raise ConfigError(f"{w.name}: invalid port in '{text}'") from None
    return text


URL = Parser("url", _http_url)


def rows() -> list[Directive]:
    SSL = "mod_ssl.c"
    D = Directive
    return [
        D("SSLOCSPProxyURL", SSL, "SV", TAKE1, "", "HTTP proxy for OCSP requests, stapling "
          "included", field="ssl.stapling.proxy_url", parse=URL, value=None, syntax="url"),
        D("SSLStaplingCache", SSL, "S", TAKE1, "", "Cache of OCSP responses (required by "
          "SSLUseStapling)", _stapling_cache, field="server.stapling_cache", value=None,
          syntax="shmcb:path[(bytes)]|dbm:path|memcache:host[:port],...|redis:host[:port],..."),
        D("SSLStaplingErrorCacheTimeout", SSL, "SV", TAKE1, "", "Seconds an error response "
          "stays cached", field="ssl.stapling.error_cache_timeout", parse=seconds(), value=600,
          syntax="seconds"),
        D("SSLStaplingFakeTryLater", SSL, "SV", FLAG, "", "Staple a made-up tryLater when the "
          "responder cannot be reached", field="ssl.stapling.fake_try_later", parse=flag(),
          value=True),
        D("SSLStaplingForceURL", SSL, "SV", TAKE1, "", "OCSP responder URL overriding the "
          "certificate's AIA", field="ssl.stapling.force_url", parse=URL, value=None,
          syntax="uri"),
        D("SSLStaplingResponderTimeout", SSL, "SV", TAKE1, "", "Seconds allowed for an OCSP "
          "query", field="ssl.stapling.responder_timeout",
          parse=Parser("seconds", _responder_timeout), value=10.0, syntax="seconds"),
        D("SSLStaplingResponseMaxAge", SSL, "SV", TAKE1, "-1 (no limit)", "Oldest acceptable "
          "thisUpdate, in seconds", field="ssl.stapling.response_max_age", parse=seconds(),
          value=None, syntax="seconds"),
        D("SSLStaplingResponseTimeSkew", SSL, "SV", TAKE1, "", "Clock skew allowed when "
          "checking OCSP validity times", field="ssl.stapling.response_time_skew",
          parse=seconds(), value=300, syntax="seconds"),
        D("SSLStaplingReturnResponderErrors", SSL, "SV", FLAG, "", "Staple responses that are "
          "errors, expired or for another certificate",
          field="ssl.stapling.return_responder_errors", parse=flag(), value=True),
        D("SSLStaplingStandardCacheTimeout", SSL, "SV", TAKE1, "", "Seconds a good response "
          "stays cached", field="ssl.stapling.standard_cache_timeout", parse=seconds(),
          value=3600, syntax="seconds"),
        D("SSLUseStapling", SSL, "SV", FLAG, "", "Staple OCSP responses in handshakes",
          field="ssl.stapling.enabled", parse=flag(), value=False),
        # httpd-py extensions
        D("SSLStaplingRefresh", SSL, "SV", TAKE1, "", "Fetch OCSP responses ahead of "
          "time in a helper process (background) or in the handshake like Apache (on-demand)",
          field="ssl.stapling.refresh", parse=choice("background", "on-demand"),
          value="background", ext=True, syntax="background|on-demand"),
        D("SSLStaplingRenewWindow", SSL, "SV", TAKE1, "(half the validity)", "Refresh this many "
          "seconds before nextUpdate", field="ssl.stapling.renew_window",
          parse=seconds(minimum=1), value=None, ext=True, syntax="seconds"),
        D("SSLStaplingMustStaple", SSL, "SV", TAKE1, "", "For Must-Staple certificates "
          "without a valid response: warn, or refuse the handshake (strict)",
          field="ssl.stapling.must_staple", parse=choice("warn", "strict"), value="warn",
          ext=True, syntax="warn|strict"),
        D("SSLStaplingStoreDir", SSL, "S", TAKE1, "", "Directory where OCSP responses persist "
          "across restarts", field="server.stapling_store_dir", parse=path(), value=None,
          ext=True, syntax="directory-path"),
    ]
