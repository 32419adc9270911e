"""Stapling in the real server: ``python -m httpd_py -f httpd.conf -DFOREGROUND`` (prefork master,
workers, the stapling service wired by server.py), configured in Apache syntax, against the real
in-process responder reached through the certificates' AIA URL."""
from __future__ import annotations

import re
import subprocess

import pytest

from httpd_py.devtools.responder import Responder
from tests.support.server import httpd
from tests.support.stapling import (SIGALGS, curl_cert_status, handshakes_from_two_clients,
                                   pki_with_revoked)
from tests.support.tools import free_port, require_tool, wait_until

NAMES = ("a.test", "b.test")


@pytest.fixture(scope="module")
def pki_responder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("srvpki")
    rport = free_port()
    pki, revoked = pki_with_revoked(tmp / "pki", NAMES, f"http://127.0.0.1:{rport}/")
    with Responder.for_pki(pki, port=rport, statuses=revoked) as r:
        yield pki, r


def conf_text(tmp, pki, port: int, names, extra: str = "") -> str:
    (tmp / "docs").mkdir(exist_ok=True)
    (tmp / "docs" / "index.html").write_text("hello\n")
    vhosts = "".join(f"""
<VirtualHost 127.0.0.1:{port}>
  ServerName {n}
  SSLEngine on
  SSLCertificateFile {pki.out_dir}/{n}-rsa.pem
  SSLCertificateKeyFile {pki.out_dir}/{n}-rsa.key
  SSLCertificateFile {pki.out_dir}/{n}-ec.pem
  SSLCertificateKeyFile {pki.out_dir}/{n}-ec.key
</VirtualHost>
""" for n in names)
    return f"""
Listen 127.0.0.1:{port}
DocumentRoot "{tmp}/docs"
LogLevel info
StartServers 4
MinSpareServers 4
MaxSpareServers 8
DefaultRuntimeDir "{tmp}/run"
SSLStaplingCache "shmcb:{tmp}/run/stapling(512000)"
SSLUseStapling on
SSLStaplingResponderTimeout 3
{extra}
{vhosts}
"""


def s_client(port: int, name: str, kind: str, pki) -> str:
    """``openssl s_client -status``: stdout only."""
    openssl = require_tool("openssl")
    p = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name,
                        "-status", "-CAfile", str(pki.root_file), "-sigalgs", SIGALGS[kind]],
                       input=b"Q\n", capture_output=True, timeout=30)
    return p.stdout.decode(errors="replace")


@pytest.mark.parametrize("refresh", ["on-demand", "background"])
def test_real_server_500_handshakes_one_request_per_certificate(pki_responder, tmp_path, refresh):
    pki, responder = pki_responder
    (tmp_path / "run").mkdir()
    port = free_port()
    responder.reset_counts()
    extra = "SSLStaplingRefresh on-demand" if refresh == "on-demand" else ""
    with httpd(tmp_path, conf_text(tmp_path, pki, port, NAMES, extra)) as srv:
        wait_until(lambda: srv.log_text().count("HP01001") >= 1, 20, what="server ready")
        got, errors = handshakes_from_two_clients(port, NAMES)
        assert not errors, errors[:3]
        assert len(got) == 500 and all(got), sum(1 for g in got if not g)
        for n in NAMES:
            for k in ("rsa", "ec"):
                assert responder.count(pki.leaf(n, k).cert.serial_number) == 1, (n, k, refresh)
        log = srv.log_text()
        assert "Traceback" not in log and "HP04035" not in log
        assert f"refresh {refresh}" in log                  # HP04008 names the mode in use


def test_real_server_clients_and_graceful_restart(pki_responder, tmp_path):
    pki, responder = pki_responder
    (tmp_path / "run").mkdir()
    port = free_port()
    with httpd(tmp_path, conf_text(tmp_path, pki, port, NAMES + ("revoked.test",),
                                   "SSLStaplingRefresh on-demand")) as srv:
        for n in NAMES:
            for k in ("rsa", "ec"):
                out = s_client(port, n, k, pki)
                assert "OCSP Response Status: successful (0x0)" in out and "Cert Status: good" in out, out
                serial = format(pki.leaf(n, k).cert.serial_number, "X")
                assert re.search(r"Serial Number: 0*" + serial, out)
        assert "Cert Status: revoked" in s_client(port, "revoked.test", "ec", pki)
        p = curl_cert_status(port, "a.test", pki)
        assert p.returncode == 0 and p.stdout == b"hello\n", p.stderr
        p = curl_cert_status(port, "revoked.test", pki)
        assert p.returncode == 91
        srv.restart(graceful=True)
        out = s_client(port, "b.test", "ec", pki)
        assert "Cert Status: good" in out, out
        log = srv.log_text()
        assert "Traceback" not in log and "HP04021" in log


def test_real_server_workers_as_www_data_fetch_on_demand(pki_responder, tmp_path):
    """Workers drop to www-data, who may not read Python's own library (a 0700 /root pyenv):
    everything the on-demand fetch needs was loaded in the master."""
    import os
    import pwd
    import shutil
    import tempfile
    as_root = os.geteuid() == 0                  # CI runs as root; elsewhere no privilege drop
    if as_root:
        pwd.getpwnam("www-data")
    pki, responder = pki_responder
    run = tempfile.mkdtemp(prefix="hp-stapling-run-")
    os.chmod(run, 0o755)
    try:
        port = free_port()
        users = "\nUser www-data\nGroup www-data" if as_root else ""
        text = conf_text(tmp_path, pki, port, NAMES, "SSLStaplingRefresh on-demand" + users)
        text = text.replace(f'"{tmp_path}/run', f'"{run}')
        with httpd(tmp_path, text) as srv:
            out = s_client(port, "a.test", "ec", pki)
            assert "Cert Status: good" in out, (out, srv.log_text()[-3000:])
            assert "HP04035" not in srv.log_text()
    finally:
        shutil.rmtree(run, ignore_errors=True)


@pytest.mark.parametrize("args", [["-t"], ["-DFOREGROUND"]])
def test_use_stapling_without_cache_stops_start_up_with_file_and_line(pki_responder, tmp_path, args):
    import sys
    pki, _ = pki_responder
    text = conf_text(tmp_path, pki, free_port(), ("a.test",))
    text = "\n".join(l for l in text.splitlines() if "SSLStaplingCache" not in l)
    (tmp_path / "run").mkdir()
    conf = tmp_path / "nocache.conf"
    conf.write_text(f'ServerRoot "{tmp_path}"\nErrorLog "{tmp_path}/error_log"\nPidFile "{tmp_path}/pid"\n' + text)
    line = next(i for i, l in enumerate(conf.read_text().splitlines(), 1) if l.startswith("SSLUseStapling"))
    p = subprocess.run([sys.executable, "-m", "httpd_py", "-f", str(conf), *args], capture_output=True,
                       timeout=30, cwd=tmp_path)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert f"Syntax error on line {line} of {conf}" in err and "SSLStaplingCache" in err
    assert "Traceback" not in err
