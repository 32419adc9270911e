"""The background stapler over the real StaplingService (real shmcb, real mutexes, real verdicts)
and an in-process responder, driven by a settable clock: one request per certificate per renew
window, keep-last-good through outages, backoff, persistence, Must-Staple start-up check."""
from __future__ import annotations

import datetime as dt
import json
import random


from httpd_py.stapling import entry, schedule
from httpd_py.stapling.stapler import ADOPTED, FETCHED, KEPT, FAILED, Stapler
from httpd_py.stapling.store import StapleStore

from .conftest import ClockedResponder, make_config, replace_stapling

DAY = 86400.0


def make_service(cfg, monkeypatch=None):
    """The real service, initialised WITHOUT the stapler the server wires in (each test drives
    its own Stapler with a settable clock)."""
    from httpd_py.stapling.service import StaplingService
    svc = StaplingService.from_config(cfg)
    svc.init()
    return svc


def serials(pki, names=("a.test", "b.test"), kinds=("rsa", "ec")):
    return [pki.leaf(n, k).cert.serial_number for n in names for k in kinds]


def stapler_for(svc, clock, tmp_path, seed=1, **kw):
    return Stapler.from_service(svc, clock=clock, rand=random.Random(seed).random,
                                store=StapleStore(str(tmp_path / "store")), **kw)


def cached(svc, st, now):
    e = svc.lookup(st.info, now=now)
    return e


def test_prefetch_fetches_each_certificate_once_and_seeds_the_cache(tmp_path, pki, responder, clock, errlog):
    svc = make_service(make_config(tmp_path, pki, responder.url))
    stapler = stapler_for(svc, clock, tmp_path)
    out = stapler.prefetch()
    assert sorted(out.values()) == [FETCHED] * 4
    assert [responder.count(s) for s in serials(pki)] == [1, 1, 1, 1]
    for st in stapler.states.values():
        e = cached(svc, st, clock())
        assert e is not None and e.flag == entry.VALID and e.der == st.record.der
        assert st.record.requests == 1 and st.record.cert_status == "good"
        # cached until nextUpdate - skew, far beyond StandardCacheTimeout (3600)
        assert cached(svc, st, clock() + DAY) is not None
    assert "HP04801" in errlog.ids() and errlog.ids().count("HP04802") == 4
    # the helper runs as User/Group (nobody/nogroup here): the server hands the store over
    import os
    from httpd_py.mpm import privileges
    creds = privileges.resolve(None, None)
    assert privileges.hand_over(stapler.store_paths(), creds) == []
    if os.geteuid() == 0:
        st_ = os.stat(tmp_path / "store")
        assert (st_.st_uid, st_.st_gid) == (creds.uid, creds.gid)


def test_one_request_per_certificate_per_window_for_a_week(tmp_path, pki, responder, clock):
    svc = make_service(make_config(tmp_path, pki, responder.url))
    stapler = stapler_for(svc, clock, tmp_path)
    stapler.prefetch()
    fetch_times = {s: [clock()] for s in serials(pki)}
    last = {s: 1 for s in serials(pki)}
    for _ in range(int(7 * DAY / 600)):
        clock.advance(600)
        stapler.run_pass(stapler.due(clock()), None)
        for s in serials(pki):
            if responder.count(s) != last[s]:
                assert responder.count(s) == last[s] + 1
                last[s] = responder.count(s)
                fetch_times[s].append(clock())
    for s, ts in fetch_times.items():
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        # 2-day responses, renewed when half is left: once a day (+ jitter, + the 10-min step)
        assert 6 <= len(gaps) <= 7, gaps
        assert all(DAY - 600 <= g <= 1.1 * DAY + 600 for g in gaps), gaps


