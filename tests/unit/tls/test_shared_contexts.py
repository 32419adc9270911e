"""Name-based vhosts that differ only in their certificates share one TLS Context; the
servername callback puts each vhost's own certificates on the connection (issue 15: memory per
vhost).  Handshakes through memory BIOs, SNI through the real servername callback."""
from __future__ import annotations

import dataclasses

import pytest
from OpenSSL import SSL

from httpd_py.config.model import CertKeyPair, ServerConfig, SSLConfig, VHost, VHostAddr
from httpd_py.devtools.pki import make_leaf, make_pki
from httpd_py.tls import sites as tls_sites
from httpd_py.tls.sites import TLSState, build_sites


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"), ("d.test", "a.test", "b.test", "c.test"),
                   ocsp_url=None)
    make_leaf(pki, "rsa4k.test", "rsa")       # 2048 like the others: same DH group
    return pki


def ssl_of(pki, name, kinds=("rsa", "ec"), **kw) -> SSLConfig:
    return SSLConfig(engine=True, certificates=tuple(
        CertKeyPair(str(pki.leaf(name, k).cert_file), str(pki.leaf(name, k).key_file)) for k in kinds),
        **kw)


def vh(name, ssl) -> VHost:
    return VHost(addrs=(VHostAddr("*", 443),), server_name=name, ssl=ssl)


def handshake(sites, name: str, *, tls12_cipher: bytes | None = None, status: bool = False):
    """(served certificate, staple) for a client naming ``name`` on *:443."""
    site = sites.site_for("127.0.0.1", 443)
    server = SSL.Connection(site.context, None)
    server.set_app_data(TLSState(site))
    server.set_accept_state()
    cctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    cctx.set_verify(SSL.VERIFY_NONE)
    if tls12_cipher:
        cctx.set_max_proto_version(SSL.TLS1_2_VERSION)
        cctx.set_cipher_list(tls12_cipher)
    got = []
    if status:
        cctx.set_ocsp_client_callback(lambda c, der, d: got.append(der) or True)
    client = SSL.Connection(cctx, None)
    client.set_tlsext_host_name(name.encode())
    if status:
        client.request_ocsp()
    client.set_connect_state()
    for _ in range(20):
        done = 0
        for c in (client, server):
            try:
                c.do_handshake()
                done += 1
            except SSL.WantReadError:
                pass
        for a, b in ((client, server), (server, client)):
            try:
                b.bio_write(a.bio_read(65536))
            except SSL.WantReadError:
                pass
        if done == 2:
            chain = client.get_peer_cert_chain(as_cryptography=True)
            return client.get_peer_certificate(as_cryptography=True), (got[0] if got else None), chain
    raise AssertionError("no handshake")


def cfg_of(tmp_path, vhosts) -> ServerConfig:
    return ServerConfig(config_file="x", server_root=str(tmp_path), main=VHost(), vhosts=tuple(vhosts),
                        listens=())


def test_name_based_vhosts_share_one_context_and_serve_their_own_certificates(pki, tmp_path):
    vhosts = [vh(n, ssl_of(pki, n)) for n in ("d.test", "a.test", "b.test", "c.test")]
    sites = build_sites(cfg_of(tmp_path, vhosts))
    ctx = [sites.contexts_by_vhost[id(v)] for v in vhosts]
    assert ctx[1] is ctx[2] is ctx[3] and ctx[0] is not ctx[1]     # d.test: the default
    assert len(sites.contexts()) == 2
    for name in ("d.test", "a.test", "b.test", "c.test"):
        for cipher, kind in ((None, "ec"), (b"ECDHE-ECDSA-AES128-GCM-SHA256", "ec"),
                             (b"ECDHE-RSA-AES128-GCM-SHA256", "rsa")):
            cert, _, chain = handshake(sites, name, tls12_cipher=cipher)
            assert cert == pki.leaf(name, kind).cert, (name, cipher)
            assert [c.subject for c in chain] == [cert.subject, pki.inter.subject]
    # no SNI, or a name no vhost has: the default's certificate
    assert handshake(sites, "zzz.test")[0] == pki.leaf("d.test", "ec").cert


