"""stapling-status: a real configuration file, the real stapler's store, text and JSON output."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random

import pytest

from httpd_py.stapling import status
from httpd_py.stapling.stapler import Stapler
from httpd_py.stapling.store import StapleStore

from .conftest import Clock, ClockedResponder
from .test_stapler import make_service


def write_conf(tmp, pki, url, *, must="warn", store=True):
    lines = [f"ServerRoot {tmp}", "Listen 127.0.0.1:8443", f"DefaultRuntimeDir {tmp}/run",
             f"SSLStaplingCache shmcb:{tmp}/staple.shm(512000)"]
    if store:
        lines.append(f"SSLStaplingStoreDir {tmp}/store")
    for name in ("a.test", "ms.test"):
        leaf = pki.leaf(name, "ec")
        lines += ["<VirtualHost *:8443>", f"  ServerName {name}", f"  DocumentRoot {tmp}",
                  "  SSLEngine on", f"  SSLCertificateFile {leaf.cert_file}",
                  f"  SSLCertificateKeyFile {leaf.key_file}", "  SSLUseStapling on",
                  f"  SSLStaplingForceURL {url}", f"  SSLStaplingMustStaple {must}",
                  "</VirtualHost>"]
    (tmp / "run").mkdir(exist_ok=True)
    conf = tmp / "httpd.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


@pytest.fixture
def served(tmp_path, pki):
    """A config whose certificates the real stapler has fetched once (responder then stopped)."""
    clock = Clock()
    with ClockedResponder.for_pki(pki, clock=clock, validity=dt.timedelta(days=2)) as r:
        conf = write_conf(tmp_path, pki, r.url)
        from httpd_py import config
        cfg = config.load(str(conf))
        stapler = Stapler.from_service(make_service(cfg), clock=clock, rand=random.Random(3).random)
        stapler.prefetch()
    return conf, cfg, stapler


def test_json_reports_every_stapled_certificate(served, capsys):
    conf, cfg, stapler = served
    assert status.main(["-f", str(conf), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    certs = {c["label"] or c["subject"]: c for c in rep["certificates"]}
    assert len(certs) == 2
    assert rep["server"]["running"] is False and "not running (no PidFile" in rep["server"]["detail"]
    assert rep["stapling"] == "on" and rep["note"] is None
    for c in rep["certificates"]:
        # valid and servable, but no server runs to staple it (PidFile absent): "stored"
        assert c["state"] == "stored" and c["cert_status"] == "good"
        # age counts from the fetch, not from thisUpdate (which the responder backdates 60 s)
        assert 0 <= c["age"] < 30 and c["response_age"] >= 59
        assert c["fetched_at"] - c["this_update"] >= 59
        assert c["requests"] == 1 and c["failures"] == 0 and c["last_error"] is None
        assert c["responder"].startswith("http://127.0.0.1:")
        assert c["this_update"] < c["next_update"] and c["valid_until"] == c["next_update"] - 300
        assert c["next_refresh"] > c["this_update"]
        key = bytes.fromhex(c["key"])
        assert stapler.states[key].record.serial == c["serial"]
    assert [c["must_staple"] for c in rep["certificates"]].count(True) == 1
    assert rep["store"] == str(conf.parent / "store")


def test_text_output(served, capsys):
    conf, _, _ = served
    assert status.main(["-f", str(conf)]) == 0
    out = capsys.readouterr().out
    for word in ("server        not running (no PidFile", "state         stored (good)",
                 "must-staple: yes (warn)", "must-staple: no", " s since fetch",
                 "responder     http://127.0.0.1:", "next refresh", "requests      1",
                 "last error    -"):
        assert word in out


def test_states_for_missing_corrupt_and_mismatched_records(served, capsys):
    conf, cfg, stapler = served
    keys = list(stapler.states)
    store = StapleStore(str(conf.parent / "store"))
    # record 0 gets the other certificate's response (CertID mismatch): invalid, never "stapled"
    r0, r1 = store.load(keys[0]), store.load(keys[1])
    r0.der = r1.der
    store.save(r0)
    # record 1 corrupt
    (conf.parent / "store" / (keys[1].hex() + ".json")).write_text("{")
    assert status.main(["-f", str(conf), "--json"]) == 0
    by_key = {c["key"]: c for c in json.loads(capsys.readouterr().out)["certificates"]}
    assert by_key[keys[0].hex()]["state"] == "invalid"
    assert "certificate ID" in by_key[keys[0].hex()]["last_error"]
    assert by_key[keys[1].hex()]["state"] == "unreadable"
    # no records at all
    for k in keys:
        (conf.parent / "store" / (k.hex() + ".json")).unlink()
    assert status.main(["-f", str(conf), "--json"]) == 0
    assert {c["state"] for c in json.loads(capsys.readouterr().out)["certificates"]} == {"none"}


def test_expired_record_is_reported_expired(served, capsys):
    conf, cfg, stapler = served
    later = stapler.clock() + 3 * 86400
    rep = status.report(cfg, now=later)
    assert {c["state"] for c in rep["certificates"]} == {"expired"}


def test_bad_invocations_exit_without_traceback(tmp_path, capsys):
    assert status.main([]) == 2
    assert status.main(["-f", str(tmp_path / "missing.conf")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "missing.conf" in err
    bad = tmp_path / "bad.conf"
    bad.write_text("SSLUseStapling maybe\n")
    assert status.main(["-f", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "line 1" in err and "Traceback" not in err


def test_cli_dispatches_stapling_status(served, capsys):
    conf, _, _ = served
    from httpd_py import cli
    assert cli.main(["stapling-status", "-f", str(conf), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["certificates"]) == 2


def test_stapled_only_while_the_server_runs(served, tmp_path):
    """The PidFile decides: a live httpd-py pid -> "stapled"; no file, a dead pid or a pid of
    another program -> "stored" (the response would be served once the server starts)."""
    import subprocess
    import sys
    conf, cfg, _ = served
    pid_file = tmp_path / "httpd.pid"
    cfg = dataclasses.replace(cfg, pid_file=str(pid_file))

    def states():
        return {c["state"] for c in status.report(cfg)["certificates"]}, \
            status.server_state(cfg)

    got, srv = states()
    assert got == {"stored"} and not srv.running and "no PidFile" in srv.detail
    # a process whose command line names httpd_py, alive until its stdin closes
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "httpd_py"],
                            stdin=subprocess.PIPE)
    try:
        pid_file.write_text(f"{proc.pid}\n")
        got, srv = states()
        assert got == {"stapled"} and srv.running and srv.pid == proc.pid
        assert srv.detail == f"running (pid {proc.pid}, PidFile {pid_file})"
    finally:
        proc.stdin.close()
        proc.wait(30)
    got, srv = states()                       # the same pid, now gone: a stale PidFile
    assert got == {"stored"} and not srv.running and f"pid {proc.pid} is gone" in srv.detail
    pid_file.write_text(f"{os.getpid()}\n")  # alive, but pytest is not httpd-py
    got, srv = states()
    assert got == {"stored"} and "is another program" in srv.detail


def test_a_config_without_stapling_says_so(tmp_path, capsys):
    conf = tmp_path / "plain.conf"
    conf.write_text(f"ServerRoot {tmp_path}\nListen 127.0.0.1:8080\nDocumentRoot {tmp_path}\n")
    assert status.main(["-f", str(conf)]) == 0
    out = capsys.readouterr().out
    assert "stapling is off: no SSL virtual host has SSLUseStapling on" in out
    assert "no certificate is stapled (SSLUseStapling on" not in out
    assert status.main(["-f", str(conf), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["stapling"] == "off" and rep["certificates"] == [] and "SSLUseStapling" in rep["note"]
