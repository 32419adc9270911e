"""httpd-py with exactly one worker process, for tests that show what a worker does while one
connection stalls (tests/integration/http/test_slow_reader.py, test_slow_upload.py): another
client either gets its answer from that worker or times out."""
from __future__ import annotations

import contextlib
import ssl
from pathlib import Path
from typing import Iterator

from httpd_py.devtools.pki import make_pki
from tests.support.apache import minimal_conf
from tests.support.server import httpd
from tests.support.tools import free_port, port_accepting, wait_until


@contextlib.contextmanager
def one_worker(root: Path, files: dict[str, bytes], modules: tuple[str, ...] = (),
               extra: str = "") -> Iterator[dict]:
    """One worker (Timeout 30) serving ``files`` from ROOT/htdocs on three loopback ports:
    ``plain``, ``tls`` (a "localhost" EC certificate; the value holds an SSLContext that
    trusts it) and ``short`` (Timeout 1); ``extra`` goes into the main server.  Yields
    {"plain": (port, None), "tls": (port, ctx), "short": (port, None), "server": srv}."""
    (root / "logs").mkdir()
    docs = root / "htdocs"
    docs.mkdir()
    for name, data in files.items():
        (docs / name).write_bytes(data)
    pki = make_pki(root / "pki", ("localhost",))
    leaf = pki.leaf("localhost", "ec")
    port, tls_port, short_port = free_port(), free_port(), free_port()
    conf = minimal_conf(root, ("mpm_prefork", "authz_core", "ssl", *modules),
                        listen=f"127.0.0.1:{port}", extra=f"""
Listen 127.0.0.1:{tls_port}
Listen 127.0.0.1:{short_port}
StartServers 1
MinSpareServers 1
MaxSpareServers 1
MaxRequestWorkers 1
Timeout 30
{extra}
DocumentRoot {docs}
<Directory {docs}>
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:{tls_port}>
    ServerName localhost
    SSLEngine on
    SSLCertificateFile {leaf.cert_file}
    SSLCertificateKeyFile {leaf.key_file}
</VirtualHost>
<VirtualHost 127.0.0.1:{short_port}>
    ServerName localhost
    Timeout 1
</VirtualHost>
LogLevel info
""")
    with httpd(root, conf) as srv:
        wait_until(lambda: port_accepting(port), 15, what="httpd-py listening")
        ctx = ssl.create_default_context(cafile=str(pki.root_file))
        yield {"plain": (port, None), "tls": (tls_port, ctx), "short": (short_port, None),
               "server": srv}
