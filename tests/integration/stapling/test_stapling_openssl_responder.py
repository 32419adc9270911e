"""Stapling against the real ``openssl ocsp`` responder (index.txt, delegated signer), kept on
loopback by the devtools front; real forked workers and s_client/curl."""
from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import time

import pytest

from httpd_py.config.model import SocacheSpec, StaplingConfig
from httpd_py.devtools.openssl_responder import OpenSSLResponder
from httpd_py.devtools.pki import make_pki, write_index
from httpd_py.stapling import fetch as F
from httpd_py.stapling import verdict as V
from httpd_py.stapling.certid import CertID
from httpd_py.stapling.request import build_request
from httpd_py.stapling.service import StaplingService
from httpd_py.stapling.stapler import attach
from tests.support.tlshttp_harness import config, serve, ssl_for, vhost
from tests.support.tools import free_port, require_tool


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    require_tool("openssl")
    tmp = tmp_path_factory.mktemp("ossl")
    port = free_port()
    pki = make_pki(tmp / "pki", ("good.test", "gone.test"), ocsp_url=f"http://127.0.0.1:{port}/")
    gone = {pki.leaf("gone.test", k).cert.serial_number: dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
            for k in ("rsa", "ec")}
    write_index(pki, revoked=gone)
    with OpenSSLResponder(pki.out_dir, port=port) as r:
        yield tmp, pki, r


@pytest.mark.parametrize("use_get", [True, False], ids=["GET", "POST"])
@pytest.mark.parametrize("name,kind,expect", [("good.test", "rsa", "good"), ("gone.test", "ec", "revoked")])
def test_fetch_and_verify_openssl_response(world, use_get, name, kind, expect):
    tmp, pki, r = world
    leaf = pki.leaf(name, kind).cert
    cid = CertID.from_certs(leaf, pki.inter)
    f = F.Fetcher(use_get=use_get)
    try:
        res = f.fetch(r.url, build_request(cid), deadline=time.monotonic() + 10)
    finally:
        f.close()
    assert res.ok and res.method == ("GET" if use_get else "POST"), res
    v = V.check_response(res.der, cid, pki.inter, time.time())
    assert v.kind == expect, v           # openssl's delegated signer (responder by name) verifies
    assert r.count(cid.serial) >= 1 and not r.errors


def test_server_staples_openssl_responses(world, tmp_path):
    tmp, pki, r = world
    openssl = require_tool("openssl")
    st = StaplingConfig(enabled=True, refresh="on-demand", responder_timeout=5.0)
    vhosts = []
    for n in ("good.test", "gone.test"):
        d = tmp_path / n
        d.mkdir()
        (d / "index.html").write_text(n)
        vhosts.append(vhost(n, d, None, ssl=ssl_for(pki, n, stapling=st)))
    cfg = dataclasses.replace(config(tmp_path, tuple(vhosts), (free_port(),)),
                              stapling_cache=SocacheSpec("shmcb", raw="shmcb", size=512000),
                              default_runtime_dir=str(tmp_path))
    svc = StaplingService.from_config(cfg)
    svc.init(attach=attach)
    r.reset_counts()
    try:
        with serve(cfg, tmp_path, workers=2, ocsp_callback_for=svc.callback_for) as running:
            for name, status in (("good.test", "good"), ("gone.test", "revoked"), ("good.test", "good")):
                out = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{running.port}",
                                      "-servername", name, "-status", "-CAfile", str(pki.root_file)],
                                     input=b"Q\n", capture_output=True, timeout=30).stdout.decode()
                assert "OCSP Response Status: successful (0x0)" in out and f"Cert Status: {status}" in out, out
                assert "Responder Id: O = httpd-py test PKI, CN = httpd-py Test OCSP Signer" in out
            assert r.requests == 2                 # the second good.test handshake used the cache
    finally:
        svc.shutdown()
