"""Fixtures for the mod_mime / mod_negotiation / mod_deflate suite: the shared tree, and apache2
and httpd-py serving it (each started once per module, on its own free loopback port; workers
run as www-data).

    tree            tree.Tree built under a world-readable temporary directory
    apache_port     Debian's apache2 (-k start) on the tree: its port
    httpd_py_port   httpd-py (-DFOREGROUND) on the same tree: its port
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.interop.modules.mime.tree import Tree, build_tree
from tests.support.apache import apache_serving
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, require_tool, wait_until


@pytest.fixture(scope="module")
def tree() -> Tree:
    require_tool("apache2")
    base = Path(tempfile.mkdtemp(prefix="mime-"))
    os.chmod(base, 0o755)
    try:
        yield build_tree(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def apache_port(tree: Tree) -> int:
    port = free_port()
    root = tree.server_root("apache")
    conf = root / "apache.conf"
    conf.write_text(tree.main_conf("apache", port))
    with apache_serving(conf, root, port, pid_file=tree.pid_file("apache")):
        yield port


@pytest.fixture(scope="module")
def httpd_py_port(tree: Tree) -> int:
    port = free_port()
    with httpd(tree.server_root("httpd-py"), tree.main_conf("httpd-py", port)):
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        yield port
