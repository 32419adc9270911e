"""Validation of an OCSP response for one certificate: a pure function returning a Verdict.

cryptography parses responses but verifies nothing, so this module checks, in order:

1. the response parses and its responseStatus is successful (else ``responder-error``);
2. it is a BasicOCSPResponse holding a SingleResponse whose CertID matches ours (serial, issuer
   name hash, issuer key hash, under whatever hash the responder used);
3. its signature: by the issuer itself, or by a delegated responder certificate included in the
   response that the issuer signed and that carries id-kp-OCSPSigning (and is within its
   validity).  RSA PKCS#1 v1.5, RSA-PSS (parameters read from the DER), ECDSA, Ed25519, Ed448;
4. thisUpdate / nextUpdate against ``now`` with the ResponseTimeSkew, and the ResponseMaxAge,
   with OpenSSL's OCSP_check_validity rules;
5. the certificate status: good, revoked or unknown.

Kinds: ``good`` and ``revoked`` are valid (stapled, cached as valid); ``unknown`` and
``responder-error`` (a non-successful responseStatus) are errors that ReturnResponderErrors may
staple; ``invalid`` is never stapled.  ``check_response`` never raises.
"""
from __future__ import annotations

import datetime as dt
import enum
import hashlib
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from httpd_py.stapling import der as derlib
from httpd_py.stapling.certid import CertID, issuer_key_bits

GOOD, REVOKED, UNKNOWN, RESPONDER_ERROR, INVALID = "good", "revoked", "unknown", "responder-error", "invalid"


class Problem(enum.Enum):
    """Why a verdict is ``invalid``: callers branch on this, never on ``reason``'s wording."""
    UNPARSABLE = "unparsable"          # not an OCSP response at all (HTML, garbage)
    MALFORMED = "malformed"            # an OCSP response with a broken inner structure
    NO_CERTID = "certid"               # no SingleResponse for our certificate
    SIGNER = "signer"                  # neither the issuer nor an authorised delegated signer
    SIGNATURE = "signature"            # the signature does not verify
    NOT_YET_VALID = "future"           # thisUpdate after now + skew
    TOO_OLD = "too-old"                # thisUpdate before now - SSLStaplingResponseMaxAge
    EXPIRED = "expired"                # nextUpdate before now - skew
    BAD_TIMES = "times"                # no thisUpdate, or nextUpdate before thisUpdate
    INTERNAL = "internal"              # a bug while validating

    @property
    def outdated(self) -> bool:
        """Times that were fine once: the response aged out (``stapling-status`` says expired)."""
        return self in (Problem.TOO_OLD, Problem.EXPIRED)

# OCSPResponseStatus -> the RFC 6960 names Apache and openssl print
STATUS_NAMES = {
    ocsp.OCSPResponseStatus.SUCCESSFUL: "successful",
    ocsp.OCSPResponseStatus.MALFORMED_REQUEST: "malformedRequest",
    ocsp.OCSPResponseStatus.INTERNAL_ERROR: "internalError",
    ocsp.OCSPResponseStatus.TRY_LATER: "tryLater",
    ocsp.OCSPResponseStatus.SIG_REQUIRED: "sigRequired",
    ocsp.OCSPResponseStatus.UNAUTHORIZED: "unauthorized",
}

