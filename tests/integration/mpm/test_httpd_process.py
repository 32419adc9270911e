"""The real ``httpd-py`` command: -k actions, detaching, restarts, -X, privileges.

Plain-HTTP configs keep these fast; TLS through the same master is covered by the shipped
conf/httpd.conf test (test_shipped_conf.py) and the tls/http helpers' suites.
"""
from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from httpd_py.devtools.pki import make_pki
from httpd_py.mpm import pidfile
from tests.support.server import HttpdServer, httpd, run_httpd, write_config
from tests.support.tools import free_port, require_tool, wait_until


def _conf(docroot: Path, port: int, extra: str = "") -> str:
    return (f'Listen 127.0.0.1:{port}\nDocumentRoot "{docroot}"\nStartServers 2\n'
            f'MinSpareServers 1\nMaxSpareServers 3\nKeepAliveTimeout 10\n{extra}\n')


@pytest.fixture
def site(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.html").write_text("hello from httpd-py\n")
    return docs


def _get(port: int, path: str = "/") -> tuple[int, str]:
    curl = require_tool("curl")
    r = subprocess.run([curl, "-sS", "-o", "-", "-w", "\n%{http_code}",
                        f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                       timeout=20)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def _http_request(path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def _read_response(f) -> tuple[int, dict[str, str], bytes]:
    status = f.readline()
    assert status, "connection closed before a response"
    code = int(status.split()[1])
    headers = {}
    while True:
        line = f.readline().decode().strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return code, headers, body


def test_foreground_serves_and_sigterm_removes_pidfile(tmp_path, site):
    port = free_port()
    with httpd(tmp_path, _conf(site, port)) as srv:
        assert _get(port) == (200, "hello from httpd-py\n")
        master = srv.pid()
        assert srv.proc.pid == master
        wait_until(lambda: len(srv.board().workers()) == 2, 10, what="2 workers")
        assert srv.stop() == 0
        assert not srv.pid_file.exists()
        assert " HP01002: " in srv.log_text()


def test_sigterm_to_the_whole_group_is_a_stop_not_child_failures(tmp_path, site):
    """systemd's control-group stop sends SIGTERM to the master and then to every child: the
    children's exits are the stop (no "exit signal SIGTERM" notices, no helper restarts)."""
    port = free_port()
    with httpd(tmp_path, _conf(site, port)) as srv:
        master = srv.pid()
        wait_until(lambda: len(srv.board().workers()) == 2, 10, what="2 workers")
        kids = [int(p) for p in subprocess.run(["pgrep", "-P", str(master)], capture_output=True,
                                               text=True).stdout.split()]
        assert kids
        os.kill(master, signal.SIGTERM)
        for pid in kids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        assert srv.wait_exit(30) == 0
        log = srv.log_text()
        assert " HP01002: " in log
        assert "exit signal SIGTERM" not in log and " HP01011: " not in log, log


def test_k_commands_detach_and_control_the_server(tmp_path, site):
    port = free_port()
    conf = write_config(tmp_path, _conf(site, port))
    pid_path = tmp_path / "run" / "httpd.pid"
    err = tmp_path / "logs" / "error_log"
    r = run_httpd(tmp_path, "-f", str(conf), "-k", "stop")
    assert r.returncode == 0 and "httpd-py (no pid file) not running" in r.stdout
    r = run_httpd(tmp_path, "-f", str(conf), "-k", "start")
    master = pidfile.read(str(pid_path))
    try:
        assert r.returncode == 0, r.stderr
        assert master and pidfile.alive(master)
        with open(f"/proc/{master}/stat") as f:       # detached: another session, no tty,
            fields = f.read().rsplit(")", 1)[1].split()  # not its leader (double fork)
        session, tty = int(fields[3]), int(fields[4])
        assert session not in (os.getsid(0), master) and tty == 0
        assert _get(port)[0] == 200                     # serving as soon as -k start returned
        r = run_httpd(tmp_path, "-f", str(conf), "-k", "start")
        assert r.returncode == 0 and f"httpd-py (pid {master}) already running" in r.stdout

        r = run_httpd(tmp_path, "-f", str(conf), "-k", "graceful")
        assert r.returncode == 0
        wait_until(lambda: err.read_text().count(" HP01001: ") == 2, 15, what="graceful restart")
        assert " HP01004: " in err.read_text()
        r = run_httpd(tmp_path, "-f", str(conf), "-k", "restart")
        assert r.returncode == 0
        wait_until(lambda: err.read_text().count(" HP01001: ") == 3, 15, what="restart")
        assert " HP01003: " in err.read_text()
        assert pidfile.read(str(pid_path)) == master and _get(port)[0] == 200

        # a broken config: -k graceful refuses to signal, prints the error, the server serves on
        conf.write_text(conf.read_text() + "NoSuchDirective on\n")
        r = run_httpd(tmp_path, "-f", str(conf), "-k", "graceful")
        assert r.returncode == 1 and "NoSuchDirective" in r.stderr and "line" in r.stderr
        assert err.read_text().count(" HP01001: ") == 3
        assert _get(port)[0] == 200
        conf.write_text(conf.read_text().replace("NoSuchDirective on\n", ""))

        r = run_httpd(tmp_path, "-f", str(conf), "-k", "graceful-stop")
        assert r.returncode == 0
        wait_until(lambda: not pidfile.alive(master), 15, what="graceful stop")
        assert not pid_path.exists() and " HP01005: " in err.read_text()

        r = run_httpd(tmp_path, "-f", str(conf), "-k", "restart")   # not running: starts
        assert r.returncode == 0 and "httpd-py not running, trying to start" in r.stdout
        master = pidfile.read(str(pid_path))
        assert master and _get(port)[0] == 200
        r = run_httpd(tmp_path, "-f", str(conf), "-k", "stop")
        assert r.returncode == 0
        wait_until(lambda: not pidfile.alive(master), 15, what="stop")
        assert not pid_path.exists()
        assert err.read_text().count(" HP01002: ") == 1
    finally:
        pid = pidfile.read(str(pid_path))
        if pid and pidfile.alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_start_errors_are_printed_before_detaching(tmp_path, site):
    port = free_port()
    busy = socket.socket()
    busy.bind(("127.0.0.1", port))
    busy.listen()
    try:
        conf = write_config(tmp_path, _conf(site, port))
        r = run_httpd(tmp_path, "-f", str(conf), "-k", "start")
        assert r.returncode == 1
        assert "HP01013" in r.stderr and f"127.0.0.1:{port}" in r.stderr
        assert "Traceback" not in r.stderr
        assert not (tmp_path / "run" / "httpd.pid").exists()
    finally:
        busy.close()


def test_bad_config_at_restart_keeps_serving(tmp_path, site):
    port = free_port()
    with httpd(tmp_path, _conf(site, port)) as srv:
        good = srv.conf.read_text()
        srv.conf.write_text(good + "<VirtualHost\n")
        srv.signal(signal.SIGUSR1)
        wait_until(lambda: " HP01006: " in srv.log_text(), 15, what="restart failure logged")
        srv.signal(signal.SIGHUP)
        wait_until(lambda: srv.log_text().count(" HP01006: ") == 2, 15, what="second failure")
        assert srv.log_text().count(" HP01001: ") == 1
        assert _get(port) == (200, "hello from httpd-py\n")
        assert srv.board().generation == 1
        srv.conf.write_text(good.replace("StartServers 2", "StartServers 3"))
        srv.restart(graceful=True)
        assert srv.board().generation == 2
        assert _get(port)[0] == 200


def test_graceful_restart_finishes_keepalive_request_mid_flight(tmp_path, site):
    port = free_port()
    with httpd(tmp_path, _conf(site, port)) as srv:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            f = s.makefile("rb")
            s.sendall(_http_request())
            code, headers, body = _read_response(f)
            assert code == 200 and headers.get("connection", "").lower() != "close"
            worker = next(w.pid for w in srv.board().workers() if w.requests == 1)
            # waiting in keep-alive: the worker's event loop holds it (or, without the loop,
            # the worker itself is in the keepalive state)
            wait_until(lambda: any(w.pid == worker and (w.state == "keepalive" or w.waiting[2])
                                   for w in srv.board().workers()), 10, what="keep-alive wait")
            req = _http_request("/index.html")
            s.sendall(req[:10])                     # mid-request
            srv.restart(graceful=True)
            s.sendall(req[10:])
            code, headers, body = _read_response(f)
            assert code == 200 and body == b"hello from httpd-py\n"
            assert headers.get("connection", "").lower() == "close"   # the old worker is leaving
            assert f.read() == b""
        wait_until(lambda: not pidfile.alive(worker), 10, what="old worker to exit")
        assert _get(port)[0] == 200


def test_single_process_mode(tmp_path, site):
    port = free_port()
    srv = HttpdServer(tmp_path, _conf(site, port), args=["-X"]).start()
    try:
        assert _get(port) == (200, "hello from httpd-py\n")
        assert srv.pid() == srv.proc.pid
        children = [p for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == srv.proc.pid]
        assert children == []                      # no fork: the master serves
    finally:
        assert srv.stop() == 0
    assert not srv.pid_file.exists()


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def _uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_workers_drop_to_user_and_group(tmp_path):
    """As root (CI): workers run as User/Group.  Not root: User is ignored, as in Apache."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    expected_uid = nobody.pw_uid if os.geteuid() == 0 else os.geteuid()
    # pytest's tmp dirs are 0700: serve from a world-readable directory instead
    docs = Path(tempfile.mkdtemp(prefix="httpd-py-docs-"))
    try:
        docs.chmod(0o755)
        (docs / "index.html").write_text("as nobody\n")
        (docs / "index.html").chmod(0o644)
        port = free_port()
        conf = _conf(docs, port, "User nobody\nGroup nogroup\n")
        with httpd(tmp_path, conf) as srv:
            assert _get(port) == (200, "as nobody\n")
            # booted workers (a "starting" one may not have switched yet)
            wait_until(lambda: srv.board().workers() and all(
                w.state != "starting" for w in srv.board().workers()), 10, what="booted workers")
            workers = [w.pid for w in srv.board().workers() if w.state != "starting"]
            assert workers and all(_uid_of(p) == expected_uid for p in workers)
            assert _uid_of(srv.pid()) == os.geteuid()   # the master keeps root (restarts, logs)
    finally:
        for p in docs.iterdir():
            p.unlink()
        docs.rmdir()


def test_unknown_user_is_a_clear_startup_error(tmp_path, site):
    """An unknown User stops the start with a message naming it (the config loader checks it
    with file and line; privileges.resolve would say HP01019)."""
    port = free_port()
    srv = HttpdServer(tmp_path, _conf(site, port, "User no-such-user-hp\n")).start(wait=False)
    try:
        assert srv.wait_exit() == 1
        err = srv.proc.stderr.read()
        assert "no-such-user-hp" in err and "Traceback" not in err
        assert "line" in err or "HP01019" in err
    finally:
        srv.stop()


def test_real_server_replaces_killed_worker_and_recycles(tmp_path, site):
    port = free_port()
    conf = _conf(site, port, "MinSpareServers 2\nMaxConnectionsPerChild 2\n").replace(
        "MinSpareServers 1\n", "")
    with httpd(tmp_path, conf) as srv:
        wait_until(lambda: len(srv.board().workers()) == 2, 10, what="2 workers")
        victim = min(w.pid for w in srv.board().workers())
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in {w.pid for w in srv.board().workers()}
                   and len(srv.board().workers()) == 2, 2.0, what="replacement within 2 s")
        assert " HP01010: " in srv.log_text()
        # MaxConnectionsPerChild 2: six connections need at least three workers
        seen = set()
        for _ in range(6):
            with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
                f = s.makefile("rb")
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert _read_response(f)[0] == 200
            seen |= {w.pid for w in srv.board().workers() if w.connections}
        assert len(seen) >= 3
        assert srv.proc.poll() is None


@pytest.mark.parametrize("waiting", ["Off", "On"])
def test_real_server_spares_follow_tls_load(tmp_path, waiting):
    """Spare workers converge under held TLS keep-alive connections and after them.  With the
    workers' event loop (WaitingConnections On, the default) the held connections wait in it and
    take no worker; with it Off each takes one, as Apache's prefork."""
    pki_dir = tmp_path / "pki"
    make_pki(pki_dir, ("a.test",))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.html").write_text("tls\n")
    port = free_port()
    conf = (f"Listen 127.0.0.1:{port} https\nDocumentRoot \"{docs}\"\nStartServers 1\n"
            f"MinSpareServers 2\nMaxSpareServers 3\nMaxRequestWorkers 12\nServerLimit 12\n"
            f"KeepAliveTimeout 30\nWaitingConnections {waiting}\n"
            f"<VirtualHost *:{port}>\nServerName a.test\nSSLEngine on\n"
            f"SSLCertificateFile {pki_dir}/a.test-ec.pem\nSSLCertificateKeyFile {pki_dir}/a.test-ec.key\n"
            f"</VirtualHost>\n")
    ctx = ssl.create_default_context(cafile=str(pki_dir / "root.pem"))
    with httpd(tmp_path, conf) as srv:
        def idle() -> int:
            return srv.board().count("starting", "idle")
        wait_until(lambda: 2 <= idle() <= 3, 10, what="idle within Min/MaxSpareServers")
        held = []
        try:
            for _ in range(5):
                raw = socket.create_connection(("127.0.0.1", port), timeout=20)
                s = ctx.wrap_socket(raw, server_hostname="a.test")
                f = s.makefile("rb")
                s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
                assert _read_response(f)[:1] == (200,)
                held.append((s, f))
            if waiting == "Off":
                wait_until(lambda: srv.board().count("keepalive") == 5 and 2 <= idle() <= 3, 20,
                           what="spares within Min/Max under 5 held connections")
            else:
                wait_until(lambda: sum(w.waiting[2] for w in srv.board().workers()) == 5
                           and 2 <= idle() <= 3 and len(srv.board().workers()) <= 3, 20,
                           what="5 connections waiting in keep-alive, no worker more")
        finally:
            for s, f in held:
                f.close()
                s.close()
        if waiting == "Off":
            wait_until(lambda: len(srv.board().workers()) == 3 and idle() == 3, 20,
                       what="back to MaxSpareServers idle workers")
        else:
            wait_until(lambda: 2 <= idle() == len(srv.board().workers()) <= 3
                       and not any(any(w.waiting) for w in srv.board().workers()), 20,
                       what="idle workers within Min/Max, nothing waiting")


def test_concurrent_clients_lose_nothing_across_graceful_restarts(tmp_path, site):
    """Four clients keep requesting (new connection each time) through three graceful restarts:
    every request gets its 200.  (HUP kills in-flight requests by design, as Apache's.)"""
    import http.client
    import threading
    port = free_port()
    with httpd(tmp_path, _conf(site, port, "MaxSpareServers 6")) as srv:
        results: list[int] = []
        errors: list[str] = []
        stop = threading.Event()

        def client():
            for _ in range(5000):                      # bounded; stopped by the event
                if stop.is_set():
                    return
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                try:
                    c.request("GET", "/")
                    r = c.getresponse()
                    r.read()
                    results.append(r.status)
                except OSError as e:
                    errors.append(repr(e))
                finally:
                    c.close()

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for graceful in (True, True, True):
                before = len(results)
                wait_until(lambda: len(results) >= before + 20, 20, what="requests answered")
                srv.restart(graceful=graceful)
            wait_until(lambda: len(results) >= before + 40, 20, what="requests after restarts")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert srv.board().generation == 4
        assert errors == [] and set(results) == {200}, (errors[:5], set(results))
