"""The same features through the real ``httpd-py`` process and the real config loader: an
httpd.conf with two SNI vhosts (RSA + ECDSA certificates), a plain vhost, Apache's SSLProtocol
and SSLCipherSuite syntax, SSLOpenSSLConfCmd, LogFormat/CustomLog, ErrorDocument, Alias and
Redirect."""
from __future__ import annotations

import re
import subprocess

import pytest

from httpd_py.devtools.pki import make_pki
from tests.support.server import httpd
from tests.support.tools import free_port, require_tool, wait_until


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    require_tool("curl")
    require_tool("openssl")
    tmp = tmp_path_factory.mktemp("real")
    pki = make_pki(tmp / "pki", ("a.test", "b.test"))
    for n in ("a", "b", "shared"):
        (tmp / n).mkdir()
        (tmp / n / "index.html").write_text(f"{n} index\n")
    (tmp / "a" / "err404.html").write_text("custom 404 for a\n")
    tls_port, plain_port = free_port(), free_port()
    conf = f'''
Listen 127.0.0.1:{tls_port} https
Listen 127.0.0.1:{plain_port}
ServerName main.test
DocumentRoot "{tmp}/shared"
LogLevel info
KeepAliveTimeout 2
LogFormat "%h %l %u %t \\"%r\\" %>s %b %v %{{SSL_PROTOCOL}}x %{{SSL_CIPHER}}x" sslvars
CustomLog "{tmp}/access.log" sslvars
SSLProtocol all -TLSv1 -TLSv1.1
SSLCipherSuite HIGH:!aNULL:!MD5
SSLCipherSuite TLSv1.3 TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384
SSLHonorCipherOrder on
SSLOpenSSLConfCmd Curves X25519:prime256v1
<VirtualHost *:{tls_port}>
    ServerName a.test
    DocumentRoot "{tmp}/a"
    SSLEngine on
    SSLCertificateFile "{pki.leaf("a.test", "rsa").cert_file}"
    SSLCertificateKeyFile "{pki.leaf("a.test", "rsa").key_file}"
    SSLCertificateFile "{pki.leaf("a.test", "ec").cert_file}"
    SSLCertificateKeyFile "{pki.leaf("a.test", "ec").key_file}"
    ErrorDocument 404 /err404.html
    Alias /shared/ "{tmp}/shared/"
    Redirect permanent /old https://a.test/new
</VirtualHost>
<VirtualHost *:{tls_port}>
    ServerName b.test
    ServerAlias *.b.test
    DocumentRoot "{tmp}/b"
    SSLEngine on
    SSLCertificateFile "{pki.leaf("b.test", "ec").cert_file}"
    SSLCertificateKeyFile "{pki.leaf("b.test", "ec").key_file}"
</VirtualHost>
<VirtualHost *:{plain_port}>
    ServerName plain.test
    DocumentRoot "{tmp}/b"
</VirtualHost>
'''
    with httpd(tmp, conf) as s:
        s.tls_port, s.plain_port, s.pki, s.tmp = tls_port, plain_port, pki, tmp
        yield s


def curl(srv, name, *args):
    cmd = ["curl", "-sS", "--cacert", str(srv.pki.root_file), "--resolve", f"{name}:{srv.tls_port}:127.0.0.1",
           *[a.replace("URL", f"https://{name}:{srv.tls_port}") for a in args]]
    return subprocess.run(cmd, capture_output=True, timeout=15)


def test_sni_vhosts_keep_alive_and_access_log(srv):
    r = curl(srv, "a.test", "-v", "URL/", "URL/shared/index.html")
    assert r.stdout == b"a index\nshared index\n"
    assert b"Re-using existing connection" in r.stderr
    assert curl(srv, "x.b.test", "-k", "URL/").stdout == b"b index\n"
    log = srv.tmp / "access.log"
    line = wait_until(lambda: next((l for l in log.read_text().splitlines() if "GET /shared/index.html" in l), None),
                      5, what="access log line")
    assert re.search(r'" 200 13 a\.test TLSv1\.3 TLS_AES_(128|256)_GCM_SHA(256|384)$', line), line


def test_421_error_document_redirect(srv):
    assert curl(srv, "a.test", "-i", "-H", "Host: b.test", "URL/").stdout.startswith(b"HTTP/1.1 421 ")
    r = curl(srv, "a.test", "-i", "URL/nope")
    assert r.stdout.startswith(b"HTTP/1.1 404 ") and r.stdout.endswith(b"custom 404 for a\n")
    r = curl(srv, "a.test", "-i", "URL/old/x")
    assert r.stdout.startswith(b"HTTP/1.1 301 ") and b"Location: https://a.test/new/x" in r.stdout


def test_protocols_and_certificates(srv):
    def s_client(*args):
        return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{srv.tls_port}", *args],
                              input=b"", capture_output=True, timeout=15)
    r = s_client("-servername", "a.test", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert b"alert protocol version" in r.stderr
    assert b"Server public key is 2048 bit" in s_client("-servername", "a.test", "-sigalgs", "RSA-PSS+SHA256").stdout
    assert b"Server public key is 256 bit" in s_client("-servername", "a.test", "-sigalgs", "ECDSA+SHA256").stdout
    # SSLOpenSSLConfCmd Curves X25519:prime256v1: a TLS 1.3 client offering only P-384 fails,
    # one offering P-256 gets it
    assert b"Cipher is (NONE)" in s_client("-servername", "a.test", "-tls1_3", "-groups", "P-384").stdout
    assert b"Server Temp Key: ECDH, prime256v1" in s_client("-servername", "a.test", "-tls1_3",
                                                             "-groups", "P-256").stdout


def test_plain_vhost_and_plain_http_on_tls_port(srv):
    r = subprocess.run(["curl", "-sS", "-H", "Host: plain.test", f"http://127.0.0.1:{srv.plain_port}/"],
                       capture_output=True, timeout=15)
    assert r.stdout == b"b index\n"
    r = subprocess.run(["curl", "-sS", "-i", f"http://127.0.0.1:{srv.tls_port}/"], capture_output=True, timeout=15)
    assert r.stdout.startswith(b"HTTP/1.1 400 ")
    assert "Traceback" not in srv.log_text()
