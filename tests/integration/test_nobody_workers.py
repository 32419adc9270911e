"""The real server, workers and the stapler helper as ``nobody``, every feature on: stapling in
the background (bg.test) and on demand (od.test, fetched in the worker), each socache provider as
SSLStaplingCache (shmcb, dbm, memcache, redis: a fleet lock on the network ones), the status
pages.  The server runs under tests/support/no_lazy_imports.py, which makes any module import
after the privilege drop fail and report itself, as on a machine whose Python installation the
User cannot read: a module imported lazily in a worker or helper fails this test in CI, not a
handshake in production."""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from httpd_py.devtools.pki import make_pki
from httpd_py.devtools.responder import Responder
from tests.support.server import HttpdServer
from tests.support.servers import memcached_server, redis_server
from tests.support.stapling import connect, staple_context, status_request
from tests.support.tools import free_port, wait_until

GUARD = Path(__file__).resolve().parents[1] / "support" / "no_lazy_imports.py"
NAMES = ("bg.test", "od.test")
# Lazy imports found and not yet fixed by their owners (module -> where): this test fails on
# any other, and asks to remove an entry once it no longer shows.
KNOWN_LAZY = {
    "httpd_py.stapling.status": "modules/status.py imports it inside its /stapling-status and "
                                "/server-status stapling code (lines 375-377)",
}


class GuardedServer(HttpdServer):
    report: Path

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, str(GUARD), str(self.report), "-f", str(self.conf), *extra]


@pytest.fixture
def world():
    d = Path(tempfile.mkdtemp(prefix="hp-nobody-"))
    os.chmod(d, 0o755)                          # the workers (nobody) read the DocumentRoot
    (d / "htdocs").mkdir()
    (d / "htdocs" / "index.html").write_text("hello\n")
    pki = make_pki(d / "pki", NAMES, kinds=("ec",), ocsp_url="http://127.0.0.1:9/")
    with Responder.for_pki(pki) as responder:
        yield d, pki, responder
    shutil.rmtree(d, ignore_errors=True)


def conf(d: Path, pki, url: str, cache: str, plain: int, tls: int) -> str:
    lines = ["User nobody", "Group nogroup", f"Listen 127.0.0.1:{plain}", f"Listen 127.0.0.1:{tls}",
             "LoadModule status_module /usr/lib/apache2/modules/mod_status.so",
             "StartServers 2", "MinSpareServers 1", "MaxSpareServers 3", "ServerLimit 8",
             f"DocumentRoot {d}/htdocs", f"DefaultRuntimeDir {d}/run",
             f"SSLStaplingCache {cache}", f"SSLStaplingStoreDir {d}/store", "LogLevel info",
             "SSLStaplingResponderTimeout 3"]
    for path, handler in (("/server-status", "server-status"),
                          ("/stapling-status", "stapling-status"), ("/metrics", "metrics")):
        lines += [f"<Location {path}>", f"  SetHandler {handler}", "  Require ip 127.0.0.1",
                  "</Location>"]
    for name in NAMES:
        leaf = pki.leaf(name, "ec")
        lines += [f"<VirtualHost 127.0.0.1:{tls}>", f"  ServerName {name}", "  SSLEngine on",
                  f"  SSLCertificateFile {leaf.cert_file}", f"  SSLCertificateKeyFile {leaf.key_file}",
                  "  SSLUseStapling on", f"  SSLStaplingForceURL {url}",
                  *(["  SSLStaplingRefresh on-demand"] if name == "od.test" else []),
                  "</VirtualHost>"]
    return "\n".join(lines) + "\n"


def staple(port: int, name: str) -> bytes:
    got: list = []
    s = connect(port)
    try:
        c = status_request(staple_context(got), s, name)
        c.do_handshake()
        c.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while True:
            try:
                chunk = c.recv(65536)
            except Exception:
                break
            if not chunk:
                break
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    finally:
        s.close()
    return got[0] if got else b""


@contextlib.contextmanager
def cache_server(provider: str):
    if provider == "redis":
        with redis_server() as (h, p):
            yield f"redis:{h}:{p}"
    elif provider == "memcache":
        with memcached_server() as (h, p):
            yield f"memcache:{h}:{p}"
    else:
        yield {"shmcb": "shmcb:run/stapling(512000)", "dbm": "dbm:run/stapling.db"}[provider]


@pytest.mark.parametrize("provider", ["shmcb", "dbm", "memcache", "redis"])
def test_workers_as_nobody_with_every_feature_import_nothing_lazily(world, provider):
    d, pki, responder = world
    for sub in ("run", "store", "logs"):
        shutil.rmtree(d / sub, ignore_errors=True)
        (d / sub).mkdir()
    report = d / "lazy-imports.txt"
    report.write_text("")
    os.chmod(report, 0o666)
    plain, tls = free_port(), free_port()
    with cache_server(provider) as cache:
        srv = GuardedServer(d, conf(d, pki, responder.url, cache, plain, tls))
        srv.report = report
        try:
            srv.start(timeout=60)
            for _ in range(3):                  # several workers, the helper, both modes
                for name in NAMES:
                    assert staple(tls, name), (name, srv.log_text()[-3000:])
            for path in ("/server-status", "/server-status?auto", "/stapling-status", "/metrics"):
                with urllib.request.urlopen(f"http://127.0.0.1:{plain}{path}", timeout=10) as r:
                    assert r.status == 200, path
            wait_until(lambda: " HP04800: " in srv.log_text(), 30, what="the stapler helper")
        finally:
            srv.stop()
    log = srv.log_text()
    lazy = {line.split()[1] for line in report.read_text().splitlines()}
    assert lazy - set(KNOWN_LAZY) == set(), report.read_text()
    assert set(KNOWN_LAZY) - lazy == set(), "fixed: remove it from KNOWN_LAZY"
    if not lazy:
        assert "ImportError" not in log and "ModuleNotFoundError" not in log, log[-3000:]
    assert " HP01007: " not in log and "Traceback" not in log, log[-3000:]
