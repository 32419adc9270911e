"""Logs through the real server (``python -m httpd_py``: prefork master, workers): piped
CustomLog and ErrorLog programs killed and restarted by the master, syslog to a unix datagram
socket the test binds (``HTTPD_PY_SYSLOG_SOCKET``: the machine has no /dev/log), per-vhost
ErrorLog and LogLevel (with a per-module level), CustomLog ``env=`` / ``expr=`` conditions and
ErrorLogFormat.

Tests marked ``needs_wiring`` depend on two lines in files the lead owns (server.py:
``log.open_server_logs(cfg)`` in ``before_fork``; http/connection.py: the CustomLog's
``condition`` handed to ``AccessLogs.renderer``).  They are strict xfails until then (an XPASS
fails: remove the marker with the wiring); ``HTTPD_PY_LOGS_WIRED=1`` runs them as plain tests.
"""
from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.server import httpd, run_httpd
from tests.support.tools import free_port, require_tool, wait_until

WIRED = True    # the wiring is in (server.py: log.open_server_logs; connection.py: conditions, scope)
needs_wiring = pytest.mark.xfail(not WIRED, strict=True, reason="needs the lead's wiring: "
                                 "log.open_server_logs in server.py / CustomLog conditions in "
                                 "http/connection.py")


@pytest.fixture
def logger(tmp_path):
    """A log program: appends "START <pid>" then every line it reads to the file it is given."""
    script = tmp_path / "logger.py"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import os, sys
        with open(sys.argv[1], "a", buffering=1) as out:
            out.write(f"START {{os.getpid()}}\\n")
            for line in sys.stdin:
                out.write(line)
        """))
    script.chmod(0o755)
    return script


def site(tmp: Path) -> Path:
    docs = tmp / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "index.html").write_text("hello\n")
    (docs / "a.png").write_bytes(b"\x89PNG")
    return docs


def get(port: int, path: str, host: str = "localhost", headers: dict | None = None) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path, headers={"Host": host, **(headers or {})})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


def starts(p: Path) -> list[int]:
    return [int(m) for m in re.findall(r"^START (\d+)$", read(p), re.M)]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        return True


# ---- piped logs ---------------------------------------------------------------------------------

def test_custom_log_program_killed_is_restarted_and_loses_no_line(tmp_path, logger):
    port, out = free_port(), tmp_path / "access.out"
    conf = (f'Listen 127.0.0.1:{port}\nDocumentRoot "{site(tmp_path)}"\n'
            f'CustomLog "|{logger} {out}" "%U %>s"\n')
    with httpd(tmp_path, conf) as srv:
        assert get(port, "/one") == 404
        wait_until(lambda: "/one 404" in read(out), 10, what="the first access line")
        [first] = starts(out)
        os.kill(first, signal.SIGKILL)
        assert get(port, "/two") == 404           # logged while the program may be down
        wait_until(lambda: len(starts(out)) == 2 and "/two 404" in read(out), 10,
                   what="a new program and the line written meanwhile")
        second = starts(out)[1]
        assert second != first
        assert get(port, "/three") == 404
        wait_until(lambda: "/three 404" in read(out), 10, what="a line after the restart")
        text = srv.log_text()
        assert re.search(rf"HP07101: piped log program '{re.escape(str(logger))} .*' \(pid "
                         rf"{first}\) exited with signal 9; restarting", text), text
        assert f"restarted (pid {second})" in text and "HP07102" in text
        srv.restart(graceful=True)                # the same target: the same program and pipe
        assert get(port, "/four") == 404
        wait_until(lambda: "/four 404" in read(out), 10, what="a line after a graceful restart")
        assert starts(out) == [first, second]
    wait_until(lambda: gone(second), 10, what="the log program to end with the server")
    lines = [l for l in read(out).splitlines() if not l.startswith("START")]
    assert lines == ["/one 404", "/two 404", "/three 404", "/four 404"]   # each awaited in turn


@needs_wiring
def test_error_log_program_passes_t_starts_and_is_restarted(tmp_path, logger):
    """Issue 10: ``ErrorLog "|program"`` passed -t and then failed at start."""
    port, out = free_port(), tmp_path / "error.out"
    conf = (f'Listen 127.0.0.1:{port}\nDocumentRoot "{site(tmp_path)}"\nLogLevel info\n'
            f'ErrorLog "|{logger} {out}"\n')
    with httpd(tmp_path, conf, wait=False) as srv:
        srv.error_log = out                      # the program's file is the error log now
        srv.wait_ready()
        assert run_httpd(tmp_path, "-f", str(srv.conf), "-t").returncode == 0
        [first] = starts(out)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: len(starts(out)) == 2, 10, what="the error log program restarted")
        # the master's line about it went into the pipe, and the new program read it
        wait_until(lambda: "HP07102" in read(out), 10, what="HP07101/HP07102 in the new program")
        assert re.search(rf"HP07101: .*\(pid {first}\) exited with signal 9", read(out))
        assert get(port, "/missing") == 404
        wait_until(lambda: "HP03010: File does not exist" in read(out), 10,
                   what="a request's line through the restarted program")


@needs_wiring
def test_error_log_through_usr_bin_logger(tmp_path):
    """The issue's own example: ``ErrorLog "|/usr/bin/logger ..."`` (here to a socket the test
    binds, as the machine has no syslog daemon)."""
    logger_bin = require_tool("logger")
    sock_path = tmp_path / "logger.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(sock_path))
    s.settimeout(10)
    port = free_port()
    conf = (f'Listen 127.0.0.1:{port}\nDocumentRoot "{site(tmp_path)}"\n'
            f'ErrorLog "|{logger_bin} -u {sock_path} -t httpd-test"\n')
    got: list[str] = []
    try:
        with httpd(tmp_path, conf, wait=False):
            while not any(" HP01001: " in g for g in got):
                got.append(s.recv(65536).decode(errors="replace"))
            line = next(g for g in got if " HP01001: " in g)
            assert "httpd-test" in line and "[mpm_prefork:notice]" in line, line
    finally:
        s.close()


@needs_wiring
def test_error_log_syslog(tmp_path, monkeypatch):
    """Issue 10: ``ErrorLog syslog:`` passed -t and then failed at start."""
    sock_path = tmp_path / "log.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(sock_path))
    s.settimeout(10)
    monkeypatch.setenv("HTTPD_PY_SYSLOG_SOCKET", str(sock_path))   # inherited by the server
    port = free_port()
    conf = (f'Listen 127.0.0.1:{port}\nDocumentRoot "{site(tmp_path)}"\nLogLevel info\n'
            'ErrorLog syslog:local4\n')
    got: list[str] = []

    def seen(what: str) -> bool:
        try:
            while not any(what in g for g in got):
                got.append(s.recv(65536).decode())
            return True
        except socket.timeout:
            return False
    try:
        with httpd(tmp_path, conf, wait=False) as srv:
            assert seen(" HP01001: "), got               # local4 = 20, notice 5: <165>
            line = next(g for g in got if " HP01001: " in g)
            assert re.match(r"<165>\w{3} [ \d]\d \d\d:\d\d:\d\d httpd-py\[\d+\]: "
                            r"\[mpm_prefork:notice\] \[pid \d+\] HP01001: ", line), line
            assert get(port, "/missing") == 404              # info 6: <166>, from a worker
            assert seen("HP03010"), got
            line = next(g for g in got if "HP03010" in g)
            assert line.startswith("<166>") and "[http:info]" in line and "[client 127.0.0.1:" \
                in line
            assert srv.pid() is not None
    finally:
        s.close()


# ---- per-vhost ErrorLog and LogLevel ------------------------------------------------------------

def vhost_conf(tmp: Path, port: int, own_log: bool) -> str:
    own = f'  ErrorLog "{tmp}/logs/chatty_error.log"\n' if own_log else ""
    return (f'ErrorLog "{tmp}/logs/error_log"\nListen 127.0.0.1:{port}\nLogLevel warn\n'
            f'<VirtualHost *:{port}>\n  ServerName quiet.test\n  DocumentRoot "{site(tmp)}"\n'
            f"</VirtualHost>\n"
            f'<VirtualHost *:{port}>\n  ServerName chatty.test\n  DocumentRoot "{site(tmp)}"\n'
            f"  LogLevel info ssl:error\n{own}</VirtualHost>\n")


def test_per_vhost_log_level(tmp_path):
    port = free_port()
    with httpd(tmp_path, vhost_conf(tmp_path, port, own_log=False)) as srv:
        assert get(port, "/quiet-missing", "quiet.test") == 404
        assert get(port, "/chatty-missing", "chatty.test") == 404
        assert get(port, "/quiet-again", "quiet.test") == 404
        wait_until(lambda: "chatty-missing" in srv.log_text(), 10, what="chatty's info line")
        text = srv.log_text()
    assert "quiet-missing" not in text and "quiet-again" not in text   # warn: info filtered
    assert re.search(r"\[http:info\] \[pid \d+\] \[client 127\.0\.0\.1:\d+\] HP03010: File does "
                     r"not exist: .*/chatty-missing", text), text


def test_per_vhost_level_stays_with_its_requests(tmp_path):
    """A bad request head of another connection, read by the same worker after a chatty.test
    request, is the main server's (warn): its info line is not written."""
    port = free_port()
    conf = vhost_conf(tmp_path, port, own_log=False) + "StartServers 1\nMaxSpareServers 2\n"
    with httpd(tmp_path, conf) as srv:
        for i in range(3):
            assert get(port, f"/chatty-{i}", "chatty.test") == 404
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(b"GARBAGE\r\n\r\n")
                assert s.recv(1000).startswith(b"HTTP/1.1 400")
        assert get(port, "/last", "chatty.test") == 404
        wait_until(lambda: "/last" in srv.log_text(), 10, what="the last chatty line")
        text = srv.log_text()
    assert text.count("HP03010") == 4 and "HP03004" not in text, text


