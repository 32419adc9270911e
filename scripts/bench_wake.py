#!/usr/bin/env python3
"""What a sleep costs the request after it: the in-process static request, warm and after a
blocking round trip to another process.

    .venv/bin/python scripts/bench_wake.py [--n 5000] [--rounds 3] [--same-cpu]

One child process serves ``GET /small.txt`` (13 bytes, keep-alive) through
``ConnectionHandler._handle_request`` with a client stream that only counts (as
``scripts/bench_proxy_inproc.py``), and measures its CPU per request (``process_time``):
requests alone (warm), a one-byte ping-pong with a forked echo process alone, and a request
followed by a ping-pong each time: the process sleeps in ``recv`` after every request, as a
worker sleeps waiting for its client or its backend.  "request after a sleep" is the last
minus the ping-pong alone.  ``--same-cpu``: the child and its echo process pinned to CPU 0 (the
child's CPU does not go idle while it waits: the echo process runs there).

On this machine (docs/benchmarks.md, "mod_proxy: where the per-core gap is") the request after
a sleep costs about twice the warm one unless both share a CPU: an idle vCPU halts at once
(cpuidle haltpoll, ``guest_halt_poll_ns`` 0) and the woken process runs cold.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r'''
import json, os, socket, sys, time
from httpd_py.config import load
from httpd_py.http import connection
from httpd_py.http.protocol import Limits, parse_head
from httpd_py.tls.sites import build_sites

conf, port, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cfg = load(conf, log_warnings=False)
sites = build_sites(cfg)
h = connection.ConnectionHandler(cfg, sites)
h.child_init()
site = sites.site_for("127.0.0.1", port)

class Sink:
    last = b""
    def sendall(self, data): self.last = bytes(data)
    def recv(self, n): return b""
    def pending(self): return 0
    def close(self): pass

raw = b"GET /small.txt HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
head, _ = parse_head(bytearray(raw), Limits())
args = (head, site, None, None, ("127.0.0.1", 40000), ("127.0.0.1", port), None,
        "127.0.0.1:40000")
mine, echo = socket.socketpair()
if os.fork() == 0:
    mine.close()
    while True:
        b = echo.recv(1)
        if not b:
            os._exit(0)
        echo.send(b)
echo.close()

def run(count, request, ping):
    s = Sink()
    t0 = time.process_time()
    for i in range(count):
        if request:
            h._pending = None
            h._handle_request(s, *args, (i % 90) + 1, time.time())
        if ping:
            mine.send(b"x")
            mine.recv(1)
    if request:
        assert s.last.endswith(b"hello, wake\n"), s.last[-200:]
    return (time.process_time() - t0) / count * 1e6

run(1000, True, False)
out = []
for _ in range(rounds):
    warm, pong, both = run(n, True, False), run(n, False, True), run(n, True, True)
    out.append({"warm": warm, "ping-pong": pong, "after a sleep": both - pong})
mine.close()
print(json.dumps(out))
'''


def main() -> int:
    sys.path.insert(0, str(HERE))
    import benchlib as bl
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--same-cpu", action="store_true", help="pin the child and its echo to CPU 0")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="httpd-py-wake-") as tmp:
        work = Path(tmp)
        docroot = work / "htdocs"
        docroot.mkdir()
        (docroot / "small.txt").write_bytes(b"hello, wake\n")
        port = bl.free_port()
        conf = work / "wake.conf"
        conf.write_text(f"""ServerRoot {work}
LoadModule authz_core_module {bl.APACHE_MODULES}/mod_authz_core.so
ServerName localhost
Listen 127.0.0.1:{port}
ErrorLog {work}/error.log
DocumentRoot {docroot}
<Directory {docroot}>
    Require all granted
</Directory>
""")
        pin = ["taskset", "-c", "0"] if args.same_cpu else []
        got = subprocess.run([*pin, sys.executable, "-P", "-c", CHILD, str(conf), str(port),
                              str(args.n), str(args.rounds)],
                             env=dict(os.environ, PYTHONPATH=str(HERE.parent)),
                             capture_output=True, text=True, timeout=600)
        if got.returncode != 0:
            raise SystemExit(got.stderr[-3000:])
    rows = json.loads(got.stdout.strip().splitlines()[-1])
    print(f"static request, CPU us per request ({args.n} requests a round"
          f"{', both processes on CPU 0' if args.same_cpu else ''}); load "
          f"{os.getloadavg()[0]:.1f}:")
    for r in rows:
        print(f"  warm {r['warm']:6.1f}   ping-pong alone {r['ping-pong']:6.1f}   "
              f"request after a sleep {r['after a sleep']:6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
