"""Full TLS handshakes/s and server CPU per handshake: httpd-py vs Apache httpd vs nginx.

For RSA-2048 and ECDSA P-256, with and without status_request: two client processes make full
handshakes (no resumption) with one small GET each for SECONDS, three rounds per cell, servers
interleaved within each round.  Server CPU is all of the server's processes from /proc.  Then
keep-alive small-file requests/s with wrk (2 threads, 16 connections).

    .venv/bin/python scripts/bench_handshake.py [--seconds 6] [--rounds 3]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

import benchlib as bl
from httpd_py.devtools.pki import make_pki


def start_servers(work: Path, pki, kind: str, staple_der: bytes, names: list[str]) -> dict[str, bl.Server]:
    leaf = pki.leaf("bench.test", kind)
    pairs = [(leaf.cert_file, leaf.key_file)]
    docroot = work / "htdocs"
    servers = {}
    for name in names:
        d = work / f"{name}-{kind}"
        d.mkdir()
        port = bl.free_port()
        if name == "nginx":
            staple = d / "staple.der"
            staple.write_bytes(staple_der)
            conf = bl.nginx_config(d, port, pairs, [staple], docroot=docroot)
            argv = [bl.need("nginx"), "-c", str(conf), "-e", str(d / "nginx-error.log")]
        else:
            conf = bl.apache_config(d, port, pairs, stapling=True, docroot=docroot)
            if name == "apache2":
                argv = [bl.need("apache2"), "-d", str(d), "-f", str(conf), "-DFOREGROUND"]
            else:
                argv = [str(bl.ROOT / ".venv/bin/httpd-py"), "-d", str(d), "-f", str(conf), "-DFOREGROUND"]
        servers[name] = bl.start(name, argv, port, d / "console.log")
    return servers


def wrk_rps(port: int, seconds: int) -> float:
    out = subprocess.run([bl.need("wrk"), "-t2", "-c16", f"-d{seconds}s",
                          f"https://127.0.0.1:{port}/small.txt"], capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--servers", nargs="+", default=["httpd-py", "apache2", "nginx"])
    args = ap.parse_args()
    from httpd_py.devtools.responder import CertRef, Responder  # the in-process OCSP responder

    with tempfile.TemporaryDirectory(prefix="httpd-py-bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        rport = bl.free_port()
        pki = make_pki(work / "pki", ("bench.test",), ocsp_url=f"http://127.0.0.1:{rport}/")
        with Responder.for_pki(pki, port=rport) as responder:
            docroot = work / "htdocs"
            docroot.mkdir()
            (docroot / "small.txt").write_text("hello from the benchmark\n" * 4)
            print("| key | status_request | server | handshakes/s (median) | server CPU ms/handshake (median) | stapled |")
            print("|---|---|---|---|---|---|")
            ka = {}
            for kind, cipher in (("rsa", b"ECDHE-RSA-AES128-GCM-SHA256"), ("ec", b"ECDHE-ECDSA-AES128-GCM-SHA256")):
                staple = responder.answer(CertRef.of(pki.leaf("bench.test", kind).cert, pki.inter))
                servers = start_servers(work, pki, kind, staple, args.servers)
                try:
                    for status in (False, True):
                        cells: dict[str, list[dict]] = {n: [] for n in servers}
                        for name, srv in servers.items():   # warm-up: first fetch, worker start
                            bl.handshake_run(srv, seconds=1.0, clients=2, status=status, cipher=None)
                        for _ in range(args.rounds):
                            for name, srv in servers.items():
                                cells[name].append(bl.handshake_run(srv, seconds=args.seconds, clients=2,
                                                                    status=status, cipher=None))
                        for name, runs in cells.items():
                            print(f"| {kind} | {'yes' if status else 'no'} | {name} | "
                                  f"{bl.median([r['per_s'] for r in runs]):.0f} | "
                                  f"{bl.median([r['cpu_ms'] for r in runs]):.2f} | "
                                  f"{sum(r['stapled'] for r in runs)}/{sum(r['handshakes'] for r in runs)} |")
                    if kind == "ec":
                        for name, srv in servers.items():
                            ka[name] = bl.median([wrk_rps(srv.port, 5) for _ in range(args.rounds)])
                finally:
                    for srv in servers.values():
                        srv.stop()
            print()
            print("| server | keep-alive small-file requests/s (wrk -t2 -c16, median) |")
            print("|---|---|")
            for name, rps in ka.items():
                print(f"| {name} | {rps:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
