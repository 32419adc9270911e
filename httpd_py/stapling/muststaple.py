"""Must-Staple (RFC 7633): does a certificate promise a staple, and what do we do about it.  Pure.

A certificate with the TLS Feature extension (id-pe-tlsfeature, 1.3.6.1.5.5.7.1.24) listing
status_request (5) or status_request_v2 (17) tells clients to refuse a handshake without a
staple (Firefox does).  So such a certificate must always be served with a valid staple:

* at start-up, no valid response for it is logged as an error (HP04810);
* ``SSLStaplingMustStaple warn`` (default): the vhost serves anyway, like Apache (the client
  decides);
* ``SSLStaplingMustStaple strict``: until a valid staple exists the status callback aborts the
  handshake for that certificate (``gate`` says so) instead of sending it without a staple, which
  a Must-Staple-aware client would reject anyway with a worse message; clients that do not ask
  for a staple are not affected (OpenSSL calls the callback only when the client asks).
"""
from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

MODES = ("warn", "strict")

# What the status callback does with a Must-Staple certificate that has no valid staple.
SERVE = "serve"        # send the certificate without a staple (NOACK)
REFUSE = "refuse"      # abort the handshake (SSL_TLSEXT_ERR_ALERT_FATAL)


class StapleRequired(Exception):
    """Raised by the status callback to abort a handshake (strict mode, no staple).

    pyOpenSSL turns an exception in the OCSP callback into SSL_TLSEXT_ERR_ALERT_FATAL and
    re-raises it from ``do_handshake()``: the worker sees a failed handshake.
    """


def requires_staple(cert: x509.Certificate) -> bool:
    """True when ``cert`` carries the RFC 7633 TLS feature status_request(_v2)."""
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.TLS_FEATURE)
    except x509.ExtensionNotFound:
        return False
    except ValueError:          # a malformed extension: be safe, treat it as a promise
        return True
    wanted = {x509.TLSFeatureType.status_request, x509.TLSFeatureType.status_request_v2}
    return any(f in wanted for f in ext.value)


def gate(must_staple: bool, mode: str, has_valid_staple: bool) -> str:
    """What to do in the handshake for a certificate when the client asked for a staple."""
    if must_staple and mode == "strict" and not has_valid_staple:
        return REFUSE
    return SERVE
