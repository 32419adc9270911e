"""Crash tests: processes SIGKILLed while holding a lock in the middle of a write.

Four processes use one anonymous shmcb under its GlobalMutex (as mod_ssl does): three hammer it
(90 % reads, 1 KB self-checking values) while a fourth, a hundred times over, is forked, enters
a store under the lock, stops at a chosen point inside the write (a fault hook writes to a pipe
and waits) and is SIGKILLed there.  The lock must be free again, no reader may ever get a torn
or wrong value, the half-written subcache must be detected and cleared once per kill, nothing
may deadlock.  The same for the per-key refresh mutex.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import random
import select
import signal
import struct

import pytest

from httpd_py.config.model import MutexSpec
from httpd_py.socache.mutex import GlobalMutex
from httpd_py.socache.shmcb import ShmcbCache
from tests.support.tools import wait_until

KEYS = [hashlib.sha1(b"cert-%d" % i).digest() for i in range(40)]
PHASES = ("begin", "relocate", "evicted", "data-wrap", "data", "index")


def make_value(key: bytes, n: int) -> bytes:
    """A 1 KB value that names its key and can be checked byte for byte."""
    head = key + struct.pack("<Q", n)
    body = hashlib.sha256(head).digest() * 32
    return head + body[: 1024 - len(head)]


def value_ok(key: bytes, v: bytes) -> bool:
    if len(v) != 1024 or v[:20] != key:
        return False
    (n,) = struct.unpack_from("<Q", v, 20)
    return v == make_value(key, n)


def _hammer(cache: ShmcbCache, mutex: GlobalMutex, stop_r: int, report_w: int, seed: int) -> int:
    mutex.child_init()
    cache.child_init()
    rnd = random.Random(seed)
    ops = torn = hits = 0
    n = seed * 1_000_000
    while True:
        if ops % 64 == 0 and select.select([stop_r], [], [], 0)[0]:
            break
        key = rnd.choice(KEYS)
        with mutex.hold() as held:
            if not held:
                torn += 1_000                       # a blocking hold must always succeed
                break
            if rnd.random() < 0.9:
                v = cache.retrieve(key)
                if v is not None:
                    hits += 1
                    if not value_ok(key, v):
                        torn += 1
            else:
                n += 1
                cache.store(key, make_value(key, n), 4e9)
        ops += 1
    os.write(report_w, struct.pack("<QQQ", ops, hits, torn))
    return 0 if torn == 0 else 1


def _fork(fn, *args, close=()) -> int:
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            for fd in close:                       # e.g. the stop pipe's write end: EOF = stop
                os.close(fd)
            code = fn(*args)
        finally:
            os._exit(code)
    return pid


def _stop_and_collect(pids, stop_w, report_r):
    os.close(stop_w)
    codes = {}

    def reaped():
        for pid in pids:
            if pid not in codes:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
        return len(codes) == len(pids)
    try:
        wait_until(reaped, timeout=20, what="hammer processes to stop (deadlock?)")
    finally:
        for pid in pids:
            if pid not in codes:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    reports = [struct.unpack("<QQQ", os.read(report_r, 24)) for _ in pids]
    return list(codes.values()), reports


def _victim_store(cache, mutex, phase, notify_w, seed):
    """Enter a store under the lock and park at ``phase`` until SIGKILLed."""
    mutex.child_init()

    def hook(p):
        if p == phase:
            os.write(notify_w, b"!")
            while True:
                signal.pause()
    cache.fault_hook = hook
    rnd = random.Random(seed)
    for i in range(20_000):                       # "data-wrap" needs a store that wraps the ring
        key = rnd.choice(KEYS)
        with mutex.hold():
            cache.store(key, make_value(key, 10**12 + seed * 100_000 + i), 4e9)
    return 3                                       # never reached the phase: the test fails


def _kill_when_parked(pid, notify_r):
    r, _, _ = select.select([notify_r], [], [], 10)
    assert r, "victim never reached its fault point"
    assert os.read(notify_r, 1) == b"!"
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.parametrize("backing", ["anonymous", "file"])
def test_kill_holder_of_cache_mutex_mid_store(tmp_path, errlog, backing):
    path = str(tmp_path / "c.shmcb") if backing == "file" else None
    cache = ShmcbCache(path, 64 * 1024)           # small: eviction and ring wrap all the time
    cache.init("crash")
    assert cache.geo.subcache_num >= 2
    mutex = GlobalMutex(MutexSpec(name="ssl-stapling", mechanism="fcntl", directory=str(tmp_path)))
    mutex.create()
    with mutex.hold():
        for k in KEYS:
            cache.store(k, make_value(k, 0), 4e9)
    stop_r, stop_w = os.pipe()
    report_r, report_w = os.pipe()
    notify_r, notify_w = os.pipe()
    hammers = [_fork(_hammer, cache, mutex, stop_r, report_w, s, close=(stop_w,))
               for s in (1, 2, 3)]
    try:
        rounds = 100
        for i in range(rounds):
            phase = PHASES[i % len(PHASES)]
            pid = _fork(_victim_store, cache, mutex, phase, notify_w, 1000 + i, close=(stop_w,))
            _kill_when_parked(pid, notify_r)
            with mutex.hold(timeout=10) as held:  # the dead holder's lock is free again
                assert held, f"round {i}: lock still held after its holder was killed"
    finally:
        codes, reports = _stop_and_collect(hammers, stop_w, report_r)
    assert codes == [0, 0, 0], reports
    assert sum(r[2] for r in reports) == 0          # no torn or wrong value was ever read
    assert sum(r[1] for r in reports) > 0           # and the readers did hit
    with mutex.hold():
        live = list(cache.iterate())                # repairs any subcache still mid-write
        st = cache.status()
    assert live and all(value_ok(k, v) for k, v, _ in live)
    assert st["resets"] == rounds                   # every killed write detected, exactly once
    assert errlog.ids().count("HP05003") == rounds
    mutex.destroy()
    cache.destroy()


def _refresh_hammer(mutex, owners, stop_r, report_w, seed):
    """Take per-key holds on 4 keys; check nobody else is inside the same key's section."""
    mutex.child_init()
    rnd = random.Random(seed)
    me = os.getpid()
    ops = clashes = 0
    while True:
        if ops % 16 == 0 and select.select([stop_r], [], [], 0)[0]:
            break
        k = rnd.randrange(4)
        with mutex.hold(key=b"refresh-%d" % k, timeout=10) as held:
            if not held:
                clashes += 1_000
                break
            other = struct.unpack_from("<q", owners, 8 * k)[0]
            if other not in (0, -1):              # -1: left by a killed victim
                clashes += 1
            struct.pack_into("<q", owners, 8 * k, me)
            for _ in range(rnd.randrange(3)):
                if struct.unpack_from("<q", owners, 8 * k)[0] != me:
                    clashes += 1
            struct.pack_into("<q", owners, 8 * k, 0)
        ops += 1
    os.write(report_w, struct.pack("<QQQ", ops, 0, clashes))
    return 0 if clashes == 0 else 1


