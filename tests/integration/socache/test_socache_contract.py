"""One contract suite for every socache provider: shmcb (anonymous and file-backed), dbm
(SQLite), redis, memcache.  Real servers on loopback; shmcb is used under its GlobalMutex as
mod_ssl uses it."""
from __future__ import annotations

import os
import time

from tests.support.tools import wait_until

NOW = 1_800_000_000.0          # explicit clock for shmcb; network providers use server TTLs


def _now(cache) -> float:
    return NOW if cache.kind.startswith("shmcb") or cache.kind == "dbm" else time.time()


def test_store_retrieve_binary_keys(cache):
    now = _now(cache)
    keys = [b"\x00\x01sha1-of-cert", bytes(range(256))[:40], b"plain", b"\xff" * 20]
    for i, k in enumerate(keys):
        assert cache.store(k, b"value-%d" % i + bytes(1000), now + 600, now=now) is True
    for i, k in enumerate(keys):
        assert cache.retrieve(k, now=now) == b"value-%d" % i + bytes(1000)
    assert cache.retrieve(b"absent-key", now=now) is None


def test_overwrite_keeps_only_the_newest(cache):
    now = _now(cache)
    assert cache.store(b"certid-1", b"old", now + 600, now=now)
    assert cache.store(b"certid-1", b"new", now + 600, now=now)
    assert cache.retrieve(b"certid-1", now=now) == b"new"
    assert [v for k, v, _ in cache.iterate(now=now) if k == b"certid-1"] == [b"new"]


def test_remove(cache):
    now = _now(cache)
    cache.store(b"certid-r", b"v", now + 600, now=now)
    cache.remove(b"certid-r")
    assert cache.retrieve(b"certid-r", now=now) is None
    cache.remove(b"never-stored")                     # no error
    assert cache.store(b"certid-r", b"again", now + 600, now=now)
    assert cache.retrieve(b"certid-r", now=now) == b"again"


def test_already_expired_is_not_stored(cache):
    now = _now(cache)
    assert cache.store(b"certid-x", b"v", now - 1, now=now) is False
    assert cache.store(b"certid-x", b"v", now, now=now) is False
    assert cache.retrieve(b"certid-x", now=now) is None


def test_expiry(cache):
    # Every provider honours an explicit clock on lookup (lazy expiry).
    now = time.time()
    assert cache.store(b"certid-e", b"v", now + 100, now=now)
    assert cache.retrieve(b"certid-e", now=now + 99.9) == b"v"
    assert cache.retrieve(b"certid-e", now=now + 100) is None
    if cache.kind.startswith("shmcb"):
        assert cache.retrieve(b"certid-e", now=now) is None             # dropped for good
        assert cache.status()["expired"] == 1
    if cache.kind not in ("redis", "memcache"):
        return
    # Network providers: the server expires entries too.  The TTL it keeps matches ours, and a
    # short TTL really expires (bounded wait; memcached has 1 s granularity).
    now = time.time()
    assert cache.store(b"certid-long", b"v", now + 1000, now=now)
    (exp,) = [e for k, _v, e in cache.iterate() if k == b"certid-long"]
    assert exp == now + 1000
    if cache.kind == "redis":                                            # what the server keeps
        assert 990_000 <= cache.p._client(0).pttl(cache.p._prefix + b"certid-long") <= 1_000_000
    assert cache.store(b"certid-short", b"v", time.time() + 0.3)
    wait_until(lambda: cache.retrieve(b"certid-short", now=0.0) is None, timeout=5,
               what="server-side expiry")                  # now=0: only the server can expire it


def test_iterate_lists_live_entries_of_this_namespace_only(cache):
    now = _now(cache)
    want = {b"it-%d" % i: os.urandom(300) for i in range(5)}
    for k, v in want.items():
        assert cache.store(k, v, now + 600, now=now)
    if cache.kind.startswith("shmcb") or cache.kind == "dbm":
        assert cache.store(b"it-short", b"v", now + 10, now=now)
        got = {k: v for k, v, e in cache.iterate(now=now + 20)}   # it-short has expired by then
    else:
        got = {k: v for k, v, e in cache.iterate()}
    assert got == want
    for k, v, e in cache.iterate(now=now):
        assert e > now


def test_oversized_is_refused_and_logged(cache, errlog):
    now = _now(cache)
    size = cache.p.max_entry_size
    big = b"x" * (size + 1)
    assert cache.store(b"big", big, now + 600, now=now) is False
    assert cache.retrieve(b"big", now=now) is None
    expected = {"shmcb": "HP05001", "dbm": "HP05008", "redis": "HP05011",
                "memcache": "HP05021"}[cache.p.name]
    assert expected in errlog.ids()
    assert cache.store(b"small", b"fits", now + 600, now=now)      # still works
    assert cache.retrieve(b"small", now=now) == b"fits"


def _child(cache, idx: int, rounds: int, now: float) -> int:
    """Child body: own keys must read back exactly; shared keys must be one writer's value."""
    cache.child_init()
    bad = 0
    for r in range(rounds):
        k = b"own-%d-%d" % (idx, r % 20)
        v = b"%d:%d:" % (idx, r) + bytes([idx]) * 900
        if not cache.store(k, v, now + 600, now=now):
            bad += 1
        if cache.retrieve(k, now=now) != v:
            bad += 1
        s = cache.retrieve(b"shared-%d" % (r % 5), now=now)
        if s is not None and not (s[:2] in (b"0:", b"1:", b"2:", b"3:")
                                  and s[2:] == s[2:3] * (len(s) - 2)):
            bad += 1
        cache.store(b"shared-%d" % (r % 5), b"%d:" % idx + bytes([65 + idx]) * 700, now + 600,
                    now=now)
    return min(bad, 100)


def test_many_processes_at_once(cache):
    now = _now(cache)
    pids = []
    for idx in range(4):
        pid = os.fork()
        if pid == 0:
            code = 99
            try:
                code = _child(cache, idx, 150, now)
            finally:
                os._exit(code)
        pids.append(pid)
    codes = []
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        codes.append(os.waitstatus_to_exitcode(status))
    assert codes == [0, 0, 0, 0]
    # The parent sees what the children left: each child's last values of its own keys.
    for idx in range(4):
        r = 149
        assert cache.retrieve(b"own-%d-%d" % (idx, r % 20), now=now) == \
            b"%d:%d:" % (idx, r) + bytes([idx]) * 900
