"""mod_ssl: certificates, protocols, ciphers, session cache, accepted-only rows (stapling.py:
OCSP stapling)."""
from __future__ import annotations

import os
from typing import Callable

from httpd_py.config import modules, values
from httpd_py.config.directives.base import (
    FLAG, ITERATE, RAW, TAKE1, TAKE12, TAKE2, TAKE23, Directive, flag, Parser, path, seconds,
    _check_exists, _nothing, _validate_file, _validate_flag, _validate_int)
from httpd_py.errors import ConfigError

def _ssl_engine(w, args):
    v = args[0].lower()
    if v not in ("on", "off", "optional", "addr"):
        raise ConfigError("Argument must be On, Off, or Optional")
    w.set("ssl.engine", v == "on")


def _ssl_pem_files(key: str) -> Callable:
    """SSLCertificateFile/SSLCertificateKeyFile: append one existing, non-empty file (a key pairs
    with the certificate of the same position)."""
    def h(w, args):
        p = values.path(args[0], w.server_root)
        _check_exists(w.name, p, "file")
        w.extend(key, (p,))
    return h


def _ssl_ca(kind: str) -> Parser:
    """SSLCACertificateFile/Path: an existing file ("file") or directory ("dir"), never in a
    section."""
    exists = path(must_exist=kind)

    def fn(w, text: str) -> str:
        if w.dir_section is not None:     # as OpenSSL builds of mod_ssl say
            raise ConfigError("Your SSL library does not have support for per-directory CA")
        return exists(w, text)
    return Parser("path", fn)


def _ssl_protocol(w, args):
    w.set("ssl.protocols", values.protocols(args, w.name))


def _ssl_proxy_cipher_suite(w, args):
    if len(args) == 2 and args[0].lower() not in ("ssl", "tlsv1.3"):
        raise ConfigError(f"protocol '{args[0]}' not supported")


def _ssl_cipher_suite(w, args):
    if len(args) == 2:
        proto = args[0].lower()
        if proto == "ssl":
            w.set("ssl.cipher_suite", args[1])
        elif proto == "tlsv1.3":
            w.set("ssl.tls13_cipher_suites", args[1])
        else:
            raise ConfigError(f"protocol '{args[0]}' not supported")
    else:
        w.set("ssl.cipher_suite", args[0])


# OpenSSL's SSL_CONF file-style command names (case-insensitive), as SSLOpenSSLConfCmd takes them.
_CONF_CMDS = frozenset(c.lower() for c in (
    "SignatureAlgorithms", "ClientSignatureAlgorithms", "Curves", "Groups", "MinProtocol",
    "MaxProtocol", "Protocol", "Options", "VerifyMode", "ChainCAFile", "ChainCAPath",
    "VerifyCAFile", "VerifyCAPath", "RequestCAFile", "ClientCAFile", "RequestCAPath",
    "ClientCAPath", "Certificate", "PrivateKey", "ServerInfoFile", "DHParameters",
    "RecordPadding", "NumTickets", "CipherString", "Ciphersuites", "ECDHParameters"))


# Commands whose value OpenSSL reads as a file: Apache resolves it against ServerRoot and
# refuses a missing or empty one at config time.
_CONF_FILE_CMDS = frozenset(c.lower() for c in (
    "Certificate", "PrivateKey", "ServerInfoFile", "DHParameters", "ChainCAFile",
    "VerifyCAFile", "RequestCAFile", "ClientCAFile"))


def _ssl_conf_cmd(w, args):
    if args[0].lower() not in _CONF_CMDS:
        raise ConfigError(f"'{args[0]}': invalid OpenSSL configuration command")
    value = args[1]
    if args[0].lower() in _CONF_FILE_CMDS:
        value = values.path(value, w.server_root)
        if not os.path.isfile(value) or os.path.getsize(value) == 0:
            raise ConfigError(f"SSLOpenSSLConfCmd: file '{value}' does not exist or is empty")
    w.extend("ssl.openssl_conf_cmds", ((args[0], value),))


def _ssl_session_cache(w, args):
    arg = args[0]
    if arg.lower() in ("none", "nonenotnull"):
        from httpd_py.config.model import SocacheSpec
        w.glob("session_cache", SocacheSpec(provider="none", raw=arg))
        return
    w.glob("session_cache", values.socache(arg, "SSLSessionCache", w.server_root, kind="session",
                                           providers=modules.socache_providers(w.load_modules)))


def _ssl_verify_client(w, args):
    values.choice(args[0], w.name, ("none", "optional", "require", "optional_no_ca"))


def _ssl_options(w, args):
    known = ("stdenvvars", "exportcertdata", "fakebasicauth", "strictrequire",
             "optrenegotiate", "legacydnstringformat", "compatenvvars")
    for a in args:
        name = a[1:] if a[:1] in ("+", "-") else a
        if name.lower() not in known:
            raise ConfigError(f"SSLOptions: Illegal option '{name}'")


