"""Interop: the same Apache-syntax httpd.conf under Debian's apache2 and under httpd-py, in turn,
with the same certificates and the same real responder (``openssl ocsp`` behind the loopback
front; the in-process responder for the hostile cases Apache cannot be shown otherwise).

For every case the clients' view is recorded (openssl s_client -status: staple or none, response
status, certificate status, whether the staple names the certificate; curl --cert-status: accepted
or refused) and compared with the case's pins in ``httpd_py/devtools/interop_stapling.py``: what
Apache shows and what httpd-py shows, both sides, observation by observation.  A changed answer
from either server fails, also inside an intended difference.  The results page
docs/interop-stapling.md is generated from the same pins (``test_interop_doc.py``); this test
writes nothing.

httpd-py runs the same file as a real server process (``python -m httpd_py -f FILE -DFOREGROUND
-c "SSLStaplingRefresh on-demand"``: Apache's refresh model, issue 5; the background default is
issue 6's).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from httpd_py.devtools.interop_stapling import CASES, Case, check_cases
from httpd_py.devtools.openssl_responder import OpenSSLResponder
from httpd_py.devtools.pki import make_leaf, make_pki, write_index
from httpd_py.devtools.responder import Responder
from tests.support.apache import apache_serving, load_modules
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, require_tool, wait_until

MODULES = load_modules("mpm_prefork", "authz_core", "mime", "dir", "socache_shmcb", "ssl")

CONF = """\
ServerRoot "{root}"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile "{root}/{tag}.pid"
ErrorLog "{root}/{tag}-error.log"
LogLevel info ssl:debug
DefaultRuntimeDir "{root}"
{modules}
User www-data
Group www-data
StartServers 2
MinSpareServers 1
MaxSpareServers 4
TypesConfig /etc/mime.types
DocumentRoot "{root}/docs"
SSLSessionTickets off
SSLStaplingCache "shmcb:{root}/stapling-{port}(128000)"
SSLUseStapling on
SSLStaplingResponderTimeout 2
{extra}
{vhosts}
"""

VHOST = """\
<VirtualHost 127.0.0.1:{port}>
  ServerName {name}
  DocumentRoot "{root}/docs"
  SSLEngine on
  SSLCertificateFile {pki}/{name}-rsa.pem
  SSLCertificateKeyFile {pki}/{name}-rsa.key
  SSLCertificateFile {pki}/{name}-ec.pem
  SSLCertificateKeyFile {pki}/{name}-ec.key
