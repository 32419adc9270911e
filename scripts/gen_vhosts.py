"""N SSL name-based vhosts with N distinct certificates, one config for apache2 and httpd-py.

    .venv/bin/python scripts/gen_vhosts.py OUT_DIR --n 1000 [--issuers 3] [--rsa-every 2]
        [--port 8443] [--responder-port 8888] [--validity 150] [--serve]

What it writes (``OUT_DIR``)::

    pki/root.pem root.key                    one root
    pki/inter-<k>.pem inter-<k>.key          ``--issuers`` intermediates (P-256), signed by the root
    pki/v<i>.scale.test-<kind>.pem/.key      leaf + its intermediate (a full chain file); kind
                                             "rsa" (RSA-2048) for every ``--rsa-every``-th vhost,
                                             else "ec" (P-256); issuer ``i % issuers``; the AIA
                                             OCSP URL is the responder's
    htdocs/small.txt                         a 100-byte file
    httpd.conf                               the main server + N ``<VirtualHost>`` blocks

Private keys are the slow part (RSA-2048 ~0.1 s each): they are kept in a key cache
(``~/.cache/httpd-py-bench/keys``, or ``$HTTPD_PY_BENCH_KEYS``) and reused by later runs;
certificates are issued afresh every time (milliseconds each), so the OCSP URL and the dates
are always the current run's.

``MultiResponder`` is one OCSP responder on 127.0.0.1 that answers for every intermediate (it
looks the request's issuerKeyHash up and signs with that issuer), with responses valid
``validity`` seconds from 5 s ago, and keeps the time of every request (``rate``).  ``--serve``
runs it in the foreground after writing the files.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

import importlib.util
import sys

if importlib.util.find_spec("httpd_py") is None:          # run from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from httpd_py.devtools.responder import (CertRef, ThreadedServer, build_response,  # noqa: E402
                                        request_handler, send, serve_in_thread, unsuccessful)

UTC = dt.timezone.utc
APACHE_MODULES = "/usr/lib/apache2/modules"
DOMAIN = "scale.test"


def vhost_name(i: int) -> str:
    return f"v{i}.{DOMAIN}"


def key_cache_dir() -> Path:
    d = os.environ.get("HTTPD_PY_BENCH_KEYS")
    return Path(d) if d else Path.home() / ".cache" / "httpd-py-bench" / "keys"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "httpd-py scale bench"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class KeyCache:
    """Private keys by (kind, index), generated once and kept as PEM files."""

    def __init__(self, root: Path | None = None):
        self.root = root or key_cache_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def pem(self, kind: str, index: int) -> bytes:
        path = self.root / f"{kind}-{index}.key"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        key = (rsa.generate_private_key(65537, 2048) if kind == "rsa"
               else ec.generate_private_key(ec.SECP256R1()))
        data = _pem_key(key)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        _write_private(tmp, data)
        os.replace(tmp, path)
        return data


def _cert(subject: str, issuer: x509.Name, pub, signer_key, *, ca: bool, now: dt.datetime,
          days: int, extensions=()) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer).public_key(pub)
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True, crl_sign=True,
                                          encipher_only=False, decipher_only=False), critical=True)
    for ext in extensions:
        b = b.add_extension(ext, critical=False)
    return b.sign(signer_key, hashes.SHA256())


@dataclass
class Issuer:
    cert: x509.Certificate
    key: object
    file: Path


@dataclass
class VHostCert:
    index: int
    name: str
    kind: str                       # "rsa" or "ec"
    issuer: int                     # index into Fleet.issuers
    cert: x509.Certificate
    cert_file: Path
    key_file: Path


@dataclass
class Fleet:
    """Everything written for one N: the PKI, the document root and the config."""
    out: Path
    root: x509.Certificate
    root_file: Path
    issuers: list[Issuer]
    certs: list[VHostCert]
    docroot: Path
    conf: Path | None = None
    port: int = 0

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.certs]


def make_fleet(out: Path, n: int, *, ocsp_url: str, issuers: int = 3, rsa_every: int = 2,
               keys: KeyCache | None = None) -> Fleet:
    """The PKI (root, ``issuers`` intermediates, ``n`` leaves) and the document root."""
    keys = keys or KeyCache()
    now = dt.datetime.now(UTC)
    pki = out / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    root_key = serialization.load_pem_private_key(keys.pem("ca", 0), None)
    root = _cert("httpd-py Scale Root CA", _name("httpd-py Scale Root CA"), root_key.public_key(),
                 root_key, ca=True, now=now, days=3650)
    (pki / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    inters: list[Issuer] = []
    for k in range(max(1, issuers)):
        ikey = serialization.load_pem_private_key(keys.pem("ca", k + 1), None)
        icert = _cert(f"httpd-py Scale Intermediate {k}", root.subject, ikey.public_key(), root_key,
                      ca=True, now=now, days=1825,
                      extensions=[x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key())])
        f = pki / f"inter-{k}.pem"
        f.write_bytes(icert.public_bytes(serialization.Encoding.PEM))
        inters.append(Issuer(icert, ikey, f))
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))])
    certs: list[VHostCert] = []
    for i in range(n):
        kind = "rsa" if rsa_every and i % rsa_every == rsa_every - 1 else "ec"
        pem = keys.pem(kind, i)
        key = serialization.load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True) \
            if kind == "rsa" else serialization.load_pem_private_key(pem, None)
        iss = inters[i % len(inters)]
        name = vhost_name(i)
        cert = _cert(name, iss.cert.subject, key.public_key(), iss.key, ca=False, now=now, days=90,
                     extensions=[x509.SubjectAlternativeName([x509.DNSName(name)]),
                                 x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                 x509.AuthorityKeyIdentifier.from_issuer_public_key(iss.key.public_key()),
                                 aia])
        cert_file, key_file = pki / f"{name}-{kind}.pem", pki / f"{name}-{kind}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                              + iss.cert.public_bytes(serialization.Encoding.PEM))
        _write_private(key_file, pem)
        certs.append(VHostCert(i, name, kind, i % len(inters), cert, cert_file, key_file))
    docroot = out / "htdocs"
    docroot.mkdir(exist_ok=True)
    (docroot / "small.txt").write_text("hello from the benchmark\n" * 4)
    return Fleet(out, root, pki / "root.pem", inters, certs, docroot)


def write_config(fleet: Fleet, port: int, *, workers: int = 4, log_level: str = "warn",
                 skew: int = 5, stapling_cache_bytes: int | None = None,
                 stapling_cache: str | None = None,
                 server_extra: str = "", work: Path | None = None) -> Path:
    """One Apache-syntax file both servers read: prefork, ``workers`` workers, no session
    cache or tickets, shmcb stapling cache sized for every staple (or ``stapling_cache``, e.g.
    ``redis:127.0.0.1:6379``), one ``<VirtualHost>`` per certificate (the first is the
    address's default)."""
    work = work or fleet.out
    size = stapling_cache_bytes or max(512000, 4096 * len(fleet.certs))
    mods = ["mpm_prefork", "authz_core", "mime", "socache_shmcb", "ssl"]
    if stapling_cache and stapling_cache.startswith("redis:"):
        mods.append("socache_redis")
    loads = "\n".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in mods)
    blocks = []
    for c in fleet.certs:
        blocks.append(f"""<VirtualHost 127.0.0.1:{port}>
    ServerName {c.name}
    SSLEngine on
    SSLCertificateFile {c.cert_file}
    SSLCertificateKeyFile {c.key_file}
    SSLUseStapling on
    SSLSessionTickets off
</VirtualHost>
""")
    text = f"""ServerRoot {work}
{loads}
ServerName {DOMAIN}
Listen 127.0.0.1:{port}
PidFile {work}/httpd.pid
ErrorLog {work}/error.log
LogLevel {log_level}
User www-data
Group www-data
Mutex file:{work} default
StartServers {workers}
MinSpareServers {workers}
MaxSpareServers {workers * 2}
MaxRequestWorkers 64
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
TypesConfig /etc/mime.types
DocumentRoot {fleet.docroot}
<Directory {fleet.docroot}>
    Require all granted
</Directory>
SSLStaplingCache {stapling_cache or f"shmcb:{work}/stapling({size})"}
SSLSessionCache none
SSLStaplingResponseTimeSkew {skew}
{server_extra}
{''.join(blocks)}"""
    path = work / "httpd.conf"
    path.write_text(text)
    fleet.conf, fleet.port = path, port
    return path


