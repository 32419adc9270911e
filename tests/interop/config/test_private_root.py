"""A ServerRoot and DefaultRuntimeDir the workers' User cannot traverse (0700, as ``mktemp -d``
makes), fcntl mutexes (the default), workers as nobody, OCSP stapling on: apache2 serves, with
its inherited mutex descriptors, and so does httpd-py (its workers keep the inherited lock
descriptor instead of re-opening ``ssl-stapling.PID``).  Both staple, on-demand and, for
httpd-py, with the background stapler too."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from httpd_py.devtools.pki import make_pki
from httpd_py.devtools.responder import Responder
from tests.support.apache import apache_serving, minimal_conf
from tests.support.stapling import connect, staple_context, status_request
from tests.support.tools import free_port, port_accepting, require_tool, wait_until


@pytest.fixture
def private_root():
    d = Path(tempfile.mkdtemp(prefix="httpd-py-0700-"))     # 0700, root's
    assert (os.stat(d).st_mode & 0o777) == 0o700
    (d / "logs").mkdir()
    (d / "run").mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def conf_text(root: Path, port: int, responder_url: str, refresh: str = "") -> str:
    vhost = f"""
SSLStaplingCache shmcb:run/stapling(128000)
DefaultRuntimeDir run
User nobody
Group nogroup
<VirtualHost 127.0.0.1:{port}>
ServerName a.test
SSLEngine on
SSLCertificateFile pki/a.test-ec.pem
SSLCertificateKeyFile pki/a.test-ec.key
SSLUseStapling on
SSLStaplingForceURL {responder_url}
{refresh}
</VirtualHost>
"""
    base = minimal_conf(root, ("mpm_prefork", "authz_core", "ssl", "socache_shmcb"),
                        listen=f"127.0.0.1:{port}", extra=vhost)
    # no "Mutex file:..." line: the defaults (fcntl) in DefaultRuntimeDir
    return "\n".join(line for line in base.splitlines() if not line.startswith("Mutex "))


def staple_of(port: int) -> bytes:
    got: list = []
    s = connect(port)
    try:
        c = status_request(staple_context(got), s, "a.test")
        c.do_handshake()
        c.shutdown()
    finally:
        s.close()
    return got[0] if got else b""


def test_a_0700_server_root_serves_and_staples_in_both(private_root):
    require_tool("apache2")
    root = private_root
    pki = make_pki(root / "pki", ("a.test",), kinds=("ec",))
    with Responder.for_pki(pki) as responder:
        port = free_port()
        conf = root / "apache.conf"
        conf.write_text(conf_text(root, port, responder.url))
        with apache_serving(conf, root, port, root / "logs" / "pid"):
            apache_staple = staple_of(port)
        assert apache_staple, "apache2 did not staple"

        for refresh in ("SSLStaplingRefresh on-demand", ""):     # "" = background (default)
            port = free_port()
            conf = root / "ours.conf"
            conf.write_text(conf_text(root, port, responder.url, refresh))
            ours = [sys.executable, "-m", "httpd_py", "-d", str(root), "-f", str(conf)]
            r = subprocess.run([*ours, "-k", "start"], capture_output=True, text=True, timeout=90)
            assert r.returncode == 0, r.stderr
            try:
                wait_until(lambda: port_accepting(port), 30, what="httpd-py")
                assert staple_of(port), (refresh, (root / "logs" / "error.log").read_text()[-3000:])
                log = (root / "logs" / "error.log").read_text()
                assert "HP01007" not in log and "Permission denied" not in log, log[-3000:]
            finally:
                subprocess.run([*ours, "-k", "stop"], capture_output=True, timeout=60)
                wait_until(lambda: not port_accepting(port), 30, what="httpd-py stopped")
