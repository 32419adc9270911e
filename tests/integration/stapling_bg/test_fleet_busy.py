"""The stapler under a fleet lock held by another server (a real redis-server): it neither
fetches nor blocks, looks again with a growing pause, and adopts what the holder stored."""
from __future__ import annotations

import random

from httpd_py.config.model import SocacheSpec
from httpd_py.socache.fleetlock import FleetLock
from httpd_py.stapling.stapler import ADOPTED, BUSY, Stapler
from httpd_py.stapling.store import StapleStore
from tests.unit.stapling_bg.conftest import Clock, ClockedResponder, make_config
from tests.unit.stapling_bg.test_stapler import make_service


def test_busy_fleet_lock_backs_off_then_adopts(tmp_path, pki_bg):
    from tests.support.servers import redis_server
    clock = Clock()
    with redis_server() as (host, port), ClockedResponder.for_pki(pki_bg, clock=clock) as responder:
        spec = SocacheSpec("redis", raw=f"redis:{host}:{port}", servers=((host, port),))
        cfg = make_config(tmp_path, pki_bg, responder.url, names=("a.test",), kinds=("ec",), cache=spec)
        svc = make_service(cfg)
        other = FleetLock(spec, "ssl-stapling-refresh", ttl=30.0, cfg=cfg)   # "server A"
        b = Stapler.from_service(svc, clock=clock, rand=random.Random(1).random,
                                 store=StapleStore(str(tmp_path / "b")))
        assert b.fleet_lock is not None
        b.load()                                    # nothing anywhere yet: due at once
        st = next(iter(b.states.values()))
        with other.hold(st.info.key, 1.0) as held:
            assert held
            waits = []
            for _ in range(3):
                assert b.refresh_one(st) == BUSY
                waits.append(round(st.next_at - clock()))
        assert waits == [2, 4, 8] and responder.requests == 0
        # server A fetched and stored meanwhile: B adopts without asking
        a = Stapler.from_service(svc, clock=clock, store=StapleStore(str(tmp_path / "a")))
        a.prefetch()
        assert responder.requests == 1
        assert b.refresh_one(st) == ADOPTED and st.busy == 0
        assert responder.requests == 1 and st.servable(clock())
