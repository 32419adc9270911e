"""A soak with faults: real httpd-py servers under client load while a seeded schedule breaks
things around them (issue "Under attack and under faults").

    scripts/soak [--minutes N] [--servers 3] [--clients 2] [--seed S] [--report FILE.json]

What runs (loopback only; every loop is bounded in count and in time; it stops by itself):

    harness process ─┬─ OCSP responder (threads; mode flapped: normal / tryLater / hang)
                     ├─ redis-server (one, shared by every server: SSLStaplingCache redis:...)
                     ├─ httpd-py x N  (``python -m httpd_py -f CONF -DFOREGROUND``, own session,
                     │                 same certificates, store dir on a 1 MB tmpfs when root)
                     ├─ sampler thread (RSS and open descriptors of every master, worker and
                     │                 stapler helper, from /proc, every SAMPLE_EVERY s)
                     ├─ fault thread   (the schedule, one fault at a time, times from the seed)
                     └─ client processes x C, each with two threads:
                          handshakes: new connection, TLS 1.2 status_request, staple checked
                          http:       keep-alive GETs, then a POST (the server closes after a body)

Failures are attributed, not excused: a failed operation is "explained" only when a process
that could have held its connection was killed while the connection was open (SIGKILL of a
worker of that server, or a full restart, HUP, which stops the old workers) and the failure was
seen within ATTRIBUTE_AFTER s of that kill.  Anything else is "unexplained".  A GET on a reused
keep-alive connection that gets no byte back is retried once on a new connection, as HTTP
clients do (RFC 9110 9.3.2 / 9.2.2); such retries are counted and attributed on their own.

A staple is valid when it parses (cryptography's ocsp module), is successful, answers for the
serial of the certificate the handshake used, says good, and its nextUpdate is in the future.
A handshake without a staple is counted apart (expected while redis is down: workers read the
staple from the cache only).

The module is also the library the test (tests/integration/soak/test_soak.py) drives through
``scripts/soak --report``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# ---- stapling timings (the refresh happens many times in a few minutes) ---------------------
VALIDITY = 120           # each response: thisUpdate = now - 1 s, nextUpdate = thisUpdate + this
SKEW = 5                 # SSLStaplingResponseTimeSkew: served until nextUpdate - 5 s
RENEW_WINDOW = 84        # SSLStaplingRenewWindow: renew 120 - 1 - 5 - 84 = 30 s after a fetch
REFRESH_EVERY = VALIDITY - 1 - SKEW - RENEW_WINDOW   # 30 s (+ jitter, up to 10 % of 84 s)
RESPONDER_TIMEOUT = 3    # SSLStaplingResponderTimeout
ERROR_CACHE = 30         # SSLStaplingErrorCacheTimeout: retry backoff capped at 30 s

NAMES = ("a.test", "b.test")
KINDS = ("rsa", "ec")
CIPHER = {"rsa": b"ECDHE-RSA-AES128-GCM-SHA256", "ec": b"ECDHE-ECDSA-AES128-GCM-SHA256"}

IO_TIMEOUT = 15          # every client connect / read
SAMPLE_EVERY = 2.0       # /proc sampling period
ATTRIBUTE_AFTER = 3.0    # a failure is explained by a kill seen at most this long before it ends
SLACK = 0.1              # clock and ordering slack between the harness and the clients
LEAD_IN = 15             # no fault in the first LEAD_IN s (the servers settle, clients warm up)
TAIL = 20                # nor in the last TAIL s (the run ends on a quiet, recovered server)
FD_TOLERANCE = 2         # descriptors "flat": see flat()
RSS_TOLERANCE = (0.10, 4096)   # RSS "flat": +10 % and +4 MB (see flat())
MAX_OPS = 10_000_000     # per client thread: a hard bound beside the deadline
MAX_RECORDS = 2000       # failure/retry records kept per client process (totals stay exact)


def now() -> float:
    return time.time()


# =============================================================================================
# The OCSP responder: honest answers dated "now", every request recorded with the mode it met
# =============================================================================================

def make_responder(pki):
    from httpd_py.devtools.responder import Responder, build_response

    UTC = dt.timezone.utc

    class SoakResponder(Responder):
        """Responses valid VALIDITY s from 1 s ago; ``log`` holds (time, serial, mode)."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.log: list[tuple[float, int, str]] = []

        def answer(self, ref, mode=None):
            mode = mode or self.mode
            if mode != "normal":
                return super().answer(ref, mode)
            t = dt.datetime.now(UTC)
            this = t - dt.timedelta(seconds=1)
            return build_response(ref, "good", self.issuer, self.issuer_key, now=t,
                                  this_update=this,
                                  next_update=this + dt.timedelta(seconds=VALIDITY))

        def _handle(self, h, method, body):
            from cryptography.x509 import ocsp
            try:
                serial = ocsp.load_der_ocsp_request(body).serial_number
            except Exception:
                serial = -1
            with self._lock:
                self.log.append((now(), serial, self.mode))
            return super()._handle(h, method, body)

    return SoakResponder.for_pki(pki)


# =============================================================================================
# redis-server on a fixed port, stoppable and startable again
# =============================================================================================

