"""The background stapler as processes beside real forked TLS workers (the tls/http harness,
without the prefork master): kill -9 of everything, then a new generation with the responder
down staples from the store.  Also the pyOpenSSL client helpers the real-server tests use.
(The hung-responder and fleet tests run against the real server: test_real_server.py.)"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import signal
import time
from pathlib import Path

from OpenSSL import SSL

from httpd_py.config.model import SocacheSpec, StaplingConfig
from httpd_py.stapling.service import StaplingService
from httpd_py.stapling.stapler import attach
from tests.support.stapling import connect, staple_context, status_request
from tests.support.tlshttp_harness import config, serve, ssl_for, vhost
from tests.unit.stapling_bg.conftest import ClockedResponder

NAMES = ("a.test", "b.test")
JOBS = [(n, k) for n in NAMES for k in ("rsa", "ec")]


def short_lived_responder(pki, validity: float = 20.0) -> ClockedResponder:
    """Responses valid ``validity`` s from 1 s ago: with skew 1 s they are served until
    fetch + validity - 2, and with SSLStaplingRenewWindow validity - 6 the refresh is due
    about 4 s after each fetch."""
    return ClockedResponder.for_pki(pki, backdate=1.0, validity=dt.timedelta(seconds=validity))


def make_cfg(tmp: Path, pki, url: str, names=NAMES, *, validity: float = 20.0, timeout: float = 3.0,
             **kw):
    st = StaplingConfig(enabled=True, force_url=url, responder_timeout=timeout,
                        response_time_skew=1, renew_window=int(validity - 6), **kw)
    vhosts = []
    for n in names:
        d = tmp / f"docs-{n}"
        d.mkdir(parents=True, exist_ok=True)
        vhosts.append(vhost(n, d, None, ssl=ssl_for(pki, n, stapling=st)))
    from tests.support.tools import free_port
    cfg = config(tmp, tuple(vhosts), (free_port(),))
    return dataclasses.replace(cfg, stapling_cache=SocacheSpec("shmcb", raw="shmcb", size=512000),
                               default_runtime_dir=str(tmp), stapling_store_dir=str(tmp / "store"))


@contextlib.contextmanager
def helper_process(svc):
    """Fork the stapler's helper as the master would; SIGKILL-able; reaped on exit."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            svc.stapler.run()
            code = 0
        finally:
            os._exit(code)
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def handshake(port: int, name: str, kind: str) -> tuple[bytes, float]:
    """One TLS 1.2 handshake asking for the staple: (staple bytes, seconds)."""
    got: list[bytes] = []
    ctx = staple_context(got, kind)
    s = connect(port)
    try:
        c = status_request(ctx, s, name)
        t0 = time.perf_counter()
        c.do_handshake()
        elapsed = time.perf_counter() - t0
        with contextlib.suppress(SSL.Error):
            c.shutdown()
        return (got[0] if got else b""), elapsed
    finally:
        s.close()


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def staples_by_job(port: int) -> dict[tuple[str, str], bytes]:
    return {job: handshake(port, *job)[0] for job in JOBS}


def test_kill_9_of_everything_then_restart_with_responder_down_staples_from_the_store(tmp_path, pki):
    responder = short_lived_responder(pki, validity=600.0).start()
    cfg = make_cfg(tmp_path, pki, responder.url, validity=600.0)
    svc1 = StaplingService.from_config(cfg)
    svc1.init(attach=attach)
    with serve(cfg, tmp_path, workers=2, ocsp_callback_for=svc1.callback_for) as srv:
        with helper_process(svc1) as helper:
            before = staples_by_job(srv.port)
            assert all(before.values())
            for pid in [*srv.pids, helper]:        # the whole server dies at once
                os.kill(pid, signal.SIGKILL)
    responder.stop()                               # and the responder is down for the restart
    # no svc1.shutdown(): a crash.  A new generation with a fresh (anonymous) cache:
    svc2 = StaplingService.from_config(cfg)
    svc2.init(attach=attach)
    try:
        assert responder.requests == 4             # nothing was asked on the way back up
        (tmp_path / "gen2").mkdir()
        with serve(cfg, tmp_path / "gen2", workers=2, ocsp_callback_for=svc2.callback_for) as srv2:
            after = {job: handshake(srv2.port, *job)[0] for job in JOBS}   # FIRST handshakes
    finally:
        svc2.shutdown()
    assert after == before
