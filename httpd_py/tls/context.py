"""One vhost's ``SSLConfig`` -> a fully built pyOpenSSL ``Context``.

Every Context is built in the master before fork and never mutated afterwards: pyOpenSSL refuses
to change a Context once a Connection has used it, and building before fork is what makes TLS
session tickets resume across workers (the ticket keys live in the Context, which every forked
worker shares; OpenSSL reseeds its RNG after fork, so ServerHello randoms still differ).

``SSLSessionCache``: pyOpenSSL exposes no server session-cache callbacks, so a cross-process
session-ID cache (shmcb, redis...) cannot be built.  Without SSLSessionCache (or with ``none``)
the Context keeps no session-ID cache, as mod_ssl does; with any provider configured, OpenSSL's
per-process cache stands in (a worker resumes only its own sessions).  Tickets
(``SSLSessionTickets on``, the default) do the cross-worker resumption work.

Mapping from mod_ssl directives:

==========================  ====================================================================
SSLProtocol                 set_min/max_proto_version, OP_NO_* for holes in the set
SSLCipherSuite [SSL]        set_cipher_list(bytes)
SSLCipherSuite TLSv1.3      set_tls13_ciphersuites(bytes)
SSLHonorCipherOrder on      OP_CIPHER_SERVER_PREFERENCE
SSLSessionTickets off       OP_NO_TICKET; without an SSLSessionCache also no TLS 1.3 ticket at all
                            (SSL_CTX_set_num_tickets 0 through tls/tickets.py; apache2 sends two
                            stateful tickets no server can resume)
SSLOpenSSLConfCmd           Curves/Groups (SSL_CTX_set1_curves_list, a private pyOpenSSL binding:
                            pyOpenSSL has no public groups setter), CipherString, Ciphersuites,
                            MinProtocol, MaxProtocol, Options (ServerPreference, SessionTicket,
                            with "-" to clear), DHParameters (load_tmp_dh).  Others:
                            StartupError (pyOpenSSL has no SSL_CONF).
DHE cipher suites           without DHParameters, Apache's automatic choice: the RFC 3526/2409
                            MODP group of the RSA key's size (tls/dhgroups.py)
SSLCertificateFile/KeyFile  use_certificate_chain_file then use_privatekey_file, per pair (RSA and
                            ECDSA pairs each get their own slot and chain)
SSLCertificateChainFile     add_extra_chain_cert for each certificate in the file
SSLCACertificateFile/Path   load_verify_locations (also lets OpenSSL complete a missing chain)
ALPN                        offers http/1.1 only
==========================  ====================================================================

Log ids (module "ssl"): HP02001 handshake failed, HP02002 handshake timed out, HP02004 421
misdirected request, HP02005 no SNI under SSLStrictSNIVHostCheck (403), HP02006 SNI callback
failure, HP02007 SNI but no Host header (400), HP02010 context built (debug).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from OpenSSL import SSL, crypto
# set1_curves_list, SSL_use_certificate/_PrivateKey on raw pointers (no public API)
from OpenSSL._util import lib as _lib

from httpd_py import logids
from httpd_py.config.model import SSLConfig, StaplingConfig, VHost
from httpd_py.errors import StartupError
from httpd_py.log import error_log
from httpd_py.tls import dhgroups, tickets

_VERSIONS = {"TLSv1": SSL.TLS1_VERSION, "TLSv1.1": SSL.TLS1_1_VERSION,
             "TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}
_ORDER = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_NO_OPTION = {"TLSv1": SSL.OP_NO_TLSv1, "TLSv1.1": SSL.OP_NO_TLSv1_1,
              "TLSv1.2": SSL.OP_NO_TLSv1_2, "TLSv1.3": SSL.OP_NO_TLSv1_3}
_CONF_VERSIONS = {"TLSv1": "TLSv1", "TLSv1.0": "TLSv1", "TLSv1.1": "TLSv1.1",
                  "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}

ALPN_HTTP11 = b"http/1.1"


def _where(vhost: VHost | None) -> str:
    if vhost is None:
        return ""
    name = vhost.server_name or "(main server)"
    loc = f" at {vhost.location}" if vhost.location else ""
    return f"vhost {name}{loc}: "


def _alpn_select(conn: SSL.Connection, offered: list[bytes]):
    return ALPN_HTTP11 if ALPN_HTTP11 in offered else SSL.NO_OVERLAPPING_PROTOCOLS


def protocol_bounds(protocols: frozenset[str]) -> tuple[int, int, int]:
    """(min version, max version, OP_NO_* options for holes) for a set of protocol names."""
    chosen = [p for p in _ORDER if p in protocols]
    if not chosen:
        raise StartupError("SSLProtocol leaves no protocol enabled")
    lo, hi = _ORDER.index(chosen[0]), _ORDER.index(chosen[-1])
    holes = 0
    for p in _ORDER[lo:hi + 1]:
        if p not in protocols:
            holes |= _NO_OPTION[p]
    return _VERSIONS[chosen[0]], _VERSIONS[chosen[-1]], holes


def _set_groups(ctx: SSL.Context, groups: str) -> None:
    if not groups or _lib.SSL_CTX_set1_curves_list(ctx._context, groups.encode("ascii")) != 1:
        raise StartupError(f"SSLOpenSSLConfCmd Curves/Groups: unknown group list {groups!r}")


def _apply_conf_cmd(ctx: SSL.Context, name: str, value: str, set_opts: int = 0) -> None:
    key = name.lower()
    try:
        if key in ("curves", "groups"):
            _set_groups(ctx, value)
        elif key == "cipherstring":
            ctx.set_cipher_list(value.encode("ascii"))
        elif key == "ciphersuites":
            ctx.set_tls13_ciphersuites(value.encode("ascii"))
        elif key == "dhparameters":
            ctx.load_tmp_dh(value.encode())
        elif key in ("minprotocol", "maxprotocol"):
            if value not in _CONF_VERSIONS:
                raise StartupError(f"SSLOpenSSLConfCmd {name}: unknown protocol {value!r}")
            v = _VERSIONS[_CONF_VERSIONS[value]]
            (ctx.set_min_proto_version if key == "minprotocol" else ctx.set_max_proto_version)(v)
        elif key == "options":
            for opt in value.split(","):
                opt = opt.strip()
                neg = opt.startswith("-")
                word = opt.lstrip("-+").lower()
                flag = {"serverpreference": SSL.OP_CIPHER_SERVER_PREFERENCE,
                        "sessionticket": SSL.OP_NO_TICKET,
                        "compression": SSL.OP_NO_COMPRESSION}.get(word)
                if flag is None:
                    raise StartupError(f"SSLOpenSSLConfCmd Options: unsupported option {opt!r}")
                # SessionTicket and Compression are "enable" words for OP_NO_* flags.
                inverted = word in ("sessionticket", "compression")
                if neg != inverted:
                    # pyOpenSSL cannot clear an option: fine when it is not set; a conflict
                    # with SSLHonorCipherOrder / SSLSessionTickets is reported.
                    if flag & set_opts and flag != SSL.OP_NO_COMPRESSION:
                        raise StartupError(f"SSLOpenSSLConfCmd Options {opt} contradicts "
                                           "SSLHonorCipherOrder / SSLSessionTickets")
                    continue
                ctx.set_options(flag)
        else:
            raise StartupError(f"SSLOpenSSLConfCmd {name} is not supported by httpd-py "
                               "(supported: Curves, Groups, CipherString, Ciphersuites, "
                               "MinProtocol, MaxProtocol, Options, DHParameters)")
    except SSL.Error as e:
        raise StartupError(f"SSLOpenSSLConfCmd {name} {value!r} rejected by OpenSSL: {e}") from None


def _automatic_dh(ctx: SSL.Context, ssl: SSLConfig) -> None:
    """DH parameters for DHE-RSA suites as Apache picks them: the MODP group of the RSA key's
    size (one RSA key per Context).  A group OpenSSL's security level refuses (1024 bits) is
    left out: DHE is then not offered, as OpenSSL would refuse it anyway."""
    for pair in ssl.certificates:
        try:
            cert = _load_pem_certs(pair.cert_file)[0]
        except (OSError, ValueError, IndexError):
            continue
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            try:
                dhgroups.apply(ctx, dhgroups.for_key_bits(key.key_size))
            except SSL.Error:
                pass
            return


def _load_pem_certs(path: str) -> list[x509.Certificate]:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificates(f.read())


def _configured(ssl: SSLConfig, where: str) -> tuple[SSL.Context, int]:
    """A new server Context with the protocol, option, cipher and SSLOpenSSLConfCmd settings
    (no certificate yet); (context, options set)."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    try:
        lo, hi, holes = protocol_bounds(ssl.protocols)
    except StartupError as e:
        raise StartupError(f"{where}{e}") from None
    ctx.set_min_proto_version(lo)
    ctx.set_max_proto_version(hi)
    opts = SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION | holes
    if ssl.honor_cipher_order:
        opts |= SSL.OP_CIPHER_SERVER_PREFERENCE
    if not ssl.session_tickets:
        opts |= SSL.OP_NO_TICKET
    ctx.set_options(opts)
    try:
        if ssl.cipher_suite:
            ctx.set_cipher_list(ssl.cipher_suite.encode("ascii"))
        if ssl.tls13_cipher_suites:
            ctx.set_tls13_ciphersuites(ssl.tls13_cipher_suites.encode("ascii"))
    except (SSL.Error, UnicodeEncodeError) as e:
        raise StartupError(f"{where}SSLCipherSuite rejected by OpenSSL: {e}") from None
    for name, value in ssl.openssl_conf_cmds:
        try:
            _apply_conf_cmd(ctx, name, value, opts)
        except StartupError as e:
            raise StartupError(f"{where}{e}") from None
    return ctx, opts


