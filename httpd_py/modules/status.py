"""mod_status, the stapling status and the Prometheus metrics: three handlers over one read side.

Handlers (``SetHandler NAME`` in any section; access is whatever the section's Require says):

``server-status``    mod_status's page: server version and times, uptime, load, (ExtendedStatus)
                     accesses, traffic, requests/s, busy and idle workers, the scoreboard line
                     and key, the per-worker table; then the TLS session cache and the OCSP
                     stapling sections.  ``?auto`` is the machine-readable text with Apache's
                     field names, ``?refresh=N`` adds a ``Refresh`` header, ``?notable`` drops
                     the tables' markup for lists.
``stapling-status``  the stapling section as JSON (``application/json``), shaped like mod_md's
                     md-status: ``{"server", "now", "certificates": [...]}`` (docs/status.md).
``metrics``          Prometheus text exposition 0.0.4 (docs/status.md lists the names).

Directives: ``ExtendedStatus`` (On by default when status_module is loaded, as Apache 2.4) and
``SeeRequestTail``, both server-wide (core.c's in Apache).

Where the numbers come from (nothing here imports mpm: the server wires the read side in):

    httpd_py.metrics          per-process counter slots in shared memory, summed at read time:
                              accesses, bytes, request time, status classes, TLS handshakes,
                              staples sent, responder requests and latency
    metrics.board             the scoreboard a worker serves on (``enter(slot)``): states, pids,
                              request lines, per-slot counts
    REGISTRY.stapling(cfg)    the generation's StaplingService (server.py ``configure``): the
                              certificate table, the caches and the staple store

Request accounting: ``configure(cfg)`` (master, before fork) adds an output hook only when the
configuration needs the counts (status_module loaded, ExtendedStatus On, or a ``metrics``
handler); otherwise no request pays for this module.  The hook counts a response when it is
handed to the connection: its body bytes (0 for HEAD, 204, 304; a stream as it is produced) and
the time since the request began.

Log ids HP06001-HP06099 (module "status").
"""
from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

# -- directives (defined before any httpd_py import: importing the config package builds the
# directive table, which imports this module and asks for rows() while it is still loading) --
def _flag(key: str):
    from httpd_py.config import values

    def h(w, args):
        w.glob(key, values.flag(args[0], w.name))
    return h


def rows():
    from httpd_py.config.directives.base import FLAG, Directive as D
    return [
        D("ExtendedStatus", "core.c", "SV", FLAG, "On with status_module loaded, else Off",
          "Keep per-request counts and each worker's client, vhost and request for "
          "server-status (server-wide)", _flag("glob.status.extended")),
        D("SeeRequestTail", "core.c", "SV", FLAG, "Off", "server-status shows the last 63 "
          "characters of a long request line instead of the first ones (server-wide)",
          _flag("glob.status.see_request_tail")),
    ]


from httpd_py import logids, metrics
from httpd_py.config.dirconf import register
from httpd_py.http import hooks
from httpd_py.log import error_log

try:
    from httpd_py.version import server_token
except ImportError:                 # (version.py lands with the ServerTokens work)
    def server_token(tokens: str = "full") -> str:
        return "httpd-py"

MODULE = "status"

EXTENDED = register("glob.status.extended")             # True / False; absent: module default
SEE_TAIL = register("glob.status.see_request_tail")
STATUS_HANDLER, STAPLING_HANDLER, METRICS_HANDLER = "server-status", "stapling-status", "metrics"

HTML_TYPE = "text/html; charset=ISO-8859-1"
TEXT_TYPE = "text/plain; charset=ISO-8859-1"
JSON_TYPE = "application/json"
PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# our scoreboard's states -> Apache's letters and key text
LETTERS = {"dead": ".", "starting": "S", "idle": "_", "reading": "R", "writing": "W",
           "keepalive": "K", "closing": "C"}
KEY = (("_", "Waiting for Connection"), ("S", "Starting up"), ("R", "Reading Request"),
       ("W", "Sending Reply"), ("K", "Keepalive (read)"), ("D", "DNS Lookup"),
       ("C", "Closing connection"), ("L", "Logging"), ("G", "Gracefully finishing"),
       ("I", "Idle cleanup of worker"), (".", "Open slot with no current process"))


# -- configuration time -----------------------------------------------------------------------------
class Registry:
    """What the server hands the handlers (server.py ``configure``): per configuration
    generation, its stapling service.  Filled in the master before fork, read in workers."""

    def __init__(self):
        self._stapling: dict[int, Any] = {}

    def set_stapling(self, cfg, service) -> None:
        if len(self._stapling) > 8:           # generations long gone
            self._stapling.clear()
        self._stapling[id(cfg)] = service

    def forget(self, cfg) -> None:
        self._stapling.pop(id(cfg), None)

    def stapling(self, cfg):
        return self._stapling.get(id(cfg))


REGISTRY = Registry()


def status_loaded(cfg) -> bool:
    return any(m in ("status_module", "mod_status.c") for m in getattr(cfg, "loaded_modules", ()))


