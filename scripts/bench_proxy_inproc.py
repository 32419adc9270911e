"""One proxied keep-alive request's CPU in the proxy, in-process, this tree against another.

    .venv/bin/python scripts/bench_proxy_inproc.py [--alt DIR] [--n 5000] [--rounds 3]
                                                   [--profile FILE]

A real apache2 backend on loopback (the backend of scripts/bench_proxy.py: a 13-byte
``small.txt``, keep-alive, event MPM) and, in a child process per tree and round, httpd-py's
``ConnectionHandler._handle_request`` driven with a parsed ``GET /p/small.txt`` (wrk's request
shape: Host only) and a client stream that only counts what is written: translate (ProxyPass),
the section walk, the proxy handler, the pooled backend connection (real socket, real
syscalls), the response head and body.  Reported: the child's CPU (``process_time``: the
backend's CPU is in apache2's processes, not counted) per request, warm (the first 1,000
requests are not timed), and for reference the same handler's static ``GET /small.txt`` of the
same 13 bytes from the proxy's own DocumentRoot, so "proxy - static" is what proxying adds.

``--alt DIR`` (repeatable): other checkouts (``git worktree add /tmp/base <commit>``) measured
the same way in alternating rounds (each child runs with ``python -P`` and PYTHONPATH set to its tree).
``--fake-backend``: after one real exchange, the pooled backend connection replays apache2's
recorded answer without a syscall (the proxy's Python alone, the kernel's share gone).
``--strace FILE``: ``strace -c`` of one child of this tree (syscalls per request: divide by
``--n``; the static requests make none); ``--wrap CMD``: one child under CMD (a profiler).  ``--profile FILE``: one more child of this tree under cProfile, stats written to FILE (read
them with ``python -m pstats FILE``).
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
sys.path.insert(0, str(HERE))

CHILD = r'''
import json, resource, sys, time
sys_us = {}
from httpd_py.config import load
from httpd_py.http import connection
from httpd_py.http.protocol import Limits, parse_head
from httpd_py.tls.sites import build_sites

conf, n, port, profile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cfg = load(conf, log_warnings=False)
sites = build_sites(cfg)
h = connection.ConnectionHandler(cfg, sites)
h.child_init()
site = sites.site_for("127.0.0.1", port)

class Sink:
    def __init__(self): self.n = 0; self.last = b""
    def sendall(self, data): self.n += len(data); self.last = bytes(data)
    def recv(self, n): return b""
    def pending(self): return 0
    def close(self): pass

def args_for(path):
    raw = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
    head, _ = parse_head(bytearray(raw), Limits())
    return (head, site, None, None, ("127.0.0.1", 40000), ("127.0.0.1", port), None,
            "127.0.0.1:40000")

def measure(path, count):
    s = Sink()
    a = args_for(path)
    for i in range(1000):
        h._pending = None
        assert h._handle_request(s, *a, (i % 90) + 1, time.time()), s.last[:200]
    assert s.last.endswith(b"hello, proxy\n"), s.last[-200:]
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.process_time()
    for i in range(count):
        h._pending = None
        h._handle_request(s, *a, (i % 90) + 1, time.time())
    dt = time.process_time() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    assert s.last.endswith(b"hello, proxy\n"), s.last[-200:]
    sys_us[path] = (r1.ru_stime - r0.ru_stime) / count * 1e6
    return dt / count * 1e6

if profile in ("fake", "fake-only"):
    # the backend's answer recorded once, then replayed by a socket that makes no syscall:
    # what is left is the proxy's Python alone
    import socket
    from httpd_py.modules.proxy import backend as be
    seen = []
    real_recv = be.BackendConn.recv
    def recording(self, n=65536):
        d = real_recv(self, n); seen.append(d); return d
    be.BackendConn.recv = recording
    measure(b"/p/small.txt", 1)
    be.BackendConn.recv = real_recv
    answer = seen[-1]
    idle = socket.socketpair()
    class Replay:
        def sendall(self, data): pass
        def send(self, data, flags=0): return len(data)
        def recv(self, n): return answer
        def fileno(self): return idle[0].fileno()
        def settimeout(self, t): pass
        def setsockopt(self, *a): pass
        def close(self): pass
    for conns in be.POOL.idle.values():
        for c in conns:
            c.sock = Replay()
            if hasattr(c, "_poll"):
                c._poll = None
    got = {"proxy": measure(b"/p/small.txt", n)}
    if profile == "fake":
        got["static"] = measure(b"/small.txt", n)
        got["proxy sys"] = sys_us[b"/p/small.txt"]
    print(json.dumps(got))
elif profile == "proxy-only":
    print(json.dumps({"proxy": measure(b"/p/small.txt", n)}))
elif profile != "-":
    import cProfile
    measure(b"/p/small.txt", 100)
    pr = cProfile.Profile(time.process_time)
    pr.enable()
    measure(b"/p/small.txt", n)
    pr.disable()
    pr.dump_stats(profile)
    print(json.dumps({}))
else:
    got = {"proxy": measure(b"/p/small.txt", n), "static": measure(b"/small.txt", n)}
    got["proxy sys"] = sys_us[b"/p/small.txt"]
    print(json.dumps(got))
'''


def proxy_config(work: Path, docroot: Path, port: int, backend: int) -> Path:
    import benchlib as bl
    text = f"""ServerRoot {work}
