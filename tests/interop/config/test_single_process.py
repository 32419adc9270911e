"""-X and Ctrl-C: what each server leaves behind.

apache2 -X leaves its PidFile (measured: its one process has dropped to User and its prefork
code removes the PidFile only in the parent of a forking server); httpd-py -X removes it, its
scoreboard and its lock files, also when it dropped privileges (a small root janitor started
before the drop removes the files the serving process no longer may) and when Ctrl-C comes
during the load (a slow stapling prefetch).  The difference is an improvement (docs/interop.md).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from httpd_py.devtools.pki import make_pki
from httpd_py.devtools.responder import Responder
from tests.support.apache import apache_env, minimal_conf
from tests.support.tools import free_port, port_accepting, require_tool, wait_until


@pytest.fixture
def root():
    d = Path(tempfile.mkdtemp(prefix="httpd-py-X-"))
    for sub in ("logs", "run"):
        (d / sub).mkdir()
    make_pki(d / "pki", ("a.test",), kinds=("ec",))
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


def conf(root: Path, port: int, url: str, extra: str = "") -> str:
    return minimal_conf(root, ("mpm_prefork", "authz_core", "ssl", "socache_shmcb"),
                        listen=f"127.0.0.1:{port}", extra=f"""
DefaultRuntimeDir run
User nobody
Group nogroup
SSLStaplingCache shmcb:run/stapling(128000)
<VirtualHost 127.0.0.1:{port}>
ServerName a.test
SSLEngine on
SSLCertificateFile pki/a.test-ec.pem
SSLCertificateKeyFile pki/a.test-ec.key
SSLUseStapling on
SSLStaplingForceURL {url}
{extra}
</VirtualHost>
""")


def left_after_ctrl_c(argv, root: Path, port: int, env=None, *, serving: bool = True) -> set[str]:
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if serving:
            wait_until(lambda: port_accepting(port) or p.poll() is not None, 60, what="-X serving")
        else:                                   # Ctrl-C during the load (the lock files exist)
            wait_until(lambda: any(f.startswith("ssl-stapling.") for d in ("logs", "run")
                                   for f in os.listdir(root / d)) or p.poll() is not None,
                       60, what="the stapling mutexes")
        assert p.poll() is None, p.communicate()
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)
    return {f"{d}/{f}" for d in ("logs", "run") for f in os.listdir(root / d)} - {"logs/error.log"}


def test_ctrl_c_on_dash_X(root):
    require_tool("apache2")
    with Responder.for_pki(make_pki(root / "pki", ("a.test",), kinds=("ec",))) as responder:
        port = free_port()
        (root / "httpd.conf").write_text(conf(root, port, responder.url))
        a2 = [require_tool("apache2"), "-d", str(root), "-f", str(root / "httpd.conf"), "-X"]
        env = apache_env(APACHE_RUN_DIR=str(root), APACHE_LOCK_DIR=str(root), APACHE_LOG_DIR=str(root))
        assert left_after_ctrl_c(a2, root, port, env) == {"logs/pid"}          # Apache's
        for f in ("logs/pid",):
            (root / f).unlink()
        ours = [sys.executable, "-m", "httpd_py", "-d", str(root), "-f", str(root / "httpd.conf"), "-X"]
        port = free_port()
        (root / "httpd.conf").write_text(conf(root, port, responder.url))
        # httpd-py's: no PidFile, scoreboard or lock file; the file-backed stapling cache and
        # the staple store stay on purpose (staples survive a restart: docs/interop.md)
        kept = {"run/stapling", "run/ssl-staples"}
        assert left_after_ctrl_c(ours, root, port) - kept == set()
        # Ctrl-C while the background stapler's prefetch waits on a hung responder
        responder.mode = "hang"
        port = free_port()
        (root / "httpd.conf").write_text(conf(root, port, responder.url,
                                              "SSLStaplingResponderTimeout 20"))
        assert left_after_ctrl_c(ours, root, port, serving=False) - kept == set()
