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
import struct
import time
import zlib
from typing import Iterator

import redis as redis_py
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.retry import Retry

from httpd_py.log import error_log
from httpd_py.socache.base import HP_REDIS_ERROR, HP_REDIS_OVERSIZED, MODULE

DEFAULT_PORT = 6379
# No CLIENT SETINFO round trip on connect (redis-py sends one when it has a name to report).
_NO_DRIVER_INFO = DriverInfo(name=None, lib_version=None)
MAX_ENTRY_SIZE = 1 << 20
_EXP = struct.Struct("<d")        # staples and sessions are a few KB; refuse anything silly


class RedisCache:
    name = "redis"
    mp_safe = True
    max_entry_size = MAX_ENTRY_SIZE

    def __init__(self, servers, timeout: float = 5.0, pool_ttl: float = 15.0,
                 retry_interval: float = 1.0):
        self.servers = tuple((h, int(p) if p else DEFAULT_PORT) for h, p in servers)
        self.timeout = timeout
        self.pool_ttl = pool_ttl
        self.retry_interval = retry_interval
        self.namespace = ""
        self._prefix = b""
        self._clients: list[redis_py.Redis | None] = [None] * len(self.servers)
        self._last_used = [0.0] * len(self.servers)
        self._down_until = [0.0] * len(self.servers)
        self.counters = {"stores": 0, "hits": 0, "misses": 0, "errors": 0, "removes": 0,
                         "oversized": 0}

    # ---- lifecycle -------------------------------------------------------------------------

    def init(self, namespace: str) -> None:
        self.namespace = namespace
        self._prefix = namespace.encode() + b":"

    def child_init(self) -> None:
        # The master's sockets (if it stored anything before fork) must not be shared.
        self._clients = [None] * len(self.servers)
        self._down_until = [0.0] * len(self.servers)

    def destroy(self) -> None:
        for c in self._clients:
            if c is not None:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - closing a broken pool must not fail shutdown
                    pass
        self._clients = [None] * len(self.servers)

    # ---- connection handling ---------------------------------------------------------------

    def _server_for(self, full_key: bytes) -> int:
        return zlib.crc32(full_key) % len(self.servers) if len(self.servers) > 1 else 0

    def _client(self, i: int) -> redis_py.Redis | None:
        mono = time.monotonic()
        if mono < self._down_until[i]:
            return None
        c = self._clients[i]
        if c is not None and mono - self._last_used[i] > self.pool_ttl:
            c.connection_pool.disconnect()          # RedisConnPoolTTL: idle connections go
        if c is None:
            host, port = self.servers[i]
            c = redis_py.Redis(host=host, port=port, socket_timeout=self.timeout,
                               socket_connect_timeout=self.timeout, retry=Retry(NoBackoff(), 0),
                               driver_info=_NO_DRIVER_INFO)
            self._clients[i] = c
        self._last_used[i] = mono
        return c

    def _failed(self, i: int, what: str, e: Exception) -> None:
        self.counters["errors"] += 1
        host, port = self.servers[i]
        error_log.error(MODULE, HP_REDIS_ERROR,
                        f"redis {host}:{port}: {what} failed: {type(e).__name__}: {e}")
        c = self._clients[i]
        if c is not None:
            try:
                c.connection_pool.disconnect()
            except Exception:  # noqa: BLE001
                pass
        self._down_until[i] = time.monotonic() + self.retry_interval

    # ---- the provider API ------------------------------------------------------------------

    def store(self, key: bytes, value: bytes, expires_at: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if len(key) + len(value) > self.max_entry_size:
            self.counters["oversized"] += 1
            error_log.error(MODULE, HP_REDIS_OVERSIZED,
                            f"redis: entry of {len(key) + len(value)} bytes is over "
                            f"{self.max_entry_size}; not stored")
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
            ok = bool(c.set(full, _EXP.pack(expires_at) + value, px=ms))
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
        if v is not None:
            if len(v) < 8 or _EXP.unpack_from(v)[0] <= (time.time() if now is None else now):
                v = None
            else:
                v = v[8:]
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
                        exp = _EXP.unpack_from(v)[0]
                        if exp > now:
                            out.append((k[n:], v[8:], exp))
            except Exception as e:  # noqa: BLE001
                self._failed(i, "iterate", e)
        return iter(out)

    def status(self) -> dict:
        return {"provider": "redis", "namespace": self.namespace,
                "servers": [f"{h}:{p}" for h, p in self.servers], "timeout": self.timeout,
                "max_entry_size": self.max_entry_size, **self.counters}


def _glob_escape(b: bytes) -> bytes:
    out = bytearray()
    for ch in b:
        if ch in b"*?[]\\":
            out += b"\\"
        out.append(ch)
    return bytes(out)
