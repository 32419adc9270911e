"""Fixtures for the background-stapling tests: one PKI per session, a settable clock, an
in-process OCSP responder whose responses follow that clock, a real shmcb cache and real mutexes
through the real StaplingService, and an error log captured to a file."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from pathlib import Path

import pytest

from httpd_py import log
from httpd_py.config.model import (CertKeyPair, SSLConfig, ServerConfig, SocacheSpec,
                                   StaplingConfig, VHost, VHostAddr)
from httpd_py.devtools.pki import make_pki
from httpd_py.devtools.responder import Responder, build_response
from tests.support.stapling import Clock  # noqa: F401 - the test modules import it from here

UTC = dt.timezone.utc
NAMES = ("a.test", "b.test", "ms.test")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    # AIA points nowhere; every test sets SSLStaplingForceURL to its own responder
    return make_pki(tmp_path_factory.mktemp("pki"), NAMES, ocsp_url="http://127.0.0.1:9/",
                    must_staple_names=("ms.test",))


class ClockedResponder(Responder):
    """Responder whose honest answers are dated by ``clock``: thisUpdate = now - backdate,
    nextUpdate = thisUpdate + validity."""

    def __init__(self, *a, clock=time.time, backdate: float = 60.0, **kw):
        super().__init__(*a, **kw)
        self.clock = clock
        self.backdate = backdate

    def answer(self, ref, mode=None):
        mode = mode or self.mode
        if mode != "normal":
            return super().answer(ref, mode)
        now = dt.datetime.fromtimestamp(self.clock(), UTC)
        this = now - dt.timedelta(seconds=self.backdate)
        status = self.statuses.get(ref.serial, self.default_status)
        return build_response(ref, status, self.issuer, self.issuer_key, now=now,
                              this_update=this, next_update=this + self.validity)


def make_config(tmp: Path, pki, url: str, *, names=("a.test", "b.test"), kinds=("rsa", "ec"),
                cache: SocacheSpec | None = None, store_dir: str | None = None,
                runtime_dir: str | None = None, **stapling) -> ServerConfig:
    """A ServerConfig as the loader would make it: one SSL vhost per name, stapling on."""
    stapling.setdefault("responder_timeout", 2.0)
    st = StaplingConfig(enabled=True, force_url=url, **stapling)
    vhosts = []
    for name in names:
        certs = tuple(CertKeyPair(str(pki.leaf(name, k).cert_file), str(pki.leaf(name, k).key_file))
                      for k in kinds)
        vhosts.append(VHost(addrs=(VHostAddr("*", 443),), server_name=name, document_root=str(tmp),
                            ssl=SSLConfig(engine=True, certificates=certs, stapling=st)))
    run = runtime_dir or str(tmp / "run")
    os.makedirs(run, exist_ok=True)
    cache = cache or SocacheSpec("shmcb", raw=f"shmcb:{tmp}/staple.shm(512000)",
                                 path=str(tmp / "staple.shm"), size=512000)
    return ServerConfig(config_file=str(tmp / "httpd.conf"), server_root=str(tmp), main=VHost(),
                        vhosts=tuple(vhosts), listens=(), default_runtime_dir=run,
                        stapling_cache=cache, stapling_store_dir=store_dir)


@pytest.fixture
def errlog(tmp_path):
    """The process-wide error log, at debug, into a file; ``errlog.ids()`` lists HP ids seen."""
    path = tmp_path / "error.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    old = (log.error_log.fd, log.error_log.level, dict(log.error_log.module_levels))
    log.configure(fd, "debug")

    class Captured:
        def text(self) -> str:
            return path.read_text()

        def ids(self) -> list[str]:
            import re
            return re.findall(r"\] (HP\d{5}):", self.text())

    yield Captured()
    log.error_log.fd, log.error_log.level, log.error_log.module_levels = old
    os.close(fd)


def replace_stapling(cfg: ServerConfig, **kw) -> ServerConfig:
    vhosts = tuple(dataclasses.replace(v, ssl=dataclasses.replace(
        v.ssl, stapling=dataclasses.replace(v.ssl.stapling, **kw))) for v in cfg.vhosts)
    return dataclasses.replace(cfg, vhosts=vhosts)


@pytest.fixture
def clock():
    """A settable clock for one test."""
    return Clock()


@pytest.fixture
def responder(pki, clock):
    """An in-process responder dated by ``clock``: 2-day responses."""
    r = ClockedResponder.for_pki(pki, clock=clock, validity=dt.timedelta(days=2))
    with r:
        yield r
