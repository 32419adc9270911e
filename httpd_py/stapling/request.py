"""OCSP requests: the DER body for POST and the RFC 5019 GET URL.

A request names one CertID and carries no nonce and no extension: the response is cached and
served to every client, so nothing client-specific may go upstream (Apache forwards the client's
status_request extensions; we do not).
"""
from __future__ import annotations

import base64
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from httpd_py.stapling.certid import CertID

_HASH_CLASSES = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
                 "sha384": hashes.SHA384, "sha512": hashes.SHA512}

# RFC 5019 section 5: use GET when the whole URL stays within 255 bytes.
GET_URL_LIMIT = 255


def build_request(cid: CertID) -> bytes:
    """DER OCSPRequest for ``cid``: one Request, no requestorName, no extensions."""
    req = (ocsp.OCSPRequestBuilder()
           .add_certificate_by_hash(cid.issuer_name_hash, cid.issuer_key_hash, cid.serial,
                                    _HASH_CLASSES[cid.algorithm]())
           .build())
    return req.public_bytes(serialization.Encoding.DER)


def get_url(base_url: str, req_der: bytes, limit: int = GET_URL_LIMIT) -> str | None:
    """The RFC 5019 GET URL (base + '/' + url-encoded base64), or None when it would be too long
    or the base URL carries a query (the request cannot be appended to it)."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.query or parts.fragment:
        return None
    b64 = urllib.parse.quote(base64.b64encode(req_der).decode("ascii"), safe="")
    url = base_url + ("" if base_url.endswith("/") else "/") + b64
    return url if len(url) <= limit else None
