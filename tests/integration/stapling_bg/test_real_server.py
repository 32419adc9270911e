"""Background stapling through the real server (``python -m httpd_py``), its prefork master,
workers and supervised stapler helper, with real clients (openssl s_client, curl, gnutls-cli)."""
from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.support.stapling import curl_cert_status, s_client
from tests.support.tools import require_tool, wait_until
from tests.unit.stapling_bg.conftest import ClockedResponder

from .realserver import RealServer, Timeline
from .test_stapler_processes import handshake, percentile


def assert_stapled_good(out: str, pki, name: str, kind: str) -> None:
    assert "OCSP Response Status: successful (0x0)" in out, out
    assert "Cert Status: good" in out, out
    serial = format(pki.leaf(name, kind).cert.serial_number, "X")
    assert re.search(r"Serial Number: 0*" + serial, out), out
    assert "Verify return code: 0 (ok)" in out


def test_first_handshake_stapled_and_every_kind_of_restart_keeps_staples_with_responder_down(
        tmp_path, pki):
    responder = ClockedResponder.for_pki(pki).start()
    # anonymous shmcb: the cache dies with each generation; only the staple store persists
    srv = RealServer(tmp_path / "srv", pki, responder.url, names=("a.test", "b.test"))
    try:
        srv.start()
        # prefetch happened before the workers accepted anything: 4 requests, then the FIRST
        # handshakes are stapled (openssl, curl --cert-status, for RSA and ECDSA)
        assert responder.requests == 4
        for name in ("a.test", "b.test"):
            for kind in ("rsa", "ec"):
                assert_stapled_good(s_client(srv.port, name, kind, pki), pki, name, kind)
        r = curl_cert_status(srv.port, "a.test", pki)
        assert r.returncode == 0 and r.stdout == b"ok\n", r.stderr
        assert responder.requests == 4            # handshakes never ask the responder
        responder.stop()                          # the responder goes down for good
        for how in (signal.SIGUSR1, signal.SIGHUP):   # graceful restart, restart
            srv.signal_restart(how)
            for kind in ("rsa", "ec"):
                assert_stapled_good(s_client(srv.port, "a.test", kind, pki), pki, "a.test", kind)
        srv.kill9_all()                           # crash: master, workers, stapler at once
        srv.start()
        for name in ("a.test", "b.test"):         # first handshakes after the crash
            for kind in ("rsa", "ec"):
                assert_stapled_good(s_client(srv.port, name, kind, pki), pki, name, kind)
        assert srv.count("HP04808") >= 12         # loaded from the store 3 times x 4
        assert responder.requests == 4
        assert "Traceback" not in srv.log()
    finally:
        srv.stop()
        responder.stop()


def test_stapling_status_of_the_running_server(tmp_path, pki):
    import json
    with ClockedResponder.for_pki(pki) as responder, \
            RealServer(tmp_path / "srv", pki, responder.url, names=("a.test",)) as srv:
        out = subprocess.run([sys.executable, "-m", "httpd_py",
                              "stapling-status", "-f", str(srv.conf), "--json"],
                             capture_output=True, timeout=60, cwd=str(srv.dir))
        assert out.returncode == 0, out.stderr
        certs = json.loads(out.stdout)["certificates"]
        assert {c["state"] for c in certs} == {"stapled"} and len(certs) == 2
        assert all(c["requests"] == 1 and c["refresh"] == "background" for c in certs)


@pytest.mark.slow
def test_hung_responder_across_a_refresh_real_server(tmp_path, pki, capsys):
    """Two clients hammer the real server while the stapler's refresh hangs: every handshake
    is stapled with the still-valid response; none waits (a waiting one would take >= 3 s)."""
    responder = ClockedResponder.for_pki(pki, backdate=1.0, validity=dt.timedelta(seconds=20)).start()
    srv = RealServer(tmp_path / "srv", pki, responder.url, names=("a.test", "b.test"),
                     stapling=("SSLStaplingResponderTimeout 3", "SSLStaplingResponseTimeSkew 1",
                               "SSLStaplingRenewWindow 14"))
    jobs = [(n, k) for n in ("a.test", "b.test") for k in ("rsa", "ec")]
    try:
        srv.start()
        first_ten = [handshake(srv.port, *jobs[i % 4]) for i in range(10)]   # right after start
        first = {j: handshake(srv.port, *j)[0] for j in jobs}
        assert all(first.values()) and all(s == first[jobs[i % 4]] for i, (s, _) in enumerate(first_ten))
        steady = [handshake(srv.port, *jobs[i % 4])[1] for i in range(40)]
        responder.mode = "hang"
        base = responder.requests
        results, stop = [], threading.Event()

        def client(offset: int) -> None:
            i = offset
            while not stop.is_set():
                job = jobs[i % 4]
                staple, took = handshake(srv.port, *job)
                results.append((job, staple, took))
                i += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in (0, 2)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: responder.requests >= base + 4, timeout=20,
                       what="the stapler's refresh requests reaching the hung responder")
            time.sleep(3.5)                       # span the hung fetches (deadline 3 s)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        lat = [took for _, _, took in results]
        assert len(results) > 50
        assert all(staple == first[job] for job, staple, _ in results)
        assert max(lat) < 3.0
        assert srv.count("HP04803") >= 1
    finally:
        srv.stop()
        responder.stop()
    with capsys.disabled():
        print(f"\n[stapling_bg real server] steady: p50 {percentile(steady, .5)*1e3:.1f} ms, p99 "
              f"{percentile(steady, .99)*1e3:.1f} ms; first ten after start: p99 "
              f"{percentile([t for _, t in first_ten], .99)*1e3:.1f} ms;"
              f" during the hung refresh ({len(lat)} handshakes, 2 clients): p50 "
              f"{percentile(lat, .5)*1e3:.1f} ms, p99 {percentile(lat, .99)*1e3:.1f} ms, "
              f"max {max(lat)*1e3:.1f} ms; all stapled")