@needs_wiring
def test_per_vhost_error_log_file(tmp_path):
    port = free_port()
    with httpd(tmp_path, vhost_conf(tmp_path, port, own_log=True)) as srv:
        assert get(port, "/chatty-missing", "chatty.test") == 404
        own = tmp_path / "logs" / "chatty_error.log"
        wait_until(lambda: "chatty-missing" in read(own), 10, what="the vhost's own error log")
        assert "chatty-missing" not in srv.log_text() and "HP01001" not in read(own)


# ---- ErrorLogFormat -----------------------------------------------------------------------------

def test_error_log_format_of_request_lines(tmp_path):
    port = free_port()
    conf = (f'Listen 127.0.0.1:{port}\nDocumentRoot "{site(tmp_path)}"\nLogLevel info\n'
            'ErrorLogFormat "[%l] %m|%{X-Test}i|%V %M"\n')
    with httpd(tmp_path, conf) as srv:
        assert get(port, "/fmt-missing", headers={"X-Test": "t1"}) == 404
        wait_until(lambda: "fmt-missing" in srv.log_text(), 10, what="the request's line")
        text = srv.log_text()
    # the request's items fill the field; without them (start-up lines) it is left out
    assert re.search(r"^\[info\] http\|t1\|localhost HP03010: File does not exist: "
                     r"\S+/fmt-missing$", text, re.M), text
    assert re.search(r"^\[notice\] HP01001: ", text, re.M) or "] HP01001: " in text, text


