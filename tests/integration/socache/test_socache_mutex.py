"""GlobalMutex across real forked processes: exclusion, per-key independence, whole-vs-key,
re-open after fork, and a holder's death freeing the lock even when its child keeps the fd."""
from __future__ import annotations

import mmap
import os
import signal
import struct

import pytest

from httpd_py.config.model import MutexSpec
from httpd_py.socache.mutex import GlobalMutex


def _mutex(tmp_path, mech="default", name="ssl-stapling"):
    m = GlobalMutex(MutexSpec(name=name, mechanism=mech, directory=str(tmp_path)))
    m.create()
    return m


def _fork(fn):
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = fn()
        finally:
            os._exit(code)
    return pid


def _exit_code(pid):
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.parametrize("mech", ["default", "flock"])
@pytest.mark.parametrize("explicit_child_init", [True, False])
def test_whole_hold_excludes_across_processes(tmp_path, mech, explicit_child_init):
    m = _mutex(tmp_path, mech)
    counter = mmap.mmap(-1, 8, flags=mmap.MAP_SHARED)
    n = 300

    def work():
        if explicit_child_init:
            m.child_init()                  # else hold() notices the fork and re-opens itself
        for _ in range(n):
            with m.hold() as held:
                assert held
                v = struct.unpack_from("<q", counter)[0]
                os.sched_yield()            # invite a lost update if exclusion were broken
                struct.pack_into("<q", counter, 0, v + 1)
        return 0
    pids = [_fork(work) for _ in range(4)]
    assert [_exit_code(p) for p in pids] == [0, 0, 0, 0]
    assert struct.unpack_from("<q", counter)[0] == 4 * n
    m.destroy()


def _holder(m, key, ready_w):
    def run():
        m.child_init()
        with m.hold(key=key) as held:
            os.write(ready_w, b"1" if held else b"0")
            while True:
                signal.pause()
    return run


def test_keys_are_independent_and_whole_excludes_keys(tmp_path):
    m = _mutex(tmp_path, "fcntl", "ssl-stapling-refresh")
    r, w = os.pipe()
    pid = _fork(_holder(m, b"cert-A", w))
    assert os.read(r, 1) == b"1"
    with m.hold(key=b"cert-A", timeout=0.05) as held:
        assert held is False                 # same certificate: wait (here: time out)
    with m.hold(key=b"cert-B", timeout=0) as held:
        assert held is True                  # another certificate: never waits
    with m.hold(key=None, timeout=0.05) as held:
        assert held is False                 # the whole mutex excludes every key
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with m.hold(key=None, timeout=5) as held:
        assert held is True
    m.destroy()


def test_holders_death_frees_the_lock_even_if_its_child_keeps_the_fd(tmp_path):
    """With flock(2) the lock would live on in the child (python-probe.md Q5 (b))."""
    m = _mutex(tmp_path, "default")
    r, w = os.pipe()
    gr, gw = os.pipe()

    def holder():
        m.child_init()
        with m.hold():
            gpid = os.fork()
            if gpid == 0:                    # a plain fork() child: it inherits the lock fd
                try:
                    while True:
                        signal.pause()
                finally:
                    os._exit(0)
            os.write(gw, struct.pack("<q", gpid))
            os.write(w, b"1")
            while True:
                signal.pause()
    pid = _fork(holder)
    assert os.read(r, 1) == b"1"
    (gpid,) = struct.unpack("<q", os.read(gr, 8))
    try:
        with m.hold(timeout=0) as held:
            assert held is False
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with m.hold(timeout=5) as held:
            assert held is True              # freed although the grandchild still has the fd
    finally:
        os.kill(gpid, signal.SIGKILL)
    m.destroy()


def test_release_on_exception(tmp_path):
    m = _mutex(tmp_path)
    with pytest.raises(RuntimeError):
        with m.hold(key=b"k") as held:
            assert held
            raise RuntimeError("boom")

    def other():
        m.child_init()
        with m.hold(key=b"k", timeout=0) as held:
            return 0 if held else 1
    assert _exit_code(_fork(other)) == 0
    m.destroy()


@pytest.mark.parametrize("mech", ["default", "flock"])
def test_threads_of_one_process_exclude_each_other(tmp_path, mech):
    import threading
    m = _mutex(tmp_path, mech)
    box = {"whole": 0, "key": 0, "bad": 0}

    def bump(name, key):
        for _ in range(300):
            with m.hold(key=key, timeout=10) as held:
                if not held:
                    box["bad"] += 1
                    continue
                v = box[name]
                os.sched_yield()
                box[name] = v + 1

    threads = [threading.Thread(target=bump, args=("whole", None)) for _ in range(3)]
    threads += [threading.Thread(target=bump, args=("key", b"cert-A")) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert box == {"whole": 900, "key": 900, "bad": 0}
    m.destroy()
