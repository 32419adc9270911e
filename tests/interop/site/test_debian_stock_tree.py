"""Debian's stock /etc/apache2, copied, served over plain HTTP by apache2 and by httpd-py at the
same time (as tests/interop/config/test_debian_tree.py copies it; /etc/apache2 is only read).

Changes to the copy: ``Listen ${SITE_PORT}`` and ``<VirtualHost *:${SITE_PORT}>`` (each server
gets its own port, run, lock and log directories through its environment, from the copy's
envvars), /var/www replaced by a copied docroot (Debian's index.html, plus ``private/secret.txt``,
``.htaccess``, ``.htpasswd``, a directory without an index), and one more file,
conf-enabled/private.conf: ``<Directory DOCROOT/private> Require all denied </Directory>``.
default-ssl stays off (stock); mod_ssl is not loaded.

Asserted: every request gets the same status from both, and no request gets a 2xx from httpd-py
that Apache refuses.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.interop.site.sitetree import Answer, Row, answers_from
from tests.support.apache import _alive
from tests.support.tools import free_port, port_accepting, require_tool, wait_until

SECRET = "/private/secret.txt"
R = Row
CORPUS: list[Row] = [
    R("root", "/", 200),
    R("index", "/index.html", 200),
    R("index-head", "/index.html", 200, method="HEAD"),
    R("missing", "/missing.html", 404),
    R("dir-without-index", "/dir/", 200),                     # mod_autoindex is enabled
    R("dir-no-slash", "/dir", 301),
    R("dir-file", "/dir/file.txt", 200),
    R("secret", SECRET, 403),
    R("secret-head", SECRET, 403, method="HEAD"),
    R("secret-post", SECRET, 403, method="POST"),
    R("secret-query", SECRET + "?a=1", 403),
    R("private-dir", "/private/", 403),
    R("private-no-slash", "/private", 403),
    R("secret-double-slash", "//private/secret.txt", 403),
    R("secret-inner-double-slash", "/private//secret.txt", 403),
    R("secret-dot", "/./private/secret.txt", 403),
    R("secret-encoded", "/%70rivate/secret.txt", 403),
    R("secret-encoded-slash", "/private%2fsecret.txt", 404),
    R("secret-trailing-dot", "/private/secret.txt.", 403),
    R("secret-trailing-slash", "/private/secret.txt/", 403),
    R("secret-case", "/PRIVATE/secret.txt", 404),
    R("secret-dotdot", "/private/../private/secret.txt", 403),
    R("secret-encoded-dotdot", "/dir/%2e%2e/private/secret.txt", 403),
    R("secret-above-root", "/%2e%2e/private/secret.txt", 400),
    R("secret-nul", "/private/secret.txt%00", 404),
    R("secret-absolute-form", "http://localhost/private/secret.txt", 403),
    R("htaccess", "/.htaccess", 403),
    R("htpasswd", "/.htpasswd", 403),
    R("ht-missing", "/.htnothing", 403),
    R("server-status", "/server-status", 200),                # Require local
    R("server-status-auto", "/server-status?auto", 200),
    R("icons-dir", "/icons/", 403),                           # no Indexes on the icons directory
    R("icons-file", "/icons/apache_pb.png", 200),
]


def _ids(rows: list[Row]) -> list[str]:
    return [r.id for r in rows]


@pytest.fixture(scope="module")
def stock():
    """(conf dir, {"apache": env, "httpd-py": env}) for a copy of /etc/apache2."""
    require_tool("apache2")
    if not os.path.isdir("/etc/apache2"):
        require_tool("/etc/apache2 (Debian's apache2 package)")
    base = Path(tempfile.mkdtemp(prefix="debian-site-"))
    os.chmod(base, 0o755)                    # the workers run as www-data
    try:
        conf = base / "apache2"
        shutil.copytree("/etc/apache2", conf, symlinks=True)
        www = base / "www"
        html = www / "html"
        if os.path.isdir("/var/www/html"):
            shutil.copytree("/var/www/html", html, symlinks=True)
        else:
            html.mkdir(parents=True)
        if not (html / "index.html").exists():
            (html / "index.html").write_text("<html><body>It works!</body></html>\n")
        for rel, text in {"private/secret.txt": "secret\n", ".htaccess": "Require all denied\n",
                          ".htpasswd": "user:$apr1$x$y\n", "dir/file.txt": "file\n"}.items():
            (html / rel).parent.mkdir(parents=True, exist_ok=True)
            (html / rel).write_text(text)
        for d, _, files in os.walk(www):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        for name in ("apache2.conf", "sites-available/000-default.conf"):
            p = conf / name
            p.write_text(p.read_text().replace("/var/www", str(www)))
        (conf / "ports.conf").write_text("Listen 127.0.0.1:${SITE_PORT}\n")
        site = conf / "sites-available" / "000-default.conf"
        site.write_text(site.read_text().replace("<VirtualHost *:80>",
                                                 "<VirtualHost *:${SITE_PORT}>"))
        (conf / "conf-enabled" / "private.conf").write_text(
            f"<Directory {html}/private>\n    Require all denied\n</Directory>\n")
        envs = {}
        for tag in ("apache", "httpd-py"):
            run = base / tag
            for d in ("run", "lock", "log"):
                (run / d).mkdir(parents=True)
            script = (f"export APACHE_CONFDIR={conf}; . {conf}/envvars; "
                      f"export APACHE_RUN_DIR={run}/run APACHE_LOCK_DIR={run}/lock "
                      f"APACHE_LOG_DIR={run}/log APACHE_PID_FILE={run}/run/{tag}.pid "
                      f"SITE_PORT={free_port()}; env -0")
            out = subprocess.run(["sh", "-c", script], capture_output=True, check=True,
                                 env={"PATH": os.environ["PATH"]}).stdout
            envs[tag] = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
        yield conf, envs
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def serving(argv: list[str], env: dict[str, str], what: str, *, daemon: bool) -> Iterator[int]:
    """Run ARGV (apache2 -k start: DAEMON; httpd-py -DFOREGROUND: not) until the block ends;
    yields the port once the pid file exists and the port accepts.  Stops it with SIGTERM."""
    port, pid_file = int(env["SITE_PORT"]), Path(env["APACHE_PID_FILE"])
    proc = None
    if daemon:
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, f"{what}: {p.stderr}"
    else:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    def ready():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited ({proc.returncode}): {proc.stderr.read()}")
        return pid_file.exists() and port_accepting(port)
    try:
        wait_until(ready, 30, what=f"{what} listening")
        yield port
    finally:
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            proc.stderr.close()
        elif pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not _alive(pid), 20, what=f"{what} stopped")


@pytest.fixture(scope="module")
def apache_stock_answers(stock) -> dict[str, Answer]:
    conf, envs = stock
    argv = [require_tool("apache2"), "-d", str(conf), "-f", str(conf / "apache2.conf"),
            "-k", "start"]
    with serving(argv, envs["apache"], "apache2", daemon=True) as port:
        return answers_from(port, CORPUS)


@pytest.fixture(scope="module")
def httpd_py_stock_answers(stock) -> dict[str, Answer]:
    conf, envs = stock
    argv = [sys.executable, "-m", "httpd_py", "-d", str(conf), "-f", str(conf / "apache2.conf"),
            "-DFOREGROUND"]
    with serving(argv, envs["httpd-py"], "httpd-py", daemon=False) as port:
        return answers_from(port, CORPUS)


@pytest.mark.parametrize("row", CORPUS, ids=_ids(CORPUS))
def test_apache_answers_as_intended(row: Row, apache_stock_answers):
    got = apache_stock_answers[row.id]
    assert got.status == row.apache, (
        f"{row.method} {row.target}: the corpus says Apache answers {row.apache}, apache2 "
        f"answered {got}")


# Rows where httpd-py deliberately refuses what Apache serves (listed in docs/interop.md): a
# module not built refuses rather than serving something else.  None left: mod_autoindex and
# mod_status are built.
DOCUMENTED: dict[str, tuple[int, int, str]] = {}


@pytest.mark.parametrize("row", CORPUS, ids=_ids(CORPUS))
def test_httpd_py_answers_as_apache(row: Row, apache_stock_answers, httpd_py_stock_answers):
    theirs, ours = apache_stock_answers[row.id], httpd_py_stock_answers[row.id]
    if row.id in DOCUMENTED:
        apache, httpd_py, _why = DOCUMENTED[row.id]
        assert (theirs.status, ours.status) == (apache, httpd_py), (
            f"documented difference changed: Apache {theirs}, httpd-py {ours}")
        return
    assert ours.status == theirs.status, (
        f"{row.method} {row.target}: Apache {theirs.status}, httpd-py {ours}")


def test_httpd_py_never_serves_what_apache_refuses(apache_stock_answers, httpd_py_stock_answers):
    leaks = [f"{r.method} {r.target}: Apache {apache_stock_answers[r.id]}, httpd-py "
             f"{httpd_py_stock_answers[r.id]}" for r in CORPUS
             if (httpd_py_stock_answers[r.id].status or 0) // 100 == 2
             and (apache_stock_answers[r.id].status or 0) // 100 != 2]
    assert not leaks, "httpd-py answers 2xx where Apache does not:\n" + "\n".join(leaks)