def _finished(ctx: SSL.Context, ssl: SSLConfig, where: str, ocsp_callback: Callable | None,
              servername_callback: Callable | None) -> SSL.Context:
    """CA locations, sessions, tickets, ALPN and the callbacks: the rest of a Context."""
    if ssl.ca_file or ssl.ca_path:
        try:
            ctx.load_verify_locations(ssl.ca_file, ssl.ca_path)
        except (SSL.Error, OSError) as e:
            raise StartupError(f"{where}cannot load SSLCACertificateFile/Path: {e}") from None

    ctx.set_timeout(max(1, ssl.session_cache_timeout))
    ctx.set_session_id(b"httpd-py")
    # As mod_ssl: without an SSLSessionCache the server keeps no session-ID cache; with one,
    # OpenSSL's per-process cache stands in for it.
    cache = ssl.session_cache
    if cache is None or cache.provider == "none":
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        # TLS 1.3 would still send two (stateful) tickets after each full handshake, which
        # nothing can resume: two records and writes per connection for nothing
        if not ssl.session_tickets and not tickets.set_num_tickets(ctx, 0) and tickets.first_miss():
            error_log.debug("ssl", logids.SSL_TICKETS_UNCONTROLLED,
                            "SSL_CTX_set_num_tickets not found in this "
                            "cryptography build: TLS 1.3 sends OpenSSL's default tickets")
    else:
        ctx.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
    ctx.set_alpn_select_callback(_alpn_select)
    if servername_callback is not None:
        ctx.set_tlsext_servername_callback(servername_callback)
    if ocsp_callback is not None:
        ctx.set_ocsp_server_callback(ocsp_callback)
    return ctx


