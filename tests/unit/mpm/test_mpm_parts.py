"""The mpm's small parts in one process: scoreboard layout, listeners, privileges, PidFile, -k
messages.  The master and workers themselves are tested as real processes in
tests/integration/mpm."""
from __future__ import annotations

import os
import socket

import pytest

from httpd_py.config.model import ListenSpec, PreforkConfig, ServerConfig, VHost
from httpd_py.errors import StartupError
from httpd_py.mpm import control, pidfile, privileges
from httpd_py.mpm.listeners import addresses, bind_all
from httpd_py.mpm.scoreboard import REQUEST_MAX, Scoreboard, main as scoreboard_main, read_board


def test_scoreboard_slots_round_trip_through_the_file(tmp_path):
    path = str(tmp_path / "sb")
    board = Scoreboard(4, path)
    try:
        board.set_generation(3)
        s = board.slots[2]
        s.claim(0, 3)
        s.set_pid(4242)
        s.set_state("reading")
        s.record_request("GET /a HTTP/1.1")
        s.count_connection()
        s.record_request(b"GET /" + b"x" * 500)            # truncated, never overflows
        s.set_state("keepalive")
        view = read_board(path)
        assert view.master_pid == os.getpid() and view.generation == 3
        [info] = view.workers()
        assert (info.index, info.pid, info.generation, info.state) == (2, 4242, 3, "keepalive")
        assert info.requests == 2 and info.connections == 1
        assert info.request == "GET /" + "x" * (REQUEST_MAX - 5)
        assert board.slots[1].read().state == "dead"
        assert view.count("keepalive") == 1 and view.count("idle") == 0
        s.release()
        assert read_board(path).workers() == []
    finally:
        board.close()
    assert not os.path.exists(path)


def test_scoreboard_waiting_and_parked_counts(tmp_path):
    """The event loop's counts round-trip through the file (the parked count sits after the
    request line: a long request line does not touch it), show in the status command, and a
    fresh claim of the slot clears them."""
    path = str(tmp_path / "sb")
    board = Scoreboard(2, path)
    try:
        s = board.slots[1]
        s.claim(0, 1)
        s.set_pid(77)
        s.set_state("keepalive")
        s.set_waiting(1, 2, 70000, 5)                   # keep-alive over u16: capped
        s.record_request(b"GET /" + b"y" * 500)
        [info] = read_board(path).workers()
        assert info.waiting == (1, 2, 65535) and info.parked == 5
        assert s.read().parked == 5
        assert "waiting 1/2/65535 parked 5" in _status_output(path)
        s.claim(0, 2)
        assert s.read().waiting == (0, 0, 0) and s.read().parked == 0
    finally:
        board.close()


def _status_output(path: str) -> str:
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert scoreboard_main([path]) == 0
    return out.getvalue()


def test_scoreboard_states_by_name_only():
    board = Scoreboard(1)
    with pytest.raises(KeyError):
        board.slots[0].set_state("sleeping")
    board.close()


def test_scoreboard_status_command(tmp_path, capsys):
    path = str(tmp_path / "sb")
    board = Scoreboard(3, path)
    board.slots[0].claim(0, 1)
    board.slots[0].set_pid(99)
    board.slots[0].set_state("idle")
    assert scoreboard_main([path]) == 0
    out = capsys.readouterr().out
    assert "1 workers, 1 idle" in out and out.splitlines()[1] == "_.."
    board.close()
    assert scoreboard_main([str(tmp_path / "missing")]) == 1
    (tmp_path / "junk").write_bytes(b"\0" * 200)
    assert scoreboard_main([str(tmp_path / "junk")]) == 1
    assert "not an httpd-py scoreboard" in capsys.readouterr().err


def test_listen_forms():
    assert addresses(ListenSpec("127.0.0.1", 8443)) == [(socket.AF_INET, "127.0.0.1", 8443)]
    assert addresses(ListenSpec("[::1]", 8443)) == [(socket.AF_INET6, "::1", 8443)]
    both = addresses(ListenSpec("", 8443))
    assert both[0] == (socket.AF_INET, "0.0.0.0", 8443)
    assert all(port == 8443 for _, _, port in both)


def test_bind_keeps_unchanged_listeners_and_cleans_up_on_error():
    first = bind_all([ListenSpec("127.0.0.1", 0)], 16)
    try:
        # port 0 binds a fresh port each time, so re-key by the real port
        port = first[0].addr[1]
        lst = bind_all([ListenSpec("127.0.0.1", port)], 16, {first[0].key[:2] + (port,): first[0]})
        assert lst[0] is first[0]
        busy = first[0].addr[1]
        with pytest.raises(StartupError, match=f"HP01013.*127.0.0.1:{busy}"):
            bind_all([ListenSpec("127.0.0.1", 0), ListenSpec("127.0.0.1", busy)], 16)
        with pytest.raises(StartupError, match="no listening sockets"):
            bind_all([], 16)
    finally:
        for lst in first:
            lst.close()


def test_privileges_resolution():
    assert privileges.resolve("nobody", None, euid=1000) is None      # not root: nothing to drop
    c = privileges.resolve(None, None, euid=0)
    assert c.user == "nobody" and c.implicit and c.uid == 65534
    c = privileges.resolve("#65534", "#123", euid=0)
    assert (c.uid, c.gid, c.implicit) == (65534, 123, False)
    assert privileges.resolve("root", None, euid=0).uid == 0
    with pytest.raises(StartupError, match="HP01019.*no-such-user"):
        privileges.resolve("no-such-user", None, euid=0)
    with pytest.raises(StartupError, match="HP01019.*no-such-group"):
        privileges.resolve("nobody", "no-such-group", euid=0)


