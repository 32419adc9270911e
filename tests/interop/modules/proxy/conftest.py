"""Fixtures for the reverse-proxy suite: real backends (uvicorn running app.py) and apache2 and
httpd-py in front of them with the same configuration, each started once per module on its own
free loopback port (modelled on tests/interop/site).

    backends        Backends: ports of b1 and b2 (plain), tls (HTTPS, a certificate for
                    "localhost" signed by a test CA), dead (nothing listens)
    proxy_site      ProxySite: the base directory, the shared fragment, the CA file
    apache_port     Debian's apache2 on the fragment
    httpd_py_port   httpd-py on the same fragment (its server object: ``httpd_py_server``)

Both proxies' workers run as www-data (the CA file and the tree are world-readable).  The
backends run as the test's user, bound to 127.0.0.1 only.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.apache import apache_serving, pair_conf
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, require_tool, wait_until

REPO = Path(__file__).resolve().parents[4]

MODULES = ("mpm_prefork", "authz_core", "authz_host", "proxy", "proxy_http", "proxy_wstunnel",
           "proxy_balancer", "lbmethod_byrequests", "slotmem_shm", "remoteip", "ssl",
           "socache_shmcb")


@dataclasses.dataclass(frozen=True)
class Backends:
    b1: int
    b2: int
    tls: int
    dead: int


@dataclasses.dataclass(frozen=True)
class ProxySite:
    base: Path
    fragment: Path
    ca_file: Path

    def server_root(self, tag: str) -> Path:
        return self.base / tag

    def main_conf(self, tag: str, port: int) -> str:
        # one worker process: byrequests' order is then the same on both servers
        return pair_conf(self.server_root(tag), tag, port, MODULES, self.fragment,
                         sizing="StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\n"
                                f"MaxRequestWorkers 4\nDefine PORT {port}\n")

    def pid_file(self, tag: str) -> Path:
        return self.server_root(tag) / "logs" / f"{tag}.pid"


def _certs(d: Path) -> tuple[Path, Path, Path]:
    """A test CA and a leaf for DNS:localhost (no IP names), PEM files in D."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = d / "ca.pem", d / "backend.pem", d / "backend.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_file, cert_file, key_file


