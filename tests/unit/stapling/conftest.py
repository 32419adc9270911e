"""Shared fixtures for the stapling unit tests: one throwaway PKI per session, a fake clock,
a tiny in-memory socache provider and mutex (unit tests only; integration uses the real ones)."""
from __future__ import annotations

import contextlib
import threading
import time

import pytest

from httpd_py.devtools.pki import make_pki
from tests.support.stapling import Clock


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), ("a.test", "b.test"),
                    ocsp_url="http://127.0.0.1:9/")


@pytest.fixture
def clock():
    return Clock()


class MemoryCache:
    """Socache Provider contract, in memory (for unit tests only)."""
    mp_safe = True

    def __init__(self, clock=None):
        self.data: dict[bytes, tuple[bytes, float]] = {}
        self.clock = clock or time.time
        self.stores = 0
        self.fail_store = False

    def init(self, namespace="mod_ssl-staple"): pass
    def child_init(self): pass
    def destroy(self): self.data.clear()
    def status(self): return {"entries": len(self.data)}

    def store(self, key, value, expires_at, now=None):
        if self.fail_store:
            return False
        self.stores += 1
        self.data[bytes(key)] = (bytes(value), expires_at)
        return True

    def retrieve(self, key, now=None):
        now = self.clock() if now is None else now
        item = self.data.get(bytes(key))
        if item is None or item[1] <= now:
            return None
        return item[0]

    def remove(self, key):
        self.data.pop(bytes(key), None)

    def iterate(self, now=None):
        now = self.clock() if now is None else now
        for k, (v, e) in list(self.data.items()):
            if e > now:
                yield k, v, e


class ThreadMutex:
    """GlobalMutex contract with per-key threading locks (unit tests only)."""

    def __init__(self, spec=None):
        self._locks: dict = {}
        self._guard = threading.Lock()
        self.holds = 0

    def create(self): pass
    def child_init(self): pass
    def destroy(self): pass

    @contextlib.contextmanager
    def hold(self, key=None, timeout=None):
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        ok = lock.acquire(timeout=-1 if timeout is None else timeout)
        self.holds += 1
        try:
            yield ok
        finally:
            if ok:
                lock.release()
