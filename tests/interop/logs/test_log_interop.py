"""CustomLog conditions and ErrorLogFormat side by side: the same requests to apache2 and
httpd-py with the same logging fragment (conftest.FRAGMENT), each log file compared line by line.

Rows: every CustomLog of the fragment (no condition, ``env=``, ``env=!``, ``expr=`` over the
status, the URI and query, the User-Agent), and the error log lines the requests cause under
``ErrorLogFormat "[%l] %{X-Test}i|%V %M"`` (message ids normalised: Apache's AHnnnnn and our
HPnnnnn name the same event in different number spaces).  Differences are listed in
docs/interop.md ("Logs").

The conditions need the lead's one-line wiring in http/connection.py (the CustomLog's condition
handed to the renderer): until then those rows are strict xfails (see
tests/integration/logs/test_logs_server.py); ``HTTPD_PY_LOGS_WIRED=1`` runs them plainly.
"""
from __future__ import annotations

import http.client
import os
import re

import pytest

from tests.support.tools import wait_until

WIRED = True    # the wiring is in (server.py: log.open_server_logs; connection.py: conditions, scope)
needs_wiring = pytest.mark.xfail(not WIRED, strict=True, reason="needs the lead's wiring: "
                                 "log.open_server_logs in server.py / CustomLog conditions in "
                                 "http/connection.py")

# (target, User-Agent): each request also carries X-Test: t<N>
REQUESTS = [
    ("/", "client/1"),
    ("/a.png", "client/1"),
    ("/missing", "client/1"),
    ("/sub/page.html?x=1", "client/1"),
    ("/sub/page.html", "client/1"),
    ("/b.png", "client/1"),
    ("/index.html", "Probe/2.0"),
    ("/sub/nothing?y=2", "probe-lower"),
]


def send(port: int) -> None:
    for i, (target, agent) in enumerate(REQUESTS):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("GET", target, headers={"Host": "localhost", "User-Agent": agent,
                                              "X-Test": f"t{i}", "Connection": "close"})
            c.getresponse().read()
        finally:
            c.close()


def read(path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


@pytest.fixture(scope="module")
def logs(apache, httpd_py):
    """Both servers got the same requests; their logs directories, once every line is there."""
    out = {}
    for name, served in (("apache", apache), ("httpd-py", httpd_py)):
        send(served.port)
        wait_until(lambda: read(served.logs / "all.log").count("\n") >= len(REQUESTS), 15,
                   what=f"{name}'s access lines")
        out[name] = served.logs
    return out


ACCESS_ROWS = [
    pytest.param("all.log", id="no-condition"),
    pytest.param("images.log", id="env=image", marks=needs_wiring),
    pytest.param("others.log", id="env=!image", marks=needs_wiring),
    pytest.param("errors.log", id="expr-status", marks=needs_wiring),
    pytest.param("quiet.log", id="env=!dontlog-from-SetEnvIfNoCase", marks=needs_wiring),
    pytest.param("sub.log", id="expr-uri-and-query", marks=needs_wiring),
    pytest.param("agents.log", id="expr-user-agent-regex", marks=needs_wiring),
]


def lines(path, skip: tuple = ()) -> list[str]:
    """The lines, sorted (each ends with its request's marker; a worker writes its line after
    the response, so two workers' lines may cross, on either server)."""
    return sorted(l for l in read(path).splitlines() if not (skip and l.endswith(skip)))


@pytest.mark.parametrize("name", ACCESS_ROWS)
def test_custom_log(logs, name):
    # t0 ("/", served by DirectoryIndex) is the row below: Apache's %U is the index's URI
    theirs = lines(logs["apache"] / name, (" t0",))
    ours = lines(logs["httpd-py"] / name, (" t0",))
    assert theirs, f"apache2 wrote nothing to {name}"
    assert ours == theirs


def test_custom_log_uri_after_directory_index(logs):
    theirs = [l for l in read(logs["apache"] / "all.log").splitlines() if l.endswith(" t0")]
    ours = [l for l in read(logs["httpd-py"] / "all.log").splitlines() if l.endswith(" t0")]
    assert theirs == ["/index.html 200 - t0"]
    assert ours == theirs


ERROR_LINE = re.compile(r"^\[(\w+)\] (t\d+)\|(\S+) (?:AH|HP)\d{5}: (.*)$")


def request_lines(path) -> list[tuple]:
    """The error lines a request caused (its X-Test marker fills the field), ids normalised."""
    return [ERROR_LINE.match(l).groups() for l in read(path).splitlines() if ERROR_LINE.match(l)]


def test_error_log_format_request_lines(logs):
    theirs = sorted(request_lines(logs["apache"] / "error.log"), key=lambda t: t[1])
    ours = sorted(request_lines(logs["httpd-py"] / "error.log"), key=lambda t: t[1])
    assert [t[1] for t in theirs] == ["t2", "t5", "t7"]     # the three 404s
    assert ours == theirs


@needs_wiring       # (server.py: the main server's ErrorLogFormat for lines outside requests)
def test_error_log_format_leaves_out_the_request_field_outside_requests(logs):
    """Start-up lines have no request: the "%{X-Test}i|%V" field goes, separator included."""
    for name in ("apache", "httpd-py"):
        text = read(logs[name] / "error.log")
        assert re.search(r"^\[notice\] (?:AH|HP)\d{5}: ", text, re.M), (name, text)
        assert not re.search(r"^\[\w+\] \|", text, re.M), (name, text)
