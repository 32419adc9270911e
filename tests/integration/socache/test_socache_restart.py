"""File-backed shmcb across restarts: entries survive close/reopen; a foreign, corrupt or
resized file is detected, logged and rebuilt, never trusted."""
from __future__ import annotations

import os
import stat
import struct

import pytest

from httpd_py.errors import SocacheError
from httpd_py.socache.shmcb import HEADER_SIZE, ShmcbCache

NOW = 1_800_000_000.0


def _fill(path, n=30, size=200_000):
    c = ShmcbCache(path, size)
    c.init("ssl_stapling")
    for i in range(n):
        assert c.store(b"cert-%02d" % i, b"staple-%02d" % i * 50, NOW + 3600, now=NOW)
    return c


def test_entries_survive_close_and_reopen(tmp_path, errlog):
    path = str(tmp_path / "stapling.shmcb")
    _fill(path).destroy()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    c = ShmcbCache(path, 200_000)
    c.init("ssl_stapling")
    got = {k: v for k, v, _ in c.iterate(now=NOW)}
    assert got == {b"cert-%02d" % i: b"staple-%02d" % i * 50 for i in range(30)}
    assert c.retrieve(b"cert-07", now=NOW) == b"staple-07" * 50
    assert c.retrieve(b"cert-07", now=NOW + 3600) is None           # expiry kept too
    c.destroy()
    assert errlog.ids() == []                                         # nothing to complain about


def test_survives_a_restart_in_another_process(tmp_path):
    path = str(tmp_path / "stapling.shmcb")
    pid = os.fork()
    if pid == 0:
        try:
            _fill(path).destroy()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    c = ShmcbCache(path, 200_000)
    c.init("ssl_stapling")
    assert c.retrieve(b"cert-29", now=NOW) == b"staple-29" * 50
    c.destroy()


def _reopen(path, size=200_000):
    c = ShmcbCache(path, size)
    c.init("ssl_stapling")
    return c


@pytest.mark.parametrize("damage", ["foreign", "header-byte", "truncated", "other-size"])
def test_bad_file_is_rebuilt_and_logged(tmp_path, errlog, damage):
    path = str(tmp_path / "stapling.shmcb")
    if damage == "foreign":
        with open(path, "wb") as f:
            f.write(b"this is somebody else's file\n" * 5000)
    else:
        _fill(path).destroy()
        with open(path, "r+b") as f:
            if damage == "header-byte":
                f.seek(20)
                b = f.read(1)
                f.seek(20)
                f.write(bytes([b[0] ^ 0x40]))
            elif damage == "truncated":
                f.truncate(150_000)
    c = _reopen(path, 300_000 if damage == "other-size" else 200_000)
    assert "HP05002" in errlog.ids()
    assert list(c.iterate(now=NOW)) == []                           # nothing old trusted
    assert c.store(b"cert-new", b"fresh", NOW + 60, now=NOW)          # and it works
    assert c.retrieve(b"cert-new", now=NOW) == b"fresh"
    c.destroy()
    assert os.path.getsize(path) == (300_000 if damage == "other-size" else 200_000)


def test_subcache_left_mid_write_is_cleared_on_open(tmp_path, errlog):
    path = str(tmp_path / "stapling.shmcb")
    c = _fill(path)
    g = c.geo
    c.destroy()
    with open(path, "r+b") as f:                     # a writer died: seq odd in subcache 1
        f.seek(HEADER_SIZE + g.subcache_size)
        f.write(struct.pack("<I", 7))
    c = _reopen(path)
    assert "HP05003" in errlog.ids()
    survivors = {k for k, _v, _e in c.iterate(now=NOW)}
    assert 0 < len(survivors) < 30                      # only that subcache was dropped
    for k in survivors:
        assert c.retrieve(k, now=NOW) == b"staple-" + k[5:] + (b"staple-" + k[5:]) * 49
    c.destroy()


