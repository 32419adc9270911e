"""StaplingService on demand: every directive, table-driven, with a fake clock, an in-memory
cache, per-key thread locks and the real in-process responder on loopback."""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from httpd_py.config.model import (CertKeyPair, ServerConfig, SocacheSpec, SSLConfig,
                                   StaplingConfig, VHost)
from httpd_py.devtools.responder import MODES, Responder
from httpd_py.stapling import entry as E
from httpd_py.stapling import verdict as V
from httpd_py.stapling.certinfo import collect
from httpd_py.stapling.service import StaplingService
from tests.support.tools import free_port
from tests.unit.stapling.conftest import MemoryCache, ThreadMutex

TRY_LATER = bytes.fromhex("30030a0103")


def vhost(pki, names=("a.test",), kinds=("rsa",), **stapling) -> VHost:
    certs = tuple(CertKeyPair(str(pki.leaf(n, k).cert_file), str(pki.leaf(n, k).key_file))
                  for n in names for k in kinds)
    st = StaplingConfig(enabled=True, refresh="on-demand", responder_timeout=2.0, **stapling)
    return VHost(server_name=names[0], ssl=SSLConfig(engine=True, certificates=certs, stapling=st))


def make_service(pki, vhosts, clock, cache=None):
    cfg = ServerConfig(config_file="/dev/null", server_root="/", main=VHost(), vhosts=tuple(vhosts),
                       listens=(), stapling_cache=SocacheSpec("shmcb", raw="shmcb"))
    cache = cache or MemoryCache(clock)
    svc = StaplingService(cfg, collect(cfg), cache, refresh_mutex=ThreadMutex(), clock=clock)
    return svc


@pytest.fixture
def responder(pki, clock):
    with Responder.for_pki(pki, clock=clock, validity=__import__("datetime").timedelta(hours=1),
                           drip_interval=0.3) as r:
        yield r


def staple(svc, vh, cert_index=0, now=None):
    info = svc.table.for_vhost(vh)[cert_index]
    return svc.staple_for(info, vh, now=now), info


def kind_of(der, info, now, skew=300):
    return V.check_response(der, info.cid, info.issuer, now, skew=skew).kind if der else None


# -- the basic path -----------------------------------------------------------------------

def test_miss_fetches_validates_stores_and_staples(pki, clock, responder):
    vh = vhost(pki, force_url=responder.url)
    svc = make_service(pki, [vh], clock)
    der, info = staple(svc, vh)
    assert kind_of(der, info, clock()) == "good"
    assert responder.count(info.cid.serial) == 1
    e = svc.lookup(info)
    assert e.flag == E.VALID and e.der == der
    assert svc.cache.data[info.key][1] == pytest.approx(clock() + 3600)
    # second handshake: cache only
    assert staple(svc, vh)[0] == der and responder.count(info.cid.serial) == 1


def test_aia_url_is_used_and_every_aia_url_in_turn(pki, clock, responder, tmp_path):
    from httpd_py.devtools.pki import make_leaf
    dead = f"http://127.0.0.1:{free_port()}/"
    leaf = make_leaf(pki, "multi.test", "ec", ocsp_urls=(dead, responder.url), suffix="-multi")
    vh = VHost(server_name="multi.test", ssl=SSLConfig(engine=True, certificates=(
        CertKeyPair(str(leaf.cert_file), str(leaf.key_file)),), stapling=StaplingConfig(
        enabled=True, refresh="on-demand", responder_timeout=2.0)))
    svc = make_service(pki, [vh], clock)
    der, info = staple(svc, vh)
    assert info.aia_urls == (dead, responder.url)
    assert kind_of(der, info, clock()) == "good"


# -- table: the directives ----------------------------------------------------------------

