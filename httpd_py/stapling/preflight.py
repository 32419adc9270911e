"""Stapling preflight: ask each stapled certificate's responder once, before serving.

Two entry points share one check:

* ``httpd-py -t`` (``run(cfg)``): every certificate of a vhost with ``SSLEngine on`` and
  ``SSLUseStapling on``; on by default, skipped with ``-D NO_STAPLING_PREFLIGHT``.  Each problem
  is one error-log line on stderr naming the vhost's file:line (the ``<VirtualHost>`` line; the
  main server: its SSLCertificateFile/SSLUseStapling line).  A problem is a warning (``-t`` still
  says Syntax OK, exit 0), except for a certificate carrying Must-Staple (RFC 7633) in a vhost
  with ``SSLStaplingMustStaple strict``: there the server would refuse the handshakes that ask
  for a staple, so it is an error and ``-t`` exits 1.
* ``httpd-py ocsp check CERT [--issuer FILE] [--url URL]`` (``ocsp_main``): the same checks for
  one certificate file, the response's fields printed; exit 0 good, 1 revoked, 2 anything else.

The checks, in order; the first that fails is the finding::

    certificate readable   the PEM file parses                              unreadable
    issuer found           chain in the file, SSLCertificateChainFile,      no-issuer
                           SSLCACertificateFile/Path (certinfo.find_issuer:
                           the name matches AND the issuer's key verifies)
    responder URL          SSLStaplingForceURL, else the AIA OCSP URLs       no-url
    responder answers      fetch.Fetcher.fetch_any, the stapler's client:    unreachable
                           every URL in turn under ONE deadline of
                           SSLStaplingResponderTimeout, SSLOCSPProxyURL
    response verifies      verdict.check_response (CertID, signature,        invalid /
                           times with the vhost's ResponseTimeSkew/MaxAge)   responder-error
    certificate good       good; revoked and unknown are findings           revoked / unknown

Certificates are checked MAX_PARALLEL at a time (a pool of threads, one Fetcher each; a
certificate several vhosts share is asked once), so with a responder that answers the whole
preflight takes about the CPU of its requests (~1 ms each: 1,000 certificates in ~1 s), and
with one that hangs, about the longest SSLStaplingResponderTimeout.  Nothing is cached or stored:
the stapler fetches again when the server starts.

Log ids (module "ssl"): HP07001 warn (a problem), HP07002 error (a problem under Must-Staple
strict), HP07003 info (a certificate checked good), HP07004 info (preflight skipped).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from httpd_py import log, logids
from httpd_py.stapling import certinfo, muststaple
from httpd_py.stapling import fetch as fetchlib
from httpd_py.stapling import verdict as V
from httpd_py.stapling.certid import CertID
from httpd_py.stapling.request import build_request

MOD = "ssl"

#: the define that turns the ``-t`` preflight off
SKIP_DEFINE = "NO_STAPLING_PREFLIGHT"
#: at most this many responder requests at once
MAX_PARALLEL = 32
#: beyond the longest responder timeout, how long ``run`` waits for a check that should be over
GRACE = 2.0

# outcomes (and the exit status of ``ocsp check``)
GOOD, REVOKED, FAILED = "good", "revoked", "failed"
EXIT = {GOOD: 0, REVOKED: 1, FAILED: 2}

# problems
UNREADABLE, NO_ISSUER, NO_URL, UNREACHABLE = "unreadable", "no-issuer", "no-url", "unreachable"
INVALID, RESPONDER_ERROR, UNKNOWN, REVOKED_P = "invalid", "responder-error", "unknown", "revoked"


@dataclass(frozen=True)
class Outcome:
    """What one certificate's check found.  ``problem`` is "" when the certificate is good."""
    label: str
    status: str                          # GOOD, REVOKED or FAILED
    problem: str = ""
    detail: str = ""
    url: str | None = None
    fetch: fetchlib.FetchResult | None = None
    verdict: V.Verdict | None = None
    attempts: int = 0                    # responder requests made
    elapsed: float = 0.0

    @property
    def good(self) -> bool:
        return self.status == GOOD


@dataclass(frozen=True)
class Finding:
    """One checked certificate of a configuration: where it is, who serves it, what was found."""
    outcome: Outcome
    where: str                           # "file:line" of the first vhost serving it
    vhosts: tuple[str, ...]
    cert_file: str
    level: str = "warn"                  # "error" under Must-Staple strict

    def text(self) -> str:
        served = ", ".join(self.vhosts)
        return (f"{self.where}: stapling preflight: {self.outcome.label} ({served}): "
                f"{self.outcome.detail}")


