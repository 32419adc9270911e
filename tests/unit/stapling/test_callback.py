"""callback.ocsp_callback_for in a real in-process TLS handshake (pyOpenSSL server and client over
a socketpair): the selected certificate picks the staple, and nothing the service does can abort
the handshake."""
from __future__ import annotations

import socket
import threading

import pytest
from OpenSSL import SSL

from httpd_py.config.model import CertKeyPair, SSLConfig, StaplingConfig, VHost
from httpd_py.stapling.callback import ocsp_callback_for
from httpd_py.stapling.certinfo import CertTable, collect
from tests.unit.stapling.test_service import make_service


def _vhost(pki, enabled=True):
    certs = tuple(CertKeyPair(str(pki.leaf("a.test", k).cert_file), str(pki.leaf("a.test", k).key_file))
                  for k in ("rsa", "ec"))
    return VHost(server_name="a.test", ssl=SSLConfig(engine=True, certificates=certs,
                                                      stapling=StaplingConfig(enabled=enabled)))


class FakeService:
    """Stands in for StaplingService: returns per-certificate bytes, or misbehaves."""

    def __init__(self, table: CertTable, behaviour):
        self.table = table
        self.behaviour = behaviour
        self.calls = []

    def staple_for(self, info, vhost, now=None):
        self.calls.append(info.label)
        return self.behaviour(info)


def handshake(pki, cb, kind: str):
    sctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    for k in ("rsa", "ec"):
        leaf = pki.leaf("a.test", k)
        sctx.use_certificate_chain_file(str(leaf.cert_file))
        sctx.use_privatekey_file(str(leaf.key_file))
    if cb is not None:
        sctx.set_ocsp_server_callback(cb)
    cctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    cctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    cctx.set_cipher_list({"rsa": b"ECDHE-RSA-AES128-GCM-SHA256", "ec": b"ECDHE-ECDSA-AES128-GCM-SHA256"}[kind])
    got = []
    cctx.set_ocsp_client_callback(lambda conn, der, data: (got.append(der), True)[1])
    a, b = socket.socketpair()
    server, client = SSL.Connection(sctx, a), SSL.Connection(cctx, b)
    server.set_accept_state()
    client.set_connect_state()
    client.request_ocsp()
    err = []

    def run_server():
        try:
            server.do_handshake()
        except Exception as e:
            err.append(e)

    t = threading.Thread(target=run_server)
    t.start()
    try:
        client.do_handshake()
    finally:
        t.join(10)
        a.close()
        b.close()
    assert not err, err
    return got[0] if got else b"", client.get_peer_certificate(as_cryptography=True)


@pytest.fixture(scope="module")
def table(pki):
    from tests.unit.stapling.test_service import ServerConfig
    vh = _vhost(pki)
    cfg = ServerConfig(config_file="/dev/null", server_root="/", main=VHost(), vhosts=(vh,), listens=())
    return vh, collect(cfg)


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_selected_certificate_picks_its_staple(pki, table, kind):
    vh, tab = table
    # distinct (DER) staples per certificate: OpenSSL clients drop a staple that is not DER
    def by_cert(info):
        return bytes.fromhex("30030a0102" if "RSA" in info.label else "30030a0103")
    svc = FakeService(tab, by_cert)
    der, peer = handshake(pki, ocsp_callback_for(svc, vh), kind)
    assert peer == pki.leaf("a.test", kind).cert
    assert der == bytes.fromhex({"rsa": "30030a0102", "ec": "30030a0103"}[kind])


@pytest.mark.parametrize("behaviour", [
    lambda info: 1 / 0,
    lambda info: None,
    lambda info: "text, not bytes",
    lambda info: (_ for _ in ()).throw(MemoryError()),
    lambda info: b"",
], ids=["raises", "none", "str", "memoryerror", "empty"])
def test_nothing_aborts_the_handshake(pki, table, behaviour):
    vh, tab = table
    der, peer = handshake(pki, ocsp_callback_for(FakeService(tab, behaviour), vh), "rsa")
    assert der == b"" and peer is not None


def test_certificate_not_in_table_gets_no_staple(pki):
    vh = _vhost(pki)
    svc = FakeService(CertTable(), lambda info: bytes.fromhex("30030a0103"))
    der, _ = handshake(pki, ocsp_callback_for(svc, vh), "ec")
    assert der == b"" and svc.calls == []