</VirtualHost>
"""

NAMES = ("a.test", "b.test", "revoked.test")


def observe_s_client(port: int, name: str, kind: str, pki) -> str:
    openssl = require_tool("openssl")
    sigalgs = {"rsa": "rsa_pss_rsae_sha256:rsa_pkcs1_sha256", "ec": "ecdsa_secp256r1_sha256"}[kind]
    p = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name,
                        "-status", "-CAfile", str(pki.root_file), "-sigalgs", sigalgs],
                       input=b"Q\n", capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace")
    if "OCSP response: no response sent" in out or "OCSP Response Status" not in out:
        return "no staple"
    status = re.search(r"OCSP Response Status: (\S+)", out).group(1)
    if status != "successful":
        return f"staple: {status}"
    cert_status = re.search(r"Cert Status: (\S+)", out).group(1)
    serial = re.search(r"Serial Number: ([0-9A-F]+)", out).group(1).lstrip("0")
    mine = format(pki.leaf(name, kind).cert.serial_number, "X").lstrip("0")
    return f"staple: {cert_status}" + ("" if serial == mine else " (other serial)")


def observe_curl(port: int, name: str, pki) -> str:
    curl = require_tool("curl")
    p = subprocess.run([curl, "-sS", "-o", "/dev/null", "--cert-status", "--cacert", str(pki.root_file),
                        "--resolve", f"{name}:{port}:127.0.0.1", f"https://{name}:{port}/"],
                       capture_output=True, timeout=60)
    return "accepted" if p.returncode == 0 else f"refused ({p.returncode})"


@contextlib.contextmanager
def responder_for(mode: str | None, pki, port: int, drip_bytes: int = 8):
    if mode is None:
        # "down": the previous case's responder (same port) must really be gone, or the case
        # sees its answers (an openssl ocsp child can outlive its parent for a moment)
        wait_until(lambda: not port_accepting(port), 15, what=f"nothing listening on {port}")
        yield None
    elif mode.startswith("inproc:"):
        with Responder.for_pki(pki, port=port, mode=mode.split(":", 1)[1],
                               statuses=revoked_statuses(pki)) as r:
            yield r
    else:
        with OpenSSLResponder(pki.out_dir, port=port, mode=mode, drip_bytes=drip_bytes) as r:
            yield r


def revoked_statuses(pki):
    return {pki.leaf("revoked.test", k).cert.serial_number: "revoked" for k in ("rsa", "ec")}


def apache(conf: Path, root: Path, port: int):
    return apache_serving(conf, root, port, pid_file=root / "apache.pid")   # CONF's {tag}.pid


@contextlib.contextmanager
def httpd_py(conf: Path, root: Path, port: int):
    """The real httpd-py process (prefork master, workers as www-data) on the same file."""
    # a fresh server root per case: a port number can come back in a later case, and a root
    # named after it would hand that case the earlier case's stored staples (they persist)
    with httpd(Path(tempfile.mkdtemp(prefix=f"hp-{port}-", dir=root)), conf.read_text(),
               args=("-c", "SSLStaplingRefresh on-demand")) as srv:
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        yield srv


def run_case(case: Case, server: str, pki, root: Path, rport: int) -> list[str]:
    port = free_port()
    tag = "apache" if server == "apache2" else "httpd-py"
    vhosts = "".join(VHOST.format(port=port, name=n, root=root, pki=pki.out_dir) for n in NAMES)
    conf = root / f"{tag}.conf"
    conf.write_text(CONF.format(root=root, port=port, tag=tag, modules=MODULES, extra="\n".join(case.extra),
                                vhosts=vhosts))
    (root / f"hp-{port}").mkdir(exist_ok=True)
    runner = apache if server == "apache2" else httpd_py
    seen = []
    with responder_for(case.responder, pki, rport, drip_bytes=10) as r:
        with runner(conf, root, port):
            for _ in range(case.repeat):
                for name, kind in case.probes:
                    start = time.monotonic()
                    first = observe_s_client(port, name, kind, pki)
                    if case.timed:     # SSLStaplingResponderTimeout is 2 s; the drip lasts 6 s
                        first += ("; handshake held > 4 s" if time.monotonic() - start > 4.0
                                  else "; handshake held < 4 s")
                    seen.append(first + "; curl " + observe_curl(port, name, pki) if kind == "ec" else first)
            if case.then_back:
                with responder_for("normal", pki, rport):
                    until = time.time() + 1.5
                    wait_until(lambda: time.time() > until, 5, what="ErrorCacheTimeout to pass")
                    name, kind = case.probes[0]
                    seen.append("later: " + observe_s_client(port, name, kind, pki) + "; curl "
                                + observe_curl(port, name, pki))
            if r is not None:
                seen.append(f"{r.requests} request(s)")
    return seen


@pytest.mark.slow
def test_apache_and_httpd_py_side_by_side():
    require_tool("apache2")
    require_tool("openssl")
    require_tool("curl")
    root = Path(tempfile.mkdtemp(prefix="interop-"))
    os.chmod(root, 0o755)                      # apache's children run as www-data
    try:
        (root / "docs").mkdir()
        (root / "docs" / "index.html").write_text("ok\n")
        rport = free_port()
        url = f"http://127.0.0.1:{rport}/"
        pki = make_pki(root / "pki", ("a.test", "b.test"), ocsp_url=url)
        for kind in ("rsa", "ec"):
            make_leaf(pki, "revoked.test", kind, ocsp_urls=(url,))
        write_index(pki, revoked={s: dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
                                  for s in revoked_statuses(pki)})
        for p in (root / "pki").iterdir():
            os.chmod(p, 0o644 if p.suffix == ".pem" or p.name.startswith("index") else 0o600)
        os.chmod(root / "pki", 0o755)
        assert check_cases() == []
        failures = []
        for case in CASES:
            seen = {"apache2": run_case(case, "apache2", pki, root, rport),
                    "httpd-py": run_case(case, "httpd-py", pki, root, rport)}
            for server, pinned in (("apache2", case.apache), ("httpd-py", case.ours)):
                if tuple(seen[server]) != pinned:
                    failures.append(f"{case.name}: {server} showed {seen[server]}, pinned {list(pinned)}")
        assert not failures, "\n".join(failures)
    finally:
        shutil.rmtree(root, ignore_errors=True)
