"""gzip of a 100 KB HTML page per request: httpd-py beside Apache httpd 2.4 in the same run.

Both servers read the same Apache-syntax file (plain HTTP on loopback, prefork, 4 workers,
mod_deflate + mod_filter with Debian's ``AddOutputFilterByType DEFLATE text/html ...``) and
serve the same page: about 100 KB of generated, realistic HTML (nested markup, repeated class
names, varied text).  wrk (2 threads, keep-alive) requests it with ``Accept-Encoding: gzip``,
then without (the same page unzipped, as a baseline).  Printed, as Markdown: requests/s,
server CPU per request (utime+stime of the server's whole process group, from /proc), the bytes
of one response body, and whether the two servers' gzip bodies are the same bytes.

httpd-py compresses a file once per worker and keeps it (deflate.GzipCache); Apache compresses
on every request.  ``--no-cache`` runs httpd-py with the cache disabled
(HTTPD_PY_GZIP_CACHE=0) to show the per-request cost of compression itself.

    .venv/bin/python scripts/bench_gzip.py [--seconds 5] [--rounds 3] [--connections 8]
"""
from __future__ import annotations

import argparse
import gzip
import random
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

PAGE_BYTES = 100 * 1024


def make_page(size: int = PAGE_BYTES, seed: int = 10) -> str:
    """Deterministic HTML of about ``size`` bytes that compresses like a real page (~4-6x)."""
    rnd = random.Random(seed)
    words = ("the server answers requests with files from the document root and every module "
             "adds headers filters handlers or checks access before the response leaves "
             "configuration directives sections virtual hosts negotiation compression "
             "languages encodings charsets caches workers processes").split()
    parts = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             "<title>Benchmark page</title><link rel=\"stylesheet\" href=\"/site.css\">"
             "</head>\n<body>\n<div class=\"page\">\n"]
    n = 0
    while sum(map(len, parts)) < size - 200:
        n += 1
        text = " ".join(rnd.choice(words) for _ in range(rnd.randint(20, 60)))
        parts.append(f'<section id="s{n}" class="section item-{n % 7}">\n'
                     f'  <h2 class="title">Section {n}: {rnd.choice(words).title()}</h2>\n'
                     f'  <p class="text">{text}.</p>\n'
                     f'  <ul class="links"><li><a href="/docs/{n}.html">more</a></li>'
                     f'<li><a href="/img/{rnd.randint(1, 999)}.png">image {n}</a></li></ul>\n'
                     f'</section>\n')
    parts.append("</div>\n</body></html>\n")
    page = "".join(parts)
    return page + " " * max(0, size - len(page) - 1) + "\n"


HEADERS = """LoadModule headers_module {mods}/mod_headers.so
Header always set Strict-Transport-Security "max-age=63072000; includeSubDomains"
Header set X-Content-Type-Options nosniff
Header set X-Frame-Options SAMEORIGIN
Header unset ETag
"""


def config(work: Path, port: int, docroot: Path, headers: bool = False) -> Path:
    mods = ["mpm_prefork", "authz_core", "mime", "dir", "deflate", "filter"]
    loads = "\n".join(f"LoadModule {m}_module {bl.APACHE_MODULES}/mod_{m}.so" for m in mods)
    conf = work / "httpd.conf"
    conf.write_text(f"""ServerRoot {work}
{loads}
ServerName bench.test
Listen 127.0.0.1:{port}
PidFile {work}/httpd.pid
ErrorLog {work}/error.log
LogLevel warn
User www-data
Group www-data
Mutex file:{work} default
StartServers 4
MinSpareServers 4
MaxSpareServers 8
MaxRequestWorkers 64
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
TypesConfig /etc/mime.types
DocumentRoot {docroot}
<Directory {docroot}>
    Require all granted
</Directory>
AddOutputFilterByType DEFLATE text/html text/plain text/xml text/css text/javascript
AddOutputFilterByType DEFLATE application/javascript application/xml
""" + (HEADERS.format(mods=bl.APACHE_MODULES) if headers else ""))
    return conf