def _uvicorn(port: int, name: str, log: Path, tls: tuple[Path, Path] | None = None):
    cmd = [sys.executable, "-m", "uvicorn", "tests.interop.modules.proxy.app:app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--ws", "wsproto", "--timeout-keep-alive", "30", "--no-access-log"]
    if tls:
        cmd += ["--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1])]
    env = dict(os.environ, BACKEND_NAME=name, PYTHONPATH=str(REPO))
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def proxy_site():
    require_tool("apache2")
    try:
        import uvicorn  # noqa: F401
        import wsproto  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("uvicorn/wsproto missing (pip install -e '.[test]'); under CI: raised above")
    base = Path(tempfile.mkdtemp(prefix="proxy-"))
    os.chmod(base, 0o755)
    for tag in ("apache", "httpd-py", "backends"):
        (base / tag / "logs").mkdir(parents=True)
        os.chmod(base / tag, 0o755)
        os.chmod(base / tag / "logs", 0o777)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def backends(proxy_site):
    ca, cert, key = _certs(proxy_site / "backends")
    for p in (ca, cert, key):
        os.chmod(p, 0o644)
    ports = Backends(free_port(), free_port(), free_port(), free_port())
    logs = proxy_site / "backends" / "logs"
    procs = [_uvicorn(ports.b1, "b1", logs / "b1.log"),
             _uvicorn(ports.b2, "b2", logs / "b2.log"),
             _uvicorn(ports.tls, "tls", logs / "tls.log", (cert, key))]
    try:
        for p in (ports.b1, ports.b2, ports.tls):
            wait_until(lambda p=p: port_accepting(p), 20, what=f"uvicorn on {p}")
        yield ports
    finally:
        for pr in procs:
            try:
                os.killpg(pr.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pr in procs:
            try:
                pr.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(pr.pid, signal.SIGKILL)
                pr.wait(5)


def fragment(b: Backends, ca: Path) -> str:
    B1 = f"http://127.0.0.1:{b.b1}"
    B2 = f"http://127.0.0.1:{b.b2}"
    DEAD = f"http://127.0.0.1:{b.dead}"
    return f"""\
# ---- shared by apache2 and httpd-py: tests/interop/modules/proxy/conftest.py ----
Timeout 5
ProxyTimeout 15
ProxyPass /excluded !
ProxyPass /app/excluded/ !
# workers with their own parameters first (a later URL under the same prefix shares them)
ProxyPass /t2/ {B1}/t2/ timeout=2
ProxyPass /noreuse/ {B1}/noreuse/ disablereuse=On
ProxyPass /ka/ {B1}/ka/ keepalive=On ttl=5 max=1
ProxyPass /up/ {B1}/up/ upgrade=websocket
ProxyPass /ws/ ws://127.0.0.1:{b.b1}/ws/
ProxyPass /app/ {B1}/
ProxyPassReverse /app/ {B1}/
ProxyPass /app {B1}/exact
ProxyPass /nc/ {B1}/nc/ nocanon
ProxyPass /nq/ {B1}/nq/ noquery
ProxyPassMatch ^/rx/([a-z]+)/(.*)\\.json$ {B1}/matched/$2/$1
ProxyPassMatch \\.echo$ {B1}
ProxyPass /down/ {DEAD}/
ProxyPass /cookies/ {B1}/
ProxyPassReverseCookieDomain backend.internal public.example
ProxyPassReverseCookiePath /app /pub

<Location /loc/>
    ProxyPass {B1}/inloc/
    ProxyPassReverse {B1}/inloc/
</Location>
<LocationMatch ^/lm/>
    ProxyPass {B1}
</LocationMatch>
<Location /preserve/>
    ProxyPreserveHost On
</Location>
ProxyPass /preserve/ {B1}/preserve/
<Location /noxf/>
    ProxyAddHeaders Off
</Location>
ProxyPass /noxf/ {B1}/noxf/
<Location /override/>
    ProxyErrorOverride On
</Location>
ProxyPass /override/ {B1}/override/
<Location /nocont/>
    Proxy100Continue Off
</Location>
ProxyPass /nocont/ {B1}/nocont/
<ProxyMatch "^http://127\\.0\\.0\\.1:{b.b1}/pm/">
    Require all granted
</ProxyMatch>
ProxyPass /pm/ {B1}/pm/
<Location /denied/>
    Require all denied
</Location>
ProxyPass /denied/ {B1}/denied/

# balancers (members outside <Proxy>, which Apache accepts too)
BalancerMember balancer://pool {B1} route=r1
BalancerMember balancer://pool {B2} route=r2
ProxySet balancer://pool stickysession=ROUTEID
ProxyPass /bal/ balancer://pool/
ProxyPassReverse /bal/ balancer://pool/
BalancerMember balancer://weighted {B1} loadfactor=3
BalancerMember balancer://weighted {B2} loadfactor=1
ProxyPass /weighted/ balancer://weighted/
BalancerMember balancer://half {DEAD} retry=30
BalancerMember balancer://half {B2}
ProxyPass /failover/ balancer://half/
BalancerMember balancer://alldead {DEAD} retry=30
ProxyPass /alldead/ balancer://alldead/
<Proxy balancer://sect>
    BalancerMember {B1} route=s1
    BalancerMember {B2} route=s2 loadfactor=2
    ProxySet stickysession=SECTID
</Proxy>
<Proxy *>
    Require all granted
</Proxy>
ProxyPass /sect/ balancer://sect/
BalancerMember balancer://standby {B1} status=+H
BalancerMember balancer://standby {B2}
ProxyPass /standby/ balancer://standby/

<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName localhost
</VirtualHost>
<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName via.test
    ProxyVia On
</VirtualHost>
<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName block.test
    ProxyVia Block
</VirtualHost>
<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName rip.test
    RemoteIPHeader X-Forwarded-For
    RemoteIPInternalProxy 127.0.0.1
    <Location /app/only-doc/>
        Require ip 192.0.2.0/24
    </Location>
</VirtualHost>
<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName riptrust.test
    RemoteIPHeader X-Real-Client
    RemoteIPTrustedProxy 127.0.0.1
    RemoteIPProxiesHeader X-Proxies
</VirtualHost>
<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName tls.test
    SSLProxyEngine On
    SSLProxyVerify require
    SSLProxyCACertificateFile "{ca}"
    SSLProxyCheckPeerName On
    ProxyPass /tls/ https://localhost:{b.tls}/tls/
    ProxyPass /tlsbyip/ https://127.0.0.1:{b.tls}/tlsbyip/
    ProxyPass /wss/ wss://localhost:{b.tls}/wss/
</VirtualHost>
<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName tlsnoverify.test
    SSLProxyEngine On
    ProxyPass /tlsbyip/ https://127.0.0.1:{b.tls}/tlsbyip/
</VirtualHost>
<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName ptimeout.test
    ProxyTimeout 2
    ProxyPass /pt/ http://localhost:{b.b1}/pt/
</VirtualHost>
<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName noinherit.test
    ProxyPassInherit Off
    ProxyPass /own/ {B1}/own/
</VirtualHost>
<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName blocked.test
    ProxyBlock 127.0.0.1
</VirtualHost>
<VirtualHost 127.0.0.1:${{PORT}}>
    ServerName tlsoff.test
    ProxyPass /tls/ https://localhost:{b.tls}/tls/
</VirtualHost>
"""


@pytest.fixture(scope="module")
def site(proxy_site, backends) -> ProxySite:
    ca = proxy_site / "backends" / "ca.pem"
    frag = proxy_site / "proxy.conf"
    frag.write_text(fragment(backends, ca))
    return ProxySite(proxy_site, frag, ca)


@pytest.fixture(scope="module")
def apache_port(site: ProxySite) -> int:
    port = free_port()
    root = site.server_root("apache")
    conf = root / "apache.conf"
    conf.write_text(site.main_conf("apache", port))
    with apache_serving(conf, root, port, pid_file=site.pid_file("apache")):
        yield port


@pytest.fixture(scope="module")
def httpd_py_server(site: ProxySite):
    port = free_port()
    with httpd(site.server_root("httpd-py"), site.main_conf("httpd-py", port)) as srv:
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        srv.port = port
        yield srv


@pytest.fixture(scope="module")
def httpd_py_port(httpd_py_server) -> int:
    return httpd_py_server.port
