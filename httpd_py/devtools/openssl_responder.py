"""The real ``openssl ocsp`` responder, kept on loopback: a 127.0.0.1 HTTP front that feeds each
request to ``openssl ocsp -index index.txt -CA ... -rsigner ... -reqin REQ -respout RESP``.

Why a front and not ``openssl ocsp -port``: OpenSSL 3.0's ``-port`` daemon binds every interface
(``[::]:port``), which is forbidden here.  The alternative, running it inside a private network
namespace (``unshare -n``) with a relay, needs CAP_SYS_ADMIN (unprivileged CI containers refuse
it), a process on each side of the namespace, and care never to probe the daemon's port with a
bare connect (a probe wedges the single-threaded daemon for its read timeout).  With the front:
nothing listens beyond 127.0.0.1, every response is still produced, signed and formatted by
OpenSSL's responder code from its index.txt, the front counts requests per serial, and it can
inject the faults the interop tests need (``mode``: normal, hang, tryLater, http-500, drip: the
first ``drip_bytes`` bytes of the HTTP answer one every ``drip_interval`` s, then the rest;
"down" is simply ``stop()``).  Each request costs one ``openssl`` process (~6 ms).

Serves POST (HTTP/1.0 and 1.1, as Apache's client sends) and RFC 5019 GET.

    with OpenSSLResponder(pki_dir, port=8888) as r:     # ocsp-signer.* as delegated signer
        ... r.url, r.count(serial), r.requests

Command line: ``python -m httpd_py.devtools.openssl_responder --pki DIR --port P``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from httpd_py.devtools.responder import (ThreadedServer, request_handler, send, serve_in_thread,
                                        serve_until_interrupted)

MODES = ("normal", "hang", "tryLater", "http-500", "drip")


class OpenSSLResponder:
    """``pki_dir`` is a devtools.pki directory (index.txt, inter.pem, ocsp-signer.pem/.key)."""

    def __init__(self, pki_dir: str | os.PathLike, *, port: int = 0, delegated: bool = True,
                 mode: str = "normal", ndays: int = 1, openssl: str | None = None,
                 drip_bytes: int = 8, drip_interval: float = 0.6):
        self.dir = Path(pki_dir)
        self.port = port
        self.mode = mode
        self.ndays = ndays
        self.drip_bytes, self.drip_interval = drip_bytes, drip_interval
        self.openssl = openssl or shutil.which("openssl") or "openssl"
        if delegated:
            self.rsigner, self.rkey = self.dir / "ocsp-signer.pem", self.dir / "ocsp-signer.key"
        else:
            self.rsigner, self.rkey = self.dir / "inter.pem", self.dir / "inter.key"
        self.requests = 0
        self.counts: dict[int, int] = {}
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadedServer | None = None
        self._tmp = tempfile.mkdtemp(prefix="ossl-ocsp-")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def count(self, serial: int) -> int:
        with self._lock:
            return self.counts.get(serial, 0)

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.requests = 0

    def respond(self, req_der: bytes) -> bytes:
        """Run ``openssl ocsp`` on one DER request and return its DER response."""
        fd, req_path = tempfile.mkstemp(dir=self._tmp, suffix=".req")
        resp_path = req_path[:-4] + ".resp"
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(req_der)
            p = subprocess.run([self.openssl, "ocsp", "-index", str(self.dir / "index.txt"),
                                "-CA", str(self.dir / "inter.pem"), "-rsigner", str(self.rsigner),
                                "-rkey", str(self.rkey), "-ndays", str(self.ndays),
                                "-reqin", req_path, "-respout", resp_path],
                               capture_output=True, timeout=20)
            if p.returncode != 0 or not os.path.exists(resp_path):
                with self._lock:
                    self.errors.append(p.stderr.decode(errors="replace")[-500:])
                return ocsp.OCSPResponseBuilder.build_unsuccessful(
                    ocsp.OCSPResponseStatus.INTERNAL_ERROR).public_bytes(serialization.Encoding.DER)
            return Path(resp_path).read_bytes()
        finally:
            for path in (req_path, resp_path):
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def start(self) -> "OpenSSLResponder":
        self._server = ThreadedServer(("127.0.0.1", self.port), request_handler(self, "HTTP/1.0"))
        self.port = self._server.server_address[1]
        serve_in_thread(self._server, "openssl-ocsp-front")
        return self

    def _handle(self, h, method: str, body: bytes) -> None:
        serial = None
        try:
            serial = ocsp.load_der_ocsp_request(body).serial_number
        except Exception:
            pass
        with self._lock:
            self.requests += 1
            if serial is not None:
                self.counts[serial] = self.counts.get(serial, 0) + 1
        mode = self.mode
        if mode == "hang":
            self._release.wait(120)
            h.close_connection = True
            return
        if mode == "http-500":
            out, code = b"error", 500
        elif mode == "tryLater":
            out, code = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(serialization.Encoding.DER), 200
        else:
            out, code = self.respond(body), 200
        if mode == "drip":
            raw = (b"HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(out)) + out
            try:
                for i in range(min(self.drip_bytes, len(raw))):
                    h.wfile.write(raw[i:i + 1])
                    h.wfile.flush()
                    if self._release.wait(self.drip_interval):
                        return
                h.wfile.write(raw[self.drip_bytes:])
                h.wfile.flush()
            except OSError:
                pass
            h.close_connection = True
            return
        send(h, code, out, "application/ocsp-response")

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._release = threading.Event()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "OpenSSLResponder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m httpd_py.devtools.openssl_responder",
                                 description="openssl ocsp behind a 127.0.0.1 HTTP front")
    ap.add_argument("--pki", required=True)
    ap.add_argument("--port", type=int, default=8888)
    ap.add_argument("--issuer-signs", action="store_true", help="sign with inter.key, not ocsp-signer.key")
    args = ap.parse_args(argv)
    r = OpenSSLResponder(args.pki, port=args.port, delegated=not args.issuer_signs).start()
    print(f"openssl ocsp responder on {r.url}", flush=True)
    serve_until_interrupted(r.close)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
