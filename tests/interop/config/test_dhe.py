"""DHE-RSA cipher suites on the same SSLCipherSuite in apache2 and httpd-py: both negotiate them
with the same DH group (Apache's automatic choice for a 2048-bit RSA key is RFC 3526's 2048-bit
MODP group, measured from its ServerKeyExchange).  ``SSLOpenSSLConfCmd DHParameters FILE``:
both check the file at -t with Apache's message; Apache 2.4.71 on OpenSSL 3 then keeps its
automatic group (OpenSSL's dh_auto wins over the configured parameters, measured), httpd-py
uses the file's parameters (an improvement, docs/interop.md)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from httpd_py.devtools.pki import make_pki
from httpd_py.tls import dhgroups
from tests.support.apache import apache_serving, minimal_conf, run_apache
from tests.support.tools import free_port, port_accepting, require_tool, wait_until

SUITES = ("DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305")


def conf(root: Path, port: int, extra: str = "") -> str:
    return minimal_conf(root, ("mpm_prefork", "authz_core", "ssl", "socache_shmcb"),
                        listen=f"127.0.0.1:{port}", extra=f"""
<VirtualHost 127.0.0.1:{port}>
ServerName a.test
SSLEngine on
SSLCertificateFile pki/a.test-rsa.pem
SSLCertificateKeyFile pki/a.test-rsa.key
SSLProtocol TLSv1.2
SSLCipherSuite {':'.join(SUITES)}
{extra}
</VirtualHost>
""")


def negotiated(port: int, suite: str) -> tuple[str, str, str]:
    """(cipher, 'DH, N bits', the DH prime's first bytes from the ServerKeyExchange)."""
    openssl = require_tool("openssl")
    out = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                          "a.test", "-cipher", suite, "-tls1_2", "-msg"], input=b"",
                         capture_output=True, timeout=30).stdout.decode()
    cipher = re.search(r"Cipher is (\S+)", out)
    temp = re.search(r"Server Temp Key: ([^\n]+)", out)
    ske = re.search(r"ServerKeyExchange\n((?:\s+[0-9a-f ]+\n){2})", out)
    return (cipher.group(1) if cipher else "", temp.group(1) if temp else "",
            "".join(ske.group(1).split()) if ske else "")


def served_by_both(root: Path, extra: str = "") -> dict[str, list]:
    results: dict[str, list] = {}
    port = free_port()
    (root / "a.conf").write_text(conf(root, port, extra))
    with apache_serving(root / "a.conf", root, port, root / "logs" / "pid"):
        results["apache"] = [negotiated(port, s) for s in SUITES]
    port = free_port()
    (root / "o.conf").write_text(conf(root, port, extra))
    ours = [sys.executable, "-m", "httpd_py", "-d", str(root), "-f", str(root / "o.conf")]
    r = subprocess.run([*ours, "-k", "start", "-c", "User root"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    try:
        results["ours"] = [negotiated(port, s) for s in SUITES]
    finally:
        subprocess.run([*ours, "-k", "stop"], capture_output=True, timeout=60)
        wait_until(lambda: not port_accepting(port), 30, what="httpd-py stopped")
    return results


@pytest.fixture
def root(tmp_path):
    require_tool("apache2")
    (tmp_path / "logs").mkdir()
    make_pki(tmp_path / "pki", ("a.test",), kinds=("rsa",))
    return tmp_path


def test_dhe_suites_negotiate_with_apaches_group(root):
    r = served_by_both(root)
    assert r["ours"] == r["apache"]
    assert [c for c, _, _ in r["ours"]] == list(SUITES)
    assert all(t == "DH, 2048 bits" for _, t, _ in r["ours"])
    # RFC 3526 group 14 starts ffffffffffffffffc90fdaa2 (after the 6-byte message/length head)
    assert all(p[12:].startswith("ffffffffffffffffc90fdaa2") for _, _, p in r["ours"])


def test_dh_parameters_file(root):
    (root / "dh3072.pem").write_bytes(dhgroups.for_key_bits(3072))
    r = served_by_both(root, "SSLOpenSSLConfCmd DHParameters dh3072.pem")
    assert [c for c, _, _ in r["apache"]] == [c for c, _, _ in r["ours"]] == list(SUITES)
    assert all(t == "DH, 2048 bits" for _, t, _ in r["apache"])     # Apache: still automatic
    assert all(t == "DH, 3072 bits" for _, t, _ in r["ours"])       # httpd-py: the file's


def test_a_missing_dh_parameters_file_is_apaches_error(root, capfd):
    from httpd_py import cli
    (root / "m.conf").write_text(conf(root, free_port(), "SSLOpenSSLConfCmd DHParameters nope.pem"))
    a = run_apache(root, root / "m.conf", "-t")
    capfd.readouterr()
    assert cli.main(["-d", str(root), "-f", str(root / "m.conf"), "-t"]) == 1
    ours = capfd.readouterr().err
    assert a.returncode == 1
    assert ours.strip() == a.stderr.strip()
