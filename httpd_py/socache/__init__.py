"""Shared object caches (Apache's socache providers) and the global mutex.

``create(spec, cfg)`` is the registry: it turns a parsed ``SocacheSpec`` into a provider at
config time, so a bad argument gets the directive's file and line (it raises ``ConfigError``;
the config walker attaches the location).  See ``base.Provider`` for the lifecycle.
"""
from __future__ import annotations

from httpd_py.config.model import ServerConfig, SocacheSpec
from httpd_py.errors import ConfigError, SocacheError
from httpd_py.socache.base import NoneProvider, Provider

__all__ = ["create", "Provider", "PROVIDERS"]

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
