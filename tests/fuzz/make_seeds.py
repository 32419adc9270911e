"""Regenerate the generated part of the seed corpus: the OCSP responses and their PKI.

    .venv/bin/python -m tests.fuzz.make_seeds

The OCSP seeds are valid (and deliberately broken) responses for one leaf certificate; the
``ocsp`` target judges every input against that leaf, its issuer and a fixed clock, so the
mutations of a valid response reach the signature check and the verdict.  Only the public
certificates and the clock are kept (tests/fuzz/data/ocsp/); the keys are thrown away, so a
rerun makes a new PKI and new seeds, all consistent with each other.  The hand-written seeds of
the other targets are plain files and are not touched.
"""
from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from httpd_py.devtools import responder as R
from httpd_py.devtools.pki import make_pki
from httpd_py.stapling import verdict as V

HERE = Path(__file__).parent
DATA = HERE / "data" / "ocsp"
SEEDS = HERE / "corpus" / "ocsp"


def main() -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    tmp = Path(tempfile.mkdtemp())
    try:
        pki = make_pki(tmp / "pki", ("a.test",), kinds=("rsa",), ocsp_url=None, now=now)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    leaf = pki.leaf("a.test", "rsa").cert
    ref = R.CertRef.of(leaf, pki.inter)
    other_ref = R.CertRef(ref.issuer_name_hash, ref.issuer_key_hash, ref.serial + 1)
    signer, signer_key = R.make_signer(pki.inter, pki.inter_key, cn="fuzz delegated signer")
    other_ca, other_ca_key = R.make_ca()

    def build(status="good", cert=pki.inter, key=pki.inter_key, **kw):
        kw.setdefault("now", now)
        return R.build_response(kw.pop("ref", ref), status, cert, key, **kw)

    good = build()
    seeds = {
        "good": good,
        "revoked": build("revoked", revocation_reason=x509.ReasonFlags.key_compromise),
        "unknown": build("unknown"),
        "no-next-update": build(next_update=None),
        "by-name": build(responder_by="name"),
        "delegated": build(cert=signer, key=signer_key, include_certs=(signer,)),
        "delegated-not-included": build(cert=signer, key=signer_key),
        "other-ca": build(cert=other_ca, key=other_ca_key, include_certs=(other_ca,)),
        "other-serial": build(ref=other_ref),
        "expired": build(this_update=now - dt.timedelta(days=30),
                         next_update=now - dt.timedelta(days=20)),
        "flipped-signature": R.forge(good, flip=True),
        "ecdsa-resigned": R.forge(good, key=ec.generate_private_key(ec.SECP256R1()), scheme="ecdsa"),
        "unknown-algorithm": R.forge(good, algorithm_oid="1.2.3.4"),
        "try-later": V.try_later_der(),
        "malformed-request": R.unsuccessful("malformedRequest"),
        "empty": b"",
        "empty-sequence": b"\x30\x00",
    }
    DATA.mkdir(parents=True, exist_ok=True)
    SEEDS.mkdir(parents=True, exist_ok=True)
    for old in SEEDS.glob("seed-*"):
        old.unlink()
    for name, der in seeds.items():
        (SEEDS / f"seed-{name}.der").write_bytes(der)
    pem = serialization.Encoding.PEM
    (DATA / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (DATA / "issuer.pem").write_bytes(pki.inter.public_bytes(pem))
    (DATA / "now").write_text(f"{int(now.timestamp())}\n")
    print(f"{len(seeds)} OCSP seeds in {SEEDS}, PKI and clock in {DATA}")


if __name__ == "__main__":
    main()
