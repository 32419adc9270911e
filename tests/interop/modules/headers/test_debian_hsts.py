"""``Header always set Strict-Transport-Security`` on Debian's default-ssl site, side by side: a
copy of the stock /etc/apache2 with ssl, socache_shmcb and headers enabled and default-ssl on (as
a2enmod/a2ensite would do), served over TLS and plain HTTP by apache2 and by httpd-py at the same
time (/etc/apache2 itself is only read).

Changes to the copy: ``Listen`` on two free loopback ports per server (``SITE_PORT`` plain,
``SSL_PORT`` TLS, from each server's environment), the two vhosts on those ports, /var/www
replaced by a copied docroot (plus a directory, for mod_dir's 301), a throwaway certificate in
place of the snakeoil pair when the machine has none, and in default-ssl's vhost::

    Header always set Strict-Transport-Security "max-age=63072000; includeSubDomains"
    Header set X-Https "%{HTTPS}s"

(the same X-Https line in 000-default's vhost).  Each row is one request over TLS (no
certificate verification: loopback, a throwaway certificate) or plain HTTP; compared: the status,
Strict-Transport-Security and X-Https.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from httpd_py.devtools import pki
from tests.interop.site.test_debian_stock_tree import serving
from tests.support.tools import free_port, port_accepting, require_tool, wait_until

SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"
HSTS = "max-age=63072000; includeSubDomains"
PAST = 1_600_000_000
LATER = "Sat, 01 Jan 2022 00:00:00 GMT"


@dataclass(frozen=True)
class Row:
    id: str
    target: str
    apache: int
    tls: bool = True
    method: str = "GET"
    headers: tuple = ()


CORPUS = [
    Row("tls-root", "/", 200),
    Row("tls-index", "/index.html", 200),
    Row("tls-head", "/index.html", 200, method="HEAD"),
    Row("tls-304", "/index.html", 304, headers=(("If-Modified-Since", LATER),)),
    Row("tls-404", "/missing.html", 404),
    Row("tls-301", "/dir", 301),
    Row("tls-dir", "/dir/", 200),
    Row("tls-post", "/index.html", 200, method="POST"),
    Row("plain-root", "/", 200, tls=False),
    Row("plain-404", "/missing.html", 404, tls=False),
]
COMPARED = ("strict-transport-security", "x-https")


@pytest.fixture(scope="module")
def stock():
    """(conf dir, {"apache": env, "httpd-py": env}) for the copy."""
    require_tool("apache2")
    if not os.path.isdir("/etc/apache2"):
        require_tool("/etc/apache2 (Debian's apache2 package)")
    base = Path(tempfile.mkdtemp(prefix="debian-hsts-"))
    os.chmod(base, 0o755)
    try:
        conf = base / "apache2"
        shutil.copytree("/etc/apache2", conf, symlinks=True)
        for name in ("ssl.load", "ssl.conf", "socache_shmcb.load", "headers.load"):
            link = conf / "mods-enabled" / name
            if not link.exists():
                link.symlink_to(f"../mods-available/{name}")
        site = conf / "sites-enabled" / "default-ssl.conf"
        if not site.exists():
            site.symlink_to("../sites-available/default-ssl.conf")
        html = base / "www" / "html"
        html.mkdir(parents=True)
        (html / "index.html").write_text("<html><body>It works!</body></html>\n")
        (html / "dir").mkdir()
        (html / "dir" / "index.html").write_text("<html>dir</html>\n")
        for d, _, files in os.walk(base / "www"):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
                os.utime(os.path.join(d, f), (PAST, PAST))
        ssl_site = conf / "sites-available" / "default-ssl.conf"
        text = ssl_site.read_text()
        if not (os.path.exists(SNAKEOIL_CERT) and os.path.exists(SNAKEOIL_KEY)):
            leaf = pki.make_pki(base / "pki", ("localhost",), kinds=("rsa",)).leaf("localhost")
            text = text.replace(SNAKEOIL_CERT, str(leaf.cert_file)) \
                .replace(SNAKEOIL_KEY, str(leaf.key_file))
        text = text.replace("<VirtualHost *:443>", "<VirtualHost *:${SSL_PORT}>")
        text = re.sub(r"(\n\s*SSLEngine on\n)", r"\1\t\tHeader always set "
                      rf'Strict-Transport-Security "{HSTS}"\n\t\tHeader set X-Https "%{{HTTPS}}s"\n',
                      text, count=1)
        assert "Strict-Transport-Security" in text
        ssl_site.write_text(text)
        plain = conf / "sites-available" / "000-default.conf"
        plain.write_text(plain.read_text().replace(
            "<VirtualHost *:80>", "<VirtualHost *:${SITE_PORT}>\n\tHeader set X-Https \"%{HTTPS}s\""))
        for name in ("apache2.conf", "sites-available/000-default.conf",
                     "sites-available/default-ssl.conf"):
            p = conf / name
            p.write_text(p.read_text().replace("/var/www", str(base / "www")))
        (conf / "ports.conf").write_text("Listen 127.0.0.1:${SITE_PORT}\n"
                                         "Listen 127.0.0.1:${SSL_PORT}\n")
        envs = {}
        for tag in ("apache", "httpd-py"):
            run = base / tag
            for d in ("run", "lock", "log"):
                (run / d).mkdir(parents=True)
            script = (f"export APACHE_CONFDIR={conf}; . {conf}/envvars; "
                      f"export APACHE_RUN_DIR={run}/run APACHE_LOCK_DIR={run}/lock "
                      f"APACHE_LOG_DIR={run}/log APACHE_PID_FILE={run}/run/{tag}.pid "
                      f"SITE_PORT={free_port()} SSL_PORT={free_port()}; env -0")
            out = subprocess.run(["sh", "-c", script], capture_output=True, check=True,
                                 env={"PATH": os.environ["PATH"]}).stdout
            envs[tag] = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
        yield conf, envs
    finally:
        shutil.rmtree(base, ignore_errors=True)


def exchange(env: dict, row: Row) -> tuple[int | None, dict]:
    port = int(env["SSL_PORT" if row.tls else "SITE_PORT"])
    lines = [f"{row.method} {row.target} HTTP/1.1", "Host: localhost",
             *(f"{k}: {v}" for k, v in row.headers)]
    if row.method == "POST":
        lines.append("Content-Length: 0")
    raw = ("\r\n".join(lines + ["Connection: close"]) + "\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if row.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE          # loopback, a throwaway certificate
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(raw)
        data = b""
        while len(data) < 1 << 20:
            try:
                chunk = sock.recv(65536)
            except ssl.SSLError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.\d (\d{3})", head[0])
    hdrs: dict = {}
    for ln in head[1:]:
        k, _, v = ln.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return (int(m.group(1)) if m else None), hdrs


def answers(env: dict) -> dict:
    wait_until(lambda: port_accepting(int(env["SSL_PORT"])), 30, what="TLS port")
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([r.id for r in CORPUS], pool.map(lambda r: exchange(env, r), CORPUS)))


@pytest.fixture(scope="module")
def apache_answers(stock) -> dict:
    conf, envs = stock
    argv = [require_tool("apache2"), "-d", str(conf), "-f", str(conf / "apache2.conf"),
            "-k", "start"]
    with serving(argv, envs["apache"], "apache2", daemon=True):
        return answers(envs["apache"])


@pytest.fixture(scope="module")
def httpd_py_answers(stock) -> dict:
    conf, envs = stock
    argv = [sys.executable, "-m", "httpd_py", "-d", str(conf), "-f", str(conf / "apache2.conf"),
            "-DFOREGROUND"]
    with serving(argv, envs["httpd-py"], "httpd-py", daemon=False):
        return answers(envs["httpd-py"])


@pytest.mark.parametrize("row", CORPUS, ids=[r.id for r in CORPUS])
def test_apache_answers_as_intended(row: Row, apache_answers):
    status, hdrs = apache_answers[row.id]
    assert status == row.apache, f"{row.id}: apache2 answered {status}"
    if row.tls:
        assert hdrs.get("strict-transport-security") == [HSTS]


@pytest.mark.parametrize("row", CORPUS, ids=[r.id for r in CORPUS])
def test_httpd_py_answers_as_apache(row: Row, apache_answers, httpd_py_answers):
    (a_status, a), (h_status, h) = apache_answers[row.id], httpd_py_answers[row.id]
    assert h_status == a_status, f"{row.id}: Apache {a_status}, httpd-py {h_status}"
    for name in COMPARED:
        assert h.get(name) == a.get(name), f"{row.id} {name}: Apache {a.get(name)}, " \
                                           f"httpd-py {h.get(name)}"


def test_stock_tree_with_ssl_and_headers_drops_nothing_silently(stock):
    """Issue #8's "nothing silently dropped": `-t` on Debian's tree with ssl, default-ssl and
    headers enabled lists, as accepted without effect, only directives of what it names as not
    built: the event MPM's thread counts and SSLOptions (CGI/SSI environment)."""
    conf, envs = stock
    p = subprocess.run([sys.executable, "-m", "httpd_py", "-d", str(conf), "-f",
                        str(conf / "apache2.conf"), "-t", "-DNO_STAPLING_PREFLIGHT"],
                       env=envs["httpd-py"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    summary = [ln for ln in p.stderr.splitlines() if "HP00901" in ln]
    assert len(summary) <= 1
    if summary:
        listed = re.findall(r"(\w[\w.]*\.c) \(\d+: ([^)]*)\)", summary[0])
        modules = {m for m, _ in listed}
        names = {n.split(" x")[0].strip() for _, names in listed for n in names.split(",")}
        assert modules <= {"event.c", "mod_ssl.c"}, summary[0]
        assert names <= {"MaxSpareThreads", "MinSpareThreads", "ThreadLimit", "ThreadsPerChild",
                         "MaxRequestWorkers", "StartServers", "SSLOptions"}, summary[0]
