"""TLS with real forked workers and real clients (openssl s_client, curl, Python's ssl): SNI,
protocol floor, RSA vs ECDSA selection, ALPN, 421 and strict SNI, tickets resuming across
workers, the OCSP callback on a non-default SNI vhost, many concurrent clients."""
from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import os
import re
import socket
import ssl
import subprocess
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from httpd_py.devtools.pki import make_pki
from tests.support.tlshttp_harness import COMMON, config, serve, ssl_for, vhost, with_log
from tests.support.tools import free_port, require_tool, wait_until

LOG_FMT = COMMON + " %{SSL_PROTOCOL}x %{SSL_CIPHER}x %P"


def ocsp_der(pki, name: str, kind: str = "rsa") -> bytes:
    now = dt.datetime.now(dt.timezone.utc)
    b = (ocsp.OCSPResponseBuilder()
         .add_response(cert=pki.leaf(name, kind).cert, issuer=pki.inter, algorithm=hashes.SHA1(),
                       cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now - dt.timedelta(minutes=5),
                       next_update=now + dt.timedelta(days=1), revocation_time=None, revocation_reason=None)
         .responder_id(ocsp.OCSPResponderEncoding.HASH, pki.inter))
    return b.sign(pki.inter_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    pki = make_pki(tmp / "pki", ("a.test", "b.test", "c.test"))
    docs = {}
    for n in ("a", "b", "c"):
        d = tmp / n
        d.mkdir()
        (d / "index.html").write_text(f"site {n}\n")
        docs[n] = d
    (docs["a"] / "big.bin").write_bytes(os.urandom(3_000_000))
    p1, p2 = free_port(), free_port()
    va = with_log(vhost("a.test", docs["a"], None, ssl=ssl_for(pki, "a.test")), tmp / "access.log", LOG_FMT)
    vb = with_log(vhost("b.test", docs["b"], None, server_aliases=("*.b.test",),
                        ssl=ssl_for(pki, "b.test", strict_sni=True)), tmp / "access.log", LOG_FMT)
    # c.test has the same SSL setup as a.test: Apache lets such a Host through without 421
    vc = vhost("c.test", docs["c"], None, ssl=ssl_for(pki, "a.test"))
    cfg = config(tmp, (va, vb, vc), (p1, p2))
    der = ocsp_der(pki, "b.test")

    def ocsp_for(v):
        if v.server_name != "b.test":
            return None
        return lambda conn, data: der
    with serve(cfg, tmp, workers=1, ocsp_callback_for=ocsp_for) as running:
        running.pki = pki
        running.tmp = tmp
        yield running


def s_client(port, *args, stdin=b"", timeout=15):
    require_tool("openssl")
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)


def subject_cn(out: bytes) -> str:
    m = re.search(rb"subject=.*?CN\s*=\s*([\w.]+)", out)
    return m.group(1).decode() if m else ""


def curl(tls, name, *args, port=None, timeout=15):
    require_tool("curl")
    port = port or tls.port
    cmd = ["curl", "-sS", "--cacert", str(tls.pki.root_file), "--resolve", f"{name}:{port}:127.0.0.1",
           *[a.replace("URL", f"https://{name}:{port}") for a in args]]
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


@pytest.mark.parametrize("sni,cn", [("a.test", "a.test"), ("b.test", "b.test"), ("x.b.test", "b.test"),
                                    ("unknown.test", "a.test"), (None, "a.test")])
def test_sni_selects_vhost_certificate(tls, sni, cn):
    args = ["-servername", sni] if sni else ["-noservername"]
    out = s_client(tls.port, *args).stdout
    assert subject_cn(out) == cn


def test_curl_gets_each_vhost_with_verification(tls):
    for n in ("a", "b"):
        r = curl(tls, f"{n}.test", "URL/")
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"site {n}\n".encode()
    assert curl(tls, "c.test", "-k", "URL/").stdout == b"site c\n"   # served with a.test's cert