def build_context(ssl: SSLConfig, vhost: VHost | None = None,
                  ocsp_callback: Callable | None = None,
                  servername_callback: Callable | None = None) -> SSL.Context:
    """Build one server Context from a vhost's SSL settings.

    Raises ``StartupError`` naming the vhost and the file for unreadable or mismatched
    certificates and keys, bad cipher strings and unsupported SSLOpenSSLConfCmd names.
    """
    where = _where(vhost)
    if not ssl.certificates:
        raise StartupError(f"{where}SSLEngine on but no SSLCertificateFile")
    ctx, _opts = _configured(ssl, where)

    for pair in ssl.certificates:
        key_file = pair.key_file or pair.cert_file
        try:
            ctx.use_certificate_chain_file(pair.cert_file)
        except (SSL.Error, OSError) as e:
            raise StartupError(f"{where}cannot load SSLCertificateFile {pair.cert_file}: {e}") from None
        try:
            ctx.use_privatekey_file(key_file)
        except (SSL.Error, OSError) as e:
            raise StartupError(f"{where}cannot load SSLCertificateKeyFile {key_file}: {e}") from None
        try:
            ctx.check_privatekey()
        except SSL.Error:
            raise StartupError(f"{where}private key {key_file} does not match certificate "
                               f"{pair.cert_file}") from None
    if not any(name.lower() == "dhparameters" for name, _ in ssl.openssl_conf_cmds):
        _automatic_dh(ctx, ssl)
    if ssl.chain_file:
        try:
            for cert in _load_pem_certs(ssl.chain_file):
                ctx.add_extra_chain_cert(cert)
        except (OSError, ValueError, SSL.Error) as e:
            raise StartupError(f"{where}cannot load SSLCertificateChainFile {ssl.chain_file}: {e}") from None
    return _finished(ctx, ssl, where, ocsp_callback, servername_callback)