LoadModule authz_core_module {bl.APACHE_MODULES}/mod_authz_core.so
LoadModule mime_module {bl.APACHE_MODULES}/mod_mime.so
LoadModule proxy_module {bl.APACHE_MODULES}/mod_proxy.so
LoadModule proxy_http_module {bl.APACHE_MODULES}/mod_proxy_http.so
ServerName localhost
Listen 127.0.0.1:{port}
ErrorLog {work}/proxy-error.log
TypesConfig /etc/mime.types
DocumentRoot {docroot}
<Directory {docroot}>
    Require all granted
</Directory>
KeepAlive On
MaxKeepAliveRequests 0
ProxyPass /p/ http://127.0.0.1:{backend}/
"""
    path = work / "proxy.conf"
    path.write_text(text)
    return path


def run(tree: Path, conf: Path, n: int, port: int, profile: str = "-",
        wrap: list | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    wrap = wrap or []
    out = subprocess.run([*wrap, sys.executable, "-P", "-c", CHILD, str(conf), str(n), str(port),
                          profile], env=env, cwd=tree, capture_output=True, text=True,
                         timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {out.stderr[-3000:]}")
    if wrap:
        try:
            return json.loads(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    import bench_proxy as bp
    import benchlib as bl
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alt", type=Path, action="append", default=[],
                    help="another checkout to compare (may be repeated)")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", default=None, help="cProfile stats of this tree to this file")
    ap.add_argument("--fake-backend", action="store_true", help="replay the backend's recorded "
                    "answer from a socket that makes no syscall (the proxy's Python alone)")
    ap.add_argument("--strace", default=None, help="strace -c of one child of this tree "
                    "(n proxied and n static requests, plus start-up) to this file")
    ap.add_argument("--wrap", default=None, help="run one child of this tree under this command "
                    "(e.g. 'py-spy record -r 2000 -f raw -o FILE --')")
    args = ap.parse_args()
    trees = [("this tree", HERE.parent)] + [(str(a), a.resolve()) for a in args.alt]
    apache = bl.need("apache2")
    with tempfile.TemporaryDirectory(prefix="httpd-py-proxy-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        docroot = work / "htdocs"
        docroot.mkdir()
        (docroot / "small.txt").write_bytes(b"hello, proxy\n")
        for p in (docroot, docroot / "small.txt"):
            os.chmod(p, 0o755)
        bport = bl.free_port()
        bconf = work / "backend.conf"
        bconf.write_text(bp.backend_conf(work, bport, docroot))
        backend = bl.start("backend", [apache, "-d", str(work), "-f", str(bconf),
                                       "-DFOREGROUND"], bport, work / "backend.out")
        try:
            port = bl.free_port()
            conf = proxy_config(work, docroot, port, bport)
            if args.profile:
                run(HERE.parent, conf, args.n, port, str(Path(args.profile).resolve()))
                print(f"profile of {args.n} proxied requests written to {args.profile}")
                return 0
            if args.strace or args.wrap:
                wrap = ["strace", "-c", "-o", str(Path(args.strace).resolve())] if args.strace \
                    else args.wrap.split()
                got = run(HERE.parent, conf, args.n, port, "-" if args.strace else
                          "fake-only" if args.fake_backend else "proxy-only", wrap=wrap)
                print(f"one child run under {' '.join(wrap)}: {got}")
                return 0
            res: dict = {}
            for _ in range(args.rounds):
                for name, tree in trees:
                    got = run(tree, conf, args.n, port, "fake" if args.fake_backend else "-")
                    for k, v in got.items():
                        res.setdefault((name, k), []).append(v)
        finally:
            backend.stop()
    print(f"In-process CPU of the proxy per keep-alive GET of a 13-byte file behind apache2 "
          f"(median of {args.rounds} rounds x {args.n} requests, process_time), load average "
          f"{os.getloadavg()[0]:.1f}:")
    print()
    print("| tree | proxied us/request | of which kernel | static us/request | proxy - static |")
    print("|---|---:|---:|---:|---:|")
    for name, _ in trees:
        p = statistics.median(res[(name, "proxy")])
        k = statistics.median(res[(name, "proxy sys")])
        s = statistics.median(res[(name, "static")])
        print(f"| {name} | {p:.1f} | {k:.1f} | {s:.1f} | {p - s:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
