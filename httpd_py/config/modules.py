"""Which Apache modules exist, which httpd-py builds in, and which directive belongs to which.

httpd-py implements core, mod_so, mod_ssl, the socache providers (shmcb, dbm, redis, memcache),
mod_mime, mod_dir, mod_alias, mod_log_config, mod_authz_core, mod_unixd and the prefork MPM.
They are *built in* (``httpd-py -l`` lists them, ``<IfModule>`` is always true for them, as it is
for Apache's static modules).  ``LoadModule`` of any module Apache ships marks it loaded (the .so
need not exist).  ``apache_directives.tsv`` holds the names of every directive of the modules
Apache ships (generated from ``apache2 -L``; names and contexts only).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

# Module identifiers of the modules Apache httpd 2.4 ships (as in LoadModule), besides the
# static ones below.
_SHIPPED = """access_compat actions alias allowmethods asis auth_basic auth_digest auth_form
authn_anon authn_core authn_dbd authn_dbm authn_file authn_socache authnz_fcgi authnz_ldap
authz_core authz_dbd authz_dbm authz_groupfile authz_host authz_owner authz_user autoindex brotli
bucketeer buffer cache cache_disk cache_socache case_filter case_filter_in cern_meta cgi cgid
charset_lite data dav dav_fs dav_lock dbd deflate dialup dir dumpio echo env expires ext_filter
file_cache filter headers heartbeat heartmonitor http2 ident imagemap include info
lbmethod_bybusyness lbmethod_byrequests lbmethod_bytraffic lbmethod_heartbeat ldap log_debug
log_forensic lua macro md mime mime_magic mpm_event mpm_prefork mpm_worker negotiation proxy
proxy_ajp proxy_balancer proxy_connect proxy_express proxy_fcgi proxy_fdpass proxy_ftp
proxy_hcheck proxy_html proxy_http proxy_http2 proxy_scgi proxy_uwsgi proxy_wstunnel ratelimit
reflector remoteip reqtimeout request rewrite sed session session_cookie session_crypto
session_dbd setenvif slotmem_plain slotmem_shm socache_dbm socache_memcache socache_redis
socache_shmcb speling ssl status substitute suexec unique_id userdir usertrack vhost_alias xml2enc
allowhandlers autht_core autht_jwt crypto firehose journald lbmethod_bytraffic log_json
policy proxy_wstunnel systemd unixd so watchdog http log_config logio version core""".split()

# Module id -> source file name (what Apache's module structure calls itself; <IfModule mod_x.c>).
_SOURCE_EXCEPTIONS = {"core": "core.c", "http": "http_core.c", "mpm_prefork": "prefork.c",
                      "mpm_event": "event.c", "mpm_worker": "worker.c", "ldap": "util_ldap.c"}

# Compiled into Apache (Debian's `apache2 -l`) plus what httpd-py implements: always loaded.
STATIC = ("core", "so", "watchdog", "http", "log_config", "logio", "version", "unixd",
          "mpm_prefork", "ssl", "socache_shmcb", "socache_dbm", "socache_redis",
          "socache_memcache", "mime", "dir", "alias", "authz_core")

# The modules httpd-py implements (their directives have real handlers).
IMPLEMENTED = frozenset({"core.c", "http_core.c", "mod_so.c", "mod_unixd.c", "prefork.c",
                         "mod_ssl.c", "mod_socache_shmcb.c", "mod_socache_dbm.c",
                         "mod_socache_redis.c", "mod_socache_memcache.c", "mod_mime.c",
                         "mod_dir.c", "mod_alias.c", "mod_log_config.c", "mod_authz_core.c",
                         "mod_authz_host.c", "mod_authz_user.c", "mod_authz_groupfile.c",
                         "mod_authn_core.c", "mod_authn_file.c", "mod_auth_basic.c",
                         "mod_access_compat.c", "mod_reqtimeout.c"})


def short(module_id: str) -> str:
    """``ssl_module`` -> ``ssl``."""
    return module_id[:-7] if module_id.endswith("_module") else module_id


def source_name(module_id: str) -> str:
    s = short(module_id)
    return _SOURCE_EXCEPTIONS.get(s, f"mod_{s}.c")


def known_module(module_id: str) -> bool:
    return module_id.endswith("_module") and short(module_id) in _SHIPPED_SET


_SHIPPED_SET = frozenset(_SHIPPED)


def static_ids() -> tuple[str, ...]:
    return tuple(f"{s}_module" for s in STATIC)


def is_loaded(name: str, loaded: set[str]) -> bool:
    """<IfModule> test: ``ssl_module``, ``mod_ssl.c`` or ``ssl`` all name mod_ssl."""
    n = name.lower()
    for mid in loaded:
        if n == mid.lower() or n == source_name(mid).lower() or n == short(mid).lower():
            return True
    return False


@lru_cache(maxsize=1)
def apache_directives() -> dict[str, tuple[str, str, str]]:
    """lower-case name -> (name as Apache spells it, module source file, context class).

    Context class: "SV" server config and <VirtualHost> only, "D" only inside <Directory>-like
    sections, "A" anywhere.
    """
    return {k: v[:3] for k, v in _table().items()}


def apache_arg_counts(lname: str) -> tuple[int, int | None] | None:
    """(least, most) arguments apache2 accepts for a directive (most None: no limit), if known."""
    row = _table().get(lname)
    if row is None or row[3] == "-":
        return None
    return int(row[3]), (None if row[4] == "*" else int(row[4]))


@lru_cache(maxsize=1)
def _table() -> dict[str, tuple[str, str, str, str, str]]:
    out: dict[str, tuple[str, str, str, str, str]] = {}
    for line in Path(__file__).with_name("apache_directives.tsv").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, src, ctx, lo, hi = line.split("\t")
        out[name.lower()] = (name, src, ctx, lo, hi)
    return out


def loaded_sources(loaded: set[str]) -> set[str]:
    return {source_name(m) for m in loaded}


# The socache providers each socache module registers (mod_socache_shmcb registers "default" too).
SOCACHE_MODULES = {"socache_dbm": ("dbm",), "socache_memcache": ("memcache",),
                   "socache_redis": ("redis",), "socache_shmcb": ("default", "shmcb")}


def socache_providers(load_modules) -> tuple[str, ...]:
    """The socache provider names a configuration can use, sorted (Apache lists them in hash
    order, which varies): those of the socache modules it loads with ``LoadModule``, as Apache.
    A configuration that loads none of them gets every provider httpd-py builds in (httpd-py
    builds them in, as it builds in mod_ssl; docs/interop.md)."""
    mods = {short(m) for m in load_modules} & SOCACHE_MODULES.keys() or SOCACHE_MODULES.keys()
    return tuple(sorted(p for m in mods for p in SOCACHE_MODULES[m]))


# Mutex types and the module that registers each (Apache's ap_mutex_register in pre_config:
# a Mutex line naming the type of a module that is not loaded is "not valid").
MUTEX_TYPES = {"default": "core", "mpm-accept": "mpm_prefork", "watchdog-callback": "watchdog",
               "ssl-cache": "ssl", "ssl-stapling": "ssl", "ssl-stapling-refresh": "ssl",
               "rewrite-map": "rewrite", "authdigest-client": "auth_digest",
               "ldap-cache": "ldap", "proxy": "proxy", "proxy-balancer-shm": "proxy_balancer",
               "authn-socache": "authn_socache", "cache-socache": "cache_socache",
               "lua-ivm-shm": "lua"}


def mutex_types(loaded) -> frozenset[str]:
    """The Mutex types the loaded modules (ids, ``ssl_module``) register."""
    mods = {short(m) for m in loaded} | {"core"}
    return frozenset(t for t, m in MUTEX_TYPES.items() if m in mods)
