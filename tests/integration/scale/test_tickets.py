"""TLS 1.3 tickets with ``openssl s_client -sess_out``: with ``SSLSessionTickets off`` and no
``SSLSessionCache`` httpd-py sends none; apache2 2.4.71 (Debian, OpenSSL 3.0) sends two stateful
tickets that nothing can resume (measured, pinned here: a documented improvement).  With a
session cache, or with tickets on, both send OpenSSL's two."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from httpd_py.devtools.pki import make_pki
from tests.support.apache import apache_serving, load_modules
from tests.support.server import httpd
from tests.support.tools import free_port, require_tool


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), ("t.test",), ocsp_url=None)


def conf_text(root: Path, pki, ports: dict[str, int], cache: bool) -> str:
    leaf = pki.leaf("t.test", "ec")
    lines = [load_modules("mpm_prefork", "authz_core", "socache_shmcb", "ssl"),
             f"ServerRoot {root}", "ServerName t.test", f"ErrorLog {root}/logs/error.log",
             f"PidFile {root}/logs/httpd.pid", f"Mutex file:{root}/logs default",
             "StartServers 1", "MinSpareServers 1", "MaxSpareServers 2",
             f"SSLSessionCache shmcb:{root}/logs/scache(512000)" if cache else "SSLSessionCache none"]
    for tickets, port in ports.items():
        lines += [f"Listen 127.0.0.1:{port}", f"<VirtualHost 127.0.0.1:{port}>",
                  "  ServerName t.test", "  SSLEngine on",
                  f"  SSLCertificateFile {leaf.cert_file}", f"  SSLCertificateKeyFile {leaf.key_file}",
                  f"  SSLSessionTickets {tickets}", "</VirtualHost>"]
    return "\n".join(lines) + "\n"


def tickets_sent(port: int, sess: Path) -> tuple[int, bool]:
    """(NewSessionTicket messages seen, whether -sess_out's session holds a ticket)."""
    openssl = require_tool("openssl")
    p = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3",
                        "-servername", "t.test", "-msg", "-ign_eof", "-sess_out", str(sess)],
                       input=b"GET / HTTP/1.0\r\nHost: t.test\r\n\r\n", capture_output=True,
                       timeout=30)
    assert b"TLSv1.3" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    text = subprocess.run([openssl, "sess_id", "-in", str(sess), "-text", "-noout"],
                          capture_output=True, text=True, timeout=30).stdout
    return p.stdout.count(b"NewSessionTicket"), "TLS session ticket:" in text


@pytest.mark.parametrize("cache", [False, True], ids=["no-session-cache", "shmcb-session-cache"])
def test_tickets_httpd_py_vs_apache2(tmp_path, pki, cache):
    expected = {  # (tickets off, tickets on) per server
        "httpd-py": ((0, False), (2, True)) if not cache else ((2, True), (2, True)),
        "apache2": ((2, True), (2, True)),
    }
    for server in ("httpd-py", "apache2"):
        root = tmp_path / server
        (root / "logs").mkdir(parents=True)
        root.chmod(0o755)
        ports = {"off": free_port(), "on": free_port()}
        text = conf_text(root, pki, ports, cache)
        if server == "httpd-py":
            ctx = httpd(root, text)
        else:
            conf = root / "httpd.conf"
            conf.write_text(text)
            ctx = apache_serving(conf, root, ports["on"], root / "logs" / "httpd.pid")
        with ctx:
            got = (tickets_sent(ports["off"], root / "off.sess"), tickets_sent(ports["on"], root / "on.sess"))
        assert got == expected[server], (server, got)
