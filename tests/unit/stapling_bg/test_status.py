"""stapling-status: a real configuration file, the real stapler's store, text and JSON output."""
from __future__ import annotations

import datetime as dt
import json
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
    for c in rep["certificates"]:
        assert c["state"] == "stapled" and c["cert_status"] == "good"
        assert c["requests"] == 1 and c["failures"] == 0 and c["last_error"] is None
        assert c["responder"].startswith("http://127.0.0.1:")
        assert c["this_update"] < c["next_update"] and c["valid_until"] == c["next_update"] - 300
        assert c["next_refresh"] > c["this_update"] and 0 <= c["age"] < 3600
        key = bytes.fromhex(c["key"])
        assert stapler.states[key].record.serial == c["serial"]
    assert [c["must_staple"] for c in rep["certificates"]].count(True) == 1
    assert rep["store"] == str(conf.parent / "store")


def test_text_output(served, capsys):
    conf, _, _ = served
    assert status.main(["-f", str(conf)]) == 0
    out = capsys.readouterr().out
    for word in ("state         stapled (good)", "must-staple: yes (warn)", "must-staple: no",
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