@pytest.mark.parametrize("std,advance,refetch", [
    (3600, 3599, False),
    (3600, 3601, True),
    (60, 59, False),
    (60, 61, True),
])
def test_standard_cache_timeout(pki, clock, responder, std, advance, refetch):
    vh = vhost(pki, force_url=responder.url, standard_cache_timeout=std)
    svc = make_service(pki, [vh], clock)
    der, info = staple(svc, vh)
    clock.advance(advance)
    again, _ = staple(svc, vh)
    assert kind_of(again, info, clock()) == "good"
    assert responder.count(info.cid.serial) == (2 if refetch else 1)


@pytest.mark.parametrize("err_ttl,advance,refetch", [(600, 599, False), (600, 601, True), (5, 6, True)])
def test_error_cache_timeout(pki, clock, responder, err_ttl, advance, refetch):
    responder.mode = "tryLater"
    vh = vhost(pki, force_url=responder.url, error_cache_timeout=err_ttl)
    svc = make_service(pki, [vh], clock)
    der, info = staple(svc, vh)
    assert der == TRY_LATER                         # ReturnResponderErrors on (default)
    assert svc.lookup(info).flag == E.ERROR
    clock.advance(advance)
    staple(svc, vh)
    assert responder.count(info.cid.serial) == (2 if refetch else 1)


@pytest.mark.parametrize("skew,advance,stale", [
    # responses live 1 h (thisUpdate = now - 5 min, nextUpdate = +55 min); StandardCacheTimeout 1 day
    (300, 55 * 60 + 299, False),
    (300, 55 * 60 + 301, True),
    (0, 55 * 60 + 1, True),
    (3600, 55 * 60 + 3000, False),
])
def test_response_time_skew_on_cached_entries(pki, clock, responder, skew, advance, stale):
    vh = vhost(pki, force_url=responder.url, standard_cache_timeout=86400, response_time_skew=skew)
    svc = make_service(pki, [vh], clock)
    first, info = staple(svc, vh)
    clock.advance(advance)
    der, _ = staple(svc, vh)
    assert responder.count(info.cid.serial) == (2 if stale else 1)
    assert kind_of(der, info, clock(), skew) == "good"
    assert (der != first) == stale


@pytest.mark.parametrize("max_age,advance,stapled,fetches", [
    (None, 0, True, 1),
    (3600, 0, True, 1),        # thisUpdate is 300 s old
    (299, 0, False, 1),        # too old already: refused, never stapled
    (600, 301, True, 2),       # was fine, 601 s old later: renewed
])
def test_response_max_age(pki, clock, responder, max_age, advance, stapled, fetches):
    vh = vhost(pki, force_url=responder.url, response_max_age=max_age)
    svc = make_service(pki, [vh], clock)
    staple(svc, vh)
    clock.advance(advance)
    der, info = staple(svc, vh)
    assert bool(der) == stapled
    assert responder.count(info.cid.serial) == fetches
    if not stapled:
        assert svc.lookup(info).negative


@pytest.mark.parametrize("fake,errors,expect_staple,expect_entry", [
    (True, True, TRY_LATER, TRY_LATER),
    (True, False, b"", TRY_LATER),
    (False, True, b"", b""),
    (False, False, b"", b""),
])
def test_fake_try_later_and_return_errors_when_responder_down(pki, clock, fake, errors,
                                                              expect_staple, expect_entry):
    vh = vhost(pki, force_url=f"http://127.0.0.1:{free_port()}/", fake_try_later=fake,
               return_responder_errors=errors, error_cache_timeout=600)
    svc = make_service(pki, [vh], clock)
    der, info = staple(svc, vh)
    assert der == expect_staple
    e = svc.lookup(info)
    assert e.flag == E.ERROR and e.der == expect_entry
    # an error entry, never the 3600 s valid one Apache 2.4.71 makes
    assert svc.cache.data[info.key][1] == pytest.approx(clock() + 600)
    # the next handshakes within ErrorCacheTimeout do not query again
    stores = svc.cache.stores
    assert staple(svc, vh)[0] == expect_staple and svc.cache.stores == stores


