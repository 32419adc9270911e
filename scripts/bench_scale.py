"""Speed at scale: N SSL vhosts with N certificates, httpd-py beside apache2 on the same config.

    scripts/bench scale [--n 10,100,1000] [--n 5000] [--servers httpd-py apache2]
    .venv/bin/python scripts/bench_scale.py --n 10 --seconds 3 --no-refresh   # a quick look

For each N (``gen_vhosts.py``: N name-based vhosts on one address, each with its own
certificate, RSA-2048 and P-256 mixed, three intermediates, one OCSP responder answering all
of them, responses valid ``--validity`` seconds), each server in turn (the order alternates
with N) on the same Apache-syntax file:

1. config: ``-t`` (whole command; httpd-py also with ``-D NO_STAPLING_PREFLIGHT``, which skips
   its responder preflight and is the figure to compare with ``apache2 -t``) and httpd-py's
   ``config.load`` + ``check`` in a fresh process;
2. start-up: from the server's exec until the first handshake (SNI the first name, with
   status_request) is served a good staple, and until every name has been (sweeps over the
   names not yet stapled, by two client processes; a staple counts when it is a successful
   response, status good, for the served certificate's serial);
3. steady handshakes: two client processes make full handshakes (TLS 1.3, X25519, no
   resumption, status_request, one small GET each) for ``--seconds``, the SNI name of each
   cycling through all N names; server CPU per handshake from /proc (the whole process group),
   client-side latency connect -> handshake done (p50/p99), stapled share;
4. memory: PSS (``/proc/PID/smaps_rollup``: shared pages divided among their users) of the
   master, each worker, the helpers, and the total; the master's RSS;
5. stapling cache: entries and bytes (httpd-py: the staple store's files too);
6. refresh window (httpd-py; ``--no-refresh`` skips it): the responder's requests per second
   from the start until every certificate was fetched a second time by the background stapler
   (renewal at half the response's life plus jitter), so a burst of N shows as one tall bucket.
   apache2 fetches on demand, in handshakes: its timeline is the start-up sweep.

Results print as Markdown; ``--json FILE`` also writes them for ``scripts/bench report``.
The responder runs in this process; the servers' workers run as www-data.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Process, Queue
from pathlib import Path

import benchlib as bl


def _early_tree() -> str | None:
    """--tree DIR, read before anything imports httpd_py: this process then reads the same
    snapshot the server runs (the scoreboard, the shmcb cache, the responder's builders)."""
    for i, a in enumerate(sys.argv):
        if a == "--tree" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--tree="):
            return a.split("=", 1)[1]
    return None


if _early_tree():
    sys.path.insert(0, str(Path(_early_tree()).resolve()))

import gen_vhosts as gv  # noqa: E402

HERE = Path(__file__).resolve().parent


# -- clients ------------------------------------------------------------------------------------

def _client_ctx():
    from OpenSSL import SSL
    from OpenSSL._util import lib as _lib
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.set_options(SSL.OP_NO_TICKET)
    _lib.SSL_CTX_set1_curves_list(ctx._context, bl.DEFAULT_GROUPS.encode())
    return ctx


def _handshake(ctx, port: int, name: str, got: list, get: bool = True) -> tuple[float, bytes, int]:
    """One full handshake with SNI ``name`` and status_request (+ one GET); (seconds to the
    end of the handshake, staple bytes, served certificate's serial)."""
    from OpenSSL import SSL
    got.clear()
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    # as curl, wrk and browsers: a Nagle client's request would wait for the delayed ACK of its
    # Finished when the server sends no ticket after the handshake (40 ms; see benchlib)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, (30).to_bytes(8, "little") + bytes(8))
    c = SSL.Connection(ctx, s)
    c.set_tlsext_host_name(name.encode())
    c.request_ocsp()
    c.set_connect_state()
    try:
        c.do_handshake()
        dt = time.perf_counter() - t0
        cert = c.get_peer_certificate()
        serial = cert.get_serial_number() if cert is not None else 0
        if get:
            c.sendall(b"GET /small.txt HTTP/1.1\r\nHost: " + name.encode() + b"\r\nConnection: close\r\n\r\n")
            try:
                while c.recv(65536):
                    pass
            except (SSL.ZeroReturnError, SSL.SysCallError):
                pass
    finally:
        c.close()
        s.close()
    return dt, (got[0] if got else b""), serial


def good_staple(der: bytes, serial: int) -> bool:
    from cryptography.x509 import ocsp
    if not der:
        return False
    try:
        r = ocsp.load_der_ocsp_response(der)
        return (r.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
                and r.certificate_status == ocsp.OCSPCertStatus.GOOD and r.serial_number == serial)
    except Exception:
        return False


def _sweep_worker(port: int, names: list[str], q: Queue) -> None:
    """Each name once; report the names served a good staple."""
    ctx = _client_ctx()
    got: list = []
    ctx.set_ocsp_client_callback(lambda conn, data, _: got.append(data) or True, None)
    ok, errors = [], 0
    for name in names:
        try:
            _, der, serial = _handshake(ctx, port, name, got, get=False)
        except Exception:
            errors += 1
            continue
        if good_staple(der, serial):
            ok.append(name)
    q.put((ok, errors))


def sweep(port: int, names: list[str], clients: int = 2) -> tuple[set[str], int]:
    q: Queue = Queue()
    parts = [names[i::clients] for i in range(clients)]
    procs = [Process(target=_sweep_worker, args=(port, p, q)) for p in parts if p]
    for p in procs:
        p.start()
    ok: set[str] = set()
    errors = 0
    for _ in procs:
        o, e = q.get(timeout=600)
        ok.update(o)
        errors += e
    for p in procs:
        p.join(timeout=10)
    return ok, errors


def _steady_worker(port: int, names: list[str], offset: int, seconds: float, q: Queue) -> None:
    ctx = _client_ctx()
    got: list = []
    ctx.set_ocsp_client_callback(lambda conn, data, _: got.append(data) or True, None)
    lat, stapled, errors, i = [], 0, 0, offset
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        name = names[i % len(names)]
        i += 1
        try:
            dt, der, _ = _handshake(ctx, port, name, got)
        except Exception:
            errors += 1
            continue
        lat.append(dt)
        stapled += bool(der)
    q.put((lat, stapled, errors))


def steady(server: bl.Server, names: list[str], seconds: float, clients: int = 2) -> dict:
    q: Queue = Queue()
    cpu0 = bl.group_cpu_seconds(server.proc.pid)
    t0 = time.monotonic()
    procs = [Process(target=_steady_worker, args=(server.port, names, k * len(names) // clients,
                                                  seconds, q)) for k in range(clients)]
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    elapsed = time.monotonic() - t0
    cpu = bl.group_cpu_seconds(server.proc.pid) - cpu0
    lat = sorted(x for r in results for x in r[0])
    n = len(lat)
    return {"handshakes": n, "per_s": n / elapsed, "cpu_ms": 1000 * cpu / max(n, 1),
            "p50_ms": 1000 * lat[n // 2] if n else None,
            "p99_ms": 1000 * lat[min(n - 1, int(n * 0.99))] if n else None,
            "stapled": sum(r[1] for r in results), "errors": sum(r[2] for r in results),
            "latencies_ms": [round(1000 * x, 3) for x in lat[:: max(1, n // 2000)]]}


# -- memory -------------------------------------------------------------------------------------

def smaps(pid: int) -> dict[str, int]:
    """kB fields of /proc/PID/smaps_rollup (Rss, Pss, Pss_Anon, ...)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            k, _, v = line.partition(":")
            parts = v.split()
            if parts and parts[0].isdigit():
                out[k.strip()] = int(parts[0])
    except OSError:
        pass
    return out


def group_pids(pgid: int) -> list[tuple[int, int]]:
    """(pid, ppid) of every process in the group."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        if int(f[2]) == pgid:
            out.append((int(entry), int(f[1])))
    return out


def memory(server: bl.Server, name: str, work: Path) -> dict:
    master = server.proc.pid
    workers: set[int] = set()
    if is_httpd_py(name):
        try:
            from httpd_py.mpm.scoreboard import read_board
            board = read_board(str(work / "httpd.scoreboard"))
            workers = {s.pid for s in board.slots if s.pid and s.state != "dead"}
        except (OSError, ValueError):
            pass
    procs = group_pids(master)
    if not is_httpd_py(name):
        workers = {p for p, pp in procs if p != master}
    rows = {p: smaps(p) for p, _ in procs}
    w = [rows[p].get("Pss", 0) for p in rows if p in workers]
    helpers = [rows[p].get("Pss", 0) for p in rows if p != master and p not in workers]
    return {"master_pss_kb": rows.get(master, {}).get("Pss", 0),
            "master_rss_kb": rows.get(master, {}).get("Rss", 0),
            "worker_pss_kb": w, "worker_pss_mean_kb": statistics.mean(w) if w else 0,
            "worker_anon_kb": [rows[p].get("Pss_Anon", 0) for p in rows if p in workers],
            "helper_pss_kb": helpers, "total_pss_kb": sum(r.get("Pss", 0) for r in rows.values()),
            "processes": len(rows)}


# -- servers ------------------------------------------------------------------------------------

ALT: dict[str, Path] = {}         # --alt NAME=DIR: other httpd-py trees, servers "httpd-py-NAME"
TREE: Path | None = None          # --tree DIR: the tree "httpd-py" runs from (None: this checkout)


def argv_for(name: str, conf: Path, work: Path, extra: list[str] = ()) -> tuple[list[str], dict | None]:
    """(argv, environment additions) to run server ``name`` on ``conf``."""
    if name == "apache2":
        return [bl.need("apache2"), "-d", str(work), "-f", str(conf), *extra], None
    if name == "httpd-py" and TREE is None:
        return [str(bl.ROOT / ".venv/bin/httpd-py"), "-d", str(work), "-f", str(conf), *extra], None
    tree = TREE if name == "httpd-py" else ALT.get(name[len("httpd-py-"):])
    if tree is None:
        raise SystemExit(f"{name} needs --alt {name[len('httpd-py-'):]}=DIR")
    # -P: the current directory must not come before PYTHONPATH
    return ([str(bl.ROOT / ".venv/bin/python"), "-P", "-m", "httpd_py", "-d", str(work), "-f",
             str(conf), *extra], {"PYTHONPATH": str(tree)})


def tree_of(name: str) -> Path:
    if name == "httpd-py":
        return TREE or bl.ROOT
    return ALT.get(name[len("httpd-py-"):], bl.ROOT)
    raise SystemExit(f"unknown server {name!r}")


def is_httpd_py(name: str) -> bool:
    return name.startswith("httpd-py")


def timed(cmd: tuple[list[str], dict | None], runs: int = 3) -> tuple[float, str]:
    """Median wall time of ``runs`` runs (one when the first takes over 5 s) and the last line."""
    argv, env = cmd
    env = None if env is None else {**os.environ, **env}
    times, out = [], ""
    for _ in range(runs):
        if times and times[0] > 5.0:
            break
        t0 = time.perf_counter()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        times.append(time.perf_counter() - t0)
        out = (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]
        out = out[0]
    return statistics.median(times), out


def config_times(name: str, conf: Path, work: Path) -> dict:
    res = {}
    t, last = timed(argv_for(name, conf, work, ["-t"]), runs=3)
    res["t_s"], res["t_last_line"] = t, last
    if is_httpd_py(name):
        t, _ = timed(argv_for(name, conf, work, ["-t", "-D", "NO_STAPLING_PREFLIGHT"]), runs=3)
        res["t_nopreflight_s"] = t
        code = ("import time,sys; t0=time.perf_counter(); from httpd_py.config import load, check; "
                "t1=time.perf_counter(); cfg=load(sys.argv[1], server_root=sys.argv[2]); "
                "t2=time.perf_counter(); check(cfg); t3=time.perf_counter(); "
                "print(t1-t0, t2-t1, t3-t2)")
        env = {**os.environ, "PYTHONPATH": str(tree_of(name))}
        p = subprocess.run([str(bl.ROOT / ".venv/bin/python"), "-P", "-c", code, str(conf), str(work)],
                           capture_output=True, text=True, timeout=300, env=env)
        try:
            imp, load, chk = (float(x) for x in p.stdout.split())
            res.update(import_s=imp, load_s=load, check_s=chk)
        except ValueError:
            res["load_error"] = (p.stderr or p.stdout)[-500:]
    return res


def start_server(name: str, conf: Path, work: Path, port: int) -> tuple[bl.Server, float]:
    out = open(work / "console.log", "ab")
    argv, env = argv_for(name, conf, work, ["-DFOREGROUND"])
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                            env=None if env is None else {**os.environ, **env})
    return bl.Server(name, proc, port), t0


def first_stapled(server: bl.Server, name: str, serial_of: dict[str, int], timeout: float) -> float:
    """Monotonic time of the first handshake served a good staple for ``name``."""
    ctx = _client_ctx()
    got: list = []
    ctx.set_ocsp_client_callback(lambda conn, data, _: got.append(data) or True, None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with status {server.proc.returncode}")
        try:
            _, der, serial = _handshake(ctx, server.port, name, got, get=False)
        except OSError:
            time.sleep(0.02)          # not listening yet: poll the port
            continue
        except Exception:
            time.sleep(0.02)
            continue
        if good_staple(der, serial):
            return time.monotonic()
        time.sleep(0.01)
    raise RuntimeError(f"{server.name}: no stapled handshake within {timeout:.0f} s")


def all_stapled(server: bl.Server, names: list[str], timeout: float) -> tuple[float | None, int, int]:
    """Sweep the names not yet served a good staple until none is left; (monotonic time when
    the last one was, sweeps, names never stapled)."""
    left = list(names)
    deadline = time.monotonic() + timeout
    sweeps = 0
    while left and time.monotonic() < deadline:
        ok, _ = sweep(server.port, left)
        sweeps += 1
        left = [n for n in left if n not in ok]
    return (time.monotonic() if not left else None), sweeps, len(left)


def wait_workers(server: bl.Server, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while bl.group_processes(server.proc.pid) < n and time.monotonic() < deadline:
        time.sleep(0.1)


def dir_bytes(path: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                size += os.path.getsize(os.path.join(root, n))
                files += 1
            except OSError:
                pass
    return files, size


def cache_figures(name: str, work: Path, size_bytes: int) -> dict:
    """The stapling cache's configured size; for httpd-py its entries (read through the shmcb
    provider's own status()) and the staple store's files."""
    res: dict = {"cache_bytes": size_bytes}
    if not is_httpd_py(name):
        return res
    path = work / "stapling"
    if path.is_file():
        from httpd_py.socache.shmcb import ShmcbCache
        c = ShmcbCache(str(path), size_bytes)
        try:
            c.init("mod_ssl-staple")
            res["cache_entries"] = c.status().get("entries")
        except Exception as e:  # best effort: a figure, not a check
            res["cache_entries_error"] = f"{type(e).__name__}: {e}"
        finally:
            c.destroy()
    for d in sorted(work.rglob("*staples*")):
        if d.is_dir():
            files, size = dir_bytes(d)
            res["store_files"], res["store_bytes"], res["store_dir"] = files, size, str(d)
            break
    return res


def refresh_window(responder: gv.MultiResponder, t_start: float, serials: list[int],
                   timeout: float) -> dict:
    """Wait until every serial was asked twice (start-up fetch + one background refresh)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with responder._lock:
            done = sum(1 for s in serials if responder.serials.get(s, 0) >= 2)
        if done >= len(serials):
            break
        time.sleep(0.5)
    t_end = time.monotonic()
    with responder._lock:
        times = sorted(t for t in responder.times if t >= t_start)
        refreshed = sum(1 for s in serials if responder.serials.get(s, 0) >= 2)
    return {"timeline": responder.rate(t_start, t_end), "refreshed": refreshed, "times": times}


def window_stats(times: list[float], t_start: float, n: int) -> dict:
    """Split the requests into the start-up fetches (each serial's first) and the rest."""
    if not times:
        return {}
    later = times[n:] if len(times) > n else []
    res = {"startup_span_s": (times[min(n, len(times)) - 1] - times[0]) if times else 0}
    if later:
        span = max(later[-1] - later[0], 1e-3)
        buckets: dict[int, int] = {}
        for t in later:
            buckets[int(t - t_start)] = buckets.get(int(t - t_start), 0) + 1
        res.update(refresh_requests=len(later), refresh_span_s=span,
                   refresh_mean_per_s=len(later) / max(span, 1.0),
                   refresh_peak_per_s=max(buckets.values()),
                   refresh_starts_s=later[0] - t_start)
    return res


# -- one N --------------------------------------------------------------------------------------

def run_one(name: str, fleet: gv.Fleet, base: Path, responder: gv.MultiResponder, args) -> dict:
    work = base / f"{name}-{len(fleet.certs)}"
    work.mkdir()
    work.chmod(0o755)
    port = bl.free_port()
    size = max(512000, 4096 * len(fleet.certs))
    conf = gv.write_config(fleet, port, workers=args.workers, work=work, stapling_cache_bytes=size)
    names = fleet.names
    serial_of = {c.name: c.cert.serial_number for c in fleet.certs}
    res: dict = {"server": name, "n": len(names)}
    res["config"] = config_times(name, conf, work)
    responder.reset()
    server, t0 = start_server(name, conf, work, port)
    try:
        t_first = first_stapled(server, names[0], serial_of, timeout=args.start_timeout)
        res["first_stapled_s"] = t_first - t0
        t_all, sweeps, missing = all_stapled(server, names, timeout=args.start_timeout)
        res["all_stapled_s"] = None if t_all is None else t_all - t0
        res["sweeps"], res["never_stapled"] = sweeps, missing
        res["startup_requests"] = responder.count_since(0)
        wait_workers(server, args.workers + 1)
        res["steady"] = steady(server, names, args.seconds)
        res["memory"] = memory(server, name, work)
        res["cache"] = cache_figures(name, work, size)
        if name == "httpd-py" and not args.no_refresh:
            serials = [c.cert.serial_number for c in fleet.certs]
            rw = refresh_window(responder, t0, serials, timeout=args.validity * 1.5 + 60)
            res["refresh"] = {"timeline": rw["timeline"], "refreshed": rw["refreshed"],
                              **window_stats(rw["times"], t0, len(serials))}
        else:
            res["refresh"] = {"timeline": responder.rate(t0, time.monotonic())}
    finally:
        server.stop()
    log = work / "error.log"
    if log.exists():
        errs = [ln for ln in log.read_text(errors="replace").splitlines()
                if ":error]" in ln or ":emerg]" in ln or ":crit]" in ln]
        res["error_lines"] = len(errs)
        res["error_sample"] = errs[:3]
    return res


# -- responder load vs workers and fleet size -------------------------------------------------

def _sweep_same_order(port: int, names: list[str], clients: int, q: Queue) -> None:
    """``clients`` processes handshaking every name in the same order at the same time: the
    same certificate's first handshakes race each other (Apache's on-demand single flight)."""
    procs = [Process(target=_sweep_worker, args=(port, names, q)) for _ in range(clients)]
    for p in procs:
        p.start()
    return procs


def start_redis() -> tuple[subprocess.Popen, int, Path]:
    exe = shutil.which("redis-server") or bl.need("redis-server")
    port = bl.free_port()
    d = Path(tempfile.mkdtemp(prefix="scale-redis-"))
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(d), "--loglevel", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    bl.wait_port(port)
    return proc, port, d


def responder_load(fleet: gv.Fleet, base: Path, responder: gv.MultiResponder, args) -> list[dict]:
    """Responder requests for the fleet's N certificates from the start of ``k`` servers of one
    kind (each with W prefork workers, all started together) until each server has served
    every name once to ``clients`` clients racing in the same order: vs W (k = 1) and vs k
    (W = 4), with a stapling cache per server (shmcb) or one shared by the servers (redis)."""
    names = fleet.names
    serial_of = {c.name: c.cert.serial_number for c in fleet.certs}
    rows = []
    plan = [("shmcb", w, 1) for w in args.fleet_workers]
    plan += [(cache, 4, k) for cache in ("shmcb", "redis") for k in args.fleet_sizes
             if not (cache == "shmcb" and k == 1 and 4 in args.fleet_workers)]
    redis = start_redis() if any(c == "redis" for c, _, _ in plan) else None
    try:
        for cache, workers, k in plan:
            for name in args.servers:
                if name.startswith("httpd-py-"):
                    continue
                if redis is not None:
                    subprocess.run([shutil.which("redis-cli") or "redis-cli", "-p", str(redis[1]),
                                    "FLUSHALL"], capture_output=True, timeout=30)
                responder.reset()
                servers = []
                try:
                    for i in range(k):
                        work = base / f"load-{name}-{cache}-w{workers}-k{k}-{i}"
                        work.mkdir()
                        work.chmod(0o755)
                        port = bl.free_port()
                        conf = gv.write_config(fleet, port, workers=workers, work=work,
                                               stapling_cache=None if cache == "shmcb"
                                               else f"redis:127.0.0.1:{redis[1]}")
                        servers.append(start_server(name, conf, work, port)[0])
                    for srv in servers:
                        first_stapled(srv, names[0], serial_of, timeout=args.start_timeout)
                    q: Queue = Queue()
                    clients = min(workers, 4)
                    procs = [p for srv in servers for p in _sweep_same_order(srv.port, names, clients, q)]
                    stapled = []
                    for _ in procs:
                        ok, _errors = q.get(timeout=600)
                        stapled.append(len(ok))
                    for p in procs:
                        p.join(timeout=10)
                    requests = responder.count_since(0)
                finally:
                    for srv in servers:
                        srv.stop()
                rows.append({"server": name, "cache": cache, "workers": workers, "fleet": k,
                             "n": len(names), "requests": requests,
                             "per_certificate": requests / len(names),
                             "stapled_min": min(stapled) if stapled else 0})
                print(f"responder load: {name} {cache} W={workers} k={k}: {requests} requests "
                      f"for {len(names)} certificates", file=sys.stderr, flush=True)
    finally:
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(timeout=10)
            shutil.rmtree(redis[2], ignore_errors=True)
    return rows


def print_load(rows: list[dict]) -> None:
    print("| server | stapling cache | workers | servers | certificates | responder requests | "
          "per certificate | fewest names stapled per client |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['server']} | {r['cache']} | {r['workers']} | {r['fleet']} | {r['n']} | "
              f"{r['requests']} | {r['per_certificate']:.2f} | {r['stapled_min']}/{r['n']} |")
    print(flush=True)


# -- output -------------------------------------------------------------------------------------

def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f}"


def _s(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def print_tables(results: list[dict]) -> None:
    print("| N | server | -t s | -t s (no preflight) | load+check s | first stapled s | all stapled s | "
          "never | handshakes/s | CPU ms/hs | p50 ms | p99 ms | stapled | PSS worker MB | "
          "PSS total MB | master RSS MB | errors |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        c, st, m = r["config"], r["steady"], r["memory"]
        lc = (c.get("load_s", 0) + c.get("check_s", 0)) if "load_s" in c else None
        print(f"| {r['n']} | {r['server']} | {_s(c.get('t_s'))} | {_s(c.get('t_nopreflight_s'))} | "
              f"{_s(lc)} | {_s(r.get('first_stapled_s'))} | {_s(r.get('all_stapled_s'))} | "
              f"{r.get('never_stapled', '-')} | {st['per_s']:.0f} | {st['cpu_ms']:.2f} | "
              f"{_s(st['p50_ms'])} | {_s(st['p99_ms'])} | {st['stapled']}/{st['handshakes']} | "
              f"{_mb(m['worker_pss_mean_kb'])} | {_mb(m['total_pss_kb'])} | {_mb(m['master_rss_kb'])} | "
              f"{r.get('error_lines', 0)} |")
    print()
    print("| N | server | workers (PSS MB each) | helpers (PSS MB) | master PSS MB | cache | "
          "startup responder requests | refresh: requests | starts at s | span s | mean/s | peak/s |")
    print("|---:|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        m, ca, rf = r["memory"], r["cache"], r.get("refresh", {})
        cache = f"{ca['cache_bytes'] // 1024} KB shmcb"
        if ca.get("cache_entries") is not None:
            cache += f", {ca['cache_entries']} entries"
        if ca.get("store_files"):
            cache += f"; store {ca['store_files']} files, {ca['store_bytes'] // 1024} KB"
        print(f"| {r['n']} | {r['server']} | {' '.join(_mb(x) for x in m['worker_pss_kb'])} | "
              f"{' '.join(_mb(x) for x in m['helper_pss_kb']) or '-'} | {_mb(m['master_pss_kb'])} | "
              f"{cache} | {r.get('startup_requests', '-')} | {rf.get('refresh_requests', '-')} | "
              f"{_s(rf.get('refresh_starts_s'))} | {_s(rf.get('refresh_span_s'))} | "
              f"{_s(rf.get('refresh_mean_per_s'))} | {rf.get('refresh_peak_per_s', '-')} |")
    print(flush=True)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", action="append", default=None,
                    help="vhost counts, comma-separated; repeatable (default 10,100,1000)")
    ap.add_argument("--servers", nargs="+", default=["httpd-py", "apache2"])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0, help="steady handshake run per server")
    ap.add_argument("--validity", type=float, default=120.0, help="OCSP response lifetime, seconds")
    ap.add_argument("--issuers", type=int, default=3)
    ap.add_argument("--rsa-every", type=int, default=2)
    ap.add_argument("--start-timeout", type=float, default=300.0)
    ap.add_argument("--no-refresh", action="store_true", help="skip httpd-py's refresh window")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--fleet", action="store_true",
                    help="also measure responder requests vs workers and fleet size")
    ap.add_argument("--fleet-n", type=int, default=100, help="certificates for --fleet")
    ap.add_argument("--fleet-workers", default="1,2,4,8")
    ap.add_argument("--fleet-sizes", default="1,2,3")
    ap.add_argument("--skip-scale", action="store_true", help="only --fleet")
    ap.add_argument("--alt", action="append", default=[], metavar="NAME=DIR",
                    help="another httpd-py tree (e.g. `git archive HEAD~3 httpd_py | tar -x -C DIR`), "
                         "run as server 'httpd-py-NAME' (A/B); repeatable")
    ap.add_argument("--tree", type=Path, default=None,
                    help="run 'httpd-py' from this tree (e.g. `git archive HEAD httpd_py | tar -x -C DIR`: "
                         "a committed snapshot, whatever the shared working tree holds)")
    args = ap.parse_args(argv)
    global TREE
    TREE = args.tree.resolve() if args.tree else None
    for spec in args.alt:
        alt_name, _, tree = spec.partition("=")
        if not tree:
            alt_name, tree = "alt", alt_name
        ALT[alt_name] = Path(tree).resolve()
        if f"httpd-py-{alt_name}" not in args.servers:
            args.servers.append(f"httpd-py-{alt_name}")
    ns = [int(x) for part in (args.n or ["10,100,1000"]) for x in part.split(",") if x.strip()]
    if args.skip_scale:
        ns = []
    args.fleet_workers = [int(x) for x in args.fleet_workers.split(",")]
    args.fleet_sizes = [int(x) for x in args.fleet_sizes.split(",")]
    bl.need("apache2") if "apache2" in args.servers else None
    started = time.time()
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    results: list[dict] = []
    base = Path(tempfile.mkdtemp(prefix="httpd-py-scale-"))
    base.chmod(0o755)
    try:
        for k, n in enumerate(ns):
            fdir = base / f"fleet-{n}"
            fdir.mkdir()
            fdir.chmod(0o755)
            rport = bl.free_port()
            t0 = time.monotonic()
            fleet = gv.make_fleet(fdir, n, ocsp_url=f"http://127.0.0.1:{rport}/",
                                  issuers=args.issuers, rsa_every=args.rsa_every)
            print(f"N={n}: PKI and files in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
            order = args.servers if k % 2 == 0 else list(reversed(args.servers))
            with gv.MultiResponder(fleet, port=rport, validity=args.validity) as responder:
                for name in order:
                    t1 = time.monotonic()
                    r = run_one(name, fleet, base, responder, args)
                    r["wall_s"] = time.monotonic() - t1
                    results.append(r)
                    print(f"N={n} {name}: {r['wall_s']:.0f} s, load {Path('/proc/loadavg').read_text().split()[:3]}",
                          file=sys.stderr, flush=True)
        load_rows: list[dict] = []
        if args.fleet:
            fdir = base / f"fleet-load-{args.fleet_n}"
            fdir.mkdir()
            fdir.chmod(0o755)
            rport = bl.free_port()
            fleet = gv.make_fleet(fdir, args.fleet_n, ocsp_url=f"http://127.0.0.1:{rport}/",
                                  issuers=args.issuers, rsa_every=args.rsa_every)
            with gv.MultiResponder(fleet, port=rport, validity=max(args.validity, 600)) as responder:
                load_rows = responder_load(fleet, base, responder, args)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"work directory kept: {base}", file=sys.stderr)
    load1 = Path("/proc/loadavg").read_text().split()[:3]
    results.sort(key=lambda r: (r["n"], r["server"]))
    if results:
        print(f"Scale: N name-based SSL vhosts on one address, one certificate each (every "
              f"{args.rsa_every}{'nd' if args.rsa_every == 2 else 'th'} RSA-2048, the others "
              f"P-256; {args.issuers} intermediates; one OCSP responder, responses valid "
              f"{args.validity:g} s); prefork {args.workers} workers; steady run {args.seconds:g} s, "
              f"2 client processes, SNI cycling over all N names, status_request, TLS 1.3 X25519.  "
              f"Load average {' '.join(load0)} before, {' '.join(load1)} after.")
        print()
        print_tables(results)
    if load_rows:
        print(f"Responder requests for {args.fleet_n} certificates, from the servers' start until each "
              f"has served every name once to min(W, 4) clients racing in the same order (all the "
              f"servers of a fleet at once).")
        print()
        print_load(load_rows)
    if args.json:
        meta = {"started": started, "load_before": load0, "load_after": load1,
                "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "wall_s": time.time() - started}
        args.json.write_text(json.dumps({"meta": meta, "results": results,
                                         "responder_load": load_rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
