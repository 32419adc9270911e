"""`httpd-py -k start|stop` as a user runs it: the command detaches and returns once the server
serves, a second start says "already running", stop stops it, a second stop says "not running".
The server itself belongs to the mpm/server helpers; this checks the CLI's side of the contract."""
import os
import subprocess
import sys

from tests.support.tools import free_port, port_accepting, wait_until

EXE = [sys.executable, "-m", "httpd_py"]


def run(*args):
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=60)


def test_k_start_stop(tmp_path):
    port = free_port()
    (tmp_path / "docs").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "docs" / "index.html").write_text("hello\n")
    conf = tmp_path / "httpd.conf"
    user = "User root\nGroup root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"ServerRoot {tmp_path}\nListen 127.0.0.1:{port}\nDocumentRoot {tmp_path}/docs\n"
                    f"PidFile logs/httpd.pid\nErrorLog logs/error_log\nStartServers 1\n{user}")
    started = run("-f", str(conf), "-k", "start")
    try:
        assert started.returncode == 0, started.stderr
        assert port_accepting(port)                       # serving when the command returns
        again = run("-f", str(conf), "-k", "start")
        assert again.returncode == 0 and "already running" in again.stdout + again.stderr
    finally:
        stopped = run("-f", str(conf), "-k", "stop")
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: not port_accepting(port), timeout=15, what="the server to stop")
    wait_until(lambda: not (tmp_path / "logs" / "httpd.pid").exists(), timeout=15,
               what="the PidFile to go")
    again = run("-f", str(conf), "-k", "stop")
    assert "not running" in again.stdout + again.stderr
