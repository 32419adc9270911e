"""Fixtures for the socache integration tests: real servers, every provider, error-log capture."""
from __future__ import annotations

import os
import tempfile
import uuid

import pytest

from httpd_py import log
from httpd_py.config.model import MutexSpec, SocacheSpec
from httpd_py.socache import create
from httpd_py.socache.mutex import GlobalMutex
from tests.support.servers import memcached_server, redis_server

PROVIDERS = ("shmcb-anon", "shmcb-file", "dbm", "redis", "memcache")


@pytest.fixture(scope="session")
def redis_addr():
    with redis_server() as addr:
        yield addr


@pytest.fixture(scope="session")
def memcached_addr():
    with memcached_server() as addr:
        yield addr


class ErrLog:
    """The process-wide error log pointed at a temp file (children inherit the descriptor)."""

    def __init__(self, path: str):
        self.path = path

    def text(self) -> str:
        with open(self.path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def ids(self) -> list[str]:
        return [w.rstrip(":") for w in self.text().split()
                if w.startswith("HP") and w.endswith(":")]


@pytest.fixture
def errlog(tmp_path):
    path = str(tmp_path / "error.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    old = (log.error_log.fd, log.error_log.level, dict(log.error_log.module_levels))
    log.error_log.fd, log.error_log.level = fd, log.LEVEL_RANK["debug"]
    try:
        yield ErrLog(path)
    finally:
        log.error_log.fd, log.error_log.level, log.error_log.module_levels = old
        os.close(fd)


class Guarded:
    """A provider used as mod_ssl uses it: every call under the mutex when not mp_safe."""

    def __init__(self, provider, mutex: GlobalMutex):
        self.p = provider
        self.mutex = mutex

    def __getattr__(self, name):
        fn = getattr(self.p, name)
        if self.p.mp_safe or name not in ("store", "retrieve", "remove", "iterate", "status"):
            return fn

        def locked(*a, **kw):
            with self.mutex.hold() as held:
                assert held
                r = fn(*a, **kw)
                return list(r) if name == "iterate" else r
        return locked

    def child_init(self):
        self.mutex.child_init()
        self.p.child_init()


def make_spec(kind: str, tmp_path, request, size: int = 2_000_000) -> SocacheSpec:
    if kind == "shmcb-anon":
        return SocacheSpec("shmcb", raw=f"shmcb({size})", size=size)
    if kind == "shmcb-file":
        path = str(tmp_path / "stapling.shmcb")
        return SocacheSpec("shmcb", raw=f"shmcb:{path}({size})", path=path, size=size)
    if kind == "dbm":
        path = str(tmp_path / "socache.db")
        return SocacheSpec("dbm", raw=f"dbm:{path}", path=path)
    if kind == "redis":
        host, port = request.getfixturevalue("redis_addr")
        return SocacheSpec("redis", raw=f"redis:{host}:{port}", servers=((host, port),))
    if kind == "memcache":
        host, port = request.getfixturevalue("memcached_addr")
        return SocacheSpec("memcache", raw=f"memcache:{host}:{port}", servers=((host, port),))
    raise AssertionError(kind)


@pytest.fixture(params=PROVIDERS)
def cache(request, tmp_path):
    """An initialised provider of each kind, wrapped in its mutex; unique namespace per test."""
    spec = make_spec(request.param, tmp_path, request)
    p = create(spec)
    p.init("t" + uuid.uuid4().hex[:12])
    m = GlobalMutex(MutexSpec(name="ssl-stapling", mechanism="fcntl", directory=str(tmp_path)))
    m.create()
    g = Guarded(p, m)
    g.kind = request.param
    try:
        yield g
    finally:
        p.destroy()
        m.destroy()