def extended_status(cfg) -> bool:
    """ExtendedStatus as configured, else Apache 2.4's default: On when mod_status is loaded."""
    v = cfg.mod(EXTENDED) if hasattr(cfg, "mod") else None
    return status_loaded(cfg) if v is None else bool(v)


def _uses_handler(cfg, names: tuple[str, ...]) -> bool:
    """Whether any section of ``cfg`` sets one of the handlers (SetHandler)."""
    from httpd_py.modules import core_http
    key = core_http.HANDLER

    def conf_uses(conf) -> bool:
        return conf is not None and conf.mod(key) in names

    for v in cfg.all_vhosts():
        if conf_uses(getattr(v, "dir", None)):
            return True
        for sec in getattr(v, "sections", ()) or ():
            if conf_uses(getattr(sec, "conf", None)):
                return True
    for sec in getattr(cfg, "sections", ()) or ():
        if conf_uses(getattr(sec, "conf", None)):
            return True
    return False


def configure(cfg, stapling=None, worker_slots: int | None = None) -> None:
    """Master, before the generation's workers fork: the shared counters, the registry, and the
    accounting hook when this configuration needs it."""
    slots = worker_slots if worker_slots is not None else max(1, cfg.prefork.server_limit)
    shared = metrics.create(slots)
    shared.new_generation()
    REGISTRY.set_stapling(cfg, stapling)
    metrics.extended = extended_status(cfg)
    metrics.see_tail = bool(cfg.mod(SEE_TAIL)) if hasattr(cfg, "mod") else False
    need = metrics.extended or status_loaded(cfg)
    if not need:
        try:
            need = _uses_handler(cfg, (METRICS_HANDLER, STATUS_HANDLER))
        except Exception:                       # a model without sections: count, to be safe
            need = True
    registered = any(h is _account for _, h in hooks.OUTPUT)
    if need and not registered:
        hooks.add_output(_account, hooks.ORDER_LAST)
    elif not need and registered:
        hooks.OUTPUT[:] = [(o, h) for o, h in hooks.OUTPUT if h is not _account]


def _account(req: hooks.Request, resp: hooks.Response) -> hooks.Response:
    """Output hook: count the response (see the module docstring)."""
    body = resp.body
    status = resp.status
    if req.method == "HEAD" or status in (204, 304) or status < 200:
        n = 0
    elif isinstance(body, (bytes, bytearray, memoryview)):
        n = len(body)
    elif isinstance(body, hooks.FileBody):
        n = body.length
    else:
        n = 0
        if body is not None:
            resp.body = _counted(body)
    took = time.time() - req.start if req.start else 0.0
    if metrics.extended:
        vh = req.vhost
        name = (getattr(vh, "server_name", "") or req.hostname or "") if vh is not None else ""
        metrics.request_done(status, n, took, req.client_ip, f"http/{req.version}",
                             f"{name}:{req.local_port}", req.request_line)
    else:
        metrics.request_done(status, n, took)
    return resp


# it counts a response and never changes one with a bytes body (the lane's)
hooks.OBSERVERS.add(_account)


def _counted(body):
    for chunk in body:
        metrics.add_bytes(len(chunk))
        yield chunk


# -- formatting helpers -----------------------------------------------------------------------------
def _g(x: float, spec: str = "g") -> str:
    """C's %g as APR prints it: no leading zero before the point (".5")."""
    s = format(x, spec)
    if s.startswith("0."):
        return s[1:]
    if s.startswith("-0."):
        return "-" + s[2:]
    return s


def _ht_time(t: float) -> str:
    return time.strftime("%A, %d-%b-%Y %H:%M:%S %Z", time.localtime(t))


def _uptime_text(secs: int) -> str:
    days, rest = divmod(max(0, int(secs)), 86400)
    hrs, rest = divmod(rest, 3600)
    mins, s = divmod(rest, 60)
    out = ""
    for n, unit in ((days, "day"), (hrs, "hour"), (mins, "minute"), (s, "second")):
        if n:
            out += f" {n} {unit}{'' if n == 1 else 's'}"
    return out


