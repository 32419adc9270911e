"""Stapling end to end: forked workers with the real shmcb cache and GlobalMutex, the real
in-process responder on loopback (reached through the certificates' AIA URL), and real clients:
openssl s_client -status, curl --cert-status, gnutls-cli --ocsp, a pyOpenSSL client."""
from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from httpd_py.config.model import SocacheSpec, StaplingConfig
from httpd_py.devtools.responder import Responder
from httpd_py.stapling.service import StaplingService
from httpd_py.stapling.stapler import attach
from tests.support.stapling import (curl_cert_status, handshakes_from_two_clients, pki_with_revoked,
                                   s_client)
from tests.support.tlshttp_harness import config, serve, ssl_for, vhost
from tests.support.tools import free_port, require_tool

NAMES = ("a.test", "b.test")
ON_DEMAND = StaplingConfig(enabled=True, refresh="on-demand", responder_timeout=5.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stapling")
    rport = free_port()
    pki, revoked = pki_with_revoked(tmp / "pki", NAMES, f"http://127.0.0.1:{rport}/")
    responder = Responder.for_pki(pki, port=rport, statuses=revoked)
    responder.start()
    try:
        yield tmp, pki, responder
    finally:
        responder.stop()


def make_cfg(tmp: Path, pki, names, port: int, stapling=ON_DEMAND):
    vhosts = []
    for n in names:
        d = tmp / f"docs-{n}"
        d.mkdir(exist_ok=True)
        (d / "index.html").write_text(f"site {n}\n")
        vhosts.append(vhost(n, d, None, ssl=ssl_for(pki, n, stapling=stapling)))
    cfg = config(tmp, tuple(vhosts), (port,))
    return dataclasses.replace(cfg, stapling_cache=SocacheSpec("shmcb", raw="shmcb", size=512000),
                               default_runtime_dir=str(tmp))


class Server:
    def __init__(self, tmp, pki, names, workers=4, stapling=ON_DEMAND):
        self.tmp, self.pki = tmp, pki
        self.cfg = make_cfg(tmp, pki, names, free_port(), stapling)
        self.svc = StaplingService.from_config(self.cfg)
        self.workers = workers

    def __enter__(self):
        self.svc.init(attach=attach)
        self._cm = serve(self.cfg, self.tmp, workers=self.workers, log_level="info",
                         ocsp_callback_for=self.svc.callback_for)
        self.running = self._cm.__enter__()
        self.port = self.running.port
        return self

    def __exit__(self, *exc):
        try:
            self._cm.__exit__(*exc)
        finally:
            self.svc.shutdown()


@pytest.fixture(scope="module")
def server(world, tmp_path_factory):
    tmp, pki, responder = world
    with Server(tmp_path_factory.mktemp("srv"), pki, NAMES + ("revoked.test",)) as s:
        yield s


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_s_client_sees_good_staple_on_every_sni_vhost(server, world, name, kind):
    pki = world[1]
    out = s_client(server.port, name, kind, pki)
    assert "OCSP Response Status: successful (0x0)" in out, out
    assert "Cert Status: good" in out
    serial = format(pki.leaf(name, kind).cert.serial_number, "X")
    assert re.search(r"Serial Number: 0*" + serial, out), out       # the staple is for this cert
    assert f"CN = {name}" in out and "Verify return code: 0 (ok)" in out


def test_no_status_request_no_staple(server, world):
    out = s_client(server.port, "a.test", "rsa", world[1], status=False)
    assert "OCSP response" not in out and "Verify return code: 0 (ok)" in out


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_revoked_staple_says_revoked(server, world, kind):
    out = s_client(server.port, "revoked.test", kind, world[1])
    assert "OCSP Response Status: successful (0x0)" in out and "Cert Status: revoked" in out, out


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_curl_cert_status_accepts(server, world, name, kind):
    ciphers = {"rsa": "ECDHE-RSA-AES128-GCM-SHA256", "ec": "ECDHE-ECDSA-AES128-GCM-SHA256"}[kind]
    p = curl_cert_status(server.port, name, world[1], "--tls-max", "1.2", "--ciphers", ciphers)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == f"site {name}\n"


def test_curl_refuses_revoked(server, world):
    p = curl_cert_status(server.port, "revoked.test", world[1])
    assert p.returncode == 91, (p.returncode, p.stderr)            # CURLE_SSL_INVALIDCERTSTATUS
    assert b"revocation" in p.stderr.lower()


def gnutls(port: int, name: str, kind: str, pki, save: Path) -> tuple[int, str]:
    g = require_tool("gnutls-cli")
    prio = {"rsa": "NORMAL:-SIGN-ALL:+SIGN-RSA-SHA256:+SIGN-RSA-PSS-RSAE-SHA256",
            "ec": "NORMAL:-SIGN-ALL:+SIGN-ECDSA-SECP256R1-SHA256"}[kind]
    p = subprocess.run([g, "--ocsp", "--x509cafile", str(pki.root_file), "--port", str(port),
                        "--sni-hostname", name, "--verify-hostname", name, "--priority", prio,
                        "--save-ocsp", str(save), "127.0.0.1"],
                       input=b"", capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_gnutls_cli_ocsp(server, world, name, kind, tmp_path):
    from httpd_py.stapling.certid import CertID
    from httpd_py.stapling.verdict import check_response
    import time
    pki = world[1]
    rc, out = gnutls(server.port, name, kind, pki, tmp_path / "staple.der")
    assert rc == 0, out
    assert "OCSP status request" in out and "Status: The certificate is trusted" in out, out
    assert {"rsa": "RSA key", "ec": "EC/ECDSA key"}[kind] in out.split("Certificate[1]")[0]
    leaf = pki.leaf(name, kind).cert
    der = (tmp_path / "staple.der").read_bytes()
    assert check_response(der, CertID.from_certs(leaf, pki.inter), pki.inter, time.time()).kind == "good"


def test_gnutls_cli_refuses_revoked(server, world, tmp_path):
    rc, out = gnutls(server.port, "revoked.test", "ec", world[1], tmp_path / "staple.der")
    assert rc != 0 and "revoked" in out.lower(), out


# -- many handshakes, one responder request per certificate -------------------------------

def test_500_handshakes_four_workers_one_request_per_certificate(world, tmp_path):
    tmp, pki, responder = world
    with Server(tmp_path, pki, NAMES, workers=4) as srv:
        responder.reset_counts()
        got, errors = handshakes_from_two_clients(srv.port, NAMES)
        assert not errors, errors[:3]
        assert len(got) == 500 and all(got), sum(1 for g in got if not g)
        for n in NAMES:
            for k in ("rsa", "ec"):
                assert responder.count(pki.leaf(n, k).cert.serial_number) == 1, (n, k)
        assert responder.requests == 4
        log = srv.running.error_text()
        assert log.count("HP04021") == 4              # fetched: once per certificate
        assert "Traceback" not in log


def test_500_handshakes_default_background_mode_one_request_per_certificate(world, tmp_path):
    """The default SSLStaplingRefresh (background, issue 6's stapler): the master prefetches
    before fork, handshakes only read the cache."""
    tmp, pki, responder = world
    responder.reset_counts()
    with Server(tmp_path, pki, NAMES, workers=4, stapling=StaplingConfig(enabled=True)) as srv:
        assert srv.svc.background, "the background stapler did not attach"
        got, errors = handshakes_from_two_clients(srv.port, NAMES)
        assert not errors, errors[:3]
        assert len(got) == 500 and all(got)
        for n in NAMES:
            for k in ("rsa", "ec"):
                assert responder.count(pki.leaf(n, k).cert.serial_number) == 1, (n, k)
