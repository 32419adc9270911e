"""A restart's configuration load runs beside the master's loop: while the next generation
loads (slowly, on purpose), a killed worker is reaped and replaced at once, no connection is
refused, stop and restart signals are taken; the generation switches when the load ends."""
from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import threading
import time

import pytest

from httpd_py.devtools.pki import make_pki
from httpd_py.devtools.responder import Responder
from httpd_py.mpm import pidfile
from httpd_py.mpm.scoreboard import read_board
from tests.integration.stapling_bg.realserver import RealServer, vhost_lines
from tests.support.tools import wait_until


class Traffic:
    """A client thread opening one connection after another until stopped; counts failures.

    ``check()``: nothing was refused, and at most the one connection the killed worker held
    was lost (SIGKILL mid-connection cuts it; that is not what these tests are about).
    """

    def __init__(self, ask):
        self.ask = ask
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.ask()
                self.ok += 1
            except (OSError, ValueError) as e:
                self.failures.append(f"{time.monotonic():.3f} {type(e).__name__}: {e}")
            self._stop.wait(0.05)

    def check(self, min_ok: int) -> None:
        assert not [f for f in self.failures if "Refused" in f], self.failures
        assert len(self.failures) <= 1 and self.ok >= min_ok, (self.ok, self.failures)

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(15)


@pytest.fixture
def echo(make_server):
    return make_server


def _kill_old_worker_while_loading(srv, generation: int, load_delay: float) -> float:
    """SIGKILL a worker of ``generation`` mid-load; return how long its replacement took."""
    workers = sorted(srv.worker_pids(generation))
    victim = workers[0]
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in srv.worker_pids()
               and len(srv.worker_pids(generation)) == len(workers), load_delay / 2,
               what=f"the killed worker {victim} replaced during the load")
    took = time.monotonic() - t0
    assert srv.board().generation == generation, "the load should still be running"
    assert victim not in srv.children()            # reaped, not a zombie
    return took


def test_killed_worker_is_replaced_while_a_slow_restart_loads(echo):
    srv = echo(prefork={"start_servers": 2, "min_spare_servers": 2, "max_spare_servers": 4})
    srv.start()
    wait_until(lambda: len(srv.worker_pids(1)) == 2, 5, what="2 workers")
    with Traffic(lambda: srv.request("t")) as traffic:
        srv.write_spec(tag="b", load_delay=4)
        t_signal = time.monotonic()
        srv.signal(signal.SIGUSR1)
        srv.wait_log("HP01004")
        time.sleep(0.3)                             # well inside before_fork's 4 s
        took = _kill_old_worker_while_loading(srv, 1, 4)
        assert srv.request("mid")[1] == "a"         # the old generation still serves
        srv.wait_log("HP01001", 2, timeout=10)      # the switch, once the load ended
        switched = time.monotonic() - t_signal
        pid, tag, _ = srv.request("after")
        assert tag == "b" and srv.board().generation == 2
    traffic.check(min_ok=20)
    assert took < 1.0, took
    assert 4.0 <= switched < 8.0, switched
    assert re.search(r"HP01028: .* meanwhile [1-9]\d* processes were forked", srv.log())
    print(f"\nreplacement during the load: {took * 1000:.0f} ms; generation switch after "
          f"{switched:.2f} s (load 4 s); {traffic.ok} requests, {len(traffic.failures)} cut by the kill")


