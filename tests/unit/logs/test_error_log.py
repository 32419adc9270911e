"""The error log: ErrorLogFormat (table), the per-vhost scope a request opens (LogLevel with
per-module levels, own ErrorLog, the scope ending with the request), syslog datagrams to a socket
the test binds, and the configuration rows (ErrorLog targets, ErrorLogFormat, CustomLog
conditions) through the real loader."""
from __future__ import annotations

import gc
import os
import re
import socket
from pathlib import Path

import pytest

from httpd_py import config, log
from httpd_py.errors import ConfigError, StartupError
from httpd_py.http.hooks import Request


# ---- ErrorLogFormat ---------------------------------------------------------------------------

def line(fmt: str, *, level="error", module="core", msgid="HP00001", text="the message",
         client=None, req=None, caller="") -> str | None:
    ln = log._Line(module, level, msgid, text, client, req, now=1_700_000_000.25, caller=caller)
    return log.render(log.compile_format(fmt), ln)


def request(**kw) -> Request:
    base = dict(method="GET", uri="/x", query="", headers={"referer": "http://r/", "x-a": "1"},
                version="1.1", request_line="GET /x HTTP/1.1", client_ip="192.0.2.7",
                client_port=5555, local_ip="127.0.0.1", local_port=8080, https=False, vhost=None,
                hostname="a.test")
    base.update(kw)
    return Request(**base)


FORMATS = [
    # (format, keyword arguments, the line without its newline; None: no line)
    ("%l|%m|%M", {}, "error|core|HP00001: the message"),
    ("[%-m:%l] %M", {"module": ""}, "[-:error] HP00001: the message"),
    # an empty item drops its whole field, the separator before it included
    ("%M [client\\ %a] end", {}, "HP00001: the message end"),
    ("%M [client\\ %a] end", {"client": "1.2.3.4:5"}, "HP00001: the message [client 1.2.3.4:5] end"),
    # "% " ends a field printing nothing: ", referer X" sticks to the message
    ("%M% ,\\ referer\\ %{Referer}i", {}, "HP00001: the message"),
    ("%M% ,\\ referer\\ %{Referer}i", {"req": request()},
     "HP00001: the message, referer http://r/"),
    # "+": no line at all without the item
    ("%+{X-Missing}i %M", {"req": request()}, None),
    ("%+{X-A}i %M", {"req": request()}, "1 HP00001: the message"),
    # a level number: only for messages at that level or more verbose (7 = debug)
    ("%7F: %M", {"caller": "f.py(3)"}, "HP00001: the message"),
    ("%7F: %M", {"caller": "f.py(3)", "level": "debug"}, "f.py(3): HP00001: the message"),
    ("%7F: %M", {"caller": "f.py(3)", "level": "trace2"}, "f.py(3): HP00001: the message"),
    # request items
    ("%a %A %V %{x-a}i %{k}e", {"req": request(env={"k": "v"})},
     "192.0.2.7:5555 127.0.0.1:8080 a.test 1 v"),
    ("%a|%M", {"client": "10.0.0.1:1"}, "10.0.0.1:1|HP00001: the message"),
    # %E (APR status) and %L (log id) are never known here: their fields go
    ("%E: %L %M", {}, "HP00001: the message"),
    ("100%% %l", {}, "100% error"),
    ("a  b", {}, "a  b"),
    ("x\\ty", {}, "x\ty"),
]


@pytest.mark.parametrize("fmt,kw,want", FORMATS, ids=[f"{i}" for i in range(len(FORMATS))])
def test_format(fmt, kw, want):
    got = line(fmt, **kw)
    assert got == (None if want is None else want + "\n")


def test_format_times_and_ids():
    got = line("%t|%{u}t|%{cu}t|%{c}t|%P|%T")
    t, tu, tcu, tc, pid, tid = got.rstrip("\n").split("|")
    assert re.fullmatch(r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4}", t)
    assert re.fullmatch(r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d\.250000 \d{4}", tu)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.250000", tcu)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", tc)
    assert pid == str(os.getpid()) and tid.isdigit()


def test_apache_default_shape_equals_ours():
    """Our default line is ErrorLogFormat "[%{u}t] [%-m:%l] [pid %P] [client\\ %a] %M"."""
    fmt = log.compile_format("[%{u}t] [%-m:%l] [pid %P] [client\\ %a] %M")
    for client in (None, "127.0.0.1:4242"):
        ln = log._Line("ssl", "warn", "HP02001", "text", client, None, now=1_700_000_000.5)
        assert log.render(fmt, ln) == log.format_line("ssl", "warn", "HP02001", "text",
                                                     now=1_700_000_000.5, client=client)


