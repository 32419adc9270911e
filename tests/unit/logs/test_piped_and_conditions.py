"""Piped logs with real programs (started, killed, restarted on the same pipe, nothing lost,
closed when unused) and CustomLog conditions over finished requests (env=, env=!, expr=).

The master normally reaps log programs; here the test reaps them and hands the status to
``piped.reaped`` as the master's loop does."""
from __future__ import annotations

import os
import signal
import sys
import textwrap
import time

import pytest

from httpd_py import log, piped
from httpd_py.http.accesslog import AccessLogs, RecordContext, RequestRecord
from tests.support.tools import wait_until


@pytest.fixture
def logger(tmp_path):
    """A log program: appends "START <pid>" then every line it reads to OUT."""
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
    out = tmp_path / "out.log"
    return f"|{script} {out}", out


def reap(pid: int) -> int:
    """Wait (bounded) for ``pid`` and return its wait status."""
    def done():
        got, status = os.waitpid(pid, os.WNOHANG)
        return (status,) if got == pid else None
    return wait_until(done, 10, what=f"pid {pid} to exit")[0]


def lines(out) -> list[str]:
    return out.read_text().splitlines() if out.exists() else []


@pytest.mark.parametrize("target,argv", [
    ("|/usr/bin/logger -t 'my tag' x", ["/usr/bin/logger", "-t", "my tag", "x"]),
    ("||/usr/bin/logger -p local3.info", ["/usr/bin/logger", "-p", "local3.info"]),
    ("|$cat >> /tmp/x", ["/bin/sh", "-c", "cat >> /tmp/x"]),
    ("|  rotatelogs  /var/log/x 86400 ", ["rotatelogs", "/var/log/x", "86400"]),
])
def test_parse(target, argv):
    assert piped.parse(target)[0] == argv


@pytest.mark.parametrize("bad", ["|", "||", "|$", "| ", "|'open", "/not/a/pipe"])
def test_parse_errors(bad):
    with pytest.raises(ValueError):
        piped.parse(bad)


def test_a_killed_program_is_restarted_on_the_same_pipe_and_nothing_is_lost(logger):
    target, out = logger
    fd = piped.open_handle(target)
    first = piped.programs()[target]
    try:
        os.write(fd, b"one\n")
        wait_until(lambda: "one" in lines(out), 10, what="the first line")
        os.kill(first, signal.SIGKILL)
        status = reap(first)
        os.write(fd, b"two\n")               # written while no program runs: waits in the pipe
        assert piped.reaped(first, status)    # the master's reap: restarted at once
        second = piped.programs()[target]
        assert second not in (None, first)
        os.write(fd, b"three\n")
        wait_until(lambda: "three" in lines(out), 10, what="the line after the restart")
        got = lines(out)
        assert got == [f"START {first}", "one", f"START {second}", "two", "three"]
        assert not piped.reaped(first, status)          # not ours any more
    finally:
        running = piped.programs().get(target)
        os.close(fd)
        piped.maintain()                                # no handle: the pipe closes
        assert target not in piped.programs()
        if running:
            reap(running)                               # EOF: it ends by itself


def test_programs_that_die_at_once_back_off(tmp_path):
    target = "|$exit 3"
    fd = piped.open_handle(target)
    try:
        delays = []
        for _ in range(3):
            pid = piped.programs()[target]
            status = reap(pid)
            piped.reaped(pid, status)
            pl = piped._logs[target]
            if pl.pid is None:
                delays.append(round(pl.restart_at - time.monotonic()))
                pl.restart_at = time.monotonic()       # the next second, at once
                piped.maintain()
            else:
                delays.append(0)
        assert delays == [0, 1, 2]                      # at once, then 1 s, 2 s ... 60 s
    finally:
        os.close(fd)
        pid = piped.programs().get(target)
        piped.maintain()
        if pid:
            reap(pid)


def test_one_program_per_target_shared_by_its_users(logger):
    target, out = logger
    a, b = piped.open_handle(target), piped.open_handle(target)
    pid = piped.programs()[target]
    os.close(a)
    piped.maintain()
    assert piped.programs()[target] == pid             # b still writes to it
    os.write(b, b"via b\n")
    os.close(b)
    piped.maintain()
    assert target not in piped.programs()
    reap(pid)                                          # EOF: the program ended by itself
    assert lines(out) == [f"START {pid}", "via b"]


def test_access_logs_open_pipes_through_the_manager(logger):
    target, out = logger
    logs = AccessLogs()
    fd = logs.open(target)
    assert logs.open(target) == fd
    pid = piped.programs()[target]
    AccessLogs.write(fd, "a request")
    AccessLogs.write(fd, None)                         # a request a condition left out
    logs.close()
    piped.maintain()
    reap(pid)
    assert lines(out) == [f"START {pid}", "a request"]
    with pytest.raises(OSError, match="No such file"):
        AccessLogs().open("|/nonexistent/prog")


# ---- CustomLog conditions -----------------------------------------------------------------------

def rec(**kw) -> RequestRecord:
    base = dict(remote_ip="192.0.2.1", method="GET", url_path="/img/a.png", query="q=1",
                status=200, request_line="GET /img/a.png?q=1 HTTP/1.1",
                request_headers={"user-agent": "curl/8", "host": "a.test"},
                response_headers={"content-type": "image/png"}, server_name="a.test")
    base.update(kw)
    return RequestRecord(**base)


CONDITIONS = [
    ("env=image", {"image": "1"}, True),
    ("env=image", {"image": ""}, True),               # set, even empty
    ("env=image", {}, False),
    ("env=!image", {}, True),
    ("env=!image", {"image": "1"}, False),
    ("expr=%{REQUEST_STATUS} -ge 400", {}, False),
    ("expr=%{REQUEST_URI} =~ m#^/img/#", {}, True),
    ("expr=%{QUERY_STRING} == 'q=1' && %{REQUEST_METHOD} == 'GET'", {}, True),
    ("expr=%{HTTP_USER_AGENT} =~ /curl/", {}, True),
    ("expr=req('Host') == 'a.test'", {}, True),
    ("expr=%{CONTENT_TYPE} == 'image/png'", {}, True),
    ("expr=env('image') == '1'", {"image": "1"}, True),
    ("expr=-R '192.0.2.0/24'", {}, True),
    ("expr=%{REMOTE_ADDR} -ipmatch '10.0.0.0/8'", {}, False),
]


@pytest.mark.parametrize("text,env,logged", CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_condition(text, env, logged):
    cond = log.LogCondition.parse(text)
    r = rec(env=dict(env))
    assert cond.wants(r.env, RecordContext(r)) is logged
    render = AccessLogs().renderer("%U %>s", cond)
    assert render(r) == ("/img/a.png 200" if logged else None)


def test_renderers_are_shared_and_env_items_read_the_request():
    logs = AccessLogs()
    cond = log.LogCondition.parse("env=x")
    assert logs.renderer("%h", cond) is logs.renderer("%h", cond)
    assert logs.renderer("%h") is logs.renderer("%h", None)
    r = rec(env={"x": 'a "quoted" value'})
    assert logs.renderer('%{x}e|%{missing}e')(r) == 'a \\"quoted\\" value|-'