def test_tls11_refused_tls12_and_13_accepted(tls):
    r = s_client(tls.port, "-servername", "a.test", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert r.returncode != 0 and b"no peer certificate available" in r.stdout
    assert b"alert protocol version" in r.stderr
    for flag, proto in (("-tls1_2", b"TLSv1.2"), ("-tls1_3", b"TLSv1.3")):
        out = s_client(tls.port, "-servername", "a.test", flag).stdout
        assert b"Protocol  : " + proto in out or b"New, " + proto in out


def test_tls11_accepted_when_configured(tmp_path):
    """Control for the refusal test: the same client gets TLS 1.1 when SSLProtocol allows it."""
    pki = make_pki(tmp_path / "pki", ("a.test",))
    port = free_port()
    sc = ssl_for(pki, "a.test", protocols=frozenset({"TLSv1.1", "TLSv1.2"}),
                 cipher_suite="DEFAULT@SECLEVEL=0")
    cfg = config(tmp_path, (vhost("a.test", tmp_path, port, ssl=sc),), (port,))
    with serve(cfg, tmp_path, workers=1):
        out = s_client(port, "-servername", "a.test", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0").stdout
    # s_client prints "New, TLSv1.0" (the cipher's version) for a TLS 1.1 session
    assert b"Protocol  : TLSv1.1" in out and b"Server public key is" in out and b"(NONE)" not in out


@pytest.mark.parametrize("proto", ["-tls1_2", "-tls1_3"])
def test_rsa_or_ecdsa_by_sigalgs(tls, proto):
    out = s_client(tls.port, "-servername", "a.test", proto, "-sigalgs", "ECDSA+SHA256").stdout
    assert b"Server public key is 256 bit" in out and subject_cn(out) == "a.test"
    out = s_client(tls.port, "-servername", "a.test", proto, "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256").stdout
    assert b"Server public key is 2048 bit" in out and subject_cn(out) == "a.test"


def test_alpn_offers_http11_only(tls):
    out = s_client(tls.port, "-servername", "a.test", "-alpn", "h2,http/1.1").stdout
    assert b"ALPN protocol: http/1.1" in out
    out = s_client(tls.port, "-servername", "a.test", "-alpn", "h2").stdout
    assert b"No ALPN negotiated" in out


def test_host_naming_other_vhost_than_sni_gets_421(tls):
    r = curl(tls, "a.test", "-i", "-H", "Host: b.test", "URL/")
    assert r.stdout.startswith(b"HTTP/1.1 421 ")
    r = curl(tls, "a.test", "-i", "-H", "Host: c.test", "URL/")     # same SSL setup: allowed
    assert r.stdout.startswith(b"HTTP/1.1 200 ") and r.stdout.endswith(b"site c\n")
    wait_until(lambda: "HP02004" in tls.error_text(), 5, what="HP02004")


def test_sni_without_host_header_is_400(tls):
    r = s_client(tls.port, "-servername", "a.test", "-ign_eof",
                 stdin=b"GET / HTTP/1.0\r\n\r\n")
    assert b"HTTP/1.1 400 " in r.stdout
    wait_until(lambda: "HP02007" in tls.error_text(), 5, what="HP02007")


def test_strict_sni_refuses_clients_without_sni(tls):
    # curl sends no SNI for an IP literal
    base = ["curl", "-sS", "-k", "-i", f"https://127.0.0.1:{tls.port}/"]
    r = subprocess.run(base + ["-H", "Host: b.test"], capture_output=True, timeout=15)
    assert r.stdout.startswith(b"HTTP/1.1 403 ")
    r = subprocess.run(base + ["-H", "Host: a.test"], capture_output=True, timeout=15)
    assert r.stdout.startswith(b"HTTP/1.1 200 ") and r.stdout.endswith(b"site a\n")
    wait_until(lambda: "HP02005" in tls.error_text(), 5, what="HP02005")


def test_ocsp_callback_runs_on_non_default_sni_vhost(tls):
    out = s_client(tls.port, "-servername", "b.test", "-status", "-sigalgs", "RSA-PSS+SHA256").stdout
    assert b"OCSP Response Status: successful" in out and b"Cert Status: good" in out
    out = s_client(tls.port, "-servername", "a.test", "-status").stdout
    assert b"OCSP response: no response sent" in out


@pytest.mark.parametrize("proto", ["-tls1_2", "-tls1_3"])
def test_session_ticket_resumes_in_another_worker(tls, proto, tmp_path):
    """Each port has its own worker process; a ticket from one resumes in the other, because
    the Context holding the ticket keys was built before fork."""
    sess = tmp_path / "sess.pem"
    req = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
    first = s_client(tls.ports[0], "-servername", "a.test", proto, "-ign_eof", "-sess_out", str(sess), stdin=req,
                     timeout=15)
    assert sess.exists(), first.stdout[-500:]
    second = s_client(tls.ports[1], "-servername", "a.test", proto, "-ign_eof", "-sess_in", str(sess), stdin=req)
    assert b"Reused, " in second.stdout, second.stdout[-800:]
    log = (tls.tmp / "access.log").read_text().splitlines()
    pids = {l.rsplit(" ", 1)[1] for l in log[-2:]}
    assert len(pids) == 2


def test_access_log_has_ssl_variables(tls):
    curl(tls, "a.test", "-o", "/dev/null", "--tlsv1.3", "URL/index.html?ssl-vars")
    line = wait_until(lambda: next((l for l in (tls.tmp / "access.log").read_text().splitlines()
                                    if "ssl-vars" in l), None), 5, what="log line")
    assert re.search(r'" 200 7 TLSv1\.3 TLS_AES_\w+ \d+$', line), line


def test_handshake_failure_is_logged_not_raised(tls):
    with socket.create_connection(("127.0.0.1", tls.port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello")                  # a broken ClientHello
        try:
            assert not s.recv(1000).startswith(b"HTTP/")
        except ConnectionResetError:
            pass
    wait_until(lambda: "HP02001" in tls.error_text(), 5, what="HP02001")
    assert "Traceback" not in tls.error_text()


def test_plain_http_on_tls_port_gets_readable_400(tls):
    r = subprocess.run(["curl", "-sS", "-i", f"http://127.0.0.1:{tls.port}/"], capture_output=True, timeout=15)
    assert r.stdout.startswith(b"HTTP/1.1 400 ") and b"speaking plain HTTP to an SSL-enabled" in r.stdout


def test_many_concurrent_clients(tmp_path):
    pki = make_pki(tmp_path / "pki", ("a.test",))
    (tmp_path / "index.html").write_text("x" * 2000)
    port = free_port()
    cfg = config(tmp_path, (vhost("a.test", tmp_path, port, ssl=ssl_for(pki, "a.test")),), (port,))
    ctx = ssl.create_default_context(cafile=str(pki.root_file))
    results, errors = [], []

    def client():
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
            conn._create_connection = lambda *a, **k: socket.create_connection(("127.0.0.1", port), timeout=30)
            conn.host = "a.test"
            for _ in range(3):
                conn.request("GET", "/index.html", headers={"Host": "a.test"})
                resp = conn.getresponse()
                results.append((resp.status, len(resp.read())))
            conn.close()
        except Exception as e:  # collected and asserted below
            errors.append(repr(e))
    with serve(cfg, tmp_path, workers=4):
        threads = [threading.Thread(target=client) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors
    assert results == [(200, 2000)] * 300


@pytest.mark.parametrize("cache", [None, "shmcb"])
def test_without_tickets_sessions_resume_only_in_the_same_worker(tmp_path, cache):
    """SSLSessionTickets off: session IDs live in each worker's own OpenSSL cache (pyOpenSSL has
    no hooks for a shared SSLSessionCache), so only the worker that made a session resumes it;
    without SSLSessionCache (mod_ssl's default "none") no session is kept at all."""
    from httpd_py.config.model import SocacheSpec
    pki = make_pki(tmp_path / "pki", ("a.test",))
    p1, p2 = free_port(), free_port()
    spec = SocacheSpec(provider=cache, raw=cache) if cache else None
    sc = ssl_for(pki, "a.test", session_tickets=False, session_cache=spec)
    cfg = config(tmp_path, (vhost("a.test", tmp_path, None, ssl=sc),), (p1, p2))
    sess = tmp_path / "sess.pem"
    req = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
    with serve(cfg, tmp_path, workers=1):
        first = s_client(p1, "-servername", "a.test", "-tls1_2", "-ign_eof", "-sess_out", str(sess), stdin=req)
        if cache is None:
            # no session ID was issued, so the client has nothing to resume
            assert b"Session-ID: \n" in first.stdout and not sess.exists()
            return
        assert sess.exists()
        same = s_client(p1, "-servername", "a.test", "-tls1_2", "-ign_eof", "-sess_in", str(sess), stdin=req)
        other = s_client(p2, "-servername", "a.test", "-tls1_2", "-ign_eof", "-sess_in", str(sess), stdin=req)
    assert b"Reused, TLSv1.2" in same.stdout
    assert b"New, TLSv1.2" in other.stdout


def test_timeout_bounds_handshake_and_request_reading(tmp_path):
    """Timeout 1: a silent client is dropped during the handshake (HP02002); a client that
    stops mid-request gets 408 (HP03005)."""
    pki = make_pki(tmp_path / "pki", ("a.test",))
    port = free_port()
    cfg = config(tmp_path, (vhost("a.test", tmp_path, port, timeout=1, ssl=ssl_for(pki, "a.test")),), (port,))
    with serve(cfg, tmp_path, workers=1) as running:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            assert s.recv(100) == b""                     # closed by the server, not by our 10 s
        wait_until(lambda: "HP02002" in running.error_text(), 5, what="HP02002")
        ctx = ssl.create_default_context(cafile=str(pki.root_file))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw_sock:
            with ctx.wrap_socket(raw_sock, server_hostname="a.test") as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: a.te")
                got = b""
                while True:
                    data = s.recv(4096)
                    if not data:
                        break
                    got += data
        assert got.startswith(b"HTTP/1.1 408 ")
        wait_until(lambda: "HP03005" in running.error_text(), 5, what="HP03005")


def test_large_file_and_range_over_tls(tls):
    data = (tls.tmp / "a" / "big.bin").read_bytes()
    assert curl(tls, "a.test", "URL/big.bin").stdout == data
    assert curl(tls, "a.test", "-r", "1000000-2500000", "URL/big.bin").stdout == data[1000000:2500001]


@pytest.mark.parametrize("name,prio", [("a.test", "NORMAL:-VERS-ALL:+VERS-TLS1.3"),
                                       ("b.test", "NORMAL:-VERS-ALL:+VERS-TLS1.2")])
def test_gnutls_client_verifies_each_vhost(tls, name, prio):
    """A second TLS stack (GnuTLS) against the OpenSSL server: SNI, full chain verification."""
    require_tool("gnutls-cli")
    r = subprocess.run(["gnutls-cli", f"--port={tls.port}", f"--x509cafile={tls.pki.root_file}",
                        f"--sni-hostname={name}", f"--verify-hostname={name}", f"--priority={prio}",
                        "127.0.0.1"],
                       input=f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode(),
                       capture_output=True, timeout=20)
    assert b"Handshake was completed" in r.stdout + r.stderr, r.stderr[-500:]
    assert f"site {name[0]}\n".encode() in r.stdout


def test_certificate_chain_file_completes_a_leaf_only_certificate(tmp_path):
    from httpd_py.config.model import CertKeyPair, SSLConfig
    pki = make_pki(tmp_path / "pki", ("a.test",), kinds=("rsa",))
    leaf = pki.leaf("a.test", "rsa")
    leaf_only = tmp_path / "leaf-only.pem"
    leaf_only.write_bytes(leaf.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "index.html").write_text("chained\n")
    port = free_port()
    sc = SSLConfig(engine=True, certificates=(CertKeyPair(str(leaf_only), str(leaf.key_file)),),
                   chain_file=str(pki.inter_file))
    cfg = config(tmp_path, (vhost("a.test", tmp_path, port, ssl=sc),), (port,))
    with serve(cfg, tmp_path, workers=1):
        r = subprocess.run(["curl", "-sS", "--cacert", str(pki.root_file), "--resolve",
                            f"a.test:{port}:127.0.0.1", f"https://a.test:{port}/"],
                           capture_output=True, timeout=15)
        out = s_client(port, "-servername", "a.test", "-showcerts").stdout
    assert r.returncode == 0 and r.stdout == b"chained\n", r.stderr
    assert b"1 s:O = httpd-py test PKI, CN = httpd-py Test Intermediate CA" in out