class Redis:
    def __init__(self, work: Path):
        self.exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.dir = work / "redis"
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        for _ in range(3):
            self.proc = subprocess.Popen(
                [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
                 "--loglevel", "warning"],
                stdout=open(self.dir / "redis.log", "ab"), stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if port_accepting(self.port):
                    return
                time.sleep(0.05)
            self.stop()
            time.sleep(0.5)              # the port may still be held for a moment
        raise RuntimeError(f"redis-server did not start on {self.port}")

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


# =============================================================================================
# The staple store on a small tmpfs (root only), which a fault fills up
# =============================================================================================

class StoreFS:
    SIZE = "1m"

    def __init__(self, work: Path):
        self.path = work / "staples"
        self.path.mkdir()
        self.mounted = False
        self.note = ""
        if os.geteuid() != 0:
            self.note = "not root: no tmpfs, the disk-full fault is skipped"
            return
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.SIZE},mode=0700", "tmpfs",
                            str(self.path)], capture_output=True, text=True, timeout=20)
        if p.returncode != 0:
            self.note = f"mount -t tmpfs failed ({p.stderr.strip()}): the disk-full fault is skipped"
        else:
            self.mounted = True

    @property
    def filler(self) -> Path:
        return self.path / "filler"

    def fill(self) -> int:
        """Write until ENOSPC (at most 2 MB): the bytes written."""
        written = 0
        chunk = b"\0" * 65536
        with open(self.filler, "ab") as f:
            while written < 2 << 20:
                try:
                    written += f.write(chunk)
                    f.flush()
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
        return written

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()

    def close(self) -> None:
        if self.mounted:
            if subprocess.run(["umount", str(self.path)], capture_output=True, timeout=20).returncode:
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=20)
            self.mounted = False


# =============================================================================================
# One real httpd-py
# =============================================================================================

class Server:
    def __init__(self, index: int, work: Path, pki, url: str, redis_port: int | None,
                 store_dir: Path, workers: int = 2):
        self.index = index
        self.dir = work / f"server{index}"
        self.dir.mkdir()
        for sub in ("run", "htdocs"):
            (self.dir / sub).mkdir()
        (self.dir / "htdocs" / "index.html").write_text("ok\n")
        self.port = free_port()
        self.error_log = self.dir / "error.log"
        self.console = self.dir / "console.log"
        self.pid_file = self.dir / "run" / "httpd.pid"
        self.scoreboard = self.dir / "run" / "httpd.scoreboard"
        lines = [f"ServerRoot {self.dir}", f"Listen 127.0.0.1:{self.port}",
                 f"PidFile {self.pid_file}", f"ErrorLog {self.error_log}", "LogLevel info",
                 f"DocumentRoot {self.dir}/htdocs", f"DefaultRuntimeDir {self.dir}/run",
                 f"StartServers {workers}", f"MinSpareServers {max(1, workers - 1)}",
                 f"MaxSpareServers {workers + 2}", "MaxRequestWorkers 8", "ServerLimit 8",
                 "KeepAlive On", "MaxKeepAliveRequests 100", "KeepAliveTimeout 5",
                 (f"SSLStaplingCache redis:127.0.0.1:{redis_port}" if redis_port
                  else "SSLStaplingCache shmcb"), "RedisTimeout 1",
                 f"SSLStaplingStoreDir {store_dir}",
                 f"SSLStaplingResponderTimeout {RESPONDER_TIMEOUT}",
                 f"SSLStaplingResponseTimeSkew {SKEW}", f"SSLStaplingRenewWindow {RENEW_WINDOW}",
                 f"SSLStaplingErrorCacheTimeout {ERROR_CACHE}"]
        if os.geteuid() == 0:
            lines += ["User root", "Group root"]      # the work dir is 0700
        for name in NAMES:
            lines += [f"<VirtualHost *:{self.port}>", f"  ServerName {name}", "  SSLEngine on"]
            for k in KINDS:
                leaf = pki.leaf(name, k)
                lines += [f"  SSLCertificateFile {leaf.cert_file}",
                          f"  SSLCertificateKeyFile {leaf.key_file}"]
            lines += ["  SSLUseStapling on", f"  SSLStaplingForceURL {url}", "</VirtualHost>"]
        self.conf = self.dir / "httpd.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None
        self.exit_status: int | None = None

    # -- the error log ----------------------------------------------------------------------
    def log(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except OSError:
            return ""

    def count(self, hp: str) -> int:
        return len(re.findall(rf"\] {hp}:", self.log()))

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        before = self.count("HP01001")
        self.proc = subprocess.Popen([sys.executable, "-m", "httpd_py", "-f", str(self.conf),
                                      "-DFOREGROUND"], cwd=ROOT,
                                     stdout=open(self.console, "ab"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait_ready(before, timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, before: int, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"server{self.index} exited {self.proc.returncode}; "
                                   f"see {self.console} and {self.error_log}")
            if self.count("HP01001") > before:
                return True
            time.sleep(0.05)
        return False

    def restart(self, sig: int, timeout: float = 30) -> tuple[bool, float]:
        """Send HUP or USR1 and wait for the new generation's HP01001: (ready, seconds)."""
        before = self.count("HP01001")
        t0 = time.monotonic()
        os.kill(self.proc.pid, sig)
        ok = self.wait_ready(before, timeout)
        return ok, time.monotonic() - t0

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # the session may still hold a stray child (a helper that outlived its master)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.exit_status = self.proc.returncode
        return self.exit_status

    # -- processes ----------------------------------------------------------------------------
    def master_pid(self) -> int:
        return self.proc.pid

    def workers(self, current_only: bool = True) -> list[int]:
        """Live worker pids from the scoreboard, checked to be this master's children."""
        from httpd_py.mpm.scoreboard import read_board
        try:
            view = read_board(str(self.scoreboard))
        except (OSError, ValueError, struct.error):
            return []
        gen = view.generation if current_only else None
        return [s.pid for s in view.workers(gen) if ppid(s.pid) == self.proc.pid]

    def stapler_pid(self) -> int | None:
        """The background stapler helper: the last HP04800 line's pid, if it is still a child
        of this master."""
        for pid in reversed(re.findall(r"\[pid (\d+)\] HP04800:", self.log())):
            if ppid(int(pid)) == self.proc.pid:
                return int(pid)
        return None


def ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# =============================================================================================
# Clients (separate processes: the harness's threads must not steal their GIL)
# =============================================================================================

class NoResponse(Exception):
    """The connection closed (or reset) before any byte of a response."""


class HttpConn:
    """A minimal HTTP/1.1 client over TLS (stdlib ssl): keep-alive, Content-Length bodies."""

    def __init__(self, port: int, name: str, ctx: ssl.SSLContext):
        self.opened = now()
        raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=name)
        except BaseException:
            raw.close()
            raise
        self.name = name
        self.uses = 0
        self.closed_by_server = False

    def request(self, method: str, path: str, body: bytes = b"") -> int:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.name}\r\nUser-Agent: soak\r\n"
                + (f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
                   if method == "POST" else "") + "\r\n").encode()
        self.uses += 1
        got = b""
        try:
            self.sock.sendall(head + body)
            while b"\r\n\r\n" not in got:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                got += chunk
                if len(got) > 65536:
                    raise ValueError("response head over 64 KB")
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError) as e:
            if not got:
                raise NoResponse(repr(e)) from e
            raise
        if not got:
            raise NoResponse("EOF")
        if b"\r\n\r\n" not in got:
            raise ValueError(f"truncated response head ({len(got)} bytes)")
        hdr, rest = got.split(b"\r\n\r\n", 1)
        lines = hdr.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ValueError(f"body truncated at {len(rest)} of {length}")
            rest += chunk
        if headers.get("connection", "").lower() == "close" or lines[0].startswith("HTTP/1.0"):
            self.closed_by_server = True
        return status

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def staple_verdict(der: bytes, serial: int, at: float) -> str:
    """"valid", or why not."""
    from cryptography.x509 import ocsp
    try:
        r = ocsp.load_der_ocsp_response(der)
    except Exception as e:
        return f"unparsable: {e}"
    if r.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return f"responseStatus {r.response_status.name}"
    if r.serial_number != serial:
        return f"serial {r.serial_number:x} != {serial:x}"
    if r.certificate_status != ocsp.OCSPCertStatus.GOOD:
        return f"certStatus {r.certificate_status.name}"
    nu = r.next_update_utc
    if nu is None or nu.timestamp() <= at:
        return f"nextUpdate {nu} not in the future"
    return "valid"