def _ssl_compression(w, args):
    if values.flag(args[0], w.name):
        raise ConfigError("This version of OpenSSL does not have any compression methods "
                          "available, cannot enable SSLCompression.")


def _ssl_crypto_device(w, args):
    if args[0] not in ("builtin", "dynamic"):
        raise ConfigError("SSLCryptoDevice: Invalid argument; must be one of: 'builtin' (none), "
                          "'dynamic' (Dynamic engine loading support)")


def _ssl_pass_phrase(w, args):
    a = args[0]
    if a != "builtin" and not a.startswith("|") and not a.startswith("exec:"):
        raise ConfigError("SSLPassPhraseDialog: Invalid argument")
    # Apache runs a pass-phrase program only for an encrypted key; httpd-py refuses encrypted
    # keys at start-up, so for the keys it serves the line means what it means to Apache.


_SYSTEM_RANDOM = ("builtin", "file:/dev/urandom", "file:/dev/random")


def _ssl_random_seed(w, args):
    if args[0].lower() not in ("startup", "connect"):
        raise ConfigError("SSLRandomSeed: invalid context: `" + args[0] + "'")
    if args[1].lower() not in _SYSTEM_RANDOM:   # OpenSSL seeds itself from the system
        w.ignored.append((w.name, w.loc))


def _ssl_revocation_check(w, args):
    values.choice(args[0], w.name, ("none", "chain", "leaf"))
    for a in args[1:]:
        values.choice(a, w.name, ("no_crl_for_cert_ok",))


def _ssl_ocsp_enable(w, args):
    values.choice(args[0], w.name, ("on", "off", "leaf"))
    for a in args[1:]:
        if a.lower() != "no_ocsp_for_cert_ok":
            raise ConfigError(f"SSLOCSPEnable: Invalid argument '{a}'")


def _ssl_deprecated(w, args):
    raise ConfigError(f"{w.name} directive is no longer supported - use "
                      f"{'ErrorLog' if w.name == 'SSLLog' else 'LogLevel'}.")


def _ssl_proxy_protocol(w, args):
    values.protocols(args, w.name)


def _ssl_sni_policy(w, args):
    values.choice(args[0], w.name, ("strict", "secure", "authonly", "insecure"))


