"""shmcb layout and policy, in one process with an explicit clock: geometry (Apache's sizing
rule), whole-key hashing, lazy expiry, eviction of the oldest with a counter, oversized refusal,
the registry."""
from __future__ import annotations

import os

import pytest

from httpd_py.config.model import SocacheSpec
from httpd_py.errors import ConfigError, SocacheError
from httpd_py.socache import create
from httpd_py.socache.base import NoneProvider, Provider
from httpd_py.socache.shmcb import Geometry, ShmcbCache, key_hash

NOW = 1_800_000_000.0


@pytest.mark.parametrize("size,subcaches", [(8192, 1), (32768, 2), (128000, 4), (512000, 8),
                                            (4_000_000, 32)])
def test_geometry_follows_apaches_sizing_rule(size, subcaches):
    g = Geometry(size)
    assert g.subcache_num == subcaches
    assert g.index_num >= 5
    assert 64 + g.subcache_num * g.subcache_size <= size
    assert g.data_offset + g.data_size == g.subcache_size


@pytest.mark.parametrize("size", [0, 8191, 2**32])
def test_bad_sizes_are_refused(size):
    with pytest.raises(SocacheError):
        Geometry(size)
    with pytest.raises(ConfigError, match="Invalid argument"):
        create(SocacheSpec("shmcb", raw=f"shmcb({size})", size=size))


def _cache(size=128000):
    c = ShmcbCache(None, size)
    c.init("unit")
    return c


def test_keys_sharing_their_first_byte_spread_over_subcaches():
    """Apache hashes only the first byte of the id; we hash all of it."""
    c = _cache(512000)
    subs = {int.from_bytes(key_hash(b"\x42" + os.urandom(19))[:4], "little") % 8
            for _ in range(200)}
    assert len(subs) == 8
    assert key_hash(b"a") != key_hash(b"a\x00") and len(key_hash(b"x")) == 8
    c.destroy()


def test_lazy_expiry_and_iterate_skip_expired():
    c = _cache()
    c.store(b"short", b"s", NOW + 10, now=NOW)
    c.store(b"long", b"l", NOW + 1000, now=NOW)
    assert {k for k, _, _ in c.iterate(now=NOW + 11)} == {b"long"}
    assert c.status()["expired"] == 0                  # iterate does not write
    assert c.retrieve(b"short", now=NOW + 11) is None
    assert c.status()["expired"] == 1
    assert c.retrieve(b"long", now=NOW + 11) == b"l"


def test_full_cache_evicts_the_oldest_and_counts():
    c = _cache(32768)
    n = 200
    for i in range(n):
        assert c.store(b"key-%03d" % i, b"v" * 900, NOW + 3600, now=NOW)
    st = c.status()
    assert st["stores"] == n
    assert st["scrolled"] == n - st["entries"] > 0
    assert c.retrieve(b"key-%03d" % (n - 1), now=NOW) == b"v" * 900   # newest kept
    assert c.retrieve(b"key-000", now=NOW) is None                     # oldest gone
    # expired entries go first, and are counted as expired, not scrolled
    d = _cache(32768)
    for i in range(60):
        d.store(b"old-%d" % i, b"v" * 900, NOW + 5, now=NOW)
    before = d.status()
    for i in range(8):
        d.store(b"new-%d" % i, b"v" * 900, NOW + 3600, now=NOW + 10)
    after = d.status()
    assert after["scrolled"] == before["scrolled"]
    assert after["expired"] > before["expired"]
    assert all(d.retrieve(b"new-%d" % i, now=NOW + 10) for i in range(8))


def test_ring_wraps_without_damage():
    c = _cache(8192)
    for i in range(500):
        v = bytes([i % 251]) * (100 + (i * 37) % 700)
        assert c.store(b"k%d" % (i % 7), v, NOW + 60, now=NOW)
        assert c.retrieve(b"k%d" % (i % 7), now=NOW) == v
    for k, v, _ in c.iterate(now=NOW):
        assert c.retrieve(k, now=NOW) == v


def test_oversized_entry_refused_with_id(errlog):
    c = _cache(32768)
    assert c.store(b"k", b"x" * c.max_entry_size, NOW + 60, now=NOW) is False
    assert c.status()["oversized"] == 1
    assert "HP05001" in errlog.ids()
    assert c.store(b"k", b"x" * (c.max_entry_size - 1), NOW + 60, now=NOW)
    assert c.retrieve(b"k", now=NOW) == b"x" * (c.max_entry_size - 1)


def test_empty_key_refused_and_use_before_init_is_an_error(errlog):
    c = _cache()
    assert c.store(b"", b"v", NOW + 1, now=NOW) is False
    assert "HP05006" in errlog.ids()
    with pytest.raises(SocacheError):
        ShmcbCache(None, 8192).retrieve(b"k")


def test_registry():
    assert isinstance(create(SocacheSpec("shmcb", raw="shmcb")), ShmcbCache)
    assert isinstance(create(SocacheSpec("default", raw="default")), ShmcbCache)
    n = create(SocacheSpec("none", raw="none"))
    assert isinstance(n, NoneProvider) and isinstance(n, Provider)
    assert n.store(b"k", b"v", NOW + 1) is False and n.retrieve(b"k") is None
    assert isinstance(_cache(), Provider) and _cache().mp_safe is False
    assert create(SocacheSpec("dbm", raw="dbm:/x", path="/x")).name == "dbm"
    with pytest.raises(ConfigError, match="unknown"):
        create(SocacheSpec("distcache", raw="dc:x"))
    with pytest.raises(ConfigError):
        create(SocacheSpec("redis", raw="redis"))
    r = create(SocacheSpec("redis", raw="redis:h", servers=(("h", 6379),)))
    m = create(SocacheSpec("memcache", raw="memcache:h", servers=(("h", 11211),)))
    assert r.mp_safe and m.mp_safe and isinstance(r, Provider) and isinstance(m, Provider)


def test_rewriting_few_keys_never_evicts_a_live_one(tmp_path, errlog):
    """Apache evicts the ring head even when the ring is mostly overwritten (dead) entries;
    we move a live head to the tail instead, so a small working set stays whole."""
    import random
    path = str(tmp_path / "c.shmcb")
    c = ShmcbCache(path, 32768)
    c.init("unit")
    keys = [b"cert-%d" % i for i in range(12)]
    rnd = random.Random(7)
    latest = {}
    for n in range(3000):
        k = rnd.choice(keys)
        latest[k] = b"%d" % n + bytes(rnd.randrange(200, 900))
        assert c.store(k, latest[k], NOW + 3600, now=NOW)
    st = c.status()
    assert st["scrolled"] == 0 and st["relocated"] > 0
    assert all(c.retrieve(k, now=NOW) == v for k, v in latest.items())
    c.destroy()
    d = ShmcbCache(path, 32768)                   # the on-open consistency check agrees
    d.init("unit")
    assert errlog.ids() == []
    assert {k: v for k, v, _ in d.iterate(now=NOW)} == latest
    d.destroy()
