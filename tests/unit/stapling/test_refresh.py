"""The refresh core both paths share (stapling/refresh.py): fetch -> judge -> store -> error
entry once, with failure kinds as enums; the real Fetcher against the in-process responder."""
from __future__ import annotations

import datetime as dt

import pytest

from httpd_py.config.model import CertKeyPair, ServerConfig, SSLConfig, StaplingConfig, VHost
from httpd_py.devtools.pki import make_leaf
from httpd_py.devtools.responder import Responder
from httpd_py.stapling import entry as E
from httpd_py.stapling import refresh as R
from httpd_py.stapling import verdict as V
from httpd_py.stapling.certinfo import collect
from httpd_py.stapling.fetch import Fetcher
from tests.support.tools import free_port

TRY_LATER = bytes.fromhex("30030a0103")


@pytest.fixture
def responder(pki, clock):
    with Responder.for_pki(pki, clock=clock, validity=dt.timedelta(hours=1)) as r:
        yield r


def info_for(pki, urls, suffix):
    leaf = make_leaf(pki, f"r{suffix}.test", "ec", ocsp_urls=tuple(urls), suffix=f"-r{suffix}")
    vh = VHost(server_name=f"r{suffix}.test", ssl=SSLConfig(engine=True, certificates=(
        CertKeyPair(str(leaf.cert_file), str(leaf.key_file)),), stapling=StaplingConfig(enabled=True)))
    cfg = ServerConfig(config_file="/dev/null", server_root="/", main=VHost(), vhosts=(vh,), listens=())
    return collect(cfg).all()[0]


class Stores:
    def __init__(self):
        self.calls = []

    def __call__(self, flag, der, now, until):
        self.calls.append((flag, der, now, until))
        return True


def run(info, clock, scfg=None, **kw):
    scfg = scfg or StaplingConfig(enabled=True, responder_timeout=2.0)
    stores = Stores()
    f = Fetcher()
    try:
        out = R.refresh(info, scfg, fetcher=f, store=stores, clock=clock, **kw)
    finally:
        f.close()
    return out, stores.calls


def test_valid_answer_is_stored_once_for_standard_cache_timeout(pki, clock, responder):
    out, calls = run(info_for(pki, [responder.url], 1), clock)
    assert out.valid and out.failure is None and out.verdict.kind == V.GOOD
    assert calls == [(E.VALID, out.der, clock(), clock() + 3600)]


def test_first_error_response_is_kept_over_later_urls_and_stored_once(pki, clock, responder):
    urls = [f"{responder.url}mode/tryLater/", f"{responder.url}mode/html/"]
    out, calls = run(info_for(pki, urls, 2), clock)
    assert out.failure is R.Failure.RESPONDER_ERROR
    assert [a.failure for a in out.attempts] == [R.Failure.RESPONDER_ERROR, R.Failure.CONTENT]
    assert calls == [(E.ERROR, TRY_LATER, clock(), clock() + 600)]
    assert out.staple(StaplingConfig()) == TRY_LATER
    assert out.staple(StaplingConfig(return_responder_errors=False)) == b""


def test_a_body_that_is_not_ocsp_is_content_and_fake_try_later_applies(pki, clock, responder):
    out, calls = run(info_for(pki, [f"{responder.url}mode/html/"], 3), clock)
    assert out.failure is R.Failure.CONTENT and out.synthesized
    assert out.attempts[0].verdict.problem is V.Problem.UNPARSABLE
    assert calls == [(E.ERROR, TRY_LATER, clock(), clock() + 600)]
    out, calls = run(info_for(pki, [f"{responder.url}mode/html/"], 3), clock,
                     StaplingConfig(fake_try_later=False))
    assert calls == [(E.ERROR, b"", clock(), clock() + 600)] and not out.synthesized


def test_only_invalid_answers_store_nothing_to_staple(pki, clock, responder):
    out, calls = run(info_for(pki, [f"{responder.url}mode/bad-signature/"], 4), clock)
    assert out.failure is R.Failure.INVALID and out.der == b""
    assert out.attempts[0].verdict.problem is V.Problem.SIGNATURE
    assert calls == [(E.ERROR, b"", clock(), clock() + 600)]


def test_timeout_ends_the_loop_and_unreachable_urls_are_skipped(pki, clock, responder):
    dead = f"http://127.0.0.1:{free_port()}/"
    out, _ = run(info_for(pki, [dead, responder.url], 5), clock)
    assert out.valid and [a.failure for a in out.attempts] == [R.Failure.CONNECT, None]
    scfg = StaplingConfig(responder_timeout=0.5)
    out, _ = run(info_for(pki, [f"{responder.url}mode/hang/", responder.url], 6), clock, scfg)
    assert out.failure is R.Failure.TIMEOUT and len(out.attempts) == 1
    assert out.describe().startswith("timeout: ")


def test_keep_policy_stores_nothing_and_valid_until_decides_the_expiry(pki, clock, responder):
    info = info_for(pki, [f"{responder.url}mode/tryLater/"], 7)
    out, calls = run(info, clock, policy=R.Policy(keep=lambda now: True))
    assert out.kept and out.flag is None and calls == []
    info = info_for(pki, [responder.url], 8)
    out, calls = run(info, clock, policy=R.Policy(valid_until=lambda v, now: v.next_update - 300))
    assert calls[0][3] == out.verdict.next_update - 300


def test_no_url_is_a_kind_not_a_message(pki, clock):
    out, calls = run(info_for(pki, [], 9), clock)
    assert out.failure is R.Failure.NO_URL and calls == [] and out.attempts == ()


def test_outdated_problems_are_what_stapling_status_calls_expired(pki, clock, responder):
    out, _ = run(info_for(pki, [responder.url], 10), clock)
    later = out.verdict.at(clock() + 2 * 3600, 300, None)
    assert later.problem is V.Problem.EXPIRED and later.problem.outdated
    old = out.verdict.at(clock(), 300, 10)
    assert old.problem is V.Problem.TOO_OLD and old.problem.outdated
    assert not V.Problem.SIGNATURE.outdated