@pytest.mark.parametrize("mode,errors,stapled_kind", [
    ("normal", False, "good"),
    ("tryLater", True, "responder-error"),
    ("tryLater", False, None),
    ("internalError", True, "responder-error"),
    ("unauthorized", False, None),
    ("wrong-serial", True, None),          # Apache staples it (errors on); never here
    ("bad-signature", True, None),
    ("expired", True, None),
])
def test_return_responder_errors(pki, clock, responder, mode, errors, stapled_kind):
    responder.mode = mode
    vh = vhost(pki, force_url=responder.url, return_responder_errors=errors)
    svc = make_service(pki, [vh], clock)
    der, info = staple(svc, vh)
    assert (V.inspect(der, info.cid, info.issuer, clock()).kind if der else None) == stapled_kind


@pytest.mark.parametrize("status,errors,stapled", [
    ("revoked", False, "revoked"), ("revoked", True, "revoked"),
    ("unknown", True, "unknown"), ("unknown", False, None),
])
def test_certificate_status(pki, clock, responder, status, errors, stapled):
    responder.default_status = status
    vh = vhost(pki, force_url=responder.url, return_responder_errors=errors)
    svc = make_service(pki, [vh], clock)
    der, info = staple(svc, vh)
    assert kind_of(der, info, clock()) == stapled
    assert svc.lookup(info).flag == (E.VALID if status == "revoked" else E.ERROR)


def test_force_url_overrides_aia(pki, clock, responder):
    # the PKI's AIA points at 127.0.0.1:9 (discard port, nothing listens)
    vh = vhost(pki, force_url=responder.url)
    svc = make_service(pki, [vh], clock)
    der, info = staple(svc, vh)
    assert info.aia_urls == ("http://127.0.0.1:9/",) and der
    vh2 = vhost(pki)                                        # no ForceURL: the dead AIA URL
    svc2 = make_service(pki, [vh2], clock)
    assert staple(svc2, vh2)[0] == TRY_LATER


def test_proxy_url(pki, clock, responder):
    vh = vhost(pki, force_url="http://ocsp.unresolvable.invalid/ocsp", proxy_url=responder.url)
    svc = make_service(pki, [vh], clock)
    der, info = staple(svc, vh)
    assert kind_of(der, info, clock()) == "good"
    assert responder.paths[0].startswith("http://ocsp.unresolvable.invalid/ocsp")


def test_responder_timeout_is_a_total_deadline(pki, clock, responder):
    responder.mode = "drip"
    vh = vhost(pki, force_url=responder.url)
    vh = dataclasses.replace(vh, ssl=dataclasses.replace(vh.ssl, stapling=dataclasses.replace(
        vh.ssl.stapling, responder_timeout=1.0)))
    svc = make_service(pki, [vh], clock)
    start = time.monotonic()
    der, info = staple(svc, vh)
    assert time.monotonic() - start < 2.5
    assert der == TRY_LATER


@pytest.mark.parametrize("mode", MODES)
def test_every_responder_mode_staples_nothing_invalid(pki, clock, responder, mode):
    responder.mode = mode
    vh = vhost(pki, force_url=responder.url)
    vh = dataclasses.replace(vh, ssl=dataclasses.replace(vh.ssl, stapling=dataclasses.replace(
        vh.ssl.stapling, responder_timeout=1.0)))
    svc = make_service(pki, [vh], clock)
    der, info = staple(svc, vh)
    if der:
        v = V.check_response(der, info.cid, info.issuer, clock())
        assert v.kind in (V.GOOD, V.RESPONDER_ERROR, V.UNKNOWN), (mode, v)
        if mode not in ("normal", "no-next-update"):
            assert v.kind == V.RESPONDER_ERROR
    else:
        assert mode not in ("normal", "no-next-update")


# -- single flight ------------------------------------------------------------------------

def test_single_flight_per_certificate(pki, clock, responder):
    responder.mode = "normal"
    vh = vhost(pki, force_url=responder.url)
    svc = make_service(pki, [vh], clock)
    info = svc.table.for_vhost(vh)[0]
    results = []
    go = threading.Barrier(8)

    def one():
        go.wait(5)
        results.append(svc.staple_for(info, vh))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 8 and all(results) and len(set(results)) == 1
    assert responder.count(info.cid.serial) == 1


