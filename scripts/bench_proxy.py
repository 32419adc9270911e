#!/usr/bin/env python3
"""Reverse-proxy benchmark: httpd-py vs apache2 mod_proxy vs nginx proxy_pass, same run.

    .venv/bin/python scripts/bench_proxy.py [--seconds 10] [--connections 8] [--smoke]

One backend for all three: a separate apache2 serving two static files (``small.txt``, 13 bytes,
and ``big.bin``, 1 MiB) from a temporary tree, keep-alive on.  Each proxy listens on loopback
and forwards ``/`` to it with kept-alive backend connections (httpd-py: its per-process pool;
apache2: mod_proxy's; nginx: an ``upstream`` with ``keepalive 16``), all three prefork-like or
with the same number of worker processes (``--workers``, default 2).

For each proxy and each body (small, 1 MiB): ``wrk`` with keep-alive clients for ``--seconds``;
reported: requests/s, the proxy's CPU per request (utime+stime of its whole process group,
from /proc, divided by the requests wrk counted), and its resident memory after the run (the
1 MiB bodies are streamed: memory should not grow with the body size).  Every proxy first
gets a second of the same load, not measured (start-up work, first connections, each
process's caches).  ``--rounds N`` (default 1): N rounds, the proxies in turn within each,
every round's rows printed, then the medians and each proxy's CPU per request as a ratio to
apache2's (below 2: more than half of apache2's requests per core).

httpd-py runs as ``python -P -m httpd_py`` with PYTHONPATH set to the tree the script is in: a
worktree's copy of the script measures that worktree, whatever the current directory.
``--small-only``, ``--big-only``: the 13-byte or the 1 MiB rows only.  ``--floor``: a
"python-floor" row for the 13-byte body: ``scripts/proxy_floor.py``, a reverse proxy in Python
with nothing but the exchange (no configuration, logging or access control), the lower bound
for a Python proxy on this machine.

``--slow-ms MS`` adds rows for an application-like backend that answers 13 bytes MS
milliseconds after each request (a small asyncio server started by the script, keep-alive),
behind ``/slow/``, with ``--slow-connections`` clients (default 64): a proxy that holds a
worker per request in flight is bounded by its processes over the delay (apache2 prefork here:
MaxRequestWorkers 16), one that parks them (httpd-py, nginx) by the clients.  With the slow
backend an "apache2-event" proxy joins every row: the event MPM with 64 threads in 2
processes, the Apache answer to many requests in flight.  ``--smoke`` starts everything and sends a few requests through each proxy without wrk (to
check the setup without loading the machine).  The machine has 2 cores shared with other
work: run the real thing only when it is quiet; each run prints its own load average.
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (APACHE_MODULES, ROOT, event_mpm, free_port,  # noqa: E402
                      group_cpu_seconds, need, start)


def _modules(*names: str) -> str:
    return "\n".join(f"LoadModule {n}_module {APACHE_MODULES}/mod_{n}.so" for n in names)


def backend_conf(work: Path, port: int, docroot: Path) -> str:
    return f"""ServerRoot {work}
{_modules("mpm_event", "authz_core", "mime")}
ServerName backend
Listen 127.0.0.1:{port}
PidFile {work}/backend.pid
ErrorLog {work}/backend-error.log
Mutex file:{work} default
TypesConfig /etc/mime.types
DocumentRoot {docroot}
<Directory {docroot}>
    Require all granted
</Directory>
KeepAlive On
MaxKeepAliveRequests 0
StartServers 1
ThreadsPerChild 25
"""


SLOW_BACKEND = r"""
import asyncio, sys
DELAY = float(sys.argv[2]) / 1000
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
          b"hello, proxy\n")
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(DELAY)
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        writer.close()
async def main():
    srv = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    await srv.serve_forever()
asyncio.run(main())
"""


def proxy_conf(work: Path, tag: str, port: int, backend: int, workers: int,
               slow: int | None = None) -> str:
    event = tag == "apache2-event"
    mpm = "mpm_event" if event else "mpm_prefork"
    sizing = event_mpm(64, 32) if event else f"""StartServers {workers}
