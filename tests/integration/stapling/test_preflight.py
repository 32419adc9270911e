"""The stapling preflight as a user meets it: ``httpd-py -t`` and ``httpd-py ocsp check`` run as
real processes against the real in-process OCSP responder (one responder; each certificate's
AIA URL picks the fault with ``/mode/<MODE>/``), table-driven over the ways stapling breaks:
responder down, hung, wrong issuer, no OCSP URL, revoked, expired.  Each row: the right line
(message id, the vhost's file:line, the words that say why), the exit status, and the time
bounded by SSLStaplingResponderTimeout."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from httpd_py import config
from httpd_py.devtools.pki import make_leaf, make_pki
from httpd_py.devtools.responder import Responder, make_ca
from httpd_py.stapling import preflight
from tests.support.tools import free_port

EXE = [sys.executable, "-m", "httpd_py"]
TIMEOUT = 2                     # SSLStaplingResponderTimeout of every row (whole seconds)
SLACK = 6.0                     # process start-up, config load, key checks (2 shared cores)


@dataclass(frozen=True)
class Row:
    name: str                   # the vhost's ServerName and the leaf's CN
    aia: str | None             # AIA OCSP URL: "ok", "down", a responder mode, or None
    expect: str | None          # words of the finding (None: no finding)
    chain: str = "good"         # "good" (leaf + intermediate) or "impostor" (wrong issuer)
    revoked: bool = False
    strict: bool = False        # SSLStaplingMustStaple strict + a Must-Staple leaf


ROWS = [
    Row("good.test", "ok", None),
    Row("down.test", "down", "is unreachable"),
    Row("hung.test", "hang", f"did not answer within SSLStaplingResponderTimeout ({TIMEOUT:g} s)"),
    Row("wrongissuer.test", "ok", "the issuer (", chain="impostor"),
    Row("otherissuer.test", "wrong-issuer-hash", "does not verify: certificate ID not present"),
    Row("nourl.test", None, "no OCSP responder URL"),
    Row("revoked.test", "ok", "the certificate is REVOKED", revoked=True),
    Row("expired.test", "expired", "does not verify: response expired (nextUpdate passed)"),
    Row("strict.test", "down", "is unreachable", strict=True),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The PKI (a leaf per row), an impostor intermediate, and the responder serving them."""
    tmp = tmp_path_factory.mktemp("preflight")
    pki = make_pki(tmp / "pki", (), ocsp_url=None)  # CAs first: the leaves need the URL
    responder = Responder.for_pki(pki).start()
    down = f"http://127.0.0.1:{free_port()}/"       # nothing listens there
    impostor, _ = make_ca("httpd-py Test Intermediate CA")   # same name, another key
    impostor_file = tmp / "impostor.pem"
    impostor_file.write_bytes(impostor.public_bytes(serialization.Encoding.PEM))
    leaves = {}
    for row in ROWS:
        url = {"ok": responder.url, "down": down, None: None}.get(
            row.aia, f"{responder.url}mode/{row.aia}/")
        leaf = make_leaf(pki, row.name, "ec", ocsp_urls=(url,) if url else (),
                         must_staple=row.strict)
        if row.chain == "impostor":       # the leaf alone, its "issuer" from the wrong CA
            leaf.cert_file.write_bytes(leaf.cert.public_bytes(serialization.Encoding.PEM))
        if row.revoked:
            responder.statuses[leaf.cert.serial_number] = "revoked"
        leaves[row.name] = leaf
    try:
        yield tmp, pki, leaves, responder, impostor_file
    finally:
        responder.stop()


def vhost(row: Row, leaves, impostor_file) -> str:
    leaf = leaves[row.name]
    extra = [f"  SSLCACertificateFile {impostor_file}"] if row.chain == "impostor" else []
    if row.strict:
        extra.append("  SSLStaplingMustStaple strict")
    return "\n".join([
        "<VirtualHost *:8443>", f"  ServerName {row.name}", "  SSLEngine on",
        f"  SSLCertificateFile {leaf.cert_file}", f"  SSLCertificateKeyFile {leaf.key_file}",
        *extra, "</VirtualHost>", ""])


def write_conf(tmp: Path, name: str, body: str) -> Path:
    d = tmp / name
    (d / "run").mkdir(parents=True, exist_ok=True)
    conf = d / "httpd.conf"
    conf.write_text(f'ServerRoot "{d}"\nDocumentRoot "{d}"\nPidFile "{d}/run/httpd.pid"\n'
                    f'ErrorLog "{d}/error_log"\nListen 127.0.0.1:8443\n'
                    f'SSLStaplingCache "shmcb:{d}/run/stapling(128000)"\nSSLUseStapling on\n'
                    f"SSLStaplingResponderTimeout {TIMEOUT:g}\n" + body)
    return conf


def line_of(conf: Path, text: str) -> int:
    return next(i for i, l in enumerate(conf.read_text().splitlines(), 1) if l.startswith(text))


