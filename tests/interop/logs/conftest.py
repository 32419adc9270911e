"""Fixtures for the log suite: one small document tree, and apache2 and httpd-py serving it with
the same logging fragment (each started once per module on its own free loopback port, workers
as www-data), each writing its logs under its own ServerRoot.

    tree            Tree: base directory, docs, and the shared fragment (CustomLog conditions,
                    ErrorLogFormat, SetEnvIf)
    apache          Served(port, logs directory) for Debian's apache2 (-k start)
    httpd_py        Served(port, logs directory) for httpd-py (-DFOREGROUND)

The fragment names log files relative to ServerRoot ("logs/..."), so each server writes its own.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.apache import apache_serving, load_modules
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, require_tool, wait_until

MODULES = ("mpm_prefork", "authz_core", "setenvif", "mime", "dir")   # log_config is built in

# ErrorLogFormat: the request's X-Test header and Host name in one field (left out when there is
# no request), then the message
ERROR_FORMAT = "[%l] %{X-Test}i|%V %M"

FRAGMENT = """\
# ---- shared by apache2 and httpd-py: tests/interop/logs/conftest.py ----
TypesConfig /etc/mime.types
DocumentRoot "{docs}"
DirectoryIndex index.html
<Directory "{docs}">
    Require all granted
</Directory>
LogLevel info
ErrorLogFormat "{error_format}"
SetEnvIf Request_URI "\\.png$" image
SetEnvIfNoCase User-Agent "^probe" dontlog
# (every line ends with the request's X-Test marker: the rows match lines to requests; all.log
# comes last: a request's lines are written in this order, so once all.log has a request's line
# every other log has its own)
CustomLog logs/images.log "%U %>s %{{X-Test}}i" env=image
CustomLog logs/others.log "%U %>s %{{X-Test}}i" env=!image
CustomLog logs/errors.log "%U %>s %{{X-Test}}i" "expr=%{{REQUEST_STATUS}} -ge 400"
CustomLog logs/quiet.log "%U %{{X-Test}}i" env=!dontlog
CustomLog logs/sub.log "%U %q %{{X-Test}}i" "expr=%{{REQUEST_URI}} =~ m#^/sub/# && %{{QUERY_STRING}} != ''"
CustomLog logs/agents.log "%U %{{User-Agent}}i %{{X-Test}}i" "expr=%{{HTTP_USER_AGENT}} =~ /probe/i"
CustomLog logs/all.log "%U %>s %{{image}}e %{{X-Test}}i"
"""


@dataclass(frozen=True)
class Tree:
    base: Path
    docs: Path
    fragment: Path

    def server_root(self, tag: str) -> Path:
        root = self.base / tag
        (root / "logs").mkdir(parents=True, exist_ok=True)
        return root

    def main_conf(self, tag: str, port: int) -> str:
        root = self.server_root(tag)
        return (f'ServerRoot "{root}"\n' + load_modules(*MODULES) +
                f'\nServerName localhost\nErrorLog "{root}/logs/error.log"\n'
                f'PidFile "{root}/logs/{tag}.pid"\nDefaultRuntimeDir "{root}/logs"\n'
                f"Mutex file:{root}/logs default\nListen 127.0.0.1:{port}\n"
                "User www-data\nGroup www-data\nStartServers 1\nMinSpareServers 1\n"
                f'MaxSpareServers 2\nInclude "{self.fragment}"\n')

    def pid_file(self, tag: str) -> Path:
        return self.server_root(tag) / "logs" / f"{tag}.pid"


@dataclass(frozen=True)
class Served:
    port: int
    logs: Path


@pytest.fixture(scope="module")
def tree() -> Tree:
    require_tool("apache2")
    base = Path(tempfile.mkdtemp(prefix="logs-"))
    os.chmod(base, 0o755)
    docs = base / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "index.html").write_text("<p>index</p>\n")
    (docs / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (docs / "sub" / "page.html").write_text("<p>sub</p>\n")
    for p in (docs, docs / "sub"):
        os.chmod(p, 0o755)
    fragment = base / "logs.conf"
    fragment.write_text(FRAGMENT.format(docs=docs, error_format=ERROR_FORMAT))
    try:
        yield Tree(base, docs, fragment)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def apache(tree: Tree) -> Served:
    port = free_port()
    root = tree.server_root("apache")
    conf = root / "apache.conf"
    conf.write_text(tree.main_conf("apache", port))
    with apache_serving(conf, root, port, pid_file=tree.pid_file("apache")):
        yield Served(port, root / "logs")


@pytest.fixture(scope="module")
def httpd_py(tree: Tree) -> Served:
    port = free_port()
    root = tree.server_root("httpd-py")
    with httpd(root, tree.main_conf("httpd-py", port)):
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        yield Served(port, root / "logs")