_HASH_OIDS = {
    "1.3.14.3.2.26": hashes.SHA1, "2.16.840.1.101.3.4.2.4": hashes.SHA224,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256, "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
_RSA_PKCS1 = {
    "1.2.840.113549.1.1.5": hashes.SHA1, "1.2.840.113549.1.1.14": hashes.SHA224,
    "1.2.840.113549.1.1.11": hashes.SHA256, "1.2.840.113549.1.1.12": hashes.SHA384,
    "1.2.840.113549.1.1.13": hashes.SHA512,
}
_ECDSA = {
    "1.2.840.10045.4.1": hashes.SHA1, "1.2.840.10045.4.3.1": hashes.SHA224,
    "1.2.840.10045.4.3.2": hashes.SHA256, "1.2.840.10045.4.3.3": hashes.SHA384,
    "1.2.840.10045.4.3.4": hashes.SHA512,
}
_RSA_PSS = "1.2.840.113549.1.1.10"
_MGF1 = "1.2.840.113549.1.1.8"
_ED25519, _ED448 = "1.3.101.112", "1.3.101.113"


@dataclass(frozen=True)
class Verdict:
    """What a response says about one certificate, and whether we may trust it.

    Times are epoch seconds.  ``reason`` explains an ``invalid`` or error verdict (for logs).
    """
    kind: str
    reason: str = ""
    response_status: str | None = None
    this_update: float | None = None
    next_update: float | None = None
    revocation_time: float | None = None
    revocation_reason: str | None = None
    problem: Problem | None = None      # set exactly when kind is INVALID

    @property
    def valid(self) -> bool:
        """good or revoked: a trustworthy statement about the certificate."""
        return self.kind in (GOOD, REVOKED)

    @property
    def error(self) -> bool:
        """unknown or a non-successful status: stapled only with ReturnResponderErrors on."""
        return self.kind in (UNKNOWN, RESPONDER_ERROR)

    def stapleable(self, return_errors: bool) -> bool:
        return self.valid or (self.error and return_errors)

    def time_problem(self, now: float, skew: float, max_age: float | None) -> str | None:
        """Why the response's times are unacceptable at ``now`` (None: fine).

        OpenSSL's OCSP_check_validity: thisUpdate <= now + skew; with a MaxAge, thisUpdate >=
        now - maxage; nextUpdate (when present) >= now - skew and >= thisUpdate.
        """
        found = self._time_problem(now, skew, max_age)
        return None if found is None else found[1]

    def _time_problem(self, now: float, skew: float,
                      max_age: float | None) -> tuple[Problem, str] | None:
        if self.this_update is None:
            return None if self.kind == RESPONDER_ERROR else (Problem.BAD_TIMES, "no thisUpdate")
        if self.this_update > now + skew:
            return Problem.NOT_YET_VALID, "thisUpdate is in the future"
        if max_age is not None and self.this_update < now - max_age:
            return Problem.TOO_OLD, "thisUpdate is older than SSLStaplingResponseMaxAge"
        if self.next_update is not None:
            if self.next_update < self.this_update:
                return Problem.BAD_TIMES, "nextUpdate precedes thisUpdate"
            if self.next_update < now - skew:
                return Problem.EXPIRED, "response expired (nextUpdate passed)"
        return None

    def at(self, now: float, skew: float, max_age: float | None) -> "Verdict":
        """This verdict judged at ``now``: unchanged, or ``invalid`` for a time problem."""
        if self.kind in (INVALID, RESPONDER_ERROR):
            return self
        found = self._time_problem(now, skew, max_age)
        return self if found is None else replace(self, kind=INVALID, problem=found[0],
                                                  reason=found[1])

    def expires_at(self, skew: float, max_age: float | None) -> float | None:
        """The first moment the times stop being acceptable (None: never, per OpenSSL)."""
        ends = []
        if self.next_update is not None:
            ends.append(self.next_update + skew)
        if max_age is not None and self.this_update is not None:
            ends.append(self.this_update + max_age)
        return min(ends) if ends else None


def invalid(reason: str, problem: Problem = Problem.MALFORMED, **kw) -> Verdict:
    return Verdict(INVALID, reason, problem=problem, **kw)


def _ts(d: dt.datetime | None) -> float | None:
    return None if d is None else d.timestamp()


def _pss_padding(params: bytes | None):
    """(padding, hash) from RSASSA-PSS-params, with RFC 4055 defaults (SHA-1, MGF1-SHA-1, 20)."""
    hash_cls, mgf_hash_cls, salt = hashes.SHA1, hashes.SHA1, 20
    if params is None:
        raise derlib.DerError("RSA-PSS without parameters")
    tag, body, _ = derlib.read_tlv(params)
    if tag != derlib.SEQUENCE:
        raise derlib.DerError("RSA-PSS parameters are not a SEQUENCE")
    for t, v in derlib.children(body):
        if t == 0xA0:
            _, alg, _ = derlib.read_tlv(v)
            hash_cls = _HASH_OIDS[derlib.decode_oid(derlib.children(alg)[0][1])]
        elif t == 0xA1:
            _, alg, _ = derlib.read_tlv(v)
            parts = derlib.children(alg)
            if derlib.decode_oid(parts[0][1]) != _MGF1:
                raise derlib.DerError("RSA-PSS mask generation is not MGF1")
            inner = derlib.children(parts[1][1])
            mgf_hash_cls = _HASH_OIDS[derlib.decode_oid(inner[0][1])]
        elif t == 0xA2:
            _, n, _ = derlib.read_tlv(v)
            salt = derlib.decode_int(n)
        elif t == 0xA3:
            _, n, _ = derlib.read_tlv(v)
            if derlib.decode_int(n) != 1:
                raise derlib.DerError("RSA-PSS trailer field is not 1")
    if salt < 0:
        raise derlib.DerError("negative PSS salt length")
    return padding.PSS(mgf=padding.MGF1(mgf_hash_cls()), salt_length=salt), hash_cls()


def verify_signature(key, oid: str, params: bytes | None, signature: bytes, data: bytes) -> str | None:
    """Verify ``signature`` over ``data`` with ``key`` under signature algorithm ``oid``.

    Returns None when it verifies, else the reason.  The key type must fit the algorithm.
    """
    try:
        if oid in _RSA_PKCS1:
            if not isinstance(key, rsa.RSAPublicKey):
                return "signature algorithm does not match the signer's key"
            key.verify(signature, data, padding.PKCS1v15(), _RSA_PKCS1[oid]())
        elif oid == _RSA_PSS:
            if not isinstance(key, rsa.RSAPublicKey):
                return "signature algorithm does not match the signer's key"
            pad, h = _pss_padding(params)
            key.verify(signature, data, pad, h)
        elif oid in _ECDSA:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return "signature algorithm does not match the signer's key"
            key.verify(signature, data, ec.ECDSA(_ECDSA[oid]()))
        elif oid == _ED25519:
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return "signature algorithm does not match the signer's key"
            key.verify(signature, data)
        elif oid == _ED448:
            if not isinstance(key, ed448.Ed448PublicKey):
                return "signature algorithm does not match the signer's key"
            key.verify(signature, data)
        else:
            return f"unsupported signature algorithm {oid}"
    except InvalidSignature:
        return "bad signature"
    except (derlib.DerError, KeyError, IndexError, ValueError, TypeError) as e:
        return f"bad signature parameters ({e})"
    return None


def _names_signer(resp: ocsp.OCSPResponse, cert: x509.Certificate, key_sha1: bytes | None = None) -> bool:
    """Does the response's ResponderID name ``cert`` (by name or by SHA-1 of its key)?"""
    if resp.responder_name is not None:
        return resp.responder_name == cert.subject
    if resp.responder_key_hash is not None:
        if key_sha1 is None:
            key_sha1 = hashlib.sha1(issuer_key_bits(cert)).digest()
        return resp.responder_key_hash == key_sha1
    return False


def _find_signer(resp: ocsp.OCSPResponse, issuer: x509.Certificate, cid: CertID, now: float,
                 skew: float):
    """The signer's public key, or (None, reason)."""
    if _names_signer(resp, issuer, cid.issuer_key_sha1() if cid.issuer_key else None):
        return issuer.public_key(), None
    named = [c for c in resp.certificates if _names_signer(resp, c)]
    if not named:
        return None, "signer is neither the issuer nor a certificate included in the response"
    reason = "delegated signer rejected"
    for cert in named:
        try:
            cert.verify_directly_issued_by(issuer)
        except Exception:
            reason = "delegated signer is not issued by the certificate's issuer"
            continue
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = ()
        except Exception:
            reason = "delegated signer has a malformed extension"
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            reason = "delegated signer lacks id-kp-OCSPSigning"
            continue
        if not (cert.not_valid_before_utc.timestamp() <= now + skew
                and cert.not_valid_after_utc.timestamp() >= now - skew):
            reason = "delegated signer certificate is outside its validity"
            continue
        return cert.public_key(), None
    return None, reason


def inspect(der: bytes, cid: CertID, issuer: x509.Certificate, now: float, *,
            skew: float = 300) -> Verdict:
    """Everything but the response's time window (``now`` only judges a delegated signer)."""
    try:
        resp = ocsp.load_der_ocsp_response(der)
    except Exception as e:
        return invalid(f"unparsable response ({type(e).__name__})", Problem.UNPARSABLE)
    try:
        status = resp.response_status
        if status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            name = STATUS_NAMES.get(status, str(status))
            return Verdict(RESPONDER_ERROR, f"responder status {name}", response_status=name)
        try:
            parts = derlib.basic_response_parts(der)
        except derlib.DerError as e:
            return invalid(f"malformed BasicOCSPResponse ({e})")
        if parts is None:
            return invalid("successful response without responseBytes")
        tbs, oid, params, signature = parts
        single = None
        for s in resp.responses:
            if cid.matches_single(s):
                single = s
                break
        if single is None:
            return invalid("certificate ID not present in response", Problem.NO_CERTID,
                           response_status="successful")
        key, reason = _find_signer(resp, issuer, cid, now, skew)
        if key is None:
            return invalid(reason, Problem.SIGNER, response_status="successful")
        problem = verify_signature(key, oid, params, signature, tbs)
        if problem is not None:
            return invalid(problem, Problem.SIGNATURE, response_status="successful")
        cs = single.certificate_status
        kind = {ocsp.OCSPCertStatus.GOOD: GOOD, ocsp.OCSPCertStatus.REVOKED: REVOKED,
                ocsp.OCSPCertStatus.UNKNOWN: UNKNOWN}[cs]
        rev_time = _ts(single.revocation_time_utc) if kind == REVOKED else None
        rev_reason = None
        if kind == REVOKED and single.revocation_reason is not None:
            rev_reason = single.revocation_reason.value
        return Verdict(kind, "" if kind == GOOD else f"certificate status {kind}",
                       response_status="successful", this_update=_ts(single.this_update_utc),
                       next_update=_ts(single.next_update_utc), revocation_time=rev_time,
                       revocation_reason=rev_reason)
    except Exception as e:  # cryptography raises lazily on malformed inner fields
        return invalid(f"malformed response ({type(e).__name__}: {e})")


def check_response(der: bytes, cid: CertID, issuer: x509.Certificate, now: float, *,
                   skew: float = 300, max_age: float | None = None) -> Verdict:
    """Validate ``der`` for the certificate ``cid`` issued by ``issuer`` at time ``now``."""
    try:
        return inspect(der, cid, issuer, now, skew=skew).at(now, skew, max_age)
    except Exception as e:  # never raise past this boundary
        return invalid(f"internal error validating response ({type(e).__name__})",
                       Problem.INTERNAL)


_TRY_LATER: bytes | None = None


def try_later_der() -> bytes:
    """A synthesized ``tryLater`` OCSPResponse (SSLStaplingFakeTryLater): 30 03 0a 01 03."""
    global _TRY_LATER
    if _TRY_LATER is None:
        _TRY_LATER = ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(serialization.Encoding.DER)
    return _TRY_LATER