def run(*args, timeout=60):
    start = time.monotonic()
    p = subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=timeout)
    return p, time.monotonic() - start


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_t_preflight_row(world, row):
    tmp, pki, leaves, responder, impostor_file = world
    conf = write_conf(tmp, row.name, vhost(row, leaves, impostor_file))
    p, took = run("-f", str(conf), "-t")
    assert "Traceback" not in p.stderr
    assert took < TIMEOUT + SLACK, (took, p.stderr)
    if row.expect is None:
        assert (p.returncode, p.stderr) == (0, "Syntax OK\n")
        return
    where = f"{conf}:{line_of(conf, '<VirtualHost')}"
    msgid = "HP07002" if row.strict else "HP07001"
    level = "ssl:error" if row.strict else "ssl:warn"
    lines = [l for l in p.stderr.splitlines() if msgid in l]
    assert len(lines) == 1, p.stderr
    assert f"[{level}]" in lines[0] and f"{msgid}: {where}: stapling preflight: {row.name} (ECDSA" \
        in lines[0] and f"({row.name}): " in lines[0], lines[0]
    assert row.expect in lines[0], lines[0]
    if row.strict:
        assert p.returncode == 1 and "Syntax OK" not in p.stderr, p.stderr
        assert "SSLStaplingMustStaple strict" in lines[0]
    else:
        assert p.returncode == 0 and p.stderr.endswith("Syntax OK\n"), p.stderr


def test_t_checks_every_certificate_in_parallel_within_the_timeout(world):
    """Every row in one config: one line each, all within about one responder timeout (two
    responders hang, which one after the other would take twice as long)."""
    tmp, pki, leaves, responder, impostor_file = world
    rows = ROWS + [Row("hung2.test", "hang", "did not answer")]
    if "hung2.test" not in leaves:
        leaves["hung2.test"] = make_leaf(pki, "hung2.test", "ec",
                                         ocsp_urls=(f"{responder.url}mode/hang/",))
    conf = write_conf(tmp, "all", "".join(vhost(r, leaves, impostor_file) for r in rows))
    p, took = run("-f", str(conf), "-t")
    assert p.returncode == 1, p.stderr                    # strict.test is an error
    for r in rows:
        if r.expect is not None:
            assert any(f"({r.name}): " in l and r.expect in l for l in p.stderr.splitlines()), \
                (r.name, p.stderr)
    assert len(re.findall(r"HP0700[12]", p.stderr)) == sum(r.expect is not None for r in rows)
    assert took < TIMEOUT + SLACK, (took, p.stderr)
    # in process, without the start-up: about one timeout, where two hangs in a row take two
    cfg = config.load(str(conf))
    start = time.monotonic()
    findings = preflight.preflight(cfg)
    took = time.monotonic() - start
    assert TIMEOUT <= took < 2 * TIMEOUT - 0.5, took
    assert sum(f.outcome.problem == preflight.UNREACHABLE for f in findings) == 4


def test_t_preflight_skipped_with_define(world):
    tmp, pki, leaves, responder, impostor_file = world
    row = next(r for r in ROWS if r.name == "hung.test")
    conf = write_conf(tmp, "skipped", vhost(row, leaves, impostor_file))
    before = responder.requests
    p, took = run("-f", str(conf), "-t", "-D", "NO_STAPLING_PREFLIGHT")
    assert (p.returncode, p.stderr) == (0, "Syntax OK\n")
    assert responder.requests == before
    p, _ = run("-f", str(conf), "-t", "-D", "NO_STAPLING_PREFLIGHT", "-e", "info")
    assert "HP07004" in p.stderr and "Syntax OK" in p.stderr


def test_preflight_asks_once_for_a_certificate_several_vhosts_share(world):
    tmp, pki, leaves, responder, impostor_file = world
    row = next(r for r in ROWS if r.name == "good.test")
    body = vhost(row, leaves, impostor_file)
    body += body.replace("ServerName good.test", "ServerName alias.good.test")
    conf = write_conf(tmp, "shared", body)
    cfg = config.load(str(conf))
    serial = leaves["good.test"].cert.serial_number
    before = responder.count(serial)
    findings = preflight.preflight(cfg)
    assert len(findings) == 1 and findings[0].outcome.good
    assert findings[0].vhosts == ("good.test", "alias.good.test")
    assert responder.count(serial) == before + 1


def test_no_stapling_means_no_preflight(world):
    tmp, pki, leaves, responder, impostor_file = world
    row = next(r for r in ROWS if r.name == "hung.test")
    conf = write_conf(tmp, "off", vhost(row, leaves, impostor_file).replace(
        "  SSLEngine on", "  SSLEngine on\n  SSLUseStapling off"))
    before = responder.requests
    p, _ = run("-f", str(conf), "-t")
    assert (p.returncode, p.stderr) == (0, "Syntax OK\n")
    assert responder.requests == before