@dataclass
class ClientPlan:
    index: int
    ports: list[int]
    serials: dict[str, int]           # "name/kind" -> serial
    deadline: float
    seed: int


def client_process(plan: ClientPlan, out) -> None:
    """One client process: a handshake thread and an HTTP thread until the deadline."""
    from OpenSSL import SSL
    lock = threading.Lock()
    res = {"handshakes": 0, "stapled_valid": 0, "unstapled": 0, "invalid": 0,
           "invalid_list": [], "statuses": {}, "failures": [], "failures_total": 0,
           "retries": [], "retries_total": 0, "handshake_max_s": 0.0, "handshake_slow": 0,
           "errors": []}

    def failure(server: int, op: str, conn_start: float, start: float, e: BaseException,
                reused: bool) -> None:
        with lock:
            res["failures_total"] += 1
            if len(res["failures"]) < MAX_RECORDS:
                res["failures"].append({"server": server, "op": op, "conn_start": conn_start,
                                        "start": start, "end": now(), "reused": reused,
                                        "error": f"{type(e).__name__}: {e}"[:200]})

    def handshakes() -> None:
        rng = random.Random(plan.seed * 1000 + plan.index * 2)
        ctxs = {}
        for k in KINDS:
            c = SSL.Context(SSL.TLS_CLIENT_METHOD)
            c.set_max_proto_version(SSL.TLS1_2_VERSION)
            c.set_cipher_list(CIPHER[k])
            c.set_ocsp_client_callback(lambda conn, der, data: (conn.get_app_data().append(der),
                                                                True)[1])
            ctxs[k] = c
        for _ in range(MAX_OPS):
            if now() >= plan.deadline:
                break
            server = rng.randrange(len(plan.ports))
            name, kind = rng.choice(NAMES), rng.choice(KINDS)
            t0 = now()
            got: list[bytes] = []
            s = None
            try:
                s = socket.create_connection(("127.0.0.1", plan.ports[server]), timeout=IO_TIMEOUT)
                s.settimeout(None)          # pyOpenSSL wants blocking; bound it in the kernel
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", IO_TIMEOUT, 0))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", IO_TIMEOUT, 0))
                c = SSL.Connection(ctxs[kind], s)
                c.set_app_data(got)
                c.set_tlsext_host_name(name.encode())
                c.request_ocsp()
                c.set_connect_state()
                c.do_handshake()
                took = now() - t0
                with contextlib.suppress(SSL.Error, OSError):
                    c.shutdown()
            except Exception as e:
                failure(server, "handshake", t0, t0, e, False)
                continue
            finally:
                if s is not None:
                    s.close()
            staple = got[0] if got else b""
            with lock:
                res["handshakes"] += 1
                res["handshake_max_s"] = max(res["handshake_max_s"], took)
                res["handshake_slow"] += took > 1.0
                if not staple:
                    res["unstapled"] += 1
                    continue
                verdict = staple_verdict(staple, plan.serials[f"{name}/{kind}"], now())
                if verdict == "valid":
                    res["stapled_valid"] += 1
                else:
                    res["invalid"] += 1
                    if len(res["invalid_list"]) < 100:
                        res["invalid_list"].append({"t": now(), "server": server, "name": name,
                                                    "kind": kind, "why": verdict})

    def http() -> None:
        rng = random.Random(plan.seed * 1000 + plan.index * 2 + 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

        def count(key: str) -> None:
            with lock:
                res["statuses"][key] = res["statuses"].get(key, 0) + 1

        for _ in range(MAX_OPS):
            if now() >= plan.deadline:
                break
            server = rng.randrange(len(plan.ports))
            name = rng.choice(NAMES)
            port = plan.ports[server]
            t0 = now()
            try:
                conn = HttpConn(port, name, ctx)
            except Exception as e:
                failure(server, "connect", t0, t0, e, False)
                continue
            try:
                for _ in range(rng.randint(1, 20)):       # keep-alive GETs
                    if now() >= plan.deadline or conn.closed_by_server:
                        break
                    t1 = now()
                    try:
                        st = conn.request("GET", "/index.html")
                    except NoResponse as e:
                        if conn.uses == 1:
                            failure(server, "GET", conn.opened, t1, e, False)
                            break
                        with lock:          # a reused connection closed under us: retry once
                            res["retries_total"] += 1
                            if len(res["retries"]) < MAX_RECORDS:
                                res["retries"].append({"server": server, "conn_start": conn.opened,
                                                       "start": t1, "end": now(),
                                                       "error": str(e)[:120]})
                        conn.close()
                        t2 = now()
                        try:
                            conn = HttpConn(port, name, ctx)
                            st = conn.request("GET", "/index.html")
                        except Exception as e2:
                            failure(server, "GET", t2, t2, e2, False)
                            break
                    except Exception as e:
                        failure(server, "GET", conn.opened, t1, e, conn.uses > 1)
                        break
                    count(f"GET {st}")
            finally:
                conn.close()
            if now() >= plan.deadline:
                break
            # a POST on its own connection: the server answers and closes after a body
            t3 = now()
            try:
                pconn = HttpConn(port, name, ctx)
            except Exception as e:
                failure(server, "connect", t3, t3, e, False)
                continue
            try:
                st = pconn.request("POST", "/index.html", os.urandom(rng.randint(1, 4096)))
                count(f"POST {st}")
            except Exception as e:
                failure(server, "POST", pconn.opened, t3, e, False)
            finally:
                pconn.close()

    threads = [threading.Thread(target=guard, args=(f, res, lock), daemon=True)
               for f in (handshakes, http)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, plan.deadline - now() + 2 * IO_TIMEOUT + 5))
    with lock:
        out.put((plan.index, json.loads(json.dumps(res))))


