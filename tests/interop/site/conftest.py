"""Fixtures for the per-directory access suites: the shared site, and apache2 and httpd-py
serving it (each started once per module, on its own free loopback port).

    site            sitetree.Site built under a world-readable temporary directory (both servers'
                    workers run as www-data; pytest's own tmp directories are 0700)
    apache_port     Debian's apache2 (-k start) on the site: its port
    httpd_py_port   httpd-py (-DFOREGROUND) on the same site: its port

The two servers are independent fixtures: when one fails to start, the other's rows still run.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.interop.site.sitetree import Site, build_site
from tests.support.apache import apache_serving
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, require_tool, wait_until


@pytest.fixture(scope="module")
def site() -> Site:
    require_tool("apache2")
    require_tool("htpasswd")
    base = Path(tempfile.mkdtemp(prefix="site-"))
    os.chmod(base, 0o755)
    try:
        yield build_site(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def apache_port(site: Site) -> int:
    port = free_port()
    root = site.server_root("apache")
    conf = root / "apache.conf"
    conf.write_text(site.main_conf("apache", port))
    with apache_serving(conf, root, port, pid_file=site.pid_file("apache")):
        yield port


@pytest.fixture(scope="module")
def httpd_py_port(site: Site) -> int:
    port = free_port()
    with httpd(site.server_root("httpd-py"), site.main_conf("httpd-py", port)):
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        yield port