def test_no_callback_for_vhost_without_stapling(pki, table):
    assert ocsp_callback_for(FakeService(table[1], bytes), _vhost(pki, enabled=False)) is None
    assert ocsp_callback_for(None, _vhost(pki)) is None


def test_real_service_through_the_callback(pki, clock, table):
    from httpd_py.devtools.responder import Responder
    import dataclasses
    with Responder.for_pki(pki, clock=clock) as r:
        vh = _vhost(pki)
        vh = dataclasses.replace(vh, ssl=dataclasses.replace(vh.ssl, stapling=StaplingConfig(
            enabled=True, refresh="on-demand", force_url=r.url)))
        svc = make_service(pki, [vh], clock)
        cb = svc.callback_for(vh)
        for kind in ("rsa", "ec", "rsa", "ec"):
            der, peer = handshake(pki, cb, kind)
            assert der
        assert r.requests == 2            # one per certificate


def test_must_staple_strict_refusal_aborts_the_handshake(pki, table):
    """The one deliberate abort (issue 6's SSLStaplingMustStaple strict): the stapler says refuse
    and there is no staple -> fatal alert; with a staple, or when it does not refuse, no abort."""
    vh, tab = table

    class Stapler:
        def __init__(self, verdict):
            self.verdict = verdict

        def refuse(self, info, vhost):
            return self.verdict

    svc = FakeService(tab, lambda info: b"")
    svc.stapler = Stapler(True)
    with pytest.raises(Exception):
        handshake(pki, ocsp_callback_for(svc, vh), "ec")
    svc.stapler = Stapler(False)
    assert handshake(pki, ocsp_callback_for(svc, vh), "ec")[0] == b""
    staple = bytes.fromhex("30030a0103")
    svc2 = FakeService(tab, lambda info: staple)
    svc2.stapler = Stapler(True)
    assert handshake(pki, ocsp_callback_for(svc2, vh), "ec")[0] == staple


def test_valid_staple_reused_for_at_most_a_second_then_the_cache_decides(pki, clock):
    """Per-process reuse (StaplingService.reuse_until): within 1 s a handshake staples the
    response it just stapled without looking at the cache; after that the cache decides again
    (here: the entry was removed, so on-demand mode fetches)."""
    from httpd_py.devtools.responder import Responder
    import dataclasses
    with Responder.for_pki(pki, clock=clock) as r:
        vh = _vhost(pki)
        vh = dataclasses.replace(vh, ssl=dataclasses.replace(vh.ssl, stapling=StaplingConfig(
            enabled=True, refresh="on-demand", force_url=r.url)))
        svc = make_service(pki, [vh], clock)
        cb = svc.callback_for(vh)
        first, _ = handshake(pki, cb, "ec")        # fetched (nothing reused on the fetch path)
        assert first and r.requests == 1
        assert handshake(pki, cb, "ec")[0] == first  # from the cache, judged: reusable from here
        info = next(i for i in svc.table.for_vhost(vh) if svc._memo.get(i.key, (b"",))[0] == first)
        until = svc.reuse_until(info, first, vh.ssl.stapling, clock())
        assert clock() < until <= clock() + 1.0
        svc.cache.data.clear()                     # the cache loses the entry
        clock.advance(0.5)
        again, _ = handshake(pki, cb, "ec")
        assert again == first and r.requests == 1  # reused: no cache lookup, no fetch
        clock.advance(0.6)                         # past the second
        third, _ = handshake(pki, cb, "ec")
        assert third and r.requests == 2           # the cache missed: fetched again


def test_error_and_foreign_staples_are_never_reused(pki, clock, table):
    vh, tab = table
    svc = make_service(pki, [vh], clock)
    info = svc.table.for_vhost(vh)[0]
    # not a response this process judged valid (nothing in the verdict memo): no reuse
    assert svc.reuse_until(info, bytes.fromhex("30030a0103"), vh.ssl.stapling, clock()) == 0.0
    # a service that returns bytes it did not judge (FakeService has no reuse_until): every
    # handshake asks it
    fake = FakeService(tab, lambda i: bytes.fromhex("30030a0103"))
    cb = ocsp_callback_for(fake, vh)
    for _ in range(3):
        handshake(pki, cb, "ec")
    assert len(fake.calls) == 3
