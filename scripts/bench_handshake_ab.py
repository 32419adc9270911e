"""Server CPU per full TLS handshake, several httpd-py trees A/B, in many short interleaved
windows (steadier than bench_handshake.py's few long ones on a shared machine).

    .venv/bin/python scripts/bench_handshake_ab.py TREE[@off] TREE[@off] ... [--n 300]
        [--rounds 16] [--workers 1] [--clients 1] [--status] [--extra "Directive ..."]

Each TREE (a checkout, e.g. ``git worktree add /tmp/base <commit>``) is started as its own
server (``python -P -m httpd_py`` with PYTHONPATH=TREE: the A/B really compares the trees) on
bench_handshake's Apache-syntax config (ECDSA P-256, SSLUseStapling on, shmcb, tickets off);
``@off`` adds ``WaitingConnections Off``.  Each server has its own persistent client
process(es) (pyOpenSSL, TLS 1.3, X25519 only, no resumption; one ``GET /small.txt`` with
``Connection: close`` per connection).  A window is N connections to one server; the windows
rotate over the servers ROUNDS times.  Server CPU = the sum of /proc/PID/schedstat run time
(ns) over the server's process group, before and after the window, / N.  Prints the median,
quartiles and minimum per tree; ``DUMP=file`` appends the raw windows as JSON (to pool runs).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from multiprocessing import Pipe, Process
from pathlib import Path

import benchlib as bl
from httpd_py.devtools.pki import make_pki


def _pgrp(pid: str) -> int:
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(st[st.rindex(")") + 2:].split()[2])


def group_ns(pgid: int) -> int:
    """Run time (ns) of every live process of the group, from /proc/PID/schedstat."""
    total = 0
    for e in os.listdir("/proc"):
        if e.isdigit() and _pgrp(e) == pgid:
            try:
                total += int(Path(f"/proc/{e}/schedstat").read_text().split()[0])
            except OSError:
                pass
    return total


def client(port: int, status: bool, conn) -> None:
    ctx = bl.client_context((lambda c, d, _: True) if status else None)
    while True:
        n = conn.recv()
        if n is None:
            return
        conn.send(sum(b" 200 " in bl.handshake_get(ctx, port, status)[:20] for _ in range(n)))


def run_n(clients: list, n: int) -> int:
    for _, a in clients:
        a.send(n // len(clients))
    return sum(a.recv() for _, a in clients)


def main() -> int:
    from httpd_py.devtools.responder import Responder
    ap = argparse.ArgumentParser()
    ap.add_argument("trees", nargs="+", help="checkout directories, TREE@off for WaitingConnections Off")
    ap.add_argument("--n", type=int, default=300, help="connections per window")
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--clients", type=int, default=1, help="client processes per server")
    ap.add_argument("--status", action="store_true", help="clients ask for a staple")
    ap.add_argument("--extra", default="", help="directive lines for the main server")
    args = ap.parse_args()
    print(os.popen("uptime").read().strip(), flush=True)
    res: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="httpd-py-hsab-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        rport = bl.free_port()
        pki = make_pki(work / "pki", ("bench.test",), ocsp_url=f"http://127.0.0.1:{rport}/")
        with Responder.for_pki(pki, port=rport):
            docroot = work / "htdocs"
            docroot.mkdir()
            (docroot / "small.txt").write_text("hello from the benchmark\n" * 4)
            leaf = pki.leaf("bench.test", "ec")
            servers, clients = {}, {}
            try:
                for i, spec in enumerate(args.trees):
                    tree, _, flag = spec.partition("@")
                    extra = args.extra + ("\nWaitingConnections Off" if flag == "off" else "")
                    d = work / f"s{i}"
                    d.mkdir()
                    port = bl.free_port()
                    conf = bl.apache_config(d, port, [(leaf.cert_file, leaf.key_file)], stapling=True,
                                            docroot=docroot, workers=args.workers, server_extra=extra)
                    argv = [str(bl.ROOT / ".venv/bin/python"), "-P", "-m", "httpd_py", "-d", str(d),
                            "-f", str(conf), "-DFOREGROUND"]
                    servers[spec] = bl.start(spec, argv, port, d / "console.log",
                                             env={"PYTHONPATH": str(Path(tree).resolve())})
                    clients[spec] = []
                    for _ in range(args.clients):
                        a, b = Pipe()
                        p = Process(target=client, args=(port, args.status, b))
                        p.start()
                        clients[spec].append((p, a))
                time.sleep(1.5)
                for spec in servers:                     # warm-up
                    run_n(clients[spec], 200)
                res = {t: [] for t in servers}
                order = list(servers)
                for r in range(args.rounds):
                    for t in order[r % len(order):] + order[:r % len(order)]:
                        pg = servers[t].proc.pid
                        c0 = group_ns(pg)
                        ok = run_n(clients[t], args.n)
                        c1 = group_ns(pg)
                        if ok != args.n - args.n % len(clients[t]):
                            print(f"warning: {t}: {ok} of {args.n} answered 200")
                        res[t].append((c1 - c0) / 1e6 / max(ok, 1))
            finally:
                for cl in clients.values():
                    for p, a in cl:
                        with contextlib.suppress(Exception):
                            a.send(None)
                        p.join(5)
                for s in servers.values():
                    s.stop()
    print(f"Server CPU ms per connection (full TLS 1.3 handshake + GET), {args.rounds} windows x "
          f"{args.n} connections, {args.workers} worker(s), {args.clients} client(s):")
    first = None
    for t, v in res.items():
        s = sorted(v)
        m = statistics.median(v)
        first = first or m
        print(f"{t:40s} median {m:.3f}  q25 {s[len(s) // 4]:.3f}  q75 {s[(3 * len(s)) // 4]:.3f}  "
              f"min {s[0]:.3f}  vs first {m / first:.3f}")
    print(os.popen("uptime").read().strip())
    if os.environ.get("DUMP"):
        with open(os.environ["DUMP"], "a") as f:
            f.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
