"""The background stapler: fetches every staple before the first client, then keeps them fresh.

``SSLStaplingRefresh background`` (the default).  Workers only read the stapling cache; all
responder I/O happens here, in two places:

* ``prefetch`` in the master before the workers fork (``attach``, which the server hands to
  the stapling service's ``init``): load the staple store, check each stored response again (CertID,
  signature, times: an expired or mismatched one is never served), seed the cache with the
  good ones, then fetch what is still missing, in parallel, bounded by the responder timeout.
  So the first client after a start or restart finds its staple, even with the responder down.
* ``run`` in a helper process the master supervises (``service.helpers()``): sleeps until the
  next certificate is due (``schedule``), fetches at most MAX_PARALLEL certificates at a time and
  each certificate at most once at a time, and stores the outcome.

One refresh of one certificate (``refresh_one``)::

    cache holds a newer valid response (another process or server fetched it)? adopt it, done
    take the per-certificate refresh lock: the server's ssl-stapling-refresh mutex, and with a
    redis/memcache SSLStaplingCache the fleet-wide lock (FleetLock); busy: look again shortly;
    the fleet's server unreachable: go on under this server's mutex alone (HP04820), and
    rejoin the fleet-wide lock as soon as it answers again (HP04821)
    look in the cache again (double check)
    refresh.refresh, the core the on-demand path uses too: fetch (one total deadline:
    SSLStaplingResponderTimeout), validate (verdict), store:
    valid          -> cache it until nextUpdate - skew, store it on disk, renew in the window
    not valid, the last good one is still servable -> keep it; back off (keep-last-good)
    not valid, nothing left -> Apache's error entry (FakeTryLater / ReturnResponderErrors
                       apply), back off

With a network SSLStaplingCache every staple stored or adopted also goes to the service's
local shared-memory tier, which is what the workers read: a redis outage costs neither a
staple nor a handshake's time.

Log ids HP04800-HP04899 (module "ssl").
"""
from __future__ import annotations

import os
import random
import select
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from httpd_py import log, logids
from httpd_py.config.model import ServerConfig, StaplingConfig
from httpd_py.socache.fleetlock import BUSY as BUSY_LOCK, UNREACHABLE, FleetLock
from httpd_py.stapling import entry, muststaple, schedule
from httpd_py.stapling import refresh as refreshlib
from httpd_py.stapling import verdict as verdictlib
from httpd_py.stapling.certinfo import CertInfo
from httpd_py.stapling.fetch import Fetcher
from httpd_py.stapling.store import Record, StapleStore, default_dir

if TYPE_CHECKING:       # the stapler works on the service the server made (no import cycle)
    from httpd_py.stapling.service import StaplingService

# Everything the helper needs is imported here, in the master: the helper runs as User/Group,
# which may not be able to read the Python installation to import anything lazily.

MOD = "ssl"
#: fetches in parallel (mod_md uses 6)
MAX_PARALLEL = 6
#: longest sleep of the helper loop, so it notices a vanished master
MAX_SLEEP = 5.0
#: when the refresh lock is busy elsewhere, look at the cache again after this long
BUSY_RETRY = 2.0
#: how often the helper checks that the cache still holds every last-good response
RESEED_INTERVAL = 30.0
#: records of certificates no longer configured are kept this long after their response expired
KEEP_EXPIRED = 7 * 86400.0

# Outcomes of refresh_one
FETCHED, ADOPTED, KEPT, FAILED, BUSY = "fetched", "adopted", "kept", "failed", "busy"


