"""GlobalMutex in one process: naming, file mode, refusals, -S lines, per-key offsets."""
from __future__ import annotations

import os
import stat

import pytest

from httpd_py.config.model import MutexSpec
from httpd_py.errors import ConfigError
from httpd_py.socache.mutex import GlobalMutex, describe, key_offset


def test_lock_file_named_like_apache_and_private(tmp_path):
    m = GlobalMutex(MutexSpec(name="ssl-stapling", directory=str(tmp_path)))
    m.create()
    assert m.path == str(tmp_path / f"ssl-stapling.{os.getpid()}")
    assert stat.S_IMODE(os.stat(m.path).st_mode) == 0o600
    m.destroy()
    assert not os.path.exists(m.path)
    o = GlobalMutex(MutexSpec(name="ssl-cache", directory=str(tmp_path), omit_pid=True))
    o.create()
    assert o.path == str(tmp_path / "ssl-cache")
    o.destroy()


@pytest.mark.parametrize("mech", ["none", "no", "NONE"])
def test_none_is_refused(mech):
    with pytest.raises(ConfigError, match="None is not allowed for mutex type ssl-stapling"):
        GlobalMutex(MutexSpec(name="ssl-stapling", mechanism=mech))


@pytest.mark.parametrize("mech", ["sysvsem", "pthread", "bogus"])
def test_unsupported_mechanisms_are_refused(mech):
    with pytest.raises(ConfigError, match="Invalid Mutex argument"):
        GlobalMutex(MutexSpec(name="ssl-stapling", mechanism=mech))


@pytest.mark.parametrize("mech", ["default", "file", "fcntl", "flock", "yes", "FCNTL"])
def test_every_mechanism_holds_and_times_out(tmp_path, mech):
    m = GlobalMutex(MutexSpec(name="ssl-stapling", mechanism=mech, directory=str(tmp_path)))
    m.create()
    for key in (None, b"cert"):
        with m.hold(key=key, timeout=0) as held:
            assert held is True
        with m.hold(key=key) as held:
            assert held is True
    m.destroy()


def test_describe_matches_apache_dump_mutexes():
    assert describe(MutexSpec(name="ssl-cache")) == "Mutex ssl-cache: using_defaults"
    assert describe(MutexSpec(name="ssl-cache", mechanism="none", using_defaults=False)) == \
        "Mutex ssl-cache: none"
    assert describe(MutexSpec(name="ssl-stapling", mechanism="fcntl", directory="/run/httpd",
                              using_defaults=False)) == \
        'Mutex ssl-stapling: dir="/run/httpd" mechanism=fcntl'
    assert describe(MutexSpec(name="x", mechanism="flock", directory="/l", omit_pid=True,
                              using_defaults=False)) == \
        'Mutex x: dir="/l" mechanism=flock [OmitPid]'


def test_key_offsets_are_stable_and_spread():
    offs = {key_offset(os.urandom(20)) for _ in range(1000)}
    assert len(offs) == 1000 and min(offs) >= 1
    assert key_offset(b"cert-A") == key_offset(b"cert-A")


def test_destroy_can_keep_the_file_for_the_next_generation(tmp_path):
    spec = MutexSpec(name="ssl-stapling", directory=str(tmp_path))
    m = GlobalMutex(spec)
    m.create()
    inode = os.stat(m.path).st_ino
    m.destroy(unlink=False)
    n = GlobalMutex(spec)
    n.create()
    assert os.stat(n.path).st_ino == inode
    n.destroy()
    assert not os.path.exists(n.path)


def test_acquire_release_fast_path(tmp_path):
    m = GlobalMutex(MutexSpec(name="ssl-stapling", directory=str(tmp_path)))
    m.create()
    assert m.acquire() is True
    with m.hold(timeout=0) as held:
        assert held is False                 # another thread/holder in this process waits
    m.release()
    with m.hold(timeout=0) as held:
        assert held is True
    m.destroy()


def test_lock_error_yields_false_and_logs(tmp_path, errlog):
    m = GlobalMutex(MutexSpec(name="ssl-stapling", directory=str(tmp_path)))
    m.create()
    os.close(m._fd)                          # the descriptor went bad under us
    with m.hold() as held:
        assert held is False
    assert m.acquire() is False
    assert errlog.ids().count("HP05030") == 2
    m._fd = None
    m.destroy()