def _fmt(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"


def _cause(detail: str) -> str:
    """The OS error inside urllib3's wrapping ("Max retries exceeded with url: ..."), which
    otherwise fills the line with the request's base64."""
    m = re.search(r"\[Errno -?\d+\] [^'\")]+", detail)
    if m:
        return m.group(0).strip()
    if "Max retries exceeded" in detail or "NewConnectionError" in detail:
        return "cannot connect"
    return detail


# ---- one certificate ---------------------------------------------------------------------------

def check_certificate(cert: x509.Certificate, issuer: x509.Certificate, urls, *, timeout: float,
                      proxy_url: str | None = None, skew: float = 300,
                      max_age: float | None = None, fetcher=None, now=None,
                      label: str | None = None) -> Outcome:
    """Ask ``urls`` (in turn, one deadline of ``timeout`` s) about ``cert`` and judge the answer.

    ``fetcher``: a fetch.Fetcher (one is made and closed when None).  ``now``: a clock for the
    verdict (time.time).  Never raises.
    """
    label = label or certinfo.describe(cert)
    urls = tuple(urls)
    if not urls:
        return Outcome(label, FAILED, NO_URL, "no OCSP responder URL (the certificate has no AIA "
                       "OCSP entry and no SSLStaplingForceURL is set): it cannot be stapled")
    clock = now or time.time
    try:
        cid = CertID.from_certs(cert, issuer)
        req = build_request(cid)
    except Exception as e:                                    # noqa: BLE001
        return Outcome(label, FAILED, INVALID, f"cannot build the OCSP request: {e}")
    own = fetcher is None
    fetcher = fetcher or fetchlib.Fetcher()
    judged: dict[bytes, V.Verdict] = {}

    def accept(r: fetchlib.FetchResult) -> bool:      # a URL's unusable answer: try the next
        if not r.ok:
            return False
        judged[r.der] = v = V.check_response(r.der, cid, issuer, clock(), skew=skew,
                                             max_age=max_age)
        return v.valid

    start = time.monotonic()
    try:
        result, attempts = fetcher.fetch_any(urls, req, timeout=timeout, proxy_url=proxy_url,
                                             accept=accept)
    finally:
        if own:
            fetcher.close()
    elapsed = time.monotonic() - start
    tried = sum(1 for a in attempts if a.method)
    url = result.url or urls[0]
    base = dict(url=url, fetch=result, attempts=tried, elapsed=elapsed)
    if not result.ok:
        if result.error == fetchlib.TIMEOUT:
            what = f"did not answer within SSLStaplingResponderTimeout ({timeout:g} s)"
        elif result.error in (fetchlib.CONNECT, fetchlib.DNS):
            what = f"is unreachable ({_cause(result.detail)})"
        else:
            what = f"failed ({result.error}: {result.detail})"
        return Outcome(label, FAILED, UNREACHABLE, f"the OCSP responder {url} {what}", **base)
    v = judged.get(result.der) or V.check_response(result.der, cid, issuer, clock(), skew=skew,
                                                   max_age=max_age)
    base["verdict"] = v
    if v.kind == V.GOOD:
        return Outcome(label, GOOD, "", f"good (responder {url}, nextUpdate "
                       f"{_fmt(v.next_update)})", **base)
    if v.kind == V.REVOKED:
        reason = f", reason {v.revocation_reason}" if v.revocation_reason else ""
        return Outcome(label, REVOKED, REVOKED_P, f"the certificate is REVOKED (since "
                       f"{_fmt(v.revocation_time)}{reason}) says {url}", **base)
    if v.kind == V.UNKNOWN:
        return Outcome(label, FAILED, UNKNOWN, f"the OCSP responder {url} says the certificate's "
                       "status is unknown (wrong responder or issuer?)", **base)
    if v.kind == V.RESPONDER_ERROR:
        return Outcome(label, FAILED, RESPONDER_ERROR, f"the OCSP responder {url} answered "
                       f"{v.response_status or v.reason}", **base)
    return Outcome(label, FAILED, INVALID, f"the response from {url} does not verify: "
                   f"{v.reason}", **base)


# ---- a configuration ---------------------------------------------------------------------------

@dataclass
class _Job:
    cert_file: str
    where: str
    vhosts: list[str] = field(default_factory=list)
    strict: bool = False
    outcome: Outcome | None = None           # known before any fetch (unreadable, no issuer)
    args: tuple | None = None                # (cert, issuer, urls, kwargs) for check_certificate


def _vhost_name(v) -> str:
    return v.server_name or "main server"


def _where(v) -> str:
    loc = v.location or v.where("SSLCertificateFile") or v.where("SSLUseStapling")
    return str(loc) if loc is not None else "(main server)"


def _jobs(cfg) -> list[_Job]:
    """One job per distinct (certificate, responder settings), with every vhost serving it."""
    jobs: dict[tuple, _Job] = {}
    loaded: dict[str, object] = {}
    ca_cache: dict = {}
    for v in certinfo.stapling_vhosts(cfg):
        scfg = v.ssl.stapling
        chain_extra: list[x509.Certificate] = []
        chain_error = None
        if v.ssl.chain_file:
            try:
                chain_extra = certinfo.load_pem_certs(v.ssl.chain_file)
            except (OSError, ValueError) as e:
                chain_error = f"cannot read SSLCertificateChainFile {v.ssl.chain_file}: {e}"
        for pair in v.ssl.certificates:
            if pair.cert_file not in loaded:
                try:
                    certs = certinfo.load_pem_certs(pair.cert_file)
                    loaded[pair.cert_file] = certs if certs else ValueError("no certificate in it")
                except (OSError, ValueError) as e:
                    loaded[pair.cert_file] = e
            got = loaded[pair.cert_file]
            if isinstance(got, Exception):
                key: tuple = ("unreadable", pair.cert_file)
                job = jobs.get(key)
                if job is None:
                    job = jobs[key] = _Job(pair.cert_file, _where(v), outcome=Outcome(
                        pair.cert_file, FAILED, UNREADABLE, f"cannot read the certificate "
                        f"{pair.cert_file}: {got}"))
                job.vhosts.append(_vhost_name(v))
                continue
            cert, chain = got[0], got[1:]
            der = cert.public_bytes(serialization.Encoding.DER)
            urls = (scfg.force_url,) if scfg.force_url else certinfo.ocsp_urls(cert)
            key = (der, urls, scfg.responder_timeout, scfg.proxy_url, scfg.response_time_skew,
                   scfg.response_max_age, v.ssl.chain_file, v.ssl.ca_file, v.ssl.ca_path)
            job = jobs.get(key)
            if job is None:
                job = jobs[key] = _Job(pair.cert_file, _where(v))
                label = certinfo.describe(cert)
                issuer = certinfo.find_issuer(cert, chain + chain_extra, v, ca_cache)
                if issuer is None:
                    detail = (f"the issuer ({cert.issuer.rfc4514_string()}) is not in "
                              f"{pair.cert_file}, SSLCertificateChainFile or "
                              f"SSLCACertificateFile/Path: the certificate cannot be stapled")
                    if chain_error:
                        detail += f" ({chain_error})"
                    job.outcome = Outcome(label, FAILED, NO_ISSUER, detail)
                else:
                    job.args = (cert, issuer, urls, dict(
                        timeout=scfg.responder_timeout, proxy_url=scfg.proxy_url,
                        skew=scfg.response_time_skew, max_age=scfg.response_max_age,
                        label=label))
            job.vhosts.append(_vhost_name(v))
            if scfg.must_staple == "strict" and muststaple.requires_staple(cert):
                job.strict = True
    return list(jobs.values())


def preflight(cfg, *, fetcher_factory=None, now=None) -> list[Finding]:
    """Check every stapled certificate of ``cfg`` in parallel; one Finding each (good ones too).

    Bounded by the longest SSLStaplingResponderTimeout (plus GRACE); never raises.
    """
    jobs = _jobs(cfg)
    todo = [j for j in jobs if j.outcome is None]
    if todo:
        factory = fetcher_factory or fetchlib.Fetcher
        longest = max(j.args[3]["timeout"] for j in todo)

        local = threading.local()           # one Fetcher per pool thread, not per job
        made: list = []

        def one(job: _Job) -> Outcome:
            cert, issuer, urls, kw = job.args
            fetcher = getattr(local, "fetcher", None)
            if fetcher is None:
                fetcher = local.fetcher = factory()
                made.append(fetcher)
            try:
                return check_certificate(cert, issuer, urls, fetcher=fetcher, now=now, **kw)
            except Exception as e:                            # noqa: BLE001
                return Outcome(kw["label"], FAILED, INVALID, f"internal error: "
                               f"{type(e).__name__}: {e}")

        pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(todo)),
                                  thread_name_prefix="ocsp-preflight")
        try:
            futures = {pool.submit(one, j): j for j in todo}
            wait(futures, timeout=longest + GRACE)
            for fut, job in futures.items():
                if fut.done():
                    job.outcome = fut.result()
                else:
                    job.outcome = Outcome(job.args[3]["label"], FAILED, UNREACHABLE,
                                          f"no answer within {longest + GRACE:g} s")
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            for fetcher in list(made):
                try:
                    fetcher.close()
                except Exception:                             # noqa: BLE001
                    pass
    return [Finding(j.outcome, j.where, tuple(j.vhosts), j.cert_file,
                    "error" if j.strict else "warn") for j in jobs]


