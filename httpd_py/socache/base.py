"""The shared object cache interface (Apache's ap_socache.h in Python) and its message ids.

A provider is created at config time (``create`` in ``socache/__init__.py``), initialised in the
master before fork (``init``), re-attached in every worker after fork (``child_init``), and used
with bytes keys, bytes values and absolute expiry times in ``time.time()`` seconds.

``mp_safe`` False (shmcb) means the calls must not run concurrently in several processes: the
caller holds a ``GlobalMutex`` around each call, as mod_ssl does with AP_SOCACHE_FLAG_NOTMPSAFE.
Network providers (redis, memcache) are safe and never raise on I/O trouble: a server that is
down or slow gives a miss (``None``) or ``False`` from ``store`` plus a logged error, within the
provider's timeout.
"""
from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

from httpd_py.log import error_log

# Error-log module name; the ids are httpd_py/logids.py's SHMCB_*, DBM_*, REDIS_*, MEMCACHE_*,
# MUTEX_* and FLEET_LOCK_* (range HP05xxx)
MODULE = "socache"


@runtime_checkable
class Provider(Protocol):
    """One shared object cache; see the module docstring for the lifecycle."""

    name: str               # "shmcb", "dbm", "redis", "memcache", "none"
    mp_safe: bool           # False: the caller serialises calls with a GlobalMutex
    max_entry_size: int     # key + value bytes above which store() refuses (logged)
    path: str | None        # its file once init() ran (shmcb with a path, dbm), else None

    def init(self, namespace: str) -> None:
        """Master, before fork.  ``namespace`` ("ssl_stapling", ...) separates users of a server."""

    def child_init(self) -> None:
        """Each worker, after fork: drop inherited connections (they reconnect lazily)."""

    def store(self, key: bytes, value: bytes, expires_at: float, now: float | None = None) -> bool:
        """Store ``value`` under ``key`` until ``expires_at``; False when not stored."""

    def retrieve(self, key: bytes, now: float | None = None) -> bytes | None:
        """The value, or None on a miss (absent, expired, damaged, server trouble)."""

    def remove(self, key: bytes) -> None:
        """Forget ``key`` (no error when absent)."""

    def iterate(self, now: float | None = None) -> Iterator[tuple[bytes, bytes, float]]:
        """Every live entry as (key, value, expires_at)."""

    def status(self) -> dict:
        """Counters and geometry for mod_status-like reports and tests."""

    def destroy(self) -> None:
        """Master at shutdown: release resources (a file-backed shmcb keeps its file)."""

    def files(self) -> tuple[str, ...]:
        """After init: the files workers open, which the server hands to User/Group."""


class NoneProvider:
    """``none``: a cache that keeps nothing (SSLSessionCache none)."""

    name = "none"
    mp_safe = True
    max_entry_size = 0
    path = None

    def init(self, namespace: str) -> None:
        pass

    def child_init(self) -> None:
        pass

    def store(self, key: bytes, value: bytes, expires_at: float, now: float | None = None) -> bool:
        return False

    def retrieve(self, key: bytes, now: float | None = None) -> bytes | None:
        return None

    def remove(self, key: bytes) -> None:
        pass

    def iterate(self, now: float | None = None) -> Iterator[tuple[bytes, bytes, float]]:
        return iter(())

    def status(self) -> dict:
        return {"provider": "none", "entries": 0}

    def destroy(self) -> None:
        pass

    def files(self) -> tuple[str, ...]:
        return ()


def new_counters(*extra: str) -> dict[str, int]:
    """The counters every provider reports in ``status()``, plus ``extra`` ones."""
    return dict.fromkeys(("stores", "hits", "misses", "errors", "removes", "oversized") + extra, 0)


def refuse_oversized(provider, msg_id: str, key: bytes, value: bytes) -> bool:
    """True, counted and logged under ``msg_id``, when key + value is over max_entry_size."""
    if len(key) + len(value) <= provider.max_entry_size:
        return False
    provider.counters["oversized"] += 1
    error_log.error(MODULE, msg_id,
                    f"{provider.name}: entry of {len(key) + len(value)} bytes is over "
                    f"{provider.max_entry_size}; not stored")
    return True
