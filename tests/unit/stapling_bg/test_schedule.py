"""schedule: renew window, jitter, floor, backoff and keep-last-good over a fake clock (pure)."""
from __future__ import annotations

import random

import pytest

from httpd_py.config.model import StaplingConfig
from httpd_py.stapling import schedule as S

T0 = 1_800_000_000.0
DAY = 86400.0
P = S.Policy()  # Apache defaults: skew 300, standard 3600, error 600, half-span window


def times(this=T0, nxt=T0 + 7 * DAY, fetched=T0):
    return S.Times(fetched_at=fetched, this_update=this, next_update=nxt)


def test_policy_from_config_reads_every_field():
    st = StaplingConfig(renew_window=7200, standard_cache_timeout=100, error_cache_timeout=50,
                        response_time_skew=10, response_max_age=999)
    assert S.Policy.from_config(st) == S.Policy(7200, 100, 50, 10, 999)
    assert S.Policy.from_config(StaplingConfig()) == P


@pytest.mark.parametrize("t, policy, expected", [
    # nextUpdate minus skew
    (times(), P, T0 + 7 * DAY - 300),
    # MaxAge bounds it when shorter
    (times(), S.Policy(response_max_age=DAY), T0 + DAY),
    # no nextUpdate: 12 h (mod_md), or MaxAge when set, or twice StandardCacheTimeout when larger
    (times(nxt=None), P, T0 + 12 * 3600),
    (times(nxt=None), S.Policy(response_max_age=600), T0 + 600),
    (times(nxt=None), S.Policy(standard_cache_timeout=DAY), T0 + 2 * DAY),
])
def test_serve_until(t, policy, expected):
    assert S.serve_until(t, policy) == expected


def test_is_servable_edges():
    t = times()
    end = S.serve_until(t, P)
    assert S.is_servable(t, P, T0)
    assert S.is_servable(t, P, end - 0.001)
    assert not S.is_servable(t, P, end)
    assert not S.is_servable(t, P, end + 1)
    # thisUpdate in the future beyond the skew: not yet
    future = times(this=T0 + 1000, nxt=T0 + DAY)
    assert not S.is_servable(future, P, T0)
    assert S.is_servable(future, P, T0 + 700)


@pytest.mark.parametrize("t, policy, start", [
    # default: half of the thisUpdate..nextUpdate span left
    (times(), P, T0 + 3.5 * DAY),
    # SSLStaplingRenewWindow: that long before serve_until
    (times(), S.Policy(renew_window=int(DAY)), T0 + 7 * DAY - 300 - DAY),
    # no nextUpdate: StandardCacheTimeout after the fetch
    (times(nxt=None, fetched=T0 + 50), P, T0 + 50 + 3600),
    # a window longer than the response's life: at once (then the floor applies)
    (times(nxt=T0 + 3600), S.Policy(renew_window=int(DAY)), T0),
])
def test_renew_start(t, policy, start):
    assert S.renew_start(t, policy) == start


def test_renew_at_jitter_stays_in_first_tenth_of_window():
    t = times()
    start, end = S.renew_start(t, P), S.serve_until(t, P)
    assert S.renew_at(t, P, 0.0) == start
    rng = random.Random(7)
    for _ in range(200):
        at = S.renew_at(t, P, rng.random())
        assert start <= at < start + 0.1 * (end - start)
    # jitter actually spreads
    ats = {round(S.renew_at(t, P, r / 10)) for r in range(10)}
    assert len(ats) == 10


def test_renew_at_floor_prevents_spinning_on_nearly_expired_responses():
    # responder hands out a response whose renew window is already open at fetch time
    fetched = T0 + 3000
    t = times(this=T0, nxt=T0 + 3900, fetched=fetched)     # serve_until T0+3600, window opened T0+1950
    assert S.renew_start(t, P) < fetched
    at = S.renew_at(t, P, 0.0)
    assert at == fetched + S.min_interval(t, P) == fetched + 60
    # short-lived responses get a proportionally short floor (a tenth of the life left), >= 1 s
    short = times(this=T0 - 1000, nxt=T0 + 300 + 20, fetched=T0)
    assert S.min_interval(short, P) == 2.0
    tiny = times(this=T0, nxt=T0 + 300 + 2, fetched=T0)
    assert S.min_interval(tiny, P) == 1.0


def test_backoff_doubles_from_base_and_is_capped_by_error_cache_timeout():
    delays = [S.backoff(n, P, 0.0) for n in range(1, 10)]
    assert delays == [5, 10, 20, 40, 80, 160, 320, 600, 600]
    # jitter only shortens, by at most 10 %
    for n in range(1, 10):
        assert 0.9 * delays[n - 1] - 1e-9 <= S.backoff(n, P, 0.999) <= delays[n - 1]
    # a tiny ErrorCacheTimeout caps at 1 s: never a busy loop
    assert S.backoff(5, S.Policy(error_cache_timeout=0), 0.0) == 1.0
    # absurd failure counts do not overflow
    assert S.backoff(10_000, P, 0.5) == 600
    assert S.retry_at(3, T0, P, 0.0) == T0 + 20


@pytest.mark.parametrize("new_good, last, now, expected", [
    (True, None, T0, S.REPLACE),
    (True, times(), T0 + DAY, S.REPLACE),
    # a failure (error, tryLater, timeout, bad signature) never displaces a valid response
    (False, times(), T0 + DAY, S.KEEP),
    (False, times(), T0 + 7 * DAY - 301, S.KEEP),
    # once the last good one is past nextUpdate - skew, Apache's error handling applies
    (False, times(), T0 + 7 * DAY - 300, S.STORE_ERROR),
    (False, None, T0, S.STORE_ERROR),
])
def test_after_fetch_keeps_last_good(new_good, last, now, expected):
    assert S.after_fetch(new_good, last, P, now) == expected


def test_one_week_of_fake_clock_one_fetch_per_window_and_backoff_during_outage():
    """Drive the schedule like the stapler does, over a week, with a 2-day outage."""
    rng = random.Random(1)
    span = 2 * DAY
    now = T0
    outage = (T0 + 3 * DAY, T0 + 5 * DAY)
    last = None
    failures = 0
    fetches = good_fetches = 0
    served_gaps = 0
    next_at = now
    while now < T0 + 7 * DAY:
        if now >= next_at:
            fetches += 1
            if outage[0] <= now < outage[1]:
                failures += 1
                assert S.after_fetch(False, last, P, now) in (S.KEEP, S.STORE_ERROR)
                next_at = S.retry_at(failures, now, P, rng.random())
            else:
                failures = 0
                good_fetches += 1
                last = times(this=now - 60, nxt=now - 60 + span, fetched=now)
                next_at = S.renew_at(last, P, rng.random())
        if last is None or not S.is_servable(last, P, now):
            served_gaps += 1
        now += 60
    # outside the outage: one fetch per renew window (a day, half of a 2-day span)
    assert 5 <= good_fetches <= 6
    # during a 2-day outage the backoff reaches its 600 s cap: about 2*86400/600 tries, not 2880
    assert fetches - good_fetches < 2 * DAY / 600 + 20
    # the last good response (fetched ~1 day before the outage, valid 2 days) covered the outage
    # until nextUpdate - skew: gaps only in the last part of the outage
    assert served_gaps < DAY / 60
