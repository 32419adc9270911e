"""Slowloris against apache2 (prefork and event) and httpd-py (its workers' event loop on and
off), one after the other in the same run, on the same config.

    .venv/bin/python scripts/bench_slowloris.py [--seconds 60] [--no-module] [--servers ...]
    scripts/bench slowloris

Plain HTTP on loopback, 10 workers, mod_reqtimeout loaded with no RequestReadTimeout line (its
defaults, which are Debian's reqtimeout.conf: handshake=0 header=20-40,MinRate=500
body=20,MinRate=500), or not loaded with ``--no-module``.  The servers (one config text, only the
MPM lines and httpd-py's WaitingConnections differ):

- apache2-prefork: prefork, StartServers/ServerLimit/MaxRequestWorkers 10;
- apache2-event: mpm_event with 10 worker threads (2 processes x ThreadsPerChild 5,
  AsyncRequestWorkerFactor left at its default 2);
- httpd-py: prefork 10 workers as apache2-prefork, ``WaitingConnections On`` (the default);
- httpd-py-off: the same with ``WaitingConnections Off`` (one connection per worker, as before
  the event loop).

- 40 slow clients open a connection and send one byte of a never-ending request head every 2 s;
  when the server cuts one (close, reset or a 408), it reconnects (after 0.1 s).
- One normal client sends ``GET /`` on a new connection every 250 ms and gives up after 10 s.

Reported per server: the normal client's latency (successful requests) and failures, and per
slow connection the seconds until the server cut it (median, max) and how many were still
open at the end ("never cut"; a connection still in the listen backlog counts there too).
Every loop is bounded in time: the slow clients stop when the normal client is done, at most
--seconds + 11 s after the start.
"""
from __future__ import annotations

import argparse
import errno
import os
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

SLOW_CLIENTS = 40
SLOW_INTERVAL = 2.0
NORMAL_INTERVAL = 0.25
NORMAL_TIMEOUT = 10.0
RECONNECT_DELAY = 0.1
WORKERS = 10
# a request head that never ends: one byte of it every SLOW_INTERVAL
HEAD = b"GET / HTTP/1.1\r\nHost: bench.test\r\n"
TRICKLE = b"X-Slow: " + b"a" * 60 + b"\r\n"


SERVERS = ("apache2-prefork", "apache2-event", "httpd-py", "httpd-py-off")
PREFORK = f"""StartServers {WORKERS}
MinSpareServers {WORKERS}
MaxSpareServers {WORKERS}
ServerLimit {WORKERS}
MaxRequestWorkers {WORKERS}"""


def config(work: Path, docroot: Path, port: int, module: bool, server: str) -> Path:
    mpm = "event" if server == "apache2-event" else "prefork"
    mods = [f"mpm_{mpm}", "authz_core", "dir", "mime"] + (["reqtimeout"] if module else [])
    loads = "\n".join(f"LoadModule {m}_module {bl.APACHE_MODULES}/mod_{m}.so" for m in mods)
    sizing = bl.event_mpm(WORKERS, WORKERS // 2) if mpm == "event" else PREFORK
    if server.startswith("httpd-py"):
        sizing += f"\nWaitingConnections {'Off' if server.endswith('-off') else 'On'}"
    text = f"""ServerRoot {work}
{loads}
ServerName bench.test
Listen 127.0.0.1:{port}
PidFile {work}/httpd.pid
ErrorLog {work}/error.log
LogLevel info
User www-data
Group www-data
Mutex file:{work} default
{sizing}
MaxConnectionsPerChild 0
KeepAlive On
TypesConfig /etc/mime.types
DocumentRoot {docroot}
<Directory {docroot}>
    Require all granted
</Directory>
"""
    path = work / "httpd.conf"
    path.write_text(text)
    return path


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    attempts: int = 0
    cut_after: list[float] = field(default_factory=list)    # seconds from connect to the cut
    got_408: int = 0
    never_cut: int = 0                                       # still open at the end
    opened: int = 0


def normal_client(port: int, end: float, res: Result) -> None:
    req = b"GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n"
    nxt = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= end:
            return
        if now < nxt:
            time.sleep(min(nxt - now, end - now))
            continue
        nxt = now + NORMAL_INTERVAL
        res.attempts += 1
        t0 = time.monotonic()
        deadline = t0 + NORMAL_TIMEOUT     # the slow clients hold on until this one is done
        ok = False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=NORMAL_TIMEOUT) as s:
                s.sendall(req)
                data = b""
                while time.monotonic() < deadline:
                    s.settimeout(max(0.01, deadline - time.monotonic()))
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                ok = data.startswith(b"HTTP/1.1 200") and time.monotonic() < deadline
        except OSError:
            ok = False
        if ok:
            res.latencies.append(time.monotonic() - t0)
        else:
            res.failures += 1


class Slow:
    __slots__ = ("sock", "opened", "next_send", "sent", "retry_at")

    def __init__(self):
        self.sock: socket.socket | None = None
        self.opened = 0.0
        self.next_send = 0.0
        self.sent = 0
        self.retry_at = 0.0


def _byte(i: int) -> bytes:
    if i < len(HEAD):
        return HEAD[i:i + 1]
    j = (i - len(HEAD)) % len(TRICKLE)
    return TRICKLE[j:j + 1]