def test_pidfile(tmp_path):
    path = str(tmp_path / "run" / "httpd.pid")
    assert pidfile.read(path) is None and pidfile.running(path) is None
    pidfile.write(path)
    assert pidfile.read(path) == os.getpid() == pidfile.running(path)
    pidfile.remove(path, pid=os.getpid() + 1)          # not ours: kept
    assert os.path.exists(path)
    pidfile.remove(path)
    assert not os.path.exists(path)
    (tmp_path / "junk.pid").write_text("not a pid\n")
    assert pidfile.read(str(tmp_path / "junk.pid")) is None


class _App:
    def __init__(self, pid_file):
        self.config = ServerConfig(config_file="x", server_root="/", main=VHost(), vhosts=(),
                                   listens=(), prefork=PreforkConfig(), pid_file=pid_file)


def test_k_messages_without_a_running_server(tmp_path, capsys):
    pid_file = str(tmp_path / "httpd.pid")
    load = lambda: _App(pid_file)                          # noqa: E731
    assert control.run(load, "stop") == 0
    assert capsys.readouterr().out == "httpd-py (no pid file) not running\n"
    # a stale pid file: a pid that is surely not running
    with open(pid_file, "w") as f:
        f.write("4194303\n")
    assert control.run(load, "graceful-stop") == 0
    assert capsys.readouterr().out == "httpd-py (pid 4194303?) not running\n"
    assert control.run(load, "bogus") == 1
    assert "Usage" in capsys.readouterr().err
    assert control.scoreboard_path("/run/httpd.pid") == "/run/httpd.scoreboard"
    assert control.scoreboard_path("/run/pidfile") == "/run/pidfile.scoreboard"


def test_fork_hazard_names_a_thread_inside_an_openssl_binding(monkeypatch):
    import threading
    import time as _time

    from httpd_py.mpm import master

    release = threading.Event()

    def blocked_in_binding() -> None:     # stands for a cffi call into OpenSSL (GIL released)
        release.wait(5)

    t = threading.Thread(target=blocked_in_binding, daemon=True)
    t.start()
    try:
        _time.sleep(0.05)
        assert master.fork_hazard() is None          # a thread waiting elsewhere is no hazard
        monkeypatch.setattr(master, "_hazard_prefixes", master._hazard_paths() + (__file__,))
        # its innermost frame is threading's wait, not this file: still no hazard
        assert master.fork_hazard() is None
        monkeypatch.setattr(master, "_hazard_prefixes",
                            master._hazard_paths() + (threading.__file__,))
        assert "wait" in master.fork_hazard()
    finally:
        release.set()
        t.join()
    assert any(p.endswith(os.sep.join(("httpd_py", "tls", ""))) for p in master._hazard_paths())
    assert any("OpenSSL" in p for p in master._hazard_paths())


def test_fork_is_put_off_while_the_loader_holds_the_fork_gate():
    from httpd_py.mpm.master import Master, _ForkDeferred

    m = Master(lambda: None, write_pidfile=False)
    with m._fork_gate:
        with pytest.raises(_ForkDeferred):
            m._fork()
    assert not m._fork_gate.locked()


def test_queue_pressure_logged_once_per_episode_and_on_the_scoreboard(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from httpd_py import log
    from httpd_py.mpm import master as mm
    from httpd_py.mpm.master import Master, WorkerProc

    r, w = os.pipe()
    monkeypatch.setattr(log, "error_log", log.ErrorLog(w, "info"))
    m = Master(lambda: None, write_pidfile=False)
    m.app = SimpleNamespace(config=ServerConfig(
        config_file="x", server_root="/", main=VHost(), vhosts=(), listens=(),
        prefork=PreforkConfig(max_request_workers=2)))
    m.board = Scoreboard(4, str(tmp_path / "sb"))
    m.generation = 1
    for slot, pid in enumerate((101, 102)):
        m.board.slots[slot].claim(pid, 1)
        m.board.slots[slot].record_request(f"GET /{pid} HTTP/1.1")
        m.board.slots[slot].set_state("writing")
        m.workers[pid] = WorkerProc(pid, slot, 1)
    queued = [3]
    monkeypatch.setattr(m, "queued_connections", lambda: queued[0])

    m._check_pressure(100.0)
    m._check_pressure(101.0)
    queued[0] = 5
    m._check_pressure(102.0)
    view = read_board(str(tmp_path / "sb"))
    assert view.pressure.busy_since > 0 and view.pressure.queued == 5
    assert view.pressure.queued_peak == 5 and view.pressure.episodes == 1
    queued[0] = 0                                    # gone, but not for long: same episode
    m._check_pressure(103.0)
    assert read_board(str(tmp_path / "sb")).pressure.queued == 0
    queued[0] = 1
    m._check_pressure(104.0)
    queued[0] = 0
    m._check_pressure(104.0 + mm.PRESSURE_REARM)     # gone for PRESSURE_REARM: episode over
    assert read_board(str(tmp_path / "sb")).pressure.busy_since == 0.0
    queued[0] = 2                                    # and back: logged again
    m._check_pressure(200.0)
    assert read_board(str(tmp_path / "sb")).pressure.episodes == 2
    os.close(w)
    text = os.read(r, 1 << 16).decode()
    os.close(r)
    assert text.count(" HP01029: ") == 2 and text.count(" HP01030: ") == 1, text
    first = text.splitlines()[0]
    assert "W=2" in first and "_=0" in first and "3 connection(s) queued" in first, first
    assert 'GET /101 HTTP/1.1' in first and "at most 5 queued" in text
    m.board.close()
