"""``httpd-py stapling-status -f CONF [--json]``: each stapled certificate's state.

Reads the configuration (to know the certificates, their issuers and responders), the PidFile
(is the server running?) and the staple store the background stapler keeps
(``SSLStaplingStoreDir``, default ``<DefaultRuntimeDir>/ssl-staples``).  It never contacts a
responder and never writes.  Each stored response is checked again (CertID, signature, times)
before it is reported as valid.

Text output: the server line, the store, then one block per certificate::

    server        running (pid 4242, PidFile /run/httpd-py/httpd.pid)
    staple store  /run/httpd-py/ssl-staples

    a.test (RSA, serial 5F3A...)
      subject       CN=a.test,O=httpd-py test PKI
      serial        5F3A...
      state         stapled (good)            must-staple: no
      vhosts        a.test, www.a.test   refresh: background
      responder     http://127.0.0.1:8888/
      thisUpdate    2026-11-26 15:00:00 UTC   nextUpdate 2026-12-03 15:00:00 UTC
      age           12 s since fetch          valid until 2026-12-03 14:55:00 UTC
      next refresh  2026-11-30 03:00:00 UTC
      last error    -
      requests      3

A configuration without stapling says so in one line (no vhost with SSLEngine and
SSLUseStapling on; or stapling on but no certificate that can be stapled).

``--json`` prints one object (times are epoch seconds, ``null`` when unknown)::

    generated_at    when the report was made
    store           the staple store directory (null: none configured)
    server          {"running": bool, "pid": int|null, "pid_file": path, "detail": text}
                    running = the PidFile names a live httpd-py process
    stapling        "on" (some SSL vhost has SSLUseStapling on) or "off"
    note            why no certificate is listed (null when some are)
    certificates    one object per stapled certificate:
      label           "a.test (RSA, serial 5F3A...)"
      key             SHA-1 of the certificate DER (hex): the cache key, the store file name
      subject         the certificate's subject (RFC 4514)
      serial          serial number (hex)
      vhosts          ServerNames serving it ("(main server)" for the main server)
      responder       the responder URL asked (SSLStaplingForceURL or the first AIA URL)
      refresh         SSLStaplingRefresh of the first vhost ("background", "on-demand")
      must_staple     the certificate carries RFC 7633 Must-Staple
      must_staple_mode  SSLStaplingMustStaple of the first vhost ("warn", "strict")
      state           "stapled"   a valid response is stored and the running server staples it
                      "stored"    a valid response is stored; the server is not running
                      "expired"   the stored response is no longer servable
                      "invalid"   the stored response fails validation (last_error says why)
                      "none"      nothing stored yet
                      "unreadable" the record file cannot be parsed
      cert_status     what the stored response says: "good", "revoked", "unknown" or null
      this_update, next_update   the stored response's times
      valid_until     until when it may be served (nextUpdate - skew, or MaxAge)
      fetched_at      when this server fetched it
      age             seconds since fetched_at (not since thisUpdate: responders backdate it)
      response_age    seconds since thisUpdate
      next_refresh    when the stapler will fetch again
      last_attempt    the last fetch attempt, successful or not
      last_error      the last failure (null after a success)
      failures        failures in a row
      requests        responder requests this server made for it, ever

Exit codes: 0 printed, 1 configuration or start-up error (message on stderr), 2 usage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

from httpd_py.errors import HttpdError
from httpd_py.stapling import muststaple, schedule
from httpd_py.stapling.store import StapleStore, default_dir

# states
STAPLED = "stapled"          # a valid response is stored, servable now, and the server runs
STORED = "stored"            # a valid response is stored and servable, the server is not running
EXPIRED = "expired"          # a response is stored but no longer servable
INVALID = "invalid"          # the stored response fails validation
NONE = "none"                # nothing stored yet
UNREADABLE = "unreadable"    # the record file cannot be parsed


def _fmt(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"


@dataclass(frozen=True)
class ServerState:
    """Is the server of a configuration running?  From its PidFile and /proc."""
    running: bool
    pid: int | None
    pid_file: str | None
    detail: str


def server_state(cfg) -> ServerState:
    """The PidFile names a live process that is an httpd-py (a stale file names a dead or
    reused pid)."""
    path = getattr(cfg, "pid_file", None)
    if not path:
        return ServerState(False, None, None, "no PidFile configured")
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return ServerState(False, None, path, f"not running (no PidFile {path})")
    except OSError as e:
        return ServerState(False, None, path, f"unknown (cannot read PidFile {path}: "
                           f"{e.strerror})")
    if not text.isdigit() or int(text) <= 0:
        return ServerState(False, None, path, f"not running (PidFile {path} holds no pid)")
    pid = int(text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return ServerState(False, pid, path, f"not running (stale PidFile {path}: pid {pid} "
                           "is gone)")
    except PermissionError:
        pass                                    # alive, another user's
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        if cmdline and b"httpd-py" not in cmdline and b"httpd_py" not in cmdline:
            return ServerState(False, pid, path, f"not running (stale PidFile {path}: pid "
                               f"{pid} is another program)")
    except OSError:
        pass                                    # no /proc: the live pid is all we know
    return ServerState(True, pid, path, f"running (pid {pid}, PidFile {path})")


def report(cfg, now: float | None = None, *, table=None, server: ServerState | None = None) -> dict:
    """The status of every stapled certificate of ``cfg`` (a ServerConfig) as a dict.

    ``server``: the server's state (default: read from the PidFile).
    """
    from httpd_py.stapling import certinfo
    from httpd_py.stapling import verdict as verdictlib

    now = time.time() if now is None else now
    server = server if server is not None else server_state(cfg)
    stapling_vhosts = certinfo.stapling_vhosts(cfg)
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
            "valid_until": None, "age": None, "response_age": None, "fetched_at": None,
            "next_refresh": None,
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
                if rec.fetched_at is not None:
                    item["age"] = round(now - rec.fetched_at, 3)
                if v.this_update is not None:
                    item["response_age"] = round(now - v.this_update, 3)
                    times = schedule.Times(fetched_at=rec.fetched_at or now,
                                           this_update=v.this_update, next_update=v.next_update)
                    item["valid_until"] = schedule.serve_until(times, policy)
                    servable = schedule.is_servable(times, policy, now)
                else:
                    servable = False
                if v.valid and servable:
                    item["state"] = STAPLED if server.running else STORED
                elif v.valid or (v.problem is not None and v.problem.outdated):
                    item["state"] = EXPIRED
                else:
                    item["state"] = INVALID
                    item["last_error"] = item["last_error"] or v.reason
        certs.append(item)
    note = None
    if not stapling_vhosts:
        note = "stapling is off: no SSL virtual host has SSLUseStapling on"
    elif not certs:
        note = (f"SSLUseStapling is on in {len(stapling_vhosts)} virtual host(s), but none of "
                "their certificates can be stapled (unreadable, or issuer not found: see "
                "httpd-py -t)")
    return {"generated_at": now, "store": store.directory if store else None,
            "server": asdict(server), "stapling": "on" if stapling_vhosts else "off",
            "note": note, "certificates": certs}


def render_text(rep: dict) -> str:
    lines = []
    server = rep.get("server")
    if server is not None:
        lines.append(f"server        {server['detail']}")
    if rep.get("note"):
        lines.append(rep["note"])
        if rep.get("stapling") == "off":
            return "\n".join(lines) + "\n"
    if rep["store"] is None:
        lines.append("staple store  none (set SSLStaplingStoreDir or DefaultRuntimeDir)")
    else:
        lines.append(f"staple store  {rep['store']}")
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
        age = "-" if c["age"] is None else f"{c['age']:.0f} s since fetch"
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