def test_stop_and_restart_signals_during_a_slow_load(echo):
    srv = echo(prefork={"start_servers": 2, "min_spare_servers": 1, "max_spare_servers": 4})
    srv.start()
    # a HUP while a graceful restart loads: taken after it (one more restart), not lost
    srv.write_spec(tag="b", load_delay=1.5)
    srv.signal(signal.SIGUSR1)
    srv.wait_log("HP01004")
    srv.signal(signal.SIGHUP)
    srv.wait_log("HP01003")
    assert "another one follows it" in srv.log()
    srv.wait_log("HP01001", 3, timeout=10)
    assert srv.board().generation == 3
    assert srv.request("x")[1] == "b"
    # a bad config still keeps the old generation, load thread or not
    srv.write_spec(bad=True)
    srv.signal(signal.SIGUSR1)
    srv.wait_log("HP01006")
    assert srv.request("y")[1] == "b" and srv.board().generation == 3
    # TERM in the middle of a load: the server stops at once (workers), then drops the
    # half-built generation when the thread ends; nothing is left listening
    srv.write_spec(bad=False, tag="c", load_delay=3)
    srv.signal(signal.SIGUSR1)
    srv.wait_log("HP01004", 2)
    time.sleep(0.3)
    workers = srv.worker_pids()
    master = srv.master_pid()
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: all(not pidfile.alive(p) for p in workers), 3, what="workers to stop")
    assert srv.wait_exit(15) == 0
    assert time.monotonic() - t0 < 6
    assert not pidfile.alive(master)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


# --- the real server: a restart whose stapling prefetch waits out a hung responder -----------

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), ("a.test", "b.test"),
                    ocsp_url="http://127.0.0.1:9/")


def _https_get(port: int, name: str = "a.test") -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64)
    if not head.startswith(b"HTTP/1.1 200"):
        raise ValueError(f"unexpected answer {head!r}")


def test_real_server_replaces_a_worker_while_the_restart_prefetch_hangs(tmp_path, pki):
    timeout = 4
    with Responder.for_pki(pki) as responder:
        srv = RealServer(tmp_path / "srv", pki, responder.url, names=("a.test",),
                         stapling=[f"SSLStaplingResponderTimeout {timeout}",
                                   "MinSpareServers 2"], workers=2)
        board_file = srv.dir / "run" / "httpd.scoreboard"
        try:
            srv.start()
            wait_until(lambda: len(read_board(str(board_file)).workers(1)) == 2, 5,
                       what="2 workers")
            # the restart adds b.test: its certificates have no staple yet, so the new
            # generation's prefetch asks the (now hung) responder and waits its full timeout
            responder.mode = "hang"
            srv.conf.write_text(srv.conf.read_text() + "\n".join(
                vhost_lines(pki, "b.test", srv.port, responder.url)) + "\n")
            ready = srv.count("HP01001")
            with Traffic(lambda: _https_get(srv.port)) as traffic:
                t_signal = time.monotonic()
                os.kill(srv.master_pid(), signal.SIGUSR1)
                wait_until(lambda: srv.count("HP01004") >= 1, 5, what="HP01004")
                time.sleep(0.5)
                workers = sorted(read_board(str(board_file)).workers(1), key=lambda s: s.pid)
                victim = workers[0].pid
                t_kill = time.monotonic()
                os.kill(victim, signal.SIGKILL)

                def replaced():
                    view = read_board(str(board_file))
                    pids = {s.pid for s in view.workers(1)}
                    return victim not in pids and len(pids) == 2
                try:
                    wait_until(replaced, timeout / 2, what="the killed worker replaced mid-load")
                except AssertionError:
                    raise AssertionError(f"{read_board(str(board_file))}\n{srv.log()}") from None
                took = time.monotonic() - t_kill
                assert read_board(str(board_file)).generation == 1   # still loading
                assert srv.count("HP01001") == ready
                srv.wait_ready(ready, timeout=timeout + 10)
                switched = time.monotonic() - t_signal
                _https_get(srv.port, "b.test")
            traffic.check(min_ok=10)
            assert took < 1.0, took
            assert switched >= timeout - 0.5, switched       # the load did wait the responder
            assert re.search(r"HP01028: .* meanwhile [1-9]\d* processes were forked",
                             srv.log()), srv.log()
            assert "Traceback" not in srv.log()
            print(f"\nreal server: replacement mid-load {took * 1000:.0f} ms; switch after "
                  f"{switched:.2f} s (SSLStaplingResponderTimeout {timeout}); "
                  f"{traffic.ok} handshakes, {len(traffic.failures)} cut by the kill")
        finally:
            srv.stop()
