"""A handshake's SNI selection and staple lookup do not scan the vhosts (issue 15).

The same lookups run in a configuration of 10 and of 1,000 name-based SSL vhosts (each with its
own certificate, a wildcard alias on the first and on the last); every container the two paths
read is replaced by a counting one, and the counts must not depend on N:

* SNI (``tls.sites._servername_callback`` with a stand-in connection): probes of the Site's name
  memo and of the group's exact-name dict, wildcard comparisons, iterations over the group's
  vhosts, calls of the one-by-one ``name_matches``;
* the staple (the vhost's OCSP status callback): probes of the certificate table by DER and by
  key, iterations over it, stapling-cache reads, shmcb index searches (one subcache: the key's
  hash picks it), verdict-memo probes.

Not a timing test: counts only.  (shmcb's one index search scans one subcache's hash array,
whose length follows the cache size, which is the same here for both N, not the vhost count.)
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

from cryptography import x509
from OpenSSL import crypto

from httpd_py.config import load
from httpd_py.config import vhosts as vh
from httpd_py.devtools.pki import make_leaf, make_pki
from httpd_py.devtools.responder import CertRef, build_response
from httpd_py.socache import shmcb
from httpd_py.stapling import entry as entrylib
from httpd_py.stapling.service import StaplingService
from httpd_py.tls import sites as tls_sites

COUNTS: Counter = Counter()


class CountingDict(dict):
    """A dict that counts every probe and every iteration (under its ``label``)."""

    def __init__(self, data, label: str):
        super().__init__(data)
        self.label = label

    def get(self, *a):
        COUNTS[f"{self.label} probe"] += 1
        return super().get(*a)

    def __getitem__(self, k):
        COUNTS[f"{self.label} probe"] += 1
        return super().__getitem__(k)

    def __contains__(self, k):
        COUNTS[f"{self.label} probe"] += 1
        return super().__contains__(k)

    def __iter__(self):
        COUNTS[f"{self.label} scan"] += 1
        return super().__iter__()

    def values(self):
        COUNTS[f"{self.label} scan"] += 1
        return super().values()

    def items(self):
        COUNTS[f"{self.label} scan"] += 1
        return super().items()


class CountingTuple(tuple):
    """The group's vhosts: indexing is a direct read; iterating is a scan."""

    def __iter__(self):
        COUNTS["vhosts scan"] += 1
        return super().__iter__()


class Conn:
    """What the two callbacks use of a pyOpenSSL Connection."""

    def __init__(self, state, name: str, cert: x509.Certificate | None = None):
        self.state, self.name = state, name
        self.x509 = None if cert is None else crypto.X509.from_cryptography(cert)
        self.context = None

    def get_app_data(self):
        return self.state

    def get_servername(self):
        return self.name.encode()

    def set_context(self, ctx):
        self.context = ctx

    def get_certificate(self):
        return self.x509


def build(tmp_path, n: int):
    (tmp_path / "logs").mkdir(parents=True)
    pki = make_pki(tmp_path / "pki", (), ocsp_url="http://127.0.0.1:9/")
    lines = ["SSLStaplingCache shmcb", "SSLStaplingRefresh on-demand", f"DocumentRoot {tmp_path}",
             "Listen 127.0.0.1:8443"]
    for i in range(n):
        leaf = make_leaf(pki, f"v{i}.test", "ec", ocsp_urls=("http://127.0.0.1:9/",))
        alias = "*.first" if i == 0 else "*.last" if i == n - 1 else f"alias{i}.test"
        lines += ["<VirtualHost *:8443>", f"ServerName v{i}.test", f"ServerAlias {alias}",
                  "SSLEngine on", f"SSLCertificateFile {leaf.cert_file}",
                  f"SSLCertificateKeyFile {leaf.key_file}", "SSLUseStapling on", "</VirtualHost>"]
    conf = tmp_path / "httpd.conf"
    conf.write_text("\n".join(lines) + "\n")
    cfg = load(str(conf), server_root=str(tmp_path))
    service = StaplingService.from_config(cfg)
    service.init()
    # no TLS Contexts needed: the callback switches to whatever the table holds
    sites = tls_sites.Sites(cfg, {id(v): object() for v in cfg.all_vhosts()})
    callbacks = {id(v): service.callback_for(v) for v in cfg.vhosts}
    return pki, cfg, service, sites, callbacks