def run(cfg, *, fetcher_factory=None) -> int:
    """``-t``: log each finding (problems as warnings, Must-Staple strict ones as errors);
    returns 1 when there is an error, else 0."""
    status = 0
    for f in preflight(cfg, fetcher_factory=fetcher_factory):
        if f.outcome.good:
            log.error_log.info(MOD, logids.PREFLIGHT_GOOD, f.text())
        elif f.level == "error":
            log.error_log.error(MOD, logids.PREFLIGHT_STRICT,
                                f.text() + " (SSLStaplingMustStaple strict: "
                                "handshakes asking for a staple would be refused)")
            status = 1
        else:
            log.error_log.warn(MOD, logids.PREFLIGHT_PROBLEM, f.text())
    return status


def wanted(cfg, defines) -> bool:
    """Is the ``-t`` preflight to run?  SSLUseStapling on somewhere, and not skipped."""
    if SKIP_DEFINE in defines:
        if certinfo.stapling_vhosts(cfg):
            log.error_log.info(MOD, logids.PREFLIGHT_SKIPPED,
                               f"stapling preflight skipped (-D {SKIP_DEFINE})")
        return False
    return bool(certinfo.stapling_vhosts(cfg))


# ---- httpd-py ocsp check -----------------------------------------------------------------------

