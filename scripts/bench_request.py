"""One keep-alive request's CPU in the request pipeline, in-process, this tree against another.

    .venv/bin/python scripts/bench_request.py [--alt DIR] [--n 20000] [--rounds 3]

No sockets, no TLS, no kernel: a parsed ``GET /small.txt`` (100 bytes, keep-alive) handed to
``ConnectionHandler._handle_request`` with a stream that only counts what is written, for a
minimal config and for Debian's stock per-directory sections (bench_handshake.STOCK_SECTIONS).
It isolates what a change to the request path costs per request; wrk's requests/s against the
real server (bench_handshake.py) says what a client sees.

``--alt DIR``: another checkout (e.g. ``git worktree add /tmp/base <commit>``) measured the same
way in alternating rounds, so both see the same machine load.  Prints a Markdown table of the
median us/request per tree and config.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r'''
import json, sys, time
from pathlib import Path
from httpd_py.config import load
from httpd_py.http import connection
from httpd_py.http.protocol import Limits, parse_head
from httpd_py.tls.sites import build_sites

conf, n = sys.argv[1], int(sys.argv[2])
cfg = load(conf, log_warnings=False)
sites = build_sites(cfg)
h = connection.ConnectionHandler(cfg, sites)
site = sites.site_for("127.0.0.1", cfg.listens[0].port)

class Sink:
    def __init__(self): self.n = 0
    def sendall(self, data): self.n += len(data)
    def recv(self, n): return b""
    def pending(self): return 0
    def close(self): pass

raw = b"GET /small.txt HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
head, _ = parse_head(bytearray(raw), Limits())
s = Sink()
args = (s, head, site, None, (None, None), ("127.0.0.1", 40000), ("127.0.0.1", cfg.listens[0].port),
        None, "127.0.0.1:40000")
for i in range(2000):
    h._handle_request(*args, i + 1, time.time())
t0 = time.process_time()
for i in range(n):
    h._pending = None
    h._handle_request(*args, (i % 90) + 1, time.time())
dt = time.process_time() - t0
assert s.n > 0
print(json.dumps({"us": dt / n * 1e6}))
'''


def config(work: Path, docroot: Path, sections: str) -> Path:
    sys.path.insert(0, str(HERE))
    import bench_handshake as bh
    import benchlib as bl
    extra = bh.STOCK_SECTIONS.format(mods=bl.APACHE_MODULES, docroot=docroot) \
        if sections == "stock" else ""
    text = (f"ServerRoot {work}\nListen 127.0.0.1:{bl.free_port()}\nServerName bench.test\n"
            f"ErrorLog {work}/error.log\nDocumentRoot {docroot}\nLogLevel warn\n"
            f"<Directory {docroot}>\n    Require all granted\n</Directory>\n{extra}")
    path = work / f"{sections}.conf"
    path.write_text(text)
    return path


def run(tree: Path, conf: Path, n: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", CHILD, str(conf), str(n)], env=env, cwd=tree,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["us"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alt", type=Path, default=None, help="another checkout to compare")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    trees = [("this tree", HERE.parent)] + ([("alt", args.alt.resolve())] if args.alt else [])
    with tempfile.TemporaryDirectory(prefix="httpd-py-req-") as tmp:
        work = Path(tmp)
        docroot = work / "htdocs"
        docroot.mkdir()
        (docroot / "small.txt").write_text("x" * 100)
        confs = {s: config(work, docroot, s) for s in ("none", "stock")}
        res: dict = {}
        for _ in range(args.rounds):
            for name, tree in trees:
                for s, conf in confs.items():
                    res.setdefault((name, s), []).append(run(tree, conf, args.n))
        print(f"In-process CPU per keep-alive GET of a 100-byte file (median of {args.rounds} "
              f"rounds x {args.n} requests, process_time), load average "
              f"{os.getloadavg()[0]:.1f}:")
        print()
        print("| tree | sections | us/request |")
        print("|---|---|---:|")
        for (name, s), v in res.items():
            print(f"| {name} | {s} | {statistics.median(v):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
