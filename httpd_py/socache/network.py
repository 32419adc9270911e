"""What the network providers (redis, memcache) share: one client per server opened lazily in
the process that uses it, ``crc32(key) % n`` server choice, a failed server skipped for
``retry_interval`` seconds, idle connections closed after a TTL, and values stored behind their
exact ``expires_at`` (8 bytes, f64) so ``retrieve(now=...)`` and ``iterate`` see the same expiry
as the other providers.

A subclass names its client library through ``_connect`` (a new client for server ``i``) and
``_disconnect`` (drop a client's sockets), and its error id through ``error_id``.
"""
from __future__ import annotations

import struct
import time
import zlib

from httpd_py.log import error_log
from httpd_py.socache.base import MODULE, new_counters

EXP = struct.Struct("<d")


def unwrap(v: bytes | None, now: float | None) -> bytes | None:
    """The value behind its expiry prefix, or None when absent, short or expired at ``now``."""
    if v is None or len(v) < 8 or EXP.unpack_from(v)[0] <= (time.time() if now is None else now):
        return None
    return v[8:]


class NetworkCache:
    name = ""
    mp_safe = True
    path = None                    # nothing on disk
    error_id = ""                  # HP id logged when a server call fails

    def __init__(self, servers, default_port: int, timeout: float, idle_ttl: float,
                 retry_interval: float):
        self.servers = tuple((h, int(p) if p else default_port) for h, p in servers)
        self.timeout = timeout
        self.idle_ttl = idle_ttl
        self.retry_interval = retry_interval
        self.namespace = ""
        self._prefix = b""
        self._clients: list = [None] * len(self.servers)
        self._last_used = [0.0] * len(self.servers)
        self._down_until = [0.0] * len(self.servers)
        self.counters = new_counters()

    # ---- what a subclass provides ----------------------------------------------------------

    def _connect(self, i: int):
        raise NotImplementedError

    def _disconnect(self, c) -> None:
        raise NotImplementedError

    # ---- lifecycle -------------------------------------------------------------------------

    def files(self) -> tuple[str, ...]:
        return ()                  # nothing on disk

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

    def _client(self, i: int):
        """Server ``i``'s client, or None while it is marked down."""
        mono = time.monotonic()
        if mono < self._down_until[i]:
            return None
        c = self._clients[i]
        if c is not None and mono - self._last_used[i] > self.idle_ttl:
            self._disconnect(c)     # RedisConnPoolTTL, MemcacheConnTTL: idle connections go
        if c is None:
            c = self._connect(i)
            self._clients[i] = c
        self._last_used[i] = mono
        return c

    def retry_now(self) -> None:
        """Stop skipping failed servers: the caller saw them answer again (the stapler's fleet
        lock on the same server), so the next call tries them at once."""
        self._down_until = [0.0] * len(self.servers)

    def _failed(self, i: int, what: str, e: Exception) -> None:
        self.counters["errors"] += 1
        host, port = self.servers[i]
        error_log.error(MODULE, self.error_id,
                        f"{self.name} {host}:{port}: {what} failed: {type(e).__name__}: {e}")
        c = self._clients[i]
        if c is not None:
            try:
                self._disconnect(c)
            except Exception:  # noqa: BLE001
                pass
        self._down_until[i] = time.monotonic() + self.retry_interval

    def status(self) -> dict:
        return {"provider": self.name, "namespace": self.namespace,
                "servers": [f"{h}:{p}" for h, p in self.servers], "timeout": self.timeout,
                "max_entry_size": self.max_entry_size, **self.counters}
