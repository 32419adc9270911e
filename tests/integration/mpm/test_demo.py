"""scripts/demo and the shipped conf/httpd.conf, for real: PKI, OCSP responder, two SNI vhosts
with RSA and ECDSA, staples seen by curl and openssl; Ctrl-C (SIGINT to the process group) stops
everything.  The venv step is skipped (DEMO_NO_INSTALL=1): the suite already runs in it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.tools import free_port, require_tool, wait_until

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def demo_dir():
    # world-traversable (not pytest's 0700 tmp): workers run as nobody when the demo runs as root
    d = Path(tempfile.mkdtemp(prefix="httpd-py-demo-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_demo_serves_both_vhosts_with_staples(demo_dir):
    curl = require_tool("curl")
    openssl = require_tool("openssl")
    port, ocsp_port = free_port(), free_port()
    env = {**os.environ, "DEMO_NO_INSTALL": "1", "DEMO_DIR": str(demo_dir),
           "DEMO_PORT": str(port), "DEMO_OCSP_PORT": str(ocsp_port)}
    out = demo_dir / "demo.out"
    with open(out, "w") as f:
        proc = subprocess.Popen([str(REPO / "scripts" / "demo")], cwd=REPO, env=env, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
    err_log = demo_dir / "logs" / "error_log"
    try:
        def serving():
            assert proc.poll() is None, out.read_text()
            return err_log.exists() and " HP01001: " in err_log.read_text()
        wait_until(serving, 60, what="the demo server")
        text = out.read_text()
        assert f"curl --cert-status --cacert {demo_dir}/pki/root.pem" in text
        assert "openssl s_client -status" in text

        for name in ("a.test", "b.test"):
            r = subprocess.run([curl, "-sS", "--cert-status", "--cacert",
                                str(demo_dir / "pki" / "root.pem"), "--resolve",
                                f"{name}:{port}:127.0.0.1", f"https://{name}:{port}/"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr          # --cert-status: a valid staple or fail
            assert f"<h1>{name}" in r.stdout
        for sigalgs, kind in (("ECDSA+SHA256", "ECDSA"), ("rsa_pss_rsae_sha256", "RSA")):
            r = subprocess.run([openssl, "s_client", "-status", "-servername", "b.test",
                                "-connect", f"127.0.0.1:{port}", "-sigalgs", sigalgs,
                                "-CAfile", str(demo_dir / "pki" / "root.pem")],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=30)
            assert "OCSP Response Status: successful" in r.stdout, r.stdout + r.stderr
            assert "Cert Status: good" in r.stdout
            assert "CN = b.test" in r.stdout
            assert "Verify return code: 0 (ok)" in r.stdout
            if kind == "ECDSA":
                assert "Peer signature type: ECDSA" in r.stdout
            else:
                assert "Peer signature type: RSA-PSS" in r.stdout

        os.killpg(proc.pid, signal.SIGINT)                 # Ctrl-C
        proc.wait(30)
        assert " HP01002: " in err_log.read_text()
        assert not (demo_dir / "run" / "httpd.pid").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
