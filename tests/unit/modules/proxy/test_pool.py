"""The per-process backend pool: how many idle connections it keeps.

One request at a time (the blocking worker, outside a greenlet): one kept, as a prefork child.
Requests parked in greenlets (http/park.py): as many as use the backend at once, so a slow
backend's load does not close and reopen connections on every request.  ``max=`` always wins.
Real loopback sockets (socketpair); the greenlets are the ones the event loop would run
requests in.
"""
from __future__ import annotations

import socket

from greenlet import greenlet

from httpd_py.modules.proxy.backend import BackendConn, Pool
from httpd_py.modules.proxy.conf import Worker, WorkerParams

KEY = "http://127.0.0.1:1"


def _conns(n: int):
    pairs = [socket.socketpair() for _ in range(n)]
    return [BackendConn(a, KEY, "127.0.0.1:1") for a, _ in pairs], [b for _, b in pairs]


def _worker(**params) -> Worker:
    return Worker(KEY, "http", "127.0.0.1", 1, WorkerParams(**params))


def _lend_and_put_back(pool: Pool, worker: Worker, conns) -> None:
    for c in conns:
        pool.lend(c)
    assert pool.lent == {KEY: len(conns)}
    for c in conns:
        pool.put(worker, c, KEY)
    assert pool.lent == {}


def test_one_request_at_a_time_keeps_one():
    pool, worker = Pool(), _worker()
    conns, peers = _conns(4)
    _lend_and_put_back(pool, worker, conns)
    assert pool.count() == 1
    assert [c.sock.fileno() for c in conns].count(-1) == 3      # the others closed


def test_parked_requests_keep_as_many_as_were_in_use_at_once():
    pool, worker = Pool(), _worker()
    conns, peers = _conns(4)
    greenlet(lambda: _lend_and_put_back(pool, worker, conns)).switch()
    assert pool.count() == 4
    # a kept one is lent again, and closing it (a failed request) gives its count back
    c = greenlet(lambda: pool.get(worker, KEY)).switch()
    assert c in conns and c.out is pool and pool.lent == {KEY: 1}
    c.close()
    assert pool.lent == {} and pool.count() == 3


def test_max_is_the_limit_when_parking_too():
    pool, worker = Pool(), _worker(max=2)
    conns, peers = _conns(4)
    greenlet(lambda: _lend_and_put_back(pool, worker, conns)).switch()
    assert pool.count() == 2
