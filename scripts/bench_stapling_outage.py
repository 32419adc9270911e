"""A hung OCSP responder across the moment a staple is due for refresh: httpd-py vs Apache httpd.

Issue 6's acceptance run.  Both servers read the SAME Apache-syntax configuration (httpd-py gets
one extra ``-c "SSLStaplingRenewWindow N"`` so its renew window opens at about the moment Apache's
StandardCacheTimeout expires its cache entry).  The in-process responder answers honestly at
start (responses valid VALIDITY s), then accepts and never answers.  Two clients make status-
requesting TLS 1.2 handshakes back to back for SECONDS, across the refresh moment.  Reported per
server: p99 of the first ten handshakes after start and of 100 steady ones, then during the hang:
handshakes, p50/p99/max latency, how many were slower than the steady p99 + 50 ms, and how many
were stapled with a valid (good) response, with a tryLater, or not at all.

    .venv/bin/python scripts/bench_stapling_outage.py [--seconds 60] [--servers httpd-py apache2]
"""
from __future__ import annotations

import argparse
import datetime as dt
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

from cryptography.x509 import ocsp  # noqa: E402
from OpenSSL import SSL  # noqa: E402

TIMEOUT = 3              # SSLStaplingResponderTimeout
CACHE_TIMEOUT = 15       # SSLStaplingStandardCacheTimeout: Apache refreshes 15 s after a fetch
SKEW = 5                 # SSLStaplingResponseTimeSkew
VALIDITY = 120           # responses valid this long after the fetch: the whole run stays covered


def config(work: Path, port: int, pki, rurl: str) -> Path:
    """benchlib's shared Apache-syntax file, with this bench's stapling timings."""
    (work / "htdocs").mkdir(exist_ok=True)
    pairs = [(pki.leaf("bench.test", k).cert_file, pki.leaf("bench.test", k).key_file) for k in ("rsa", "ec")]
    return bl.apache_config(
        work, port, pairs, stapling=True, docroot=work / "htdocs", log_level="info",
        server_extra=(f"SSLStaplingResponderTimeout {TIMEOUT}\n"
                      f"SSLStaplingStandardCacheTimeout {CACHE_TIMEOUT}\n"
                      f"SSLStaplingResponseTimeSkew {SKEW}"),
        vhost_extra=f"    SSLStaplingForceURL {rurl}")


_CIPHER = {"rsa": b"ECDHE-RSA-AES128-GCM-SHA256", "ec": b"ECDHE-ECDSA-AES128-GCM-SHA256"}


def handshake(port: int, kind: str) -> tuple[str, float]:
    """One handshake asking for the staple: ("good" | "tryLater" | other status | "none", s)."""
    got: list[bytes] = []
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_cipher_list(_CIPHER[kind])
    ctx.set_ocsp_client_callback(lambda conn, der, data: (data.append(der), True)[1], got)
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.settimeout(None)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 60, 0))
    try:
        c = SSL.Connection(ctx, s)
        c.set_tlsext_host_name(b"bench.test")
        c.request_ocsp()
        c.set_connect_state()
        t0 = time.perf_counter()
        try:
            c.do_handshake()
        except SSL.Error:
            return "failed", time.perf_counter() - t0
        took = time.perf_counter() - t0
    finally:
        s.close()
    if not got or not got[0]:
        return "none", took
    r = ocsp.load_der_ocsp_response(got[0])
    if r.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return {3: "tryLater"}.get(r.response_status.value, r.response_status.name), took
    return r.certificate_status.name.lower(), took


