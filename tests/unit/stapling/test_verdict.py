"""verdict.check_response: the hostile-response corpus and signature schemes, pure, fake clock.

Every row is one response an adversarial or broken responder could send; the expected verdict
kind says whether it may ever be stapled (good/revoked: yes; unknown/responder-error: only with
ReturnResponderErrors on; invalid: never).
"""
from __future__ import annotations

import datetime as dt
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from httpd_py.devtools import responder as R
from httpd_py.stapling import der as derlib
from httpd_py.stapling import verdict as V
from httpd_py.stapling.certid import CertID, cache_key

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)
T = NOW.timestamp()


@pytest.fixture(scope="module")
def ctx(pki):
    leaf = pki.leaf("a.test", "rsa")
    other = pki.leaf("b.test", "ec")
    rsa_key = rsa.generate_private_key(65537, 2048)
    rsa_signer, _ = R.make_signer(pki.inter, pki.inter_key, key=rsa_key, cn="RSA delegated signer")
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_signer, _ = R.make_signer(pki.inter, pki.inter_key, key=ed_key, cn="Ed25519 delegated signer")
    other_ca, other_ca_key = R.make_ca()
    return {
        "pki": pki, "leaf": leaf, "other": other,
        "ref": R.CertRef.of(leaf.cert, pki.inter),
        "cid": CertID.from_certs(leaf.cert, pki.inter),
        "rsa_signer": (rsa_signer, rsa_key), "ed_signer": (ed_signer, ed_key),
        "other_ca": (other_ca, other_ca_key),
    }


def _resp(c, status="good", signer=None, include=None, **kw):
    pki = c["pki"]
    cert, key = signer or (pki.inter, pki.inter_key)
    if include is None:
        include = () if signer is None else (cert,)
    kw.setdefault("now", NOW)
    return R.build_response(kw.pop("ref", c["ref"]), status, cert, key, include_certs=include, **kw)


def _ref(c, **change):
    r = c["ref"]
    d = dict(issuer_name_hash=r.issuer_name_hash, issuer_key_hash=r.issuer_key_hash, serial=r.serial)
    d.update(change)
    return R.CertRef(**d)


def _no_eku(c):
    p = c["pki"]
    return R.make_signer(p.inter, p.inter_key, eku=False)


def _expired_signer(c):
    p = c["pki"]
    return R.make_signer(p.inter, p.inter_key, not_before=NOW - dt.timedelta(days=30),
                         not_after=NOW - dt.timedelta(days=2))


def _other_ca_signer(c):
    return R.make_signer(*c["other_ca"])


def _name_forged_signer(c):
    """Claims to be issued by the intermediate (same issuer name), signed by another key."""
    return R.make_signer(c["other_ca"][0], c["other_ca"][1], issuer_name=c["pki"].inter.subject)


def _sha256_certid(c):
    p = c["pki"]
    from cryptography.x509 import ocsp
    req = ocsp.OCSPRequestBuilder().add_certificate(c["leaf"].cert, p.inter, hashes.SHA256()).build()
    return R.CertRef(req.issuer_name_hash, req.issuer_key_hash, req.serial_number, hashes.SHA256())