def guard(f, res, lock) -> None:
    try:
        f()
    except BaseException as e:                  # a bug in the harness, not a server failure
        with lock:
            res["errors"].append(f"{f.__name__}: {type(e).__name__}: {e}")


# =============================================================================================
# Sampling /proc
# =============================================================================================

def proc_sample(pid: int) -> tuple[int, int] | None:
    """(RSS in KB, open descriptors) of ``pid``, or None when it is gone."""
    try:
        rss = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
                break
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds
    except (OSError, ValueError):
        return None


class Sampler(threading.Thread):
    def __init__(self, servers: list[Server], t0: float, stop: threading.Event):
        super().__init__(daemon=True, name="sampler")
        self.servers, self.t0, self.stop_ev = servers, t0, stop
        # (t, server, role, pid, rss_kb, fds); role: master / stapler / worker
        self.samples: list[tuple[float, int, str, int, int, int]] = []

    def run(self) -> None:
        for _ in range(1_000_000):
            if self.stop_ev.is_set():
                break
            t = now() - self.t0
            for s in self.servers:
                if not s.alive():
                    continue
                procs = [("master", s.master_pid())]
                sp = s.stapler_pid()
                if sp:
                    procs.append(("stapler", sp))
                procs += [("worker", p) for p in s.workers(current_only=False)]
                for role, pid in procs:
                    got = proc_sample(pid)
                    if got:
                        self.samples.append((t, s.index, role, pid, *got))
            self.stop_ev.wait(SAMPLE_EVERY)


# =============================================================================================
# The fault schedule
# =============================================================================================

@dataclass
class Fault:
    t: float                   # planned, seconds from the start of the load
    kind: str
    server: int = -1           # -1: not one server's (redis, responder, disk)
    arg: str = ""
    done_at: float | None = None
    took: float | None = None
    result: str = ""


PERIODS = {                    # kind: (mean period s, +- jitter s)
    "kill-worker": (20, 8),
    "graceful": (75, 20),      # USR1
    "restart": (100, 25),      # HUP
    "kill-stapler": (80, 20),
    "redis-restart": (150, 30),
    "disk-fill": (180, 30),
}
DISK_FULL_FOR = 30             # s the store's disk stays full
BAD_MODES = ("tryLater", "hang")


def redis_stop_seconds(minutes: float) -> float:
    """60 s for runs of 10 minutes or more, scaled down below, at least 15 s."""
    return max(15.0, min(60.0, 60.0 * minutes / 10))


def plan_faults(minutes: float, servers: int, seed: int, disk: bool) -> list[Fault]:
    rng = random.Random(seed)
    total = minutes * 60
    first, last = LEAD_IN, total - TAIL
    span = max(0.0, last - first)
    faults: list[Fault] = []
    # one redis stop in the middle (every server shares that redis)
    stop_for = redis_stop_seconds(minutes)
    stop_at = first + max(0.0, (span - stop_for) * rng.uniform(0.45, 0.6))
    stop_end = stop_at + stop_for
    if stop_end <= last:
        faults += [Fault(stop_at, "redis-stop", arg=f"{stop_for:.0f}s"),
                   Fault(stop_end, "redis-start")]
    for kind, (period, jitter) in PERIODS.items():
        if kind == "disk-fill" and not disk:
            continue
        t = first + rng.uniform(0, min(period, span) * 0.8)
        for _ in range(10_000):
            if t >= last:
                break
            if kind == "redis-restart" and stop_at - 5 <= t <= stop_end + 5:
                t += period
                continue
            if kind == "disk-fill":
                if t + DISK_FULL_FOR > last:
                    break
                faults += [Fault(t, "disk-fill"), Fault(t + DISK_FULL_FOR, "disk-free")]
            elif kind in ("redis-restart",):
                faults.append(Fault(t, kind))
            else:
                faults.append(Fault(t, kind, server=rng.randrange(servers)))
            t += max(5.0, period + rng.uniform(-jitter, jitter))
    # the responder flaps: normal for 40 +- 10 s, then tryLater or hang for 15..25 s
    t = first + rng.uniform(5, 20)
    for _ in range(10_000):
        bad_for = rng.uniform(15, 25)
        if t + bad_for > last:
            break
        faults += [Fault(t, "responder", arg=rng.choice(BAD_MODES)),
                   Fault(t + bad_for, "responder", arg="normal")]
        t += bad_for + rng.uniform(30, 50)
    return sorted(faults, key=lambda f: f.t)