def _bytes_text(n: float) -> str:
    """Apache's format_byte_out: B below 5 kB, then kB, MB, GB with one decimal."""
    if n < 5 * 1024:
        return f"{int(n)} B"
    if n < 5 * 1024 * 1024:
        return f"{n / 1024:.1f} kB"
    if n < 5 * 1024 * 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    return f"{n / (1024 * 1024 * 1024):.1f} GB"


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _short(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _utc(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_times(pid: int) -> tuple[float, float, float, float]:
    """(user, system, children user, children system) seconds of a process (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        fields = data[data.rindex(b")") + 2:].split()
        return tuple(int(fields[i]) / _TICK for i in (11, 12, 13, 14))   # type: ignore[return-value]
    except (OSError, ValueError, IndexError):
        return (0.0, 0.0, 0.0, 0.0)


# -- the snapshot every page is made of ---------------------------------------------------------------
@dataclass
class Worker:
    index: int
    pid: int
    generation: int
    letter: str
    state: str
    requests: int            # this child (scoreboard)
    last_used: float
    request: str
    ext: metrics.WorkerExt | None = None


@dataclass
class Snapshot:
    now: float
    started: float
    restarted: float
    generation: int
    board_generation: int
    workers: list[Worker]
    scoreboard: str
    busy: int
    idle: int
    graceful: int
    totals: metrics.Totals
    load: tuple[float, float, float]
    cpu: tuple[float, float, float, float]
    extended: bool
    stapling: list[dict] = field(default_factory=list)
    waiting: tuple = (0, 0, 0)      # connections the workers' event loops hold: handshake, head,
    parked: int = 0                 # keep-alive; and requests they hold parked (http/park.py)


def _board_slots():
    board = metrics.board
    if board is None:
        return None, []
    try:
        return board.generation, board.snapshot()
    except Exception:
        return None, []


def snapshot(cfg, now: float | None = None, *, with_stapling: bool = True) -> Snapshot:
    now = time.time() if now is None else now
    shared = metrics.SHARED
    gen, slots = _board_slots()
    workers, letters = [], []
    busy = idle = graceful = 0
    hs = head = ka = parked = 0
    for s in slots:
        letter = LETTERS.get(s.state, ".")
        live = s.pid and s.state != "dead"
        if live:
            hs, head, ka = hs + s.waiting[0], head + s.waiting[1], ka + s.waiting[2]
            parked += s.parked
        if live and gen is not None and s.generation != gen and s.state not in ("idle", "starting"):
            letter = "G"
        letters.append(letter if live else ".")
        if live:
            if letter == "_":
                idle += 1
            elif letter == "G":
                graceful += 1
            elif letter != "S":
                busy += 1
        ext = shared.worker(s.index) if shared is not None and s.index < shared.worker_slots else None
        if live or (ext is not None and ext.slot_accesses):
            workers.append(Worker(s.index, s.pid if live else 0, s.generation, letter if live else ".",
                                  s.state, s.requests, s.last_used, s.request, ext))
    totals = metrics.totals()
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    master = os.getppid() if metrics.board is not None else os.getpid()
    snap = Snapshot(now=now, started=shared.started if shared else now,
                    restarted=shared.generation_started if shared else now,
                    generation=shared.generation if shared else 1,
                    board_generation=gen or 0, workers=workers, scoreboard="".join(letters),
                    busy=busy, idle=idle, graceful=graceful, totals=totals, load=load,
                    cpu=_proc_times(master), extended=extended_status(cfg),
                    waiting=(hs, head, ka), parked=parked)
    if with_stapling:
        snap.stapling = stapling_report(cfg, now)
    return snap


# -- stapling ---------------------------------------------------------------------------------------
def _key_type(cert) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    k = cert.public_key()
    return "RSA" if isinstance(k, rsa.RSAPublicKey) else "ECDSA" if isinstance(
        k, ec.EllipticCurvePublicKey) else type(k).__name__


def stapling_report(cfg, now: float) -> list[dict]:
    """One dict per stapled certificate (the JSON's ``certificates``; docs/status.md)."""
    service = REGISTRY.stapling(cfg)
    if service is None:
        return []
    try:
        return _stapling_report(cfg, service, now)
    except Exception as e:                   # a status page must not fail on a bad record
        error_log.warn(MODULE, logids.STATUS_STAPLING_FAILED,
                       f"stapling status: {type(e).__name__}: {e}")
        return []


def _stapling_report(cfg, service, now: float) -> list[dict]:
    from httpd_py.stapling import muststaple
    from httpd_py.stapling import status as stapling_status
    from httpd_py.stapling import verdict as verdictlib

    table = service.table
    rep = stapling_status.report(cfg, now, table=table)
    by_key = {c["key"]: c for c in rep.get("certificates", ())}
    out = []
    for info in table.all():
        c = by_key.get(info.key.hex(), {})
        vhosts = table.vhosts_of(info.key)
        scfg = vhosts[0].ssl.stapling if vhosts else None
        urls = info.urls_for(scfg) if scfg is not None else tuple(info.aia_urls)
        status, this_u, next_u = c.get("cert_status"), c.get("this_update"), c.get("next_update")
        state = c.get("state") or "none"
        source = "store" if c.get("fetched_at") else None
        if status is None:
            # on-demand refresh keeps no store: read what the workers staple from the cache
            try:
                e = service.lookup(info, now, shared=False)
            except TypeError:
                e = service.lookup(info, now)
            if e is not None and getattr(e, "der", b""):
                v = verdictlib.check_response(e.der, info.cid, info.issuer, now)
                status, this_u, next_u = v.kind, v.this_update, v.next_update
                state = "stapled" if v.valid else "invalid"
                source = "cache"
        fetched = c.get("fetched_at")
        last_error = c.get("last_error")
        out.append({
            "label": info.label,
            "vhosts": [v.server_name or "(main server)" for v in vhosts],
            "subject": info.cert.subject.rfc4514_string(),
            "serial": format(info.cert.serial_number, "X"),
            "key_type": _key_type(info.cert),
            "responder": urls[0] if urls else None,
            "status": status or "none",
            "state": state,
            "this_update": this_u,
            "next_update": next_u,
            "fetched_at": fetched,
            "age": round(now - fetched, 3) if fetched else None,
            "next_refresh": c.get("next_refresh"),
            "last_error": last_error,
            "last_error_at": c.get("last_attempt") if last_error else None,
            "requests": c.get("requests"),
            "failures": c.get("failures"),
            "must_staple": muststaple.requires_staple(info.cert),
            "must_staple_mode": scfg.must_staple if scfg is not None else None,
            "refresh": scfg.refresh if scfg is not None else None,
            "source": source,
        })
    return out


def stapling_json(cfg, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    certs = []
    for c in stapling_report(cfg, now):
        certs.append({
            "vhosts": c["vhosts"], "label": c["label"], "subject": c["subject"],
            "serial": c["serial"], "key_type": c["key_type"], "responder": c["responder"],
            "status": c["status"], "state": c["state"],
            "valid": {"from": _iso(c["this_update"]), "until": _iso(c["next_update"])},
            "this_update": c["this_update"], "next_update": c["next_update"],
            "fetched_at": c["fetched_at"], "age": c["age"], "renew_at": c["next_refresh"],
            "last_error": ({"message": c["last_error"], "at": c["last_error_at"]}
                           if c["last_error"] else None),
            "requests": c["requests"], "failures": c["failures"],
            "must_staple": c["must_staple"], "must_staple_mode": c["must_staple_mode"],
            "refresh": c["refresh"], "source": c["source"],
        })
    return {"server": server_token(), "now": now, "now_iso": _iso(now), "certificates": certs}


# -- ?auto --------------------------------------------------------------------------------------------
def render_auto(snap: Snapshot, host: str, cfg) -> str:
    t = snap.totals
    up = max(1, int(snap.now - snap.restarted))
    lines = [host,
             f"ServerVersion: {server_token()}",
             "ServerMPM: prefork",
             f"Server Built: {_built()}",
             f"CurrentTime: {_ht_time(snap.now)}",
             f"RestartTime: {_ht_time(snap.restarted)}",
             f"ParentServerConfigGeneration: {snap.generation}",
             f"ParentServerMPMGeneration: {max(0, snap.generation - 1)}",
             f"ServerUptimeSeconds: {int(snap.now - snap.restarted)}",
             f"ServerUptime:{_uptime_text(int(snap.now - snap.restarted))}",
             f"Load1: {snap.load[0]:.2f}", f"Load5: {snap.load[1]:.2f}",
             f"Load15: {snap.load[2]:.2f}"]
    if snap.extended:
        acc, nbytes, dur_ms = t[metrics.ACCESSES], t[metrics.BYTES], t[metrics.DURATION_US] // 1000
        cu, cs, ccu, ccs = snap.cpu
        lines += [f"Total Accesses: {acc}", f"Total kBytes: {nbytes // 1024}",
                  f"Total Duration: {dur_ms}",
                  f"CPUUser: {_g(cu)}", f"CPUSystem: {_g(cs)}",
                  f"CPUChildrenUser: {_g(ccu)}", f"CPUChildrenSystem: {_g(ccs)}"]
        cpu = cu + cs + ccu + ccs
        uptime = int(snap.now - snap.restarted)
        if cpu and uptime:                       # (as mod_status: only once there is an uptime)
            lines.append(f"CPULoad: {_g(cpu / up * 100)}")
        lines.append(f"Uptime: {uptime}")
        if uptime:
            lines += [f"ReqPerSec: {_g(acc / up)}", f"BytesPerSec: {_g(nbytes / up)}"]
        if acc:
            lines += [f"BytesPerReq: {_g(nbytes / acc)}", f"DurationPerReq: {_g(dur_ms / acc)}"]
    hs, head, ka = snap.waiting
    lines += [f"BusyWorkers: {snap.busy}", f"GracefulWorkers: {snap.graceful}",
              f"IdleWorkers: {snap.idle}",
              # the workers' event loops (apache2's event MPM prints ConnsAsyncKeepAlive too)
              f"ConnsAsyncHandshake: {hs}", f"ConnsAsyncHead: {head}",
              f"ConnsAsyncKeepAlive: {ka}", f"RequestsParked: {snap.parked}",
              f"Scoreboard: {snap.scoreboard}"]
    lines += _tls_cache_auto(cfg, t)
    lines += _stapling_auto(snap)
    return "\n".join(lines) + "\n"


_BUILT_FROM = os.path.abspath(metrics.__file__)


def _built() -> str:
    """Apache's "Server Built": here the time httpd_py/metrics.py was written (installed)."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(os.stat(_BUILT_FROM).st_mtime))
    except OSError:
        return "-"


def _session_cache(cfg):
    for v in cfg.all_vhosts():
        sc = getattr(v.ssl, "session_cache", None) if v.ssl.engine else None
        if sc is not None and getattr(sc, "provider", "none") != "none":
            return sc
    return None


def _tls_cache_auto(cfg, t: metrics.Totals) -> list[str]:
    sc = _session_cache(cfg)
    if sc is None:
        return []
    full = sum(t.handshakes().values())
    return ["TLSSessionCacheStatus", f"CacheType: {sc.provider.upper()}",
            "CacheScope: per-process (OpenSSL)",
            f"CacheRetrieveHitCount: {t[metrics.HANDSHAKES_RESUMED]}",
            f"CacheRetrieveMissCount: {max(0, full - t[metrics.HANDSHAKES_RESUMED])}"]


def _stapling_auto(snap: Snapshot) -> list[str]:
    if not snap.stapling:
        return []
    lines = ["OCSPStaplingStatus", f"StaplingCertificates: {len(snap.stapling)}"]
    for i, c in enumerate(snap.stapling):
        p = f"Stapling{i}"
        lines += [f"{p}Certificate: {c['label']}", f"{p}Vhosts: {' '.join(c['vhosts'])}",
                  f"{p}Serial: {c['serial']}", f"{p}Responder: {c['responder'] or '-'}",
                  f"{p}Status: {c['status']}", f"{p}State: {c['state']}",
                  f"{p}ThisUpdate: {_iso(c['this_update']) or '-'}",
                  f"{p}NextUpdate: {_iso(c['next_update']) or '-'}",
                  f"{p}FetchedAt: {_iso(c['fetched_at']) or '-'}",
                  f"{p}AgeSinceFetch: {'-' if c['age'] is None else int(c['age'])}",
                  f"{p}NextRefresh: {_iso(c['next_refresh']) or '-'}",
                  f"{p}LastError: {c['last_error'] or '-'}",
                  f"{p}LastErrorAt: {_iso(c['last_error_at']) or '-'}",
                  f"{p}ResponderRequests: {'-' if c['requests'] is None else c['requests']}",
                  f"{p}ResponderFailures: {'-' if c['failures'] is None else c['failures']}",
                  f"{p}MustStaple: {'yes' if c['must_staple'] else 'no'}"]
    return lines


# -- the HTML page --------------------------------------------------------------------------------------
_STYLE = ("table.stapling{border-collapse:collapse;font-size:smaller}"
          "table.stapling td,table.stapling th{border:1px solid #999;padding:2px 4px}"
          "td.good{background:#cfc}td.revoked{background:#fcc}td.unknown,td.none{background:#ffc}")


def render_html(snap: Snapshot, host: str, via: str, cfg, *, notable: bool) -> str:
    e = html.escape
    t = snap.totals
    up = max(1, int(snap.now - snap.restarted))
    out = ['<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" '
           '"http://www.w3.org/TR/html4/strict.dtd">',
           "<html><head>", "<title>httpd-py Status</title>",
           '<link rel="icon" href="data:,">', f"<style>{_STYLE}</style>",
           "</head><body>",
           f"<h1>httpd-py Server Status for {e(host)} (via {e(via)})</h1>", "",
           f"<dl><dt>Server Version: {e(server_token())}</dt>",
           "<dt>Server MPM: prefork</dt>",
           f"<dt>Server Built: {_built()}\n</dt></dl><hr /><dl>",
           f"<dt>Current Time: {_ht_time(snap.now)}</dt>",
           f"<dt>Restart Time: {_ht_time(snap.restarted)}</dt>",
           f"<dt>Parent Server Config. Generation: {snap.generation}</dt>",
           f"<dt>Parent Server MPM Generation: {max(0, snap.generation - 1)}</dt>",
           f"<dt>Server uptime: {_uptime_text(int(snap.now - snap.restarted))}</dt>",
           f"<dt>Server load: {snap.load[0]:.2f} {snap.load[1]:.2f} {snap.load[2]:.2f}</dt>"]
    if snap.extended:
        acc, nbytes, dur_ms = t[metrics.ACCESSES], t[metrics.BYTES], t[metrics.DURATION_US] // 1000
        cu, cs, ccu, ccs = snap.cpu
        out.append(f"<dt>Total accesses: {acc} - Total Traffic: {_bytes_text(nbytes)} - "
                   f"Total Duration: {dur_ms}</dt>")
        cpu = cu + cs + ccu + ccs
        load = f" - {_g(cpu / up * 100, '.3g')}% CPU load" if cpu else ""
        out.append(f"<dt>CPU Usage: u{_g(cu)} s{_g(cs)} cu{_g(ccu)} cs{_g(ccs)}{load}</dt>")
        per = (f" - {_bytes_text(nbytes / acc)}/request - {_g(dur_ms / acc)} ms/request"
               if acc else "")
        out.append(f"<dt>{_g(acc / up, '.3g')} requests/sec - {_bytes_text(nbytes / up)}/second"
                   f"{per}</dt>")
    out.append(f"<dt>{snap.busy} requests currently being processed, {snap.graceful} workers "
               f"gracefully restarting, {snap.idle} idle workers</dt>")
    hs, head, ka = snap.waiting
    out.append(f"<dt>Waiting in the workers' event loops: {hs} TLS handshakes, {head} request "
               f"heads, {ka} keep-alive connections; {snap.parked} requests parked (waiting "
               f"for a backend or a slow client)</dt>")
    board = snap.scoreboard
    out.append("</dl><pre>" + "\n".join(board[i:i + 64] for i in range(0, len(board), 64))
               + "\n</pre>")
    out.append("<p>Scoreboard Key:<br />")
    out.append(", \n".join(f'"<b><code>{k}</code></b>" {e(v)}' for k, v in KEY) + "<br />\n</p>")
    if snap.extended:
        out += _workers_html(snap, notable)
    out += _tls_cache_html(cfg, t)
    out += _stapling_html(snap, notable)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _workers_html(snap: Snapshot, notable: bool) -> list[str]:
    e = html.escape
    out = []
    heads = ("Srv", "PID", "Acc", "M", "CPU", "SS", "Req", "Dur", "Conn", "Child", "Slot",
             "Client", "Protocol", "VHost", "Request")
    if notable:
        out.append("<p>")
    else:
        out.append('<table border="0"><tr>' + "".join(f"<th>{h}</th>" for h in heads) + "</tr>")
    for w in snap.workers:
        x = w.ext
        cpu = sum(_proc_times(w.pid)[:2]) if w.pid else 0.0
        ss = int(snap.now - w.last_used) if w.last_used else 0
        mode = f"<b>{w.letter}</b>" if w.letter not in ("_", ".") else w.letter
        request = (x.request_tail if x is not None and x.request_tail else w.request) or ""
        cells = (f"{w.index}-{max(0, snap.generation - 1) if w.pid else '-'}",
                 str(w.pid) if w.pid else "-",
                 (f"{x.conn_accesses}/{w.requests}/{x.slot_accesses}" if x else f"-/{w.requests}/-"),
                 mode, f"{cpu:.2f}", str(ss), str(x.last_ms if x else 0),
                 str(x.slot_duration_ms if x else 0),
                 f"{(x.conn_bytes if x else 0) / 1024:.1f}",
                 f"{(x.child_bytes if x else 0) / 1048576:.2f}",
                 f"{(x.slot_bytes if x else 0) / 1048576:.2f}",
                 e(x.client if x else ""), e(x.protocol if x else ""), e(x.vhost if x else ""),
                 e(request))
        if notable:
            out.append("<b>Server " + " ".join(cells[:1]) + "</b> (" + cells[1] + "): "
                       + " ".join(f"[{h} {c}]" for h, c in zip(heads[2:], cells[2:])) + "<br />")
        else:
            out.append("<tr>" + "".join(f"<td>{'<b>' + c + '</b>' if i == 0 else c}</td>"
                                        for i, c in enumerate(cells)) + "</tr>")
    if notable:
        out.append("</p>")
        return out
    out.append("</table>")
    out.append(" <hr /> <table>")
    for h, d in (("Srv", "Child Server number - generation"), ("PID", "OS process ID"),
                 ("Acc", "Number of accesses this connection / this child / this slot"),
                 ("M", "Mode of operation"), ("CPU", "CPU usage, number of seconds"),
                 ("SS", "Seconds since beginning of most recent request"),
                 ("Req", "Milliseconds required to process most recent request"),
                 ("Dur", "Sum of milliseconds required to process all requests"),
                 ("Conn", "Kilobytes transferred this connection"),
                 ("Child", "Megabytes transferred this child"),
                 ("Slot", "Total megabytes transferred this slot")):
        out.append(f" <tr><th>{h}</th><td>{d}</td></tr>")
    out.append(" </table>")
    return out


def _tls_cache_html(cfg, t: metrics.Totals) -> list[str]:
    sc = _session_cache(cfg)
    if sc is None:
        return []
    full = sum(t.handshakes().values())
    hits = t[metrics.HANDSHAKES_RESUMED]
    return ["<hr>", "<h2>SSL/TLS Session Cache Status:</h2>",
            f"<p>cache type: <b>{html.escape(sc.provider.upper())}</b> (OpenSSL's cache in each "
            f"worker: sessions resume within the worker that made them; tickets resume across "
            f"workers)<br>total handshakes resumed: <b>{hits}</b> of <b>{full}</b></p>"]


def _stapling_html(snap: Snapshot, notable: bool) -> list[str]:
    if not snap.stapling:
        return []
    e = html.escape
    heads = ("Certificate", "Virtual hosts", "OCSP responder", "Status", "thisUpdate",
             "nextUpdate", "Fetched at", "Age since fetch", "Next refresh", "Last error",
             "Responder requests", "Failures", "Must-Staple")
    out = ["<hr>", "<h2>OCSP Stapling Status:</h2>", "<p>Times in UTC.</p>"]
    out.append("<p>" if notable else '<table class="stapling" id="stapling"><tr>'
               + "".join(f"<th>{h}</th>" for h in heads) + "</tr>")
    for c in snap.stapling:
        err = c["last_error"] or "-"
        if c["last_error"] and c["last_error_at"]:
            err += f" ({_utc(c['last_error_at'])})"
        serial = c["serial"] if len(c["serial"]) <= 16 else c["serial"][:12] + "..."
        cells = (f"{c['key_type']} serial {serial}", ", ".join(c["vhosts"]),
                 c["responder"] or "-", c["status"],
                 _short(c["this_update"]), _short(c["next_update"]), _short(c["fetched_at"]),
                 "-" if c["age"] is None else f"{int(c['age'])} s", _short(c["next_refresh"]),
                 err, "-" if c["requests"] is None else str(c["requests"]),
                 "-" if c["failures"] is None else str(c["failures"]),
                 ("yes" + (f" ({c['must_staple_mode']})" if c["must_staple_mode"] else ""))
                 if c["must_staple"] else "no")
        if notable:
            out.append("<b>" + e(cells[0]) + "</b>: " + " ".join(
                f"[{h} {e(v)}]" for h, v in zip(heads[1:], cells[1:])) + "<br />")
        else:
            tds = []
            for i, v in enumerate(cells):
                cls = f' class="{e(c["status"])} status"' if i == 3 else ""
                tds.append(f"<td{cls}>{e(v)}</td>")
            out.append('<tr class="certificate">' + "".join(tds) + "</tr>")
    out.append("</p>" if notable else "</table>")
    return out


# -- Prometheus -----------------------------------------------------------------------------------------
def _label(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics(snap: Snapshot, cfg) -> str:
    t = snap.totals
    out: list[str] = []

    def metric(name: str, kind: str, help_: str, samples) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        for suffix, labels, value in samples:
            lab = ("{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"
                   if labels else "")
            out.append(f"{name}{suffix}{lab} {value}")

    metric("httpd_py_start_time_seconds", "gauge", "When the server started (Unix time).",
           [("", {}, f"{snap.started:.3f}")])
    metric("httpd_py_generation_start_time_seconds", "gauge",
           "When the current configuration generation started (Unix time).",
           [("", {}, f"{snap.restarted:.3f}")])
    metric("httpd_py_config_generation", "gauge", "Configuration generations loaded.",
           [("", {}, snap.generation)])
    states = {"idle": 0, "starting": 0, "reading": 0, "writing": 0, "keepalive": 0,
              "closing": 0, "graceful": 0}
    for w in snap.workers:
        if not w.pid:
            continue
        if w.letter == "G":
            states["graceful"] += 1
        elif w.state in states:
            states[w.state] += 1
    metric("httpd_py_workers", "gauge", "Worker processes by scoreboard state.",
           [("", {"state": k}, v) for k, v in states.items()])
    metric("httpd_py_scoreboard_slots", "gauge", "Scoreboard slots (ServerLimit).",
           [("", {}, len(snap.scoreboard))])
    metric("httpd_py_connections_waiting", "gauge",
           "Connections the workers' event loops hold waiting, by stage.",
           [("", {"stage": k}, v) for k, v in zip(("handshake", "head", "keepalive"),
                                                   snap.waiting)])
    metric("httpd_py_requests_parked", "gauge", "Requests the workers' event loops hold parked "
           "(waiting for a backend, or for a slow client to send or take bytes).",
           [("", {}, snap.parked)])
    metric("httpd_py_requests_total", "counter", "Requests answered (accesses).",
           [("", {}, t[metrics.ACCESSES])])
    metric("httpd_py_responses_total", "counter", "Responses by status class.",
           [("", {"code": f"{i + 1}xx"}, t[metrics.STATUS_CLASS + i]) for i in range(5)])
    metric("httpd_py_response_body_bytes_total", "counter", "Response body bytes sent.",
           [("", {}, t[metrics.BYTES])])
    metric("httpd_py_request_duration_seconds_total", "counter",
           "Time spent answering requests, summed.", [("", {}, f"{t[metrics.DURATION_US] / 1e6:.6f}")])
    metric("httpd_py_tls_handshakes_total", "counter",
           "Completed TLS handshakes by protocol and certificate key type.",
           [("", {"protocol": p, "key_type": k}, v) for (p, k), v in t.handshakes().items()])
    metric("httpd_py_tls_handshakes_resumed_total", "counter",
           "Completed TLS handshakes that resumed a session.",
           [("", {}, t[metrics.HANDSHAKES_RESUMED])])
    metric("httpd_py_tls_handshake_failures_total", "counter", "TLS handshakes that failed.",
           [("", {}, t[metrics.HANDSHAKES_FAILED])])
    metric("httpd_py_ocsp_status_requests_total", "counter",
           "Handshakes whose client asked for a staple (status_request), by whether one was sent.",
           [("", {"stapled": "yes"}, t[metrics.STAPLE_SENT]),
            ("", {"stapled": "no"}, t[metrics.STAPLE_NONE])])
    samples = []
    for o in metrics.OUTCOMES:
        count, total, buckets = t.responder(o)
        cum = 0
        for le, n in zip((*metrics.BUCKETS, None), buckets):
            cum += n
            samples.append(("_bucket", {"outcome": o, "le": "+Inf" if le is None else repr(le)},
                            cum))
        samples.append(("_sum", {"outcome": o}, f"{total:.6f}"))
        samples.append(("_count", {"outcome": o}, count))
    metric("httpd_py_ocsp_responder_request_duration_seconds", "histogram",
           "OCSP responder requests by outcome (ok or the failure kind) and their latency.",
           samples)
    exp, info = [], []
    for c in snap.stapling:
        labels = {"certificate": c["label"], "serial": c["serial"]}
        if c["next_update"] is not None:
            exp.append(("", labels, f"{c['next_update'] - snap.now:.3f}"))
        info.append(("", {**labels, "status": c["status"], "state": c["state"]}, 1))
    if snap.stapling:
        metric("httpd_py_ocsp_staple_expiry_seconds", "gauge",
               "Seconds until the stapled response's nextUpdate (negative: past).", exp)
        metric("httpd_py_ocsp_staple_info", "gauge",
               "The staple of each certificate: its OCSP status and serving state.", info)
    caches = _cache_status(cfg)
    if caches:
        ops = []
        errs = []
        for name, st in caches:
            lab = {"cache": name, "provider": st.get("provider", "?")}
            for op, key in (("hit", "hits"), ("miss", "misses"), ("store", "stores"),
                            ("expire", "expired"), ("evict", "scrolled"), ("remove", "removes"),
                            ("oversized", "oversized")):
                if key in st:
                    ops.append(("", {**lab, "op": op}, st[key]))
            errs.append(("", lab, st.get("errors", 0)))
        metric("httpd_py_socache_operations_total", "counter",
               "Shared object cache operations by cache, provider and outcome.", ops)
        metric("httpd_py_socache_errors_total", "counter",
               "Shared object cache errors (server down, bad reply, I/O).", errs)
    return "\n".join(out) + "\n"


def _cache_status(cfg) -> list[tuple[str, dict]]:
    service = REGISTRY.stapling(cfg)
    if service is None:
        return []
    out = []
    for name, cache in (("stapling", getattr(service, "cache", None)),
                        ("stapling-local", getattr(service, "local", None))):
        if cache is None:
            continue
        try:
            out.append((name, dict(cache.status())))
        except Exception:
            continue
    return out


# -- the handlers -----------------------------------------------------------------------------------------
def _options(query: str) -> dict[str, Any]:
    """mod_status's query words: auto, notable, refresh[=N] (found anywhere in the query)."""
    q = query or ""
    opts: dict[str, Any] = {"auto": "auto" in q, "notable": "notable" in q, "refresh": None}
    i = q.find("refresh")
    if i >= 0:
        rest = q[i + len("refresh"):]
        n = 1
        if rest.startswith("="):
            digits = ""
            for ch in rest[1:]:
                if not ch.isdigit():
                    break
                digits += ch
            n = int(digits) if digits else 1
        opts["refresh"] = max(1, n)
    return opts


def _allowed(req: hooks.Request) -> int | None:
    return None if req.method in ("GET", "HEAD") else 405


def server_status(req: hooks.Request):
    cfg = req.server
    if cfg is None or not status_loaded(cfg):
        return 404                           # mod_status not loaded: the handler does not exist
    bad = _allowed(req)
    if bad is not None:
        return bad
    opts = _options(req.query)
    try:
        snap = snapshot(cfg)
        host = req.hostname or (req.vhost.server_name if req.vhost is not None else "") or req.local_ip
        if opts["auto"]:
            body, ctype = render_auto(snap, host, cfg), TEXT_TYPE
        else:
            body, ctype = render_html(snap, host, req.local_ip, cfg, notable=opts["notable"]), HTML_TYPE
    except Exception as e:
        error_log.error(MODULE, logids.STATUS_PAGE_FAILED,
                        f"server-status: {type(e).__name__}: {e}",
                        client=f"{req.client_ip}:{req.client_port}")
        return 500
    headers = []
    if opts["refresh"] is not None:
        headers.append(("Refresh", str(opts["refresh"])))
    return hooks.Response(200, headers, body.encode("latin-1", "replace"), content_type=ctype)


def stapling_status(req: hooks.Request):
    bad = _allowed(req)
    if bad is not None:
        return bad
    try:
        body = json.dumps(stapling_json(req.server), indent=2, sort_keys=True) + "\n"
    except Exception as e:
        error_log.error(MODULE, logids.STATUS_PAGE_FAILED,
                        f"stapling-status: {type(e).__name__}: {e}",
                        client=f"{req.client_ip}:{req.client_port}")
        return 500
    return hooks.Response(200, [("Cache-Control", "no-store")], body.encode("utf-8"),
                          content_type=JSON_TYPE)


def prometheus(req: hooks.Request):
    bad = _allowed(req)
    if bad is not None:
        return bad
    try:
        body = render_metrics(snapshot(req.server), req.server)
    except Exception as e:
        error_log.error(MODULE, logids.STATUS_PAGE_FAILED, f"metrics: {type(e).__name__}: {e}",
                        client=f"{req.client_ip}:{req.client_port}")
        return 500
    return hooks.Response(200, [("Cache-Control", "no-store")], body.encode("utf-8"),
                          content_type=PROM_TYPE)


hooks.HANDLERS[STATUS_HANDLER] = server_status
hooks.HANDLERS[STAPLING_HANDLER] = stapling_status
hooks.HANDLERS[METRICS_HANDLER] = prometheus