@needs_wiring
def test_error_log_format_of_every_line(tmp_path):
    port = free_port()
    conf = (f'Listen 127.0.0.1:{port}\nDocumentRoot "{site(tmp_path)}"\n'
            'ErrorLogFormat "%{cu}t %l %m %M"\n')
    with httpd(tmp_path, conf) as srv:
        text = srv.log_text()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} notice mpm_prefork HP01001: ", text,
                     re.M), text


# ---- CustomLog conditions -----------------------------------------------------------------------

@needs_wiring
def test_custom_log_env_and_expr_conditions(tmp_path):
    port, logs = free_port(), tmp_path / "logs"
    conf = (f'Listen 127.0.0.1:{port}\nDocumentRoot "{site(tmp_path)}"\n'
            'SetEnvIf Request_URI "\\.png$" image\n'
            f'CustomLog "{logs}/images.log" "%U" env=image\n'
            f'CustomLog "{logs}/others.log" "%U" env=!image\n'
            f'CustomLog "{logs}/errors.log" "%U %>s" "expr=%{{REQUEST_STATUS}} -ge 400"\n'
            f'CustomLog "{logs}/all.log" "%U %{{image}}e"\n')     # last: written last
    with httpd(tmp_path, conf):
        for path in ("/a.png", "/index.html", "/missing", "/b.png"):
            get(port, path)
        wait_until(lambda: read(logs / "all.log").count("\n") == 4, 10, what="four lines")
    # (sorted: a worker writes its line after the response, so two workers' lines may cross)
    assert sorted(read(logs / "images.log").splitlines()) == ["/a.png", "/b.png"]
    assert sorted(read(logs / "others.log").splitlines()) == ["/index.html", "/missing"]
    assert sorted(read(logs / "errors.log").splitlines()) == ["/b.png 404", "/missing 404"]
    assert sorted(read(logs / "all.log").splitlines()) == ["/a.png 1", "/b.png 1",
                                                           "/index.html -", "/missing -"]