class FaultRunner(threading.Thread):
    def __init__(self, faults: list[Fault], servers: list[Server], redis: Redis, responder,
                 store: StoreFS, t0: float, seed: int, stop: threading.Event):
        super().__init__(daemon=True, name="faults")
        self.faults, self.servers, self.redis = faults, servers, redis
        self.responder, self.store, self.t0, self.stop_ev = responder, store, t0, stop
        self.rng = random.Random(seed + 1)
        # per server: (from, to) intervals during which one of its processes was killed
        self.kills: dict[int, list[tuple[float, float, str]]] = {i: [] for i in range(len(servers))}
        self.problems: list[str] = []

    def run(self) -> None:
        for f in self.faults:
            wait = self.t0 + f.t - now()
            if wait > 0 and self.stop_ev.wait(wait):
                break
            if self.stop_ev.is_set():
                break
            t = now()
            try:
                f.result = self.apply(f) or "ok"
            except Exception as e:
                f.result = f"harness error: {type(e).__name__}: {e}"
                self.problems.append(f"{f.kind} at {f.t:.0f}s: {f.result}")
            f.done_at = t - self.t0
            f.took = now() - t

    def apply(self, f: Fault) -> str:
        s = self.servers[f.server] if f.server >= 0 else None
        if f.kind == "kill-worker":
            pids = s.workers()
            if not pids:
                return "no live worker"
            pid = self.rng.choice(pids)
            t = now()
            os.kill(pid, signal.SIGKILL)
            self.kills[s.index].append((t, t, f"SIGKILL worker {pid}"))
            return f"SIGKILL worker {pid}"
        if f.kind == "kill-stapler":
            pid = s.stapler_pid()
            if not pid:
                return "no stapler helper running"
            os.kill(pid, signal.SIGKILL)
            return f"SIGKILL stapler {pid}"
        if f.kind in ("graceful", "restart"):
            sig = signal.SIGUSR1 if f.kind == "graceful" else signal.SIGHUP
            t = now()
            ok, took = s.restart(sig)
            if f.kind == "restart":     # HUP stops the old workers: their connections may die
                self.kills[s.index].append((t, now(), "HUP restart"))
            if not ok:
                self.problems.append(f"{f.kind} of server{s.index} at {f.t:.0f}s: no HP01001 "
                                     f"within 30 s")
                return "not ready within 30 s"
            return f"ready in {took:.2f}s"
        if f.kind == "redis-restart":
            t = now()
            self.redis.stop()
            self.redis.start()
            return f"down {now() - t:.2f}s"
        if f.kind == "redis-stop":
            self.redis.stop()
            return "stopped"
        if f.kind == "redis-start":
            self.redis.start()
            return "started"
        if f.kind == "responder":
            self.responder.mode = f.arg
            return f"mode {f.arg}"
        if f.kind == "disk-fill":
            return f"{self.store.fill()} bytes written"
        if f.kind == "disk-free":
            self.store.free()
            return "freed"
        raise ValueError(f.kind)


# =============================================================================================
# Analysis
# =============================================================================================

def attribute(failures: list[dict], kills: dict[int, list[tuple[float, float, str]]]
              ) -> tuple[list[dict], list[dict]]:
    """(explained, unexplained): a failure is explained by a kill of its server that happened
    while its connection was open (conn_start .. end) and at most ATTRIBUTE_AFTER s before the
    failure was seen."""
    explained, unexplained = [], []
    for f in failures:
        why = None
        for k0, k1, what in kills.get(f["server"], []):
            if f["conn_start"] - SLACK <= k1 and k0 <= f["end"] + SLACK \
                    and f["end"] - k1 <= ATTRIBUTE_AFTER:
                why = what
                break
        (explained if why else unexplained).append({**f, "kill": why})
    return explained, unexplained


_LOG_TIME = re.compile(r"^\[(\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2}\.\d+ \d{4})\]")


def log_lines_between(server: Server, t_from: float, t_to: float, limit: int = 8) -> list[str]:
    """The server's error-log lines stamped between two epoch times (the log is local time)."""
    out = []
    for line in server.log().splitlines():
        m = _LOG_TIME.match(line)
        if not m:
            continue
        try:
            t = time.mktime(time.strptime(m.group(1).split(".")[0] + " " + m.group(1)[-4:],
                                          "%a %b %d %H:%M:%S %Y")) + float("0." + m.group(1).split(".")[1][:6])
        except ValueError:
            continue
        if t_from <= t <= t_to:
            out.append(line[:300])
            if len(out) >= limit:
                break
    return out


def explain_context(u: dict, faults: list[Fault], servers: list[Server], t0: float) -> dict:
    """What an unexplained failure met: the last fault before it (any kind) and the server's
    log lines around it."""
    end = u["end"] - t0
    before = [f for f in faults if f.done_at is not None and f.done_at <= end + SLACK
              and f.server in (u["server"], -1)]
    last = before[-1] if before else None
    return {"last_fault": None if last is None else
            f"{last.kind} {last.arg}".strip() + f" at {last.done_at:.2f}s ({end - last.done_at:.2f}s before)",
            "log": log_lines_between(servers[u["server"]], u["conn_start"] - 0.5, u["end"] + 0.5,
                                     limit=12)}