def test_must_staple_warn_logs_an_error_and_serves_without_a_staple(tmp_path, pki):
    responder = ClockedResponder.for_pki(pki, mode="http-500").start()     # broken from the start
    srv = RealServer(tmp_path / "srv", pki, responder.url, names=("ms.test", "a.test"),
                     stapling=("SSLStaplingResponderTimeout 2", "SSLStaplingFakeTryLater off"))
    try:
        srv.start()
        text = srv.log()
        lines = [l for l in text.splitlines() if "HP04810" in l]
        assert len(lines) == 2 and all("ms.test" in l and "[ssl:error]" in l for l in lines)
        out = s_client(srv.port, "ms.test", "ec", pki)
        assert "OCSP response: no response sent" in out and "Verify return code: 0 (ok)" in out
        # the responder recovers: the stapler's retry staples it, HP04811 says so
        responder.mode = "normal"
        wait_until(lambda: srv.count("HP04811") >= 1, timeout=30, interval=0.2,
                   what="HP04811 (Must-Staple certificate has a staple)")
        wait_until(lambda: "Cert Status: good" in s_client(srv.port, "ms.test", "ec", pki),
                   timeout=10, interval=0.2, what="ms.test stapled")
    finally:
        srv.stop()
        responder.stop()


@pytest.mark.slow
def test_three_real_servers_sharing_one_redis_ask_once_per_certificate_per_window(tmp_path, pki):
    from tests.support.servers import redis_server
    with redis_server() as (_, rport), \
            Timeline.for_pki(pki, backdate=1.0, validity=dt.timedelta(seconds=18)) as responder:
        servers = [RealServer(tmp_path / f"node{n}", pki, responder.url, names=("a.test", "b.test"),
                              cache=f"redis:127.0.0.1:{rport}",
                              stapling=("SSLStaplingResponderTimeout 3",
                                        "SSLStaplingResponseTimeSkew 1",
                                        "SSLStaplingRenewWindow 12"))
                   for n in range(3)]
        try:
            marks = [s.launch() for s in servers]            # started together
            for s, m in zip(servers, marks):
                s.wait_ready(m)
            serials = [pki.leaf(n, k).cert.serial_number for n in ("a.test", "b.test")
                       for k in ("rsa", "ec")]
            # three prefetches racing under the fleet lock: one request per certificate
            assert [len(responder.asked.get(x, [])) for x in serials] == [1, 1, 1, 1]
            for s in servers:                                 # every server staples it
                assert handshake(s.port, "a.test", "ec")[0]
            wait_until(lambda: all(len(responder.asked.get(x, [])) >= 3 for x in serials),
                       timeout=30, interval=0.2, what="two fleet refreshes per certificate")
            time.sleep(1.0)                                   # room for would-be duplicates
        finally:
            for s in servers:
                s.stop()
        for x in serials:
            times = responder.asked[x]
            gaps = [b - a for a, b in zip(times, times[1:])]
            # one request per window: the window opens 5 s after thisUpdate (= fetch - 1 s,
            # truncated to the second), so >= 3 s after the fetch; three uncoordinated servers
            # would ask within the ~1.2 s jitter of each other
            assert all(g >= 2.5 for g in gaps), gaps
        logs = "".join(s.log() for s in servers)
        assert "HP04805" in logs and "Traceback" not in logs


