"""Per-directory work per request, in-process: what the section walk (a cached lookup) and the
access phase cost a keep-alive request, for a minimal config and for Debian's stock sections
("stock"), and those plus a Basic-auth directory, a Require ip directory and an <If> on the
Host header ("stock+"); httpd-py's own code only, no sockets.

    .venv/bin/python scripts/bench_perdir.py [--n 200000]

The aim (issue #7): under 5 us per request with the merges cached.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_handshake as bh  # noqa: E402
import benchlib as bl  # noqa: E402

from httpd_py.config import load  # noqa: E402
from httpd_py.http import connection  # noqa: E402

EXTRA = """
<Directory {docroot}/auth>
    AuthType Basic
    AuthName "bench"
    AuthUserFile {work}/htpasswd
    Require valid-user
</Directory>
<Directory {docroot}/ip>
    Require ip 127.0.0.0/8 ::1
</Directory>
<If "%{{HTTP_HOST}} == 'other.test'">
    Require all denied
</If>
"""


def config(work: Path, docroot: Path, sections: str) -> Path:
    extra = ""
    if sections in ("stock", "stock+"):
        extra = bh.STOCK_SECTIONS.format(mods=bl.APACHE_MODULES, docroot=docroot)
    if sections == "stock+":
        extra += "LoadModule auth_basic_module x\nLoadModule authn_file_module x\n"
        extra += "LoadModule authn_core_module x\n"
        extra += EXTRA.format(docroot=docroot, work=work)
    text = (f"ServerRoot {work}\nListen 127.0.0.1:{bl.free_port()}\nServerName bench.test\n"
            f"ErrorLog {work}/error.log\nDocumentRoot {docroot}\n"
            f"<Directory {docroot}>\n    Require all granted\n</Directory>\n{extra}")
    path = work / f"{sections}.conf"
    path.write_text(text)
    return path


def per_request_us(handler, vhost, target: str, headers: dict, n: int) -> float:
    rt = handler.runtime(vhost)
    fpath = vhost.document_root + target
    from httpd_py.http.hooks import Request
    r = Request("GET", target, "", headers, "1.1", f"GET {target} HTTP/1.1", "127.0.0.1", 40000,
                "127.0.0.1", 443, True, vhost)
    conf, denied = handler._per_dir(rt, r, fpath, False, target, "-")   # warm: merged, cached
    assert denied is None, (target, denied)
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            wpath, is_dir = connection._locate(fpath)
            handler._per_dir(rt, r, wpath, is_dir, target, "-")
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(runs)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="httpd-py-perdir-") as tmp:
        work = Path(tmp)
        docroot = work / "htdocs"
        for d in ("", "auth", "ip", "a/b/c"):
            (docroot / d).mkdir(parents=True, exist_ok=True)
            (docroot / d / "small.txt").write_text("x" * 100)
        subprocess.run([bl.need("htpasswd"), "-cbB", "-C", "4", str(work / "htpasswd"), "u",
                        "pw"], check=True, capture_output=True)
        import base64
        auth = {"host": "bench.test",
                "authorization": "Basic " + base64.b64encode(b"u:pw").decode()}
        plain = {"host": "bench.test"}
        print(f"Per-directory work per request (stat of the path + cached section walk + access "
              f"phase), median of 5 x {args.n} requests in one process, us/request.")
        print()
        print("| config | request | us/request |")
        print("|---|---|---:|")
        for sections in ("none", "stock", "stock+"):
            cfg = load(str(config(work, docroot, sections)), log_warnings=False)
            handler = connection.ConnectionHandler(cfg, sites=None)
            rows = [("/small.txt", plain), ("/a/b/c/small.txt", plain)]
            if sections == "stock+":
                rows += [("/ip/small.txt", plain), ("/auth/small.txt", auth)]
            for target, headers in rows:
                us = per_request_us(handler, cfg.main, target, headers, args.n)
                what = target + (" (Basic, bcrypt cost 4)" if "authorization" in headers else "")
                print(f"| {sections} | {what} | {us:.2f} |", flush=True)
            handler.close()
        print()
        print(f"cpu: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
