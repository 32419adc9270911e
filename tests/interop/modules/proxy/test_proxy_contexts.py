"""Where mod_proxy's and mod_remoteip's directives may appear, and which values they refuse,
checked against ``apache2 -t``: each sample in the main server, a <VirtualHost>, a <Directory>
and a <Location>; the same verdict (Syntax OK or not) from both."""
from __future__ import annotations

import pytest

from httpd_py.config import load
from httpd_py.errors import ConfigError
from tests.support.apache import minimal_conf, run_apache_each
from tests.support.tools import require_tool

MODULES = ("mpm_prefork", "authz_core", "proxy", "proxy_http", "proxy_balancer",
           "lbmethod_byrequests", "slotmem_shm", "proxy_wstunnel", "remoteip")

SAMPLES = [
    "ProxyPass /a http://b.test/",
    "ProxyPass http://b.test/",
    "ProxyPass /a !",
    "ProxyPass /a http://b.test/ timeout=5 retry=0 keepalive=On disablereuse=On",
    "ProxyPass /a http://b.test/ bogus=1",
    "ProxyPass /a http://b.test/ loadfactor=200",
    "ProxyPass /a",
    "ProxyPassMatch ^/a(.*) http://b.test$1",
    "ProxyPassMatch ^/(a http://b.test",
    "ProxyPassReverse /a http://b.test/",
    "ProxyPassReverse http://b.test/",
    "ProxyPassReverseCookieDomain b.test a.test",
    "ProxyPassReverseCookiePath /b /a",
    "ProxyPreserveHost On",
    "ProxyPreserveHost maybe",
    "ProxyAddHeaders Off",
    "ProxyErrorOverride On",
    "ProxyVia On",
    "ProxyVia Block",
    "ProxyVia sometimes",
    "ProxyTimeout 5",
    "ProxyTimeout abc",
    "ProxyRequests Off",
    "BalancerMember balancer://x http://b.test route=r1 loadfactor=2",
    "BalancerMember http://b.test",
    "ProxySet balancer://x lbmethod=byrequests stickysession=S",
    "BalancerMember balancer://x http://b.test\nProxySet balancer://x nofailover=On",
    "ProxySet http://b.test timeout=5",
    "ProxyPass /a http://b.test/\nProxySet http://b.test/ timeout=5",
    "BalancerMember http://b.test",
    "RemoteIPHeader X-Forwarded-For",
    "RemoteIPInternalProxy 10.0.0.0/8 127.0.0.1",
    "RemoteIPTrustedProxy 192.0.2.1",
    "RemoteIPTrustedProxy 10.0.0.0/99",
    "RemoteIPProxiesHeader X-Proxies",
]
WRAP = {"main": "{d}\n", "vhost": "<VirtualHost *:18080>\n{d}\n</VirtualHost>\n",
        "directory": "<Directory />\n{d}\n</Directory>\n",
        "location": "<Location /loc>\n{d}\n</Location>\n"}
# Refused by httpd-py where apache2 accepts (never the other way).
STRICTER: set = set()


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    require_tool("apache2")
    root = tmp_path_factory.mktemp("proxyctx")
    (root / "logs").mkdir()
    base = minimal_conf(root, MODULES)
    jobs = []
    for i, sample in enumerate(SAMPLES):
        for ctx, wrap in WRAP.items():
            path = root / f"s{i}-{ctx}.conf"
            path.write_text(base + wrap.format(d=sample))
            jobs.append((sample, ctx, path))
    theirs = run_apache_each(root, [p for _, _, p in jobs], "-t")
    out = {}
    for (sample, ctx, path), p in zip(jobs, theirs):
        try:
            load(str(path), log_warnings=False)
            ours, msg = True, ""
        except ConfigError as e:
            ours, msg = False, e.msg
        tail = (p.stdout + p.stderr).strip().splitlines()[-1:]
        out[(sample, ctx)] = (p.returncode == 0, tail, ours, msg)
    return out


@pytest.mark.parametrize("ctx", list(WRAP))
@pytest.mark.parametrize("sample", SAMPLES)
def test_same_verdict(sample, ctx, verdicts):
    a_ok, a_msg, ours, msg = verdicts[(sample, ctx)]
    if (sample, ctx) in STRICTER:
        assert not ours
        return
    assert ours == a_ok, f"Apache {'OK' if a_ok else a_msg}, httpd-py {'OK' if ours else msg}"
