"""mpm/helpers.HelperSupervisor with a fake fork (no process is made): which helpers run for
which generation, the restart backoff, a fork put off by the loader thread."""
from __future__ import annotations

import itertools

from httpd_py.mpm.helpers import FORK_RETRY, ForkDeferred, HelperSupervisor


class FakeFork:
    def __init__(self):
        self.pids = itertools.count(1000)
        self.defer = False

    def __call__(self) -> int:
        if self.defer:
            raise ForkDeferred("loader in OpenSSL")
        return next(self.pids)


def target():
    pass


def test_a_dead_helper_of_the_current_generation_comes_back_with_backoff(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("httpd_py.mpm.helpers.time.monotonic", lambda: now[0])
    sup = HelperSupervisor(FakeFork(), lambda: None)
    sup.start_generation([("ssl-stapler", target)], 1)
    (pid,) = sup.pids()
    assert sup.reaped(pid, 1, generation=1, restart=True)
    assert sup.pids() == [] and [p.due for p in sup.pending] == [101.0]
    sup.start_due(100.5, 1)
    assert sup.pids() == []                      # not due yet
    sup.start_due(101.0, 1)
    (pid2,) = sup.pids()
    now[0] = 101.5                               # dies again at once: 2 s
    assert sup.reaped(pid2, -9, generation=1, restart=True)
    assert [p.due - now[0] for p in sup.pending] == [2.0]
    assert not sup.reaped(4242, 0, generation=1, restart=True)   # a worker, not a helper


def test_old_generation_and_stopping_servers_do_not_restart():
    sup = HelperSupervisor(FakeFork(), lambda: None)
    sup.start_generation([("a", target)], 1)
    (pid,) = sup.pids()
    assert sup.reaped(pid, 0, generation=2, restart=True) and sup.pending == []
    sup.start_generation([("a", target)], 2)
    (pid,) = sup.pids()
    assert sup.reaped(pid, 0, generation=2, restart=False) and sup.pending == []


def test_a_deferred_fork_is_queued_and_stop_drops_the_queue(monkeypatch):
    monkeypatch.setattr("httpd_py.mpm.helpers.time.monotonic", lambda: 50.0)
    killed = []
    monkeypatch.setattr("httpd_py.mpm.helpers._kill", lambda pid, sig: killed.append(pid))
    fork = FakeFork()
    fork.defer = True
    sup = HelperSupervisor(fork, lambda: None)
    sup.start_generation([("a", target)], 1)
    assert sup.pids() == [] and [p.due for p in sup.pending] == [50.0 + FORK_RETRY]
    fork.defer = False
    sup.start_due(50.0 + FORK_RETRY, 1)
    assert len(sup.pids()) == 1 and sup.pending == []
    fork.defer = True
    sup.start("b", target, 1)
    sup.stop_generation(1)
    assert sup.pending == [] and killed == sup.pids()