# ---- httpd-py ocsp check ----------------------------------------------------------------------

OCSP_ROWS = [
    # (row name, extra args, exit status, words in the verdict line)
    ("good.test", (), 0, "verdict       good"),
    ("revoked.test", (), 1, "verdict       revoked: the certificate is REVOKED"),
    ("down.test", (), 2, "is unreachable"),
    ("hung.test", ("--timeout", str(TIMEOUT)), 2, "did not answer within"),
    ("nourl.test", (), 2, "no OCSP responder URL"),
    ("expired.test", (), 2, "response expired (nextUpdate passed)"),
    ("otherissuer.test", (), 2, "certificate ID not present"),
    ("wrongissuer.test", ("--issuer", "IMPOSTOR"), 2, "the issuer (CN=httpd-py Test Intermediate"),
]


@pytest.mark.parametrize("name,extra,code,words", OCSP_ROWS, ids=[r[0] for r in OCSP_ROWS])
def test_ocsp_check_row(world, name, extra, code, words):
    tmp, pki, leaves, responder, impostor_file = world
    extra = tuple(str(impostor_file) if a == "IMPOSTOR" else a for a in extra)
    p, took = run("ocsp", "check", str(leaves[name].cert_file), *extra)
    assert p.returncode == code, (p.stdout, p.stderr)
    assert words in p.stdout, p.stdout
    assert took < TIMEOUT + SLACK if "--timeout" in extra else True
    assert "Traceback" not in p.stderr


def test_ocsp_check_prints_the_response_fields(world):
    tmp, pki, leaves, responder, impostor_file = world
    leaf = leaves["revoked.test"]
    p, _ = run("ocsp", "check", str(leaf.cert_file), "--url", responder.url)
    assert p.returncode == 1, p.stdout + p.stderr
    fields = dict(re.findall(r"^(\S[\w ]*?)\s{2,}(.*)$", p.stdout, re.M))
    assert fields["serial"] == format(leaf.cert.serial_number, "X")
    assert fields["issuer"].startswith("CN=httpd-py Test Intermediate CA")
    assert fields["responder"].startswith(responder.url + " (GET, 1 request(s)")
    assert fields["response"].startswith("successful, ")
    assert fields["cert status"] == "revoked" and fields["revoked at"].endswith("reason -")
    assert fields["this update"].endswith(" UTC") and fields["next update"].endswith(" UTC")
    p, _ = run("ocsp", "check", str(leaves["good.test"].cert_file), "--json")
    rep = json.loads(p.stdout)
    assert p.returncode == 0 and rep["status"] == "good" and rep["cert_status"] == "good"
    assert rep["response"]["response_status"] == "successful" and rep["requests"] == 1
    assert rep["next_update"] > rep["this_update"]


def test_ocsp_check_usage(world, tmp_path):
    p, _ = run("ocsp")
    assert p.returncode == 2 and "usage: httpd-py ocsp" in p.stderr
    p, _ = run("ocsp", "check", str(tmp_path / "missing.pem"))
    assert p.returncode == 2 and "cannot read" in p.stderr and "Traceback" not in p.stderr


# ---- httpd-py stapling-status of a real server ------------------------------------------------

def test_stapling_status_says_whether_the_server_runs(world, tmp_path):
    """Running (PidFile + live process): "stapled", age since the fetch; stopped: "stored" and
    "not running" (it used to say "stapled (good)" with the server stopped)."""
    from tests.support.server import httpd
    tmp, pki, leaves, responder, impostor_file = world
    leaf, port = leaves["good.test"], free_port()
    text = f"""Listen 127.0.0.1:{port}
DocumentRoot "{tmp_path}"
DefaultRuntimeDir "{tmp_path}/run"
SSLStaplingCache "shmcb:{tmp_path}/run/stapling(128000)"
<VirtualHost 127.0.0.1:{port}>
  ServerName good.test
  SSLEngine on
  SSLCertificateFile {leaf.cert_file}
  SSLCertificateKeyFile {leaf.key_file}
  SSLUseStapling on
</VirtualHost>
"""

    def status(conf):
        p, _ = run("stapling-status", "-f", str(conf), "--json")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    with httpd(tmp_path, text) as srv:
        rep = status(srv.conf)
        assert rep["server"]["running"] and rep["server"]["pid"] == srv.pid()
        assert [c["state"] for c in rep["certificates"]] == ["stapled"]
        assert 0 <= rep["certificates"][0]["age"] < 60
        p, _ = run("stapling-status", "-f", str(srv.conf))
        assert f"server        running (pid {srv.pid()}, PidFile " in p.stdout
        assert "state         stapled (good)" in p.stdout
    rep = status(srv.conf)
    assert not rep["server"]["running"] and "not running" in rep["server"]["detail"]
    assert [c["state"] for c in rep["certificates"]] == ["stored"]
