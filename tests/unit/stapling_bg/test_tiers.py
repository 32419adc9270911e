"""A fleet cache outage is not a stapling outage: the local shared-memory tier in front of a
network SSLStaplingCache, and the stapler refreshing alone while the fleet lock's server is
unreachable.  The real StaplingService (real anonymous shmcb local tier, real mutexes, real
verdicts) over an in-memory stand-in for redis that can be switched off, a fleet lock double
that answers HELD / BUSY / UNREACHABLE, and a settable clock."""
from __future__ import annotations

import contextlib
import dataclasses
import random


from httpd_py.config.model import SocacheSpec
from httpd_py.socache.fleetlock import BUSY, HELD, UNREACHABLE
from httpd_py.stapling import entry
from httpd_py.stapling.stapler import ADOPTED, BUSY as BUSY_OUTCOME, FETCHED, Stapler
from httpd_py.stapling.store import StapleStore

from .conftest import make_config, replace_stapling
from .test_stapler import make_service, serials

DAY = 86400.0


class FakeNetworkCache:
    """redis as the service sees it: mp-safe, never raises, a miss/False while ``down``;
    counts the calls so a test can tell whether a handshake touched the network."""
    name = "redis"
    mp_safe = True
    max_entry_size = 1 << 20

    def __init__(self):
        self.data: dict[bytes, tuple[bytes, float]] = {}
        self.down = False
        self.calls = 0
        self.retried = 0

    def init(self, namespace):
        pass

    def child_init(self):
        pass

    def destroy(self):
        pass

    def store(self, key, value, expires_at, now=None):
        self.calls += 1
        if self.down:
            return False
        self.data[key] = (value, expires_at)
        return True

    def retrieve(self, key, now=None):
        self.calls += 1
        if self.down:
            return None
        hit = self.data.get(key)
        return hit[0] if hit is not None and hit[1] > now else None

    def remove(self, key):
        self.data.pop(key, None)

    def retry_now(self):                  # the stapler saw the fleet's server answer again
        self.retried += 1

    def flush(self):                       # a redis restart without persistence
        self.data.clear()


class FakeFleetLock:
    """One lock table shared by the "servers" of a test; unreachable while the cache is down."""

    def __init__(self, net: FakeNetworkCache, holders: dict):
        self.net, self.holders = net, holders

    def child_init(self):
        pass

    @contextlib.contextmanager
    def acquire(self, key, timeout=0.0):
        if self.net.down:
            yield UNREACHABLE
            return
        if key in self.holders:
            yield BUSY
            return
        self.holders[key] = self
        try:
            yield HELD
        finally:
            del self.holders[key]


REDIS = SocacheSpec("redis", raw="redis:127.0.0.1:9", servers=(("127.0.0.1", 9),))


def tiered_service(cfg, net: FakeNetworkCache, background: bool = True):
    svc = make_service(dataclasses.replace(cfg, stapling_cache=REDIS))
    svc.cache = net
    svc.background = background
    return svc


def stapler_for(svc, clock, d, net, holders, seed=1):
    return Stapler.from_service(svc, clock=clock, rand=random.Random(seed).random,
                                store=StapleStore(str(d / "store")),
                                fleet_lock=FakeFleetLock(net, holders))


def test_a_network_cache_gets_a_local_tier_guarded_by_the_stapling_mutex(tmp_path, pki, responder, errlog):
    svc = tiered_service(make_config(tmp_path, pki, responder.url), FakeNetworkCache())
    assert svc.local is not None and svc.local.name == "shmcb" and svc.local.path is None
    assert svc.stapling_mutex is not None              # for the local tier, not for redis
    assert "HP04037" in errlog.ids()
    # shmcb / dbm caches are local already: one tier, as before
    plain = make_service(make_config(tmp_path / "plain", pki, responder.url))
    assert plain.local is None


def test_store_writes_both_tiers_and_handshakes_read_the_local_one_first(tmp_path, pki, responder, clock):
    net = FakeNetworkCache()
    cfg = make_config(tmp_path, pki, responder.url, names=("a.test",), kinds=("ec",))
    svc = tiered_service(cfg, net)
    s = stapler_for(svc, clock, tmp_path, net, {})
    s.prefetch()
    st = next(iter(s.states.values()))
    assert svc.lookup_local(st.info, clock()).der == st.record.der
    assert svc.lookup_shared(st.info, clock()).der == st.record.der
    vhost = cfg.vhosts[0]
    before = net.calls
    assert svc.staple_for(st.info, vhost, now=clock()) == st.record.der
    assert net.calls == before                         # a handshake never asked redis
    net.down = True                                    # redis goes away
    assert svc.staple_for(st.info, vhost, now=clock()) == st.record.der
    assert net.calls == before


