"""Fixtures for the socache integration tests: real servers, every provider, error-log capture."""
from __future__ import annotations

import tempfile
import uuid

import pytest

from httpd_py.config.model import MutexSpec, SocacheSpec
from httpd_py.socache import create
from httpd_py.socache.mutex import GlobalMutex
from tests.support.errlog import errlog  # noqa: F401 - the fixture, for every test here
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
