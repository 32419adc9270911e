"""Vhost selection, differential: Debian's apache2 and httpd-py serve one generated config of
name-based and IP-based plain-HTTP vhosts on loopback (127.0.0.1 and 127.0.0.2, three ports
each), and every request must get the same vhost's page from both; ``ServerConfig.select_vhost``
(config/vhosts.py, what the server uses) must name that vhost too.

Each vhost's DocumentRoot holds an index.html naming the vhost.  Ports are roles: A carries the
name-based ``*:A`` group (with a ``_default_:A`` member), an IP group 127.0.0.2:A and a vhost on
both ``*:A`` and 127.0.0.1:B; B carries the IP group 127.0.0.1:B, and 127.0.0.2:B falls to the
any-port group 127.0.0.2:*; C reaches ``*:*`` on 127.0.0.1 and 127.0.0.2:* on 127.0.0.2.  The
expected column is what apache2 2.4 answered when these rows were written; it is asserted too,
so a row documents Apache's behaviour.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from httpd_py.config import load
from tests.support.apache import apache_serving, load_modules
from tests.support.server import httpd
from tests.support.tools import free_port, require_tool

# label (= DocumentRoot directory and page), <VirtualHost> addresses ({A} {B} ports), names
VHOSTS = (
    ("first", "*:{A}", "first.test", ()),
    ("a", "_default_:{A}", "a.test", ("[ab].example.com", "*.wild.test")),
    ("b", "*:{A}", "b.test", ("x.wild.test", "?.x")),
    ("g", "*:{A}", "G.test", ("h.test.",)),
    ("c", "127.0.0.2:*", "c.test", ()),
    ("d", "127.0.0.2:*", "d.test", ()),
    ("e", "127.0.0.2:{A}", "e.test", ()),
    ("f", "*:*", "f.test", ()),
    ("ipb1", "127.0.0.1:{B}", "ipb1.test", ()),
    ("ipb2", "127.0.0.1:{B}", "ipb2.test", ("*.ipb.test",)),
    ("late", "*:{A}", "late.test", ("y.wild.test",)),
    ("multi", "*:{A} 127.0.0.1:{B}", "multi.test", ()),
)

ROWS = (   # local ip, port role, Host (None: HTTP/1.0 without one), vhost apache2 serves
    ("127.0.0.1", "A", None, "first"),               # the *:A group's first vhost is its default
    ("127.0.0.1", "A", "first.test", "first"),
    ("127.0.0.1", "A", "a.test", "a"),               # _default_:A is in the *:A group
    ("127.0.0.1", "A", "B.TEST", "b"),               # case-insensitive
    ("127.0.0.1", "A", "b.test.", "b"),              # trailing dot ignored
    ("127.0.0.1", "A", "b.test:9", "b"),             # Host's port ignored
    ("127.0.0.1", "A", "g.test", "g"),               # ServerName G.test
    ("127.0.0.1", "A", "h.test", "first"),           # ServerAlias h.test. never matches ...
    ("127.0.0.1", "A", "h.test.", "first"),          # ... not even with the dot
    ("127.0.0.1", "A", "nope.test", "first"),
    ("127.0.0.1", "A", "a.example.com", "first"),    # [ab] is not a pattern in ServerAlias
    ("127.0.0.1", "A", "y.wild.test", "a"),          # a's *.wild.test beats late's exact alias
    ("127.0.0.1", "A", "x.wild.test", "a"),          # ... and b's exact alias
    ("127.0.0.1", "A", "a.b.wild.test", "a"),        # * spans dots
    ("127.0.0.1", "A", "wild.test", "first"),
    ("127.0.0.1", "A", "q.x", "b"),                  # ?.x
    ("127.0.0.1", "A", "qq.x", "first"),
    ("127.0.0.1", "A", "c.test", "first"),           # names of other groups don't count
    ("127.0.0.1", "A", "_default_", "a"),            # the <VirtualHost> address as written
    ("127.0.0.1", "A", "multi.test", "multi"),
    ("127.0.0.1", "A", "late.test", "late"),
    ("127.0.0.1", "A", "127.0.0.1", "first"),
    ("127.0.0.2", "A", None, "e"),                   # IP:A beats IP:* and *:A
    ("127.0.0.2", "A", "a.test", "e"),
    ("127.0.0.2", "A", "c.test", "e"),
    ("127.0.0.2", "A", "e.test", "e"),
    ("127.0.0.2", "A", "127.0.0.2", "e"),
    ("127.0.0.2", "B", None, "c"),                   # IP:* beats *:*
    ("127.0.0.2", "B", "d.test", "d"),
    ("127.0.0.2", "B", "D.Test.", "d"),
    ("127.0.0.2", "B", "f.test", "c"),
    ("127.0.0.2", "B", "e.test", "c"),
    ("127.0.0.1", "B", None, "ipb1"),                # IP-based group: its first is the default
    ("127.0.0.1", "B", "ipb2.test", "ipb2"),
    ("127.0.0.1", "B", "www.ipb.test", "ipb2"),
    ("127.0.0.1", "B", "IPB1.test", "ipb1"),
    ("127.0.0.1", "B", "multi.test", "multi"),
    ("127.0.0.1", "B", "a.test", "ipb1"),
    ("127.0.0.1", "C", None, "f"),                   # *:* when nothing else has the port
    ("127.0.0.1", "C", "f.test", "f"),
    ("127.0.0.1", "C", "a.test", "f"),
    ("127.0.0.2", "C", "c.test", "c"),
    ("127.0.0.2", "C", "f.test", "c"),
)


def fragment(base: Path, ports: dict[str, int]) -> str:
    out = [f'DocumentRoot "{base}/docs/main"',
           f'<Directory "{base}/docs">\n    Require all granted\n</Directory>']
    out += [f"Listen {ip}:{port}" for port in ports.values() for ip in ("127.0.0.1", "127.0.0.2")]
    for label, addrs, name, aliases in VHOSTS:
        out.append(f"<VirtualHost {addrs.format(**ports)}>\n    ServerName {name}\n"
                   + (f"    ServerAlias {' '.join(aliases)}\n" if aliases else "")
                   + f'    DocumentRoot "{base}/docs/{label}"\n</VirtualHost>')
    return "\n".join(out) + "\n"


def main_conf(root: Path, tag: str, base: Path, ports: dict[str, int]) -> str:
    return (f'ServerRoot "{root}"\n' + load_modules("mpm_prefork", "authz_core")
            + f'\nServerName localhost\nErrorLog "{root}/logs/error.log"\n'
            f'PidFile "{root}/logs/{tag}.pid"\nDefaultRuntimeDir "{root}/logs"\n'
            f"Mutex file:{root}/logs default\nUser www-data\nGroup www-data\n"
            "StartServers 1\nMinSpareServers 1\nMaxSpareServers 2\n" + fragment(base, ports))


def ask(ip: str, port: int, host: str | None) -> tuple[int, str]:
    """(status, body) of GET /index.html with that Host (HTTP/1.0 and none when None)."""
    head = ("GET /index.html HTTP/1.0\r\n" if host is None else
            f"GET /index.html HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n")
    with socket.create_connection((ip, port), timeout=5) as s:
        s.sendall((head + "\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), body.decode(errors="replace").strip()


@pytest.fixture(scope="module")
def base() -> Path:
    require_tool("apache2")
    base = Path(tempfile.mkdtemp(prefix="vhosts-"))
    os.chmod(base, 0o755)                  # both servers' workers run as www-data
    try:
        for label in ("main", *(v[0] for v in VHOSTS)):
            (base / "docs" / label).mkdir(parents=True)
            (base / "docs" / label / "index.html").write_text(f"{label}\n")
        for tag in ("apache", "httpd-py"):
            (base / tag / "logs").mkdir(parents=True)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _ports() -> dict[str, int]:
    return {"A": free_port(), "B": free_port(), "C": free_port()}


def _ask_all(ports: dict[str, int]) -> dict[int, tuple[int, str]]:
    return {i: ask(ip, ports[role], host) for i, (ip, role, host, _) in enumerate(ROWS)}


@pytest.fixture(scope="module")
def apache_answers(base: Path) -> dict[int, tuple[int, str]]:
    ports, root = _ports(), base / "apache"
    conf = root / "apache.conf"
    conf.write_text(main_conf(root, "apache", base, ports))
    with apache_serving(conf, root, ports["A"], pid_file=root / "logs" / "apache.pid"):
        return _ask_all(ports)


@pytest.fixture(scope="module")
def httpd_py_run(base: Path) -> tuple[dict[str, int], dict[int, tuple[int, str]]]:
    ports, root = _ports(), base / "httpd-py"
    with httpd(root, main_conf(root, "httpd-py", base, ports)):
        return ports, _ask_all(ports)


@pytest.mark.parametrize("i", range(len(ROWS)), ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in ROWS])
def test_same_vhost_as_apache(i, apache_answers, httpd_py_run):
    expect = ROWS[i][3]
    assert apache_answers[i] == (200, expect)              # Apache's answer, as documented
    assert httpd_py_run[1][i] == apache_answers[i]


def test_select_vhost_agrees(base, httpd_py_run):
    ports, answers = httpd_py_run
    cfg = load(str(base / "httpd-py" / "httpd.conf"), log_warnings=False)
    chosen = {i: os.path.basename(cfg.select_vhost(ip, ports[role], host).document_root)
              for i, (ip, role, host, _) in enumerate(ROWS)}
    assert chosen == {i: answers[i][1] for i in range(len(ROWS))}
