"""One real httpd-py per test module for the status pages: plain HTTP and one TLS port (a.test
with RSA and ECDSA certificates, revoked.test with RSA), background stapling against the
in-process responder, ``SetHandler server-status`` / ``stapling-status`` / ``metrics`` under
``Require ip 127.0.0.1``, and an access log counting every request."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from httpd_py.devtools.pki import make_leaf, make_pki
from tests.support.server import HttpdServer, httpd
from tests.support.tools import free_port, port_accepting, wait_until
from tests.unit.stapling_bg.conftest import ClockedResponder

NAMES = {"a.test": ("rsa", "ec"), "revoked.test": ("rsa",)}


@dataclass
class StatusServer:
    srv: HttpdServer
    dir: Path
    pki: object
    responder: object
    plain: int
    tls: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.plain}"

    @property
    def access_log(self) -> Path:
        return self.dir / "logs" / "access_log"

    def access_lines(self) -> int:
        try:
            return len(self.access_log.read_text().splitlines())
        except FileNotFoundError:
            return 0


def status_conf(d: Path, pki, url: str, plain: int, tls: int, extra: str = "") -> str:
    lines = [f"Listen 127.0.0.1:{plain}", f"Listen 127.0.0.1:{tls}", "LogLevel info",
             "LoadModule status_module /usr/lib/apache2/modules/mod_status.so",
             f"DocumentRoot {d}/htdocs", "StartServers 2", "MinSpareServers 1",
             "MaxSpareServers 4", "ServerLimit 16", f"DefaultRuntimeDir {d}/run",
             "SSLStaplingCache shmcb", f"SSLStaplingStoreDir {d}/store",
             "SSLSessionCache shmcb", 'LogFormat "%h %>s %r" short',
             f"CustomLog {d}/logs/access_log short"]
    for path, handler in (("/server-status", "server-status"),
                          ("/stapling-status", "stapling-status"), ("/metrics", "metrics")):
        lines += [f"<Location {path}>", f"  SetHandler {handler}", "  Require ip 127.0.0.1",
                  "</Location>"]
    for name, kinds in NAMES.items():
        lines += [f"<VirtualHost *:{tls}>", f"  ServerName {name}", "  SSLEngine on"]
        for k in kinds:
            leaf = pki.leaf(name, k)
            lines += [f"  SSLCertificateFile {leaf.cert_file}",
                      f"  SSLCertificateKeyFile {leaf.key_file}"]
        lines += ["  SSLUseStapling on", f"  SSLStaplingForceURL {url}", "</VirtualHost>"]
    return "\n".join(lines) + "\n" + extra


@pytest.fixture(scope="module")
def status_server():
    d = Path(tempfile.mkdtemp(prefix="status-"))
    os.chmod(d, 0o755)
    responder = None
    try:
        for sub in ("htdocs", "store", "run", "logs"):
            (d / sub).mkdir(exist_ok=True)
        (d / "htdocs" / "index.html").write_text("0123456789" * 10)     # 100 bytes
        pki = make_pki(d / "pki", ("a.test",), ocsp_url="http://127.0.0.1:9/")
        make_leaf(pki, "revoked.test", "rsa", ocsp_urls=("http://127.0.0.1:9/",))
        revoked = pki.leaf("revoked.test", "rsa").cert.serial_number
        responder = ClockedResponder.for_pki(pki, statuses={revoked: "revoked"}).start()
        plain, tls = free_port(), free_port()
        with httpd(d, status_conf(d, pki, responder.url, plain, tls)) as srv:
            wait_until(lambda: port_accepting(plain), 15, what="httpd-py listening")
            yield StatusServer(srv, d, pki, responder, plain, tls)
    finally:
        if responder is not None:
            responder.stop()
        shutil.rmtree(d, ignore_errors=True)