def test_keep_last_good_through_an_outage_then_error_entry_when_nothing_is_left(
        tmp_path, pki, responder, clock, errlog):
    svc = make_service(make_config(tmp_path, pki, responder.url))
    stapler = stapler_for(svc, clock, tmp_path)
    stapler.prefetch()
    good = {k: st.record.der for k, st in stapler.states.items()}
    responder.mode = "tryLater"
    outcomes = []
    # 2-day validity, skew 300: serve_until = fetch - 60 + 2d - 300; walk past it
    for _ in range(int(2 * DAY / 600)):
        clock.advance(600)
        outcomes += stapler.run_pass(stapler.due(clock()), None).values()
        for k, st in stapler.states.items():
            e = cached(svc, st, clock())
            if st.servable(clock()):
                # the good response is never displaced by tryLater
                assert e is not None and e.flag == entry.VALID and e.der == good[k]
    assert KEPT in outcomes and FAILED in outcomes
    assert "HP04803" in errlog.ids() and "HP04804" in errlog.ids()
    for st in stapler.states.values():
        assert not st.servable(clock())
        e = cached(svc, st, clock())
        # nothing valid left: Apache's FakeTryLater error entry (flag 0, tryLater DER)
        assert e is not None and e.flag == entry.ERROR
        assert st.record.last_error and st.record.failures > 1
    # backoff: far fewer attempts than 10-minute steps (288), capped at ErrorCacheTimeout
    tries = max(responder.count(s) for s in serials(pki)) - 1
    assert tries < 2 * DAY / 600 + 10
    # back: one good fetch per certificate, and the next refresh is a window away
    responder.mode = "normal"
    clock.advance(600)
    out = stapler.run_pass(stapler.due(clock()), None)
    assert set(out.values()) == {FETCHED}
    for st in stapler.states.values():
        assert cached(svc, st, clock()).flag == entry.VALID
        assert st.record.failures == 0 and st.record.last_error is None
        assert st.next_at > clock() + 0.9 * DAY


def test_backoff_is_exponential_and_capped_by_error_cache_timeout(tmp_path, pki, responder, clock):
    svc = make_service(make_config(tmp_path, pki, responder.url, names=("a.test",), kinds=("rsa",),
                                   error_cache_timeout=120))
    responder.mode = "internalError"
    stapler = stapler_for(svc, clock, tmp_path)
    stapler.prefetch()
    st = next(iter(stapler.states.values()))
    gaps = []
    for _ in range(8):
        before = clock()
        clock.now = st.next_at
        gaps.append(round(clock() - before))
        stapler.run_pass(stapler.due(clock()), None)
    assert st.record.failures == 9
    # the waits double from 5 s (shortened by <= 10 % jitter) and stop at the 120 s cap
    for g, full in zip(gaps, (5, 10, 20, 40, 80, 120, 120, 120)):
        assert 0.9 * full - 1 <= g <= full, gaps


def test_restart_loads_staples_from_the_store_without_asking(tmp_path, pki, responder, clock, errlog):
    cfg = make_config(tmp_path, pki, responder.url)
    stapler = stapler_for(make_service(cfg), clock, tmp_path)
    stapler.prefetch()
    first = {k: st.record.der for k, st in stapler.states.items()}
    responder.stop()                              # responder down for the restart
    (tmp_path / "staple.shm").unlink()            # and the cache gone too: only the store is left
    clock.advance(3600)
    svc2 = make_service(cfg)
    s2 = stapler_for(svc2, clock, tmp_path)
    out = s2.prefetch()
    assert out == {}                              # nothing needed fetching
    for k, st in s2.states.items():
        assert st.record.der == first[k] and st.servable(clock())
        e = cached(svc2, st, clock())
        assert e.flag == entry.VALID and e.der == first[k]
        assert st.record.requests == 1            # counters survive restarts
    assert errlog.ids().count("HP04808") == 4


def test_stored_responses_are_checked_again_on_load(tmp_path, pki, responder, clock, errlog):
    cfg = make_config(tmp_path, pki, responder.url)
    stapler = stapler_for(make_service(cfg), clock, tmp_path)
    stapler.prefetch()
    store = StapleStore(str(tmp_path / "store"))
    keys = list(stapler.states)
    a, b = keys[0], keys[1]
    # swap the response of certificate b into a's record: CertID mismatch
    rec_a, rec_b = store.load(a), store.load(b)
    rec_a.der = rec_b.der
    store.save(rec_a)
    # corrupt c's record
    (tmp_path / "store" / (keys[2].hex() + ".json")).write_text("{garbage")
    (tmp_path / "staple.shm").unlink()
    responder.reset_counts()
    s2 = stapler_for(make_service(cfg), clock, tmp_path)
    s2.load(clock())
    assert not s2.states[a].servable(clock())     # mismatched: not served
    assert not s2.states[keys[2]].servable(clock())
    assert s2.states[b].servable(clock()) and s2.states[keys[3]].servable(clock())
    assert errlog.ids().count("HP04807") >= 2
    # and an expired stored response is never served either
    clock.advance(2 * DAY)
    s3 = stapler_for(make_service(cfg), clock, tmp_path)
    s3.load(clock())
    assert not any(st.servable(clock()) for st in s3.states.values())