def slope_per_min(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


def fd_tolerance(role: str) -> int:
    """The stapler keeps a bounded pool of responder connections (one per fetch thread, at most
    MAX_PARALLEL) plus a fleet-lock connection, opened as threads first get work: its count
    settles anywhere up to that bound after a restart, so its tolerance is the bound; a leak
    (one per refresh or fault) still grows past it within a long run."""
    if role == "stapler":
        from httpd_py.stapling.stapler import MAX_PARALLEL
        return FD_TOLERANCE + MAX_PARALLEL + 1
    return FD_TOLERANCE


def flat(points: list[tuple[float, float]], what: str, role: str = "") -> tuple[bool, float]:
    """Flat: the median of the last third is within the tolerance of the median of the first
    third.  A median of thirds, not first vs last sample, because one sample may catch a
    worker with a connection (and a redis socket) in hand; a leak of one descriptor per
    connection, restart or fault grows by hundreds over a run and is not hidden by it."""
    if len(points) < 6:
        return True, 0.0
    n = len(points) // 3
    a = statistics.median(p[1] for p in points[:n])
    b = statistics.median(p[1] for p in points[-n:])
    if what == "fds":
        return b - a <= fd_tolerance(role), b - a
    rel, absolute = RSS_TOLERANCE
    return b - a <= a * rel + absolute, b - a


def resources(samples, servers: int) -> list[dict]:
    rows = []
    for si in range(servers):
        for role in ("master", "stapler", "worker"):
            pts = [s for s in samples if s[1] == si and s[2] == role]
            if not pts:
                continue
            # per sample time: the largest value over the role's processes (workers: several)
            by_t: dict[float, tuple[int, int]] = {}
            for t, _, _, _, rss, fds in pts:
                r, f = by_t.get(t, (0, 0))
                by_t[t] = (max(r, rss), max(f, fds))
            ts = sorted(by_t)
            rss_pts = [(t, by_t[t][0]) for t in ts]
            fd_pts = [(t, by_t[t][1]) for t in ts]
            series: dict[int, tuple[int, int]] = {}      # per 30 s: the largest values
            for t in ts:
                b = int(t // 30) * 30
                r, f = series.get(b, (0, 0))
                series[b] = (max(r, by_t[t][0]), max(f, by_t[t][1]))
            rss_flat, rss_growth = flat(rss_pts, "rss")
            fd_flat, fd_growth = flat(fd_pts, "fds", role)
            rows.append({
                "server": si, "role": role, "pids": len({p[3] for p in pts}), "samples": len(ts),
                "rss_kb": {"first": rss_pts[0][1], "last": rss_pts[-1][1],
                           "max": max(v for _, v in rss_pts),
                           "slope_per_min": round(slope_per_min(rss_pts), 1),
                           "growth": rss_growth, "flat": rss_flat},
                "fds": {"first": fd_pts[0][1], "last": fd_pts[-1][1],
                        "max": max(v for _, v in fd_pts),
                        "slope_per_min": round(slope_per_min(fd_pts), 3),
                        "growth": fd_growth, "flat": fd_flat},
                "series_30s": [[b, r, f] for b, (r, f) in sorted(series.items())],
            })
    return rows


LEVELS_OF_NOTE = ("warn", "error", "crit", "alert", "emerg")


def scan_logs(servers: list[Server]) -> dict:
    out = {"traceback": [], "ids": {}}
    for s in servers:
        for p in (s.error_log, s.console):
            try:
                text = p.read_text(errors="replace")
            except OSError:
                continue
            for i, line in enumerate(text.splitlines()):
                if "Traceback" in line:
                    out["traceback"].append(f"{p.relative_to(p.parents[1])}:{i + 1}: {line[:200]}")
            for level, hp in re.findall(r"\[\w+:(\w+)\] \[pid \d+\](?: \[client [^\]]*\])? (HP\d+):",
                                        text):
                if level in LEVELS_OF_NOTE:
                    key = f"{hp} ({level})"
                    ids = out["ids"].setdefault(f"server{s.index}", {})
                    ids[key] = ids.get(key, 0) + 1
    return out


def first_lines(servers: list[Server], hp: str, n: int = 3) -> list[str]:
    lines = []
    for s in servers:
        lines += [f"server{s.index}: {ln}" for ln in s.log().splitlines() if f"] {hp}:" in ln][:n]
    return lines[:n * 2]


def responder_report(log: list[tuple[float, int, str]], serials: dict[str, int], t0: float,
                     t_end: float) -> dict:
    windows = max(1e-9, (t_end - t0) / REFRESH_EVERY)
    per = {}
    for key, serial in serials.items():
        mine = [e for e in log if e[1] == serial and t0 <= e[0] <= t_end]
        normal = sum(1 for e in mine if e[2] == "normal")
        per[key] = {"serial": f"{serial:x}", "requests": len(mine), "answered_good": normal,
                    "during_faults": len(mine) - normal,
                    "good_per_window": round(normal / windows, 2),
                    "requests_per_window": round(len(mine) / windows, 2)}
    before = sum(1 for e in log if e[0] < t0)
    return {"refresh_window_s": REFRESH_EVERY, "windows": round(windows, 1),
            "requests_before_load": before, "per_certificate": per}


# =============================================================================================
# The run
# =============================================================================================

def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    rev = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "httpd_py"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        rev += " (httpd_py/ modified)" if dirty else ""
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release(), "root": os.geteuid() == 0, "commit": rev}


def run(minutes: float, n_servers: int, clients: int, seed: int, work: Path,
        log=print) -> dict:
    from httpd_py.devtools.pki import make_pki
    started = dt.datetime.now(dt.timezone.utc)
    store = StoreFS(work)
    if store.note:
        log(f"note: {store.note}")
    redis = Redis(work)
    responder = None
    servers: list[Server] = []
    stop = threading.Event()
    sampler = runner = None
    try:
        pki = make_pki(work / "pki", NAMES, ocsp_url="http://127.0.0.1:9/")
        serials = {f"{n}/{k}": pki.leaf(n, k).cert.serial_number for n in NAMES for k in KINDS}
        responder = make_responder(pki).start()
        redis.start()
        for i in range(n_servers):
            sdir = store.path / f"server{i}"
            servers.append(Server(i, work, pki, responder.url, redis.port, sdir))
        for s in servers:
            s.start()
        log(f"{n_servers} servers ready on ports {[s.port for s in servers]}, redis "
            f"{redis.port}, responder {responder.url}")
        faults = plan_faults(minutes, n_servers, seed, store.mounted)
        t0 = now()
        deadline = t0 + minutes * 60
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=client_process, args=(ClientPlan(
                    i, [s.port for s in servers], serials, deadline, seed), q), daemon=True)
                 for i in range(clients)]
        for p in procs:
            p.start()
        sampler = Sampler(servers, t0, stop)
        sampler.start()
        runner = FaultRunner(faults, servers, redis, responder, store, t0, seed, stop)
        runner.start()
        log(f"load and {len(faults)} faults for {minutes:g} min (seed {seed})")
        results = []
        for _ in procs:
            try:
                results.append(q.get(timeout=max(1.0, deadline - now()) + 2 * IO_TIMEOUT + 30))
            except Exception:
                break
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        t_end = now()
        stop.set()
        runner.join(60)
        sampler.join(10)
        alive = {s.index: s.alive() for s in servers}
        responder_log = list(responder.log)
    finally:
        stop.set()
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()
        if responder is not None:
            responder.stop()
        redis.stop()
        store.close()
    # --- the report --------------------------------------------------------------------------
    agg = {"handshakes": 0, "stapled_valid": 0, "unstapled": 0, "invalid": 0, "statuses": {},
           "failures_total": 0, "retries_total": 0, "handshake_max_s": 0.0, "handshake_slow": 0}
    failures, retries, invalid, harness_errors = [], [], [], []
    for _, r in results:
        for k in ("handshakes", "stapled_valid", "unstapled", "invalid", "failures_total",
                  "retries_total", "handshake_slow"):
            agg[k] += r[k]
        agg["handshake_max_s"] = max(agg["handshake_max_s"], r["handshake_max_s"])
        for k, v in r["statuses"].items():
            agg["statuses"][k] = agg["statuses"].get(k, 0) + v
        failures += r["failures"]
        retries += r["retries"]
        invalid += r["invalid_list"]
        harness_errors += r["errors"]
    if len(results) < clients:
        harness_errors.append(f"only {len(results)} of {clients} client processes reported")
    explained, unexplained = attribute(failures, runner.kills)
    kept = len(failures)
    unexplained_total = len(unexplained) + (agg["failures_total"] - kept)   # records capped
    r_expl, r_unexpl = attribute(retries, runner.kills)
    res_rows = resources(sampler.samples, n_servers)
    logs = scan_logs(servers)
    fault_counts: dict[str, int] = {}
    for f in faults:
        if f.done_at is not None:
            key = f"{f.kind} {f.arg}".strip() if f.kind == "responder" else f.kind
            fault_counts[key] = fault_counts.get(key, 0) + 1
    requests = agg["handshakes"] + sum(agg["statuses"].values()) + agg["failures_total"]
    fd_flat = all(r["fds"]["flat"] for r in res_rows)
    verdict = {
        "invalid_staples_zero": agg["invalid"] == 0,
        "unexplained_failures_zero": unexplained_total == 0,
        "no_traceback": not logs["traceback"],
        "descriptors_flat": fd_flat,
        "servers_alive_to_the_end": all(alive.values()),
        "no_harness_errors": not harness_errors and not runner.problems,
    }
    verdict["pass"] = all(verdict.values())
    rel = lambda t: round(t - t0, 2)   # noqa: E731
    return {
        "run": {"started": started.strftime("%Y-%m-%d %H:%M UTC"), "minutes": minutes,
                "servers": n_servers, "clients": clients, "seed": seed,
                "seconds": round(t_end - t0, 1), "machine": machine(),
                "store_tmpfs": store.mounted, "note": store.note,
                "timings": {"validity_s": VALIDITY, "skew_s": SKEW, "renew_window_s": RENEW_WINDOW,
                            "responder_timeout_s": RESPONDER_TIMEOUT,
                            "error_cache_timeout_s": ERROR_CACHE,
                            "redis_stop_s": redis_stop_seconds(minutes)}},
        "faults": {"counts": fault_counts, "problems": runner.problems,
                   "timeline": [{**asdict(f), "t": round(f.t, 1),
                                 "done_at": None if f.done_at is None else round(f.done_at, 2),
                                 "took": None if f.took is None else round(f.took, 2)}
                                for f in faults]},
        "requests": {"total": requests, "handshakes": agg["handshakes"],
                     "http": agg["statuses"], "handshake_max_s": round(agg["handshake_max_s"], 3),
                     "handshakes_over_1s": agg["handshake_slow"]},
        "failures": {"total": agg["failures_total"], "explained": len(explained),
                     "unexplained": unexplained_total,
                     "unexplained_list": [{**u, "start": rel(u["start"]), "end": rel(u["end"]),
                                           "conn_start": rel(u["conn_start"]),
                                           **explain_context(u, faults, servers, t0)}
                                          for u in unexplained[:50]],
                     "explained_by": count_by(explained, "kill"),
                     "keepalive_retries": len(retries), "retries_near_a_kill": len(r_expl),
                     "retries_list": [{**u, "start": rel(u["start"]), "end": rel(u["end"])}
                                      for u in r_unexpl[:20]]},
        "staples": {"valid": agg["stapled_valid"], "invalid": agg["invalid"],
                    "unstapled": agg["unstapled"],
                    "invalid_list": [{**i, "t": rel(i["t"])} for i in invalid[:20]]},
        "responder": responder_report(responder_log, serials, t0, t_end),
        "resources": res_rows,
        "logs": {**logs, "HP04814": first_lines(servers, "HP04814"),
                 "HP04813": first_lines(servers, "HP04813")},
        "exit_status": {f"server{s.index}": s.exit_status for s in servers},
        "harness_errors": harness_errors,
        "verdict": verdict,
    }


