"""One refresh of one certificate's staple: the core both refresh paths share.

Callers (each holds the certificate's ``ssl-stapling-refresh`` mutex, and the background one
the fleet lock too):

* on demand: ``StaplingService.staple_for`` in a worker, during a handshake;
* in the background: ``Stapler.refresh_one`` in the stapler helper (or the master's prefetch).

What one refresh does::

    for each responder URL (SSLStaplingForceURL, else the certificate's AIA ones),
    under ONE deadline (SSLStaplingResponderTimeout):
        fetch                    no body: Failure from fetch's FetchError; TIMEOUT ends the loop
        judge (verdict)          not an OCSP response at all: CONTENT, next URL
                                 good / revoked: VALID, stop
                                 unknown / non-successful: the first one is kept, next URL
                                 invalid: next URL
    VALID                        -> store (VALID, DER) until ``policy.valid_until``
                                    (on demand: now + SSLStaplingStandardCacheTimeout)
    nothing valid, ``policy.keep(now)`` -> store nothing: the caller still serves its last good
                                    response (the background stapler's keep-last-good)
    nothing valid                -> store the error entry once (``entry.error_entry``: the error
                                    response, a synthesized tryLater, or nothing) until now +
                                    SSLStaplingErrorCacheTimeout

The core logs only the debug line before each request (HP04020); what a caller says about an
attempt or the outcome is its own (``on_attempt`` is called after each attempt).  Callers
branch on ``Outcome.failure`` (an enum), never on message text.
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from httpd_py import logids
from httpd_py.config.model import StaplingConfig
from httpd_py.log import error_log
from httpd_py.stapling import entry as entrylib
from httpd_py.stapling import verdict as V
from httpd_py.stapling.certinfo import CertInfo
from httpd_py.stapling.fetch import FetchError, FetchResult

MODULE = "ssl"


class Failure(enum.StrEnum):
    """Why a refresh brought no valid response (the fetch's own kinds, then the judge's)."""
    TIMEOUT = FetchError.TIMEOUT.value
    CONNECT = FetchError.CONNECT.value
    DNS = FetchError.DNS.value
    HTTP_STATUS = FetchError.HTTP_STATUS.value
    TOO_BIG = FetchError.TOO_BIG.value
    UNSUPPORTED_URL = FetchError.UNSUPPORTED_URL.value
    OTHER = FetchError.OTHER.value
    NO_URL = "no-url"                    # no responder URL for this certificate and vhost
    CONTENT = "content"                  # a body that is not an OCSP response (an HTML page)
    INVALID = "invalid"                  # an OCSP response we may not trust (signature, CertID, times)
    RESPONDER_ERROR = V.RESPONDER_ERROR  # a non-successful responseStatus (tryLater...)
    UNKNOWN = V.UNKNOWN                  # certificate status unknown

    @classmethod
    def of_fetch(cls, error: FetchError) -> "Failure":
        return cls(error.value)


class Fetcher(Protocol):
    """What the core needs of ``fetch.Fetcher`` (one request under an absolute deadline)."""
    def fetch(self, url: str, req_der: bytes, *, deadline: float, proxy_url: str | None = None,
              max_size: int = ...) -> FetchResult: ...


#: store(flag, der, now, expires_at) -> whether the handshakes of this server can read it
Store = Callable[[int, bytes, float, float], bool]


@dataclass(frozen=True)
class Policy:
    """How a caller keeps what a refresh got.

    ``valid_until(verdict, now)``: until when a valid response is cached (None: now +
    SSLStaplingStandardCacheTimeout, Apache's rule).  ``keep(now)``: True when nothing valid
    came back but the caller's last good response is still servable (then nothing is stored).
    """
    valid_until: Callable[[V.Verdict, float], float] | None = None
    keep: Callable[[float], bool] | None = None


@dataclass(frozen=True)
class Attempt:
    """One request: the URL, what came back, and the verdict on it (None: no body)."""
    url: str
    result: FetchResult
    verdict: V.Verdict | None = None

    @property
    def failure(self) -> Failure | None:
        if not self.result.ok:
            return Failure.of_fetch(self.result.error)
        v = self.verdict
        if v is None or v.valid:
            return None
        if v.problem is V.Problem.UNPARSABLE:
            return Failure.CONTENT
        if v.kind == V.RESPONDER_ERROR:
            return Failure.RESPONDER_ERROR
        if v.kind == V.UNKNOWN:
            return Failure.UNKNOWN
        return Failure.INVALID

    def describe(self) -> str:
        """``kind: detail`` for the staple store's last_error and the stapler's log lines."""
        if not self.result.ok:
            return f"{self.result.error}: {self.result.detail}".rstrip(": ")
        return f"{self.verdict.kind}: {self.verdict.reason}"


@dataclass(frozen=True)
class Outcome:
    """What one refresh did.

    ``verdict``/``der``: the response kept (valid, or the error entry's: an error response, a
    synthesized tryLater, or b"" for nothing); ``flag``: the entry stored (None: nothing
    stored, see ``kept``); ``stored``: the store succeeded; ``failure``: None when valid.
    """
    verdict: V.Verdict | None
    der: bytes
    flag: int | None
    stored: bool
    failure: Failure | None
    attempts: tuple[Attempt, ...] = ()
    kept: bool = False
    expires_at: float | None = None
    synthesized: bool = False            # the DER is a synthesized tryLater (FakeTryLater)

    @property
    def valid(self) -> bool:
        return self.failure is None

    def staple(self, scfg: StaplingConfig) -> bytes:
        """What this handshake staples: a valid response; an error one iff ReturnResponderErrors."""
        if self.valid:
            return self.der
        return self.der if (self.der and scfg.return_responder_errors) else b""

    def describe(self) -> str:
        """The last attempt's ``kind: detail`` (``no-url`` when there was none)."""
        if not self.attempts:
            return f"{Failure.NO_URL}: no responder URL"
        return self.attempts[-1].describe()


def judge(info: CertInfo, der: bytes, scfg: StaplingConfig, now: float) -> V.Verdict:
    """The verdict on ``der`` for ``info`` at ``now`` with ``scfg``'s skew and max age."""
    return V.check_response(der, info.cid, info.issuer, now, skew=scfg.response_time_skew,
                            max_age=scfg.response_max_age)


def refresh(info: CertInfo, scfg: StaplingConfig, *, fetcher: Fetcher, store: Store,
            clock: Callable[[], float], now: float | None = None, policy: Policy = Policy(),
            on_attempt: Callable[[Attempt], None] | None = None) -> Outcome:
    """Fetch, judge and store a response for ``info`` with ``scfg`` (see the module docstring).

    ``now``: the caller's idea of the time (verdicts use the later of it and ``clock()``).
    The caller holds the refresh lock for ``info.key``.  Never raises for a responder's doing.
    """
    urls = info.urls_for(scfg)
    if not urls:
        return Outcome(None, b"", None, False, Failure.NO_URL)
    deadline = time.monotonic() + scfg.responder_timeout
    attempts: list[Attempt] = []
    error_resp: tuple[bytes, V.Verdict] | None = None
    saw_invalid = False
    for url in urls:
        error_log.debug(MODULE, logids.STAPLING_QUERYING,
                        f"stapling: querying {url} for {info.label}")
        r = fetcher.fetch(url, info.request_der, deadline=deadline, proxy_url=scfg.proxy_url,
                          max_size=entrylib.MAX_RECORD - 1)
        v = None
        if r.ok:
            vnow = clock() if now is None else max(now, clock())
            v = judge(info, r.der, scfg, vnow)
        attempt = Attempt(url, r, v)
        attempts.append(attempt)
        if on_attempt is not None:
            on_attempt(attempt)
        failure = attempt.failure
        if failure is None:
            t = clock()
            until = policy.valid_until(v, t) if policy.valid_until else \
                entrylib.expires_at(entrylib.VALID, t, scfg)
            stored = store(entrylib.VALID, r.der, t, until)
            return Outcome(v, r.der, entrylib.VALID, stored, None, tuple(attempts),
                           expires_at=until)
        if failure is Failure.TIMEOUT:
            break
        if failure in (Failure.RESPONDER_ERROR, Failure.UNKNOWN):
            if error_resp is None:
                error_resp = (r.der, v)
        elif failure is Failure.INVALID:
            saw_invalid = True
    t = clock()
    last = attempts[-1].failure
    if error_resp is not None:
        der, v = error_resp
        failure = Failure(v.kind)
    elif saw_invalid:
        der, v = b"", V.invalid("every answer was refused")
        failure = last
    else:
        der, v = None, None
        failure = last
    if policy.keep is not None and policy.keep(t):
        return Outcome(v if der else None, der or b"", None, False, failure, tuple(attempts),
                       kept=True)
    flag, der = entrylib.error_entry(der, v, scfg)
    synthesized = error_resp is None and der == V.try_later_der()
    if synthesized:
        v = V.Verdict(V.RESPONDER_ERROR, "synthesized tryLater", response_status="tryLater")
    until = entrylib.expires_at(flag, t, scfg)
    stored = store(flag, der, t, until)
    return Outcome(v if der else None, der, flag, stored, failure, tuple(attempts),
                   expires_at=until, synthesized=synthesized)