def _refresh_victim(mutex, cache_mutex, cache, owners, k, mid_store, notify_w):
    mutex.child_init()
    cache_mutex.child_init()
    with mutex.hold(key=b"refresh-%d" % k) as held:
        assert held
        struct.pack_into("<q", owners, 8 * k, -1)
        if mid_store:                               # the stapling flow: refresh lock, then store
            def hook(p):
                if p == "data":
                    os.write(notify_w, b"!")
                    while True:
                        signal.pause()
            cache.fault_hook = hook
            with cache_mutex.hold():
                cache.store(b"refresh-%d" % k, b"staple" * 100, 4e9)
        os.write(notify_w, b"!")
        while True:
            signal.pause()


def test_kill_holder_of_refresh_key_mutex(tmp_path, errlog):
    refresh = GlobalMutex(MutexSpec(name="ssl-stapling-refresh", mechanism="default",
                                    directory=str(tmp_path)))
    refresh.create()
    cache_mutex = GlobalMutex(MutexSpec(name="ssl-stapling", directory=str(tmp_path)))
    cache_mutex.create()
    cache = ShmcbCache(None, 32 * 1024)
    cache.init("refresh")
    owners = mmap.mmap(-1, 64, flags=mmap.MAP_SHARED)
    stop_r, stop_w = os.pipe()
    report_r, report_w = os.pipe()
    notify_r, notify_w = os.pipe()
    hammers = [_fork(_refresh_hammer, refresh, owners, stop_r, report_w, s, close=(stop_w,))
               for s in (1, 2, 3)]
    try:
        rounds = 100
        for i in range(rounds):
            k = i % 4
            mid_store = i % 2 == 1
            pid = _fork(_refresh_victim, refresh, cache_mutex, cache, owners, k, mid_store,
                        notify_w, close=(stop_w,))
            r, _, _ = select.select([notify_r], [], [], 10)
            assert r and os.read(notify_r, 1) == b"!", f"round {i}: victim never took its lock"
            with refresh.hold(key=b"refresh-%d" % k, timeout=0) as held:
                assert not held                    # the victim holds this certificate's lock
            with refresh.hold(key=b"other-cert-%d" % i, timeout=0) as held:
                assert held                        # ... and never blocks another certificate
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            with refresh.hold(key=b"refresh-%d" % k, timeout=10) as held:
                assert held, f"round {i}: key lock still held after its holder was killed"
            with cache_mutex.hold(timeout=10) as held:
                assert held, f"round {i}: cache lock still held after its holder was killed"
                v = cache.retrieve(b"refresh-%d" % k)
                assert v is None or v == b"staple" * 100
    finally:
        codes, reports = _stop_and_collect(hammers, stop_w, report_r)
    assert codes == [0, 0, 0], reports
    assert sum(r[2] for r in reports) == 0         # per-key exclusion held throughout
    assert all(r[0] > 0 for r in reports)
    assert cache.status()["resets"] == rounds // 2
    refresh.destroy()
    cache_mutex.destroy()
