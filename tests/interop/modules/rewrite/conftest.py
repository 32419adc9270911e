"""Fixtures for the mod_rewrite interop suites: the shared tree, and apache2 and httpd-py
serving it (each started once per module, on its own free loopback port).

    rewrite_base      the tree (tree.build) under a world-readable temporary directory
    echo_backend      a loopback HTTP server answering "METHOD TARGET" (the [P] rules' backend)
    apache_port       Debian's apache2 (-k start) on it: its port
    httpd_py_port     httpd-py (-DFOREGROUND) on the same tree and config: its port

The two servers are independent fixtures: when one fails to start, the other's rows still run.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.interop.modules.rewrite.tree import build, main_conf
from tests.support.apache import apache_serving
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, require_tool, wait_until


@pytest.fixture(scope="module")
def rewrite_base() -> Path:
    require_tool("apache2")
    base = Path(tempfile.mkdtemp(prefix="rewrite-"))
    os.chmod(base, 0o755)
    try:
        build(base)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


class _Echo(BaseHTTPRequestHandler):
    def _answer(self):
        body = f"{self.command} {self.path} host={self.headers.get('Host')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def echo_backend() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def apache_port(rewrite_base: Path, echo_backend: int) -> int:
    port = free_port()
    root = rewrite_base / "apache"
    conf_text = main_conf(rewrite_base, "apache", port, echo_backend)
    conf = root / "apache.conf"
    conf.write_text(conf_text)
    with apache_serving(conf, root, port, pid_file=root / "logs" / "apache.pid"):
        yield port


@pytest.fixture(scope="module")
def httpd_py_port(rewrite_base: Path, echo_backend: int) -> int:
    port = free_port()
    conf_text = main_conf(rewrite_base, "httpd-py", port, echo_backend)
    with httpd(rewrite_base / "httpd-py", conf_text):
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        yield port
