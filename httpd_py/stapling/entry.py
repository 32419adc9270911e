"""Stapling cache records, as mod_ssl lays them out.

A record is ``flag(1 byte) || DER(OCSPResponse)``, keyed by the certificate's SHA-1, at most
10240 bytes including the flag::

    +------+---------------------------------+
    | flag | OCSPResponse DER (0..10239 B)   |
    +------+---------------------------------+
    flag 1 (VALID): the response was good or revoked when stored; kept StandardCacheTimeout.
    flag 0 (ERROR): an error response (non-successful status, unknown, a synthesized tryLater);
                    kept ErrorCacheTimeout; stapled only with ReturnResponderErrors on.
    b"\\x00"  (NEGATIVE, flag 0 and no DER): nothing to staple until it expires.  httpd-py
              stores it for invalid responses and for a failed fetch with FakeTryLater off, so
              a broken responder is asked once per ErrorCacheTimeout, not on every handshake.

The expiry is absolute (store time + timeout) and independent of nextUpdate, as Apache's.
"""
from __future__ import annotations

from dataclasses import dataclass

from httpd_py.stapling import verdict as V

VALID = 1
ERROR = 0
MAX_RECORD = 10240                  # mod_ssl MAX_STAPLING_DER, flag included
NEGATIVE = b"\x00"


class TooBig(ValueError):
    """The response does not fit a cache record."""


@dataclass(frozen=True)
class Entry:
    flag: int
    der: bytes

    @property
    def negative(self) -> bool:
        return self.flag == ERROR and not self.der


def encode(flag: int, der: bytes) -> bytes:
    if flag not in (VALID, ERROR):
        raise ValueError(f"bad flag {flag}")
    if 1 + len(der) > MAX_RECORD:
        raise TooBig(f"OCSP response too big ({len(der)} bytes)")
    return bytes([flag]) + der


def decode(value: bytes | None) -> Entry | None:
    """The record, or None for a miss or a record that is not ours (bad flag, flag 1 empty)."""
    if not value or len(value) > MAX_RECORD or value[0] not in (VALID, ERROR):
        return None
    if value[0] == VALID and len(value) == 1:
        return None
    return Entry(value[0], bytes(value[1:]))


def expires_at(flag: int, now: float, stapling_cfg) -> float:
    """Absolute expiry: now + SSLStaplingStandardCacheTimeout (valid) or ErrorCacheTimeout."""
    ttl = stapling_cfg.standard_cache_timeout if flag == VALID else stapling_cfg.error_cache_timeout
    return now + ttl


def error_entry(der: bytes | None, verdict: V.Verdict | None, scfg) -> tuple[int, bytes]:
    """The (flag, DER) a refresh stores when nothing valid came back (pure; both refresh paths
    store it through ``stapling/refresh.py``).

    * an error response (non-successful status, or ``unknown``): (ERROR, its DER);
    * only invalid answers (bad signature, wrong CertID, times...): (ERROR, b"") "nothing";
    * no usable answer at all (``der``/``verdict`` None: down, timeout, HTTP error, not DER):
      FakeTryLater on: (ERROR, synthesized tryLater); off: (ERROR, b"").
    Stapling an ERROR entry's DER is then up to SSLStaplingReturnResponderErrors.
    """
    if verdict is not None and der and verdict.error:
        return ERROR, der
    if verdict is not None:
        return ERROR, b""
    return ERROR, (V.try_later_der() if scfg.fake_try_later else b"")
