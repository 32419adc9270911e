"""FleetLock through a real redis-server and memcached: one holder per key across processes,
a dead holder's lock freed by its TTL, unreachable server -> False within the timeout."""
from __future__ import annotations

import mmap
import os
import signal
import struct
import time

import pytest

from httpd_py.config.model import SocacheSpec
from httpd_py.errors import ConfigError
from httpd_py.socache.fleetlock import FleetLock
from tests.support.tools import free_port, wait_until


@pytest.fixture(params=["redis", "memcache"])
def spec(request):
    host, port = request.getfixturevalue("redis_addr" if request.param == "redis"
                                         else "memcached_addr")
    return SocacheSpec(request.param, raw=f"{request.param}:{host}:{port}",
                       servers=((host, port),))


def test_one_holder_per_key_across_processes(spec):
    name = "excl-%d" % os.getpid()
    inside = mmap.mmap(-1, 16, flags=mmap.MAP_SHARED)
    pids = []
    for n in range(4):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                lock = FleetLock(spec, name, ttl=10)
                lock.child_init()
                bad = got = 0
                for _ in range(15):
                    with lock.hold(b"cert-A", timeout=10) as held:
                        if not held:
                            bad += 1
                            continue
                        got += 1
                        if struct.unpack_from("<q", inside, 0)[0] != 0:
                            bad += 1
                        struct.pack_into("<q", inside, 0, os.getpid())
                        os.sched_yield()
                        if struct.unpack_from("<q", inside, 0)[0] != os.getpid():
                            bad += 1
                        struct.pack_into("<q", inside, 0, 0)
                code = 0 if bad == 0 and got == 15 else 2
            finally:
                os._exit(code)
        pids.append(pid)
    assert [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids] == [0, 0, 0, 0]


def test_other_key_is_not_blocked_and_busy_key_times_out(spec):
    lock = FleetLock(spec, "keys-%d" % os.getpid(), ttl=10)
    other = FleetLock(spec, "keys-%d" % os.getpid(), ttl=10)
    with lock.hold(b"cert-A", timeout=1) as held:
        assert held
        with other.hold(b"cert-A", timeout=0.2) as held2:
            assert held2 is False                        # busy: False after its timeout
        with other.hold(b"cert-B", timeout=0) as held3:
            assert held3 is True
    with other.hold(b"cert-A", timeout=0) as held4:      # released on exit
        assert held4 is True


def test_dead_holders_lock_expires_with_its_ttl(spec):
    name = "ttl-%d" % os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            lock = FleetLock(spec, name, ttl=1)
            with lock.hold(b"cert-A", timeout=5) as held:
                os.write(w, b"1" if held else b"0")
                while True:
                    signal.pause()
        finally:
            os._exit(1)
    assert os.read(r, 1) == b"1"
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    lock = FleetLock(spec, name, ttl=5)
    with lock.hold(b"cert-A", timeout=0) as held:
        assert held is False                              # still held: its TTL has not run out
    with lock.hold(b"cert-A", timeout=5) as held:         # memcached: 1 s granularity
        assert held is True


def test_unreachable_server_yields_false_within_timeout(errlog):
    spec = SocacheSpec("redis", raw="redis", servers=(("127.0.0.1", free_port()),))
    lock = FleetLock(spec, "down", ttl=5, timeout=0.5)
    t0 = time.monotonic()
    with lock.hold(b"cert-A", timeout=0.5) as held:
        assert held is False
    assert time.monotonic() - t0 < 3
    assert "HP05040" in errlog.ids()


def test_expired_lock_is_not_released_by_its_old_holder(redis_addr, errlog):
    host, port = redis_addr
    spec = SocacheSpec("redis", raw="redis", servers=((host, port),))
    a = FleetLock(spec, "late-%d" % os.getpid(), ttl=0.2)
    b = FleetLock(spec, "late-%d" % os.getpid(), ttl=30)
    with a.hold(b"k", timeout=0) as held_a:
        assert held_a
        wait_until(lambda: b._try(b._lock_key(b"k"), b"B-token", 1.0), timeout=5,
                   what="A's lock to expire and B to take it")
    assert "HP05041" in errlog.ids()                      # A noticed it had lost the lock
    with a.hold(b"k", timeout=0) as again:
        assert again is False                              # B's lock was left alone


def test_bad_specs_are_config_errors():
    with pytest.raises(ConfigError):
        FleetLock(SocacheSpec("shmcb", raw="shmcb"), "x", ttl=5)
    with pytest.raises(ConfigError):
        FleetLock(SocacheSpec("redis", raw="redis:h", servers=(("h", 1),)), "x", ttl=0)


@pytest.mark.parametrize("provider", ["redis", "memcache"])
def test_hung_server_yields_false_within_timeout(provider, errlog):
    from tests.support.servers import hung_server
    with hung_server() as (host, port):
        spec = SocacheSpec(provider, raw=provider, servers=((host, port),))
        lock = FleetLock(spec, "hung", ttl=5, timeout=0.3)
        t0 = time.monotonic()
        with lock.hold(b"cert-A", timeout=0.3) as held:
            assert held is False
        assert time.monotonic() - t0 < 3
    assert "HP05040" in errlog.ids()


def test_acquire_tells_busy_from_unreachable(redis_addr, errlog):
    """The stapler backs off on BUSY (another server fetches) but works alone on UNREACHABLE."""
    from httpd_py.socache.fleetlock import BUSY, HELD, UNREACHABLE
    host, port = redis_addr
    spec = SocacheSpec("redis", raw="redis", servers=((host, port),))
    a = FleetLock(spec, "states-%d" % os.getpid(), ttl=10)
    b = FleetLock(spec, "states-%d" % os.getpid(), ttl=10)
    with a.acquire(b"k", timeout=0) as state:
        assert state == HELD
        with b.acquire(b"k", timeout=0.1) as other:
            assert other == BUSY
    down = FleetLock(SocacheSpec("redis", raw="redis", servers=(("127.0.0.1", free_port()),)),
                     "states", ttl=10, timeout=0.5)
    with down.acquire(b"k", timeout=0) as state:
        assert state == UNREACHABLE
    assert "HP05040" in errlog.ids()