def test_a_second_stapler_adopts_instead_of_asking(tmp_path, pki, responder, clock, errlog):
    """Two staplers over one shared cache (a graceful restart's overlap, or a fleet):
    the one that finds a fresher response in the cache adopts it."""
    cfg = make_config(tmp_path, pki, responder.url)
    svc = make_service(cfg)
    s1 = stapler_for(svc, clock, tmp_path, seed=1)
    s1.prefetch()
    s2 = stapler_for(svc, clock, tmp_path / "other", seed=2)
    s2.store = None
    s2.load(clock())
    assert all(st.servable(clock()) for st in s2.states.values())
    # window opens: s1 refreshes first, s2 finds the new response and adopts it
    clock.advance(1.2 * DAY)
    assert set(s1.run_pass(s1.due(clock()), None).values()) == {FETCHED}
    assert set(s2.run_pass(s2.due(clock()), None).values()) == {ADOPTED}
    assert [responder.count(s) for s in serials(pki)] == [2, 2, 2, 2]
    assert "HP04805" in errlog.ids()


def test_must_staple_without_a_staple_logs_an_error_at_start(tmp_path, pki, responder, clock, errlog):
    responder.mode = "hang"
    cfg = make_config(tmp_path, pki, responder.url, names=("ms.test", "a.test"), kinds=("ec",),
                      must_staple="strict", responder_timeout=0.5)
    stapler = stapler_for(make_service(cfg), clock, tmp_path)
    stapler.prefetch()
    text = errlog.text()
    assert errlog.ids().count("HP04810") == 1      # ms.test only, not a.test
    assert "ms.test" in text.split("HP04810")[1].splitlines()[0]


def test_cache_loss_is_repaired_by_reseed_and_by_a_failed_refresh(tmp_path, pki, responder, clock, errlog):
    svc = make_service(make_config(tmp_path, pki, responder.url))
    stapler = stapler_for(svc, clock, tmp_path)
    stapler.prefetch()
    sts = list(stapler.states.values())
    for st in sts:
        svc.cache.remove(st.info.key)           # e.g. redis restarted
    assert stapler.reseed(clock()) == 4
    assert all(cached(svc, st, clock()).der == st.record.der for st in sts)
    assert stapler.reseed(clock()) == 0        # nothing missing: nothing written
    assert errlog.ids().count("HP04817") == 4
    # during an outage the failed refresh also puts the kept response back
    svc.cache.remove(sts[0].info.key)
    responder.mode = "tryLater"
    clock.advance(1.2 * DAY)
    assert stapler.refresh_one(sts[0]) == KEPT
    assert cached(svc, sts[0], clock()).der == sts[0].record.der


def test_a_due_response_from_the_fleet_is_kept_when_our_own_fetch_fails(tmp_path, pki, responder, clock):
    """Server B has nothing; the shared cache holds A's response, already in its renew window;
    B's fetch fails: B must keep A's good response, not overwrite it with an error entry."""
    svc = make_service(make_config(tmp_path, pki, responder.url, names=("a.test",), kinds=("rsa",)))
    a = stapler_for(svc, clock, tmp_path / "a")
    a.prefetch()
    good = next(iter(a.states.values())).record.der
    clock.advance(1.2 * DAY)                      # in the renew window
    responder.mode = "hang"
    b = stapler_for(svc, clock, tmp_path / "b")
    st = next(iter(b.states.values()))
    assert b.refresh_one(st) == KEPT
    e = cached(svc, st, clock())
    assert e.flag == entry.VALID and e.der == good


def test_certificates_without_a_responder_are_not_refreshed(tmp_path, pki, clock):
    """No AIA OCSP URL and no SSLStaplingForceURL (most public certificates since 2025): the
    certificate is in the stapling table (certinfo logs it once) but the stapler leaves it."""
    import dataclasses
    from httpd_py.devtools.pki import make_leaf
    leaf = make_leaf(pki, "nourl.test", "ec", suffix="-nourl")      # no ocsp_urls
    cfg = make_config(tmp_path, pki, None, names=("a.test",), kinds=("ec",))
    v = cfg.vhosts[0]
    v = dataclasses.replace(v, server_name="nourl.test", ssl=dataclasses.replace(
        v.ssl, certificates=(dataclasses.replace(v.ssl.certificates[0], cert_file=str(leaf.cert_file),
                                                 key_file=str(leaf.key_file)),)))
    svc = make_service(dataclasses.replace(cfg, vhosts=(v,)))
    assert len(svc.table.all()) == 1
    stapler = stapler_for(svc, clock, tmp_path)
    assert stapler.states == {}
    assert stapler.prefetch() == {}