def test_a_hung_certificate_does_not_block_another(pki, clock, responder):
    """Apache's single refresh lock made a second vhost wait behind a hung fetch."""
    with Responder.for_pki(pki, clock=clock, mode="hang") as hung:
        va = vhost(pki, names=("a.test",), force_url=hung.url)
        va = dataclasses.replace(va, ssl=dataclasses.replace(va.ssl, stapling=dataclasses.replace(
            va.ssl.stapling, responder_timeout=1.5)))
        vb = vhost(pki, names=("b.test",), force_url=responder.url)
        svc = make_service(pki, [va, vb], clock)
        ia, ib = svc.table.for_vhost(va)[0], svc.table.for_vhost(vb)[0]
        started = threading.Event()
        t = threading.Thread(target=lambda: (started.set(), svc.staple_for(ia, va)))
        t.start()
        started.set()
        from tests.support.tools import wait_until
        wait_until(lambda: hung.requests >= 1, 5, what="hung fetch in flight")
        der = svc.staple_for(ib, vb)                # not behind a's lock
        assert der and t.is_alive()
        t.join(10)


def test_lock_not_acquired_gives_no_staple_and_no_fetch(pki, clock, responder):
    vh = vhost(pki, force_url=responder.url)
    vh = dataclasses.replace(vh, ssl=dataclasses.replace(vh.ssl, stapling=dataclasses.replace(
        vh.ssl.stapling, responder_timeout=0.0)))
    svc = make_service(pki, [vh], clock)
    info = svc.table.for_vhost(vh)[0]
    with svc.refresh_mutex.hold(key=info.key):
        t = threading.Thread(target=lambda: results.append(svc.staple_for(info, vh)))
        results: list = []
        t.start()
        t.join(5)
    assert results == [b""] and responder.requests == 0


# -- cache records and failures -----------------------------------------------------------

def test_store_failure_still_staples_fresh_response(pki, clock, responder):
    cache = MemoryCache(clock)
    cache.fail_store = True
    vh = vhost(pki, force_url=responder.url)
    svc = make_service(pki, [vh], clock, cache=cache)
    der, info = staple(svc, vh)
    assert kind_of(der, info, clock()) == "good"


@pytest.mark.parametrize("record", [b"\x07junk", b"\x01", b"", b"\x01" + b"\x30" * 20])
def test_corrupt_cache_record_is_a_miss_or_refused(pki, clock, responder, record):
    vh = vhost(pki, force_url=responder.url)
    svc = make_service(pki, [vh], clock)
    info = svc.table.for_vhost(vh)[0]
    svc.cache.store(info.key, record, clock() + 3600)
    der, _ = staple(svc, vh)
    # a foreign flag, an empty or flag-only record is a miss; a flag-1 record whose DER is not a
    # valid response is stale: either way a fresh response is fetched, and the record replaced
    assert kind_of(der, info, clock()) == "good"
    assert responder.count(info.cid.serial) == 1
    assert svc.lookup(info).der == der


def test_cached_error_record_holding_an_invalid_response_is_never_stapled(pki, clock, responder):
    """Another writer (or an older server) stored flag 0 + a wrong-serial response."""
    responder.mode = "wrong-serial"
    from httpd_py.devtools.responder import CertRef
    vh = vhost(pki, force_url=responder.url)
    svc = make_service(pki, [vh], clock)
    info = svc.table.for_vhost(vh)[0]
    bad = responder.answer(CertRef.of(info.cert, info.issuer))
    svc.cache.store(info.key, b"\x00" + bad, clock() + 600)
    assert staple(svc, vh)[0] == b""
    svc.cache.store(info.key, b"\x01" + bad, clock() + 600)
    responder.mode = "normal"
    assert kind_of(staple(svc, vh)[0], info, clock()) == "good"