MinSpareServers {workers}
MaxSpareServers {workers}
MaxRequestWorkers {max(workers, 16)}"""
    return f"""ServerRoot {work}
{_modules(mpm, "authz_core", "proxy", "proxy_http")}
ServerName localhost
Listen 127.0.0.1:{port}
PidFile {work}/{tag}.pid
ErrorLog {work}/{tag}-error.log
DefaultRuntimeDir {work}
Mutex file:{work} default
{sizing}
KeepAlive On
MaxKeepAliveRequests 0
{"User root" + chr(10) + "Group root" if os.geteuid() == 0 and tag == "httpd-py" else ""}
{f"ProxyPass /slow/ http://127.0.0.1:{slow}/" if slow else ""}
ProxyPass / http://127.0.0.1:{backend}/
"""


def nginx_conf(work: Path, port: int, backend: int, workers: int, slow: int | None = None) -> str:
    slow_loc = "" if not slow else f"""
        location /slow/ {{
            proxy_pass http://slow/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}"""
    slow_up = "" if not slow else f"upstream slow {{ server 127.0.0.1:{slow}; keepalive 64; }}"
    return f"""worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 16; }}
    {slow_up}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 100000;{slow_loc}
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }}
    }}
}}
"""


def rss_kb(pgid: int) -> int:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        m = re.search(r"VmRSS:\s+(\d+)", status)
        total += int(m.group(1)) if m else 0
    return total


def fetch(port: int, path: str) -> tuple[int, int]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), len(body)


def wrk(port: int, path: str, seconds: float, connections: int) -> float:
    out = subprocess.run([need("wrk"), "-t", "2", "-c", str(connections), "-d", f"{seconds:g}s",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    m = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        print(f"  ({bad.group(1)} of the requests were answered with an error)", flush=True)
    return int(m.group(1)) if m else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--small-only", action="store_true", help="the 13-byte body only")
    ap.add_argument("--big-only", action="store_true", help="the 1 MiB body only")
    ap.add_argument("--slow-ms", type=float, default=0,
                    help="also: a backend answering after this many ms (0: not run)")
    ap.add_argument("--slow-connections", type=int, default=64)
    ap.add_argument("--slow-only", action="store_true", help="the slow backend's rows only")
    ap.add_argument("--rounds", type=int, default=1, help="rounds (the proxies in turn within "
                    "each); with more than one, the medians and ratios to apache2 too")
    ap.add_argument("--floor", action="store_true",
                    help="also: a minimal Python proxy (scripts/proxy_floor.py), 13-byte row")
    args = ap.parse_args()
    apache = need("apache2")
    nginx = None
    try:
        nginx = need("nginx")
    except SystemExit:
        print("nginx not installed (apt-get install nginx-light): its column is left out")
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as d:
        work = Path(d)
        os.chmod(work, 0o755)
        docroot = work / "htdocs"
        docroot.mkdir()
        (docroot / "small.txt").write_bytes(b"hello, proxy\n")
        (docroot / "big.bin").write_bytes(os.urandom(1 << 20))
        for p in docroot.iterdir():
            os.chmod(p, 0o644)
        bport = free_port()
        bconf = work / "backend.conf"
        bconf.write_text(backend_conf(work, bport, docroot))
        servers = []
        try:
            servers.append(start("backend", [apache, "-d", str(work), "-f", str(bconf),
                                             "-DFOREGROUND"], bport, work / "backend.out"))
            sport = None
            if args.slow_ms or args.slow_only:
                args.slow_ms = args.slow_ms or 50
                sport = free_port()
                (work / "slow.py").write_text(SLOW_BACKEND)
                servers.append(start("slow backend", [sys.executable, str(work / "slow.py"),
                                                      str(sport), f"{args.slow_ms:g}"],
                                     sport, work / "slow.out"))
            proxies = []
            for tag in ("httpd-py", "apache2") + (("apache2-event",) if sport else ()):
                port = free_port()
                conf = work / f"{tag}.conf"
                conf.write_text(proxy_conf(work, tag, port, bport, args.workers, sport))
                argv = ([sys.executable, "-P", "-m", "httpd_py", "-f", str(conf), "-DFOREGROUND"]
                        if tag == "httpd-py" else
                        [apache, "-d", str(work), "-f", str(conf), "-DFOREGROUND"])
                s = start(tag, argv, port, work / f"{tag}.out",
                          env={"PYTHONPATH": str(ROOT)} if tag == "httpd-py" else None)
                servers.append(s)
                proxies.append(s)
            if nginx:
                port = free_port()
                conf = work / "nginx.conf"
                conf.write_text(nginx_conf(work, port, bport, args.workers, sport))
                s = start("nginx", [nginx, "-c", str(conf), "-g", "daemon off;"], port,
                          work / "nginx.out")
                servers.append(s)
                proxies.append(s)
            floor = None
            if args.floor:
                port = free_port()
                floor = start("python-floor", [sys.executable, str(Path(__file__).resolve()
                                                                   .parent / "proxy_floor.py"),
                                               str(port), str(bport), str(args.workers)], port,
                              work / "floor.out")
                servers.append(floor)
                status, n = fetch(port, "/small.txt")
                assert status == 200 and n == 13, ("python-floor", status, n)
            for s in proxies:
                for path, size in (("/small.txt", 13), ("/big.bin", 1 << 20)):
                    status, n = fetch(s.port, path)
                    assert status == 200 and n == size, (s.name, path, status, n)
                if sport:
                    status, n = fetch(s.port, "/slow/x")
                    assert status == 200 and n == 13, (s.name, "/slow/x", status, n)
            if args.smoke:
                print("smoke: every proxy answered /small.txt and /big.bin;", ", ".join(
                    s.name for s in proxies))
                return 0
            print(f"load average before: {os.getloadavg()}")
            print(f"{'proxy':10} {'body':6} {'req/s':>9} {'CPU us/req':>11} {'RSS MB':>8}")
            bodies = [("/small.txt", "13 B"), ("/big.bin", "1 MiB")]
            rows = bodies[:1] if args.small_only else bodies[1:] if args.big_only else bodies
            if sport:
                slow = (f"/slow/x", f"13 B after {args.slow_ms:g} ms, -c{args.slow_connections}")
                rows = [slow] if args.slow_only else [*rows, slow]
            got: dict = {}
            for path, label in rows:
                conns = args.slow_connections if path.startswith("/slow/") else args.connections
                row = proxies + [floor] if floor and path == "/small.txt" else proxies
                for s in row:
                    wrk(s.port, path, 1, conns)             # warm-up, not measured
                for _ in range(max(1, args.rounds)):
                    for s in row:
                        pgid = os.getpgid(s.proc.pid)
                        cpu0 = group_cpu_seconds(pgid)
                        n = wrk(s.port, path, args.seconds, conns)
                        cpu = group_cpu_seconds(pgid) - cpu0
                        rps = n / args.seconds
                        per = cpu / n * 1e6 if n else float("nan")
                        got.setdefault((label, s.name), []).append((rps, per))
                        print(f"{s.name:10} {label:6} {rps:9.0f} {per:11.0f} "
                              f"{rss_kb(pgid) / 1024:8.1f}", flush=True)
            print(f"load average after: {os.getloadavg()}")
            if args.rounds > 1:
                print(f"medians of {args.rounds} rounds; CPU per request / apache2's:")
                for (label, name), runs in got.items():
                    rps = statistics.median(r for r, _ in runs)
                    per = statistics.median(p for _, p in runs)
                    base = got.get((label, "apache2"))
                    ratio = per / statistics.median(p for _, p in base) if base else float("nan")
                    print(f"{name:10} {label:6} {rps:9.0f} {per:11.0f} {ratio:8.2f}", flush=True)
        finally:
            for s in reversed(servers):
                s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
