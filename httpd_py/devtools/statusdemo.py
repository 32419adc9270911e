"""A demo server for the status pages, and the screenshot of /server-status (scripts/screenshot-status).

    python -m httpd_py.devtools.statusdemo --screenshot docs/img/server-status.png

Builds a throw-away PKI (a.test with RSA and ECDSA certificates, revoked.test with RSA), starts
the in-process OCSP responder and httpd-py (plain HTTP and one TLS port, background stapling,
``SetHandler server-status`` / ``stapling-status`` / ``metrics``), makes a few requests and TLS
handshakes so the page has something to show, then has Debian's headless Chromium load the page
and write a PNG.  Everything runs on loopback ports the kernel picks, in a temporary directory
removed at the end.  Exit status 0 when the PNG was written, 1 otherwise (the reason on stderr).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from httpd_py.devtools.pki import make_leaf, make_pki
from httpd_py.devtools.responder import Responder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_config(d: Path, pki, url: str, plain: int, tls: int) -> str:
    lines = [f"ServerRoot {d}", f"Listen 127.0.0.1:{plain}", f"Listen 127.0.0.1:{tls}",
             f"PidFile {d}/run/httpd.pid", f"ErrorLog {d}/logs/error_log", "LogLevel info",
             "LoadModule status_module /usr/lib/apache2/modules/mod_status.so",
             f"DocumentRoot {d}/htdocs", "StartServers 3", "MinSpareServers 2",
             "MaxSpareServers 5", "ServerLimit 64", f"DefaultRuntimeDir {d}/run",
             "SSLStaplingCache shmcb", f"SSLStaplingStoreDir {d}/store",
             "SSLSessionCache shmcb", f"CustomLog {d}/logs/access_log common"]
    if os.geteuid() == 0:
        lines += ["User root", "Group root"]
    for path, handler in (("/server-status", "server-status"),
                          ("/stapling-status", "stapling-status"), ("/metrics", "metrics")):
        lines += [f"<Location {path}>", f"  SetHandler {handler}", "  Require local",
                  "</Location>"]
    for name, kinds in (("a.test", ("rsa", "ec")), ("revoked.test", ("rsa",))):
        lines += [f"<VirtualHost *:{tls}>", f"  ServerName {name}", "  SSLEngine on"]
        for k in kinds:
            leaf = pki.leaf(name, k)
            lines += [f"  SSLCertificateFile {leaf.cert_file}",
                      f"  SSLCertificateKeyFile {leaf.key_file}"]
        lines += ["  SSLUseStapling on", f"  SSLStaplingForceURL {url}", "</VirtualHost>"]
    return "\n".join(lines) + "\n"


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def _handshake(port: int, name: str, cafile: str) -> None:
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            t.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            while t.recv(4096):
                pass


def screenshot(chromium: str, url: str, out: Path, profile: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_png = profile / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={profile}", "--window-size=1280,1500",
                    f"--screenshot={tmp_png}", url], capture_output=True, timeout=120, check=False)
    data = tmp_png.read_bytes() if tmp_png.exists() else b""
    if not data.startswith(b"\x89PNG"):
        raise RuntimeError("chromium wrote no PNG")
    out.write_bytes(data)


def run(out: Path, chromium: str) -> None:
    d = Path(tempfile.mkdtemp(prefix="statusdemo-"))
    os.chmod(d, 0o755)
    proc = None
    responder = None
    try:
        for sub in ("run", "logs", "htdocs", "store", "chromium"):
            (d / sub).mkdir()
        (d / "htdocs" / "index.html").write_text("<p>demo</p>\n")
        pki = make_pki(d / "pki", ("a.test",), ocsp_url="http://127.0.0.1:9/")
        make_leaf(pki, "revoked.test", "rsa", ocsp_urls=("http://127.0.0.1:9/",))
        revoked = pki.leaf("revoked.test", "rsa").cert.serial_number
        responder = Responder.for_pki(pki, statuses={revoked: "revoked"}).start()
        plain, tls = free_port(), free_port()
        conf = d / "httpd.conf"
        conf.write_text(demo_config(d, pki, responder.url, plain, tls))
        proc = subprocess.Popen([sys.executable, "-m", "httpd_py", "-f", str(conf),
                                 "-DFOREGROUND"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        err_log = d / "logs" / "error_log"

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"httpd-py exited: {proc.stderr.read().decode(errors='replace')}"
                                   f"\n{err_log.read_text() if err_log.exists() else ''}")
            return err_log.exists() and " HP01001: " in err_log.read_text()
        _wait(ready, 60, "httpd-py to serve")
        base = f"http://127.0.0.1:{plain}"
        for _ in range(12):
            _get(base + "/")
        for name in ("a.test", "a.test", "revoked.test"):
            _handshake(tls, name, str(pki.root_file))
        _get(base + "/server-status?auto")
        screenshot(chromium, base + "/server-status", out, d / "chromium")
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc is not None and proc.stderr:
            proc.stderr.close()
        if responder is not None:
            responder.stop()
        shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="statusdemo", description=__doc__.splitlines()[0])
    ap.add_argument("--screenshot", required=True, help="where to write the PNG")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args(argv)
    try:
        run(Path(args.screenshot), args.chromium)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"statusdemo: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.screenshot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
