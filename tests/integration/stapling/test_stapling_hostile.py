"""The hostile-responder corpus against real forked workers: one SNI vhost per responder
behaviour (its certificate's AIA URL selects the behaviour), real handshakes through them all.
Nothing invalid is stapled, no worker dies, handshakes go on."""
from __future__ import annotations

import dataclasses
import os
import time

import pytest

from httpd_py.config.model import SocacheSpec, StaplingConfig
from httpd_py.devtools.pki import make_leaf, make_pki
from httpd_py.devtools.responder import MODES, Responder
from httpd_py.stapling import verdict as V
from httpd_py.stapling.certid import CertID
from httpd_py.stapling.service import StaplingService
from httpd_py.stapling.stapler import attach
from tests.support.stapling import connect, staple_context, status_request
from tests.support.tlshttp_harness import config, serve, ssl_for, vhost
from tests.support.tools import free_port

# what may be stapled for each behaviour (ReturnResponderErrors on, FakeTryLater on: defaults)
VALID_MODES = {"normal", "no-next-update"}
ERROR_STATUS_MODES = {"malformedRequest", "internalError", "tryLater", "sigRequired", "unauthorized"}


def handshake(port: int, name: str) -> bytes:
    got: list = []
    ctx = staple_context(got)
    s = connect(port)
    try:
        c = status_request(ctx, s, name)
        c.do_handshake()
        c.shutdown()
    finally:
        s.close()
    return got[0] if got else b""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    rport = free_port()
    pki = make_pki(tmp / "pki", (), ocsp_url=None)
    names = []
    for mode in MODES:
        name = f"{mode.lower()}.test"
        make_leaf(pki, name, "ec", ocsp_urls=(f"http://127.0.0.1:{rport}/mode/{mode}/",))
        names.append((mode, name))
    st = StaplingConfig(enabled=True, refresh="on-demand", responder_timeout=1.0)
    vhosts = []
    for _, name in names:
        d = tmp / name
        d.mkdir()
        (d / "index.html").write_text(name)
        vhosts.append(vhost(name, d, None, ssl=ssl_for(pki, name, kinds=("ec",), stapling=st)))
    cfg = dataclasses.replace(config(tmp, tuple(vhosts), (free_port(),)),
                              stapling_cache=SocacheSpec("shmcb", raw="shmcb", size=512000),
                              default_runtime_dir=str(tmp))
    with Responder.for_pki(pki, port=rport, drip_interval=0.3) as responder:
        svc = StaplingService.from_config(cfg)
        svc.init(attach=attach)
        try:
            with serve(cfg, tmp, workers=2, log_level="info", ocsp_callback_for=svc.callback_for) as running:
                yield pki, names, running, responder
        finally:
            svc.shutdown()


def test_corpus_is_at_least_25_behaviours():
    assert len(MODES) >= 25


def test_nothing_invalid_is_stapled_and_workers_survive(hostile):
    pki, names, running, responder = hostile
    seen = {}
    for mode, name in names:
        start = time.monotonic()
        der = handshake(running.port, name)
        took = time.monotonic() - start
        leaf = pki.leaf(name, "ec").cert
        v = V.check_response(der, CertID.from_certs(leaf, pki.inter), pki.inter, time.time()) if der else None
        seen[mode] = v.kind if v else None
        if mode in VALID_MODES:
            assert v is not None and v.kind == V.GOOD, (mode, v)
        elif mode in ERROR_STATUS_MODES:
            assert v is not None and v.kind == V.RESPONDER_ERROR and v.response_status == mode, (mode, v)
        else:
            # everything else failed or was refused: a synthesized tryLater (errors on) or nothing
            assert v is None or (v.kind == V.RESPONDER_ERROR and der == V.try_later_der()), (mode, v)
        assert took < 1.0 + 3.0, (mode, took)        # bounded by SSLStaplingResponderTimeout 1 s
    # the cached outcome holds: a second round staples the same and asks nobody
    before = responder.requests
    for mode, name in names:
        der = handshake(running.port, name)
        assert bool(der) == (seen[mode] is not None), mode
    assert responder.requests == before
    for pid in running.pids:                                      # no worker died
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)
    log = running.error_text()
    assert "Traceback" not in log and "HP04035" not in log      # no callback internal error
    for msgid in ("HP04021", "HP04022", "HP04023", "HP04024", "HP04025", "HP04032"):
        assert msgid in log, msgid
