"""The status pages through the real forked server: ?auto cross-checked with the scoreboard and
the access log, Prometheus text parsed by prometheus_client and checked against the handshakes
and responder requests the test made, the stapling JSON, Require honoured from 127.0.0.2, and
the HTML page loaded in headless Chromium (no console errors, one stapling row per certificate)."""
from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from OpenSSL import SSL

from tests.support.stapling import connect, staple_context, status_request
from tests.support.tools import require_tool, wait_until

ROOT = Path(__file__).resolve().parents[3]
CERTS = 3                   # a.test RSA + ECDSA, revoked.test RSA


def get(url: str, timeout: float = 10):
    """(status, headers, body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def auto(server) -> dict[str, str]:
    status, headers, body = get(server.base + "/server-status?auto")
    assert status == 200 and headers["Content-Type"].startswith("text/plain"), (status, body)
    lines = body.decode("latin-1").splitlines()
    out = {"_host": lines[0]}
    for line in lines[1:]:
        if ": " in line:
            k, v = line.split(": ", 1)
            out[k] = v
        else:
            out[line.rstrip(":")] = ""
    return out


def scrape(server):
    from prometheus_client.parser import text_string_to_metric_families
    status, headers, body = get(server.base + "/metrics")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    samples = {}
    families = {}
    for fam in text_string_to_metric_families(body.decode()):
        families[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def total(samples, name: str, **labels) -> float:
    return sum(v for (n, lab), v in samples.items()
               if n == name and all(dict(lab).get(k) == w for k, w in labels.items()))


def tls_handshake(port: int, name: str, kind: str) -> bytes:
    got: list[bytes] = []
    s = connect(port)
    try:
        c = status_request(staple_context(got, kind), s, name)
        c.do_handshake()
        try:
            c.shutdown()
        except SSL.Error:
            pass
    finally:
        s.close()
    return got[0] if got else b""


def test_auto_matches_access_log_and_scoreboard(status_server):
    s = status_server
    first = auto(s)
    # the ?auto request itself is counted once it is answered: then the log and the count agree
    wait_until(lambda: s.access_lines() == int(first["Total Accesses"]) + 1, 10,
               what="access log to hold every counted request")
    n = 7
    for _ in range(n):
        assert get(s.base + "/index.html")[0] == 200
    second = auto(s)
    assert int(second["Total Accesses"]) - int(first["Total Accesses"]) == n + 1
    wait_until(lambda: s.access_lines() == int(second["Total Accesses"]) + 1, 10,
               what="access log to catch up")
    # body bytes: the 7 files of 100 bytes are in the total (kB rounds down)
    assert int(second["Total kBytes"]) >= (n * 100) // 1024
    for field in ("ServerVersion", "ServerMPM", "Uptime", "Total Duration", "BusyWorkers",
                  "IdleWorkers", "Scoreboard", "ParentServerConfigGeneration", "Load1",
                  "CPUUser", "TLSSessionCacheStatus", "CacheType"):
        assert field in second, field
    board = s.srv.board()
    letters = second["Scoreboard"]
    assert len(letters) == len(board.slots) == 16             # ServerLimit slots
    live = len(board.workers())
    assert sum(1 for ch in letters if ch != ".") == live
    assert int(second["BusyWorkers"]) >= 1                    # the one answering
    assert int(second["BusyWorkers"]) + int(second["IdleWorkers"]) \
        + int(second["GracefulWorkers"]) + letters.count("S") == live
    assert second["ServerMPM"] == "prefork" and second["ServerVersion"].startswith("httpd-py/")


def test_auto_has_a_stapling_block_per_certificate(status_server):
    a = auto(status_server)
    assert a["StaplingCertificates"] == str(CERTS)
    statuses = sorted(a[f"Stapling{i}Status"] for i in range(CERTS))
    assert statuses == ["good", "good", "revoked"]
    for i in range(CERTS):
        assert int(a[f"Stapling{i}AgeSinceFetch"]) >= 0
        assert int(a[f"Stapling{i}ResponderRequests"]) >= 1


def test_refresh_and_notable(status_server):
    status, headers, body = get(status_server.base + "/server-status?refresh=7")
    assert status == 200 and headers["Refresh"] == "7"
    assert headers["Content-Type"].startswith("text/html")
    assert "<table" in body.decode("latin-1")
    status, headers, body = get(status_server.base + "/server-status?notable")
    assert status == 200 and "Refresh" not in headers
    page = body.decode("latin-1")
    assert "<table" not in page and "Scoreboard Key" in page and "revoked" in page


def test_stapling_json(status_server):
    s = status_server
    status, headers, body = get(s.base + "/stapling-status")
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    certs = doc["certificates"]
    assert len(certs) == CERTS
    by = {(c["vhosts"][0], c["key_type"]): c for c in certs}
    assert set(by) == {("a.test", "RSA"), ("a.test", "ECDSA"), ("revoked.test", "RSA")}
    assert by[("revoked.test", "RSA")]["status"] == "revoked"
    for key in (("a.test", "RSA"), ("a.test", "ECDSA")):
        c = by[key]
        assert c["status"] == "good" and c["state"] == "stapled"
        assert c["responder"] == s.responder.url
        assert c["next_update"] > doc["now"] > c["this_update"]
        assert c["valid"]["until"].endswith("Z")
        # age counts from the fetch, not from thisUpdate (which the responder backdates 60 s)
        assert 0 <= c["age"] < 60
        assert c["requests"] >= 1 and c["failures"] == 0 and c["last_error"] is None
        assert c["must_staple"] is False


def test_metrics_count_the_handshakes_and_responder_requests(status_server):
    require_tool("openssl")
    s = status_server
    families, before = scrape(s)
    assert families["httpd_py_requests"] == "counter"          # (the parser drops _total)
    assert families["httpd_py_ocsp_responder_request_duration_seconds"] == "histogram"
    assert families["httpd_py_workers"] == "gauge"
    jobs = [("a.test", "rsa"), ("a.test", "ec"), ("revoked.test", "rsa")] * 2
    for name, kind in jobs:
        assert tls_handshake(s.tls, name, kind), f"no staple for {name} {kind}"
    _, after = scrape(s)
    sent = "httpd_py_ocsp_status_requests_total"
    assert total(after, sent, stapled="yes") - total(before, sent, stapled="yes") == len(jobs)
    assert total(after, sent, stapled="no") == total(before, sent, stapled="no")
    # every request the responder saw was counted (prefetch in the master, the stapler helper)
    count = "httpd_py_ocsp_responder_request_duration_seconds_count"
    wait_until(lambda: total(scrape(s)[1], count) == s.responder.requests, 10,
               what="responder requests counted")
    _, now = scrape(s)
    assert total(now, count, outcome="ok") == s.responder.requests >= CERTS
    inf = "httpd_py_ocsp_responder_request_duration_seconds_bucket"
    assert total(now, inf, outcome="ok", le="+Inf") == s.responder.requests
    expiry = {dict(lab)["certificate"]: v for (n, lab), v in now.items()
              if n == "httpd_py_ocsp_staple_expiry_seconds"}
    assert len(expiry) == CERTS and all(0 < v <= 7 * 86400 for v in expiry.values())
    assert total(now, "httpd_py_socache_operations_total", cache="stapling", op="store") >= CERTS
    assert total(now, "httpd_py_requests_total") >= 2
    hs = "httpd_py_tls_handshakes_total"
    assert total(after, hs) - total(before, hs) == len(jobs)
    assert total(after, hs, key_type="ec") - total(before, hs, key_type="ec") == 2


def test_require_ip_refuses_another_loopback_source(status_server):
    curl = require_tool("curl")
    for path in ("/server-status", "/server-status?auto", "/stapling-status", "/metrics"):
        r = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface",
                            "127.0.0.2", status_server.base + path], capture_output=True,
                           text=True, timeout=30)
        assert r.stdout == "403", (path, r.stdout, r.stderr)
        r = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface",
                            "127.0.0.1", status_server.base + path], capture_output=True,
                           text=True, timeout=30)
        assert r.stdout == "200", (path, r.stdout, r.stderr)


def test_page_in_headless_chromium(status_server, tmp_path):
    chromium = require_tool("chromium")
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path}/profile",
                        "--dump-dom", status_server.base + "/server-status"],
                       capture_output=True, text=True, timeout=120)
    dom = r.stdout
    assert "httpd-py Server Status for" in dom, r.stderr[-2000:]
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console                 # no script errors, no failed loads
    rows = re.findall(r'<tr class="certificate">(.*?)</tr>', dom, re.S)
    assert len(rows) == CERTS, dom
    statuses = sorted(re.search(r'<td class="(\w+) status">', row).group(1) for row in rows)
    assert statuses == ["good", "good", "revoked"]
    assert re.search(r"<pre>[_SRWKCG.\n]+</pre>", dom)


def test_screenshot_script_writes_a_png(tmp_path):
    require_tool("chromium")
    out = tmp_path / "status.png"
    r = subprocess.run([str(ROOT / "scripts" / "screenshot-status"), str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_idle_keep_alive_connections_show_as_waiting(status_server):
    """Three idle keep-alive connections (each has had one request) wait in the workers' event
    loops: ``?auto``'s ConnsAsyncKeepAlive and the metrics' connections_waiting{stage=
    "keepalive"} count them (summed over the workers, as of each loop's last turn); closed,
    they are gone from both."""
    import socket
    s = status_server
    idle = []
    try:
        for _ in range(3):
            c = socket.create_connection(("127.0.0.1", s.plain), timeout=10)
            c.sendall(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
            got = b""
            while not got.endswith(b"0123456789"):
                got += c.recv(4096)
            idle.append(c)
        wait_until(lambda: int(auto(s)["ConnsAsyncKeepAlive"]) >= 3, 10,
                   what="the idle connections counted in ?auto")
        _, samples = scrape(s)
        assert total(samples, "httpd_py_connections_waiting", stage="keepalive") >= 3
        assert total(samples, "httpd_py_requests_parked") == 0
        a = auto(s)
        assert a["RequestsParked"] == "0" and "ConnsAsyncHandshake" in a and "ConnsAsyncHead" in a
    finally:
        for c in idle:
            c.close()
    wait_until(lambda: total(scrape(s)[1], "httpd_py_connections_waiting", stage="keepalive") == 0,
               10, what="the closed connections gone from the count")