# (id, builder(ctx) -> DER, expected kind, reason fragment)
CORPUS = [
    ("good-issuer-signed", lambda c: _resp(c), V.GOOD, ""),
    ("good-delegated", lambda c: _resp(c, signer=(c["pki"].signer, c["pki"].signer_key)), V.GOOD, ""),
    ("good-responder-by-name", lambda c: _resp(c, responder_by="name"), V.GOOD, ""),
    ("good-sha256-certid", lambda c: _resp(c, ref=_sha256_certid(c)), V.GOOD, ""),
    ("good-sha384-signature", lambda c: _resp(c, hash_alg=hashes.SHA384()), V.GOOD, ""),
    ("revoked", lambda c: _resp(c, "revoked", revocation_reason=x509.ReasonFlags.key_compromise), V.REVOKED, ""),
    ("unknown", lambda c: _resp(c, "unknown"), V.UNKNOWN, "unknown"),
    ("no-next-update", lambda c: _resp(c, next_update=None), V.GOOD, ""),
    ("tryLater", lambda c: R.unsuccessful("tryLater"), V.RESPONDER_ERROR, "tryLater"),
    ("malformedRequest", lambda c: R.unsuccessful("malformedRequest"), V.RESPONDER_ERROR, "malformedRequest"),
    ("internalError", lambda c: R.unsuccessful("internalError"), V.RESPONDER_ERROR, "internalError"),
    ("sigRequired", lambda c: R.unsuccessful("sigRequired"), V.RESPONDER_ERROR, "sigRequired"),
    ("unauthorized", lambda c: R.unsuccessful("unauthorized"), V.RESPONDER_ERROR, "unauthorized"),
    ("wrong-signer-self-signed", lambda c: _resp(c, signer=R.make_ca("Impostor")), V.INVALID, "signer"),
    ("wrong-signer-claims-issuer", lambda c: R.forge(
        _resp(c), key=ec.generate_private_key(ec.SECP256R1()), scheme="ecdsa"), V.INVALID, "bad signature"),
    ("delegated-no-eku", lambda c: _resp(c, signer=_no_eku(c)), V.INVALID, "OCSPSigning"),
    ("delegated-other-ca", lambda c: _resp(c, signer=_other_ca_signer(c)), V.INVALID, "not issued"),
    ("delegated-forged-issuer-name", lambda c: _resp(c, signer=_name_forged_signer(c)), V.INVALID, "not issued"),
    ("delegated-expired", lambda c: _resp(c, signer=_expired_signer(c)), V.INVALID, "validity"),
    ("delegated-not-included", lambda c: _resp(c, signer=(c["pki"].signer, c["pki"].signer_key), include=()),
     V.INVALID, "signer"),
    ("wrong-serial", lambda c: _resp(c, ref=_ref(c, serial=c["ref"].serial + 1)), V.INVALID, "certificate ID"),
    ("wrong-issuer-name-hash", lambda c: _resp(c, ref=_ref(c, issuer_name_hash=b"\0" * 20)), V.INVALID, "certificate ID"),
    ("wrong-issuer-key-hash", lambda c: _resp(c, ref=_ref(c, issuer_key_hash=b"\1" * 20)), V.INVALID, "certificate ID"),
    ("other-certificate", lambda c: _resp(c, ref=R.CertRef.of(c["other"].cert, c["pki"].inter)), V.INVALID, "certificate ID"),
    ("expired", lambda c: _resp(c, this_update=NOW - dt.timedelta(days=10), next_update=NOW - dt.timedelta(days=1)),
     V.INVALID, "expired"),
    ("future-this-update", lambda c: _resp(c, this_update=NOW + dt.timedelta(hours=1)), V.INVALID, "future"),
    ("next-before-this", lambda c: _resp(c, this_update=NOW - dt.timedelta(minutes=1),
                                         next_update=NOW - dt.timedelta(hours=1) + dt.timedelta(minutes=2)),
     V.INVALID, "precedes"),
    ("flipped-signature", lambda c: R.forge(_resp(c), flip=True), V.INVALID, "bad signature"),
    ("empty-signature", lambda c: R.forge(_resp(c), signature=b""), V.INVALID, "signature"),
    ("unknown-signature-algorithm", lambda c: R.forge(_resp(c), algorithm_oid="1.2.3.4.5"), V.INVALID, "unsupported"),
    ("rsa-alg-on-ec-key", lambda c: R.forge(_resp(c), algorithm_oid="1.2.840.113549.1.1.11"), V.INVALID, "match"),
    ("truncated-der", lambda c: _resp(c)[:100], V.INVALID, "unparsable"),
    ("truncated-one-byte", lambda c: _resp(c)[:-1], V.INVALID, "unparsable"),
    ("trailing-garbage", lambda c: _resp(c) + b"\0", V.INVALID, ""),
    ("random-bytes", lambda c: os.urandom(600), V.INVALID, "unparsable"),
    ("empty", lambda c: b"", V.INVALID, "unparsable"),
    ("html-page", lambda c: b"<html><body>Service Unavailable</body></html>", V.INVALID, "unparsable"),
    ("ocsp-request-not-response", lambda c: __import__("httpd_py.stapling.request", fromlist=["x"]).build_request(c["cid"]),
     V.INVALID, ""),
    ("certificate-der", lambda c: c["leaf"].cert.public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                                                          fromlist=["x"]).Encoding.DER), V.INVALID, ""),
    ("rsa-pss-delegated", lambda c: R.forge(_resp(c, signer=c["rsa_signer"]), key=c["rsa_signer"][1], scheme="pss"),
     V.GOOD, ""),
    ("rsa-pss-sha384-salt48", lambda c: R.forge(_resp(c, signer=c["rsa_signer"]), key=c["rsa_signer"][1], scheme="pss",
                                                hash_name="sha384", salt=48), V.GOOD, ""),
    ("rsa-pss-wrong-salt-declared", lambda c: _pss_bad_salt(c), V.INVALID, "bad signature"),
    ("rsa-pss-sha1-defaults", lambda c: R.forge(_resp(c, signer=c["rsa_signer"]), key=c["rsa_signer"][1], scheme="pss",
                                                hash_name="sha1", salt=20), V.GOOD, ""),
    ("rsa-pkcs1-delegated", lambda c: R.forge(_resp(c, signer=c["rsa_signer"]), key=c["rsa_signer"][1], scheme="pkcs1"),
     V.GOOD, ""),
    ("rsa-pkcs1-sha1", lambda c: R.forge(_resp(c, signer=c["rsa_signer"]), key=c["rsa_signer"][1], scheme="pkcs1",
                                         hash_name="sha1"), V.GOOD, ""),
    ("rsa-pkcs1-flipped", lambda c: R.forge(_resp(c, signer=c["rsa_signer"]), key=c["rsa_signer"][1], scheme="pkcs1",
                                            flip=True), V.INVALID, "bad signature"),
    ("ecdsa-sha384", lambda c: R.forge(_resp(c), key=c["pki"].inter_key, scheme="ecdsa", hash_name="sha384"), V.GOOD, ""),
    ("ed25519-delegated", lambda c: _resp(c, signer=c["ed_signer"]), V.GOOD, ""),
    ("ed25519-flipped", lambda c: R.forge(_resp(c, signer=c["ed_signer"]), flip=True), V.INVALID, "bad signature"),
    ("ed25519-signed-by-wrong-key", lambda c: R.forge(_resp(c, signer=c["ed_signer"]),
                                                      key=ed25519.Ed25519PrivateKey.generate(), scheme="ed25519"),
     V.INVALID, "bad signature"),
]


