"""The pyOpenSSL OCSP status callback (``Context.set_ocsp_server_callback``).

OpenSSL calls it mid-handshake, only when the client sent status_request, after SNI switched the
context and after it picked the certificate (RSA or ECDSA).  It must never raise: pyOpenSSL turns
an exception (or a non-bytes return) into a fatal alert that kills the handshake.

The common case only reads the cache: the selected certificate (its X509 pointer, memoised per
process; its DER the first time, in the certificate table, a dict keyed by DER bytes) gives the
CertInfo, the cached record's DER is returned as stored;
a response is decoded at most once per process (``StaplingService._inspected``), never per
handshake.  b"" means "no staple" (SSL_TLSEXT_ERR_NOACK).
"""
from __future__ import annotations

from typing import Callable

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import crypto
from OpenSSL._util import lib as _lib   # SSL_get_certificate: the selected X509, no wrapper

from httpd_py import logids, metrics
from httpd_py.config.model import VHost
from httpd_py.log import error_log
from httpd_py.stapling.muststaple import StapleRequired

MODULE = "ssl"


def _selected_der(conn) -> bytes | None:
    """DER of the certificate OpenSSL selected: i2d straight from the X509 (6.6 us measured)
    rather than through a cryptography object (21.5 us)."""
    try:
        x = conn.get_certificate()
        return None if x is None else crypto.dump_certificate(crypto.FILETYPE_ASN1, x)
    except (AttributeError, TypeError):          # a Connection-like object without X509 support
        cert = conn.get_certificate(as_cryptography=True)
        return None if cert is None else cert.public_bytes(Encoding.DER)


def _selected_key(conn):
    """A handle of the certificate OpenSSL selected, for the callback's memo: the X509
    pointer (0.2 us, against 6.5 us for the DER through a wrapper object), or the DER for a
    Connection-like object without an ``SSL *``.  A pointer is memoised only with a reference
    taken on its X509 (``_hold``), so its address can never come back as another certificate."""
    ssl = getattr(conn, "_ssl", None)
    if ssl is None:
        return _selected_der(conn)
    ptr = _lib.SSL_get_certificate(ssl)
    return ptr if ptr else None


def _hold(cert) -> None:
    """Keep a memoised X509 alive for the life of the process (the memo is bounded)."""
    if not isinstance(cert, bytes):
        _lib.X509_up_ref(cert)


#: the process-wide memo of selected certificates holds at most this many (and at least 64)
#: per stapling certificate: a server certificate's X509 lives as long as its Context
KNOWN_PER_CERT = 2


def ocsp_callback_for(service, vhost: VHost | None) -> Callable | None:
    """The status callback for ``vhost``'s Context, or None when the vhost does not staple.

    Every vhost's callback calls one function per service, ``shared(conn, vhost)`` (also the
    returned callback's ``shared`` attribute, which ``tls/sites`` calls directly for vhosts on
    a shared Context), with one memo per process for all of them.  ``vhost=None`` builds that
    function.  A worker inherits the master's objects copy-on-write and CPython writes a
    reference count to every object a handshake reads: with a closure, its cells and two memo
    dicts per vhost, a handshake on each of 1,000 vhosts copied ~2 pages per vhost in every
    worker (``scripts/bench_scale.py``; the memory section of docs/benchmarks.md)."""
    if vhost is not None:
        if service is None or not (vhost.ssl.engine and vhost.ssl.stapling.enabled):
            return None
        shared = _shared_callback(service)

        def vhost_status_callback(conn, data=None) -> bytes:
            return shared(conn, vhost)
        vhost_status_callback.shared = shared
        return vhost_status_callback

    table = service.table
    # the selected certificate (``_selected_key``) -> CertInfo (or None), for every vhost
    known: dict[object, object] = {}
    known_limit = max(64, KNOWN_PER_CERT * len(table)) if hasattr(table, "__len__") else 64
    # per-process reuse of a valid staple for at most 1 s (StaplingService.reuse_until): the
    # cache path (mutex, shmcb, decode, verdict) is ~0.1 ms of a handshake with cold caches.
    # CertInfo.key -> (staple, from, until, the vhost it was judged for: its settings count)
    reuse: dict[bytes, tuple[bytes, float, float, VHost]] = {}
    reuse_limit = max(64, len(table)) if hasattr(table, "__len__") else 64
    clock = getattr(service, "clock", None)
    reuse_until = getattr(service, "reuse_until", None)

    def ocsp_status_callback(conn, vhost: VHost) -> bytes:
        refuse = None
        try:
            cert = _selected_key(conn)
            if cert is None:
                return b""
            info = known.get(cert, False)
            if info is False:
                der = cert if isinstance(cert, bytes) else _selected_der(conn)
                info = None if der is None else table.by_der(der)
                if len(known) < known_limit:
                    _hold(cert)
                    known[cert] = info
            if info is not None:
                hit = reuse.get(info.key)
                if hit is not None:
                    if hit[3] is vhost and hit[1] <= clock() < hit[2]:   # (a clock stepped back ends it too)
                        metrics.staple(True)
                        return hit[0]
                    del reuse[info.key]
            if info is None:
                error_log.info(MODULE, logids.STAPLING_NOT_CONFIGURED,
                               "stapling not supported for the selected "
                               f"certificate of {vhost.server_name or 'the main server'}")
                metrics.staple(False)
                return b""
            staple = service.staple_for(info, vhost)
            if not isinstance(staple, bytes):
                staple = b""
            if staple and reuse_until is not None and clock is not None and len(reuse) < reuse_limit:
                now = clock()
                until = reuse_until(info, staple, vhost.ssl.stapling, now)
                if until > now:
                    reuse[info.key] = (staple, now, until, vhost)
            if staple and error_log.enabled(MODULE, "debug"):
                error_log.debug(MODULE, logids.STAPLING_SENDING,
                                f"stapling: sending {len(staple)}-byte OCSP "
                                f"response for {info.label}")
            stapler = getattr(service, "stapler", None)
            if not staple and stapler is not None and stapler.refuse(info, vhost):
                refuse = info.label     # SSLStaplingMustStaple strict (issue 6): abort below
            else:
                metrics.staple(bool(staple))
                return staple
        except Exception as e:  # anything raised here would abort the handshake
            try:
                error_log.error(MODULE, logids.STAPLING_CALLBACK_ERROR,
                                f"stapling: internal error in the status "
                                f"callback ({type(e).__name__}: {e}); no staple, handshake goes on")
            except Exception:
                pass
            return b""
        # The one deliberate abort: a Must-Staple certificate without a staple under
        # SSLStaplingMustStaple strict.  pyOpenSSL turns the exception into a fatal alert.
        metrics.staple(False)
        raise StapleRequired(refuse)

    return ocsp_status_callback


def _shared_callback(service) -> Callable:
    """The service's one ``ocsp_status_callback``, made on first use (kept on the service)."""
    shared = getattr(service, "_status_callback", None)
    if shared is None:
        shared = ocsp_callback_for(service, None)
        try:
            service._status_callback = shared
        except AttributeError:          # a service that takes no attributes: one each time
            pass
    return shared
