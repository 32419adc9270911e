"""Full TLS handshakes/s and server CPU per handshake: httpd-py vs Apache httpd vs nginx.

For RSA-2048 and ECDSA P-256, with and without status_request: two client processes make full
handshakes (no resumption, TLS 1.3, key exchange X25519 for every server) with one small GET
each for SECONDS, ROUNDS rounds per cell, the servers interleaved within each round (the order
rotates from round to round).  Server CPU is all of the server's processes from /proc.  Then
keep-alive small-file requests/s with wrk (2 threads, 16 and 4 connections) against servers
started for it with as many prefork workers as connections (StartServers = MinSpareServers =
connections for apache2 and httpd-py alike: a keep-alive connection holds a prefork worker),
plus the server CPU per request.  ``--ka-workers N`` starts N workers whatever the connection
count (httpd-py's workers' event loop holds idle keep-alive connections without a process each;
apache2 prefork then serves only N of the connections: scripts/bench_waiting.py compares that).

    .venv/bin/python scripts/bench_handshake.py [--seconds 6] [--rounds 3]
    # A/B: also run httpd-py from another checkout (e.g. `git archive HEAD~3 | tar -x -C DIR`)
    .venv/bin/python scripts/bench_handshake.py --alt DIR --servers httpd-py httpd-py-alt
"""
from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import benchlib as bl
from httpd_py.devtools.pki import make_pki



def _argv(name: str, d: Path, conf: Path, alt: Path | None) -> tuple[list[str], dict | None]:
    if name == "apache2":
        return [bl.need("apache2"), "-d", str(d), "-f", str(conf), "-DFOREGROUND"], None
    if name == "httpd-py":
        return [str(bl.ROOT / ".venv/bin/httpd-py"), "-d", str(d), "-f", str(conf), "-DFOREGROUND"], None
    if name == "httpd-py-alt":
        if alt is None:
            raise SystemExit("httpd-py-alt needs --alt DIR")
        return ([str(bl.ROOT / ".venv/bin/python"), "-P", "-m", "httpd_py", "-d", str(d), "-f", str(conf),
                 "-DFOREGROUND"], {"PYTHONPATH": str(alt)})
    raise SystemExit(f"unknown server {name!r}")


# Debian's stock per-directory sections (apache2.conf, security.conf, status.conf), all active,
# and mod_reqtimeout loaded with its defaults (as Debian loads it)
# for every request of the keep-alive run: --sections stock
STOCK_SECTIONS = """LoadModule authz_host_module {mods}/mod_authz_host.so
LoadModule alias_module {mods}/mod_alias.so
LoadModule reqtimeout_module {mods}/mod_reqtimeout.so
AccessFileName .htaccess
<Directory />
    Options FollowSymLinks
    AllowOverride None
    Require all denied
</Directory>
<Directory /usr/share>
    AllowOverride None
    Require all granted
</Directory>
<Directory {docroot}/>
    Options Indexes FollowSymLinks
    AllowOverride None
    Require all granted
</Directory>
<FilesMatch "^\\.ht">
    Require all denied
</FilesMatch>
<DirectoryMatch "/\\.git">
    Require all denied
</DirectoryMatch>
<Location /server-status>
    Require local
</Location>
"""


def start_servers(work: Path, pki, kind: str, staple_der: bytes, names: list[str], *,
                  workers: int = 4, tag: str = "", alt: Path | None = None,
                  sections: str = "none") -> dict[str, bl.Server]:
    leaf = pki.leaf("bench.test", kind)
    pairs = [(leaf.cert_file, leaf.key_file)]
    docroot = work / "htdocs"
    servers = {}
    for name in names:
        d = work / f"{name}-{kind}{tag}"
        d.mkdir()
        port = bl.free_port()
        env = None
        if name == "nginx":
            staple = d / "staple.der"
            staple.write_bytes(staple_der)
            conf = bl.nginx_config(d, port, pairs, [staple], docroot=docroot)
            argv = [bl.need("nginx"), "-c", str(conf), "-e", str(d / "nginx-error.log")]
        else:
            extra = (STOCK_SECTIONS.format(mods=bl.APACHE_MODULES, docroot=docroot)
                     if sections == "stock" else "")
            conf = bl.apache_config(d, port, pairs, stapling=True, docroot=docroot, workers=workers,
                                    server_extra=extra)
            argv, env = _argv(name, d, conf, alt)
        servers[name] = bl.start(name, argv, port, d / "console.log", env=env)
    return servers


