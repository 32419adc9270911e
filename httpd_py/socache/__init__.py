"""Shared object caches (Apache's socache providers) and the global mutex.

``create(spec, cfg)`` is the registry: it turns a parsed ``SocacheSpec`` into a provider (no
I/O; it raises ``ConfigError`` without a location).  ``check(cfg)`` runs it at config time,
for ``-t`` and for every load of the server, before anything forks, and locates an error at the
directive's file and line (config cannot import socache, so the walker cannot call it).  See
``base.Provider`` for the lifecycle.
"""
from __future__ import annotations

from httpd_py.config.model import ServerConfig, SocacheSpec
from httpd_py.errors import ConfigError, SocacheError
from httpd_py.socache.base import NoneProvider, Provider

__all__ = ["check", "create", "Provider", "PROVIDERS"]

PROVIDERS = ("shmcb", "default", "dbm", "redis", "memcache", "none")


def create(spec: SocacheSpec, cfg: ServerConfig | None = None) -> Provider:
    """A provider for ``spec``; timeouts for redis/memcache come from ``cfg`` when given."""
    name = spec.provider.lower()
    if name in ("shmcb", "default"):
        from httpd_py.socache.shmcb import ShmcbCache
        try:
            return ShmcbCache(spec.path, spec.size)
        except SocacheError as e:
            raise ConfigError(f"Invalid argument: {e}") from e
    if name == "redis":
        from httpd_py.socache.redis import RedisCache
        if not spec.servers:
            raise ConfigError(f"redis socache needs host[:port] ({spec.raw!r})")
        if cfg is None:
            return RedisCache(spec.servers)
        return RedisCache(spec.servers, timeout=cfg.redis_timeout, pool_ttl=cfg.redis_conn_pool_ttl)
    if name == "memcache":
        from httpd_py.socache.memcache import MemcacheCache
        if not spec.servers:
            raise ConfigError(f"memcache socache needs host[:port] ({spec.raw!r})")
        if cfg is None:
            return MemcacheCache(spec.servers)
        # Apache has no MemcacheTimeout directive: the provider's own default applies.
        return MemcacheCache(spec.servers, conn_ttl=cfg.memcache_conn_ttl)
    if name == "none":
        return NoneProvider()
    if name == "dbm":
        from httpd_py.socache.dbm import DbmCache
        return DbmCache(spec.path, cfg.default_runtime_dir if cfg is not None else "")
    raise ConfigError(f"unknown socache provider {spec.provider!r} "
                      f"(shmcb, dbm, redis, memcache or none)")


#: the server-wide directives that name a socache provider httpd-py creates
_CONFIGURED = (("SSLStaplingCache", "stapling_cache"),)


def check(cfg: ServerConfig) -> None:
    """Config time: build each configured provider once, so that what only the provider judges
    (shmcb's geometry: a size the parser accepts may leave too few index entries per subcache)
    is a ``ConfigError`` at the directive's file:line, not a start-up failure after the checks."""
    for directive, field in _CONFIGURED:
        spec = getattr(cfg, field)
        if spec is None:
            continue
        try:
            create(spec, cfg)
        except ConfigError as e:
            loc = cfg.where(directive)
            if e.file is not None or loc is None:
                raise
            raise ConfigError(f"{directive}: {e.msg}", loc.file, loc.line) from None