def slow_clients(port: int, end: float, res: Result, normal_done: threading.Event) -> None:
    """Until the normal client's last request is over (at most end + its timeout)."""
    hard_end = end + NORMAL_TIMEOUT + 1
    slots = [Slow() for _ in range(SLOW_CLIENTS)]

    def cut(c: Slow, now: float, data: bytes = b"") -> None:
        res.cut_after.append(now - c.opened)
        if data.startswith(b"HTTP/1.1 408"):
            res.got_408 += 1
        c.sock.close()
        c.sock = None
        c.retry_at = now + RECONNECT_DELAY

    while True:
        now = time.monotonic()
        if now >= hard_end or (now >= end and normal_done.is_set()):
            break
        for c in slots:
            if c.sock is None and now >= c.retry_at:
                s = socket.socket()
                s.setblocking(False)
                err = s.connect_ex(("127.0.0.1", port))
                if err not in (0, errno.EINPROGRESS):
                    s.close()
                    c.retry_at = now + RECONNECT_DELAY
                    continue
                c.sock, c.opened, c.sent, c.next_send = s, now, 0, now
                res.opened += 1
            if c.sock is not None and now >= c.next_send:
                try:
                    c.sock.send(_byte(c.sent))
                    c.sent += 1
                except BlockingIOError:
                    pass                 # connect not done yet: try again next round
                except OSError:
                    cut(c, now)
                    continue
                c.next_send = now + SLOW_INTERVAL
        live = [c for c in slots if c.sock is not None]
        wakes = [c.next_send for c in live] + [c.retry_at for c in slots if c.sock is None]
        wait = max(0.0, min([hard_end, *wakes]) - time.monotonic())
        ready = select.select([c.sock for c in live], [], [], min(wait, 0.5))[0] if live else []
        if not live:
            time.sleep(min(wait, 0.5))
        now = time.monotonic()
        for c in live:
            if c.sock in ready:
                try:
                    data = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                cut(c, now, data)
    for c in slots:
        if c.sock is not None:
            res.never_cut += 1
            c.sock.close()


def run(server: bl.Server, seconds: float) -> Result:
    res = Result()
    end = time.monotonic() + seconds
    done = threading.Event()

    def normal():
        try:
            normal_client(server.port, end, res)
        finally:
            done.set()

    threads = [threading.Thread(target=slow_clients, args=(server.port, end, res, done)),
               threading.Thread(target=normal)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + NORMAL_TIMEOUT + 30)
    return res


def _pct(values: list[float], p: float) -> str:
    if not values:
        return "-"
    v = sorted(values)
    return f"{v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] * 1000:.0f}"


TREE: Path | None = None        # --tree DIR: the tree httpd-py runs from (None: this checkout)


def _argv(name: str, work: Path, conf: Path) -> list[str]:
    if name.startswith("apache2"):
        return [bl.need("apache2"), "-d", str(work), "-f", str(conf), "-DFOREGROUND"]
    # -P: the current directory must not come before PYTHONPATH (--tree)
    return [str(bl.ROOT / ".venv/bin/python"), "-P", "-m", "httpd_py", "-d", str(work), "-f",
            str(conf), "-DFOREGROUND"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--no-module", action="store_true",
                    help="run without LoadModule reqtimeout_module")
    ap.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS)
    ap.add_argument("--tree", type=Path, default=None,
                    help="run httpd-py from this tree (e.g. `git archive HEAD | tar -x -C DIR`)")
    args = ap.parse_args()
    global TREE
    TREE = args.tree
    module = not args.no_module
    results: dict[str, Result] = {}
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="httpd-py-slowloris-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        docroot = work / "htdocs"
        docroot.mkdir()
        (docroot / "index.html").write_text("<html><body>hello</body></html>\n")
        for name in args.servers:
            d = work / name
            d.mkdir()
            port = bl.free_port()
            conf = config(d, docroot, port, module, name)
            env = {"PYTHONPATH": str(TREE)} if TREE and name.startswith("httpd-py") else None
            server = bl.start(name, _argv(name, d, conf), port, d / "console.log", env=env)
            try:
                time.sleep(1.5)                        # StartServers workers up
                results[name] = run(server, args.seconds)
            finally:
                server.stop()
            time.sleep(0.5)
    rt = "loaded, defaults" if module else "not loaded"
    print(f"Slowloris: {SLOW_CLIENTS} clients sending one head byte every {SLOW_INTERVAL:g} s "
          f"(reconnecting when cut) and one client GET / every {NORMAL_INTERVAL * 1000:.0f} ms "
          f"(timeout {NORMAL_TIMEOUT:g} s), {args.seconds:g} s per server, {WORKERS} workers "
          f"(prefork processes; apache2-event: threads), plain HTTP on loopback, "
          f"mod_reqtimeout {rt}.")
    print()
    print("| server | normal: requests | failed | p50 ms | p90 ms | p99 ms | slow: connections "
          "| cut | 408 sent | cut after s (median) | max s | never cut |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        med = f"{statistics.median(r.cut_after):.1f}" if r.cut_after else "-"
        mx = f"{max(r.cut_after):.1f}" if r.cut_after else "-"
        print(f"| {name} | {r.attempts} | {r.failures} | {_pct(r.latencies, 50)} | "
              f"{_pct(r.latencies, 90)} | {_pct(r.latencies, 99)} | {r.opened} | "
              f"{len(r.cut_after)} | {r.got_408} | {med} | {mx} | {r.never_cut} |")
    print()
    print(f"cpu: {os.cpu_count()} cores; load average (1/5/15 min) before "
          f"{'/'.join(f'{x:.2f}' for x in load0)}, after "
          f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
