"""A lock shared by several servers through redis or memcached (a fleet's refresh lock).

    lock = FleetLock(spec, name="ssl-stapling-refresh", ttl=30.0)
    lock.child_init()                                  # in each worker, after fork
    with lock.hold(key=certid, timeout=2.0) as held:
        if held: ...fetch and store...

redis: ``SET <name>:<hex key> <token> NX PX <ttl ms>``; released by a Lua compare-and-delete, so
a holder whose TTL ran out never deletes the next holder's lock.  memcache: ``add`` with a TTL
in whole seconds (rounded up); released by get, compare, delete (memcached has no
compare-and-delete: a lock whose TTL ran out between the get and the delete could be dropped;
keep ``ttl`` well above the work it protects).

The TTL frees a lock whose holder died.  While the lock is busy, ``hold`` retries (1 ms doubling
to 50 ms) until ``timeout``; when the server cannot be reached it logs HP05040 and yields False
(the caller decides: work alone, or skip).  ``acquire`` is the same wait but yields which of
the three it was (HELD, BUSY, UNREACHABLE): the stapler works alone when the fleet's server is
unreachable and backs off when another server holds the lock.  Every network wait is bounded
by ``min(server timeout, time left)``.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Iterator

from httpd_py import logids
from httpd_py.config.model import ServerConfig, SocacheSpec
from httpd_py.errors import ConfigError
from httpd_py.log import error_log
from httpd_py.socache.base import MODULE

# What ``acquire`` yields
HELD, BUSY, UNREACHABLE = "held", "busy", "unreachable"

_RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class FleetLock:
    def __init__(self, spec: SocacheSpec, name: str, ttl: float, cfg: ServerConfig | None = None,
                 timeout: float | None = None):
        if spec.provider not in ("redis", "memcache") or not spec.servers:
            raise ConfigError(f"a fleet lock needs a redis or memcache server, not {spec.raw!r}")
        if ttl <= 0:
            raise ConfigError("fleet lock TTL must be positive")
        self.spec = spec
        self.name = name
        self.ttl = ttl
        self.timeout = timeout if timeout is not None else (cfg.redis_timeout if cfg else 5.0)
        self.server = spec.servers[0]           # one coordination point for the whole fleet
        self._client = None

    def child_init(self) -> None:
        self._client = None                     # reconnect lazily in this process

    def destroy(self) -> None:
        c, self._client = self._client, None
        if c is not None:
            with contextlib.suppress(Exception):
                c.close()

    def _lock_key(self, key: bytes) -> bytes:
        return f"hp-fleetlock:{self.name}:".encode() + key.hex().encode()

    def _connect(self, wait: float):
        host, port = self.server
        wait = max(wait, 0.05)
        if self.spec.provider == "redis":
            import redis as redis_py
            from redis.backoff import NoBackoff
            from redis.driver_info import DriverInfo
            from redis.retry import Retry
            return redis_py.Redis(host=host, port=port, socket_timeout=wait,
                                  socket_connect_timeout=wait, retry=Retry(NoBackoff(), 0),
                                  driver_info=DriverInfo(name=None, lib_version=None))
        from pymemcache.client.base import Client
        return Client((host, port), connect_timeout=wait, timeout=wait, no_delay=True,
                      default_noreply=False)

    def _try(self, lkey: bytes, token: bytes, wait: float) -> bool:
        if self._client is None:
            self._client = self._connect(min(self.timeout, wait))
        c = self._client
        if self.spec.provider == "redis":
            return bool(c.set(lkey, token, nx=True, px=max(1, int(self.ttl * 1000))))
        return bool(c.add(lkey, token, expire=max(1, math.ceil(self.ttl)), noreply=False))

    def _release(self, lkey: bytes, token: bytes) -> None:
        c = self._client
        if c is None:
            return
        try:
            if self.spec.provider == "redis":
                done = c.eval(_RELEASE_LUA, 1, lkey, token)
            else:
                done = c.get(lkey) == token and c.delete(lkey, noreply=False)
            if not done:
                error_log.warn(MODULE, logids.FLEET_LOCK_RELEASE_FAILED,
                               f"fleet lock {self.name}: lock had expired before release "
                               f"(work took longer than its TTL of {self.ttl}s)")
        except Exception as e:  # noqa: BLE001 - release trouble must not fail the caller
            self.destroy()
            error_log.warn(MODULE, logids.FLEET_LOCK_RELEASE_FAILED,
                           f"fleet lock {self.name}: release failed: {type(e).__name__}: {e}")

    @contextlib.contextmanager
    def hold(self, key: bytes, timeout: float = 0.0) -> Iterator[bool]:
        """Yield True while this process holds the fleet-wide lock for ``key``."""
        with self.acquire(key, timeout) as state:
            yield state == HELD

    @contextlib.contextmanager
    def acquire(self, key: bytes, timeout: float = 0.0) -> Iterator[str]:
        """Yield HELD while this process holds the lock for ``key``; BUSY when another holder
        kept it for ``timeout``; UNREACHABLE when the server could not be asked (HP05040)."""
        lkey = self._lock_key(key)
        token = os.urandom(16).hex().encode()
        deadline = time.monotonic() + max(timeout, 0.0)
        pause = 0.001
        state = BUSY
        while True:
            left = deadline - time.monotonic()
            try:
                if self._try(lkey, token, max(left, 0.05) if timeout else self.timeout):
                    state = HELD
            except Exception as e:  # noqa: BLE001 - unreachable: the caller decides
                self.destroy()
                host, port = self.server
                error_log.warn(MODULE, logids.FLEET_LOCK_UNREACHABLE,
                               f"fleet lock {self.name}: {host}:{port} unreachable: "
                               f"{type(e).__name__}: {e}")
                state = UNREACHABLE
                break
            if state == HELD:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)
        try:
            yield state
        finally:
            if state == HELD:
                self._release(lkey, token)