def describe_response(der: bytes) -> dict:
    """The printable fields of an OCSP response (whatever parses)."""
    out: dict = {"size": len(der)}
    try:
        resp = ocsp.load_der_ocsp_response(der)
    except Exception as e:                                    # noqa: BLE001
        out["parse_error"] = f"{type(e).__name__}: {e}"
        return out
    out["response_status"] = V.STATUS_NAMES.get(resp.response_status, str(resp.response_status))
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return out
    try:
        out["produced_at"] = resp.produced_at_utc.timestamp()
        if resp.responder_name is not None:
            out["responder_id"] = "name " + resp.responder_name.rfc4514_string()
        elif resp.responder_key_hash is not None:
            out["responder_id"] = "key SHA-1 " + resp.responder_key_hash.hex().upper()
        oid = resp.signature_algorithm_oid
        out["signature_algorithm"] = getattr(oid, "_name", None) or oid.dotted_string
        out["included_certificates"] = [c.subject.rfc4514_string() for c in resp.certificates]
        out["responses"] = len(list(resp.responses))
        out["nonce"] = any(e.oid == x509.OCSPNonce.oid for e in resp.extensions)
    except Exception as e:                                    # noqa: BLE001
        out["parse_error"] = f"{type(e).__name__}: {e}"
    return out


def _pick_issuer(cert: x509.Certificate, candidates) -> x509.Certificate | None:
    for c in candidates:
        if certinfo.issued_by(cert, c):
            return c
    return None


def _report(cert, issuer, o: Outcome) -> dict:
    v = o.verdict
    rep = {
        "certificate": cert.subject.rfc4514_string(), "label": o.label,
        "serial": format(cert.serial_number, "X"),
        "issuer": issuer.subject.rfc4514_string() if issuer is not None else None,
        "must_staple": muststaple.requires_staple(cert),
        "responder": o.url, "status": o.status, "problem": o.problem or None,
        "detail": o.detail, "requests": o.attempts, "elapsed": round(o.elapsed, 3),
        "method": o.fetch.method if o.fetch else None,
        "cert_status": v.kind if v is not None else None,
        "this_update": v.this_update if v else None, "next_update": v.next_update if v else None,
        "revocation_time": v.revocation_time if v else None,
        "revocation_reason": v.revocation_reason if v else None,
        "response": describe_response(o.fetch.der) if o.fetch and o.fetch.ok else None,
    }
    return rep