@pytest.mark.parametrize("bad,words", [
    ("%Z", "unknown format item '%Z'"),
    ("%{Referer", "missing '}'"),
    ("abc %", "format ends with '%'"),
    ("%99M", "out of range"),
])
def test_format_errors(bad, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        log.compile_format(bad)


# ---- the error log object ---------------------------------------------------------------------

@pytest.fixture
def to_file(tmp_path):
    """The process-wide error log into a file (and its whole state back afterwards)."""
    state = log.error_log.snapshot()
    path = tmp_path / "main.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    log.configure(fd, "warn")
    try:
        yield path
    finally:
        log.error_log.restore(state)
        os.close(fd)


def load(tmp_path: Path, text: str):
    conf = tmp_path / "httpd.conf"
    conf.write_text(f'ServerRoot "{tmp_path}"\nDocumentRoot "{tmp_path}"\n'
                    f'ErrorLog "{tmp_path}/main.log"\nListen 127.0.0.1:8080\n' + text)
    return config.load(str(conf))


VHOSTS = """
<VirtualHost *:8080>
  ServerName quiet.test
</VirtualHost>
<VirtualHost *:8080>
  ServerName chatty.test
  LogLevel info ssl:error
</VirtualHost>
<VirtualHost *:8080>
  ServerName own.test
  ErrorLog "{tmp}/own.log"
  ErrorLogFormat "%l %m [%V] %M"
</VirtualHost>
"""


def test_vhost_scope_level_target_and_end(tmp_path):
    cfg = load(tmp_path, "LogLevel warn\n" + VHOSTS.format(tmp=tmp_path))
    state = log.error_log.snapshot()
    logs = log.open_server_logs(cfg)
    try:
        el = log.error_log
        quiet, chatty, own = cfg.vhosts
        el.info("http", "HP00002", "main info: filtered")
        r1 = request(vhost=quiet, server=cfg)
        el.enter(r1)
        assert el._scope is None                 # logs as the main server: nothing to scope
        el.info("http", "HP00003", "quiet info: filtered")
        r2 = request(vhost=chatty, server=cfg)
        el.enter(r2)
        el.info("http", "HP00004", "chatty info: written")
        el.info("http", "HP00013", "another connection's info: filtered", client="10.9.9.9:1")
        el.info("http", "HP00014", "this request's client: written", client="192.0.2.7:5555")
        el.warn("ssl", "HP00005", "chatty ssl warn: filtered by ssl:error")
        el.error("ssl", "HP00006", "chatty ssl error: written")
        assert el.enabled("http", "info") and not el.enabled("ssl", "warn")
        del r2
        gc.collect()
        el.info("http", "HP00007", "after the request: main level again, filtered")
        r3 = request(vhost=own, server=cfg)
        el.enter(r3)
        el.error("http", "HP00008", "own error")
        el.leave()
        el.error("core", "HP00009", "main error")
    finally:
        log.error_log.restore(state)
        logs.close()
        for fd in logs.fds.values():
            log.close_target(fd)
    main_ids = re.findall(r"HP\d{5}", (tmp_path / "main.log").read_text())
    assert main_ids == ["HP00004", "HP00014", "HP00006", "HP00009"]
    assert (tmp_path / "own.log").read_text() == "error http [a.test] HP00008: own error\n"


def test_a_failed_generation_gives_the_old_state_back(tmp_path, to_file):
    cfg = load(tmp_path, 'LogLevel debug\nErrorLogFormat "%l %M"\n')
    before = log.error_log.snapshot()
    logs = log.open_server_logs(cfg)
    assert log.error_log.fmt is not None and log.error_log.level == log.LEVEL_RANK["debug"]
    logs.restore_previous()
    assert log.error_log.snapshot()[:6] == before[:6] and log.error_log.fmt is None


def test_open_target_errors(tmp_path):
    with pytest.raises(StartupError, match=r"\(2\)No such file or directory: Couldn't start "
                                           r"ErrorLog process '/nonexistent/logger'"):
        log.open_target("|/nonexistent/logger")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StartupError, match="could not open error log file"):
        log.open_target(str(blocker / "sub" / "error_log"))
    with pytest.raises(StartupError, match="unknown syslog facility 'bogus'"):
        log.open_target("syslog:bogus")


# ---- syslog -----------------------------------------------------------------------------------