def _pss_bad_salt(c):
    """Signed with salt 32 but declares salt 20 (the verifier must use the declared value)."""
    der = R.forge(_resp(c, signer=c["rsa_signer"]), key=c["rsa_signer"][1], scheme="pss", salt=32)
    tbs, oid, params, sig = derlib.basic_response_parts(der)
    wrong = R.forge(der, key=c["rsa_signer"][1], scheme="pss", salt=20)
    return R.forge(wrong, signature=sig)


def test_corpus_is_large_enough():
    assert len([row for row in CORPUS if row[2] != V.GOOD]) >= 25


@pytest.mark.parametrize("name,build,kind,reason", CORPUS, ids=[r[0] for r in CORPUS])
def test_corpus(ctx, name, build, kind, reason):
    der = build(ctx)
    v = V.check_response(der, ctx["cid"], ctx["pki"].inter, T, skew=300, max_age=None)
    assert v.kind == kind, (v.kind, v.reason)
    assert reason.lower() in v.reason.lower()
    # the stapling rule: invalid never, errors only when ReturnResponderErrors is on
    assert v.stapleable(True) == (kind != V.INVALID)
    assert v.stapleable(False) == (kind in (V.GOOD, V.REVOKED))


def test_revoked_details(ctx):
    der = _resp(ctx, "revoked", revocation_reason=x509.ReasonFlags.key_compromise)
    v = V.check_response(der, ctx["cid"], ctx["pki"].inter, T)
    assert v.revocation_reason == "keyCompromise"
    assert abs(v.revocation_time - (T - 86400)) < 2


def test_every_truncation_is_invalid_and_never_raises(ctx):
    der = _resp(ctx)
    for n in range(0, len(der), 7):
        assert V.check_response(der[:n], ctx["cid"], ctx["pki"].inter, T).kind == V.INVALID


def test_every_single_byte_flip_is_never_good_with_a_changed_meaning(ctx):
    """Flip each byte of a good response: the result is invalid, or (when the flip hit an
    unsigned part such as the outer status or certs) still the same good verdict."""
    der = _resp(ctx)
    _, _, _, sig = derlib.basic_response_parts(der)
    kinds = set()
    for i in range(len(der)):
        bad = der[:i] + bytes([der[i] ^ 0x40]) + der[i + 1:]
        v = V.check_response(bad, ctx["cid"], ctx["pki"].inter, T)
        kinds.add(v.kind)
        assert v.kind in (V.INVALID, V.GOOD, V.RESPONDER_ERROR), (i, v)
        if v.kind == V.GOOD:  # only if the signed bytes are untouched
            assert derlib.basic_response_parts(bad)[0] == derlib.basic_response_parts(der)[0]
    assert V.INVALID in kinds


