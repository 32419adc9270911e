"""An in-process OCSP responder for tests and the demo, built with cryptography.

Two layers:

* ``build_response(...)``/``forge(...)``: pure builders of OCSP responses of every kind, honest
  and hostile (wrong signer, delegated signer without the EKU or from another CA, wrong serial,
  wrong issuer hash, expired, future thisUpdate, no nextUpdate, RSA-PSS / Ed25519 signatures,
  a flipped signature byte...).
* ``Responder``: a threaded HTTP server on 127.0.0.1 (free port) answering POST and RFC 5019 GET
  requests.  Per-serial status (good / revoked / unknown), a ``mode`` switchable at run time for
  faults (see ``MODES``) and a request counter per serial.  ``with Responder(pki) as r: r.url``.

Command line (for scripts and the demo)::

    python -m httpd_py.devtools.responder --pki DIR --port P [--mode MODE] [--delegated]

It signs with ``inter.key`` (or ``ocsp-signer.*`` with --delegated) from a devtools.pki
directory and answers revoked for the serials marked R in its index.txt.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.server
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from httpd_py.stapling import der as derlib

UTC = dt.timezone.utc

_STATUS = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED,
           "unknown": ocsp.OCSPCertStatus.UNKNOWN}
_UNSUCCESSFUL = {
    "malformedRequest": ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
    "internalError": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
    "tryLater": ocsp.OCSPResponseStatus.TRY_LATER,
    "sigRequired": ocsp.OCSPResponseStatus.SIG_REQUIRED,
    "unauthorized": ocsp.OCSPResponseStatus.UNAUTHORIZED,
}

# Modes a Responder can be switched to at run time (``responder.mode = "..."``).
MODES = (
    "normal",            # honest answer, signed by the issuer (or the delegated signer)
    *_UNSUCCESSFUL,      # that non-successful responseStatus
    "hang",              # accept, read the request, never answer (until the server stops)
    "drip",              # 200 headers, then one body byte every ``drip_interval`` seconds
    "html",              # 200 text/html page
    "redirect",          # 302 to another path of this responder (must not be followed)
    "huge",              # 200 with a 10 MB body
    "garbage",           # 200 with random bytes
    "truncated",         # 200 with an honest response cut in half
    "http-500",          # 500 Internal Server Error
    "empty",             # 200 with an empty body
    "close",             # read the request, close the connection without answering
    "wrong-signer",      # signed by a key that is neither the issuer nor a delegated signer
    "bad-signature",     # issuer-signed, one signature byte flipped
    "wrong-serial",      # answers for serial + 1
    "wrong-issuer-hash", # issuerNameHash of another name
    "expired",           # thisUpdate 10 days ago, nextUpdate 1 day ago
    "future",            # thisUpdate 1 hour ahead
    "no-next-update",    # no nextUpdate
    "delegated-no-eku",  # delegated signer issued by the issuer, without id-kp-OCSPSigning
    "delegated-other-ca",# delegated signer with the EKU, issued by another CA
)


# ---------------------------------------------------------------------------------------------
# Pure builders
# ---------------------------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "httpd-py test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_signer(issuer: x509.Certificate, issuer_key, *, key=None, eku: bool = True,
                cn: str = "httpd-py Test OCSP Signer (extra)", not_before: dt.datetime | None = None,
                not_after: dt.datetime | None = None, issuer_name: x509.Name | None = None):
    """A delegated responder certificate issued by ``issuer`` (and its key)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(UTC)
    b = (x509.CertificateBuilder().subject_name(_name(cn))
         .issuer_name(issuer_name or issuer.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before or now - dt.timedelta(days=1))
         .not_valid_after(not_after or now + dt.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
    alg = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(issuer_key, alg), key


def make_ca(cn: str = "httpd-py Other CA", key=None):
    """A self-signed CA (for 'delegated signer from another CA')."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


@dataclass
class CertRef:
    """The CertID a response answers for (from a request, or from a certificate)."""
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    algorithm: hashes.HashAlgorithm = field(default_factory=hashes.SHA1)

    @classmethod
    def of(cls, cert: x509.Certificate, issuer: x509.Certificate) -> "CertRef":
        req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
        return cls(req.issuer_name_hash, req.issuer_key_hash, req.serial_number)

    @classmethod
    def from_request(cls, req: ocsp.OCSPRequest) -> "CertRef":
        return cls(req.issuer_name_hash, req.issuer_key_hash, req.serial_number, req.hash_algorithm)


def build_response(ref: CertRef, status: str, signer_cert: x509.Certificate, signer_key, *,
                   now: dt.datetime | None = None, this_update: dt.datetime | None = None,
                   next_update: dt.datetime | None | str = "default",
                   include_certs: tuple[x509.Certificate, ...] = (),
                   responder_by: str = "hash", revocation_time: dt.datetime | None = None,
                   revocation_reason: x509.ReasonFlags | None = None,
                   hash_alg: hashes.HashAlgorithm | None = None) -> bytes:
    """A successful, signed BasicOCSPResponse DER for ``ref``.

    next_update "default" is thisUpdate + 7 days; None omits it.
    """
    now = now or dt.datetime.now(UTC)
    this_update = this_update or now - dt.timedelta(minutes=5)
    if next_update == "default":
        next_update = this_update + dt.timedelta(days=7)
    if status == "revoked":
        revocation_time = revocation_time or now - dt.timedelta(days=1)
    else:
        revocation_time, revocation_reason = None, None
    b = ocsp.OCSPResponseBuilder().add_response_by_hash(
        ref.issuer_name_hash, ref.issuer_key_hash, ref.serial, ref.algorithm, _STATUS[status],
        this_update, next_update, revocation_time, revocation_reason)
    b = b.responder_id(ocsp.OCSPResponderEncoding.HASH if responder_by == "hash"
                       else ocsp.OCSPResponderEncoding.NAME, signer_cert)
    if include_certs:
        b = b.certificates(list(include_certs))
    if isinstance(signer_key, ed25519.Ed25519PrivateKey):
        alg = None
    else:
        alg = hash_alg or hashes.SHA256()
    resp = b.sign(signer_key, alg)
    return resp.public_bytes(serialization.Encoding.DER)


def unsuccessful(status: str) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(_UNSUCCESSFUL[status]).public_bytes(
        serialization.Encoding.DER)


_PSS_OID = "1.2.840.113549.1.1.10"
_HASH_OID = {"sha1": "1.3.14.3.2.26", "sha256": "2.16.840.1.101.3.4.2.1",
             "sha384": "2.16.840.1.101.3.4.2.2", "sha512": "2.16.840.1.101.3.4.2.3"}
_RSA_PKCS1_OID = {"sha256": "1.2.840.113549.1.1.11", "sha384": "1.2.840.113549.1.1.12",
                  "sha1": "1.2.840.113549.1.1.5"}
_ECDSA_OID = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3"}


def _alg_id(oid: str, params: bytes | None = None) -> bytes:
    return derlib.encode(derlib.SEQUENCE, derlib.encode_oid(oid) + (params or b""))


def _pss_params(hash_name: str, salt: int) -> bytes:
    # DER omits fields equal to their DEFAULT (SHA-1, MGF1-SHA-1, salt 20)
    body = b""
    if hash_name != "sha1":
        h = _alg_id(_HASH_OID[hash_name], derlib.encode(derlib.NULL, b""))
        body += derlib.encode(0xA0, h) + derlib.encode(0xA1, _alg_id("1.2.840.113549.1.1.8", h))
    if salt != 20:
        body += derlib.encode(0xA2, derlib.encode_int(salt))
    return derlib.encode(derlib.SEQUENCE, body)


def forge(der: bytes, *, key=None, scheme: str | None = None, hash_name: str = "sha256",
          salt: int = 32, signature: bytes | None = None, flip: bool = False,
          algorithm_oid: str | None = None) -> bytes:
    """Re-sign (or tamper with) a successful response, keeping tbsResponseData and certs.

    scheme: "pss", "pkcs1", "ecdsa", "ed25519" (signed with ``key``); ``signature`` replaces the
    signature bytes outright; ``flip`` flips the last signature byte; ``algorithm_oid`` overrides
    the declared algorithm.
    """
    _, body, _ = derlib.read_tlv(der)
    status_tlv_end = derlib.read_tlv(body, 0)[2]
    status_tlv = body[:status_tlv_end]
    _, rb, _ = derlib.read_tlv(body, status_tlv_end)
    _, rb_seq, _ = derlib.read_tlv(rb)
    (t_oid, v_oid), (_, octets) = derlib.children(rb_seq)
    _, basic, _ = derlib.read_tlv(octets)
    items = derlib.children(basic)
    tbs = derlib.encode(*items[0])
    alg = derlib.encode(*items[1])
    sig = items[2][1][1:]
    rest = b"".join(derlib.encode(t, v) for t, v in items[3:])
    data = tbs
    if scheme == "pss":
        h = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha1": hashes.SHA1(),
             "sha512": hashes.SHA512()}[hash_name]
        sig = key.sign(data, padding.PSS(mgf=padding.MGF1(h), salt_length=salt), h)
        alg = _alg_id(_PSS_OID, _pss_params(hash_name, salt))
    elif scheme == "pkcs1":
        h = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha1": hashes.SHA1()}[hash_name]
        sig = key.sign(data, padding.PKCS1v15(), h)
        alg = _alg_id(_RSA_PKCS1_OID[hash_name], derlib.encode(derlib.NULL, b""))
    elif scheme == "ecdsa":
        h = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[hash_name]
        sig = key.sign(data, ec.ECDSA(h))
        alg = _alg_id(_ECDSA_OID[hash_name])
    elif scheme == "ed25519":
        sig = key.sign(data)
        alg = _alg_id("1.3.101.112")
    if signature is not None:
        sig = signature
    if flip:
        sig = sig[:-1] + bytes([sig[-1] ^ 0x01])
    if algorithm_oid is not None:
        alg = _alg_id(algorithm_oid, derlib.encode(derlib.NULL, b""))
    new_basic = derlib.encode(derlib.SEQUENCE, tbs + alg + derlib.encode(derlib.BIT_STRING, b"\x00" + sig) + rest)
    new_rb = derlib.encode(derlib.SEQUENCE, derlib.encode(t_oid, v_oid) + derlib.encode(derlib.OCTET_STRING, new_basic))
    return derlib.encode(derlib.SEQUENCE, status_tlv + derlib.encode(0xA0, new_rb))


# ---------------------------------------------------------------------------------------------
# The HTTP responder
# ---------------------------------------------------------------------------------------------

class ThreadedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


# The HTTP front this responder shares with openssl_responder's.

def request_handler(front, protocol_version: str) -> type[http.server.BaseHTTPRequestHandler]:
    """A quiet handler class that gives ``front._handle(handler, method, body)`` each POST body
    (up to 64 KB) and each RFC 5019 GET's request, base64 in the last path segment."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(n, 65536))
            front._handle(self, "POST", body)

        def do_GET(self):
            path = urllib.parse.urlsplit(self.path).path
            b64 = urllib.parse.unquote(path.rsplit("/", 1)[-1])
            try:
                body = base64.b64decode(b64, validate=False)
            except Exception:
                body = b""
            front._handle(self, "GET", body)

    Handler.protocol_version = protocol_version
    return Handler


def serve_in_thread(server: http.server.HTTPServer, name: str) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=name, daemon=True)
    t.start()
    return t


def send(h: http.server.BaseHTTPRequestHandler, code: int, body: bytes, ctype: str) -> None:
    """One whole answer; a client that went away is not an error."""
    try:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
    except OSError:
        pass


def serve_until_interrupted(stop) -> None:
    """The command lines' main loop: run until Ctrl-C (SIGINT), then ``stop()``."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop()


class Responder:
    """A threaded OCSP responder on 127.0.0.1.  Use as a context manager, or start()/stop().

    ``issuer``/``issuer_key`` sign by default; ``delegated=(cert, key)`` signs with a delegated
    responder certificate (included in the response).  ``statuses`` maps serial -> "good" |
    "revoked" | "unknown"; serials not listed answer ``default_status``.
    """

    def __init__(self, issuer: x509.Certificate, issuer_key, *, delegated=None,
                 statuses: dict[int, str] | None = None, default_status: str = "good",
                 port: int = 0, host: str = "127.0.0.1", mode: str = "normal",
                 drip_interval: float = 1.0, validity: dt.timedelta = dt.timedelta(days=7),
                 clock=time.time, tls: tuple[str, str] | None = None, delay: float = 0.0):
        self.issuer, self.issuer_key = issuer, issuer_key
        self.delay = delay              # seconds every answer waits (a slow responder)
        self.delegated = delegated
        self.statuses = dict(statuses or {})
        self.default_status = default_status
        self.mode = mode
        self.drip_interval = drip_interval
        self.validity = validity
        self.clock = clock              # responses' thisUpdate/nextUpdate follow this clock
        self.tls = tls                  # (cert chain file, key file): serve https
        self._host, self._port = host, port
        self.counts: dict[int, int] = {}
        self.methods: list[str] = []
        self.paths: list[str] = []
        self.requests = 0
        self.seen_headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadedServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_pki(cls, pki, **kw) -> "Responder":
        if kw.pop("use_delegated", False):
            kw["delegated"] = (pki.signer, pki.signer_key)
        return cls(pki.inter, pki.inter_key, **kw)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Responder":
        self._server = ThreadedServer((self._host, self._port), request_handler(self, "HTTP/1.1"))
        if self.tls is not None:
            import ssl
            sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            sctx.load_cert_chain(*self.tls)
            self._server.socket = sctx.wrap_socket(self._server.socket, server_side=True)
        self._port = self._server.server_address[1]
        self._thread = serve_in_thread(self._server, "ocsp-responder")
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "Responder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"https://localhost:{self._port}/"
        return f"http://127.0.0.1:{self._port}/"

    def count(self, serial: int) -> int:
        with self._lock:
            return self.counts.get(serial, 0)

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.requests = 0
            self.methods.clear()
            self.paths.clear()

    # -- answering ---------------------------------------------------------------------------
    def answer(self, ref: CertRef, mode: str | None = None) -> bytes:
        """The response body this responder gives for ``ref`` in ``mode`` (pure w.r.t. I/O)."""
        mode = mode or self.mode
        if mode in _UNSUCCESSFUL:
            return unsuccessful(mode)
        now = dt.datetime.fromtimestamp(self.clock(), UTC)
        status = self.statuses.get(ref.serial, self.default_status)
        signer_cert, signer_key = self.issuer, self.issuer_key
        include: tuple = ()
        if self.delegated is not None:
            signer_cert, signer_key = self.delegated
            include = (signer_cert,)
        kw: dict = {"now": now, "next_update": now - dt.timedelta(minutes=5) + self.validity}
        if mode == "wrong-signer":
            signer_cert, signer_key = make_ca("httpd-py Impostor")
            include = ()
        elif mode == "wrong-serial":
            ref = CertRef(ref.issuer_name_hash, ref.issuer_key_hash, ref.serial + 1, ref.algorithm)
        elif mode == "wrong-issuer-hash":
            ref = CertRef(b"\x00" * len(ref.issuer_name_hash), ref.issuer_key_hash, ref.serial, ref.algorithm)
        elif mode == "expired":
            kw.update(this_update=now - dt.timedelta(days=10), next_update=now - dt.timedelta(days=1))
        elif mode == "future":
            kw.update(this_update=now + dt.timedelta(hours=1), next_update=now + dt.timedelta(days=7))
        elif mode == "no-next-update":
            kw.update(next_update=None)
        elif mode == "delegated-no-eku":
            signer_cert, signer_key = make_signer(self.issuer, self.issuer_key, eku=False)
            include = (signer_cert,)
        elif mode == "delegated-other-ca":
            other, other_key = make_ca()
            signer_cert, signer_key = make_signer(other, other_key)
            include = (signer_cert,)
        der = build_response(ref, status, signer_cert, signer_key, include_certs=include, **kw)
        if mode == "bad-signature":
            der = forge(der, flip=True)
        return der

    def mode_for_path(self, path: str) -> str:
        """``/mode/<MODE>/...`` selects MODE for that request (one responder, many behaviours:
        give each test certificate its own AIA URL); anything else uses ``self.mode``."""
        p = urllib.parse.urlsplit(path).path
        parts = p.split("/")
        if len(parts) > 3 and parts[1] == "mode" and parts[2] in MODES:
            return parts[2]
        return self.mode

    def _handle(self, h: http.server.BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        mode = self.mode_for_path(h.path)
        ref = None
        try:
            req = ocsp.load_der_ocsp_request(body)
            ref = CertRef.from_request(req)
        except Exception:
            req = None
        with self._lock:
            self.requests += 1
            self.methods.append(method)
            self.paths.append(h.path)
            self.seen_headers.append({k.lower(): v for k, v in h.headers.items()})
            if ref is not None:
                self.counts[ref.serial] = self.counts.get(ref.serial, 0) + 1
        if self.delay > 0:
            self._release.wait(self.delay)
        if mode == "hang":
            self._release.wait(120)
            return self._close(h)
        if mode == "close":
            return self._close(h)
        if mode == "http-500":
            return send(h, 500, b"oops", "text/plain")
        if mode == "html":
            return send(h, 200, b"<html><body>Service temporarily unavailable</body></html>", "text/html")
        if mode == "redirect":
            h.send_response(302)
            h.send_header("Location", self.url + "redirected")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if mode == "huge":
            return send(h, 200, b"\x30" * (10 * 1024 * 1024), "application/ocsp-response")
        if mode == "garbage":
            return send(h, 200, os.urandom(700), "application/ocsp-response")
        if mode == "empty":
            return send(h, 200, b"", "application/ocsp-response")
        if ref is None:
            return send(h, 200, unsuccessful("malformedRequest"), "application/ocsp-response")
        der = self.answer(ref, "normal" if mode in ("drip", "truncated") else mode)
        if mode == "truncated":
            der = der[: len(der) // 2]
        if mode == "drip":
            return self._drip(h, der)
        send(h, 200, der, "application/ocsp-response")

    def _drip(self, h, body: bytes) -> None:
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/ocsp-response")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.flush()
            for i in range(len(body)):
                if self._release.wait(self.drip_interval):
                    break
                h.wfile.write(body[i:i + 1])
                h.wfile.flush()
        except OSError:
            pass
        self._close(h)

    @staticmethod
    def _close(h) -> None:
        h.close_connection = True
        try:
            h.connection.shutdown(2)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def _load_pem(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), None)


def statuses_from_index(index: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in index.read_text().splitlines():
        f = line.split("\t")
        if len(f) >= 4 and f[3]:
            out[int(f[3], 16)] = {"V": "good", "R": "revoked"}.get(f[0], "unknown")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m httpd_py.devtools.responder",
                                 description="In-process OCSP responder on 127.0.0.1")
    ap.add_argument("--pki", required=True, help="a directory written by httpd_py.devtools.pki")
    ap.add_argument("--port", type=int, default=8888)
    ap.add_argument("--mode", default="normal", choices=MODES)
    ap.add_argument("--delegated", action="store_true", help="sign with ocsp-signer.pem")
    args = ap.parse_args(argv)
    d = Path(args.pki)
    issuer, issuer_key = _load_pem(d / "inter.pem"), _load_key(d / "inter.key")
    delegated = (_load_pem(d / "ocsp-signer.pem"), _load_key(d / "ocsp-signer.key")) if args.delegated else None
    statuses = statuses_from_index(d / "index.txt") if (d / "index.txt").exists() else {}
    r = Responder(issuer, issuer_key, delegated=delegated, statuses=statuses,
                  default_status="unknown" if statuses else "good", port=args.port, mode=args.mode)
    r.start()
    print(f"OCSP responder listening on {r.url} (mode {args.mode})", flush=True)
    serve_until_interrupted(r.stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