def fetch(port: int, gzip_ok: bool) -> tuple[dict, bytes]:
    req = ("GET /page.html HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n"
           + ("Accept-Encoding: gzip\r\n" if gzip_ok else "") + "\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    hdrs = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return hdrs, body


def wrk_run(srv: bl.Server, seconds: float, connections: int, gzip_ok: bool) -> dict:
    cpu0 = bl.group_cpu_seconds(srv.proc.pid)
    cmd = [bl.need("wrk"), "-t2", f"-c{connections}", f"-d{seconds:g}s"]
    if gzip_ok:
        cmd += ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{srv.port}/page.html"], capture_output=True,
                         text=True, timeout=seconds + 60).stdout
    cpu = bl.group_cpu_seconds(srv.proc.pid) - cpu0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    n = int(total.group(1)) if total else 0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    return {"per_s": float(m.group(1)) if m else 0.0, "requests": n,
            "cpu_us": 1e6 * cpu / max(n, 1), "errors": errors.group(0) if errors else ""}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--headers", action="store_true",
                    help="mod_headers on as a TLS front end sets it (HSTS, nosniff, ...)")
    ap.add_argument("--no-cache", action="store_true",
                    help="also run httpd-py with its compressed-file cache off")
    args = ap.parse_args()
    names = ["httpd-py", "apache2"] + (["httpd-py-nocache"] if args.no_cache else [])
    page = make_page()
    with tempfile.TemporaryDirectory(prefix="httpd-py-bench-gzip-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        docroot = work / "htdocs"
        docroot.mkdir()
        (docroot / "page.html").write_text(page)
        docroot.chmod(0o755)
        (docroot / "page.html").chmod(0o644)
        servers: dict[str, bl.Server] = {}
        try:
            for name in names:
                d = work / name
                d.mkdir()
                d.chmod(0o755)
                port = bl.free_port()
                conf = config(d, port, docroot, headers=args.headers)
                if name == "apache2":
                    argv, env = [bl.need("apache2"), "-d", str(d), "-f", str(conf),
                                 "-DFOREGROUND"], None
                else:
                    argv = [str(bl.ROOT / ".venv/bin/python"), "-m", "httpd_py", "-d", str(d),
                            "-f", str(conf), "-DFOREGROUND"]
                    env = {"HTTPD_PY_GZIP_CACHE": "0"} if name == "httpd-py-nocache" else None
                servers[name] = bl.start(name, argv, port, d / "console.log", env=env)
            bodies = {}
            for name, srv in servers.items():
                h, body = fetch(srv.port, True)
                if h.get("content-encoding") != "gzip" or gzip.decompress(body) != page.encode():
                    raise SystemExit(f"{name}: no valid gzip answer ({h})")
                bodies[name] = body
                for gz in (True, False):
                    wrk_run(srv, 1, args.connections, gz)          # warm-up
            runs: dict[tuple[str, bool], list[dict]] = {}
            order = list(servers)
            for r in range(args.rounds):
                for gz in (True, False):
                    for name in order[r % len(order):] + order[:r % len(order)]:
                        runs.setdefault((name, gz), []).append(
                            wrk_run(servers[name], args.seconds, args.connections, gz))
        finally:
            for srv in servers.values():
                srv.stop()
    print(f"GET of a {len(page):,}-byte HTML page over plain HTTP, keep-alive, wrk -t2 "
          f"-c{args.connections}, {args.rounds} x {args.seconds:g} s per row; prefork, 4 "
          f"workers; mod_deflate at its defaults (level 6, window 15, memLevel 9).")
    print()
    print("| server | Accept-Encoding | requests/s (median) | server CPU us/request | "
          "body bytes |")
    print("|---|---|---:|---:|---:|")
    for (name, gz), v in runs.items():
        size = len(bodies[name]) if gz else len(page)
        print(f"| {name} | {'gzip' if gz else '(none)'} | "
              f"{bl.median([x['per_s'] for x in v]):.0f} | "
              f"{bl.median([x['cpu_us'] for x in v]):.0f} | {size:,} |")
    print()
    same = bodies["httpd-py"] == bodies["apache2"]
    print(f"gzip bodies byte-identical (httpd-py vs apache2): {'yes' if same else 'no'}")
    errs = [f"{n}: {x['errors']}" for (n, _), v in runs.items() for x in v if x["errors"]]
    if errs:
        print("wrk reported: " + "; ".join(errs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
