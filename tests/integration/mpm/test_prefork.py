"""The prefork master for real: forked workers, signals, restarts, spares, recycling.

Every test runs ``tests.integration.mpm.testapp`` (the master with a line-echo App) as its own
process and observes it through the file-backed scoreboard, the PidFile, /proc and the error
log's message ids.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time


from httpd_py.mpm import pidfile
from tests.support.tools import wait_until




def test_serves_and_stop_removes_pidfile_and_children(make_server):
    srv = make_server(prefork={"start_servers": 3, "min_spare_servers": 1,
                               "max_spare_servers": 5})
    srv.start()
    pid, tag, text = srv.request("hello")
    assert (tag, text) == ("a", "hello")
    wait_until(lambda: len(srv.worker_pids()) == 3, 5, what="3 workers")
    workers = srv.worker_pids()
    assert pid in workers
    assert srv.children() == workers          # the scoreboard agrees with /proc
    master = srv.master_pid()
    assert srv.board().master_pid == master

    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    assert not os.path.exists(srv.pid_file)
    assert not os.path.exists(srv.scoreboard)
    assert all(not pidfile.alive(p) for p in workers)
    assert srv.count_log("HP01002") == 1      # caught SIGTERM, shutting down


def test_scoreboard_records_requests_and_connections(make_server):
    srv = make_server(prefork={"start_servers": 1, "min_spare_servers": 1,
                               "max_spare_servers": 2})
    srv.start()
    with srv.connect() as c:
        pid, _, _ = c.ask("GET /first HTTP/1.1")
        c.ask("GET /second HTTP/1.1")
        # the App sets "keepalive" while it waits for the next line
        wait_until(lambda: next(s for s in srv.board().slots if s.pid == pid).state
                   == "keepalive", 5, what="keepalive state")
        slot = next(s for s in srv.board().slots if s.pid == pid)
        assert slot.request == "GET /second HTTP/1.1"
        assert slot.requests == 2
        assert slot.connections == 1
    wait_until(lambda: next(s for s in srv.board().slots if s.pid == pid).state == "idle", 5,
               what="worker idle after the connection")


def test_listen_port_only_binds_ipv4_and_ipv6(make_server):
    srv = make_server()
    srv.spec["listens"] = [["", srv.port]]
    srv.write_spec()
    srv.start()
    assert srv.request("v4", "127.0.0.1")[2] == "v4"
    if socket.has_ipv6 and os.path.exists("/proc/net/if_inet6"):
        assert srv.request("v6", "::1")[2] == "v6"


def test_killed_worker_is_replaced_within_two_seconds(make_server):
    srv = make_server(prefork={"start_servers": 2, "min_spare_servers": 2,
                               "max_spare_servers": 4})
    srv.start()
    wait_until(lambda: len(srv.worker_pids()) == 2, 5, what="2 workers")
    victim = min(srv.worker_pids())
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in srv.worker_pids() and len(srv.worker_pids()) == 2, 2.0,
               what="the killed worker to be replaced")
    srv.wait_log("HP01010")                 # child pid N exit signal SIGKILL
    assert "exit signal SIGKILL" in srv.log()
    assert srv.request("still")[2] == "still"


def test_max_connections_per_child_recycles(make_server):
    srv = make_server(prefork={"start_servers": 1, "min_spare_servers": 1,
                               "max_spare_servers": 2, "max_connections_per_child": 3})
    srv.start()
    served: dict[int, int] = {}
    for i in range(9):
        pid, _, _ = srv.request(f"r{i}")
        served[pid] = served.get(pid, 0) + 1
    assert max(served.values()) <= 3
    assert len(served) >= 3
    # recycled workers really exited
    wait_until(lambda: all(not pidfile.alive(p) for p, n in served.items() if n == 3), 5,
               what="recycled workers to exit")


def test_spares_converge_when_idle_and_under_load(make_server):
    srv = make_server(prefork={"start_servers": 1, "min_spare_servers": 2,
                               "max_spare_servers": 3, "max_request_workers": 12,
                               "server_limit": 12})
    srv.start()

    def idle() -> int:
        return srv.board().count("starting", "idle", generation=1)

    wait_until(lambda: 2 <= idle() <= 3, 10, what="idle workers within Min/MaxSpare")
    # load: hold 5 connections open in workers (keep-alive, busy for the scoreboard)
    clients = []
    try:
        for i in range(5):
            c = srv.connect()
            c.ask(f"hold{i}")
            clients.append(c)
        wait_until(lambda: srv.board().count("keepalive") == 5 and 2 <= idle() <= 3, 15,
                   what="spares again within Min/MaxSpare under load")
        assert len(srv.worker_pids()) >= 7
    finally:
        for c in clients:
            c.close()
    # load gone: 7+ idle workers, the master stops one a second down to MaxSpareServers
    wait_until(lambda: idle() == 3 and len(srv.worker_pids()) == 3, 15,
               what="idle workers back to MaxSpareServers")


def test_max_request_workers_caps_and_logs(make_server):
    srv = make_server(prefork={"start_servers": 1, "min_spare_servers": 2,
                               "max_spare_servers": 3, "max_request_workers": 2,
                               "server_limit": 2})
    srv.start()
    clients = []
    try:
        for i in range(2):
            wait_until(lambda: srv.board().count("idle") >= 1, 5,
                       what=f"an idle worker ({i}): {srv.board().slots[:3]}")
            c = srv.connect()
            c.ask(f"hold{i}")
            clients.append(c)
        srv.wait_log("HP01008")   # server reached MaxRequestWorkers setting
        assert len(srv.worker_pids()) == 2
    finally:
        for c in clients:
            c.close()


def test_graceful_restart_loses_no_request_on_keepalive(make_server):
    srv = make_server(prefork={"start_servers": 2, "min_spare_servers": 1,
                               "max_spare_servers": 4})
    srv.start()
    old_workers = srv.worker_pids(1)
    with srv.connect() as c:
        pid, tag, _ = c.ask("one")
        assert tag == "a"
        # the worker waits for the next request on the kept-alive connection
        # (a restart before that closes the connection after "one": Apache's keep-alive race)
        wait_until(lambda: any(s.pid == pid and s.state == "keepalive"
                               for s in srv.board().slots), 5, what="keepalive state")
        c.send(b"tw")                                   # mid-request
        srv.write_spec(tag="b")
        srv.signal(signal.SIGUSR1)
        srv.wait_log("HP01004")
        srv.wait_log("HP01001", 2)
        wait_until(lambda: srv.board().generation == 2 and srv.worker_pids(2), 5,
                   what="new generation workers")
        c.send(b"o\n")                                  # rest of the request
        assert c.read_reply() == (pid, "a", "two")      # the old worker finished it
        assert c.closed_by_server()                     # and closed the keep-alive connection
    # a client that kept asking through the restart saw every answer
    answers = []
    stop = threading.Event()

    def ask_loop():
        for i in range(20000):           # bounded; stopped once tag c answered
            if stop.is_set():
                return
            answers.append(srv.request(f"loop{i}"))

    t = threading.Thread(target=ask_loop)
    t.start()
    try:
        wait_until(lambda: len(answers) >= 5, 10, what="first answers")
        srv.write_spec(tag="c")
        srv.signal(signal.SIGUSR1)
        srv.wait_log("HP01001", 3)
        wait_until(lambda: any(a[1] == "c" for a in answers), 10, what="answers from tag c")
    finally:
        stop.set()
        t.join(30)
    assert [a[2] for a in answers] == [f"loop{i}" for i in range(len(answers))]
    wait_until(lambda: all(not pidfile.alive(p) for p in old_workers), 5,
               what="old generation to exit")
    assert srv.request("after")[1] == "c"


def test_hup_restart_replaces_workers_with_new_config(make_server):
    srv = make_server(prefork={"start_servers": 2, "min_spare_servers": 1,
                               "max_spare_servers": 4})
    srv.start()
    old = srv.worker_pids()
    srv.write_spec(tag="b")
    srv.signal(signal.SIGHUP)
    srv.wait_log("HP01003")
    srv.wait_log("HP01001", 2)
    wait_until(lambda: all(not pidfile.alive(p) for p in old), 5, what="old workers to die")
    pid, tag, _ = srv.request("x")
    assert tag == "b" and pid not in old
    assert srv.board().generation == 2


def test_bad_config_at_restart_keeps_serving(make_server):
    srv = make_server()
    srv.start()
    workers = srv.worker_pids()
    srv.write_spec(bad=True, tag="b")
    srv.signal(signal.SIGUSR1)
    srv.wait_log("HP01006")
    srv.signal(signal.SIGHUP)
    srv.wait_log("HP01006", 2)
    assert "Invalid command 'Bad'" in srv.log()
    assert srv.request("x")[1] == "a"
    assert srv.worker_pids() == workers and srv.board().generation == 1
    # a restart with a bind failure keeps serving too
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        srv.write_spec(bad=False, listens=srv.spec["listens"] + [["127.0.0.1",
                                                                  busy.getsockname()[1]]])
        srv.signal(signal.SIGUSR1)
        srv.wait_log("HP01006", 3)
        assert "HP01013" in srv.log()
        assert srv.request("y")[1] == "a"
    finally:
        busy.close()


def test_worker_boot_failure_halts_the_server(make_server):
    srv = make_server(fail_boot=True)
    srv.start(wait=False)
    assert srv.wait_exit() == 1
    assert srv.count_log("HP01020") >= 1      # the worker's reason
    assert srv.count_log("HP01007") == 1      # the master halts, once, no respawn loop
    assert not os.path.exists(srv.pid_file)


def test_boot_failure_after_restart_halts(make_server):
    srv = make_server()
    srv.start()
    srv.write_spec(fail_boot=True)
    srv.signal(signal.SIGHUP)
    assert srv.wait_exit() == 1
    assert srv.count_log("HP01007") == 1


def test_graceful_stop_finishes_inflight_connection(make_server):
    srv = make_server()
    srv.start()
    with srv.connect() as c:
        pid, _, _ = c.ask("one")
        wait_until(lambda: any(s.pid == pid and s.state == "keepalive"
                               for s in srv.board().slots), 5, what="keepalive state")
        c.send(b"tw")
        srv.signal(signal.SIGWINCH)
        srv.wait_log("HP01005")
        wait_until(lambda: not _accepting(srv.port), 5, what="listeners closed")
        c.send(b"o\n")
        assert c.read_reply() == (pid, "a", "two")
        assert c.closed_by_server()
    assert srv.wait_exit() == 0
    assert not os.path.exists(srv.pid_file)


def test_graceful_stop_timeout_ends_stuck_connections(make_server):
    srv = make_server(prefork={"graceful_shutdown_timeout": 1})
    srv.start()
    with srv.connect() as c:
        pid, _, _ = c.ask("one")
        wait_until(lambda: any(s.pid == pid and s.state == "keepalive"
                               for s in srv.board().slots), 5, what="keepalive state")
        c.send(b"never finished")
        srv.signal(signal.SIGWINCH)
        assert srv.wait_exit() == 0
        assert c.closed_by_server()


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_helper_is_restarted_when_it_dies(make_server):
    srv = make_server()
    helper_file = srv.dir / "helper.pid"
    srv.write_spec(helper_file=str(helper_file))
    srv.start()
    wait_until(lambda: helper_file.exists() and helper_file.read_text().strip(), 5,
               what="helper pid")
    first = int(helper_file.read_text())
    assert first in srv.children()
    os.kill(first, signal.SIGKILL)
    srv.wait_log("HP01011")
    wait_until(lambda: helper_file.read_text().strip() and int(helper_file.read_text()) != first,
               5, what="helper restarted")
    second = int(helper_file.read_text())
    assert pidfile.alive(second)
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    assert not pidfile.alive(second)


def test_restart_moves_the_pidfile(make_server):
    srv = make_server()
    srv.start()
    master = srv.master_pid()
    old = srv.pid_file
    new = str(srv.dir / "run2" / "other.pid")
    srv.write_spec(pid_file=new)
    srv.signal(signal.SIGUSR1)
    srv.wait_log("HP01001", 2)
    assert pidfile.read(new) == master and not os.path.exists(old)
    srv.pid_file = new
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    assert not os.path.exists(new)


def test_terminal_resize_does_not_stop_a_foreground_server(make_server):
    """A terminal resize sends SIGWINCH to the foreground process group: Apache -DFOREGROUND
    stops gracefully on it; we tell a kernel SIGWINCH from `kill -WINCH` and ignore it."""
    import fcntl
    import pty
    import struct
    import subprocess
    import termios
    from tests.integration.mpm.harness import REPO

    srv = make_server(log_level="debug")
    master_fd, slave_fd = pty.openpty()

    def controlling_tty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        srv.proc = subprocess.Popen(srv.command("--foreground"), cwd=REPO, stdin=slave_fd,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=controlling_tty)
        srv.wait_serving()
        assert os.tcgetpgrp(master_fd) == srv.master_pid()    # the server is in the foreground
        fcntl.ioctl(master_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        srv.wait_log("HP01027")                                # seen, and ignored
        assert srv.proc.poll() is None and srv.count_log("HP01005") == 0
        assert srv.request("still")[2] == "still"
        srv.signal(signal.SIGWINCH)                            # kill -WINCH still stops
        assert srv.wait_exit() == 0
        assert srv.count_log("HP01005") == 1
    finally:
        os.close(master_fd)
        os.close(slave_fd)


def test_spawn_rate_doubles_while_short_of_spares(make_server):
    """Apache's idle_spawn_rate: 1, 2, 4, 8 ... workers per second while idle < MinSpareServers
    (HP01009 "server seems busy" from 8 on), never past MaxSpareServers idle."""
    srv = make_server(prefork={"start_servers": 1, "min_spare_servers": 10,
                               "max_spare_servers": 20, "max_request_workers": 32,
                               "server_limit": 32})
    srv.start()
    wait_until(lambda: srv.board().count("starting", "idle") >= 10, 15,
               what="idle workers up to MinSpareServers")
    assert "spawning 8 children" in srv.log()
    assert 10 <= len(srv.worker_pids()) <= 20


def test_every_worker_busy_with_connections_queued_is_logged_once_and_on_the_scoreboard(
        make_server):
    srv = make_server(prefork={"start_servers": 2, "min_spare_servers": 1,
                               "max_spare_servers": 3, "max_request_workers": 2,
                               "server_limit": 4})
    srv.start()
    wait_until(lambda: srv.board().count("idle") == 2, 5, what="2 idle workers")
    hold = threading.Event()
    answers: list[str] = []

    def slow_client(i: int) -> None:     # holds its connection until told (bounded: 10 s)
        try:
            with srv.connect() as c:
                answers.append(c.ask(f"GET /slow/{i} HTTP/1.1")[2])
                hold.wait(10)
        except OSError as e:
            answers.append(f"error {e}")

    clients = [threading.Thread(target=slow_client, args=(i,), daemon=True) for i in range(4)]
    for t in clients:
        t.start()
    try:
        srv.wait_log("HP01029", timeout=5)     # MaxRequestWorkers reached, connections queued
        view = srv.board()
        assert view.pressure.busy_since > 0 and view.pressure.queued == 2, view.pressure
        assert view.count("keepalive") == 2
        out = subprocess.run([sys.executable, "-m", "httpd_py.mpm.scoreboard", srv.scoreboard],
                             capture_output=True, text=True, timeout=10).stdout
        assert "all workers busy since" in out and "2 connections queued" in out, out
        line = next(ln for ln in srv.log().splitlines() if " HP01029: " in ln)
        assert "K=2" in line and "_=0" in line and "2 connection(s) queued" in line, line
        assert "GET /slow/" in line, line                         # the oldest request lines
        time.sleep(2.2)                                          # two more ticks, still busy
    finally:
        hold.set()
        for t in clients:
            t.join(15)
    assert sorted(answers) == [f"GET /slow/{i} HTTP/1.1" for i in range(4)], answers
    assert srv.count_log("HP01029") == 1
    wait_until(lambda: srv.board().pressure.queued == 0, 3, what="the queue drained")
    assert srv.board().pressure.episodes == 1
