"""httpd_py.metrics (slots, sums, buckets) and modules/status (formats, query words, the
Prometheus text as prometheus_client parses it, the directives), without a server."""
from __future__ import annotations

import os

import pytest

from httpd_py import metrics
from httpd_py.modules import status


class FakeSlot:
    def __init__(self, index: int):
        self.index = index
        self.board = None


@pytest.fixture
def shared():
    metrics.reset_for_tests()
    yield metrics.create(4)
    metrics.reset_for_tests()


def test_counts_sum_over_slots_and_skip_scratch(shared):
    metrics.staple(True)                       # scratch: never summed (warm-up handshakes)
    metrics.enter(FakeSlot(0))
    metrics.request_done(200, 100, 0.002)
    metrics.staple(True)
    metrics.enter(FakeSlot(3))
    metrics.request_done(404, 10, 0.001)
    metrics.staple(False)
    metrics.use_helper(0)
    metrics.responder_request("", 0.03)
    metrics.use_master()
    metrics.responder_request("timeout", 12.0)
    t = metrics.totals()
    assert t[metrics.ACCESSES] == 2 and t[metrics.BYTES] == 110
    assert t[metrics.STAPLE_SENT] == 1 and t[metrics.STAPLE_NONE] == 1
    assert t[metrics.STATUS_CLASS + 1] == 1 and t[metrics.STATUS_CLASS + 3] == 1
    assert t[metrics.DURATION_US] == 3000
    count, secs, buckets = t.responder("ok")
    assert count == 1 and secs == pytest.approx(0.03) and buckets[metrics.BUCKETS.index(0.05)] == 1
    count, _, buckets = t.responder("timeout")
    assert count == 1 and buckets[-1] == 1          # over the last bucket: +Inf only


def test_a_worker_slot_outside_the_area_counts_in_scratch(shared):
    metrics.enter(FakeSlot(99))
    metrics.request_done(200, 1, 0.0)
    assert metrics.totals()[metrics.ACCESSES] == 0


def test_extended_fields_per_connection_child_and_slot(shared):
    metrics.extended = True
    metrics.see_tail = True
    slot = FakeSlot(1)
    metrics.enter(slot)
    metrics.request_done(200, 5, 0.0015, "127.0.0.1", "http/1.1", "a.test:80",
                         "GET /" + "x" * 100 + " HTTP/1.1")
    metrics.request_done(200, 7, 0.001, "127.0.0.1", "http/1.1", "a.test:80", "GET / HTTP/1.1")
    w = shared.worker(1)
    assert (w.conn_accesses, w.child_accesses, w.slot_accesses) == (2, 2, 2)
    assert (w.conn_bytes, w.slot_bytes) == (12, 12)
    assert w.client == "127.0.0.1" and w.vhost == "a.test:80" and w.protocol == "http/1.1"
    assert w.request_tail == "GET / HTTP/1.1" and w.last_ms == 1
    metrics.enter(slot)                             # the next connection of the same child
    w = shared.worker(1)
    assert (w.conn_accesses, w.child_accesses, w.slot_accesses) == (0, 2, 2)


def test_counters_survive_a_new_generation(shared):
    metrics.enter(FakeSlot(2))
    metrics.request_done(200, 1, 0.0)
    assert metrics.create(8) is shared              # kept across restarts
    shared.new_generation()
    assert shared.generation == 1 and metrics.totals()[metrics.ACCESSES] == 1


@pytest.mark.parametrize("x, spec, text", [(0.5, "g", ".5"), (2.0, "g", "2"),
                                           (0.0243902, "g", ".0243902"),
                                           (0.4444, ".3g", ".444"), (1536.0, "g", "1536")])
def test_numbers_as_apr_prints_them(x, spec, text):
    assert status._g(x, spec) == text


@pytest.mark.parametrize("secs, text", [(0, ""), (1, " 1 second"), (123, " 2 minutes 3 seconds"),
                                        (90061, " 1 day 1 hour 1 minute 1 second")])
def test_uptime_text(secs, text):
    assert status._uptime_text(secs) == text


@pytest.mark.parametrize("query, auto, notable, refresh", [
    ("", False, False, None), ("auto", True, False, None), ("refresh", False, False, 1),
    ("refresh=30", False, False, 30), ("auto&refresh=0", True, False, 1),
    ("notable&refresh=5x", False, True, 5)])
def test_query_words(query, auto, notable, refresh):
    assert status._options(query) == {"auto": auto, "notable": notable, "refresh": refresh}


def test_bytes_text():
    assert status._bytes_text(4096) == "4096 B"
    assert status._bytes_text(8 * 1024) == "8.0 kB"
    assert status._bytes_text(6 * 1024 * 1024) == "6.0 MB"


def test_prometheus_text_parses(shared):
    if os.environ.get("CI"):                 # CI: the test extra installs it; a miss fails
        import prometheus_client.parser as prom
    else:
        prom = pytest.importorskip("prometheus_client.parser")  # without CI only
    metrics.enter(FakeSlot(0))
    metrics.request_done(200, 100, 0.01)
    metrics.responder_request("connect", 0.2)
    snap = status.Snapshot(now=1000.0, started=900.0, restarted=950.0, generation=2,
                           board_generation=2, workers=[], scoreboard="_W..", busy=1, idle=1,
                           graceful=0, totals=metrics.totals(), load=(0.0, 0.0, 0.0),
                           cpu=(0.0, 0.0, 0.0, 0.0), extended=True,
                           stapling=[{"label": 'a "quoted" name', "serial": "AB", "status": "good",
                                      "state": "stapled", "next_update": 1600.0}])

    class Cfg:
        def all_vhosts(self):
            return ()
    text = status.render_metrics(snap, Cfg())
    fams = {f.name: f for f in prom.text_string_to_metric_families(text)}
    assert fams["httpd_py_requests"].type == "counter"
    assert fams["httpd_py_requests"].samples[0].value == 1
    hist = fams["httpd_py_ocsp_responder_request_duration_seconds"]
    assert hist.type == "histogram"
    got = {(s.name, s.labels.get("outcome"), s.labels.get("le")): s.value for s in hist.samples}
    assert got[("httpd_py_ocsp_responder_request_duration_seconds_count", "connect", None)] == 1
    assert got[("httpd_py_ocsp_responder_request_duration_seconds_bucket", "connect", "0.1")] == 0
    assert got[("httpd_py_ocsp_responder_request_duration_seconds_bucket", "connect", "0.25")] == 1
    exp = fams["httpd_py_ocsp_staple_expiry_seconds"].samples[0]
    assert exp.value == 600.0 and exp.labels["certificate"] == 'a "quoted" name'


def test_directives_load(tmp_path):
    from httpd_py import config
    from httpd_py.errors import ConfigError
    conf = tmp_path / "httpd.conf"
    conf.write_text(f"ServerRoot {tmp_path}\nListen 127.0.0.1:8080\nExtendedStatus Off\n"
                    "SeeRequestTail On\nLoadModule status_module modules/mod_status.so\n")
    cfg = config.load(str(conf))
    assert status.extended_status(cfg) is False and cfg.mod(status.SEE_TAIL) is True
    conf.write_text(f"ServerRoot {tmp_path}\nListen 127.0.0.1:8080\n"
                    "LoadModule status_module modules/mod_status.so\n")
    assert status.extended_status(config.load(str(conf))) is True     # mod_status's default
    conf.write_text(f"ServerRoot {tmp_path}\nListen 127.0.0.1:8080\nExtendedStatus maybe\n")
    with pytest.raises(ConfigError, match="ExtendedStatus must be On or Off"):
        config.load(str(conf))