def test_background_mode_never_fetches_in_the_handshake(pki, clock, responder):
    vh = vhost(pki, force_url=responder.url)
    vh = dataclasses.replace(vh, ssl=dataclasses.replace(vh.ssl, stapling=dataclasses.replace(
        vh.ssl.stapling, refresh="background")))
    svc = make_service(pki, [vh], clock)
    svc.background = True
    assert staple(svc, vh)[0] == b"" and responder.requests == 0
    svc.background = False                     # no stapler running: on demand after all
    assert staple(svc, vh)[0]


def test_no_url_staples_nothing_and_logs_one_info_line(pki, clock, tmp_path):
    import os
    from httpd_py import log
    from httpd_py.devtools.pki import make_leaf
    leaf = make_leaf(pki, "nourl.test", "ec", suffix="-nourl")
    vhs = [VHost(server_name=n, ssl=SSLConfig(engine=True, certificates=(
        CertKeyPair(str(leaf.cert_file), str(leaf.key_file)),), stapling=StaplingConfig(enabled=True)))
        for n in ("nourl.test", "alias.test")]
    r, w = os.pipe()
    old = (log.error_log.fd, log.error_log.level)
    log.configure(w, "info")
    try:
        svc = make_service(pki, vhs, clock)
    finally:
        log.error_log.fd, log.error_log.level = old
        os.close(w)
    text = os.read(r, 65536).decode()
    os.close(r)
    assert text.count("HP04001") == 1 and "[ssl:info]" in text and "error" not in text
    assert len(svc.table) == 1 and len(svc.table.vhosts_of(svc.table.all()[0].key)) == 2
    assert staple(svc, vhs[0])[0] == b""


def test_issuer_from_ca_file_when_chain_missing(pki, clock, tmp_path):
    leaf = pki.leaf("b.test", "ec")
    only_leaf = tmp_path / "leaf-only.pem"
    only_leaf.write_bytes(leaf.cert_file.read_bytes().split(b"-----END CERTIFICATE-----")[0]
                          + b"-----END CERTIFICATE-----\n")
    def vh(ca):
        return VHost(server_name="b.test", ssl=SSLConfig(engine=True, ca_file=ca, certificates=(
            CertKeyPair(str(only_leaf), str(leaf.key_file)),), stapling=StaplingConfig(enabled=True)))
    assert len(make_service(pki, [vh(None)], clock).table) == 0          # issuer unknown: skipped
    svc = make_service(pki, [vh(str(pki.inter_file))], clock)
    assert len(svc.table) == 1 and svc.table.all()[0].issuer == pki.inter


def test_from_config_none_when_nothing_staples_and_error_without_cache(pki):
    # AH01958 is checked once, by the post-config checks (config/checks.py), before any
    # service is made
    from httpd_py.config import check
    from httpd_py.errors import ConfigError
    cfg = ServerConfig(config_file="/dev/null", server_root="/", main=VHost(), vhosts=(), listens=())
    assert StaplingService.from_config(cfg) is None
    cfg = dataclasses.replace(cfg, vhosts=(vhost(pki),))
    with pytest.raises(ConfigError, match="SSLStaplingCache"):
        check(cfg)


@pytest.mark.parametrize("der,kind,fake,expect", [
    (TRY_LATER, V.RESPONDER_ERROR, True, (E.ERROR, TRY_LATER)),
    (b"\x30unknown", V.UNKNOWN, False, (E.ERROR, b"\x30unknown")),
    (b"", V.INVALID, True, (E.ERROR, b"")),
    (None, None, True, (E.ERROR, TRY_LATER)),
    (None, None, False, (E.ERROR, b"")),
])
def test_error_entry_is_pure_and_shared(der, kind, fake, expect):
    from httpd_py.stapling.entry import error_entry
    v = None if kind is None else V.Verdict(kind, "x")
    assert error_entry(der, v, StaplingConfig(fake_try_later=fake)) == expect
