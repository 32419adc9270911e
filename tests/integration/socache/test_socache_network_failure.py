"""redis and memcache providers when the server is down, hung, or goes away: a miss (or False
from store) and a logged error within the timeout; never an exception, never an unbounded wait."""
from __future__ import annotations

import os
import time

import pytest

from httpd_py.config.model import ServerConfig, SocacheSpec, VHost
from httpd_py.socache import create
from httpd_py.socache.memcache import MemcacheCache
from httpd_py.socache.redis import RedisCache
from tests.support.servers import hung_server, memcached_server, redis_server
from tests.support.tools import free_port

KINDS = {"redis": (RedisCache, "HP05010"), "memcache": (MemcacheCache, "HP05020")}


def _all_ops(c):
    now = time.time()
    return (c.store(b"k", b"v", now + 60), c.retrieve(b"k"), c.remove(b"k"),
            list(c.iterate()))


@pytest.mark.parametrize("kind", KINDS)
def test_server_down_gives_miss_and_logs(kind, errlog):
    cls, msgid = KINDS[kind]
    c = cls([("127.0.0.1", free_port())], timeout=0.5, retry_interval=0)
    c.init("down")
    t0 = time.monotonic()
    assert _all_ops(c) == (False, None, None, [])
    assert time.monotonic() - t0 < 4 * 0.5 + 1.0      # bound, not a speed claim: no hang
    assert msgid in errlog.ids()
    assert c.status()["errors"] >= 3


@pytest.mark.parametrize("kind", KINDS)
def test_hung_server_gives_miss_within_timeout(kind, errlog):
    cls, msgid = KINDS[kind]
    with hung_server() as (host, port):
        c = cls([(host, port)], timeout=0.3, retry_interval=0)
        c.init("hung")
        t0 = time.monotonic()
        assert c.retrieve(b"k") is None
        assert c.store(b"k", b"v", time.time() + 60) is False
        elapsed = time.monotonic() - t0
    assert elapsed < 2 * 0.3 + 2.0                         # each call bounded by its timeout
    assert errlog.ids().count(msgid) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_failed_server_is_skipped_for_retry_interval(kind, errlog):
    cls, msgid = KINDS[kind]
    with hung_server() as (host, port):
        c = cls([(host, port)], timeout=0.3, retry_interval=60)
        c.init("hung")
        assert c.retrieve(b"k") is None
        for _ in range(20):                                # no further 0.3 s waits, no log spam
            assert c.retrieve(b"k") is None
    assert errlog.ids().count(msgid) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_server_restart_is_survived(kind, errlog):
    cls, msgid = KINDS[kind]
    start = redis_server if kind == "redis" else memcached_server
    with start() as (host, port):
        c = cls([(host, port)], timeout=1.0, retry_interval=0)
        c.init("restart")
        assert c.store(b"k", b"v1", time.time() + 60)
    # the server is gone: misses, logged
    assert c.retrieve(b"k") is None
    assert msgid in errlog.ids()
    with start() as (host2, port2):
        c.servers = ((host2, port2),)                      # same address in real life
        c.destroy()
        assert c.store(b"k", b"v2", time.time() + 60)
        assert c.retrieve(b"k") == b"v2"


def test_create_takes_timeouts_from_server_config(tmp_path):
    cfg = ServerConfig(config_file="/x", server_root="/", main=VHost(), vhosts=(), listens=(),
                       redis_timeout=0.25, redis_conn_pool_ttl=3.0, memcache_conn_ttl=4.0)
    r = create(SocacheSpec("redis", raw="redis:127.0.0.1:1", servers=(("127.0.0.1", 1),)), cfg)
    assert (r.timeout, r.pool_ttl) == (0.25, 3.0)
    m = create(SocacheSpec("memcache", raw="memcache:127.0.0.1:1", servers=(("127.0.0.1", 1),)),
               cfg)
    assert m.conn_ttl == 4.0
    r.init("x")
    assert r.retrieve(b"k") is None                        # port 1 refuses: a miss


def test_connections_are_reopened_after_fork():
    with redis_server() as raddr, memcached_server() as maddr:
        caches = [RedisCache([raddr]), MemcacheCache([maddr])]
        for c in caches:
            c.init("fork")
            assert c.store(b"parent", b"p", time.time() + 60)   # the master has a socket now
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ok = True
                for c in caches:
                    c.child_init()
                    for i in range(50):
                        ok &= c.store(b"child-%d" % i, b"c%d" % i, time.time() + 60)
                        ok &= c.retrieve(b"child-%d" % i) == b"c%d" % i
                code = 0 if ok else 2
            finally:
                os._exit(code)
        for c in caches:                                        # the parent keeps working
            for i in range(50):
                assert c.retrieve(b"parent") == b"p"
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
