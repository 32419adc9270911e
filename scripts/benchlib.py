"""Shared pieces of the benchmarks: servers side by side, CPU from /proc, TLS load, medians.

Every server runs on loopback with the same certificates and the same document root:
- httpd-py and Apache httpd 2.4 (Debian's apache2: prefork MPM, mod_ssl, shmcb stapling cache)
  read the SAME Apache-syntax configuration file;
- nginx (Debian's nginx-light) staples from ``ssl_stapling_file`` (a response fetched once),
  so it never fetches during a run.
Server CPU is the utime+stime of the server's whole process group (master and every worker, plus
what reaped children used), read from /proc before and after a run.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing import Process, Queue
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLK_TCK = os.sysconf("SC_CLK_TCK")
APACHE_MODULES = "/usr/lib/apache2/modules"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def group_processes(pgid: int) -> int:
    """How many live processes the group has (master + workers + helpers)."""
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[2]) == pgid:
                n += 1
    return n


def group_cpu_seconds(pgid: int) -> float:
    """utime+stime of every live process in the group, plus reaped children's, in seconds."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[0] is state (field 3); pgrp is field 5 -> index 2; utime 14 -> 11, stime 15 -> 12,
        # cutime 16 -> 13, cstime 17 -> 14
        if int(fields[2]) != pgid:
            continue
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLK_TCK


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def start(name: str, argv: list[str], port: int, log: Path, env: dict | None = None) -> Server:
    out = open(log, "ab")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                            env=None if env is None else {**os.environ, **env})
    try:
        wait_port(port)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"{name} did not start; see {log}:\n{log.read_text()[-2000:]}")
    return Server(name, proc, port)