def count_by(rows: list[dict], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        k = re.sub(r"\d+", "N", str(r.get(key)))
        out[k] = out.get(k, 0) + 1
    return out


# =============================================================================================
# Markdown
# =============================================================================================

def markdown(rep: dict, command: str) -> str:
    r, req, fl, st = rep["run"], rep["requests"], rep["failures"], rep["staples"]
    m = r["machine"]
    out = [f"# Soak: {r['minutes']:g} min, {r['servers']} servers, {r['clients']} client processes",
           "",
           f"`{command}` — {r['started']}, {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
           f"kernel {m['kernel']}, commit {m.get('commit') or '?'}, seed {r['seed']}, "
           f"load {r['seconds']} s.",
           f"Staples valid {r['timings']['validity_s']} s, renew window {r['timings']['renew_window_s']} s "
           f"(a refresh about every {REFRESH_EVERY} s), responder timeout "
           f"{r['timings']['responder_timeout_s']} s, redis stop {r['timings']['redis_stop_s']:.0f} s."]
    if r["note"]:
        out.append(f"Note: {r['note']}.")
    v = rep["verdict"]
    out += ["", "## Verdict", "", "| check | result |", "|---|---|"]
    out += [f"| {k.replace('_', ' ')} | {'yes' if ok else '**NO**'} |" for k, ok in v.items()]
    out += ["", "## Faults", "", "| fault | times |", "|---|---|"]
    out += [f"| {k} | {n} |" for k, n in sorted(rep["faults"]["counts"].items())]
    if rep["faults"]["problems"]:
        out += ["", "Problems: " + "; ".join(rep["faults"]["problems"])]
    http_total = sum(req["http"].values())
    out += ["", "## Requests", "",
            f"- made: {req['total']} ({req['handshakes']} status-request handshakes, "
            f"{http_total} HTTP requests answered: "
            + ", ".join(f"{k}: {n}" for k, n in sorted(req["http"].items())) + ")",
            f"- failed: {fl['total']}: explained by a kill {fl['explained']} "
            f"({', '.join(f'{k}: {n}' for k, n in fl['explained_by'].items()) or '-'}), "
            f"**unexplained {fl['unexplained']}**",
            f"- keep-alive GETs retried once on a new connection (no byte back on a reused "
            f"connection): {fl['keepalive_retries']} ({fl['retries_near_a_kill']} near a kill)",
            f"- slowest handshake {req['handshake_max_s']} s; over 1 s: {req['handshakes_over_1s']}"]
    for u in fl["unexplained_list"][:10]:
        out.append(f"  - unexplained: server{u['server']} {u['op']} {u['start']}..{u['end']} s: "
                   f"{u['error']}; last fault: {u['last_fault']}")
        out += [f"    - `{ln}`" for ln in u["log"]]
    out += ["", "## Staples", "",
            f"- valid: {st['valid']}, **not valid: {st['invalid']}**, no staple: {st['unstapled']}"]
    for i in st["invalid_list"][:10]:
        out.append(f"  - invalid: {i['t']} s server{i['server']} {i['name']}/{i['kind']}: {i['why']}")
    rr = rep["responder"]
    out += ["", "## Responder requests", "",
            f"Refresh window {rr['refresh_window_s']} s, {rr['windows']} windows during the load; "
            f"{rr['requests_before_load']} requests before it (prefetch).", "",
            "| certificate | requests | answered good | during faults | good per window | all per window |",
            "|---|---|---|---|---|---|"]
    for k, p in rr["per_certificate"].items():
        out.append(f"| {k} | {p['requests']} | {p['answered_good']} | {p['during_faults']} | "
                   f"{p['good_per_window']} | {p['requests_per_window']} |")
    out += ["", "## RSS and descriptors", "",
            "Per sample, the largest value over the role's processes (workers: all live ones). "
            f"Flat: median of the last third within +{FD_TOLERANCE} descriptors (the stapler: "
            f"+{fd_tolerance('stapler')}, its bounded connection pool; RSS: +10 % + 4 MB) "
            "of the median of the first third.", "",
            "| server | role | pids | RSS KB first/last/max | RSS KB/min | fds first/last/max | fds/min | flat (fds, RSS) |",
            "|---|---|---|---|---|---|---|---|"]
    for row in rep["resources"]:
        a, b = row["rss_kb"], row["fds"]
        out.append(f"| {row['server']} | {row['role']} | {row['pids']} | {a['first']}/{a['last']}/"
                   f"{a['max']} | {a['slope_per_min']} | {b['first']}/{b['last']}/{b['max']} | "
                   f"{b['slope_per_min']} | {'yes' if b['flat'] else '**no**'}, "
                   f"{'yes' if a['flat'] else '**no**'} |")
    lg = rep["logs"]
    out += ["", "## Error logs", "",
            f"- Traceback: {'none' if not lg['traceback'] else '**' + str(len(lg['traceback'])) + ' lines**'}"]
    out += [f"  - {t}" for t in lg["traceback"][:10]]
    for srv, ids in lg["ids"].items():
        out.append(f"- {srv}: " + ", ".join(f"{k} x{n}" for k, n in sorted(ids.items())))
    out.append(f"- exit status after SIGTERM: {rep['exit_status']}")
    if rep["harness_errors"]:
        out += ["", "Harness errors: " + "; ".join(rep["harness_errors"])]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--servers", type=int, default=3)
    ap.add_argument("--clients", type=int, default=2, help="client processes (2 threads each)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report", type=Path, help="also write the report as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    a = ap.parse_args(argv)
    if not (0.5 <= a.minutes <= 240) or not (1 <= a.servers <= 8) or not (1 <= a.clients <= 16):
        ap.error("--minutes 0.5..240, --servers 1..8, --clients 1..16")
    if not (shutil.which("redis-server") or Path("/usr/bin/redis-server").exists()):
        print("scripts/soak: redis-server is not installed (apt-get install redis-server)",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="hp-soak-"))
    command = "scripts/soak " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        rep = run(a.minutes, a.servers, a.clients, a.seed, work,
                  log=lambda m: print(f"[soak] {m}", file=sys.stderr, flush=True))
    finally:
        if a.keep:
            print(f"[soak] work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    rep["run"]["command"] = command.strip()
    print(markdown(rep, command.strip()))
    if a.report:
        a.report.write_text(json.dumps(rep, indent=1) + "\n")
    return 0 if rep["verdict"]["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