def test_the_ocsp_callback_of_the_named_vhost_runs(pki, tmp_path):
    from httpd_py.devtools.responder import CertRef, build_response
    vhosts = [vh(n, ssl_of(pki, n)) for n in ("d.test", "a.test", "b.test")]
    staples = {n: build_response(CertRef.of(pki.leaf(n, "ec").cert, pki.inter), "good", pki.inter,
                                 pki.inter_key) for n in ("d.test", "a.test")}
    calls = []

    def cb_for(v):
        def cb(conn, data):
            calls.append((v.server_name, conn.get_certificate(as_cryptography=True)))
            return staples[v.server_name]
        return cb if v.server_name != "b.test" else None
    sites = build_sites(cfg_of(tmp_path, vhosts), cb_for)
    assert handshake(sites, "a.test", status=True)[1] == staples["a.test"]
    assert calls[-1] == ("a.test", pki.leaf("a.test", "ec").cert)
    assert handshake(sites, "b.test", status=True)[1] == b""            # b.test does not staple
    assert handshake(sites, "d.test", status=True)[1] == staples["d.test"]


@pytest.mark.parametrize("change", [
    dict(cipher_suite="ECDHE+AESGCM"), dict(session_tickets=False), dict(protocols=frozenset({"TLSv1.3"})),
])
def test_different_settings_get_different_contexts(pki, tmp_path, change):
    vhosts = [vh("d.test", ssl_of(pki, "d.test")), vh("a.test", ssl_of(pki, "a.test")),
              vh("b.test", dataclasses.replace(ssl_of(pki, "b.test"), **change)),
              vh("c.test", ssl_of(pki, "c.test"))]
    sites = build_sites(cfg_of(tmp_path, vhosts))
    ctx = [sites.contexts_by_vhost[id(v)] for v in vhosts]
    assert ctx[1] is ctx[3] and ctx[2] is not ctx[1]


def test_stapling_settings_do_not_split_contexts(pki, tmp_path):
    from httpd_py.config.model import StaplingConfig
    vhosts = [vh("d.test", ssl_of(pki, "d.test")), vh("a.test", ssl_of(pki, "a.test")),
              vh("b.test", dataclasses.replace(ssl_of(pki, "b.test"),
                                               stapling=StaplingConfig(enabled=True)))]
    sites = build_sites(cfg_of(tmp_path, vhosts))
    assert sites.contexts_by_vhost[id(vhosts[1])] is sites.contexts_by_vhost[id(vhosts[2])]


def test_what_cannot_share_keeps_its_own_context(pki, tmp_path):
    leaf = pki.leaf("a.test", "ec")
    no_chain = tmp_path / "leaf-only.pem"
    no_chain.write_bytes(leaf.cert_file.read_bytes().split(b"-----END CERTIFICATE-----")[0]
                         + b"-----END CERTIFICATE-----\n")
    vhosts = [vh("d.test", ssl_of(pki, "d.test")),
              vh("a.test", SSLConfig(engine=True, certificates=(CertKeyPair(str(no_chain), str(leaf.key_file)),),
                                     chain_file=str(pki.inter_file))),                # chain file
              vh("b.test", SSLConfig(engine=True, certificates=(CertKeyPair(str(no_chain), str(leaf.key_file)),))),
              vh("c.test", ssl_of(pki, "c.test")), vh("e.test", ssl_of(pki, "b.test"))]
    sites = build_sites(cfg_of(tmp_path, vhosts))
    assert set(sites.identities) == {id(vhosts[3]), id(vhosts[4])}
    assert handshake(sites, "a.test")[2][-1].subject == pki.inter.subject
    assert handshake(sites, "e.test")[0] == pki.leaf("b.test", "ec").cert
    assert len(build_sites(cfg_of(tmp_path, vhosts), share=False).contexts()) == 5


def test_a_mismatched_key_is_the_vhost_own_context_error(pki, tmp_path):
    from httpd_py.errors import StartupError
    bad = SSLConfig(engine=True, certificates=(CertKeyPair(str(pki.leaf("a.test", "ec").cert_file),
                                                           str(pki.leaf("b.test", "ec").key_file)),))
    with pytest.raises(StartupError, match="vhost a.test: .*b.test-ec.key"):
        build_sites(cfg_of(tmp_path, [vh("d.test", ssl_of(pki, "d.test")), vh("a.test", bad)]))


def test_warm_up_runs_on_a_shared_context(pki, tmp_path):
    rsa_default = vh("d.test", ssl_of(pki, "d.test", kinds=("rsa",)))
    vhosts = [rsa_default] + [vh(n, ssl_of(pki, n)) for n in ("a.test", "b.test")]
    sites = build_sites(cfg_of(tmp_path, vhosts))
    # RSA kinds on the default's own Context, the ECDSA kinds on the shared one
    assert tls_sites.warm_up(sites, status_request=False) == 4