def store_good(pki, service, vhost) -> None:
    info = service.table.for_vhost(vhost)[0]
    now = dt.datetime.now(dt.timezone.utc)
    der = build_response(CertRef.of(info.cert, pki.inter), "good", pki.inter, pki.inter_key, now=now)
    assert service.store(info, entrylib.VALID, der, vhost.ssl.stapling)


def instrument(monkeypatch, site, service):
    group = site.group
    group._exact = CountingDict(group._exact, "names")
    group.vhosts = CountingTuple(group.vhosts)
    site._sni_names = CountingDict(site._sni_names, "memo")
    table = service.table
    table._by_der = CountingDict(table._by_der, "table")
    table._by_key = CountingDict(table._by_key, "table")
    table._vhosts = CountingDict(table._vhosts, "table")
    table._for_vhost = CountingDict(table._for_vhost, "table")
    service._memo = CountingDict(service._memo, "verdicts")
    real_wild = vh._wild_match
    monkeypatch.setattr(vh, "_wild_match", lambda p, name: COUNTS.update(["wildcard"]) or real_wild(p, name))
    real_matches = vh.name_matches
    monkeypatch.setattr(vh, "name_matches", lambda *a: COUNTS.update(["name_matches"]) or real_matches(*a))
    real_lookup = service.lookup
    monkeypatch.setattr(service, "lookup", lambda *a, **k: COUNTS.update(["cache read"]) or real_lookup(*a, **k))
    real_find = shmcb.ShmcbCache._find
    monkeypatch.setattr(shmcb.ShmcbCache, "_find",
                        lambda self, *a: COUNTS.update(["shmcb index search"]) or real_find(self, *a))


def counts_for(tmp_path, monkeypatch, n: int) -> list[dict]:
    pki, cfg, service, sites, callbacks = build(tmp_path, n)
    site = sites.site_for("127.0.0.1", 8443)
    targets = {f"v{n - 1}.test": n - 1, f"v{n // 2}.test": n // 2, f"alias{n - 2}.test": n - 2,
               "zzz.last": n - 1, "nope.test": None}
    for pos in {p for p in targets.values() if p is not None}:
        store_good(pki, service, cfg.vhosts[pos])
    instrument(monkeypatch, site, service)
    rows = []
    for name, pos in targets.items():
        for attempt in ("first", "memoised"):
            COUNTS.clear()
            state = tls_sites.TLSState(site)
            tls_sites._servername_callback(Conn(state, name))
            assert state.sni_vhost is (None if pos is None else cfg.vhosts[pos])
            sni = dict(COUNTS)
            if pos is None:
                rows.append({"name": name, "attempt": attempt, "sni": sni})
                continue
            COUNTS.clear()
            vhost = cfg.vhosts[pos]
            cert = service.table.for_vhost(vhost)[0].cert
            COUNTS.clear()
            staple = callbacks[id(vhost)](Conn(state, name, cert))
            assert staple, name
            rows.append({"name": name.replace(str(n - 1), "LAST").replace(str(n // 2), "MID")
                         .replace(str(n - 2), "LAST-1"), "attempt": attempt, "sni": sni,
                         "staple": dict(COUNTS)})
    service.shutdown()
    return rows


def test_sni_and_staple_lookups_do_not_depend_on_the_vhost_count(tmp_path, monkeypatch):
    small = counts_for(tmp_path / "10", monkeypatch, 10)
    monkeypatch.undo()
    large = counts_for(tmp_path / "1000", monkeypatch, 1000)
    assert small == large
    for row in large:
        sni, staple = row["sni"], row.get("staple", {})
        assert "vhosts scan" not in sni and "name_matches" not in sni, row
        assert sni.get("names probe", 0) <= 1 and sni.get("wildcard", 0) <= 2, row
        assert not any(k.endswith("scan") for k in staple), row
        assert staple.get("cache read", 0) <= 1 and staple.get("shmcb index search", 0) <= 1, row
        assert staple.get("table probe", 0) <= 1, row
    # a name seen before costs one memo probe and nothing else
    memoised = [r["sni"] for r in large if r["attempt"] == "memoised"]
    assert all(s == {"memo probe": 1} for s in memoised), memoised
