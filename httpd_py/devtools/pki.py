"""A throwaway PKI for the demo and the tests, built with cryptography.

Makes a root CA, an intermediate CA that issues the server certificates, a delegated OCSP
signing certificate (id-kp-OCSPSigning, issued by the intermediate), and leaves for the names you
ask: RSA-2048 and ECDSA P-256, each with an AIA OCSP URL, optionally with the RFC 7633 TLS
feature (Must-Staple).  Also writes an ``index.txt`` that ``openssl ocsp -index`` reads.

Files in ``out_dir``::

    root.pem root.key  inter.pem inter.key  ocsp-signer.pem ocsp-signer.key
    chain.pem                       (intermediate + root)
    <name>-rsa.pem <name>-rsa.key   (leaf + intermediate: a full chain file, as Apache accepts)
    <name>-ec.pem <name>-ec.key
    index.txt

Private keys are written 0600.  Command line::

    python -m httpd_py.devtools.pki OUT_DIR --ocsp-url http://127.0.0.1:8888/ a.test b.test
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "httpd-py test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@dataclass
class Leaf:
    name: str
    kind: str                     # "rsa" or "ec"
    cert: x509.Certificate
    key: object
    cert_file: Path
    key_file: Path


@dataclass
class PKI:
    out_dir: Path
    root: x509.Certificate
    root_key: object
    inter: x509.Certificate
    inter_key: object
    signer: x509.Certificate
    signer_key: object
    leaves: dict[tuple[str, str], Leaf] = field(default_factory=dict)

    def leaf(self, name: str, kind: str = "rsa") -> Leaf:
        return self.leaves[(name, kind)]

    @property
    def chain_file(self) -> Path:
        return self.out_dir / "chain.pem"

    @property
    def root_file(self) -> Path:
        return self.out_dir / "root.pem"

    @property
    def inter_file(self) -> Path:
        return self.out_dir / "inter.pem"


def _cert(subject: x509.Name, issuer: x509.Name, pub, signer_key, *, ca: bool, now: dt.datetime,
          days: int = 365, serial: int | None = None, extensions=()) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
         .serial_number(serial or x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True, crl_sign=True,
                                          encipher_only=False, decipher_only=False), critical=True)
    for ext, critical in extensions:
        b = b.add_extension(ext, critical=critical)
    return b.sign(signer_key, hashes.SHA256())


def make_leaf(pki: PKI, name: str, kind: str = "rsa", *, ocsp_urls: tuple[str, ...] = (),
              must_staple: bool = False, alt_names: tuple[str, ...] = (), suffix: str = "",
              now: dt.datetime | None = None) -> Leaf:
    """Issue a leaf from the intermediate and write ``<name>-<kind><suffix>.pem/.key``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    exts = [(x509.SubjectAlternativeName([x509.DNSName(n) for n in (name, *alt_names)]), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.inter_key.public_key()), False)]
    if ocsp_urls:
        exts.append((x509.AuthorityInformationAccess(
            [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u))
             for u in ocsp_urls]), False))
    if must_staple:
        exts.append((x509.TLSFeature([x509.TLSFeatureType.status_request]), False))
    cert = _cert(_name(name), pki.inter.subject, key.public_key(), pki.inter_key, ca=False, now=now,
                 days=90, extensions=exts)
    stem = f"{name}-{kind}{suffix}"
    cert_file, key_file = pki.out_dir / f"{stem}.pem", pki.out_dir / f"{stem}.key"
    cert_file.write_bytes(_pem(cert, pki.inter))
    _write_key(key_file, key)
    leaf = Leaf(name, kind + suffix, cert, key, cert_file, key_file)
    pki.leaves[(name, kind + suffix)] = leaf
    return leaf


def make_pki(out_dir: str | os.PathLike, names: tuple[str, ...] = ("a.test", "b.test"), *,
             ocsp_url: str | None = "http://127.0.0.1:8888/", kinds: tuple[str, ...] = ("rsa", "ec"),
             must_staple_names: tuple[str, ...] = (), now: dt.datetime | None = None) -> PKI:
    """Create the whole PKI in ``out_dir`` (created if missing) and return it."""
    now = now or dt.datetime.now(dt.timezone.utc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert(_name("httpd-py Test Root CA"), _name("httpd-py Test Root CA"), root_key.public_key(),
                 root_key, ca=True, now=now, days=3650)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _cert(_name("httpd-py Test Intermediate CA"), root.subject, inter_key.public_key(), root_key,
                  ca=True, now=now, days=1825,
                  extensions=[(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False)])
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = _cert(_name("httpd-py Test OCSP Signer"), inter.subject, signer_key.public_key(), inter_key,
                   ca=False, now=now, days=365,
                   extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False),
                               (x509.OCSPNoCheck(), False)])
    pki = PKI(out, root, root_key, inter, inter_key, signer, signer_key)
    (out / "root.pem").write_bytes(_pem(root))
    _write_key(out / "root.key", root_key)
    (out / "inter.pem").write_bytes(_pem(inter))
    _write_key(out / "inter.key", inter_key)
    (out / "ocsp-signer.pem").write_bytes(_pem(signer))
    _write_key(out / "ocsp-signer.key", signer_key)
    (out / "chain.pem").write_bytes(_pem(inter, root))
    urls = (ocsp_url,) if ocsp_url else ()
    for name in names:
        for kind in kinds:
            make_leaf(pki, name, kind, ocsp_urls=urls, must_staple=name in must_staple_names, now=now)
    write_index(pki)
    return pki


def write_index(pki: PKI, revoked: dict[int, dt.datetime] | None = None) -> Path:
    """Write ``index.txt`` for ``openssl ocsp -index`` covering every leaf (V or R lines)."""
    revoked = revoked or {}
    lines = []
    for leaf in pki.leaves.values():
        c = leaf.cert
        exp = c.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
        serial = format(c.serial_number, "X")
        if len(serial) % 2:
            serial = "0" + serial
        subject = "/" + "/".join(f"{a.oid._name}={a.value}" for a in c.subject)
        if c.serial_number in revoked:
            when = revoked[c.serial_number].strftime("%y%m%d%H%M%SZ")
            lines.append(f"R\t{exp}\t{when}\t{serial}\tunknown\t{subject}\n")
        else:
            lines.append(f"V\t{exp}\t\t{serial}\tunknown\t{subject}\n")
    path = pki.out_dir / "index.txt"
    path.write_text("".join(lines))
    (pki.out_dir / "index.txt.attr").write_text("unique_subject = no\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m httpd_py.devtools.pki", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("names", nargs="*", default=["a.test", "b.test"])
    ap.add_argument("--ocsp-url", default="http://127.0.0.1:8888/")
    ap.add_argument("--must-staple", action="append", default=[], help="name whose leaves get Must-Staple")
    args = ap.parse_args(argv)
    pki = make_pki(args.out_dir, tuple(args.names), ocsp_url=args.ocsp_url,
                   must_staple_names=tuple(args.must_staple))
    for leaf in pki.leaves.values():
        print(f"{leaf.name} {leaf.kind}: {leaf.cert_file} {leaf.key_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
