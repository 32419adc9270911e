"""SSLConfig -> Context (errors, protocol bounds) and address/name vhost selection."""
from __future__ import annotations

import dataclasses

import pytest
from OpenSSL import SSL

from httpd_py.config.model import CertKeyPair, ServerConfig, SSLConfig, VHost, VHostAddr
from httpd_py.devtools.pki import make_pki
from httpd_py.errors import StartupError
from httpd_py.tls.context import build_context, protocol_bounds
from httpd_py.tls.sites import build_sites, vhost_matches_name


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), ("a.test", "b.test"))


def ssl_cfg(pki, name="a.test", **kw):
    certs = tuple(CertKeyPair(str(pki.leaf(name, k).cert_file), str(pki.leaf(name, k).key_file))
                  for k in ("rsa", "ec"))
    return SSLConfig(engine=True, certificates=certs, **kw)


@pytest.mark.parametrize("protos,expect", [
    ({"TLSv1.2", "TLSv1.3"}, (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION, 0)),
    ({"TLSv1.3"}, (SSL.TLS1_3_VERSION, SSL.TLS1_3_VERSION, 0)),
    ({"TLSv1", "TLSv1.2"}, (SSL.TLS1_VERSION, SSL.TLS1_2_VERSION, SSL.OP_NO_TLSv1_1)),
])
def test_protocol_bounds(protos, expect):
    assert protocol_bounds(frozenset(protos)) == expect


def test_no_protocol_is_an_error():
    with pytest.raises(StartupError, match="no protocol"):
        protocol_bounds(frozenset())


def test_builds_full_context(pki):
    cfg = ssl_cfg(pki, cipher_suite="ECDHE+AESGCM", tls13_cipher_suites="TLS_AES_128_GCM_SHA256",
                  honor_cipher_order=True, session_tickets=False, chain_file=str(pki.chain_file),
                  ca_file=str(pki.root_file),
                  openssl_conf_cmds=(("Curves", "X25519:P-256"), ("Groups", "P-256"),
                                     ("Options", "ServerPreference,-SessionTicket"),
                                     ("Options", "-Compression"), ("MinProtocol", "TLSv1.2"),
                                     ("MaxProtocol", "TLSv1.3"), ("CipherString", "ECDHE+AESGCM"),
                                     ("Ciphersuites", "TLS_AES_256_GCM_SHA384")))
    ctx = build_context(cfg)
    assert isinstance(ctx, SSL.Context)


@pytest.mark.parametrize("change,match", [
    (dict(certificates=()), "no SSLCertificateFile"),
    (dict(certificates=(CertKeyPair("/nonexistent.pem", None),)), "cannot load SSLCertificateFile /nonexistent.pem"),
    (dict(cipher_suite="NOT-A-CIPHER"), "SSLCipherSuite"),
    (dict(openssl_conf_cmds=(("Curves", "nosuchcurve"),)), "Curves/Groups"),
    (dict(openssl_conf_cmds=(("ECDHParameters", "x"),)), "not supported"),
    (dict(chain_file="/nonexistent-chain.pem"), "SSLCertificateChainFile"),
    (dict(session_tickets=False, openssl_conf_cmds=(("Options", "SessionTicket"),)), "contradicts"),
    (dict(openssl_conf_cmds=(("Options", "Bugs"),)), "unsupported option"),
    (dict(openssl_conf_cmds=(("MinProtocol", "SSLv3"),)), "unknown protocol"),
    (dict(protocols=frozenset()), "no protocol"),
])
def test_context_errors_are_startup_errors(pki, change, match):
    with pytest.raises(StartupError, match=match):
        build_context(dataclasses.replace(ssl_cfg(pki), **change),
                      VHost(server_name="a.test"))


def test_mismatched_key(pki):
    bad = (CertKeyPair(str(pki.leaf("a.test", "rsa").cert_file), str(pki.leaf("b.test", "rsa").key_file)),)
    with pytest.raises(StartupError) as ei:
        build_context(dataclasses.replace(ssl_cfg(pki), certificates=bad), VHost(server_name="a.test"))
    assert "a.test" in str(ei.value) and "b.test-rsa.key" in str(ei.value)


@pytest.mark.parametrize("name,expect", [
    ("a.test", True), ("A.TEST", True), ("a.test.", True), ("www.a.test", True),
    ("x.y.a.test", True), ("b.test", False), ("a1.test", True), ("a12.test", False),
])
def test_name_matching(name, expect):
    v = VHost(server_name="a.test", server_aliases=("www.a.test", "*.y.a.test", "a?.test"))
    assert vhost_matches_name(v, name) is expect


