"""tls/tickets.py: SSL_CTX_set_num_tickets found through the symbol table of cryptography's
statically linked OpenSSL, and build_context's use of it (no TLS 1.3 ticket when
SSLSessionTickets is off and there is no SSLSessionCache)."""
from __future__ import annotations

import dataclasses

import pytest
from OpenSSL import SSL

from httpd_py.config.model import CertKeyPair, SocacheSpec, SSLConfig
from httpd_py.devtools.pki import make_pki
from httpd_py.tls import tickets
from httpd_py.tls.context import build_context
from httpd_py.tls.sites import memory_handshake


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), ("a.test",), ocsp_url=None)


def ssl_cfg(pki, **kw) -> SSLConfig:
    leaf = pki.leaf("a.test", "ec")
    return SSLConfig(engine=True, certificates=(CertKeyPair(str(leaf.cert_file), str(leaf.key_file)),),
                     **kw)


def test_the_symbols_are_found_and_checked_against_the_file():
    # this installation's wheel keeps its .symtab: if a future one does not, this fails and
    # docs/benchmarks.md's ticket note needs its "why not" back
    syms = tickets.elf_symbols(tickets._library_path(),
                               (b"SSL_CTX_set_num_tickets", b"SSL_CTX_get_num_tickets", b"no_such_fn"))
    assert set(syms) == {b"SSL_CTX_set_num_tickets", b"SSL_CTX_get_num_tickets"}
    assert tickets.available()


def test_set_and_get_round_trip():
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    assert tickets.get_num_tickets(ctx) == 2            # OpenSSL's default
    assert tickets.set_num_tickets(ctx, 0) and tickets.get_num_tickets(ctx) == 0
    assert tickets.set_num_tickets(ctx, 3) and tickets.get_num_tickets(ctx) == 3


def test_not_an_elf_file_finds_nothing(tmp_path):
    f = tmp_path / "x.so"
    f.write_bytes(b"MZ" + bytes(100))
    assert tickets.elf_symbols(str(f), (b"SSL_CTX_set_num_tickets",)) == {}


@pytest.mark.parametrize("change,expect", [
    (dict(session_tickets=False), 0),                               # nothing could resume them
    (dict(session_tickets=False, session_cache=SocacheSpec("none")), 0),
    (dict(session_tickets=False, session_cache=SocacheSpec("shmcb")), 2),   # stateful, cached
    (dict(session_tickets=True), 2),
])
def test_build_context_sets_the_ticket_count(pki, change, expect):
    ctx = build_context(dataclasses.replace(ssl_cfg(pki), **change))
    assert tickets.get_num_tickets(ctx) == expect


def test_a_handshake_without_tickets_completes(pki):
    server = build_context(dataclasses.replace(ssl_cfg(pki), session_tickets=False))
    client = SSL.Context(SSL.TLS_CLIENT_METHOD)
    client.set_verify(SSL.VERIFY_NONE)
    assert memory_handshake(server, client, status_request=False)