def rows() -> list[Directive]:
    SSL = "mod_ssl.c"
    U = False   # "used": False for accepted-but-without-effect directives
    D = Directive
    return [
        D("SSLEngine", SSL, "SV", TAKE1, "", "Use TLS on this server's connections",
          _ssl_engine, field="ssl.engine", value=False, syntax="on|off|optional"),
        D("SSLCertificateFile", SSL, "SV", TAKE1, "", "A PEM certificate (may hold the chain "
          "and the key); repeat for RSA and ECDSA", _ssl_pem_files("ssl._cert_files"),
          field="ssl.certificates", value=(), syntax="file-path"),
        D("SSLCertificateKeyFile", SSL, "SV", TAKE1, "", "The private key of the certificate of "
          "the same position", _ssl_pem_files("ssl._key_files"), field="ssl.certificates",
          syntax="file-path"),
        D("SSLCertificateChainFile", SSL, "SV", TAKE1, "", "Intermediate certificates (PEM); "
          "deprecated, put them in SSLCertificateFile", field="ssl.chain_file",
          parse=path(must_exist="file"), value=None, syntax="file-path"),
        D("SSLCACertificateFile", SSL, "A", TAKE1, "", "CA certificates (PEM) for client "
          "authentication and stapling issuer lookup", field="ssl.ca_file",
          parse=_ssl_ca("file"), value=None, syntax="file-path"),
        D("SSLCACertificatePath", SSL, "A", TAKE1, "", "Directory of hashed CA certificates",
          field="ssl.ca_path", parse=_ssl_ca("dir"), value=None, syntax="directory-path"),
        D("SSLCADNRequestFile", SSL, "SV", TAKE1, "", "CA names sent when asking for a client "
          "certificate", _validate_file(), used=U, syntax="file-path"),
        D("SSLCADNRequestPath", SSL, "SV", TAKE1, "", "Directory of CA names sent when asking "
          "for a client certificate", _validate_file("dir"), used=U, syntax="directory-path"),
        D("SSLCARevocationCheck", SSL, "SV", ITERATE, "none", "CRL checking of client "
          "certificates", _ssl_revocation_check, used=U, syntax="chain|leaf|none [flags]"),
        D("SSLCARevocationFile", SSL, "SV", TAKE1, "", "CRLs (PEM) for client authentication",
          _validate_file(), used=U, syntax="file-path"),
        D("SSLCARevocationPath", SSL, "SV", TAKE1, "", "Directory of hashed CRLs",
          _validate_file("dir"), used=U, syntax="directory-path"),
        D("SSLCipherSuite", SSL, "A", TAKE12, "DEFAULT", "OpenSSL cipher list (TLS <= 1.2), or "
          "with TLSv1.3 first the TLS 1.3 suites", _ssl_cipher_suite, field="ssl.cipher_suite",
          syntax="[SSL|TLSv1.3] cipher-spec"),
        D("SSLCompression", SSL, "SV", FLAG, "off", "TLS-level compression (off only, as "
          "OpenSSL 3 has none)", _ssl_compression, used=U),
        D("SSLCryptoDevice", SSL, "S", TAKE1, "builtin", "OpenSSL engine (accepted; builtin "
          "only)", _ssl_crypto_device, used=U, syntax="engine"),
        D("SSLFIPS", SSL, "S", FLAG, "off", "OpenSSL FIPS mode (accepted; not switched)",
          _validate_flag, used=U),
        D("SSLHonorCipherOrder", SSL, "SV", FLAG, "", "Prefer the server's cipher order",
          field="ssl.honor_cipher_order", parse=flag(), value=False),
        D("SSLInsecureRenegotiation", SSL, "SV", FLAG, "off", "Legacy renegotiation (accepted; "
          "never allowed)", _validate_flag, used=U),
        D("SSLLog", SSL, "A", TAKE1, "", "Removed in Apache 2.x: use ErrorLog", _ssl_deprecated,
          used=U),
        D("SSLLogLevel", SSL, "A", TAKE1, "", "Removed in Apache 2.x: use LogLevel",
          _ssl_deprecated, used=U),
        D("SSLOCSPDefaultResponder", SSL, "SV", TAKE1, "", "OCSP responder for client "
          "certificate checks", _nothing, used=U, syntax="uri"),
        D("SSLOCSPEnable", SSL, "SV", ITERATE, "off", "OCSP checks of client certificates",
          _ssl_ocsp_enable, used=U, syntax="on|leaf|off [no_ocsp_for_cert_ok]"),
        D("SSLOCSPNoVerify", SSL, "SV", FLAG, "off", "Skip OCSP responder certificate "
          "verification (client certificates)", _validate_flag, used=U),
        D("SSLOCSPOverrideResponder", SSL, "SV", FLAG, "off", "Always use the default "
          "responder (client certificates)", _validate_flag, used=U),
        D("SSLOCSPResponderCertificateFile", SSL, "SV", TAKE1, "", "Trusted OCSP responder "
          "certificates (client certificates)", _validate_file(), used=U, syntax="file-path"),
        D("SSLOCSPResponderTimeout", SSL, "SV", TAKE1, "10", "OCSP timeout for client "
          "certificate checks", _validate_int, used=U, syntax="seconds"),
        D("SSLOCSPResponseMaxAge", SSL, "SV", TAKE1, "-1", "Largest OCSP response age for "
          "client certificate checks", _validate_int, used=U, syntax="seconds"),
        D("SSLOCSPResponseTimeSkew", SSL, "SV", TAKE1, "300", "OCSP clock skew for client "
          "certificate checks", _validate_int, used=U, syntax="seconds"),
        D("SSLOCSPUseRequestNonce", SSL, "SV", FLAG, "on", "Nonce in OCSP requests for client "
          "certificates", _validate_flag, used=U),
        D("SSLOpenSSLConfCmd", SSL, "SV", TAKE2, "", "An OpenSSL SSL_CONF command for this "
          "server", _ssl_conf_cmd, field="ssl.openssl_conf_cmds", value=(), syntax="command value"),
        D("SSLOptions", SSL, "A", RAW, "", "Per-request SSL options (accepted)",
          _ssl_options, used=U, syntax="[+-]option ..."),
        D("SSLPassPhraseDialog", SSL, "S", TAKE1, "builtin", "How encrypted keys get their "
          "pass phrase (httpd-py needs unencrypted keys)", _ssl_pass_phrase,
          syntax="builtin|exec:path|\"|path\""),
        D("SSLProtocol", SSL, "SV", RAW, "", "TLS versions to accept",
          _ssl_protocol, field="ssl.protocols", value=frozenset({"TLSv1.2", "TLSv1.3"}),
          syntax="[+-]protocol ..."),
        D("SSLProxyCACertificatePath", SSL, "SV", TAKE1, "", "CA directory for proxied backends "
          "(accepted)", _validate_file("dir"), used=U, syntax="directory-path"),
        D("SSLProxyCARevocationCheck", SSL, "SV", ITERATE, "none", "CRL checks for proxied "
          "backends (accepted)", _ssl_revocation_check, used=U, syntax="chain|leaf|none"),
        D("SSLProxyCARevocationFile", SSL, "SV", TAKE1, "", "CRLs for proxied backends "
          "(accepted)", _validate_file(), used=U, syntax="file-path"),
        D("SSLProxyCARevocationPath", SSL, "SV", TAKE1, "", "CRL directory for proxied backends "
          "(accepted)", _validate_file("dir"), used=U, syntax="directory-path"),
        D("SSLProxyCheckPeerExpire", SSL, "SV", FLAG, "on", "Check a backend certificate's "
          "expiry (accepted)", _validate_flag, used=U),
        D("SSLProxyCipherSuite", SSL, "SV", TAKE12, "", "Ciphers towards backends (accepted)",
          _ssl_proxy_cipher_suite, used=U, syntax="[protocol] cipher-spec"),
        D("SSLProxyMachineCertificateChainFile", SSL, "SV", TAKE1, "", "Client chain towards "
          "backends (accepted)", _validate_file(), used=U, syntax="file-path"),
        D("SSLProxyMachineCertificateFile", SSL, "SV", TAKE1, "", "Client certificates towards "
          "backends (accepted)", _validate_file(), used=U, syntax="file-path"),
        D("SSLProxyMachineCertificatePath", SSL, "SV", TAKE1, "", "Client certificate directory "
          "towards backends (accepted)", _validate_file("dir"), used=U,
          syntax="directory-path"),
        D("SSLProxyProtocol", SSL, "SV", RAW, "all -SSLv3", "TLS versions towards backends "
          "(accepted)", _ssl_proxy_protocol, used=U, syntax="[+-]protocol ..."),
        D("SSLProxyVerifyDepth", SSL, "SV", TAKE1, "1", "Backend chain depth (accepted)",
          _validate_int, used=U, syntax="number"),
        D("SSLRandomSeed", SSL, "S", TAKE23, "", "Entropy sources (builtin and the system's "
          "random devices: what OpenSSL seeds itself from)", _ssl_random_seed,
          syntax="startup|connect source [bytes]"),
        D("SSLRenegBufferSize", SSL, "D", TAKE1, "131072", "Body buffer for renegotiation "
          "(accepted)", _validate_int, used=U, syntax="bytes"),
        D("SSLRequire", SSL, "D", ITERATE, "", "Legacy access expression (accepted)", _nothing,
          used=U, syntax="expression"),
        D("SSLRequireSSL", SSL, "D", RAW, "", "Refuse (403) requests not made over TLS",
          lambda w, a: w.set("require_ssl", True), override="authconfig"),
        D("SSLSessionCache", SSL, "S", TAKE1, "none", "Session cache (accepted; httpd-py uses "
          "session tickets)", _ssl_session_cache, field="ssl.session_cache",
          syntax="none|nonenotnull|shmcb:path[(bytes)]|dbm:path|memcache:host[:port],...|"
                 "redis:host[:port],..."),
        D("SSLSessionCacheTimeout", SSL, "SV", TAKE1, "", "Session lifetime in seconds",
          field="ssl.session_cache_timeout", parse=seconds(), value=300, syntax="seconds"),
        D("SSLSessionTicketKeyFile", SSL, "SV", TAKE1, "", "Session ticket keys (accepted; "
          "OpenSSL's own keys are used)", _validate_file(), used=U, syntax="file-path"),
        D("SSLSessionTickets", SSL, "SV", FLAG, "", "TLS session tickets",
          field="ssl.session_tickets", parse=flag(), value=True),
        D("SSLSRPUnknownUserSeed", SSL, "SV", TAKE1, "", "SRP seed (accepted; no SRP)",
          _nothing, used=U, syntax="secret"),
        D("SSLSRPVerifierFile", SSL, "SV", TAKE1, "", "SRP verifier file (accepted; no SRP)",
          _validate_file(), used=U, syntax="file-path"),
        D("SSLStrictSNIVHostCheck", SSL, "SV", FLAG, "", "Refuse clients without SNI on "
          "name-based SSL vhosts", field="ssl.strict_sni", parse=flag(), value=False),
        D("SSLUserName", SSL, "A", TAKE1, "", "Variable used as the request user (accepted)",
          _nothing, used=U, syntax="varname"),
        D("SSLVerifyClient", SSL, "A", TAKE1, "none", "Client certificate verification "
          "(accepted; not requested)", _ssl_verify_client, used=U, syntax="level"),
        D("SSLVerifyDepth", SSL, "A", TAKE1, "1", "Client chain depth (accepted)",
          _validate_int, used=U, syntax="number"),
        D("SSLVHostSNIPolicy", SSL, "S", TAKE1, "secure", "How strictly SNI and Host must "
          "agree across vhosts (accepted)", _ssl_sni_policy, used=U,
          syntax="strict|secure|authonly|insecure"),
    ]
