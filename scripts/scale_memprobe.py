"""Where a worker's memory goes at N vhosts: what a forked process copies from the master.

    .venv/bin/python scripts/scale_memprobe.py --n 1000 [--no-status] [--rounds 2] [--gc]
    PYTHONPATH=TREE .venv/bin/python -P scripts/scale_memprobe.py ...   # another tree (A/B)

Writes ``gen_vhosts``' N vhosts (one certificate each, an OCSP responder in this process),
runs the server's ``before_fork`` here (config, stapling prefetch, Contexts, warm-up), then
forks a "worker" that runs ``child_init`` and one in-memory TLS handshake per vhost (SNI the
vhost's name, status_request unless --no-status) through the real servername and OCSP
callbacks, as the connection handler sets them up.  Prints the child's Private_Dirty
(``/proc/self/smaps_rollup``) after child_init and after each round, and which mappings grew
(``[heap]``: malloc, OpenSSL's objects and Python objects over 512 bytes; ``[anon]``:
CPython's object arenas).  ``--gc``: also what one ``gc.collect()`` costs a forked child,
with and without ``gc.freeze()``.  No socket, no worker loop: the TLS layer's share only.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_vhosts as gv  # noqa: E402


def rollup() -> dict[str, int]:
    out = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def by_mapping() -> dict[str, int]:
    out: dict[str, int] = {}
    cur = "?"
    with open("/proc/self/smaps") as f:
        for line in f:
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else "[anon]"
                cur = os.path.basename(name) if name.startswith("/") else name
            elif parts and parts[0] == "Private_Dirty:":
                out[cur] = out.get(cur, 0) + int(parts[1])
    return out


def in_child(fn) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            res = fn()
        except Exception as e:                       # noqa: BLE001
            res = {"error": repr(e)}
        os.write(w, json.dumps(res).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-status", action="store_true")
    ap.add_argument("--gc", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scale-memprobe-"))
    responder = gv.MultiResponder(gv.make_fleet(work / "pki0", 1, ocsp_url="http://127.0.0.1:1/"),
                                  validity=600).start()
    fleet = gv.make_fleet(work / "pki", args.n, ocsp_url=responder.url)
    responder.fleet = fleet
    responder.by_key_hash = {gv._key_hash(i.cert): i for i in fleet.issuers}
    conf = gv.write_config(fleet, 18443, work=work, stapling_cache_bytes=max(512000, 4096 * args.n))

    from OpenSSL import SSL
    from httpd_py import server, socache
    from httpd_py.config import check, load
    from httpd_py.tls.sites import TLSState
    cfg = load(str(conf), server_root=str(work))
    list(check(cfg))
    socache.check(cfg)
    app = server.ServerApp(cfg)
    app.before_fork([])
    site = app.sites.site_for("127.0.0.1", 18443)
    names = [v.server_name for v in cfg.vhosts if v.ssl.engine]

    def worker() -> dict:
        app.child_init()
        res = {"after child_init": rollup()["Private_Dirty"]}
        before = by_mapping()
        cctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        cctx.set_verify(SSL.VERIFY_NONE)
        got: list = []
        cctx.set_ocsp_client_callback(lambda c, der, d: got.append(der) or True)
        stapled = 0
        for rnd in range(args.rounds):
            for name in names:
                s = SSL.Connection(site.context, None)
                s.set_app_data(TLSState(site))
                s.set_accept_state()
                c = SSL.Connection(cctx, None)
                c.set_tlsext_host_name(name.encode())
                if not args.no_status:
                    c.request_ocsp()
                c.set_connect_state()
                got.clear()
                for _ in range(20):
                    done = 0
                    for x in (c, s):
                        try:
                            x.do_handshake()
                            done += 1
                        except SSL.WantReadError:
                            pass
                    for a, b in ((c, s), (s, c)):
                        try:
                            b.bio_write(a.bio_read(65536))
                        except SSL.WantReadError:
                            pass
                    if done == 2:
                        break
                stapled += bool(got and got[0])
            res[f"after round {rnd + 1}"] = rollup()["Private_Dirty"]
        after = by_mapping()
        res["grew"] = sorted(((k, after[k] - before.get(k, 0)) for k in after), key=lambda kv: -kv[1])[:3]
        res["stapled"] = stapled
        return res

    res = in_child(worker)
    print(f"N = {args.n}, {'no ' if args.no_status else ''}status_request, master RSS "
          f"{rollup()['Rss'] / 1024:.1f} MB")
    for k, v in res.items():
        if k == "stapled":
            print(f"  stapled          {v} of {args.rounds * len(names)} handshakes")
        elif isinstance(v, int):
            print(f"  {k:16s} Private_Dirty {v / 1024:6.1f} MB")
        elif k == "grew":
            print("  grew            " + ", ".join(f"{m} +{kb / 1024:.1f} MB" for m, kb in v))
        else:
            print(f"  {k}: {v}")
    if args.gc:
        for freeze in (False, True):
            def collect(freeze=freeze) -> dict:
                a = rollup()["Private_Dirty"]
                if freeze:
                    gc.freeze()
                gc.collect()
                return {"grew": rollup()["Private_Dirty"] - a}
            print(f"  gc.collect() in a fresh child{' after gc.freeze()' if freeze else ''}: "
                  f"+{in_child(collect)['grew'] / 1024:.1f} MB Private_Dirty")
    app.shutdown(graceful=False, final=True)
    responder.stop()
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