def wait_processes(srv: bl.Server, n: int, timeout: float = 20.0) -> None:
    """Wait until the server's process group has at least ``n`` processes."""
    deadline = time.monotonic() + timeout
    while bl.group_processes(srv.proc.pid) < n and time.monotonic() < deadline:
        time.sleep(0.1)


def wrk_run(srv: bl.Server, seconds: float, connections: int) -> dict:
    cpu0 = bl.group_cpu_seconds(srv.proc.pid)
    out = subprocess.run([bl.need("wrk"), "-t2", f"-c{connections}", f"-d{seconds:g}s",
                          f"https://127.0.0.1:{srv.port}/small.txt"], capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    cpu = bl.group_cpu_seconds(srv.proc.pid) - cpu0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    n = int(total.group(1)) if total else 0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    return {"per_s": float(m.group(1)) if m else 0.0, "requests": n,
            "cpu_us": 1e6 * cpu / max(n, 1), "errors": errors.group(0) if errors else ""}


def _ratio(value: float, other: float | None) -> str:
    return f"{value / other:.2f}x" if other else "-"


def _range(values: list[float], fmt: str) -> str:
    return f"{format(min(values), fmt)}-{format(max(values), fmt)}"


def keepalive_table(work: Path, pki, staple: bytes, args, c: int) -> None:
    workers = args.ka_workers or c
    servers = start_servers(work, pki, "ec", staple, args.servers, workers=workers, tag=f"-ka{c}",
                            alt=args.alt, sections=args.sections)
    try:
        for name, srv in servers.items():
            if name != "nginx":
                wait_processes(srv, workers + 1)
            wrk_run(srv, 1, c)               # warm-up
        runs: dict[str, list[dict]] = {n: [] for n in servers}
        order = list(servers)
        for r in range(args.rounds):
            for name in order[r % len(order):] + order[:r % len(order)]:
                runs[name].append(wrk_run(servers[name], args.ka_seconds, c))
    finally:
        for srv in servers.values():
            srv.stop()
    rps = {n: bl.median([x["per_s"] for x in v]) for n, v in runs.items()}
    print(f"Keep-alive GET of a 100-byte file over TLS 1.3 (ECDSA), wrk -t2 -c{c}, "
          f"{args.rounds} x {args.ka_seconds:g} s; prefork servers with StartServers = "
          f"MinSpareServers = {workers}, nginx 2 workers; per-directory sections: {args.sections} "
          f"({'Debian stock sections, all active' if args.sections == 'stock' else 'one <Directory>'}).")
    print()
    print("| server | requests/s (median) | range | vs apache2 | vs nginx | server CPU us/request |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, v in runs.items():
        print(f"| {name} | {rps[name]:.0f} | {_range([x['per_s'] for x in v], '.0f')} | "
              f"{_ratio(rps[name], rps.get('apache2'))} | {_ratio(rps[name], rps.get('nginx'))} | "
              f"{bl.median([x['cpu_us'] for x in v]):.0f} |")
    errs = [f"{n}: {x['errors']}" for n, v in runs.items() for x in v if x["errors"]]
    if errs:
        print()
        print("wrk reported: " + "; ".join(errs))
    print(flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--servers", nargs="+", default=["httpd-py", "apache2", "nginx"])
    ap.add_argument("--alt", type=Path, default=None,
                    help="another httpd-py checkout, run as server 'httpd-py-alt' (A/B)")
    ap.add_argument("--groups", default=bl.DEFAULT_GROUPS,
                    help="key-exchange groups the client offers ('' = the client's default list)")
    ap.add_argument("--kinds", nargs="+", default=["rsa", "ec"])
    ap.add_argument("--no-keepalive", action="store_true")
    ap.add_argument("--no-handshake", action="store_true")
    ap.add_argument("--ka-connections", type=int, nargs="+", default=[16, 4],
                    help="wrk connections; each count gets prefork servers with that many workers")
    ap.add_argument("--ka-workers", type=int, default=0,
                    help="prefork workers for every keep-alive count (0: as many as connections; "
                         "fewer only suits servers whose workers hold waiting connections "
                         "without a process each: httpd-py's WaitingConnections On, nginx)")
    ap.add_argument("--ka-seconds", type=float, default=5.0)
    ap.add_argument("--sections", choices=("none", "stock"), default="none",
                    help="stock: Debian's default per-directory sections in the config")
    args = ap.parse_args()
    if args.alt is not None and "httpd-py-alt" not in args.servers:
        args.servers.append("httpd-py-alt")
    from httpd_py.devtools.responder import CertRef, Responder  # the in-process OCSP responder

    groups = args.groups or None
    with tempfile.TemporaryDirectory(prefix="httpd-py-bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        rport = bl.free_port()
        pki = make_pki(work / "pki", ("bench.test",), ocsp_url=f"http://127.0.0.1:{rport}/")
        with Responder.for_pki(pki, port=rport) as responder:
            docroot = work / "htdocs"
            docroot.mkdir()
            (docroot / "small.txt").write_text("hello from the benchmark\n" * 4)
            staples = {kind: responder.answer(CertRef.of(pki.leaf("bench.test", kind).cert, pki.inter))
                       for kind in ("rsa", "ec")}
            if not args.no_handshake:
                print(f"Full handshakes, TLS 1.3, client groups {groups or '(client default)'}, "
                      f"{args.rounds} x {args.seconds:g} s per cell, 2 client processes; "
                      "CPU = server process group, ms per handshake (median, min-max over rounds).")
                print()
                print("| key | status_request | server | handshakes/s | server CPU ms/handshake | "
                      "range | vs apache2 | vs nginx | stapled |")
                print("|---|---|---|---:|---:|---:|---:|---:|---:|")
                for kind in args.kinds:
                    servers = start_servers(work, pki, kind, staples[kind], args.servers, alt=args.alt)
                    try:
                        for status in (False, True):
                            cells: dict[str, list[dict]] = {n: [] for n in servers}
                            for srv in servers.values():   # warm-up: first fetch, worker start
                                bl.handshake_run(srv, seconds=1.0, clients=2, status=status, cipher=None,
                                                 groups=groups)
                            order = list(servers)
                            for r in range(args.rounds):
                                for name in order[r % len(order):] + order[:r % len(order)]:
                                    cells[name].append(bl.handshake_run(
                                        servers[name], seconds=args.seconds, clients=2, status=status,
                                        cipher=None, groups=groups))
                            med = {n: bl.median([r["cpu_ms"] for r in runs]) for n, runs in cells.items()}
                            for name, runs in cells.items():
                                cpu = [r["cpu_ms"] for r in runs]
                                print(f"| {kind} | {'yes' if status else 'no'} | {name} | "
                                      f"{bl.median([r['per_s'] for r in runs]):.0f} | {med[name]:.2f} | "
                                      f"{_range(cpu, '.2f')} | {_ratio(med[name], med.get('apache2'))} | "
                                      f"{_ratio(med[name], med.get('nginx'))} | "
                                      f"{sum(r['stapled'] for r in runs)}/{sum(r['handshakes'] for r in runs)} |",
                                      flush=True)
                    finally:
                        for srv in servers.values():
                            srv.stop()
                print()
            if not args.no_keepalive:
                for c in args.ka_connections:
                    keepalive_table(work, pki, staples["ec"], args, c)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
