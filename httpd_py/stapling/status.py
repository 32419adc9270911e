"""``httpd-py stapling-status -f CONF [--json]``: each stapled certificate's state.

Reads the configuration (to know the certificates, their issuers and responders) and the staple
store the background stapler keeps (``SSLStaplingStoreDir``, default
``<DefaultRuntimeDir>/ssl-staples``).  It never contacts a responder and never writes.  Each
stored response is checked again (CertID, signature, times) before it is reported as valid.

Text output, one block per certificate::

    a.test (RSA, serial 5F3A...)
      subject       CN=a.test,O=httpd-py test PKI
      serial        5F3A...
      state         stapled (good)            must-staple: no
      responder     http://127.0.0.1:8888/
      thisUpdate    2026-11-26 15:00:00 UTC   nextUpdate 2026-12-03 15:00:00 UTC
      age           1234 s                    valid until 2026-12-03 14:55:00 UTC
      next refresh  2026-11-30 03:00:00 UTC
      last error    -
      requests      3

``--json`` prints ``{"generated_at": t, "store": dir, "certificates": [{...}, ...]}`` with the
same fields (times as epoch seconds, null when unknown).

Exit codes: 0 printed, 1 configuration or start-up error (message on stderr), 2 usage.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from httpd_py.errors import HttpdError
from httpd_py.stapling import muststaple, schedule
from httpd_py.stapling.store import StapleStore, default_dir

# states
STAPLED = "stapled"          # a valid response is stored and servable now
EXPIRED = "expired"          # a response is stored but no longer servable
INVALID = "invalid"          # the stored response fails validation
NONE = "none"                # nothing stored yet
UNREADABLE = "unreadable"    # the record file cannot be parsed


def _fmt(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"


def report(cfg, now: float | None = None, *, table=None) -> dict:
    """The status of every stapled certificate of ``cfg`` (a ServerConfig) as a dict."""
    from httpd_py.stapling import certinfo
    from httpd_py.stapling import verdict as verdictlib

    now = time.time() if now is None else now
    table = table if table is not None else certinfo.collect(cfg)
    d = default_dir(cfg)
    store = StapleStore(d) if d else None
    certs = []
    for info in table.all():
        vhosts = table.vhosts_of(info.key)
        scfg = vhosts[0].ssl.stapling if vhosts else None
        policy = schedule.Policy.from_config(scfg) if scfg else schedule.Policy()
        urls = info.urls_for(scfg) if scfg else tuple(info.aia_urls)
        item = {
            "label": getattr(info, "label", ""),
            "key": info.key.hex(),
            "subject": info.cert.subject.rfc4514_string(),
            "serial": format(info.cert.serial_number, "X"),
            "responder": urls[0] if urls else None,
            "vhosts": [v.server_name or "(main server)" for v in vhosts],
            "refresh": scfg.refresh if scfg else None,
            "must_staple": muststaple.requires_staple(info.cert),
            "must_staple_mode": scfg.must_staple if scfg else None,
            "state": NONE, "cert_status": None, "this_update": None, "next_update": None,
            "valid_until": None, "age": None, "fetched_at": None, "next_refresh": None,
            "last_attempt": None, "last_error": None, "failures": 0, "requests": 0,
        }
        rec = None
        if store is not None:
            try:
                rec = store.load(info.key)
            except ValueError as e:
                item["state"] = UNREADABLE
                item["last_error"] = str(e)
        if rec is not None:
            for name in ("fetched_at", "next_refresh", "last_attempt", "last_error", "failures",
                         "requests"):
                item[name] = getattr(rec, name)
            if rec.der:
                v = verdictlib.check_response(rec.der, info.cid, info.issuer, now,
                                              skew=policy.response_time_skew,
                                              max_age=policy.response_max_age)
                item["cert_status"] = v.kind
                item["this_update"], item["next_update"] = v.this_update, v.next_update
                if v.this_update is not None:
                    item["age"] = round(now - v.this_update, 3)
                    times = schedule.Times(fetched_at=rec.fetched_at or now,
                                           this_update=v.this_update, next_update=v.next_update)
                    item["valid_until"] = schedule.serve_until(times, policy)
                    servable = schedule.is_servable(times, policy, now)
                else:
                    servable = False
                if v.valid and servable:
                    item["state"] = STAPLED
                elif v.valid or "expired" in v.reason or "older" in v.reason:
                    item["state"] = EXPIRED
                else:
                    item["state"] = INVALID
                    item["last_error"] = item["last_error"] or v.reason
        certs.append(item)
    return {"generated_at": now, "store": store.directory if store else None, "certificates": certs}


def render_text(rep: dict) -> str:
    lines = []
    if rep["store"] is None:
        lines.append("no staple store (set SSLStaplingStoreDir or DefaultRuntimeDir)")
    else:
        lines.append(f"staple store {rep['store']}")
    if not rep["certificates"]:
        lines.append("no certificate is stapled (SSLUseStapling on with an OCSP responder)")
    for c in rep["certificates"]:
        status = f" ({c['cert_status']})" if c["cert_status"] else ""
        ms = "yes" + (f" ({c['must_staple_mode']})" if c["must_staple_mode"] else "") \
            if c["must_staple"] else "no"
        lines.append("")
        lines.append(c["label"] or c["subject"])
        lines.append(f"  subject       {c['subject']}")
        lines.append(f"  serial        {c['serial']}")
        lines.append(f"  state         {c['state'] + status:<26}must-staple: {ms}")
        lines.append(f"  vhosts        {', '.join(c['vhosts']) or '-'}   refresh: {c['refresh'] or '-'}")
        lines.append(f"  responder     {c['responder'] or '-'}")
        lines.append(f"  thisUpdate    {_fmt(c['this_update']):<26}nextUpdate {_fmt(c['next_update'])}")
        age = "-" if c["age"] is None else f"{c['age']:.0f} s"
        lines.append(f"  age           {age:<26}valid until {_fmt(c['valid_until'])}")
        lines.append(f"  next refresh  {_fmt(c['next_refresh'])}")
        err = c["last_error"] or "-"
        if c["failures"]:
            err += f" ({c['failures']} failures in a row)"
        lines.append(f"  last error    {err}")
        lines.append(f"  requests      {c['requests']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="httpd-py stapling-status",
                                 description="Show each stapled certificate's OCSP staple state.")
    ap.add_argument("-f", dest="config_file", required=True, help="the server configuration file")
    ap.add_argument("-d", dest="server_root", default=None, help="ServerRoot")
    ap.add_argument("-D", dest="defines", action="append", default=[], help="define a name")
    ap.add_argument("--json", action="store_true", help="print JSON")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    try:
        from httpd_py import config
        cfg = config.load(args.config_file, server_root=args.server_root,
                          defines=tuple(args.defines))
        rep = report(cfg)
    except HttpdError as e:
        print(f"httpd-py stapling-status: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"httpd-py stapling-status: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render_text(rep))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
