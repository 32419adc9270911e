"""Benchmark: socache operations/s from 4 processes, 1 KB values, 90 % reads.

    .venv/bin/python scripts/bench_socache.py [--seconds 3] [--procs 4] [--only shmcb,redis]

Each provider is used the way the stapling callback uses it: shmcb under its GlobalMutex (the
``ssl-stapling`` mutex, POSIX record lock via fcntl), redis and memcache without a lock, started
here on free loopback ports.  512 keys, all stored first, so reads hit.  Prints Markdown.
"""
from __future__ import annotations

import argparse
import os
import random
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import portalocker  # noqa: E402

from httpd_py.config.model import MutexSpec, SocacheSpec  # noqa: E402
from httpd_py.socache import create  # noqa: E402
from httpd_py.socache.mutex import GlobalMutex  # noqa: E402

KEYS = [os.urandom(20) for _ in range(512)]
VALUE = os.urandom(1024)


def worker(cache, mutex, seconds: float, seed: int, start_r: int, out_w: int) -> None:
    if mutex is not None:
        mutex.child_init()
    cache.child_init()
    rnd = random.Random(seed)
    choice, rand = rnd.choice, rnd.random
    os.read(start_r, 1)                              # everyone starts together
    ops = hits = reads = 0
    worst = 0.0
    deadline = time.perf_counter() + seconds
    now = time.time()
    exp = now + 3600
    while True:
        t0 = time.perf_counter()
        if t0 > deadline:
            break
        for _ in range(100):
            key = choice(KEYS)
            read = rand() < 0.9
            reads += read
            if mutex is not None:
                mutex.acquire()
                try:
                    if read:
                        hits += cache.retrieve(key, now) is not None
                    else:
                        cache.store(key, VALUE, exp, now)
                finally:
                    mutex.release()
            elif read:
                hits += cache.retrieve(key, now) is not None
            else:
                cache.store(key, VALUE, exp, now)
        ops += 100
        worst = max(worst, (time.perf_counter() - t0) / 100)
    os.write(out_w, struct.pack("<QQQd", ops, hits, reads, worst))


class PortalockerMutex:
    """For comparison only: the same lock through portalocker.lock/unlock (flock underneath)."""

    def __init__(self, path: str):
        self.path = path
        self.fh = open(path, "a+")

    def child_init(self) -> None:
        self.fh = open(self.path, "a+")             # our own open file description

    def acquire(self) -> None:
        portalocker.lock(self.fh, portalocker.LockFlags.EXCLUSIVE)

    def release(self) -> None:
        portalocker.unlock(self.fh)

    def destroy(self) -> None:
        self.fh.close()


def run(name: str, spec: SocacheSpec, procs: int, seconds: float, tmp: str,
        lock: str = "fcntl") -> dict:
    cache = create(spec)
    cache.init("bench")
    mutex = None
    if not cache.mp_safe and lock == "portalocker":
        mutex = PortalockerMutex(os.path.join(tmp, "portalocker.lock"))
    elif not cache.mp_safe:
        mutex = GlobalMutex(MutexSpec(name="ssl-stapling", mechanism=lock, directory=tmp))
        mutex.create()
    for k in KEYS:                                   # preload: reads hit
        cache.store(k, VALUE, time.time() + 3600)
    start_r, start_w = os.pipe()
    out_r, out_w = os.pipe()
    pids = []
    for i in range(procs):
        pid = os.fork()
        if pid == 0:
            try:
                worker(cache, mutex, seconds, i + 1, start_r, out_w)
            finally:
                os._exit(0)
        pids.append(pid)
    t0 = time.perf_counter()
    os.write(start_w, b"x" * procs)
    res = [struct.unpack("<QQQd", os.read(out_r, 32)) for _ in pids]
    wall = time.perf_counter() - t0
    for pid in pids:
        os.waitpid(pid, 0)
    st = cache.status()
    cache.destroy()
    if mutex is not None:
        mutex.destroy()
    ops = sum(r[0] for r in res)
    reads = sum(r[2] for r in res)
    return {"name": name, "ops": ops, "ops_s": ops / wall, "hit": sum(r[1] for r in res) / reads,
            "worst_ms": max(r[3] for r in res) * 1000, "status": st}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--only", default="shmcb,shmcb-file,shmcb-flock,shmcb-portalocker,dbm,redis,"
                                      "memcache")
    args = ap.parse_args()
    wanted = args.only.split(",")
    from tests.support.servers import memcached_server, redis_server
    rows = []
    with tempfile.TemporaryDirectory(prefix="hp-bench-socache-") as tmp:
        size = 4_000_000                             # 512 x 1 KB fit with room to spare
        if "shmcb" in wanted:
            rows.append(run("shmcb (anonymous, fcntl mutex)",
                            SocacheSpec("shmcb", size=size), args.procs, args.seconds, tmp))
        if "shmcb-file" in wanted:
            path = os.path.join(tmp, "bench.shmcb")
            rows.append(run("shmcb (file-backed, fcntl mutex)",
                            SocacheSpec("shmcb", path=path, size=size), args.procs,
                            args.seconds, tmp))
        if "shmcb-flock" in wanted:
            rows.append(run("shmcb (anonymous, flock mutex)", SocacheSpec("shmcb", size=size),
                            args.procs, args.seconds, tmp, lock="flock"))
        if "shmcb-portalocker" in wanted:
            rows.append(run("shmcb (anonymous, portalocker.lock; comparison only)",
                            SocacheSpec("shmcb", size=size), args.procs, args.seconds, tmp,
                            lock="portalocker"))
        if "dbm" in wanted:
            rows.append(run("dbm (SQLite WAL file)",
                            SocacheSpec("dbm", path=os.path.join(tmp, "bench.db")), args.procs,
                            args.seconds, tmp))
        if "redis" in wanted:
            with redis_server() as addr:
                rows.append(run("redis (redis-py, loopback)",
                                SocacheSpec("redis", servers=(addr,)), args.procs,
                                args.seconds, tmp))
        if "memcache" in wanted:
            with memcached_server() as addr:
                rows.append(run("memcache (pymemcache, loopback)",
                                SocacheSpec("memcache", servers=(addr,)), args.procs,
                                args.seconds, tmp))
    print(f"socache: {args.procs} processes, 1 KB values, 90 % reads, {len(KEYS)} keys, "
          f"{args.seconds:g} s per provider, {os.cpu_count()} CPUs\n")
    print("| provider | ops/s (all processes) | read hit rate "
          "| slowest 100-op batch, per op (ms) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['ops_s']:,.0f} | {r['hit']:.1%} | {r['worst_ms']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