class MultiResponder:
    """One OCSP responder on 127.0.0.1 for every intermediate of a ``Fleet``.

    A request is answered by the issuer whose key hash it names (signed by that issuer), "good",
    thisUpdate 5 s ago, nextUpdate ``validity`` seconds after that; an unknown issuer gets
    ``unauthorized``.  ``times`` holds the ``time.monotonic()`` of every request.
    """

    def __init__(self, fleet: Fleet, *, port: int = 0, validity: float = 150.0):
        self.fleet = fleet
        self.validity = validity
        self._port = port
        self.by_key_hash: dict[bytes, Issuer] = {}
        for iss in fleet.issuers:
            self.by_key_hash[_key_hash(iss.cert)] = iss
        self.times: list[float] = []
        self.serials: dict[int, int] = {}
        self.errors = 0
        self._lock = threading.Lock()
        self._server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/"

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> "MultiResponder":
        self._server = ThreadedServer(("127.0.0.1", self._port), request_handler(self, "HTTP/1.1"))
        self._port = self._server.server_address[1]
        serve_in_thread(self._server, "scale-ocsp-responder")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "MultiResponder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.times.clear()
            self.serials.clear()

    def count_since(self, t0: float) -> int:
        with self._lock:
            return sum(1 for t in self.times if t >= t0)

    def rate(self, t0: float, t1: float, bucket: float = 1.0) -> list[int]:
        """Requests per ``bucket`` seconds between monotonic times t0 and t1."""
        n = max(1, int((t1 - t0) / bucket + 0.999))
        out = [0] * n
        with self._lock:
            for t in self.times:
                if t0 <= t < t1:
                    out[min(n - 1, int((t - t0) / bucket))] += 1
        return out

    def _handle(self, h, method: str, body: bytes) -> None:
        try:
            req = ocsp.load_der_ocsp_request(body)
            ref = CertRef.from_request(req)
        except Exception:
            with self._lock:
                self.errors += 1
            return send(h, 200, unsuccessful("malformedRequest"), "application/ocsp-response")
        with self._lock:
            self.times.append(time.monotonic())
            self.serials[ref.serial] = self.serials.get(ref.serial, 0) + 1
        iss = self.by_key_hash.get(ref.issuer_key_hash)
        if iss is None:
            return send(h, 200, unsuccessful("unauthorized"), "application/ocsp-response")
        now = dt.datetime.now(UTC)
        this = now - dt.timedelta(seconds=5)
        der = build_response(ref, "good", iss.cert, iss.key, now=now, this_update=this,
                             next_update=this + dt.timedelta(seconds=self.validity))
        send(h, 200, der, "application/ocsp-response")


def _key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the certificate's subjectPublicKey BIT STRING contents (OCSP's issuerKeyHash)."""
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--issuers", type=int, default=3)
    ap.add_argument("--rsa-every", type=int, default=2, help="every K-th vhost has an RSA key (0: none)")
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--responder-port", type=int, default=8888)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--validity", type=float, default=150.0, help="seconds each OCSP response is valid")
    ap.add_argument("--serve", action="store_true", help="run the OCSP responder until Ctrl-C")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    fleet = make_fleet(args.out, args.n, ocsp_url=f"http://127.0.0.1:{args.responder_port}/",
                       issuers=args.issuers, rsa_every=args.rsa_every)
    conf = write_config(fleet, args.port, workers=args.workers)
    print(f"{args.n} vhosts, {args.issuers} issuers, config {conf} ({time.monotonic() - t0:.1f} s)")
    if args.serve:
        with MultiResponder(fleet, port=args.responder_port, validity=args.validity) as r:
            print(f"OCSP responder on {r.url} (Ctrl-C stops)", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
