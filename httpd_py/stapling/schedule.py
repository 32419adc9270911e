"""When to fetch a staple again: renew window, jitter, backoff, keep-last-good.  Pure.

Everything here is a function of explicit inputs (the response's times, the vhost's stapling
settings, ``now`` and a random number in [0, 1)); nothing reads a clock, a cache or the network.
The background stapler (``stapler.py``) asks these functions and acts on the answers.

Time line of one good response (seconds since the epoch)::

    thisUpdate          renew_start   renew_at        serve_until     nextUpdate
        |------------------|--jitter--|------ ... --------|--- skew ---|
        fetched                       ^ the stapler asks again from here on; retries back off
                                      while the last good response keeps being served until
                                      serve_until (nextUpdate minus SSLStaplingResponseTimeSkew)

* renew_start: SSLStaplingRenewWindow seconds before serve_until when set, otherwise when half
  of the thisUpdate..nextUpdate span is left (Caddy's rule; mod_md uses a third).  A response
  without nextUpdate renews SSLStaplingStandardCacheTimeout after it was fetched.
* jitter: renew_at lies in the first ``JITTER`` part of the window, so servers started together
  (a fleet) spread their requests; the fleet lock then makes sure only one of them asks.
* a floor (``min_interval``): never ask again sooner than a tenth of the life the response had
  left when fetched (1 s .. 60 s), so a responder handing out nearly-expired responses cannot
  make us spin.
* backoff after failures: BACKOFF_BASE * 2**(n-1), capped at SSLStaplingErrorCacheTimeout.
"""
from __future__ import annotations

from dataclasses import dataclass

#: part of the renew window over which the renewal time is spread
JITTER = 0.1
#: first retry after a failure, seconds
BACKOFF_BASE = 5.0
#: a response without nextUpdate is served at most this long after thisUpdate, unless
#: SSLStaplingResponseMaxAge says otherwise (mod_md's 12 h rule)
NO_NEXT_UPDATE_LIFETIME = 12 * 3600


@dataclass(frozen=True)
class Policy:
    """The stapling settings the schedule needs (from one vhost's ``StaplingConfig``)."""
    renew_window: int | None = None        # SSLStaplingRenewWindow (None: half the span)
    standard_cache_timeout: int = 3600     # refresh interval when a response has no nextUpdate
    error_cache_timeout: int = 600         # backoff cap
    response_time_skew: int = 300
    response_max_age: int | None = None

    @classmethod
    def from_config(cls, st) -> "Policy":
        """From a ``httpd_py.config.model.StaplingConfig``."""
        return cls(renew_window=st.renew_window, standard_cache_timeout=st.standard_cache_timeout,
                   error_cache_timeout=st.error_cache_timeout,
                   response_time_skew=st.response_time_skew, response_max_age=st.response_max_age)


@dataclass(frozen=True)
class Times:
    """The times of one good response: when it was fetched and what it says."""
    fetched_at: float
    this_update: float
    next_update: float | None


def serve_until(t: Times, p: Policy) -> float:
    """Until when this response may be stapled (exclusive).

    nextUpdate minus the skew, so a client whose clock runs ``skew`` ahead still sees it valid;
    without nextUpdate, MaxAge after thisUpdate or NO_NEXT_UPDATE_LIFETIME.  MaxAge also bounds
    a response that has a nextUpdate.
    """
    if t.next_update is not None:
        end = t.next_update - p.response_time_skew
    else:
        end = t.this_update + (p.response_max_age if p.response_max_age is not None
                               else max(NO_NEXT_UPDATE_LIFETIME, 2 * p.standard_cache_timeout))
    if p.response_max_age is not None:
        end = min(end, t.this_update + p.response_max_age)
    return end


def is_servable(t: Times, p: Policy, now: float) -> bool:
    """True when the response may be stapled at ``now``."""
    return now < serve_until(t, p) and t.this_update <= now + p.response_time_skew


def min_interval(t: Times, p: Policy) -> float:
    """The shortest time between two fetches: a tenth of the life left at the fetch, 1..60 s."""
    left = serve_until(t, p) - t.fetched_at
    return min(60.0, max(1.0, left / 10))


def renew_start(t: Times, p: Policy) -> float:
    """When the renew window opens (before jitter and the floor)."""
    end = serve_until(t, p)
    if t.next_update is None:
        start = t.fetched_at + p.standard_cache_timeout
    elif p.renew_window is not None:
        start = end - p.renew_window
    else:
        start = t.next_update - (t.next_update - t.this_update) / 2
    return min(max(start, t.this_update), end)


def renew_at(t: Times, p: Policy, rand: float) -> float:
    """When to fetch again after a good response; ``rand`` in [0, 1) places it in the jitter."""
    end = serve_until(t, p)
    start = renew_start(t, p)
    at = start + JITTER * max(0.0, end - start) * rand
    return max(at, t.fetched_at + min_interval(t, p))


def backoff(failures: int, p: Policy, rand: float) -> float:
    """Seconds to wait after ``failures`` (>= 1) failed fetches in a row.

    BACKOFF_BASE doubling, with up to -JITTER of jitter, capped at SSLStaplingErrorCacheTimeout
    (but at least one second, so a zero timeout cannot make the stapler spin).
    """
    n = max(1, failures)
    delay = BACKOFF_BASE * (2 ** min(n - 1, 30))
    delay *= 1.0 - JITTER * rand
    return max(1.0, min(float(p.error_cache_timeout), delay))


def retry_at(failures: int, now: float, p: Policy, rand: float) -> float:
    """When to try again after the ``failures``-th failure in a row at ``now``."""
    return now + backoff(failures, p, rand)


# What to do with the cache after a fetch (keep-last-good).
REPLACE = "replace"          # store the new response
KEEP = "keep"                # leave the last good response in place; count the failure
STORE_ERROR = "store-error"  # nothing valid is left: Apache's error handling applies


def after_fetch(new_is_good: bool, last_good: Times | None, p: Policy, now: float) -> str:
    """Keep-last-good: a good response is never replaced by an error, tryLater or nothing.

    ``new_is_good``: the fetch gave a response the verdict accepts for stapling as valid.
    ``last_good``: the response currently stored as good (None when there is none).
    """
    if new_is_good:
        return REPLACE
    if last_good is not None and is_servable(last_good, p, now):
        return KEEP
    return STORE_ERROR