def test_refuse_only_for_must_staple_certificates_in_strict_mode(tmp_path, pki, responder, clock, errlog):
    cfg = make_config(tmp_path, pki, responder.url, names=("ms.test", "a.test"), kinds=("ec",),
                      must_staple="strict")
    svc = make_service(cfg)
    stapler = stapler_for(svc, clock, tmp_path)
    ms_vhost, a_vhost = cfg.vhosts
    by_name = {st.info.cert.subject.rfc4514_string().split(",")[0]: st for st in stapler.states.values()}
    ms, a = by_name["CN=ms.test"], by_name["CN=a.test"]
    assert stapler.refuse(ms.info, ms_vhost) is True
    assert stapler.refuse(ms.info, ms_vhost) is True
    assert stapler.refuse(a.info, a_vhost) is False
    warn_cfg = replace_stapling(cfg, must_staple="warn")
    assert stapler.refuse(ms.info, warn_cfg.vhosts[0]) is False
    assert errlog.ids().count("HP04816") == 1    # rate-limited


def test_attach_in_service_init_prefetches_and_registers_the_helper(tmp_path, pki, responder):
    from httpd_py.stapling.service import StaplingService
    from httpd_py.stapling.stapler import attach
    svc = StaplingService.from_config(make_config(tmp_path, pki, responder.url,
                                                  store_dir=str(tmp_path / "st")))
    svc.init(attach=attach)                        # as the server wires it
    assert svc.background and svc.stapler is not None
    assert [name for name, _ in svc.helpers()] == ["ssl-stapler"]
    assert responder.requests == 4                 # the prefetch, before any worker exists
    assert len(list(StapleStore(str(tmp_path / "st")).keys())) == 4


def test_attach_leaves_on_demand_configurations_alone(tmp_path, pki, responder):
    from httpd_py.stapling.service import StaplingService
    from httpd_py.stapling.stapler import attach
    svc = StaplingService.from_config(make_config(tmp_path, pki, responder.url, refresh="on-demand"))
    svc.init(attach=attach)
    assert not svc.background and svc.stapler is None and svc.helpers() == []
    assert responder.requests == 0


def test_records_of_unconfigured_certificates_are_pruned_a_week_after_expiry(tmp_path, pki, responder, clock, errlog):
    cfg = make_config(tmp_path, pki, responder.url)
    s1 = stapler_for(make_service(cfg), clock, tmp_path)
    s1.prefetch()
    store = StapleStore(str(tmp_path / "store"))
    assert len(list(store.keys())) == 4
    (tmp_path / "store" / ("ab" * 20 + ".json")).write_text("{not json")   # unreadable: kept
    only_a = make_config(tmp_path, pki, responder.url, names=("a.test",))
    clock.advance(2 * DAY + 6 * DAY)               # b's responses expired 6 days ago: kept
    stapler_for(make_service(only_a), clock, tmp_path).load()
    assert len(list(store.keys())) == 5
    clock.advance(2 * DAY)                         # 8 days: b's records go
    stapler_for(make_service(only_a), clock, tmp_path).load()
    keys = list(store.keys())
    assert len(keys) == 3 and bytes.fromhex("ab" * 20) in keys
    assert errlog.ids().count("HP04819") == 2


def test_certificates_the_prefetch_budget_does_not_reach_are_stapled_in_the_first_pass(
        tmp_path, pki, clock, errlog):
    """Issue: certificates the pre-start fetch did not reach within its deadline were left
    marked in flight, so the helper never fetched them.  One fetch at a time, each taking 0.7 s,
    against a 1 s responder timeout (a 2 s prefetch budget): six certificates cannot all be
    reached before fork; the first refresh pass must staple every one that is left."""
    with ClockedResponder.for_pki(pki, clock=clock, validity=dt.timedelta(days=2),
                                  delay=0.7) as slow:
        cfg = make_config(tmp_path, pki, slow.url, names=("a.test", "b.test", "ms.test"),
                          responder_timeout=1.0)
        svc = make_service(cfg)
        stapler = stapler_for(svc, clock, tmp_path, max_parallel=1)
        out = stapler.prefetch()
        left = [k for k, o in out.items() if o != FETCHED]
        assert 0 < len(left) < len(stapler.states), out
        assert not any(st.in_flight for st in stapler.states.values())
        assert "left to the background stapler" in errlog.text()
        # the helper's first pass, at the same moment: everything not stapled is due
        due = stapler.due(clock())
        assert {st.info.key for st in due} == set(left)
        outcomes = stapler.run_pass(due, None)
        assert set(outcomes.values()) == {FETCHED}
        assert all(st.servable(clock()) for st in stapler.states.values())
        for st in stapler.states.values():
            e = cached(svc, st, clock())
            assert e is not None and e.flag == entry.VALID and e.der == st.record.der