def event_mpm(threads: int, threads_per_child: int, async_factor: int | None = None) -> str:
    """apache2's event MPM sized to exactly ``threads`` worker threads in processes of
    ``threads_per_child`` (all started at once, none reaped), for a side-by-side with prefork
    workers; ``async_factor``: AsyncRequestWorkerFactor (None: its default, 2)."""
    procs = max(1, -(-threads // threads_per_child))
    lines = [f"ServerLimit {procs}", f"StartServers {procs}", f"ThreadLimit {threads_per_child}",
             f"ThreadsPerChild {threads_per_child}", f"MaxRequestWorkers {procs * threads_per_child}",
             f"MinSpareThreads 1", f"MaxSpareThreads {procs * threads_per_child}"]
    if async_factor is not None:
        lines.append(f"AsyncRequestWorkerFactor {async_factor}")
    return "\n".join(lines)


def apache_config(work: Path, port: int, cert_key_pairs: list[tuple[Path, Path]], *, stapling: bool,
                  workers: int = 4, docroot: Path, log_level: str = "warn", server_extra: str = "",
                  vhost_extra: str = "", mpm: str = "prefork", max_workers: int = 64) -> Path:
    """One Apache-syntax file that both apache2 and httpd-py read; ``server_extra`` and
    ``vhost_extra`` are directive lines added to the main server and to the vhost.  ``mpm``
    "event" (apache2 only) puts the event MPM in place of prefork's lines; size it with
    ``event_mpm`` in ``server_extra``.  ``max_workers``: prefork's MaxRequestWorkers."""
    certs = "\n".join(f"    SSLCertificateFile {c}\n    SSLCertificateKeyFile {k}" for c, k in cert_key_pairs)
    mods = [f"mpm_{mpm}", "authz_core", "mime", "dir", "socache_shmcb", "ssl"]
    loads = "\n".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in mods)
    sizing = (f"StartServers {workers}\nMinSpareServers {workers}\nMaxSpareServers {workers * 2}\n"
              f"MaxRequestWorkers {max_workers}") if mpm == "prefork" else ""
    text = f"""ServerRoot {work}
{loads}
ServerName bench.test
Listen 127.0.0.1:{port}
PidFile {work}/httpd.pid
ErrorLog {work}/error.log
LogLevel {log_level}
User www-data
Group www-data
Mutex file:{work} default
{sizing}
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
TypesConfig /etc/mime.types
DocumentRoot {docroot}
<Directory {docroot}>
    Require all granted
</Directory>
SSLStaplingCache shmcb:{work}/stapling(128000)
SSLSessionCache none
{server_extra}
<VirtualHost 127.0.0.1:{port}>
    ServerName bench.test
    SSLEngine on
{certs}
    SSLUseStapling {"on" if stapling else "off"}
    SSLSessionTickets off
{vhost_extra}
</VirtualHost>
"""
    path = work / "httpd.conf"
    path.write_text(text)
    return path


def nginx_config(work: Path, port: int, cert_key_pairs: list[tuple[Path, Path]], staple_files: list[Path],
                 *, docroot: Path, workers: int = 2) -> Path:
    certs = "\n".join(f"        ssl_certificate {c};\n        ssl_certificate_key {k};" for c, k in cert_key_pairs)
    staple = "\n".join(f"        ssl_stapling_file {f};" for f in staple_files[:1])
    text = f"""worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
daemon off;
user www-data;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    include /etc/nginx/mime.types;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name bench.test;
{certs}
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        {"ssl_stapling on;" if staple_files else ""}
{staple}
        root {docroot};
    }}
}}
"""
    path = work / "nginx.conf"
    path.write_text(text)
    return path


# The key exchange every server is offered.  The client's OpenSSL (pyOpenSSL's, 4.x) would offer
# X25519MLKEM768 first: httpd-py (same OpenSSL) would take the post-quantum hybrid while apache2
# and nginx (Debian's OpenSSL 3.0) fall back to X25519, so the servers would not do the same work.
DEFAULT_GROUPS = "X25519"


SMALL_GET = b"GET /small.txt HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n"


def client_context(ocsp_cb=None, cipher: bytes | None = None, groups: str | None = DEFAULT_GROUPS):
    """The benchmark clients' pyOpenSSL Context: no verification, no resumption (no session
    cache, no tickets), ``groups`` offered; ``ocsp_cb`` set: status_request asked for."""
    from OpenSSL import SSL
    from OpenSSL._util import lib as _lib
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.set_options(SSL.OP_NO_TICKET)
    if cipher:
        ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_cipher_list(cipher)
    if groups and _lib.SSL_CTX_set1_curves_list(ctx._context, groups.encode()) != 1:
        raise SystemExit(f"client: unknown groups {groups!r}")
    if ocsp_cb is not None:
        ctx.set_ocsp_client_callback(ocsp_cb, None)
    return ctx


def handshake_get(ctx, port: int, status: bool, req: bytes = SMALL_GET) -> bytes:
    """One full handshake (SNI bench.test) and one request on it; the response's bytes."""
    from OpenSSL import SSL
    s = socket.create_connection(("127.0.0.1", port))
    # as curl, wrk and browsers: without it the request waits for the ACK of the client's
    # Finished, which a server that sends nothing after the handshake (no TLS 1.3 tickets:
    # httpd-py) delays by 40 ms (Nagle + delayed ACK), while apache2's tickets carry it
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = SSL.Connection(ctx, s)
    got = b""
    try:
        c.set_tlsext_host_name(b"bench.test")
        if status:
            c.request_ocsp()
        c.set_connect_state()
        c.do_handshake()
        c.sendall(req)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                got += d
        except (SSL.ZeroReturnError, SSL.SysCallError):
            pass
    finally:
        c.close()
        s.close()
    return got


def _handshake_worker(port: int, seconds: float, status: bool, cipher: bytes | None, q: Queue,
                      groups: str | None = DEFAULT_GROUPS) -> None:
    n = stapled = 0
    got = []

    def ocsp_cb(conn, data, _):
        got.append(len(data))
        return True

    ctx = client_context(ocsp_cb if status else None, cipher, groups)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        handshake_get(ctx, port, status)
        n += 1
        if got and got[-1] > 0:
            stapled += 1
        got.clear()
    q.put((n, stapled))


def handshake_run(server: Server, *, seconds: float, clients: int, status: bool,
                  cipher: bytes | None, groups: str | None = DEFAULT_GROUPS) -> dict:
    """Full handshakes (no resumption) + one small GET each, from ``clients`` processes."""
    q: Queue = Queue()
    cpu0 = group_cpu_seconds(server.proc.pid)
    t0 = time.monotonic()
    procs = [Process(target=_handshake_worker, args=(server.port, seconds, status, cipher, q, groups))
             for _ in range(clients)]
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    elapsed = time.monotonic() - t0
    cpu = group_cpu_seconds(server.proc.pid) - cpu0
    n = sum(r[0] for r in results)
    stapled = sum(r[1] for r in results)
    return {"handshakes": n, "per_s": n / elapsed, "cpu_ms": 1000 * cpu / max(n, 1), "stapled": stapled}


def median(values: list[float]) -> float:
    return statistics.median(values)


def need(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if not path:
        raise SystemExit(f"bench needs {tool}: apt-get install it (scripts/test installs most tools)")
    return path
