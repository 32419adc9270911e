"""StaplingService: what the server calls, and mod_ssl's on-demand refresh.

Lifecycle (server.py): ``from_config(cfg)`` at configuration time (None when nothing staples;
``config.check`` has already refused SSLUseStapling without SSLStaplingCache, AH01958),
``init(attach=stapler.attach)`` in the master before fork (stapling cache, the ``ssl-stapling``
mutex when the cache is not safe across processes, the ``ssl-stapling-refresh`` mutex, then the
background stapler the server wires in: this module never imports ``stapler``),
``child_init()`` in every worker after fork, ``callback_for(vhost)`` for each vhost's TLS
context, ``helpers()``, ``runtime_paths()`` (the files the server hands to User/Group),
``shutdown()``.

The handshake path (``staple_for``), as Apache's stapling_cb with its defects fixed:

    entry = cache[SHA-1(cert)]                      # ssl-stapling mutex only if not mp_safe
    VALID and still within its times               -> staple it
    ERROR (error response or synthesized tryLater) -> staple it iff ReturnResponderErrors
    NEGATIVE (invalid answer / no answer)          -> nothing, until ErrorCacheTimeout
    miss or stale VALID, on-demand refresh:
        hold ssl-stapling-refresh for THIS certificate (others go on)
        look again (another process may have fetched)
        refresh.refresh: every responder URL in turn under ONE deadline, validate, store,
        staple (the core the background stapler uses too)

What a refresh stores (flag, TTL) and staples:

    good / revoked             VALID  Standard   staple
    unknown, non-successful    ERROR  Error      staple iff ReturnResponderErrors
    invalid (any reason)       NEG.   Error      never
    no usable answer, FakeTryLater on   ERROR(tryLater)  Error  iff ReturnResponderErrors
    no usable answer, FakeTryLater off  NEG.             Error  never

A handshake never aborts because of stapling (Apache answers some failures with a fatal alert).

Two tiers when SSLStaplingCache is a network cache (redis, memcache), so that a fleet cache
outage is not a stapling outage::

    local tier: anonymous shmcb, made in the master before fork   <- handshakes read this first
        (ssl-stapling mutex around each call: shmcb is not mp-safe)
    shared tier: the redis/memcache cache (mp-safe, no mutex)      <- the fleet's copy
    staple store on disk (stapler.py)                              <- survives restarts

``store`` writes both tiers (the local one first); ``lookup`` (the handshake's read) answers
from the local tier, and goes to the shared one only on a local miss and only when the vhost
refreshes on demand (background-mode workers never touch the network: the stapler writes
every staple it fetches or adopts into the local tier).  ``lookup_shared`` is the stapler's
view of the fleet.  Without a network cache there is one tier, the configured one.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING, Callable

from httpd_py import logids, socache
from httpd_py.config.model import SHMCB_DEFAULT_SIZE, ServerConfig, StaplingConfig, VHost
from httpd_py.errors import StartupError
from httpd_py.log import error_log
from httpd_py.socache.mutex import GlobalMutex
from httpd_py.socache.shmcb import ShmcbCache
from httpd_py.stapling import entry as entrylib
from httpd_py.stapling import fetch as fetchlib
from httpd_py.stapling import refresh as refreshlib
from httpd_py.stapling import verdict as V
from httpd_py.stapling.certinfo import CertInfo, CertTable, collect, stapling_vhosts
from httpd_py.stapling.refresh import Attempt, Failure, Outcome

if TYPE_CHECKING:       # the server wires the stapler in; at run time this module never imports it
    from httpd_py.stapling.stapler import Stapler

MODULE = "ssl"

#: size of the local tier (Apache's shmcb default: room for ~400 staples)
LOCAL_TIER_SIZE = SHMCB_DEFAULT_SIZE

#: SSLStaplingCache providers that get a local tier in front of them
NETWORK_PROVIDERS = ("redis", "memcache")

# Staple decisions from a cache entry
_STAPLE, _REFRESH, _NOTHING = "staple", "refresh", "nothing"

#: what the server wires in: builds the background stapler for a service (None: nothing to do)
Attach = Callable[["StaplingService"], "Stapler | None"]


class StaplingService:
    def __init__(self, cfg: ServerConfig, table: CertTable, cache, *, stapling_mutex=None,
                 refresh_mutex=None, clock: Callable[[], float] = time.time,
                 fetcher_factory: Callable[[], object] | None = None, local=None):
        self.cfg = cfg
        self.table = table
        self.cache = cache
        self.local = local                          # shmcb in front of a network cache, or None
        # None when nothing needs it; guards ``cache`` when that is not mp_safe (shmcb), else
        # the local tier
        self.stapling_mutex = stapling_mutex
        self.refresh_mutex = refresh_mutex
        self.clock = clock
        self.fetcher_factory = fetcher_factory
        self.background = False                     # True once init() attached a stapler
        self.stapler: Stapler | None = None
        self._helpers: list[tuple[str, Callable]] = []
        self._fetcher = None
        self._fetcher_pid = 0
        self._memo: dict[bytes, tuple[bytes, V.Verdict]] = {}
        self._memo_lock = threading.Lock()

    # -- construction and lifecycle --------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: ServerConfig) -> "StaplingService | None":
        if not stapling_vhosts(cfg):
            return None
        # config.check() refused SSLUseStapling without SSLStaplingCache (AH01958) and
        # socache.check() built this provider once already, with the directive's file:line
        assert cfg.stapling_cache is not None, "config.check() must run first"
        cache = socache.create(cfg.stapling_cache, cfg)
        local = None
        if cache.name in NETWORK_PROVIDERS:
            local = ShmcbCache(None, LOCAL_TIER_SIZE)      # anonymous: made in init(), pre-fork
        needs_mutex = local is not None or not cache.mp_safe
        stapling_mutex = GlobalMutex(cfg.mutex("ssl-stapling")) if needs_mutex else None
        refresh_mutex = GlobalMutex(cfg.mutex("ssl-stapling-refresh"))
        return cls(cfg, collect(cfg), cache, stapling_mutex=stapling_mutex,
                   refresh_mutex=refresh_mutex, local=local)

    def init(self, attach: Attach | None = None) -> None:
        """Master, before fork.  ``attach`` (``stapler.attach``, wired in by the server) builds
        the background stapler, which prefetches every staple before the workers fork."""
        try:
            self.cache.init("mod_ssl-staple")
        except Exception as e:
            error_log.emerg(MODULE, logids.STAPLING_CACHE_INIT_FAILED,
                            f"Could not initialize stapling cache ({e}). Exiting.")
            raise StartupError(f"could not initialize the stapling cache: {e}") from e
        if self.local is not None:
            try:
                self.local.init("mod_ssl-staple")
                error_log.info(MODULE, logids.STAPLING_LOCAL_TIER,
                               f"stapling: local shared-memory tier "
                               f"({self.local.geo.size} bytes) in front of the "
                               f"{self.cache.name} cache: handshakes read it first")
            except Exception as e:
                error_log.emerg(MODULE, logids.STAPLING_CACHE_INIT_FAILED,
                                f"Could not initialize the local stapling "
                                f"tier ({e}). Exiting.")
                raise StartupError(f"could not initialize the local stapling tier: {e}") from e
        for m in (self.stapling_mutex, self.refresh_mutex):
            if m is None:
                continue
            try:
                m.create()
            except Exception as e:
                error_log.emerg(MODULE, logids.STAPLING_MUTEX_FAILED,
                                f"cannot create stapling mutex "
                                f"{m.spec.name}: {e}")
                raise StartupError(f"cannot create a stapling mutex: {e}") from e
        if attach is not None:
            try:
                self.stapler = attach(self)
            except Exception as e:
                self.stapler = None
                error_log.error(MODULE, logids.STAPLING_STAPLER_NOT_STARTED,
                                f"background stapler not started ({e}): "
                                "stapling refreshes on demand")
            self.background = self.stapler is not None
            if self.stapler is not None:
                self._helpers.append(self.stapler.helper())
        # workers may run as a user who cannot read Python's library: load now what a fetch needs
        if self.fetcher_factory is None and not fetchlib.warm_up():
            error_log.debug(MODULE, logids.STAPLING_WARM_UP_INCOMPLETE,
                            "stapling: responder client warm-up did not complete")
        self.warm_memo()
        mode = "background" if self.background else "on-demand"
        error_log.info(MODULE, logids.STAPLING_READY,
                       f"OCSP stapling ready: {len(self.table)} certificate(s), "
                       f"cache {self.cfg.stapling_cache.raw or self.cfg.stapling_cache.provider}, "
                       f"refresh {mode}")

    def child_init(self) -> None:
        """Worker, after fork: re-attach the cache and mutexes; the responder client is made
        lazily in this process."""
        self.cache.child_init()
        if self.local is not None:
            self.local.child_init()
        for m in (self.stapling_mutex, self.refresh_mutex):
            if m is not None:
                m.child_init()
        self._fetcher = None
        self._fetcher_pid = 0
        # the memo is kept: it was filled in the master (warm_memo) and its verdicts hold for the
        # exact DER they were computed on, so a fresh worker's first handshakes parse nothing

    def warm_memo(self, now: float | None = None) -> int:
        """Master, before fork: inspect every cached response once, so that workers inherit the
        verdicts and their first handshakes cost what later ones do.  Returns how many."""
        now = self.clock() if now is None else now
        warmed = 0
        for info in self.table.all():
            try:
                e = self.lookup(info, now)
                if e is not None and not e.negative:
                    vhosts = self.table.vhosts_of(info.key)
                    skew = vhosts[0].ssl.stapling.response_time_skew if vhosts else 300
                    self._inspected(info, e.der, now, skew)
                    warmed += 1
            except Exception as exc:  # a warm-up must never stop start-up
                error_log.debug(MODULE, logids.STAPLING_MEMO_WARM_UP,
                                f"stapling: memo warm-up for {info.label}: {exc}")
        return warmed

    def callback_for(self, vhost: VHost):
        from httpd_py.stapling.callback import ocsp_callback_for
        return ocsp_callback_for(self, vhost)

    def helpers(self) -> list[tuple[str, Callable]]:
        return list(self._helpers)

    def runtime_paths(self) -> list[str]:
        """Files and directories the workers and helpers use after dropping privileges: lock
        files, the cache file, the staple store and its records (the server hands them to
        User/Group through ``mpm.privileges``, as Apache's ``ap_unixd_set_global_mutex_perms``)."""
        paths = [m.path for m in (self.stapling_mutex, self.refresh_mutex)
                 if m is not None and m.path]
        paths.extend(self.cache.files())                    # file-backed providers only
        if self.stapler is not None:
            paths.extend(self.stapler.store_paths())
        return paths

    def forget_lock_files(self) -> None:
        """``-X``: no process will open the lock files again; remove them now (the descriptors
        stay), before privileges are dropped."""
        for m in (self.stapling_mutex, self.refresh_mutex):
            if m is not None:
                m.forget_path()

    def shutdown(self, *, unlink_locks: bool = False) -> None:
        """Master, end of a generation.  Lock files are kept by default: at a restart the next
        generation (same master pid) has already opened the same path, and removing it would
        split old and new workers onto different files.  ``unlink_locks=True`` at the final stop."""
        if self._fetcher is not None and self._fetcher_pid == os.getpid():
            try:
                self._fetcher.close()
            except Exception:
                pass
        self._fetcher = None
        for c in (self.cache, self.local):
            try:
                if c is not None:
                    c.destroy()
            except Exception:
                pass
        for m in (self.stapling_mutex, self.refresh_mutex):
            if m is not None:
                try:
                    m.destroy(unlink=unlink_locks)
                except Exception:
                    pass

    # -- cache access ----------------------------------------------------------------------
    @contextlib.contextmanager
    def cache_mutex_hold(self):
        """The ssl-stapling mutex around one call to the configured cache, when it needs it
        (not with a local tier: the network cache is mp-safe and the mutex is the local tier's)."""
        if not self._locked(self.cache):
            yield True
            return
        with self.stapling_mutex.hold() as held:
            yield held

    def _locked(self, cache) -> bool:
        """Whether calls to ``cache`` (the local tier or the configured cache) take the mutex."""
        return self.stapling_mutex is not None and (cache is self.local or self.local is None)

    def _retrieve(self, cache, info: CertInfo, now: float) -> bytes | None:
        try:
            if self._locked(cache):
                with self.stapling_mutex.hold():
                    return cache.retrieve(info.key, now=now)
            return cache.retrieve(info.key, now=now)
        except Exception as e:  # providers should not raise; if one does, it is a miss
            error_log.warn(MODULE, logids.STAPLING_CACHE_CORRUPT,
                           f"stapling cache lookup for {info.label} failed: {e}")
            return None

    def _decode(self, info: CertInfo, value: bytes | None) -> entrylib.Entry | None:
        if value is None:
            return None
        e = entrylib.decode(value)
        if e is None:
            error_log.warn(MODULE, logids.STAPLING_CACHE_CORRUPT,
                           f"stapling cache record for {info.label} is unusable ({len(value)} bytes): a miss")
        return e

    def lookup(self, info: CertInfo, now: float | None = None, *,
               shared: bool = True) -> entrylib.Entry | None:
        """The handshake's read: the local tier, then (``shared``) the configured cache."""
        now = self.clock() if now is None else now
        if self.local is not None:
            e = self._decode(info, self._retrieve(self.local, info, now))
            if e is not None or not shared:
                return e
        return self._decode(info, self._retrieve(self.cache, info, now))

    def lookup_shared(self, info: CertInfo, now: float | None = None) -> entrylib.Entry | None:
        """The configured cache only: what the fleet holds (the stapler's adopt and reseed)."""
        now = self.clock() if now is None else now
        return self._decode(info, self._retrieve(self.cache, info, now))

    def lookup_local(self, info: CertInfo, now: float | None = None) -> entrylib.Entry | None:
        """The local tier only (None when there is none: then ``lookup_shared`` is the cache)."""
        if self.local is None:
            return None
        now = self.clock() if now is None else now
        return self._decode(info, self._retrieve(self.local, info, now))

    def shared_back(self) -> None:
        """The fleet's server answered again (the stapler holds the fleet lock after an
        outage): the network cache stops skipping it (it skips a failed server for 1 s), so the
        double check and the store of this refresh reach the fleet."""
        retry = getattr(self.cache, "retry_now", None)
        if retry is not None:
            retry()

    def store(self, info: CertInfo, flag: int, der: bytes, scfg: StaplingConfig,
              now: float | None = None, expires_at: float | None = None, *,
              local: bool = True, shared: bool = True) -> bool:
        """Cache a record in the local tier (if any) and the configured cache.  True when the
        handshakes of this server can read it (the local tier, or the one cache, took it); a
        shared cache that refuses while the local tier took it is only a debug line (the
        provider logs its own error)."""
        now = self.clock() if now is None else now
        try:
            value = entrylib.encode(flag, der)
        except entrylib.TooBig:
            error_log.error(MODULE, logids.STAPLING_STORE_FAILED,
                            f"OCSP stapling response for {info.label} too big ({len(der)} bytes): not cached")
            return False
        until = entrylib.expires_at(flag, now, scfg) if expires_at is None else expires_at
        why = "cache full or unavailable"
        local_ok = shared_ok = None
        if self.local is not None and local:
            try:
                with (self.stapling_mutex.hold() if self.stapling_mutex is not None else _held()):
                    local_ok = bool(self.local.store(info.key, value, until, now=now))
            except Exception as e:
                local_ok, why = False, f"local tier: {type(e).__name__}: {e}"
        if shared or self.local is None:
            try:
                with self.cache_mutex_hold():
                    shared_ok = bool(self.cache.store(info.key, value, until, now=now))
            except Exception as e:  # providers should not raise; if one does, the store failed
                shared_ok, why = False, f"{type(e).__name__}: {e}"
        ok = local_ok if local_ok is not None else bool(shared_ok)
        if ok:
            if error_log.enabled(MODULE, "debug"):
                error_log.debug(MODULE, logids.STAPLING_STORED,
                                f"stapling: cached {'valid' if flag else 'error'} "
                                f"response for {info.label} ({len(der)} bytes) for {until - now:.0f}s")
                if shared_ok is False:
                    error_log.debug(MODULE, logids.STAPLING_SHARED_STORE_FAILED,
                                    f"stapling: {info.label} "
                                    f"cached locally only: the {self.cache.name} cache refused it")
        else:
            error_log.error(MODULE, logids.STAPLING_STORE_FAILED,
                            f"stapling cache store error for {info.label} ({why})")
        return ok

    # -- decisions -------------------------------------------------------------------------
    def _inspected(self, info: CertInfo, der: bytes, now: float, skew: float) -> V.Verdict:
        """The time-independent verdict of a cached DER, computed once per process per DER."""
        with self._memo_lock:
            hit = self._memo.get(info.key)
            if hit is not None and hit[0] == der:
                return hit[1]
        v = V.inspect(der, info.cid, info.issuer, now, skew=skew)
        with self._memo_lock:
            self._memo[info.key] = (der, v)
        return v

    def decide(self, info: CertInfo, e: entrylib.Entry | None, scfg: StaplingConfig,
               now: float) -> tuple[str, bytes]:
        """(action, staple) for a cache entry: staple it, refresh, or nothing."""
        if e is None:
            return _REFRESH, b""
        if e.negative:
            return _NOTHING, b""
        v = self._inspected(info, e.der, now, scfg.response_time_skew)
        if e.flag == entrylib.VALID:
            judged = v.at(now, scfg.response_time_skew, scfg.response_max_age)
            if judged.valid:
                return _STAPLE, e.der
            error_log.debug(MODULE, logids.STAPLING_CACHE_STALE,
                            f"stapling: cached response for {info.label} no longer valid ({judged.reason}): renewing")
            return _REFRESH, b""
        # ERROR entry: an error response or a synthesized tryLater; never an invalid one
        if v.kind == V.RESPONDER_ERROR or (v.kind == V.UNKNOWN and v.at(
                now, scfg.response_time_skew, scfg.response_max_age).kind == V.UNKNOWN):
            return (_STAPLE, e.der) if scfg.return_responder_errors else (_NOTHING, b"")
        return _NOTHING, b""

    def reuse_until(self, info: CertInfo, staple: bytes, scfg: StaplingConfig, now: float) -> float:
        """Until when a worker may staple ``staple`` again without the cache (0: not at all).

        Only a response whose verdict is valid (good or revoked: a VALID cache entry) that
        ``staple_for`` just returned, and at most 1 s; never past nextUpdate - skew, thisUpdate +
        SSLStaplingResponseMaxAge, or thisUpdate - skew + StandardCacheTimeout (the cache entry,
        stored at or after thisUpdate - skew, lives at least that long).  So a response another
        process refreshed reaches this worker within 1 s, and a memoised one is always one the
        cache still holds and the verdict still accepts.  Error entries are never memoised.
        """
        hit = self._memo.get(info.key)
        if hit is None or hit[0] != staple or not hit[1].valid:
            return 0.0
        v, skew = hit[1], scfg.response_time_skew
        ends = [now + 1.0]
        if v.next_update is not None:
            ends.append(v.next_update - skew)
        if v.this_update is not None:
            ends.append(v.this_update - skew + scfg.standard_cache_timeout)
            if scfg.response_max_age is not None:
                ends.append(v.this_update + scfg.response_max_age)
        until = min(ends)
        return until if until > now else 0.0

    def staple_for(self, info: CertInfo, vhost: VHost, now: float | None = None) -> bytes:
        """The bytes to staple for ``info`` in ``vhost`` (b"": none).  May fetch (on demand)."""
        scfg = vhost.ssl.stapling
        now = self.clock() if now is None else now
        # background mode: the stapler puts every staple in the local tier; a worker never
        # waits on the network (a dead redis)
        background = self.background and scfg.refresh == "background"
        e = self.lookup(info, now, shared=not background)
        action, staple = self.decide(info, e, scfg, now)
        debug = error_log.enabled(MODULE, "debug")      # the hot path formats nothing otherwise
        if action != _REFRESH:
            if e is not None and debug:
                error_log.debug(MODULE, logids.STAPLING_CACHE_HIT,
                                f"stapling: cached response for {info.label}")
            return staple
        if e is None and debug:
            error_log.debug(MODULE, logids.STAPLING_CACHE_MISS,
                            f"stapling: no cached response for {info.label}")
        if background:
            return b""          # the background stapler fetches; handshakes never wait
        if not info.urls_for(scfg):
            error_log.debug(MODULE, logids.STAPLING_NO_URL_AT_REFRESH,
                            f"stapling: no responder URL for {info.label}")
            return b""
        timeout = scfg.responder_timeout + 1.0
        mutex = self.refresh_mutex
        with (mutex.hold(key=info.key, timeout=timeout) if mutex is not None else _held()) as held:
            if not held:
                error_log.warn(MODULE, logids.STAPLING_LOCK_TIMEOUT,
                               f"stapling: refresh lock for {info.label} "
                               f"not acquired within {timeout:.0f}s: no staple this time")
                e = self.lookup(info)
                action, staple = self.decide(info, e, scfg, self.clock())
                return staple if action == _STAPLE else b""
            now = self.clock()
            e = self.lookup(info, now)
            action, staple = self.decide(info, e, scfg, now)
            if action != _REFRESH:
                error_log.debug(MODULE, logids.STAPLING_REFRESHED_MEANWHILE,
                                f"stapling: response for {info.label} refreshed meanwhile")
                return staple
            return self.refresh(info, vhost, now).staple(scfg)

    # -- fetching --------------------------------------------------------------------------
    def fetcher(self):
        """This process's responder client (created after fork, on first use)."""
        pid = os.getpid()
        if self._fetcher is None or self._fetcher_pid != pid:
            if self.fetcher_factory is not None:
                self._fetcher = self.fetcher_factory()
            else:
                self._fetcher = fetchlib.Fetcher()
            self._fetcher_pid = pid
        return self._fetcher

    def refresh(self, info: CertInfo, vhost: VHost, now: float | None = None) -> Outcome:
        """Fetch, validate and store a response for ``info`` with ``vhost``'s settings, through
        the refresh core (``stapling/refresh.py``), logging each attempt as mod_ssl does.

        The caller holds the refresh mutex for ``info.key``.  Never raises.
        """
        scfg = vhost.ssl.stapling

        def store(flag: int, der: bytes, t: float, until: float) -> bool:
            return self.store(info, flag, der, scfg, now=t, expires_at=until)

        out = refreshlib.refresh(info, scfg, fetcher=self.fetcher(), store=store,
                                 clock=self.clock, now=now,
                                 on_attempt=lambda a: self._log_attempt(info, scfg, a))
        if out.failure is Failure.NO_URL:
            return out
        if out.synthesized:
            error_log.info(MODULE, logids.STAPLING_FAKE_TRYLATER,
                           f"stapling: no answer from any responder for "
                           f"{info.label}: caching a synthesized tryLater for "
                           f"{scfg.error_cache_timeout}s (SSLStaplingFakeTryLater)")
        elif not out.valid and not out.der:
            error_log.debug(MODULE, logids.STAPLING_NO_RESPONSE,
                            f"stapling: no suitable response for {info.label}")
        return out

    @staticmethod
    def _log_attempt(info: CertInfo, scfg: StaplingConfig, a: Attempt) -> None:
        """mod_ssl's lines for one responder request (AH01941, AH01936, AH01944, AH02969)."""
        r, v, url = a.result, a.verdict, a.url
        failure = a.failure
        if failure is Failure.TIMEOUT:
            error_log.error(MODULE, logids.STAPLING_DEADLINE,
                            f"stapling: responder {url} for {info.label}: no answer within "
                            f"SSLStaplingResponderTimeout {scfg.responder_timeout:g}s ({r.detail})")
            return
        if not r.ok:
            error_log.error(MODULE, logids.STAPLING_RESPONDER_ERROR,
                            f"stapling: responder error from {url} for {info.label}: {r.error}: {r.detail}")
            return
        if failure is Failure.CONTENT:
            # not an OCSP response at all (an HTML page, garbage): the responder failed
            error_log.error(MODULE, logids.STAPLING_RESPONDER_ERROR,
                            f"stapling: responder {url} for {info.label} "
                            f"sent no OCSP response ({len(r.der)} bytes, {v.reason})")
            return
        error_log.info(MODULE, logids.STAPLING_FETCHED,
                       f"stapling: fetched OCSP response for {info.label} from "
                       f"{url} ({r.method}, {len(r.der)} bytes, {r.elapsed * 1000:.0f} ms): "
                       f"{v.response_status or 'unparsed'}, {v.kind}")
        if failure is None:
            if v.kind == V.REVOKED:
                error_log.error(MODULE, logids.STAPLING_CERT_STATUS,
                                f"stapling: response has certificate status "
                                f"revoked (reason: {v.revocation_reason or 'unspecified'}) for "
                                f"{info.label}")
        elif failure is Failure.RESPONDER_ERROR:
            error_log.error(MODULE, logids.STAPLING_RESPONDER_STATUS,
                            f"stapling: responder {url} answered {v.response_status} for {info.label}")
        elif failure is Failure.UNKNOWN:
            error_log.error(MODULE, logids.STAPLING_CERT_STATUS,
                            f"stapling: response has certificate status "
                            f"unknown for {info.label}")
        else:
            error_log.error(MODULE, logids.STAPLING_REFUSED,
                            f"stapling: refused response from {url} for "
                            f"{info.label}: {v.reason}; not stapled")


@contextlib.contextmanager
def _held():
    yield True
