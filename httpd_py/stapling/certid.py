"""Certificate identity for stapling: the cache key and the OCSP CertID.

The cache key is Apache's ``idx``: the 20-byte SHA-1 of the certificate's DER, shared by every
vhost serving that certificate.  The CertID (RFC 6960 4.1.1) is what requests carry and what a
response must echo::

    CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash OCTET STRING,
                          issuerKeyHash OCTET STRING, serialNumber INTEGER }

issuerNameHash hashes the DER of the issuer's subject Name; issuerKeyHash hashes the contents of
the issuer's subjectPublicKey BIT STRING.  Requests use SHA-1 (RFC 5019); a response may answer
with another hash, so a CertID keeps the issuer's name and key bytes and can rehash them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from httpd_py.stapling import der

# hashAlgorithm names cryptography uses (hashes.X().name) -> hashlib name
HASHES = {"sha1": "sha1", "sha224": "sha224", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}


def cache_key(cert_der: bytes) -> bytes:
    """SHA-1 of the certificate DER: the stapling cache key (as mod_ssl's X509_digest)."""
    return hashlib.sha1(cert_der).digest()


def issuer_key_bits(issuer: x509.Certificate) -> bytes:
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return der.spki_key_bits(spki)


@dataclass(frozen=True)
class CertID:
    """One certificate's OCSP identity, hashed with ``algorithm`` (default SHA-1)."""
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    algorithm: str = "sha1"
    issuer_name_der: bytes = field(default=b"", repr=False, compare=False)
    issuer_key: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def from_certs(cls, cert: x509.Certificate, issuer: x509.Certificate,
                   algorithm: str = "sha1") -> "CertID":
        name_der = issuer.subject.public_bytes()
        key = issuer_key_bits(issuer)
        h = HASHES[algorithm]
        return cls(hashlib.new(h, name_der).digest(), hashlib.new(h, key).digest(),
                   cert.serial_number, algorithm, name_der, key)

    def rehash(self, algorithm: str) -> "CertID | None":
        """This CertID under another hash algorithm (None if unknown or not rehashable)."""
        if algorithm == self.algorithm:
            return self
        h = HASHES.get(algorithm)
        if h is None or not self.issuer_name_der:
            return None
        return CertID(hashlib.new(h, self.issuer_name_der).digest(),
                      hashlib.new(h, self.issuer_key).digest(), self.serial, algorithm,
                      self.issuer_name_der, self.issuer_key)

    def matches_single(self, single) -> bool:
        """True if a cryptography OCSPSingleResponse (or response) names this certificate."""
        try:
            alg = single.hash_algorithm.name
        except Exception:
            return False
        mine = self.rehash(alg)
        return (mine is not None and single.serial_number == mine.serial
                and single.issuer_name_hash == mine.issuer_name_hash
                and single.issuer_key_hash == mine.issuer_key_hash)

    def issuer_key_sha1(self) -> bytes:
        return hashlib.sha1(self.issuer_key).digest()