def warm_client(pki) -> None:
    """Run this process's client code paths once (OpenSSL's algorithm fetches, Python's
    specialised bytecode) in memory against the bench's own certificates, so that the "first
    ten" figures time the server's first handshakes, not the client's."""
    from httpd_py.tls.sites import memory_handshake
    for kind in ("rsa", "ec"):
        leaf = pki.leaf("bench.test", kind)
        sctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        sctx.use_certificate_chain_file(str(leaf.cert_file))
        sctx.use_privatekey_file(str(leaf.key_file))
        cctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        cctx.set_max_proto_version(SSL.TLS1_2_VERSION)
        cctx.set_cipher_list(_CIPHER[kind])
        cctx.set_ocsp_client_callback(lambda conn, der, data: True)
        memory_handshake(sctx, cctx, status_request=True)


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def run_one(name: str, work: Path, pki, seconds: float) -> dict:
    from httpd_py.devtools.responder import Responder
    # thisUpdate 5 min back (the responder's habit), nextUpdate VALIDITY s after the fetch
    responder = Responder.for_pki(pki, validity=dt.timedelta(seconds=300 + VALIDITY)).start()
    port = bl.free_port()
    conf = config(work, port, pki, responder.url)
    if name == "apache2":
        argv = [bl.need("apache2"), "-d", str(work), "-f", str(conf), "-DFOREGROUND"]
    else:
        # renew window: serve_until (= fetch + VALIDITY - SKEW) minus this = fetch + CACHE_TIMEOUT
        argv = [str(bl.ROOT / ".venv/bin/httpd-py"), "-d", str(work), "-f", str(conf),
                "-c", f"SSLStaplingRenewWindow {VALIDITY - SKEW - CACHE_TIMEOUT}", "-DFOREGROUND"]
    t_start = time.monotonic()
    server = bl.start(name, argv, port, work / "console.log")
    try:
        # both servers log "resuming normal operations" once their workers run
        deadline = time.monotonic() + 30
        while "resuming normal operations" not in _read(work / "error.log"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} never logged 'resuming normal operations'")
            time.sleep(0.02)
        first = [handshake(port, ("rsa", "ec")[i % 2]) for i in range(10)]
        steady = [handshake(port, ("rsa", "ec")[i % 2])[1] for i in range(100)]
        responder.mode = "hang"
        hung_at = time.monotonic() - t_start
        results: list[tuple[str, float]] = []
        stop = threading.Event()

        def client(k: int) -> None:
            i = k
            while not stop.is_set():
                results.append(handshake(port, ("rsa", "ec")[i % 2]))
                i += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(120)
    finally:
        server.stop()
        responder.stop()
    lat = [t for _, t in results]
    bound = pct(steady, 0.99) + 0.050
    return {
        "server": name, "first_p99": pct([t for _, t in first], 0.99),
        "first_ms": " ".join(f"{t * 1e3:.1f}" for _, t in first),
        "first_statuses": sorted({s for s, _ in first}), "steady_p99": pct(steady, 0.99),
        "hung_at": hung_at, "n": len(results), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99),
        "max": max(lat) if lat else float("nan"), "slow": sum(1 for t in lat if t > bound),
        "good": sum(1 for s, _ in results if s == "good"),
        "trylater": sum(1 for s, _ in results if s == "tryLater"),
        "none": sum(1 for s, _ in results if s in ("none", "failed")),
        "requests": responder.requests,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--servers", nargs="+", default=["httpd-py", "apache2"])
    args = ap.parse_args()
    from httpd_py.devtools.pki import make_pki
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
        tmp_p = Path(tmp)
        tmp_p.chmod(0o755)
        pki = make_pki(tmp_p / "pki", ("bench.test",), ocsp_url=None)
        for p in (tmp_p / "pki").iterdir():
            p.chmod(0o644)                       # www-data reads nothing secret here: a test PKI
        for name in args.servers:
            work = tmp_p / name
            work.mkdir()
            work.chmod(0o755)
            warm_client(pki)
            rows.append(run_one(name, work, pki, args.seconds))
    print(f"Hung responder across the refresh: {args.seconds:g} s of back-to-back status-requesting "
          f"TLS 1.2 handshakes from 2 clients (RSA and ECDSA alternately), 4 prefork workers, "
          f"ResponderTimeout {TIMEOUT} s, Apache's StandardCacheTimeout {CACHE_TIMEOUT} s and "
          f"httpd-py's renew window both due {CACHE_TIMEOUT} s after the first fetch; responder "
          f"hung from the time shown on.\n")
    print("| server | first 10 p99 (ms) | steady p99 (ms) | hung from (s) | handshakes | p50 (ms) "
          "| p99 (ms) | max (ms) | > steady p99 + 50 ms | stapled good | tryLater | no staple "
          "| responder requests |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['server']} | {r['first_p99']*1e3:.1f} | {r['steady_p99']*1e3:.1f} | "
              f"{r['hung_at']:.1f} | {r['n']} | {r['p50']*1e3:.1f} | {r['p99']*1e3:.1f} | "
              f"{r['max']*1e3:.1f} | {r['slow']} | {r['good']} | {r['trylater']} | {r['none']} | "
              f"{r['requests']} |")
    print()
    for r in rows:
        print(f"- {r['server']}: the first ten handshakes after start took {r['first_ms']} ms.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