def test_background_workers_never_read_the_network_on_a_local_miss(tmp_path, pki, responder, clock):
    net = FakeNetworkCache()
    cfg = make_config(tmp_path, pki, responder.url, names=("a.test",), kinds=("ec",))
    svc = tiered_service(cfg, net)
    s = stapler_for(svc, clock, tmp_path, net, {})
    s.prefetch()
    st = next(iter(s.states.values()))
    svc.local.remove(st.info.key)
    before = net.calls
    assert svc.staple_for(st.info, cfg.vhosts[0], now=clock()) == b""
    assert net.calls == before
    # the stapler's reseed puts it back into the tier that lost it, and only there
    stores = dict(net.data)
    assert s.reseed(clock()) == 1
    assert svc.staple_for(st.info, cfg.vhosts[0], now=clock()) == st.record.der
    assert net.data == stores


def test_on_demand_vhosts_read_the_network_after_a_local_miss(tmp_path, pki, responder, clock):
    net = FakeNetworkCache()
    cfg = replace_stapling(make_config(tmp_path, pki, responder.url, names=("a.test",),
                                       kinds=("ec",)), refresh="on-demand")
    svc = tiered_service(cfg, net, background=False)
    info = svc.table.all()[0]
    vhost = cfg.vhosts[0]
    first = svc.staple_for(info, vhost)                # fetched on demand, stored in both tiers
    assert first and responder.requests == 1
    svc.local.remove(info.key)                         # another server's response, say
    assert svc.staple_for(info, vhost) == first and responder.requests == 1
    net.down = True                                    # redis down: the local tier answers
    svc.store(info, entry.VALID, first, vhost.ssl.stapling)
    assert svc.staple_for(info, vhost) == first and responder.requests == 1


def test_stapler_refreshes_alone_while_the_fleet_lock_is_unreachable_then_rejoins(
        tmp_path, pki, responder, clock, errlog):
    """Three servers over one (fake) redis.  Redis goes down for longer than a response lives:
    each server refreshes on its own into its local tier (one request per certificate per
    server per window, never BUSY); redis comes back empty; the first server due fetches under
    the fleet lock and the others adopt: no burst."""
    net, holders = FakeNetworkCache(), {}
    cfg = make_config(tmp_path, pki, responder.url, names=("a.test",), kinds=("rsa", "ec"))
    servers = []
    for n in range(3):
        svc = tiered_service(cfg, net)
        servers.append((svc, stapler_for(svc, clock, tmp_path / f"n{n}", net, holders, seed=n)))
    for _, s in servers:
        s.prefetch()
    keys = serials(pki, names=("a.test",))
    assert [responder.count(x) for x in keys] == [1, 1]          # the fleet asked once

    def run_due():
        return [o for _, s in servers for o in s.run_pass(s.due(clock()), None).values()]

    net.down = True
    outage_end = clock() + 3 * DAY                    # responses live 2 days
    while clock() < outage_end:
        clock.advance(600)
        outcomes = run_due()
        assert BUSY_OUTCOME not in outcomes and ADOPTED not in outcomes
        for svc, s in servers:                        # every server can staple throughout
            for st in s.states.values():
                assert svc.staple_for(st.info, cfg.vhosts[0], now=clock()), clock()
    alone = [responder.count(x) for x in keys]
    assert all(c >= 1 + 3 * 2 for c in alone), alone   # each server refreshed each, >= twice
    assert errlog.ids().count("HP04820") == 3          # once per server, not per refresh

    net.down = False
    net.flush()                                        # redis restarted without its data
    back = clock()
    outcomes = []
    while clock() < back + 1.5 * DAY:                  # at least one renew time of every server
        clock.advance(600)
        outcomes += run_due()
    after = [responder.count(x) - a for x, a in zip(keys, alone)]
    assert all(1 <= c <= 3 for c in after), after      # <= one per server after the return
    assert ADOPTED in outcomes and errlog.ids().count("HP04821") == 3
    assert net.retried == 3                            # each server stopped skipping redis