def test_corrupt_entry_data_is_never_returned(tmp_path, errlog):
    path = str(tmp_path / "stapling.shmcb")
    c = _fill(path, n=8)
    g = c.geo
    c.destroy()
    with open(path, "r+b") as f:                     # flip bytes in every data ring
        for i in range(g.subcache_num):
            off = HEADER_SIZE + i * g.subcache_size + g.data_offset + 30
            f.seek(off)
            f.write(b"\xAA\xBB")
    c = _reopen(path)
    for i in range(8):
        v = c.retrieve(b"cert-%02d" % i, now=NOW)
        assert v is None or v == b"staple-%02d" % i * 50
    assert "HP05004" in errlog.ids()
    c.destroy()


def test_unwritable_path_is_a_clear_error(tmp_path, errlog):
    c = ShmcbCache(str(tmp_path / "no-such-dir" / "x.shmcb"), 200_000)
    with pytest.raises(SocacheError, match="cannot open"):
        c.init("ssl_stapling")
    assert "HP05005" in errlog.ids()


def test_symlink_is_not_followed(tmp_path, errlog):
    target = tmp_path / "victim"
    target.write_bytes(b"precious")
    link = tmp_path / "cache.shmcb"
    link.symlink_to(target)
    with pytest.raises(SocacheError):
        ShmcbCache(str(link), 200_000).init("x")
    assert target.read_bytes() == b"precious"



def test_dbm_survives_reopen_and_rebuilds_a_foreign_file(tmp_path, errlog):
    from httpd_py.config.model import SocacheSpec
    from httpd_py.socache import create
    c = create(SocacheSpec("dbm", raw="dbm"), None)
    c.runtime_dir = str(tmp_path)
    c.init("ssl_stapling")
    assert c.path == str(tmp_path / "socache-dbm-ssl_stapling")     # Apache's default name
    assert stat.S_IMODE(os.stat(c.path).st_mode) == 0o600
    assert c.store(b"cert", b"staple", NOW + 60, now=NOW)
    c.destroy()
    d = create(SocacheSpec("dbm", raw="dbm", path=c.path))
    d.init("ssl_stapling")
    assert d.retrieve(b"cert", now=NOW) == b"staple"
    d.destroy()
    with open(c.path, "wb") as f:
        f.write(b"not a database at all\n" * 200)
    e = create(SocacheSpec("dbm", raw="dbm", path=c.path))
    e.init("ssl_stapling")
    assert "HP05007" in errlog.ids()
    assert e.retrieve(b"cert", now=NOW) is None
    assert e.store(b"cert", b"again", NOW + 60, now=NOW)
    assert e.retrieve(b"cert", now=NOW) == b"again"
    e.destroy()


def test_rebuild_never_pulls_the_file_from_under_a_live_mapping(tmp_path, errlog):
    """A new generation with another size rebuilds the file; a worker of the old generation
    still mapping it keeps working (the new file is renamed into place: no SIGBUS)."""
    path = str(tmp_path / "stapling.shmcb")
    old = _fill(path, n=5)
    new = _reopen(path, 300_000)
    assert "HP05002" in errlog.ids()
    assert old.retrieve(b"cert-03", now=NOW) == b"staple-03" * 50
    assert old.store(b"cert-x", b"x", NOW + 60, now=NOW)
    assert new.retrieve(b"cert-03", now=NOW) is None
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".new")]
    old.destroy()
    new.destroy()


def test_scribbled_subcache_header_costs_entries_not_an_exception(tmp_path, errlog):
    path = str(tmp_path / "stapling.shmcb")
    c = _fill(path)
    g = c.geo
    with open(path, "r+b") as f:                     # someone writes garbage, no mutex, live
        for i in range(g.subcache_num):
            f.seek(HEADER_SIZE + i * g.subcache_size)
            f.write(struct.pack("<IIIII", 0, 0xFFFFFFF0, 0xFFFFFFF0, 0xFFFFFFF0, 0xFFFFFFF0))
    for i in range(30):
        v = c.retrieve(b"cert-%02d" % i, now=NOW)
        assert v is None or v == b"staple-%02d" % i * 50
        c.store(b"cert-%02d" % i, b"again", NOW + 60, now=NOW)
    list(c.iterate(now=NOW))
    assert "HP05003" in errlog.ids()
    assert c.store(b"cert-new", b"fresh", NOW + 60, now=NOW)
    assert c.retrieve(b"cert-new", now=NOW) == b"fresh"
    c.destroy()
