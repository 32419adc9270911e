"""memcache: the ``memcache:host[:port][,host[:port]...]`` socache provider (pymemcache).

memcached keys are text of at most 250 bytes, so a key is stored as
``<namespace>:<hex(key)>`` (as Apache's provider turns ids into hex); a key too long for that is
refused (HP05021).  The TTL is ``ceil(expires_at - now)`` seconds (absolute time beyond 30 days,
memcached's rule), and the value is stored behind its exact ``expires_at`` (8 bytes, f64) so
``retrieve(now=...)`` and ``iterate`` see the same expiry as the other providers.  With several
servers a key goes to ``crc32(key) % n``.

memcached cannot list its keys (``lru_crawler metadump`` proved unreliable for just-written
items), so each namespace keeps an index item ``<namespace>:idx`` on every server: every store
``append``s its hex key (atomic in memcached); ``iterate`` reads the index, fetches the values
and rewrites the index with the live keys only (``cas``, skipped if someone else changed it).
The index is also compacted every ``COMPACT_EVERY`` stores of a process.  If memcached evicts
the index, ``iterate`` lists fewer keys: it is a cache.

Connections are opened lazily in the process that uses them (``child_init`` drops inherited
ones); ``timeout`` bounds every connect and reply (Apache has no MemcacheTimeout directive);
MemcacheConnTTL closes a connection idle for longer.  A failure is logged (HP05020) and
answered as a miss; the server is then skipped for ``retry_interval`` seconds.
"""
from __future__ import annotations

import math
import time
from typing import Iterator

from pymemcache.client.base import Client

from httpd_py import logids
from httpd_py.log import error_log
from httpd_py.socache.base import MODULE, refuse_oversized
from httpd_py.socache.network import EXP, NetworkCache, unwrap

DEFAULT_PORT = 11211
MAX_KEY = 250
MAX_ENTRY_SIZE = (1 << 20) - 2048   # memcached's default item size limit (-I 1m) less overhead
_THIRTY_DAYS = 30 * 24 * 3600
COMPACT_EVERY = 1000


class MemcacheCache(NetworkCache):
    name = "memcache"
    max_entry_size = MAX_ENTRY_SIZE
    error_id = logids.MEMCACHE_ERROR

    def __init__(self, servers, timeout: float = 5.0, conn_ttl: float = 15.0,
                 retry_interval: float = 1.0):
        super().__init__(servers, DEFAULT_PORT, timeout, conn_ttl, retry_interval)
        self._stores_since_compact = 0

    @property
    def conn_ttl(self) -> float:
        """MemcacheConnTTL: a connection idle for longer is closed."""
        return self.idle_ttl

    def init(self, namespace: str) -> None:
        self.namespace = namespace
        self._prefix = namespace.encode("ascii", "replace").replace(b" ", b"_") + b":"

    def _connect(self, i: int) -> Client:
        return Client(self.servers[i], connect_timeout=self.timeout, timeout=self.timeout,
                      no_delay=True, default_noreply=False)

    def _disconnect(self, c: Client) -> None:
        c.close()

    def _mkey(self, key: bytes) -> bytes | None:
        k = self._prefix + key.hex().encode()
        if len(k) > MAX_KEY or not key:
            error_log.error(MODULE, logids.MEMCACHE_OVERSIZED,
                            f"memcache: key of {len(key)} bytes is too long or empty; refused")
            return None
        return k

    # ---- the provider API ------------------------------------------------------------------

    def store(self, key: bytes, value: bytes, expires_at: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if refuse_oversized(self, logids.MEMCACHE_OVERSIZED, key, value):
            return False
        ttl = math.ceil(expires_at - now)
        if expires_at <= now:
            return False
        if ttl > _THIRTY_DAYS:
            ttl = math.ceil(expires_at)              # memcached reads big values as epoch time
        mkey = self._mkey(key)
        if mkey is None:
            return False
        i = self._server_for(mkey)
        c = self._client(i)
        if c is None:
            return False
        try:
            ok = bool(c.set(mkey, EXP.pack(expires_at) + value, expire=ttl, noreply=False))
            if ok:
                self._index_add(c, mkey)
        except Exception as e:  # noqa: BLE001 - any client failure is a miss, never a crash
            self._failed(i, "store", e)
            return False
        self.counters["stores"] += ok
        self._stores_since_compact += 1
        if self._stores_since_compact >= COMPACT_EVERY:
            self._stores_since_compact = 0
            self.iterate(now)                        # rewrites each index with live keys only
        return ok

    def _index_add(self, c: Client, mkey: bytes) -> None:
        idx = self._prefix + b"idx"
        entry = mkey[len(self._prefix):] + b","
        if c.append(idx, entry, noreply=False):
            return
        if not c.add(idx, entry, noreply=False):     # another process created it meanwhile
            c.append(idx, entry, noreply=False)

    def retrieve(self, key: bytes, now: float | None = None) -> bytes | None:
        mkey = self._mkey(key)
        if mkey is None:
            return None
        i = self._server_for(mkey)
        c = self._client(i)
        v = None
        if c is not None:
            try:
                v = c.get(mkey)
            except Exception as e:  # noqa: BLE001
                self._failed(i, "retrieve", e)
        v = unwrap(v, now)
        self.counters["hits" if v is not None else "misses"] += 1
        return v

    def remove(self, key: bytes) -> None:
        mkey = self._mkey(key)
        if mkey is None:
            return
        i = self._server_for(mkey)
        c = self._client(i)
        if c is None:
            return
        try:
            c.delete(mkey, noreply=False)
            self.counters["removes"] += 1
        except Exception as e:  # noqa: BLE001
            self._failed(i, "remove", e)

    def iterate(self, now: float | None = None) -> Iterator[tuple[bytes, bytes, float]]:
        now = time.time() if now is None else now
        out = []
        real_now = time.time()
        idx = self._prefix + b"idx"
        for i in range(len(self.servers)):
            c = self._client(i)
            if c is None:
                continue
            try:
                raw, cas = c.gets(idx)
                if raw is None:
                    continue
                names = list(dict.fromkeys(n for n in raw.split(b",") if n))
                live = []
                for start in range(0, len(names), 100):
                    batch = [self._prefix + n for n in names[start:start + 100]]
                    got = c.get_many(batch)
                    for mkey in batch:
                        v = got.get(mkey)
                        if v is None or len(v) < 8:
                            continue
                        exp = EXP.unpack_from(v)[0]
                        if exp > real_now:                 # the index keeps what memcached keeps
                            live.append(mkey[len(self._prefix):])
                        if exp <= now:
                            continue
                        try:
                            out.append((bytes.fromhex(mkey[len(self._prefix):].decode()),
                                        v[8:], exp))
                        except ValueError:
                            continue
                if len(live) < len(names) or len(raw) > sum(len(n) + 1 for n in live):
                    c.cas(idx, b"".join(n + b"," for n in live), cas, noreply=False)
            except Exception as e:  # noqa: BLE001
                self._failed(i, "iterate", e)
        return iter(out)