# -- Contexts shared by name-based vhosts ----------------------------------------------------
#
# A Context per vhost costs ~20 KB in the master, and every worker that serves the vhost writes
# to ~4 of its pages (SSL_new/SSL_set_SSL_CTX take references on the SSL_CTX, its CERT, the
# certificates and keys), so they are copied: ~15-25 KB per vhost per worker, ~20 MB per
# worker at 1,000 vhosts.  Name-based vhosts whose settings are the same but for their
# certificates can share one Context per (settings, chain); the servername callback then puts
# the vhost's own certificates and keys on the connection (SSL_use_certificate /
# SSL_use_PrivateKey, as nginx's certificate callback does), which writes only to those.


@dataclass(frozen=True, eq=False)
class Identity:
    """One vhost's certificates and keys, loaded once in the master, for a shared Context."""
    chain: tuple[bytes, ...]                   # DER of the chain after each leaf (all the same)
    rsa_bits: int | None                       # the RSA key's size (Apache's automatic DH group)
    objects: tuple                             # pyOpenSSL X509 and PKey objects (owners)
    pointers: tuple[tuple[object, object], ...]   # (X509 *, EVP_PKEY *) per pair, in order


def load_identity(ssl: SSLConfig) -> Identity | None:
    """The vhost's certificates for a shared Context, or None when it cannot share one: no
    chain in the certificate files, pairs with different chains, an SSLCertificateChainFile,
    a key not in its own file, anything unreadable or mismatched (the vhost's own Context then
    reports it, with its message)."""
    if not ssl.certificates or ssl.chain_file:
        return None
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    chain: tuple[bytes, ...] | None = None
    rsa_bits = None
    objects, pointers = [], []
    try:
        for pair in ssl.certificates:
            if not pair.key_file:
                return None
            certs = _load_pem_certs(pair.cert_file)
            this_chain = tuple(c.public_bytes(der) for c in certs[1:])
            if not this_chain or (chain is not None and this_chain != chain):
                return None
            chain = this_chain
            with open(pair.key_file, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), None,
                                                         unsafe_skip_rsa_key_validation=True)
            if key.public_key().public_bytes(der, spki) != certs[0].public_key().public_bytes(der, spki):
                return None
            if isinstance(key, rsa.RSAPrivateKey):
                rsa_bits = rsa_bits or key.key_size
            x = crypto.X509.from_cryptography(certs[0])
            k = crypto.PKey.from_cryptography_key(key)
            objects += [x, k]
            pointers.append((x._x509, k._pkey))
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return Identity(chain or (), rsa_bits, tuple(objects), tuple(pointers))


def shared_key(ssl: SSLConfig, identity: Identity) -> tuple | None:
    """What vhosts sharing a Context must have in common (None: unhashable, never shared)."""
    try:
        key = (dataclasses.replace(ssl, certificates=(), stapling=StaplingConfig()),
               identity.chain, identity.rsa_bits)
        hash(key)
        return key
    except TypeError:
        return None


def build_shared_context(ssl: SSLConfig, identity: Identity, vhost: VHost | None = None,
                         ocsp_callback: Callable | None = None,
                         servername_callback: Callable | None = None) -> SSL.Context:
    """A Context with ``ssl``'s settings and ``identity``'s chain but no certificate: a
    connection switched to it gets its vhost's certificates from ``use_identity``."""
    where = _where(vhost)
    ctx, _opts = _configured(ssl, where)
    for cert_der in identity.chain:
        ctx.add_extra_chain_cert(x509.load_der_x509_certificate(cert_der))
    if identity.rsa_bits and not any(n.lower() == "dhparameters" for n, _ in ssl.openssl_conf_cmds):
        try:
            dhgroups.apply(ctx, dhgroups.for_key_bits(identity.rsa_bits))
        except SSL.Error:
            pass
    return _finished(ctx, ssl, where, ocsp_callback, servername_callback)


def use_identity(conn: SSL.Connection, pointers: tuple[tuple[object, object], ...]) -> bool:
    """Put a vhost's certificates and keys on a connection (after ``set_context`` to its
    shared Context); False when OpenSSL refused one."""
    ssl = conn._ssl
    for cert, key in pointers:
        if _lib.SSL_use_certificate(ssl, cert) != 1 or _lib.SSL_use_PrivateKey(ssl, key) != 1:
            return False
    return True
