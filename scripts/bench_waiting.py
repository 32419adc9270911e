"""Waiting connections (issue 16): idle and keep-alive connections against few workers, httpd-py's
workers' event loop beside apache2 prefork and event, in one run.

    .venv/bin/python scripts/bench_waiting.py [--parts idle keepalive onoff] [--idle 1000]
        [--probes 200] [--ka-seconds 5] [--rounds 3] [--seconds 5] [--servers ...]
    scripts/bench waiting

TLS 1.3 on loopback, clients with TCP_NODELAY (as curl, wrk and browsers: without it a new
connection's request waits 40 ms for the ACK of the client's Finished when the server sends
nothing after the handshake, as httpd-py without session tickets), ECDSA P-256 certificate, a 100-byte file, SSLSessionCache none, tickets
off, no stapling; one Apache-syntax config per server that differs only in its MPM lines (and
httpd-py's ``WaitingConnections``).  Servers:

- httpd-py: prefork workers with ``WaitingConnections On`` (the default, the event loop);
- httpd-py-off: the same with ``WaitingConnections Off`` (one connection per worker);
- apache2-prefork: Debian's apache2, prefork, the same number of worker processes;
- apache2-event: mpm_event with as many worker threads as the others have workers
  (ThreadsPerChild 4), AsyncRequestWorkerFactor at its default (2);
- apache2-event-async: the same with AsyncRequestWorkerFactor 256, so that its per-process cap
  on connections (ThreadsPerChild + idle threads x the factor) admits them all;
- apache2-event-stock: mpm_event as Debian ships it (mpm_event.conf: ThreadsPerChild 25,
  MaxRequestWorkers 150, StartServers 2), whatever the worker count of the others;
- httpd-py-alt (with ``--alt DIR``, e.g. ``git archive HEAD~3 | tar -x -C DIR``): httpd-py On
  run from another tree, for an A/B of a change in the same run.  ``--tree DIR`` runs httpd-py
  itself from DIR (a clean export of a commit) instead of this working tree.

Parts (each server started fresh with ServerLimit = MaxRequestWorkers = the worker count):

idle      ``--idle`` (1000) TLS connections opened against 8 workers (KeepAliveTimeout 300),
          each makes one keep-alive GET and then stays idle (``--in-flight`` (4) opened at a
          time: with as many in flight as threads, apache2-event finds no idle thread and closes
          its idle keep-alive connections; the opening stops after 20 s, or 5 s without
          progress).  Then ``--probes`` new clients
          one after the other, 20 ms apart: connect, handshake, GET with ``Connection: close``,
          a 2 s timeout (stopped after 5 failures in a row); the same probes are run first with
          no idle connection for reference.  Then every held connection asks for the file once
          more, ``--in-flight`` at a time (were they held?).  Server CPU per probe is the
          process group's from /proc (10 ms ticks: read it over 200 probes, not 20).
keepalive wrk -t2 --latency at 16 and 64 connections against 4 workers, ``--rounds`` x
          ``--ka-seconds`` interleaved (the order rotates); requests/s, latency, wrk's socket
          errors, server CPU per request, how many of the connections a server process holds
          half-way through (``ss -p``: those still in the listen queue belong to none), and for
          httpd-py how the connections spread over its workers (connections accepted per
          worker during the run, from the scoreboard; wrk opens one more than -c, and a
          connection accepted after wrk closed it counts too).
onoff     httpd-py On vs Off, same run, interleaved: full handshakes (2 client processes,
          ``--seconds`` per round, bench_handshake's method, 4 workers) and keep-alive with
          workers = connections (16 and 4), as bench_handshake measures keep-alive.
"""
from __future__ import annotations

import argparse
import os
import re
import selectors
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402
from httpd_py.devtools.pki import make_pki  # noqa: E402
from httpd_py.mpm.scoreboard import read_board  # noqa: E402

SERVERS = ("httpd-py", "httpd-py-off", "apache2-prefork", "apache2-event", "apache2-event-async",
           "apache2-event-stock", "httpd-py-alt")