def _fmt(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"


@dataclass
class CertState:
    """The stapler's view of one certificate."""
    info: CertInfo
    scfg: StaplingConfig                  # of its first background vhost
    policy: schedule.Policy
    must_staple: bool
    record: Record
    good: schedule.Times | None = None    # times of the last good response (record.der)
    next_at: float = 0.0
    in_flight: bool = False
    busy: int = 0                         # refresh locks found busy in a row
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def label(self) -> str:
        return self.info.label or self.record.subject

    def servable(self, now: float) -> bool:
        return self.good is not None and schedule.is_servable(self.good, self.policy, now)


def background_vhosts(cfg: ServerConfig) -> list:
    """Vhosts that staple with SSLStaplingRefresh background."""
    return [v for v in cfg.all_vhosts()
            if v.ssl.engine and v.ssl.stapling.enabled and v.ssl.stapling.refresh == "background"]


class Stapler:
    """Background refresh over a ``StaplingService`` (its table, cache, mutex and store)."""

    def __init__(self, service: StaplingService, *, store: StapleStore | None = None,
                 clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random,
                 fetcher_factory: Callable[[], Fetcher] | None = None,
                 fleet_lock: FleetLock | None = None, max_parallel: int = MAX_PARALLEL):
        self.service = service
        self.cfg = service.cfg
        self.store = store
        self.clock = clock
        self.rand = rand
        self.fetcher_factory = fetcher_factory or _default_fetcher
        self.fleet_lock = fleet_lock
        self.max_parallel = max(1, max_parallel)
        self._cache_lock = threading.Lock()   # one cache call at a time in this process
        self._local = threading.local()
        self._fetchers: list = []
        self._fetchers_lock = threading.Lock()
        self.states: dict[bytes, CertState] = {}
        self._refuse_logged: dict[bytes, float] = {}
        self._alone = False                   # the fleet lock's server is unreachable
        self._alone_lock = threading.Lock()
        self._created_pid = os.getpid()
        self._batch = False                   # prefetch: one directory fsync after the pass
        bg = background_vhosts(self.cfg)
        bg_ids = {id(v) for v in bg}
        for info in service.table.all():
            # the first background vhost that gives the certificate a responder (ForceURL is
            # per vhost); a certificate without any staples nothing (logged once by certinfo)
            vhosts = [v for v in service.table.vhosts_of(info.key)
                      if id(v) in bg_ids and info.urls_for(v.ssl.stapling)]
            if not vhosts:
                continue
            scfg = vhosts[0].ssl.stapling
            rec = Record(key=info.key, subject=info.cert.subject.rfc4514_string(),
                         serial=format(info.cert.serial_number, "X"),
                         responder=(info.urls_for(scfg) or ("",))[0])
            self.states[info.key] = CertState(
                info=info, scfg=scfg, policy=schedule.Policy.from_config(scfg),
                must_staple=muststaple.requires_staple(info.cert), record=rec)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_service(cls, service: StaplingService, **kw) -> "Stapler":
        """A stapler with the store directory and fleet lock the configuration asks for."""
        cfg = service.cfg
        if "store" not in kw:
            d = default_dir(cfg)
            kw["store"] = StapleStore(d) if d else None
        if "fleet_lock" not in kw:
            kw["fleet_lock"] = make_fleet_lock(cfg)
        return cls(service, **kw)

    # -- cache access (serialised: the ssl-stapling mutex is per process, not per thread) --

    def _lookup(self, st: CertState, now: float):
        """What a handshake would read (the local tier first)."""
        with self._cache_lock:
            return self.service.lookup(st.info, now=now)

    def _lookup_shared(self, st: CertState, now: float):
        """What the fleet holds: the configured cache (redis, memcache), not the local tier."""
        with self._cache_lock:
            return self.service.lookup_shared(st.info, now=now)

    def _store(self, st: CertState, flag: int, der: bytes, now: float, expires_at: float,
               **tiers: bool) -> bool:
        with self._cache_lock:
            return self.service.store(st.info, flag, der, st.scfg, now=now,
                                      expires_at=expires_at, **tiers)

    def _save(self, st: CertState) -> None:
        if self.store is None:
            return
        try:
            self.store.save(st.record, sync_dir=not self._batch)
        except OSError as e:
            log.error_log.warn(MOD, logids.STAPLER_SAVE_FAILED,
                               f"cannot save staple record for {st.label} in "
                               f"{self.store.directory}: {e.strerror or e}")

    def _fetcher(self):
        f = getattr(self._local, "fetcher", None)
        if f is None:
            f = self.fetcher_factory()
            self._local.fetcher = f
            with self._fetchers_lock:
                self._fetchers.append(f)
        return f

    def close_fetchers(self) -> None:
        with self._fetchers_lock:
            for f in self._fetchers:
                try:
                    f.close()
                except Exception:
                    pass
            self._fetchers.clear()
        self._local = threading.local()

    # -- judging responses ----------------------------------------------------------------

    def _judge(self, st: CertState, der: bytes, now: float) -> verdictlib.Verdict:
        return refreshlib.judge(st.info, der, st.scfg, now)

    def _accept_good(self, st: CertState, der: bytes, v, now: float, *, fetched_at: float) -> None:
        st.good = schedule.Times(fetched_at=fetched_at, this_update=v.this_update,
                                 next_update=v.next_update)
        r = st.record
        r.der, r.fetched_at = der, fetched_at
        r.this_update, r.next_update, r.cert_status = v.this_update, v.next_update, v.kind

    def _cached_good(self, st: CertState, now: float):
        """A valid response in the (shared) cache newer than ours: (der, verdict) or None."""
        e = self._lookup_shared(st, now)
        if e is None or e.flag != entry.VALID or not e.der:
            return None
        if st.record.der is not None and e.der == st.record.der:
            return None
        v = self._judge(st, e.der, now)
        if not v.valid or v.this_update is None:
            return None
        if st.good is not None and v.this_update <= st.good.this_update:
            return None
        times = schedule.Times(fetched_at=now, this_update=v.this_update, next_update=v.next_update)
        if not schedule.is_servable(times, st.policy, now):
            return None
        return e.der, v

    # -- loading ---------------------------------------------------------------------------

    def load(self, now: float | None = None) -> int:
        """Seed states from the store (checked again) and the cache; return how many are servable."""
        now = self.clock() if now is None else now
        if self.store is not None:
            try:
                self.store.ensure()
            except Exception as e:
                log.error_log.warn(MOD, logids.STAPLER_STORE_UNUSABLE,
                                   f"staple store unusable, staples will not "
                                   f"survive restarts: {e}")
                self.store = None
        n = 0
        for st in self.states.values():
            self._load_one(st, now)
            if st.servable(now):
                n += 1
        self._prune(now)
        return n

    def _prune(self, now: float) -> None:
        """Drop records of certificates no longer configured once their response has been
        expired for KEEP_EXPIRED (mod_md's MDStaplingKeepResponse); unreadable files stay."""
        if self.store is None:
            return
        for key in list(self.store.keys()):
            if key in self.states:
                continue
            try:
                rec = self.store.load(key)
            except ValueError:
                continue
            if rec is None or rec.next_update is None or rec.next_update + KEEP_EXPIRED > now:
                continue
            try:
                os.unlink(self.store.path(key))
                log.error_log.info(MOD, logids.STAPLER_RECORD_PRUNED,
                                   f"staple record {key.hex()} ({rec.subject}) "
                                   f"removed: certificate no longer configured, response expired "
                                   f"{_fmt(rec.next_update)}")
            except OSError:
                pass

    def _load_one(self, st: CertState, now: float) -> None:
        rec = None
        if self.store is not None:
            try:
                rec = self.store.load(st.info.key)
            except ValueError as e:
                log.error_log.warn(MOD, logids.STAPLER_RECORD_IGNORED,
                                   f"stored response for {st.label} ignored: {e}")
        if rec is not None:
            # counters and the last error survive; identity fields come from the certificate
            for name in ("last_attempt", "last_error", "failures", "requests"):
                setattr(st.record, name, getattr(rec, name))
            if rec.der:
                v = self._judge(st, rec.der, now)
                times = schedule.Times(fetched_at=rec.fetched_at or now,
                                       this_update=v.this_update or 0.0, next_update=v.next_update)
                if v.valid and schedule.is_servable(times, st.policy, now):
                    self._accept_good(st, rec.der, v, now, fetched_at=rec.fetched_at or now)
                    log.error_log.info(MOD, logids.STAPLER_RECORD_LOADED,
                                       f"stored OCSP response for {st.label} "
                                       f"loaded, valid until {_fmt(schedule.serve_until(times, st.policy))}")
                else:
                    why = v.reason or "no longer valid"
                    log.error_log.warn(MOD, logids.STAPLER_RECORD_IGNORED,
                                       f"stored response for {st.label} not "
                                       f"used: {why}")
        newer = self._cached_good(st, now)
        if newer is not None:
            self._accept_good(st, newer[0], newer[1], now, fetched_at=now)
        if st.good is not None:
            self._store(st, entry.VALID, st.record.der, now, schedule.serve_until(st.good, st.policy))
            st.next_at = schedule.renew_at(st.good, st.policy, self.rand())
        else:
            st.next_at = now
        st.record.next_refresh = st.next_at

    def store_paths(self) -> list[str]:
        """The staple store and its records: the helper, running as User/Group, writes them
        (the server hands them over through ``mpm.privileges``, as Apache gives its runtime
        files to User)."""
        if self.store is None:
            return []
        return [self.store.directory, *(self.store.path(k) for k in self.store.keys())]

    # -- one refresh -------------------------------------------------------------------------

    @contextmanager
    def _locks(self, st: CertState, timeout: float):
        """Hold the per-certificate refresh locks (server-wide, then fleet-wide); yield held."""
        with ExitStack() as stack:
            mutex = self.service.refresh_mutex
            if mutex is not None:
                if not stack.enter_context(mutex.hold(key=st.info.key, timeout=timeout)):
                    yield False
                    return
            if self.fleet_lock is not None:
                state = stack.enter_context(self.fleet_lock.acquire(st.info.key, timeout))
                if state == BUSY_LOCK:
                    yield False
                    return
                self._fleet_reached(state != UNREACHABLE, st)
            yield True

    def _fleet_reached(self, reachable: bool, st: CertState) -> None:
        """Log the fleet lock's server going away (refresh alone) and coming back, once each."""
        with self._alone_lock:
            if reachable == (not self._alone):
                return
            self._alone = not reachable
        if reachable:
            with self._cache_lock:
                self.service.shared_back()
            log.error_log.notice(MOD, logids.STAPLER_FLEET_BACK,
                                 f"fleet-wide refresh lock reachable again "
                                 f"(refreshing {st.label}): one refresh per certificate for the "
                                 f"whole fleet again")
        else:
            log.error_log.warn(MOD, logids.STAPLER_FLEET_UNREACHABLE,
                               f"fleet-wide refresh lock unreachable "
                               f"(refreshing {st.label}): this server refreshes on its own, one "
                               f"refresh at a time per certificate, until it is back")

    def refresh_one(self, st: CertState, now: float | None = None, lock_timeout: float = 0.0) -> str:
        """Bring one certificate's staple up to date (see the module docstring); an outcome.

        ``lock_timeout``: how long to wait for a refresh lock held elsewhere (the prefetch waits,
        then adopts what the holder fetched; the helper looks again later instead).
        """
        now = self.clock() if now is None else now
        if self._take_cached(st, now):
            return self._adopted(st)
        with self._locks(st, timeout=lock_timeout) as held:
            if not held:
                # under way elsewhere (or the fleet lock's server is unreachable): look again,
                # less often the longer it lasts
                wait = min(30.0, BUSY_RETRY * 2 ** min(st.busy, 4))
                st.busy += 1
                st.next_at = now + wait
                st.record.next_refresh = st.next_at
                log.error_log.debug(MOD, logids.STAPLER_BUSY_ELSEWHERE,
                                    f"refresh of {st.label} under way elsewhere; "
                                    f"looking again in {wait:g} s")
                return BUSY
            st.busy = 0
            now = self.clock()
            if self._take_cached(st, now):              # double check under the lock
                return self._adopted(st)
            return self._fetch_and_store(st, now)

    def _take_cached(self, st: CertState, now: float) -> bool:
        """Adopt a newer valid response from the (shared) cache; True when it needs no refresh.

        A newer response already in its renew window is adopted too (so a failed fetch keeps it
        rather than overwriting the fleet's good response with an error), but we still fetch.
        """
        newer = self._cached_good(st, now)
        if newer is None:
            return False
        der, v = newer
        self._accept_good(st, der, v, now, fetched_at=now)
        if self.service.local is not None:              # what this server's workers read
            self._store(st, entry.VALID, der, now, schedule.serve_until(st.good, st.policy),
                        shared=False)
        return now < schedule.renew_start(st.good, st.policy)

    def _adopted(self, st: CertState) -> str:
        st.busy = 0
        st.record.failures, st.record.last_error = 0, None
        st.next_at = schedule.renew_at(st.good, st.policy, self.rand())
        st.record.next_refresh = st.next_at
        self._save(st)
        log.error_log.info(MOD, logids.STAPLER_ADOPTED,
                           f"OCSP response for {st.label} fetched by another "
                           f"server or process adopted from the cache; next refresh {_fmt(st.next_at)}")
        return ADOPTED

    def reseed(self, now: float | None = None) -> int:
        """Put every servable last-good response back into the cache tiers that lost it (a
        redis or memcached restart, an eviction); leaves newer responses alone.  Count."""
        now = self.clock() if now is None else now
        n = 0
        for st in self.states.values():
            if st.in_flight or not st.servable(now):
                continue
            if self._ensure_cached(st, now):
                n += 1
                log.error_log.info(MOD, logids.STAPLER_RESEEDED,
                                   f"OCSP response for {st.label} was missing "
                                   f"from the stapling cache: stored it again")
        return n

    def _ensure_cached(self, st: CertState, now: float) -> bool:
        """Store the last good response in each tier without a valid entry; True if stored."""
        def missing(e) -> bool:
            return e is None or e.flag != entry.VALID or not e.der
        until = schedule.serve_until(st.good, st.policy)
        if self.service.local is None:
            if not missing(self._lookup(st, now)):
                return False
            return self._store(st, entry.VALID, st.record.der, now, until)
        with self._cache_lock:
            local_missing = missing(self.service.lookup_local(st.info, now))
        shared_missing = missing(self._lookup_shared(st, now))
        if not (local_missing or shared_missing):
            return False
        return self._store(st, entry.VALID, st.record.der, now, until,
                           local=local_missing, shared=shared_missing)

    def _fetch_and_store(self, st: CertState, now: float) -> str:
        """One refresh through the core (``refresh.refresh``), then the stapler's bookkeeping:
        the record, the schedule, keep-last-good, the log line."""
        scfg = st.scfg
        rec = st.record
        rec.last_attempt = now

        def valid_until(v: verdictlib.Verdict, t: float) -> float:
            return schedule.serve_until(schedule.Times(fetched_at=t, this_update=v.this_update,
                                                       next_update=v.next_update), st.policy)

        def keep(t: float) -> bool:
            return schedule.after_fetch(False, st.good, st.policy, t) == schedule.KEEP

        def store(flag: int, der: bytes, t: float, until: float) -> bool:
            return self._store(st, flag, der, t, until)

        out = refreshlib.refresh(st.info, scfg, fetcher=self._fetcher(), store=store,
                                 clock=self.clock,
                                 policy=refreshlib.Policy(valid_until=valid_until, keep=keep))
        rec.requests += sum(1 for a in out.attempts if a.result.method)
        now = self.clock()
        if out.valid:
            v = out.verdict
            self._accept_good(st, out.der, v, now, fetched_at=now)
            rec.failures, rec.last_error = 0, None
            until = out.expires_at
            st.next_at = schedule.renew_at(st.good, st.policy, self.rand())
            rec.next_refresh = st.next_at
            self._save(st)
            if v.kind == verdictlib.REVOKED:
                log.error_log.error(MOD, logids.STAPLER_REVOKED,
                                    f"OCSP responder says certificate {st.label} "
                                    f"(serial {rec.serial}) is REVOKED; stapling that answer")
            log.error_log.info(MOD, logids.STAPLER_FETCHED, f"OCSP response for {st.label} fetched "
                               f"({v.kind}, nextUpdate {_fmt(v.next_update)}), "
                               f"{'cached' if out.stored else 'NOT cached'} until {_fmt(until)}, "
                               f"next refresh {_fmt(st.next_at)}")
            return FETCHED
        # a failure of some kind
        error = out.describe()
        rec.failures += 1
        rec.last_error = error
        st.next_at = schedule.retry_at(rec.failures, now, st.policy, self.rand())
        if out.kept:
            self._ensure_cached(st, now)                # a tier lost it meanwhile
            rec.next_refresh = st.next_at
            self._save(st)
            log.error_log.warn(MOD, logids.STAPLER_REFRESH_FAILED,
                               f"OCSP refresh for {st.label} failed ({error}); "
                               f"still stapling the last good response, valid until "
                               f"{_fmt(schedule.serve_until(st.good, st.policy))}; "
                               f"retry {_fmt(st.next_at)}")
            return KEPT
        # the core stored the same error entry as on-demand mode
        st.good = None
        rec.next_refresh = st.next_at
        self._save(st)
        log.error_log.error(MOD, logids.STAPLER_NO_VALID_RESPONSE,
                            f"OCSP refresh for {st.label} failed ({error}) and no "
                            f"valid response is left; retry {_fmt(st.next_at)}")
        return FAILED

    # -- passes ------------------------------------------------------------------------------

    def due(self, now: float) -> list[CertState]:
        return [st for st in self.states.values() if not st.in_flight and st.next_at <= now]

    def run_pass(self, states: list[CertState], pool: ThreadPoolExecutor | None,
                 deadline: float | None = None) -> dict[bytes, str]:
        """Refresh ``states`` (in ``pool`` when given); wait for all; outcomes by key."""
        def one(st: CertState) -> str:
            try:
                if deadline is not None and time.monotonic() >= deadline:
                    # not reached in time (the prefetch's budget): left due, for the helper's
                    # first pass -- and no longer in flight, or no pass would ever take it
                    return BUSY
                with st.lock:
                    try:
                        wait = 0.0 if deadline is None else max(0.0, deadline - time.monotonic())
                        return self.refresh_one(st, lock_timeout=wait)
                    except Exception as e:  # a bug must not stop the stapler
                        st.next_at = self.clock() + schedule.BACKOFF_BASE
                        log.error_log.error(MOD, logids.STAPLER_INTERNAL_ERROR,
                                            f"internal error refreshing "
                                            f"{st.label}: {type(e).__name__}: {e}")
                        return FAILED
            finally:
                st.in_flight = False

        for st in states:
            st.in_flight = True
        if pool is None or len(states) <= 1:
            return {st.info.key: one(st) for st in states}
        futures = {st.info.key: pool.submit(one, st) for st in states}
        return {k: f.result() for k, f in futures.items()}

    def prefetch(self) -> dict[bytes, str]:
        """Master, before fork: load, then fetch every certificate without a servable staple.

        Bounded by the largest SSLStaplingResponderTimeout (plus the time to start the fetches):
        fetches still queued at the deadline are left to the helper.  Threads are joined and
        HTTP sessions closed before returning (the master forks next).
        """
        t0 = time.monotonic()
        now = self.clock()
        self.load(now)
        todo = [st for st in self.states.values() if not st.servable(now)]
        outcomes: dict[bytes, str] = {}
        if todo:
            timeout = max(st.scfg.responder_timeout for st in todo)
            deadline = t0 + timeout + 1.0
            self._batch = True
            try:
                with ThreadPoolExecutor(max_workers=min(self.max_parallel, len(todo)),
                                        thread_name_prefix="stapler-prefetch") as pool:
                    outcomes = self.run_pass(todo, pool, deadline)
            finally:
                self._batch = False
                if self.store is not None:
                    self.store.sync_dir()
            self.close_fetchers()
        self._warm()
        ok = sum(1 for st in self.states.values() if st.servable(self.clock()))
        left = sum(1 for o in outcomes.values() if o == BUSY)
        log.error_log.info(MOD, logids.STAPLER_PREFETCHED,
                           f"stapling prefetch: {ok} of {len(self.states)} "
                           f"certificates have a valid staple ({len(todo)} needed a fetch, "
                           f"{left} left to the background stapler) in "
                           f"{time.monotonic() - t0:.3f} s")
        self.check_must_staple()
        return outcomes

    def _warm(self) -> None:
        """Let the service judge every cached staple once here, in the master: workers forked
        afterwards inherit its per-process verdict memo, so their first handshakes do not pay
        for decoding and verifying the response."""
        now = self.clock()
        for st in self.states.values():
            try:
                self.service.decide(st.info, self._lookup(st, now), st.scfg, now)
            except Exception:
                pass

    def check_must_staple(self) -> None:
        now = self.clock()
        for st in self.states.values():
            if st.must_staple and not st.servable(now):
                mode = st.scfg.must_staple
                what = ("handshakes asking for a staple are refused until one is fetched"
                        if mode == "strict" else "clients enforcing Must-Staple will refuse it")
                log.error_log.error(MOD, logids.STAPLER_MUST_STAPLE_MISSING,
                                    f"certificate {st.label} requires a staple "
                                    f"(RFC 7633 Must-Staple) but no valid OCSP response is "
                                    f"available: {what}")

    # -- the helper process ------------------------------------------------------------------

    def run(self) -> None:
        """Helper process main loop (never returns normally until told to stop)."""
        stop = _StopSignal()
        if os.getpid() != self._created_pid:
            # a forked helper: our own cache connections and lock descriptors.  (Under -X the
            # helper is a thread of the worker, which already did child_init.)
            self.service.child_init()
            if self.fleet_lock is not None:
                self.fleet_lock.child_init()
        self.close_fetchers()
        parent = os.getppid()
        log.error_log.info(MOD, logids.STAPLER_STARTED, f"background stapler started for "
                           f"{len(self.states)} certificates (pid {os.getpid()})")
        must_pending = {k for k, st in self.states.items() if st.must_staple}
        next_reseed = time.monotonic() + RESEED_INTERVAL
        try:
            with ThreadPoolExecutor(max_workers=self.max_parallel,
                                    thread_name_prefix="stapler") as pool:
                while not stop.requested and os.getppid() == parent:
                    now = self.clock()
                    todo = self.due(now)
                    if todo:
                        self.run_pass(todo, pool)
                        for k in list(must_pending):
                            if self.states[k].servable(self.clock()):
                                must_pending.discard(k)
                                log.error_log.notice(MOD, logids.STAPLER_MUST_STAPLE_OK,
                                                     f"Must-Staple certificate "
                                                     f"{self.states[k].label} has a valid staple")
                        continue
                    if time.monotonic() >= next_reseed:
                        self.reseed()
                        next_reseed = time.monotonic() + RESEED_INTERVAL
                    nxt = min((st.next_at for st in self.states.values()), default=now + MAX_SLEEP)
                    stop.wait(min(MAX_SLEEP, max(0.01, nxt - now)))
        finally:
            self.close_fetchers()
            stop.restore()
            log.error_log.info(MOD, logids.STAPLER_STOPPING, "background stapler stopping")

    def refuse(self, info, vhost) -> bool:
        """Status callback, no staple to send: abort this handshake? (Must-Staple strict)."""
        st = self.states.get(info.key)
        if st is None or not st.must_staple:
            return False
        if muststaple.gate(True, vhost.ssl.stapling.must_staple, False) != muststaple.REFUSE:
            return False
        now = time.monotonic()
        if now - self._refuse_logged.get(info.key, -1e9) >= 60.0:   # at most once a minute
            self._refuse_logged[info.key] = now
            log.error_log.warn(MOD, logids.STAPLER_REFUSING,
                               f"Must-Staple certificate {st.label} has no valid "
                               f"staple: handshakes asking for one are refused "
                               f"(SSLStaplingMustStaple strict)")
        return True

    def helper(self) -> tuple[str, Callable[[], None]]:
        return ("ssl-stapler", self.run)


def make_fleet_lock(cfg: ServerConfig) -> FleetLock | None:
    """A fleet-wide lock when the stapling cache is shared between machines (redis, memcache)."""
    spec = cfg.stapling_cache
    if spec is None or spec.provider not in ("redis", "memcache"):
        return None
    ttl = max((v.ssl.stapling.responder_timeout for v in background_vhosts(cfg)), default=10.0)
    try:
        return FleetLock(spec, "ssl-stapling-refresh", ttl=ttl + 5.0, cfg=cfg)
    except Exception as e:
        log.error_log.warn(MOD, logids.STAPLER_NO_FLEET_LOCK,
                           f"no fleet-wide refresh lock ({e}): each server "
                           f"refreshes on its own")
        return None


def attach(service: StaplingService) -> Stapler | None:
    """What the server hands to ``StaplingService.init`` in the master: a stapler that has
    prefetched every staple (the service then runs its ``helper()`` and reads no responder in
    the handshake).  None (nothing to do) when no vhost staples in background mode.
    """
    if not background_vhosts(service.cfg):
        return None
    stapler = Stapler.from_service(service)
    if not stapler.states:
        return None
    stapler.prefetch()
    return stapler


def _default_fetcher():
    return Fetcher()


class _StopSignal:
    """SIGTERM asks the helper to stop; ``wait`` wakes at once on it.  (The master makes its
    helpers ignore HUP, INT, USR1 and WINCH; it ends them with TERM.)"""

    SIGNALS = (signal.SIGTERM,)

    def __init__(self):
        self.requested = False
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handler)

    def _handler(self, signum, frame):
        self.requested = True
        try:
            os.write(self._w, b"x")
        except OSError:
            pass

    def wait(self, timeout: float) -> None:
        if self.requested:
            return
        try:
            select.select([self._r], [], [], timeout)
        except InterruptedError:
            pass

    def restore(self) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
