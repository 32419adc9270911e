"""mod_socache_redis and mod_socache_memcache: the providers' connection settings."""
from __future__ import annotations

from httpd_py.config import values
from httpd_py.config.directives.base import TAKE1, Directive, Parser
from httpd_py.errors import ConfigError


def _redis_seconds(positive: bool) -> Parser:
    """RedisTimeout (> 0) and RedisConnPoolTTL: a time with Apache's units, up to one hour."""
    def fn(w, text: str) -> float:
        v = values.seconds(text, w.name, units=True)
        if v > 3600:
            raise ConfigError(f"{w.name} can only be 0 or up to one hour.")
        if v <= 0 and positive:
            raise ConfigError(f"{w.name} must be > 0")
        return v
    return Parser("seconds", fn)


def _memcache_ttl(w, text: str) -> float:
    v = values.seconds(text, w.name, units=True)
    if v >= 4294967:
        raise ConfigError("MemcacheConnTTL has to be less than 4294967 seconds")
    return v


def rows() -> list[Directive]:
    R, M = "mod_socache_redis.c", "mod_socache_memcache.c"
    D = Directive
    return [
        D("RedisTimeout", R, "SV", TAKE1, "", "Timeout of each Redis operation",
          field="server.redis_timeout", parse=_redis_seconds(True), value=5.0,
          syntax="time[ms|s]"),
        D("RedisConnPoolTTL", R, "SV", TAKE1, "", "How long an idle Redis connection is kept",
          field="server.redis_conn_pool_ttl", parse=_redis_seconds(False), value=15.0,
          syntax="time[ms|s]"),
        D("MemcacheConnTTL", M, "SV", TAKE1, "", "How long an idle memcached connection is "
          "kept", field="server.memcache_conn_ttl", parse=Parser("seconds", _memcache_ttl),
          value=15.0, syntax="time[ms|s]"),
    ]
