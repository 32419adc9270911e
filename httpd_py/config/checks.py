"""Post-config checks: the cross-directive rules, in one place.

Apache runs these at start-up (post_config), after ``-t`` has already said "Syntax OK"; httpd-py's
``-t`` runs them too.  ``check(cfg)`` raises ``ConfigError`` (with the location of the directive
at fault) for a fatal problem and returns the warnings.

* ``SSLUseStapling on`` on an SSL server without ``SSLStaplingCache`` (Apache's AH01958).
* An SSL server without a certificate (Apache's AH02572).
* Certificate and key files readable, parseable, unencrypted and matching (Apache's AH02565).
* An empty SSLProtocol set.
* Listen/vhost consistency: no Listen at all is fatal; a vhost port nothing listens on is a
  warning.
* An ErrorLog whose directory does not exist: a warning (Apache's AH02291 refuses to start).
* Warnings for certificates that are expired or not yet valid, and for a server whose
  certificates name none of its ServerName (Apache's AH01909).
"""
from __future__ import annotations

import datetime
import os
import re

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from httpd_py.config.model import Location, ServerConfig, VHost
from httpd_py.errors import ConfigError


_KEY_PEM = re.compile(rb"-----BEGIN ((?:[A-Z]+ )*PRIVATE KEY)-----.*?-----END \1-----", re.S)


def _fail(msg: str, loc: Location | None) -> ConfigError:
    if loc is None:
        return ConfigError(msg)
    return ConfigError(msg, loc.file, loc.line)


def _vhost_name(v: VHost) -> str:
    if v.location is None:
        return "the main server"
    addrs = " ".join(f"{a.host}:{a.port if a.port is not None else '*'}" for a in v.addrs)
    return f"<VirtualHost {addrs}> ({v.location})"