ALT: Path | None = None                 # --alt DIR: the tree "httpd-py-alt" runs from
TREE: Path | None = None                # --tree DIR: the tree httpd-py runs from (None: here)
# Debian's /etc/apache2/mods-available/mpm_event.conf
EVENT_STOCK = """StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150"""
THREADS_PER_CHILD = 4
ASYNC_FACTOR = 256
FILE = "/small.txt"
BODY = b"hello from the benchmark\n" * 4
KEEPALIVE_REQ = f"GET {FILE} HTTP/1.1\r\nHost: bench.test\r\n\r\n".encode()
CLOSE_REQ = f"GET {FILE} HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n".encode()
OPEN_LIMIT, OPEN_STALL = 20.0, 5.0
PROBE_TIMEOUT, PROBE_GAP, PROBE_GIVE_UP = 2.0, 0.02, 5


# --- servers --------------------------------------------------------------------------------------
def start_server(name: str, work: Path, pki, docroot: Path, workers: int, extra: str = "",
                 tag: str = "") -> bl.Server:
    d = work / f"{name}{tag}"
    d.mkdir()
    port = bl.free_port()
    leaf = pki.leaf("bench.test", "ec")
    mpm = "event" if name.startswith("apache2-event") else "prefork"
    lines = [extra] if extra else []
    if name.endswith("-stock"):
        lines.append(EVENT_STOCK)
    elif mpm == "event":
        lines.append(bl.event_mpm(workers, min(workers, THREADS_PER_CHILD),
                                  ASYNC_FACTOR if name.endswith("-async") else None))
    else:
        lines.append(f"ServerLimit {workers}")
    if name.startswith("httpd-py"):
        lines.append(f"WaitingConnections {'Off' if name.endswith('-off') else 'On'}")
    conf = bl.apache_config(d, port, [(leaf.cert_file, leaf.key_file)], stapling=False,
                            workers=workers, max_workers=workers, docroot=docroot, mpm=mpm,
                            server_extra="\n".join(lines))
    env = None
    if name.startswith("apache2"):
        argv = [bl.need("apache2"), "-d", str(d), "-f", str(conf), "-DFOREGROUND"]
    else:
        if name == "httpd-py-alt" and ALT is None:
            raise SystemExit("httpd-py-alt needs --alt DIR")
        tree = ALT if name == "httpd-py-alt" else TREE
        # -P: the current directory (this checkout, when run from it) must not come before
        # PYTHONPATH, or "python -m httpd_py" runs the working tree whatever the tree asked for
        argv = [str(bl.ROOT / ".venv/bin/python"), "-P", "-m", "httpd_py", "-d", str(d), "-f",
                str(conf), "-DFOREGROUND"]
        env = {"PYTHONPATH": str(tree)} if tree is not None else None
    srv = bl.start(name, argv, port, d / "console.log", env=env)
    srv.dir = d                                  # type: ignore[attr-defined]
    # every worker process up (event: its processes; the threads start with them)
    want = 1 + (2 if name.endswith("-stock") else
                -(-workers // THREADS_PER_CHILD) if mpm == "event" else workers)
    deadline = time.monotonic() + 20
    while bl.group_processes(srv.proc.pid) < want and time.monotonic() < deadline:
        time.sleep(0.1)
    return srv


def size(name: str, workers: int) -> str:
    if name.endswith("-stock"):
        return "25-150 threads"
    return f"{workers} threads" if name.startswith("apache2-event") else f"{workers} processes"


def board(srv: bl.Server):
    path = srv.dir / "httpd.scoreboard"          # type: ignore[attr-defined]
    try:
        return read_board(str(path)) if path.exists() else None
    except (OSError, ValueError):
        return None


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_ecdh_curve(bl.DEFAULT_GROUPS)        # the same key exchange for every server
    return ctx


def _complete(buf: bytes) -> bool:
    """A whole response to GET /small.txt is in ``buf``."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", buf[:end], re.I)
    return m is not None and len(buf) >= end + 4 + int(m.group(1))


# --- part 1: idle connections --------------------------------------------------------------------
CONNECTING, HANDSHAKE, READING, IDLE, FAILED = range(5)


class Held:
    __slots__ = ("tls", "state", "buf")

    def __init__(self, tls):
        self.tls, self.state, self.buf = tls, CONNECTING, b""      # wrap_socket took the fd


def _drive(sel, h: Held) -> None:
    """Advance one held connection as far as it goes without blocking."""
    try:
        if h.state == CONNECTING:
            err = h.tls.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
            h.state = HANDSHAKE
        if h.state == HANDSHAKE:
            try:
                h.tls.do_handshake()
            except ssl.SSLWantReadError:
                sel.modify(h.tls, selectors.EVENT_READ, h)
                return
            except ssl.SSLWantWriteError:
                sel.modify(h.tls, selectors.EVENT_WRITE, h)
                return
            h.tls.send(KEEPALIVE_REQ)                # 40 bytes: one record, never partial
            h.state = READING
            h.buf = b""
        while h.state == READING:
            try:
                data = h.tls.recv(65536)
            except ssl.SSLWantReadError:
                sel.modify(h.tls, selectors.EVENT_READ, h)
                return
            if not data:
                raise OSError("closed by the server")
            h.buf += data
            if _complete(h.buf):
                if not h.buf.startswith(b"HTTP/1.1 200"):
                    raise OSError(h.buf[:40])
                h.state = IDLE
                sel.unregister(h.tls)
    except (OSError, ssl.SSLError, ValueError):
        h.state = FAILED
        try:
            sel.unregister(h.tls)
        except (KeyError, ValueError):
            pass
        h.tls.close()


def _run_until(sel, held: list[Held], pending, limit: float, stall: float) -> float:
    """Drive the connections in ``pending`` state until none is, or time runs out; seconds."""
    t0 = last = time.monotonic()
    while True:
        now = time.monotonic()
        busy = sum(1 for h in held if h.state in pending)
        if not busy or now - t0 > limit or now - last > stall:
            return now - t0
        for key, _ in sel.select(0.2):
            before = key.data.state
            _drive(sel, key.data)
            if key.data.state != before:
                last = time.monotonic()


def open_idle(port: int, n: int, ctx: ssl.SSLContext, in_flight_max: int) -> tuple[list[Held], float]:
    sel = selectors.DefaultSelector()
    held: list[Held] = []
    t0 = last = time.monotonic()
    while True:
        now = time.monotonic()
        in_flight = sum(1 for h in held if h.state in (CONNECTING, HANDSHAKE, READING))
        while len(held) < n and in_flight < in_flight_max:
            raw = socket.socket()
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = ctx.wrap_socket(raw, server_hostname="bench.test", do_handshake_on_connect=False)
            tls.setblocking(False)
            tls.connect_ex(("127.0.0.1", port))         # EINPROGRESS; sets up the TLS object
            h = Held(tls)
            held.append(h)
            sel.register(tls, selectors.EVENT_WRITE, h)
            in_flight += 1
        if not in_flight or now - t0 > OPEN_LIMIT or now - last > OPEN_STALL:
            break
        for key, _ in sel.select(0.2):
            before = key.data.state
            _drive(sel, key.data)
            if key.data.state != before:
                last = time.monotonic()
    sel.close()
    return held, time.monotonic() - t0


def reuse_idle(held: list[Held], in_flight: int) -> int:
    """Ask every idle connection for the file again, ``in_flight`` at a time (a burst of them
    all would measure apache2-event's closing of keep-alive connections when no thread is idle,
    not whether they are still held); how many answer."""
    idle = [h for h in held if h.state == IDLE]
    for i in range(0, len(idle), in_flight):
        sel = selectors.DefaultSelector()
        group = idle[i:i + in_flight]
        for h in group:
            try:
                h.tls.send(KEEPALIVE_REQ)
            except (OSError, ssl.SSLError):
                h.state = FAILED
                continue
            h.state, h.buf = READING, b""
            sel.register(h.tls, selectors.EVENT_READ, h)
        _run_until(sel, group, (READING,), 10.0, OPEN_STALL)
        sel.close()
    return sum(1 for h in held if h.state == IDLE)


def close_all(held: list[Held]) -> None:
    for h in held:
        try:
            h.tls.close()
        except OSError:
            pass


def probe(port: int, ctx: ssl.SSLContext, n: int, srv: bl.Server) -> dict:
    """``n`` new clients one after the other: latencies of the successful ones, failures."""
    lat, failures, in_a_row = [], 0, 0
    cpu0 = bl.group_cpu_seconds(srv.proc.pid)
    for _ in range(n):
        t0 = time.monotonic()
        ok = False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as raw:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with ctx.wrap_socket(raw, server_hostname="bench.test") as s:
                    s.settimeout(max(0.01, t0 + PROBE_TIMEOUT - time.monotonic()))
                    s.sendall(CLOSE_REQ)
                    buf = b""
                    while not _complete(buf):
                        s.settimeout(max(0.01, t0 + PROBE_TIMEOUT - time.monotonic()))
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                    ok = buf.startswith(b"HTTP/1.1 200") and _complete(buf)
        except (OSError, ssl.SSLError):
            ok = False
        took = time.monotonic() - t0
        if ok:
            lat.append(took)
            in_a_row = 0
        else:
            failures += 1
            in_a_row += 1
            if in_a_row >= PROBE_GIVE_UP:
                break
        time.sleep(PROBE_GAP)
    cpu = bl.group_cpu_seconds(srv.proc.pid) - cpu0
    return {"ok": len(lat), "failed": failures, "lat": lat,
            "cpu_ms": 1000 * cpu / max(1, len(lat) + failures)}


def pct(values: list[float], p: float, scale: float = 1000.0) -> str:
    if not values:
        return "-"
    v = sorted(values)
    return f"{v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] * scale:.1f}"


def waiting_spread(srv: bl.Server) -> str:
    """httpd-py: idle keep-alive connections held per worker (scoreboard), e.g. 130/127/..."""
    view = board(srv)
    if view is None:
        return "-"
    return "/".join(str(s.waiting[2]) for s in view.workers())


def part_idle(work: Path, pki, docroot: Path, args) -> None:
    ctx = client_context()
    workers = 8
    print(f"Idle keep-alive TLS connections: {args.idle} opened against {workers} workers "
          f"(KeepAliveTimeout 300), each after one keep-alive GET, {args.in_flight} being opened at a time; then {args.probes} new clients "
          f"one after the other (TLS 1.3 handshake + GET, Connection: close, timeout "
          f"{PROBE_TIMEOUT:g} s; stopped after {PROBE_GIVE_UP} failures in a row), first with no "
          f"idle connection, then with them held.")
    print()
    print("| server | held (answered) | opening s | probes, none idle: p50 ms | p99 ms | "
          "server CPU ms/probe | probes, idle held: ok | failed | p50 ms | p99 ms | max ms | "
          "server CPU ms/probe | held still answering | held per worker |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in args.servers:
        srv = start_server(name, work, pki, docroot, workers, "KeepAliveTimeout 300", tag="-idle")
        held: list[Held] = []
        try:
            probe(srv.port, ctx, 10, srv)                  # warm-up
            base = probe(srv.port, ctx, args.probes, srv)
            held, opening = open_idle(srv.port, args.idle, ctx, args.in_flight)
            answered = sum(1 for h in held if h.state == IDLE)
            spread = waiting_spread(srv) if name.startswith("httpd-py") else "-"
            loaded = probe(srv.port, ctx, args.probes, srv)
            still = reuse_idle(held, args.in_flight)
        finally:
            close_all(held)
            srv.stop()
        tried = "" if len(held) >= args.idle else f" (opening stalled at {len(held)})"
        print(f"| {name} | {answered}/{args.idle}{tried} | {opening:.1f} | {pct(base['lat'], 50)} | "
              f"{pct(base['lat'], 99)} | {base['cpu_ms']:.2f} | {loaded['ok']} | "
              f"{loaded['failed']} | {pct(loaded['lat'], 50)} | {pct(loaded['lat'], 99)} | "
              f"{pct(loaded['lat'], 100)} | {loaded['cpu_ms']:.2f} | {still}/{answered} | "
              f"{spread} |", flush=True)
    print()


# --- part 2 and 3: wrk keep-alive, handshakes ----------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def accepted(port: int) -> int:
    """Established connections to ``port`` that a server process holds (accepted); those still
    in the listen queue belong to no process, so ``ss -p`` shows no user for them."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if "users:" in line)


def wrk(srv: bl.Server, seconds: float, connections: int) -> dict:
    cpu0 = bl.group_cpu_seconds(srv.proc.pid)
    b0 = board(srv)
    proc = subprocess.Popen([bl.need("wrk"), "-t2", f"-c{connections}", f"-d{seconds:g}s",
                             "--latency", "--timeout", "2s", f"https://127.0.0.1:{srv.port}{FILE}"],
                            stdout=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate(timeout=seconds / 2)
        held = -1                                 # wrk ended early
    except subprocess.TimeoutExpired:
        held = accepted(srv.port)                # half-way: how many connections are served
        out, _ = proc.communicate(timeout=seconds + 60)
    cpu = bl.group_cpu_seconds(srv.proc.pid) - cpu0
    b1 = board(srv)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    n = int(total.group(1)) if total else 0
    lat = {p: _ms(m.group(1)) for p in ("50", "99")
           for m in [re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)] if m}
    errs = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    err = "; ".join(x for x in ((errs.group(1) if errs else ""),
                                (f"non-2xx {non2xx.group(1)}" if non2xx else "")) if x)
    spread = ""
    if b0 is not None and b1 is not None:
        before = {s.pid: s.connections for s in b0.workers()}
        got = sorted((s.connections - before.get(s.pid, 0) for s in b1.workers()), reverse=True)
        spread = "/".join(str(g) for g in got)
    return {"per_s": float(rps.group(1)) if rps else 0.0, "requests": n,
            "cpu_us": 1e6 * cpu / max(n, 1), "p50": lat.get("50", float("nan")),
            "p99": lat.get("99", float("nan")), "errors": err, "spread": spread, "held": held}


def _rng(values: list[float], fmt: str) -> str:
    return f"{format(min(values), fmt)}-{format(max(values), fmt)}"


def wrk_table(work: Path, pki, docroot: Path, args, names: list[str], connections: int,
              workers: int, tag: str) -> dict[str, list[dict]]:
    servers = {n: start_server(n, work, pki, docroot, workers, tag=tag) for n in names}
    runs: dict[str, list[dict]] = {n: [] for n in servers}
    try:
        for srv in servers.values():
            wrk(srv, 1, connections)                       # warm-up
        order = list(servers)
        for r in range(args.rounds):
            for name in order[r % len(order):] + order[:r % len(order)]:
                runs[name].append(wrk(servers[name], args.ka_seconds, connections))
    finally:
        for srv in servers.values():
            srv.stop()
    print("| server | workers | connections accepted half-way | requests/s (median) | range | "
          "server CPU us/request | latency p50 ms | p99 ms | wrk socket errors (all rounds) | "
          "connections per worker (httpd-py) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---|---|")
    for name, v in runs.items():
        errors = "; ".join(x["errors"] for x in v if x["errors"]) or "none"
        held = "/".join(str(x["held"]) for x in v)
        print(f"| {name} | {size(name, workers)} | {held} of {connections} | "
              f"{bl.median([x['per_s'] for x in v]):.0f} | "
              f"{_rng([x['per_s'] for x in v], '.0f')} | {bl.median([x['cpu_us'] for x in v]):.0f} | "
              f"{bl.median([x['p50'] for x in v]):.1f} | {bl.median([x['p99'] for x in v]):.1f} | "
              f"{errors} | {' '.join(x['spread'] for x in v) or '-'} |")
    print(flush=True)
    return runs


def part_keepalive(work: Path, pki, docroot: Path, args) -> None:
    workers = 4
    for c in args.ka_connections:
        print(f"Keep-alive GET of a 100-byte file over TLS 1.3 (ECDSA), wrk -t2 -c{c} --latency, "
              f"{args.rounds} x {args.ka_seconds:g} s interleaved, {workers} workers for "
              f"{c} connections (apache2-event: {workers} threads).")
        print()
        wrk_table(work, pki, docroot, args, args.servers, c, workers, f"-ka{c}")


def part_onoff(work: Path, pki, docroot: Path, args) -> None:
    names = ["httpd-py", "httpd-py-off"] + (["httpd-py-alt"] if ALT is not None else [])
    print(f"WaitingConnections On vs Off, same run.  Full handshakes (TLS 1.3, X25519, ECDSA, "
          f"no resumption, one GET each, 2 client processes), 4 workers, {args.rounds} x "
          f"{args.seconds:g} s interleaved:")
    print()
    servers = {n: start_server(n, work, pki, docroot, 4, tag="-hs") for n in names}
    cells: dict[str, list[dict]] = {n: [] for n in names}
    try:
        for srv in servers.values():
            bl.handshake_run(srv, seconds=1.0, clients=2, status=False, cipher=None)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                cells[name].append(bl.handshake_run(servers[name], seconds=args.seconds, clients=2,
                                                    status=False, cipher=None))
    finally:
        for srv in servers.values():
            srv.stop()
    print("| server | handshakes/s (median) | server CPU ms/handshake (median) | range |")
    print("|---|---:|---:|---:|")
    for name, v in cells.items():
        cpu = [x["cpu_ms"] for x in v]
        print(f"| {name} | {bl.median([x['per_s'] for x in v]):.0f} | {bl.median(cpu):.3f} | "
              f"{_rng(cpu, '.3f')} |")
    print()
    for c in args.onoff_connections:
        print(f"Keep-alive, wrk -t2 -c{c}, workers = connections = {c} (what WaitingConnections "
              f"Off needs), {args.rounds} x {args.ka_seconds:g} s interleaved:")
        print()
        wrk_table(work, pki, docroot, args, names, c, c, f"-onoff{c}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", nargs="+", default=["idle", "keepalive", "onoff"],
                    choices=("idle", "keepalive", "onoff"))
    ap.add_argument("--servers", nargs="+", default=list(SERVERS[:-1]), choices=SERVERS)
    ap.add_argument("--alt", type=Path, default=None,
                    help="another httpd-py tree, run as server 'httpd-py-alt' (A/B)")
    ap.add_argument("--tree", type=Path, default=None,
                    help="run httpd-py from this tree (e.g. `git archive HEAD | tar -x -C DIR`: "
                         "a commit, not a working tree other people are editing)")
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--in-flight", type=int, default=4,
                    help="idle part: connections being opened at once (handshake + first GET)")
    ap.add_argument("--ka-connections", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--onoff-connections", type=int, nargs="+", default=[16, 4])
    ap.add_argument("--ka-seconds", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=5.0, help="per handshake round (onoff)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    global ALT, TREE
    ALT, TREE = args.alt, args.tree
    if ALT is not None and "httpd-py-alt" not in args.servers:
        args.servers.append("httpd-py-alt")
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="httpd-py-waiting-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        pki = make_pki(work / "pki", ("bench.test",), ocsp_url=None, kinds=("ec",))
        docroot = work / "htdocs"
        docroot.mkdir()
        (docroot / FILE.lstrip("/")).write_bytes(BODY)
        if "idle" in args.parts:
            part_idle(work, pki, docroot, args)
        if "keepalive" in args.parts:
            part_keepalive(work, pki, docroot, args)
        if "onoff" in args.parts:
            part_onoff(work, pki, docroot, args)
    print(f"cpu: {os.cpu_count()} cores; load average (1/5/15 min) before "
          f"{'/'.join(f'{x:.2f}' for x in load0)}, after "
          f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
