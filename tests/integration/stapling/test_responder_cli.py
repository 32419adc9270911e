"""The devtools responders' command lines (for scripts and the demo): start, answer, stop."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from httpd_py.devtools.pki import make_pki, write_index
from httpd_py.stapling import fetch as F
from httpd_py.stapling import verdict as V
from httpd_py.stapling.certid import CertID
from httpd_py.stapling.request import build_request
from tests.support.tools import free_port, require_tool


@pytest.mark.parametrize("module", ["httpd_py.devtools.responder", "httpd_py.devtools.openssl_responder"])
def test_responder_cli_answers_on_loopback(tmp_path, module):
    if module.endswith("openssl_responder"):
        require_tool("openssl")
    import datetime as dt
    pki = make_pki(tmp_path / "pki", ("a.test",), kinds=("ec",))
    leaf2 = __import__("httpd_py.devtools.pki", fromlist=["make_leaf"]).make_leaf(pki, "gone.test", "ec")
    write_index(pki, revoked={leaf2.cert.serial_number: dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)})
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", module, "--pki", str(pki.out_dir), "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = p.stdout.readline().decode()            # printed once it listens
        assert f"127.0.0.1:{port}" in line, (line, p.stderr.read1(4096) if p.poll() is not None else b"")
        f = F.Fetcher()
        try:
            for leaf, expect in ((pki.leaf("a.test", "ec").cert, "good"), (leaf2.cert, "revoked")):
                cid = CertID.from_certs(leaf, pki.inter)
                r = f.fetch(f"http://127.0.0.1:{port}/", build_request(cid), deadline=time.monotonic() + 10)
                assert r.ok, r
                assert V.check_response(r.der, cid, pki.inter, time.time()).kind == expect
        finally:
            f.close()
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