@pytest.mark.parametrize("offset,skew,max_age,kind", [
    # offset: now - thisUpdate (thisUpdate = T - 300 by default builder, nextUpdate = +7 d)
    (0, 300, None, V.GOOD),
    (0, 300, 3600, V.GOOD),
    (0, 300, 299, V.INVALID),                       # thisUpdate 300 s old > MaxAge 299
    (7 * 86400 - 300 + 299, 300, None, V.GOOD),     # just within skew after nextUpdate
    (7 * 86400 - 300 + 301, 300, None, V.INVALID),  # past nextUpdate + skew
    (7 * 86400, 0, None, V.INVALID),
    (-600, 300, None, V.GOOD),                      # thisUpdate exactly skew ahead of now: accepted
    (-601, 300, None, V.INVALID),                   # thisUpdate more than skew in the future
    (-400, 0, None, V.INVALID),
])
def test_time_window(ctx, offset, skew, max_age, kind):
    der = _resp(ctx)  # thisUpdate = NOW - 300
    v = V.check_response(der, ctx["cid"], ctx["pki"].inter, T + offset, skew=skew, max_age=max_age)
    assert v.kind == kind, v.reason


def test_expires_at(ctx):
    v = V.check_response(_resp(ctx), ctx["cid"], ctx["pki"].inter, T)
    assert v.expires_at(300, None) == v.next_update + 300
    assert v.expires_at(300, 60) == v.this_update + 60
    v2 = V.check_response(_resp(ctx, next_update=None), ctx["cid"], ctx["pki"].inter, T)
    assert v2.expires_at(300, None) is None


def test_try_later_der_is_tryLater():
    v = V.inspect(V.try_later_der(), CertID(b"", b"", 1), None, T)
    assert v.kind == V.RESPONDER_ERROR and v.response_status == "tryLater"
    assert V.try_later_der() == bytes.fromhex("30030a0103")


def test_cache_key_is_sha1_of_der(ctx):
    import hashlib
    from cryptography.hazmat.primitives import serialization
    d = ctx["leaf"].cert.public_bytes(serialization.Encoding.DER)
    assert cache_key(d) == hashlib.sha1(d).digest() and len(cache_key(d)) == 20


def test_certid_matches_openssl_style_request(ctx):
    from cryptography.x509 import ocsp
    req = ocsp.OCSPRequestBuilder().add_certificate(ctx["leaf"].cert, ctx["pki"].inter, hashes.SHA1()).build()
    cid = ctx["cid"]
    assert (cid.issuer_name_hash, cid.issuer_key_hash, cid.serial) == (
        req.issuer_name_hash, req.issuer_key_hash, req.serial_number)


from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_responses_never_raise_and_never_validate_changed_signed_bytes(ctx, data):
    """Random splices, insertions and deletions of a good (or revoked) response: check_response
    never raises, and a GOOD/REVOKED verdict only comes back when the signed tbsResponseData
    is byte-identical to the original."""
    status = data.draw(st.sampled_from(["good", "revoked"]))
    base = ctx.setdefault(f"fixed-{status}", _resp(ctx, status))   # fixed bytes: a stable strategy
    tbs0 = derlib.basic_response_parts(base)[0]
    i = data.draw(st.integers(0, len(base)))
    j = data.draw(st.integers(i, min(len(base), i + 40)))
    insert = data.draw(st.binary(max_size=40))
    mutated = base[:i] + insert + base[j:]
    v = V.check_response(mutated, ctx["cid"], ctx["pki"].inter, T)
    assert v.kind in (V.GOOD, V.REVOKED, V.UNKNOWN, V.RESPONDER_ERROR, V.INVALID)
    if v.valid:
        assert derlib.basic_response_parts(mutated)[0] == tbs0


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=600))
def test_random_bytes_are_never_valid(blob):
    from httpd_py.stapling.certid import CertID
    v = V.check_response(blob, CertID(b"\0" * 20, b"\0" * 20, 1), None, T)
    assert v.kind in (V.INVALID, V.RESPONDER_ERROR)
