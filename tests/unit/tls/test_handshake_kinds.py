"""tls/handshake.py: a failed handshake's kind from OpenSSL's error queue, not from message text
searched by the connection loop (plain HTTP on a TLS port gets Apache's readable 400)."""
from __future__ import annotations

from OpenSSL import SSL

from httpd_py.devtools.pki import make_pki
from httpd_py.tls.handshake import HandshakeFailure, classify, describe


def failed_handshake(tmp_path, first_bytes: bytes) -> SSL.Error:
    pki = make_pki(tmp_path, ("a.test",), kinds=("rsa",))
    leaf = pki.leaf("a.test", "rsa")
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.use_certificate_chain_file(str(leaf.cert_file))
    ctx.use_privatekey_file(str(leaf.key_file))
    conn = SSL.Connection(ctx, None)
    conn.set_accept_state()
    conn.bio_write(first_bytes)
    try:
        conn.do_handshake()
    except SSL.Error as e:
        return e
    raise AssertionError("the handshake did not fail")


def test_plain_http_on_a_tls_port(tmp_path):
    e = failed_handshake(tmp_path, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert classify(e) is HandshakeFailure.PLAIN_HTTP
    assert describe(e) == "SSL routines:http request"


def test_other_failures(tmp_path):
    e = failed_handshake(tmp_path, b"\x16\x03\x01\x00\x05garbage-not-a-hello")
    assert classify(e) is HandshakeFailure.OTHER
    assert classify(OSError(104, "Connection reset by peer")) is HandshakeFailure.OTHER
    assert describe(OSError(104, "reset")) == "ConnectionResetError: [Errno 104] reset"