def test_must_staple_strict_refuses_status_requests_until_a_staple_exists(tmp_path, pki):
    responder = ClockedResponder.for_pki(pki, mode="http-500").start()     # broken from the start
    srv = RealServer(tmp_path / "srv", pki, responder.url, names=("ms.test", "a.test"),
                     stapling=("SSLStaplingResponderTimeout 2", "SSLStaplingFakeTryLater off",
                               "SSLStaplingMustStaple strict"))
    try:
        srv.start()
        assert srv.count("HP04810") == 2
        out = s_client(srv.port, "ms.test", "ec", pki)
        # the Must-Staple certificate is not served to a client that asks for its staple
        assert "no peer certificate available" in out and "Cert Status" not in out, out
        assert "alert internal error" in out, out          # the callback's fatal alert (80)
        assert srv.count("HP04816") == 1
        # a client that does not ask, and a certificate without Must-Staple, are served
        openssl = require_tool("openssl")
        plain = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{srv.port}",
                                "-servername", "ms.test", "-CAfile", str(pki.root_file)],
                               input=b"Q\n", capture_output=True, timeout=30).stdout.decode()
        assert "Verify return code: 0 (ok)" in plain
        other = s_client(srv.port, "a.test", "ec", pki)
        assert "OCSP response: no response sent" in other and "Verify return code: 0 (ok)" in other
        # once the responder answers, the stapler fetches and the vhost serves again, stapled
        responder.mode = "normal"
        wait_until(lambda: "Cert Status: good" in s_client(srv.port, "ms.test", "ec", pki),
                   timeout=30, interval=0.3, what="ms.test served with its staple")
        assert srv.count("HP04811") >= 1 and "Traceback" not in srv.log()
    finally:
        srv.stop()
        responder.stop()


@pytest.mark.parametrize("workers", [4, 16])
def test_one_request_per_certificate_per_window_under_load(tmp_path, pki, workers):
    """Four clients hammer 4 or 16 workers across a renew window: the responder sees the
    prefetch and exactly one refresh per certificate."""
    responder = Timeline.for_pki(pki, backdate=1.0, validity=dt.timedelta(seconds=20)).start()
    srv = RealServer(tmp_path / "srv", pki, responder.url, names=("a.test", "b.test"),
                     stapling=("SSLStaplingResponderTimeout 3", "SSLStaplingResponseTimeSkew 1",
                               "SSLStaplingRenewWindow 14"), workers=workers)
    jobs = [(n, k) for n in ("a.test", "b.test") for k in ("rsa", "ec")]
    serials = [pki.leaf(n, k).cert.serial_number for n, k in jobs]
    stop, results = threading.Event(), []
    try:
        srv.start()
        assert [len(responder.asked.get(x, [])) for x in serials] == [1, 1, 1, 1]

        def client(offset: int) -> None:
            i = offset
            while not stop.is_set():
                results.append(bool(handshake(srv.port, *jobs[i % 4])[0]))
                i += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            # the window opens >= 3 s after the prefetch; the next one >= 3 s after that refresh
            wait_until(lambda: all(len(responder.asked.get(x, [])) >= 2 for x in serials),
                       timeout=20, interval=0.1, what="one refresh per certificate")
            first_refresh_done = max(responder.asked[x][1] for x in serials)
            wait_until(lambda: time.time() > first_refresh_done + 1.5, timeout=5)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        counts = [len(responder.asked[x]) for x in serials]
    finally:
        srv.stop()
        responder.stop()
    assert counts == [2, 2, 2, 2]
    assert len(results) > 100 and all(results)          # every handshake stapled


MANY = tuple(f"n{i:02d}.test" for i in range(12))


@pytest.fixture(scope="module")
def pki_many(tmp_path_factory):
    from httpd_py.devtools.pki import make_pki
    return make_pki(tmp_path_factory.mktemp("pki-many"), MANY, ocsp_url="http://127.0.0.1:9/")


def test_certificates_beyond_the_prefetch_budget_are_stapled_by_the_helper(tmp_path, pki_many):
    """24 certificates, a responder that takes 0.9 s per answer, SSLStaplingResponderTimeout 1:
    the pre-start fetch (6 at a time, 2 s budget) cannot reach them all.  The background stapler
    must fetch the rest in its first pass: every name ends up stapled, each certificate asked
    for exactly once."""
    from cryptography.x509 import ocsp
    pki = pki_many
    responder = ClockedResponder.for_pki(pki, delay=0.9).start()
    srv = RealServer(tmp_path / "srv", pki, responder.url, names=MANY,
                     stapling=("SSLStaplingResponderTimeout 1",))
    try:
        srv.start()
        m = re.search(r"HP04801: stapling prefetch: (\d+) of 24 .* (\d+) left to the background",
                      srv.log())
        assert m and int(m.group(1)) < 24 and int(m.group(2)) > 0, srv.log()
        wait_until(lambda: srv.count("HP04802") >= 24, timeout=30,
                   what="all 24 certificates fetched (HP04802)")
        for name in MANY:
            for kind in ("rsa", "ec"):
                staple, _ = handshake(srv.port, name, kind)
                assert staple, (name, kind)
                resp = ocsp.load_der_ocsp_response(staple)
                assert resp.serial_number == pki.leaf(name, kind).cert.serial_number
                assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
        assert all(responder.count(pki.leaf(n, k).cert.serial_number) == 1
                   for n in MANY for k in ("rsa", "ec"))
        assert "Traceback" not in srv.log()
    finally:
        srv.stop()
        responder.stop()
