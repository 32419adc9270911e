"""What a failed TLS handshake means, as a kind the connection loop can branch on.

OpenSSL reports a handshake failure as a list of (library, function, reason) string triples;
pyOpenSSL exposes no numeric reason codes.  This is the one place that reads them, comparing the
reason field whole (``SSL_R_HTTP_REQUEST`` is "http request"), so callers branch on
``HandshakeFailure`` rather than on message text.

    classify(e) -> HandshakeFailure.PLAIN_HTTP   the client spoke plain HTTP to a TLS port
                                                 (Apache answers with a readable 400)
                   HandshakeFailure.OTHER        anything else
    describe(e) -> str                           the text for the HP02001 log line
"""
from __future__ import annotations

import enum

from OpenSSL import SSL

#: OpenSSL's reason strings (ssl/ssl_err.c) for a plain HTTP request on a TLS port
_PLAIN_HTTP_REASONS = frozenset({"http request", "https proxy request"})


class HandshakeFailure(enum.Enum):
    PLAIN_HTTP = "plain-http"        # SSL_R_HTTP_REQUEST / SSL_R_HTTPS_PROXY_REQUEST
    OTHER = "other"


def _triples(e: BaseException) -> list[tuple]:
    if isinstance(e, SSL.Error) and e.args and isinstance(e.args[0], list):
        return [t for t in e.args[0] if isinstance(t, tuple)]
    return []


def classify(e: BaseException) -> HandshakeFailure:
    """The kind of a handshake exception (``SSL.Error`` or ``OSError``)."""
    for t in _triples(e):
        if t and str(t[-1]).lower() in _PLAIN_HTTP_REASONS:
            return HandshakeFailure.PLAIN_HTTP
    return HandshakeFailure.OTHER


def describe(e: BaseException) -> str:
    """OpenSSL's error queue as one line (``SSL routines::http request``), else the exception."""
    triples = _triples(e)
    if triples:
        return "; ".join(":".join(str(p) for p in item if p) for item in triples) or type(e).__name__
    if isinstance(e, SSL.Error) and e.args and isinstance(e.args[0], list):
        return type(e).__name__
    return f"{type(e).__name__}: {e}"
