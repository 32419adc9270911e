"""ProxyPassReverse / cookie rewriting (pure) and the byrequests balancer over a shared table."""
from __future__ import annotations

import os

import pytest

from httpd_py.modules.proxy import balancer as B
from httpd_py.modules.proxy import reverse as R
from httpd_py.modules.proxy.conf import Balancer, ReverseRule, Worker, WorkerParams

RULES = (ReverseRule("/app", "http://back:8001"), ReverseRule("/bal/", "balancer://pool/"))
POOL_B = Balancer("balancer://pool", (Worker("http://m1", "http", "m1", 80),
                                      Worker("http://m2:81", "http", "m2", 81)))


@pytest.mark.parametrize("value, expected", [
    ("http://back:8001/x", "https://front/app/x"),
    ("HTTP://BACK:8001/x", "https://front/app/x"),
    ("http://other/x", "http://other/x"),
    ("http://m2:81/y", "https://front/bal/y"),
    ("/relative", "/relative"),
])
def test_location(value, expected):
    got = R.map_location(value, RULES, {"balancer://pool": POOL_B}, "https://front")
    assert got == expected


@pytest.mark.parametrize("host, scheme, base", [
    ("front:8443", "https", "https://front:8443"),
    ("front:443", "https", "https://front"),
    ("front", "http", "http://front"),
    (None, "http", "http://srv"),
    ("[::1]:81", "http", "http://[::1]:81"),
])
def test_base_url(host, scheme, base):
    assert R.base_url(scheme, host, "srv") == base


@pytest.mark.parametrize("cookie, expected", [
    ("a=1; Domain=backend.internal; Path=/app/x", "a=1; Domain=public.example; Path=/pub"),
    ("b=2; path=/app; domain=other.example", "b=2; path=/pub; domain=other.example"),
    ("c=3; Path=/elsewhere; HttpOnly", "c=3; Path=/elsewhere; HttpOnly"),
    ("d=4; domain=x.BACKEND.internal", "d=4; domain=public.example"),
])
def test_cookies(cookie, expected):
    got = R.map_cookie(cookie, (("/app", "/pub"),), (("backend.internal", "public.example"),))
    assert got == expected


def _members(*specs):
    return tuple(Worker(f"http://m{i}", "http", f"m{i}", 80, WorkerParams(**kw), slot=i)
                 for i, kw in enumerate(specs))


def fresh():
    return B.SharedTable()


def test_byrequests_follows_loadfactors():
    t = fresh()
    b = Balancer("balancer://x", _members({"loadfactor": 3}, {"loadfactor": 1}))
    picks = [B.choose(b, t, 0.0).name for _ in range(8)]
    assert picks.count("http://m0") == 6 and picks.count("http://m1") == 2
    assert picks[:4].count("http://m0") == 3          # spread, not bunched


def test_dead_member_skipped_for_retry_window_then_tried():
    t = fresh()
    b = Balancer("balancer://x", _members({"retry": 10}, {}))
    t.set_error(0, 100.0)
    assert {B.choose(b, t, 105.0).name for _ in range(4)} == {"http://m1"}
    assert "http://m0" in {B.choose(b, t, 111.0).name for _ in range(4)}


def test_all_dead_forcerecovery():
    t = fresh()
    b = Balancer("balancer://x", _members({}, {}))
    t.set_error(0, 100.0)
    t.set_error(1, 100.0)
    assert B.choose(b, t, 101.0) is not None
    assert B.choose(Balancer("balancer://y", b.members, forcerecovery=False), fresh(), 0) \
        is not None
    t2 = fresh()
    t2.set_error(0, 100.0)
    t2.set_error(1, 100.0)
    assert B.choose(Balancer("balancer://y", b.members, forcerecovery=False), t2, 101.0) is None


def test_disabled_and_hot_standby():
    t = fresh()
    b = Balancer("balancer://x", _members({"status": frozenset({"disabled"})},
                                          {"status": frozenset({"hot-standby"})}, {}))
    assert {B.choose(b, t, 0.0).name for _ in range(5)} == {"http://m2"}
    t.set_error(2, 1.0)
    assert B.choose(b, t, 2.0).name == "http://m1"


def test_sticky_choice_counts_for_byrequests():
    t = fresh()
    b = Balancer("balancer://x", _members({"route": "r0"}, {"route": "r1"}),
                 sticky=("S",))
    for _ in range(2):
        B.choose(b, t, 0.0, "r0")
    assert [t.read(i)[1] for i in (0, 1)] == [-2, 2]
    assert [B.choose(b, t, 0.0).name for _ in range(4)] == ["http://m1", "http://m1",
                                                             "http://m0", "http://m1"]


def test_sticky_route():
    b = Balancer("balancer://x", _members({"route": "r0"}, {"route": "r1"}),
                 sticky=("JSESSIONID",))
    t = fresh()
    route = B.sticky_route(b, "a=1; JSESSIONID=abc.r1", "/p", "")
    assert route == "r1"
    assert {B.choose(b, t, 0.0, route).name for _ in range(4)} == {"http://m1"}
    assert B.sticky_route(b, None, "/p;JSESSIONID=x.r0", "") == "r0"
    assert B.sticky_route(b, None, "/p", "JSESSIONID=y.r1&z=1") == "r1"
    assert B.sticky_route(b, None, "/p", "") is None
    t.set_error(1, 0.5)
    assert B.choose(b, t, 1.0, "r1").name == "http://m0"                 # failover
    nof = Balancer("balancer://x", b.members, sticky=b.sticky, nofailover=True)
    assert B.choose(nof, t, 1.0, "r1") is None


def test_table_is_shared_across_fork():
    t = fresh()
    pid = os.fork()
    if pid == 0:
        t.set_error(7, 42.0)
        t.add_lbstatus(7, 5, 1)
        os._exit(0)
    os.waitpid(pid, 0)
    assert t.error_time(7) == 42.0
    assert t.read(7)[1:3] == (5, 1)


def test_slots_by_name():
    t = fresh()
    assert t.slot_for("a") == 0 and t.slot_for("b") == 1 and t.slot_for("a") == 0
