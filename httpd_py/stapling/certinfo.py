"""Start-up: which certificates staple, with their issuer, responder URLs, cache key and CertID.

Run in the master before fork.  For every vhost with ``SSLEngine on`` and ``SSLUseStapling on``
and every one of its certificates (RSA and ECDSA alike):

* the issuer: first from the certificate file's own chain and SSLCertificateChainFile, then from
  SSLCACertificateFile and SSLCACertificatePath; "issued" means the name matches AND the issuer's
  key verifies the certificate's signature;
* the responder URLs: every AIA OCSP URL (Apache keeps only the first), or the vhost's
  SSLStaplingForceURL, which wins when set (it is read per vhost, at refresh time);
* the cache key (SHA-1 of the DER) and the SHA-1 CertID, and the DER request, built once.

One ``CertInfo`` per certificate, shared by every vhost that serves it.  A certificate whose issuer
cannot be found is logged (error, as Apache's AH02217 + AH02604) and never stapled; one without
an OCSP URL, in a vhost without ForceURL, gets one info line (Apache logs two errors: since 2025
most public certificates carry no OCSP URL, so this is normal, not an error).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from httpd_py import logids
from httpd_py.config.model import ServerConfig, StaplingConfig, VHost
from httpd_py.log import error_log
from httpd_py.stapling.certid import CertID, cache_key
from httpd_py.stapling.request import build_request

MODULE = "ssl"


@dataclass(frozen=True)
class CertInfo:
    cert: x509.Certificate
    cert_der: bytes
    issuer: x509.Certificate
    key: bytes                        # SHA-1 of cert_der: the stapling cache key
    cid: CertID
    request_der: bytes
    aia_urls: tuple[str, ...]
    label: str                        # "a.test (RSA, serial 1F...)" for logs

    def urls_for(self, scfg: StaplingConfig) -> tuple[str, ...]:
        """SSLStaplingForceURL if the vhost sets it, else every AIA OCSP URL."""
        return (scfg.force_url,) if scfg.force_url else self.aia_urls


@dataclass
class CertTable:
    """Every stapling certificate, by DER and by cache key, with the vhosts that serve it."""
    # by the hex SHA-1 of the DER (a str key): a handshake's lookup then reads no key object
    # (CPython compares str keys in place, but takes a reference on a bytes key to compare
    # it, which in a forked worker copies the page holding the master's DER, one per
    # certificate)
    _by_der: dict[str, CertInfo] = field(default_factory=dict)
    _by_key: dict[bytes, CertInfo] = field(default_factory=dict)
    _vhosts: dict[bytes, list[VHost]] = field(default_factory=dict)
    _for_vhost: dict[int, list[CertInfo]] = field(default_factory=dict)

    def add(self, info: CertInfo, vhost: VHost) -> None:
        if info.key not in self._by_key:
            self._by_key[info.key] = info
            self._by_der[info.key.hex()] = info
        info = self._by_key[info.key]
        vs = self._vhosts.setdefault(info.key, [])
        if not any(v is vhost for v in vs):
            vs.append(vhost)
        mine = self._for_vhost.setdefault(id(vhost), [])
        if info not in mine:
            mine.append(info)

    def by_der(self, der: bytes) -> CertInfo | None:
        return self._by_der.get(hashlib.sha1(der).hexdigest())

    def by_key(self, key: bytes) -> CertInfo | None:
        return self._by_key.get(key)

    def for_vhost(self, vhost: VHost) -> tuple[CertInfo, ...]:
        return tuple(self._for_vhost.get(id(vhost), ()))

    def vhosts_of(self, key: bytes) -> tuple[VHost, ...]:
        return tuple(self._vhosts.get(key, ()))

    def all(self) -> tuple[CertInfo, ...]:
        return tuple(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)


def stapling_vhosts(cfg: ServerConfig) -> list[VHost]:
    return [v for v in cfg.all_vhosts()
            if v.ssl.engine and v.ssl.stapling.enabled and v.ssl.certificates]


def load_pem_certs(path: str) -> list[x509.Certificate]:
    with open(path, "rb") as f:
        data = f.read()
    return x509.load_pem_x509_certificates(data)


def _ca_path_certs(ca_path: str) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    try:
        names = sorted(os.listdir(ca_path))
    except OSError:
        return out
    for name in names:
        p = os.path.join(ca_path, name)
        if not os.path.isfile(p):
            continue
        try:
            out.extend(load_pem_certs(p))
        except (OSError, ValueError):
            continue
    return out


def issued_by(cert: x509.Certificate, candidate: x509.Certificate) -> bool:
    if cert.issuer != candidate.subject:
        return False
    try:
        cert.verify_directly_issued_by(candidate)
        return True
    except Exception:
        return False


def find_issuer(cert: x509.Certificate, chain: list[x509.Certificate], vhost: VHost,
                _ca_cache: dict | None = None) -> x509.Certificate | None:
    """The issuer from the chain first, then SSLCACertificateFile, then SSLCACertificatePath."""
    for c in chain:
        if issued_by(cert, c):
            return c
    sources: list[list[x509.Certificate]] = []
    cache = _ca_cache if _ca_cache is not None else {}
    for kind, path in (("file", vhost.ssl.ca_file), ("path", vhost.ssl.ca_path)):
        if not path:
            continue
        if (kind, path) not in cache:
            try:
                cache[(kind, path)] = load_pem_certs(path) if kind == "file" else _ca_path_certs(path)
            except (OSError, ValueError):
                cache[(kind, path)] = []
        sources.append(cache[(kind, path)])
    for certs in sources:
        for c in certs:
            if issued_by(cert, c):
                return c
    return None


def ocsp_urls(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(d.access_location.value for d in aia
                 if d.access_method == AuthorityInformationAccessOID.OCSP
                 and isinstance(d.access_location, x509.UniformResourceIdentifier))


def describe(cert: x509.Certificate) -> str:
    try:
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    except (IndexError, ValueError):
        cn = cert.subject.rfc4514_string()
    kind = type(cert.public_key()).__name__.replace("PublicKey", "").replace("_", "")
    kind = {"RSA": "RSA", "EllipticCurve": "ECDSA", "EC": "ECDSA"}.get(kind, kind)
    return f"{cn} ({kind}, serial {cert.serial_number:X})"


def collect(cfg: ServerConfig) -> CertTable:
    """Build the table for every stapling vhost (logs problems, never raises on a bad cert)."""
    table = CertTable()
    seen: dict[str, tuple[x509.Certificate, list[x509.Certificate]] | None] = {}
    no_url_logged: set[bytes] = set()
    ca_cache: dict = {}
    for vhost in stapling_vhosts(cfg):
        where = vhost.server_name or "main server"
        chain_extra: list[x509.Certificate] = []
        if vhost.ssl.chain_file:
            try:
                chain_extra = load_pem_certs(vhost.ssl.chain_file)
            except (OSError, ValueError) as e:
                error_log.error(MODULE, logids.STAPLING_CERT_UNREADABLE,
                                f"stapling: cannot read SSLCertificateChainFile {vhost.ssl.chain_file}: {e}")
        for pair in vhost.ssl.certificates:
            if pair.cert_file not in seen:
                try:
                    certs = load_pem_certs(pair.cert_file)
                    seen[pair.cert_file] = (certs[0], certs[1:]) if certs else None
                except (OSError, ValueError) as e:
                    seen[pair.cert_file] = None
                    error_log.error(MODULE, logids.STAPLING_CERT_UNREADABLE,
                                    f"stapling: cannot read certificate {pair.cert_file} ({where}): {e}")
            loaded = seen[pair.cert_file]
            if loaded is None:
                continue
            cert, chain = loaded
            der = cert.public_bytes(serialization.Encoding.DER)
            key = cache_key(der)
            existing = table.by_key(key)
            if existing is not None:
                table.add(existing, vhost)
                _log_no_url(existing, vhost, no_url_logged)
                continue
            issuer = find_issuer(cert, chain + chain_extra, vhost, ca_cache)
            label = describe(cert)
            if issuer is None:
                error_log.error(MODULE, logids.STAPLING_NO_ISSUER,
                                f"stapling: cannot find the issuer of certificate {label} in "
                                f"{pair.cert_file}, SSLCertificateChainFile or SSLCACertificateFile/Path "
                                f"({where}): this certificate will not be stapled")
                continue
            cid = CertID.from_certs(cert, issuer)
            info = CertInfo(cert=cert, cert_der=der, issuer=issuer, key=key, cid=cid,
                            request_der=build_request(cid), aia_urls=ocsp_urls(cert), label=label)
            table.add(info, vhost)
            error_log.debug(MODULE, logids.STAPLING_CERT_CONFIGURED,
                            f"stapling: certificate {label} ({where}) configured, responder "
                            f"{', '.join(info.urls_for(vhost.ssl.stapling)) or 'none'}, key {key.hex()}")
            _log_no_url(info, vhost, no_url_logged)
    return table


def _log_no_url(info: CertInfo, vhost: VHost, logged: set[bytes]) -> None:
    if info.urls_for(vhost.ssl.stapling) or info.key in logged:
        return
    logged.add(info.key)
    error_log.info(MODULE, logids.STAPLING_NO_URL,
                   f"stapling: certificate {info.label} has no OCSP responder URL and "
                   f"{vhost.server_name or 'the main server'} sets no SSLStaplingForceURL: "
                   f"no staple for it")