def render(rep: dict) -> str:
    r = rep.get("response") or {}
    rows = [
        ("certificate", f"{rep['certificate']}"),
        ("serial", rep["serial"]),
        ("issuer", rep["issuer"] or "-"),
        ("must-staple", "yes" if rep["must_staple"] else "no"),
        ("responder", (f"{rep['responder']} ({rep['method'] or '-'}, {rep['requests']} "
                       f"request(s), {rep['elapsed']:.3f} s)") if rep["responder"] else "-"),
    ]
    if r:
        rows += [("response", f"{r.get('response_status', '-')}, {r['size']} bytes"),
                 ("produced at", _fmt(r.get("produced_at"))),
                 ("responder id", r.get("responder_id", "-")),
                 ("signature", r.get("signature_algorithm", "-")),
                 ("certificates", ", ".join(r.get("included_certificates") or []) or "-")]
    if rep["cert_status"]:
        rows += [("cert status", rep["cert_status"]),
                 ("this update", _fmt(rep["this_update"])),
                 ("next update", _fmt(rep["next_update"]))]
        if rep["revocation_time"] is not None:
            rows.append(("revoked at", f"{_fmt(rep['revocation_time'])}, reason "
                                       f"{rep['revocation_reason'] or '-'}"))
    verdict = rep["status"] if rep["status"] == GOOD else f"{rep['status']}: {rep['detail']}"
    rows.append(("verdict", verdict))
    return "".join(f"{k:<14}{v}\n" for k, v in rows)


def ocsp_main(argv: list[str] | None = None) -> int:
    """``httpd-py ocsp check CERT [--issuer FILE] [--url URL] [--timeout S] [--proxy URL]
    [--json]``: exit 0 good, 1 revoked, 2 failed (anything else), 2 for usage errors too."""
    ap = argparse.ArgumentParser(prog="httpd-py ocsp",
                                 description="Check a certificate's OCSP status the way the "
                                             "stapler would fetch and validate it.")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="ask the certificate's OCSP responder and judge the answer")
    c.add_argument("cert", help="PEM certificate file (the leaf first; may hold its chain)")
    c.add_argument("--issuer", help="PEM file holding the issuer (default: the chain in CERT)")
    c.add_argument("--url", help="responder URL (default: the certificate's AIA OCSP URLs)")
    c.add_argument("--timeout", type=float, default=10.0,
                   help="total deadline in seconds, as SSLStaplingResponderTimeout (default 10)")
    c.add_argument("--proxy", help="HTTP proxy URL, as SSLOCSPProxyURL")
    c.add_argument("--skew", type=float, default=300.0,
                   help="allowed clock skew in seconds, as SSLStaplingResponseTimeSkew")
    c.add_argument("--json", action="store_true", help="print JSON")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    prog = "httpd-py ocsp check"
    try:
        certs = certinfo.load_pem_certs(args.cert)
        if not certs:
            raise ValueError("no certificate in it")
    except (OSError, ValueError) as e:
        print(f"{prog}: cannot read {args.cert}: {e}", file=sys.stderr)
        return EXIT[FAILED]
    cert = certs[0]
    candidates = certs[1:]
    if args.issuer:
        try:
            candidates = certinfo.load_pem_certs(args.issuer) + candidates
        except (OSError, ValueError) as e:
            print(f"{prog}: cannot read {args.issuer}: {e}", file=sys.stderr)
            return EXIT[FAILED]
    issuer = _pick_issuer(cert, candidates)
    if issuer is None:
        where = args.issuer or args.cert
        o = Outcome(certinfo.describe(cert), FAILED, NO_ISSUER,
                    f"the issuer ({cert.issuer.rfc4514_string()}) is not in {where}"
                    + ("" if args.issuer else " (give it with --issuer)"))
    else:
        urls = (args.url,) if args.url else certinfo.ocsp_urls(cert)
        o = check_certificate(cert, issuer, urls, timeout=args.timeout, proxy_url=args.proxy,
                              skew=args.skew)
    rep = _report(cert, issuer, o)
    if args.json:
        sys.stdout.write(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render(rep))
    sys.stdout.flush()
    return EXIT[o.status]