@pytest.fixture
def syslogd(tmp_path, monkeypatch):
    """A unix datagram socket standing in for /dev/log (the path goes in HTTPD_PY_SYSLOG_SOCKET)."""
    path = str(tmp_path / "log.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    monkeypatch.setenv(log.SYSLOG_SOCKET_ENV, path)
    yield s, path
    s.close()


def test_syslog_lines(syslogd):
    sock, path = syslogd
    state = log.error_log.snapshot()
    fd = log.open_target("syslog:local3:myhttpd")
    try:
        log.configure(fd, "info")
        log.error_log.error("core", "HP00010", "to syslog", client="1.2.3.4:5")
        log.error_log.info("http", "HP00011", "info too")
        log.error_log.debug("http", "HP00012", "not debug")
    finally:
        log.error_log.restore(state)
        log.close_target(fd)
    first, second = sock.recv(4096).decode(), sock.recv(4096).decode()
    # local3 = 19: error 19*8+3 = 155, info 19*8+6 = 158; no time of ours: syslog adds it
    assert re.fullmatch(rf"<155>\w{{3}} [ \d]\d \d\d:\d\d:\d\d myhttpd\[{os.getpid()}\]: "
                        r"\[core:error\] \[pid \d+\] \[client 1\.2\.3\.4:5\] HP00010: to syslog",
                        first), first
    assert second.startswith("<158>") and second.endswith("[http:info] [pid %d] HP00011: info too"
                                                          % os.getpid())
    sock.settimeout(0.2)
    with pytest.raises(socket.timeout):
        sock.recv(4096)


def test_syslog_defaults_and_a_daemon_that_comes_back(syslogd, tmp_path):
    sock, path = syslogd
    s = log.Syslog(*log.parse_syslog("syslog"))
    try:
        assert (s.facility, s.tag) == (23, "httpd-py")          # local7, as Apache
        s.send(4, "one")
        assert sock.recv(4096).decode().startswith("<188>")
        sock.close()                                            # the daemon goes away...
        os.unlink(path)
        s.send(4, "lost")                                       # ...dropped, never raised
        again = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # ...and comes back
        again.bind(path)
        again.settimeout(5)
        s._retry_at = 0.0                                       # (not a second later)
        s.send(4, "two")
        assert again.recv(4096).decode().endswith("httpd-py[%d]: two" % os.getpid())
        again.close()
    finally:
        s.close()


# ---- configuration rows -----------------------------------------------------------------------

def test_error_log_targets_in_the_model(tmp_path):
    cfg = load(tmp_path, '<VirtualHost *:8080>\nServerName a\nErrorLog "|/usr/bin/logger -t x"\n'
                         '</VirtualHost>\n<VirtualHost *:8080>\nServerName b\nErrorLog '
                         'syslog:local2\n</VirtualHost>\n<VirtualHost *:8080>\nServerName c\n'
                         'ErrorLog syslogfile\n</VirtualHost>\n')
    assert [v.error_log for v in cfg.vhosts] == ["|/usr/bin/logger -t x", "syslog:local2",
                                                 str(tmp_path / "syslogfile")]


@pytest.mark.parametrize("text,words", [
    ("ErrorLog syslog:bogus", "unknown syslog facility 'bogus'"),
    ('ErrorLog "|"', "empty piped log command"),
    ('ErrorLog "|\'unclosed"', "No closing quotation"),
    ('ErrorLogFormat "%Z"', "unknown format item '%Z'"),
    ('ErrorLogFormat sometimes "%M"', "ErrorLogFormat type must be one of request, connection"),
    ('CustomLog logs/a "%h" env=', "missing environment variable name"),
    ('CustomLog logs/a "%h" env=!', "missing environment variable name"),
    ('CustomLog logs/a "%h" expr=', "missing condition"),
    ('CustomLog logs/a "%h" expr=%{NOPE}', "Cannot parse condition clause"),
    ('CustomLog logs/a "%h" when=x', "error in condition clause"),
])
def test_config_errors_name_the_line(tmp_path, text, words):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text + "\n")
    assert e.value.line == 5 and words in str(e.value), str(e.value)


def test_custom_log_conditions_in_the_model(tmp_path):
    cfg = load(tmp_path, 'CustomLog logs/a "%h" env=!dontlog\n'
                         'CustomLog logs/b "%h" ENV=img\n'
                         'CustomLog logs/c "%h" "expr=%{REQUEST_STATUS} -ge 400"\n'
                         'CustomLog logs/d "%h"\n')
    a, b, c, d = cfg.main.custom_logs
    assert (a.condition.var, a.condition.negate) == ("dontlog", True)
    assert (b.condition.var, b.condition.negate) == ("img", False)
    assert c.condition.expr is not None and not hasattr(d, "condition")
    assert a.path == str(tmp_path / "logs" / "a")
