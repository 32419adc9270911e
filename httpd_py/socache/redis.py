"""redis: the ``redis:host[:port][,host[:port]...]`` socache provider (redis-py).

Keys are ``<namespace>:<key>`` (binary-safe), values are stored with ``SET key value PX ms`` so
Redis expires them itself; the stored value is the exact ``expires_at`` (8 bytes, f64) followed
by the value, so ``retrieve(now=...)`` and ``iterate`` see the same expiry as the other
providers.  With several servers a key goes to ``crc32(key) % n`` (as Apache's apr_redis spreads
keys; no replication).

Connections are opened lazily in the process that uses them; ``child_init`` drops anything
inherited from the master.  RedisTimeout bounds every connect and every reply (redis-py's own
retries are switched off, so one call waits at most one timeout); RedisConnPoolTTL closes
connections idle for longer.  Any failure is logged (HP05010) and answered as a miss, and the
server is then skipped for ``retry_interval`` seconds so a dead server costs each handshake
nothing rather than a timeout.
"""
from __future__ import annotations

import math
import time
from typing import Iterator

import redis as redis_py
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.retry import Retry

from httpd_py import logids
from httpd_py.socache.base import refuse_oversized
from httpd_py.socache.network import EXP, NetworkCache, unwrap

DEFAULT_PORT = 6379
# No CLIENT SETINFO round trip on connect (redis-py sends one when it has a name to report).
_NO_DRIVER_INFO = DriverInfo(name=None, lib_version=None)
MAX_ENTRY_SIZE = 1 << 20          # staples and sessions are a few KB; refuse anything silly


class RedisCache(NetworkCache):
    name = "redis"
    max_entry_size = MAX_ENTRY_SIZE
    error_id = logids.REDIS_ERROR

    def __init__(self, servers, timeout: float = 5.0, pool_ttl: float = 15.0,
                 retry_interval: float = 1.0):
        super().__init__(servers, DEFAULT_PORT, timeout, pool_ttl, retry_interval)

    @property
    def pool_ttl(self) -> float:
        """RedisConnPoolTTL: connections idle for longer are closed."""
        return self.idle_ttl

    def init(self, namespace: str) -> None:
        self.namespace = namespace
        self._prefix = namespace.encode() + b":"

    def _connect(self, i: int) -> redis_py.Redis:
        host, port = self.servers[i]
        return redis_py.Redis(host=host, port=port, socket_timeout=self.timeout,
                              socket_connect_timeout=self.timeout, retry=Retry(NoBackoff(), 0),
                              driver_info=_NO_DRIVER_INFO)

    def _disconnect(self, c: redis_py.Redis) -> None:
        c.connection_pool.disconnect()

    # ---- the provider API ------------------------------------------------------------------

    def store(self, key: bytes, value: bytes, expires_at: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if refuse_oversized(self, logids.REDIS_OVERSIZED, key, value):
            return False
        ms = math.ceil((expires_at - now) * 1000)
        if ms <= 0:
            return False
        full = self._prefix + key
        i = self._server_for(full)
        c = self._client(i)
        if c is None:
            return False
        try:
            ok = bool(c.set(full, EXP.pack(expires_at) + value, px=ms))
        except Exception as e:  # noqa: BLE001 - any client failure is a miss, never a crash
            self._failed(i, "store", e)
            return False
        self.counters["stores"] += ok
        return ok

    def retrieve(self, key: bytes, now: float | None = None) -> bytes | None:
        full = self._prefix + key
        i = self._server_for(full)
        c = self._client(i)
        if c is None:
            self.counters["misses"] += 1
            return None
        try:
            v = c.get(full)
        except Exception as e:  # noqa: BLE001
            self._failed(i, "retrieve", e)
            v = None
        v = unwrap(v, now)
        self.counters["hits" if v is not None else "misses"] += 1
        return v

    def remove(self, key: bytes) -> None:
        full = self._prefix + key
        i = self._server_for(full)
        c = self._client(i)
        if c is None:
            return
        try:
            c.delete(full)
            self.counters["removes"] += 1
        except Exception as e:  # noqa: BLE001
            self._failed(i, "remove", e)

    def iterate(self, now: float | None = None) -> Iterator[tuple[bytes, bytes, float]]:
        now = time.time() if now is None else now
        out = []
        pattern = _glob_escape(self._prefix) + b"*"
        n = len(self._prefix)
        for i in range(len(self.servers)):
            c = self._client(i)
            if c is None:
                continue
            try:
                keys = list(c.scan_iter(match=pattern, count=500))
                for start in range(0, len(keys), 200):
                    batch = keys[start:start + 200]
                    for k, v in zip(batch, c.mget(batch)):
                        if v is None or len(v) < 8:
                            continue                 # gone between SCAN and MGET
                        exp = EXP.unpack_from(v)[0]
                        if exp > now:
                            out.append((k[n:], v[8:], exp))
            except Exception as e:  # noqa: BLE001
                self._failed(i, "iterate", e)
        return iter(out)


def _glob_escape(b: bytes) -> bytes:
    out = bytearray()
    for ch in b:
        if ch in b"*?[]\\":
            out += b"\\"
        out.append(ch)
    return bytes(out)