def test_site_selection(pki, tmp_path):
    wild_a = VHost(addrs=(VHostAddr("*", 443),), server_name="a.test", ssl=ssl_cfg(pki))
    wild_b = VHost(addrs=(VHostAddr("*", 443),), server_name="b.test", ssl=ssl_cfg(pki, "b.test"))
    ip_v = VHost(addrs=(VHostAddr("127.0.0.2", 443),), server_name="ip.test", ssl=ssl_cfg(pki))
    plain = VHost(addrs=(VHostAddr("_default_", 80),), server_name="plain.test")
    cfg = ServerConfig(config_file="x", server_root=str(tmp_path), main=VHost(server_name="main"),
                       vhosts=(wild_a, wild_b, ip_v, plain), listens=())
    sites = build_sites(cfg)
    assert len(sites.contexts()) == 3
    s = sites.site_for("127.0.0.1", 443)
    assert s.vhosts == (wild_a, wild_b) and s.default is wild_a and s.ssl
    assert s.select_or_default("b.test") is wild_b and s.select_or_default("zzz") is wild_a
    assert sites.site_for("::ffff:127.0.0.2", 443).vhosts == (ip_v,)
    p = sites.site_for("127.0.0.1", 80)
    assert p.vhosts == (plain,) and not p.ssl and p.context is None
    assert sites.site_for("127.0.0.1", 443) is s   # memoised


def test_main_server_when_no_vhost(pki, tmp_path):
    main = VHost(server_name="main", ssl=ssl_cfg(pki))
    cfg = ServerConfig(config_file="x", server_root=str(tmp_path), main=main, vhosts=(), listens=())
    site = build_sites(cfg).site_for("127.0.0.1", 8443)
    assert site.default is main and site.ssl and site.context is not None


def test_ocsp_callback_installed_per_vhost(pki, tmp_path):
    seen = []

    def cb_for(v):
        seen.append(v.server_name)
        return (lambda conn, data: b"") if v.server_name == "b.test" else None
    va = VHost(addrs=(VHostAddr("*", 443),), server_name="a.test", ssl=ssl_cfg(pki))
    vb = VHost(addrs=(VHostAddr("*", 443),), server_name="b.test", ssl=ssl_cfg(pki, "b.test"))
    cfg = ServerConfig(config_file="x", server_root=str(tmp_path), main=VHost(), vhosts=(va, vb), listens=())
    build_sites(cfg, cb_for)
    assert seen == ["a.test", "b.test"]



def test_warm_up_handshakes_every_key_type_and_asks_for_a_staple_only_when_told(pki, tmp_path):
    from httpd_py.tls.sites import warm_up
    selected = []

    def cb_for(v):
        def cb(conn, data):
            selected.append(type(conn.get_certificate(as_cryptography=True).public_key()).__name__)
            return b""
        return cb
    rsa_only = SSLConfig(engine=True, certificates=(
        CertKeyPair(str(pki.leaf("b.test", "rsa").cert_file), str(pki.leaf("b.test", "rsa").key_file)),))
    va = VHost(addrs=(VHostAddr("*", 443),), server_name="a.test", ssl=ssl_cfg(pki))
    vb = VHost(addrs=(VHostAddr("*", 443),), server_name="b.test", ssl=rsa_only)
    cfg = ServerConfig(config_file="x", server_root=str(tmp_path), main=VHost(), vhosts=(va, vb), listens=())
    sites = build_sites(cfg, cb_for)
    # a.test (RSA + ECDSA): TLS 1.3 with each certificate, TLS 1.2 ECDSA, TLS 1.2 RSA; then
    # every kind has run: b.test (RSA only) is not needed
    assert warm_up(sites, status_request=False) == 4
    assert selected == []                        # no status_request: the OCSP callback never ran
    assert warm_up(sites, status_request=True) == 4
    assert {"RSAPublicKey", "ECPublicKey"} <= set(selected)   # both certificates' callbacks ran


def test_warm_up_stops_once_every_kind_ran(pki, tmp_path, monkeypatch):
    """With many vhosts the warm-up does not handshake with every Context: each client kind
    once, then it stops (3 handshakes per vhost cost seconds and, in each worker, wrote to
    every Context's pages); an RSA-only first vhost leaves the ECDSA kinds to the next."""
    from httpd_py.tls import sites as tls_sites
    rsa_only = SSLConfig(engine=True, certificates=(
        CertKeyPair(str(pki.leaf("b.test", "rsa").cert_file), str(pki.leaf("b.test", "rsa").key_file)),))
    vhosts = tuple(VHost(addrs=(VHostAddr("*", 443),), server_name=f"v{i}.test",
                         ssl=rsa_only if i == 0 else ssl_cfg(pki)) for i in range(20))
    cfg = ServerConfig(config_file="x", server_root=str(tmp_path), main=VHost(), vhosts=vhosts,
                       listens=())
    sites = build_sites(cfg)
    used = []
    real = tls_sites.memory_handshake
    monkeypatch.setattr(tls_sites, "memory_handshake",
                        lambda ctx, *a: used.append(ctx) or real(ctx, *a))
    assert tls_sites.warm_up(sites, status_request=False) == 4
    contexts = sites.contexts()
    assert {id(c) for c in used} == {id(contexts[0]), id(contexts[1])}
    # the RSA-only Context: 4 tries (2 complete); the next: the 2 ECDSA kinds
    assert len(used) == 6
