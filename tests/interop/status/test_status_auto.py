"""mod_status on apache2 and httpd-py on the same config: the ``?auto`` field names, the page's
statuses for GET/HEAD/POST and the query words, and Require local.

Fields apache2 prints that httpd-py does not (or the other way round) must be listed in
``DOCUMENTED`` with the reason (docs/interop.md, "mod_status"); anything else fails."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from httpd_py.devtools.pki import make_pki
from tests.support.apache import apache_serving, minimal_conf
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, require_tool, wait_until

# apache2 prints these, httpd-py does not: mod_socache_shmcb's own statistics of a shared
# session cache that httpd-py does not have (pyOpenSSL has no session-cache callbacks)
APACHE_ONLY = {"CacheSharedMemory", "CacheCurrentEntries", "CacheSubcaches",
               "CacheIndexesPerSubcaches", "CacheTimeLeftOldestAvg", "CacheTimeLeftOldestMin",
               "CacheTimeLeftOldestMax", "CacheIndexUsage", "CacheUsage", "CacheStoreCount",
               "CacheReplaceCount", "CacheExpireCount", "CacheDiscardCount",
               "CacheRemoveHitCount", "CacheRemoveMissCount"}
# httpd-py prints these, apache2 (prefork) does not: the workers' event loops' counts
HTTPD_PY_ONLY = {"CacheScope", "ConnsAsyncHandshake", "ConnsAsyncHead", "ConnsAsyncKeepAlive",
                 "RequestsParked"}
# printed by both only once the uptime (or the access count, or the CPU time) is not 0
CONDITIONAL = {"ReqPerSec", "BytesPerSec", "BytesPerReq", "DurationPerReq", "CPULoad"}


def conf(root: Path, plain: int, tls: int, pki) -> str:
    leaf = pki.leaf("a.test", "rsa")
    extra = f"""Listen 127.0.0.1:{tls}
DocumentRoot {root}/htdocs
StartServers 2
MinSpareServers 1
MaxSpareServers 3
ServerLimit 16
SSLSessionCache shmcb:{root}/logs/scache(512000)
<VirtualHost *:{tls}>
  ServerName a.test
  SSLEngine on
  SSLCertificateFile {leaf.cert_file}
  SSLCertificateKeyFile {leaf.key_file}
</VirtualHost>
<Location /server-status>
  SetHandler server-status
  Require local
</Location>
"""
    return minimal_conf(root, ("mpm_prefork", "authz_core", "authz_host", "status", "ssl",
                               "socache_shmcb"), listen=f"127.0.0.1:{plain}", extra=extra)


def fetch(url: str, method: str = "GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def fields(body: bytes) -> set[str]:
    names = set()
    for line in body.decode("latin-1").splitlines()[1:]:
        names.add(line.split(":", 1)[0] if ":" in line else line)
    return names


@pytest.fixture(scope="module")
def both():
    require_tool("apache2")
    base = Path(tempfile.mkdtemp(prefix="status-interop-"))
    os.chmod(base, 0o755)
    try:
        pki = make_pki(base / "pki", ("a.test",), ocsp_url="http://127.0.0.1:9/")
        for p in base.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        ports = {}
        roots = {}
        for kind in ("apache", "httpd-py"):
            root = base / kind
            (root / "logs").mkdir(parents=True)
            (root / "htdocs").mkdir()
            (root / "htdocs" / "index.html").write_text("hello\n")
            ports[kind] = (free_port(), free_port())
            roots[kind] = root
            (root / "httpd.conf").write_text(conf(root, *ports[kind], pki))
        with apache_serving(roots["apache"] / "httpd.conf", roots["apache"], ports["apache"][0],
                            roots["apache"] / "logs" / "pid"):
            text = (roots["httpd-py"] / "httpd.conf").read_text()
            with httpd(roots["httpd-py"], text):
                wait_until(lambda: port_accepting(ports["httpd-py"][0]), 15, what="httpd-py")
                yield {k: f"http://127.0.0.1:{p[0]}" for k, p in ports.items()}, ports
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _warm(base: str, tls: int) -> None:
    curl = require_tool("curl")
    for _ in range(3):
        fetch(base + "/index.html")
    subprocess.run([curl, "-sk", "-o", "/dev/null", "--resolve", f"a.test:{tls}:127.0.0.1",
                    f"https://a.test:{tls}/"], timeout=30, check=False)


def test_auto_field_names_are_apaches(both):
    urls, ports = both
    got = {}
    for kind, base in urls.items():
        _warm(base, ports[kind][1])
        status, headers, body = fetch(base + "/server-status?auto")
        assert status == 200, (kind, body)
        assert headers["Content-Type"].startswith("text/plain"), (kind, headers)
        got[kind] = fields(body) - CONDITIONAL
    apache, ours = got["apache"], got["httpd-py"]
    assert apache - ours == APACHE_ONLY, sorted(apache - ours)
    assert ours - apache == HTTPD_PY_ONLY, sorted(ours - apache)


@pytest.mark.parametrize("query", ["", "?auto", "?refresh=3", "?notable", "?auto&notable"])
def test_same_status_and_type(both, query):
    urls, _ = both
    seen = {}
    for kind, base in urls.items():
        status, headers, _ = fetch(base + "/server-status" + query)
        seen[kind] = (status, headers["Content-Type"].split(";")[0], headers.get("Refresh"))
    assert seen["httpd-py"] == seen["apache"], seen