def _read_pem_objects(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _names_of(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return [n.lower() for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        return [a.value.lower() for a in cert.subject.get_attributes_for_oid(
            x509.oid.NameOID.COMMON_NAME) if isinstance(a.value, str)]


def _name_matches(name: str, patterns: list[str]) -> bool:
    for p in patterns:
        if p == name or (p.startswith("*.") and "." in name and name.split(".", 1)[1] == p[2:]):
            return True
    return False


def _cert_warnings(v: VHost, cert: x509.Certificate, cert_file: str, now) -> list[str]:
    out = []
    where = f" ({v.where('sslcertificatefile') or v.location or 'main server'})"
    if cert.not_valid_after_utc < now:
        out.append(f"certificate {cert_file} expired on {cert.not_valid_after_utc:%Y-%m-%d}{where}")
    elif cert.not_valid_before_utc > now:
        out.append(f"certificate {cert_file} is not valid before "
                   f"{cert.not_valid_before_utc:%Y-%m-%d}{where}")
    if v.server_name and not _name_matches(v.server_name, _names_of(cert)):
        out.append(f"server certificate {cert_file} does NOT include an ID which matches the "
                   f"server name {v.server_name}{where}")
    return out


def _check_pair(cert_file: str, key_file: str | None, cert_loc: Location | None,
                key_loc: Location | None, cache: dict) -> x509.Certificate | None:
    key = (cert_file, key_file)
    if key in cache:
        if isinstance(cache[key], ConfigError):
            raise cache[key]
        return cache[key]
    err = None
    try:
        try:
            data = _read_pem_objects(cert_file)
        except OSError as e:
            raise _fail(f"SSLCertificateFile: cannot read {cert_file}: {e.strerror}", cert_loc)
        try:
            cert = x509.load_pem_x509_certificate(data)
        except (ValueError, UnsupportedAlgorithm):
            raise _fail(f"SSLCertificateFile: {cert_file} holds no PEM certificate", cert_loc)
        kpath, kloc = (key_file, key_loc) if key_file else (cert_file, cert_loc)
        try:
            kdata = _read_pem_objects(kpath)
        except OSError as e:
            raise _fail(f"SSLCertificateKeyFile: cannot read {kpath}: {e.strerror}", kloc)
        m = _KEY_PEM.search(kdata)
        if m is None:
            raise _fail(f"Private key not found in {kpath} (SSLCertificateKeyFile missing or "
                        f"wrong file)", kloc)
        if b"ENCRYPTED" in m.group(0):
            raise _fail(f"SSLCertificateKeyFile: the private key in {kpath} is encrypted; "
                        f"httpd-py needs an unencrypted key", kloc)
        try:
            # the RSA consistency proof costs ~50 ms a key (25 s for 500 keys, on -t and every
            # start); the key is compared with the certificate just below, and OpenSSL checks
            # the pair again when the context is built
            pkey = serialization.load_pem_private_key(m.group(0), password=None,
                                                      unsafe_skip_rsa_key_validation=True)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise _fail(f"SSLCertificateKeyFile: cannot load the private key in {kpath}: {e}",
                        kloc)
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if cert.public_key().public_bytes(der, pub) != pkey.public_key().public_bytes(der, pub):
            raise _fail(f"Certificate and private key from {cert_file} and {kpath} do not match",
                        kloc)
    except ConfigError as e:
        err = e
    cache[key] = err if err is not None else cert
    if err is not None:
        raise err
    return cert


def check(cfg: ServerConfig) -> list[str]:
    """Run the post-config checks; raise ConfigError on the first fatal one, return warnings."""
    warnings: list[str] = []
    pair_cache: dict = {}
    now = datetime.datetime.now(datetime.timezone.utc)
    for v in (cfg.main, *cfg.vhosts):
        if not v.ssl.engine:
            continue
        if v.ssl.stapling.enabled and cfg.stapling_cache is None:
            raise _fail("SSLStapling: no stapling cache available (SSLUseStapling on needs "
                        "SSLStaplingCache)", v.where("sslusestapling") or v.location)
        if not v.ssl.certificates:
            raise _fail(f"Server should be SSL-aware but has no certificate configured "
                        f"[Hint: SSLCertificateFile] ({_vhost_name(v)})",
                        v.where("sslengine") or v.location)
        if not v.ssl.protocols:
            raise _fail("No SSL protocols available [hint: SSLProtocol]",
                        v.where("sslprotocol") or v.location)
        names_ok = []
        for i, pair in enumerate(v.ssl.certificates):
            cert = _check_pair(pair.cert_file, pair.key_file, v.where(f"sslcertificatefile#{i}"),
                               v.where(f"sslcertificatekeyfile#{i}"), pair_cache)
            ws = _cert_warnings(v, cert, pair.cert_file, now)
            warnings.extend(w for w in ws if "does NOT include" not in w)
            names_ok.append(not any("does NOT include" in w for w in ws))
            name_warning = [w for w in ws if "does NOT include" in w]
        if names_ok and not any(names_ok):      # Apache's AH01909, once per server
            warnings.extend(name_warning)

    for v in (cfg.main, *cfg.vhosts):
        target = v.error_log
        if target and not target.startswith(("|", "syslog")):
            d = os.path.dirname(target)
            if not os.path.isdir(d):
                # Apache refuses to start here (AH02291); a warning, so that configurations
                # logging elsewhere (stderr under -X) still load.
                loc = v.where("errorlog") or v.location
                warnings.append(f"Cannot access directory '{d}/' for "
                                f"{'main' if v.location is None else 'vhost'} error log"
                                f"{f' ({loc})' if loc else ''}")
    if not cfg.listens:
        raise ConfigError("no listening sockets available: the configuration has no Listen "
                          "directive", cfg.config_file, 1)
    ports = {ls.port for ls in cfg.listens}
    for v in cfg.vhosts:
        for a in v.addrs:
            if a.port is not None and a.port not in ports:
                warnings.append(f"{_vhost_name(v)} uses port {a.port}, which no Listen "
                                f"directive opens")
    return warnings
