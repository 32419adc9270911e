"""Helpers the stapling tests share: a clock the test moves, a PKI with a revoked certificate,
pyOpenSSL clients that ask for the staple, and the openssl / curl command-line clients."""
from __future__ import annotations

import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from OpenSSL import SSL

from httpd_py.devtools.pki import make_leaf, make_pki
from tests.support.tools import require_tool

KINDS = ("rsa", "ec")
CIPHER = {"rsa": b"ECDHE-RSA-AES128-GCM-SHA256", "ec": b"ECDHE-ECDSA-AES128-GCM-SHA256"}
SIGALGS = {"rsa": "rsa_pss_rsae_sha256:rsa_pkcs1_sha256", "ec": "ecdsa_secp256r1_sha256"}


class Clock:
    """A clock the test moves; starts at the real time."""

    def __init__(self, start: float | None = None):
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def pki_with_revoked(out_dir: Path, names, url: str):
    """A PKI for ``names`` plus ``revoked.test`` (RSA and EC), every leaf's AIA at ``url``, and
    the ``statuses`` a Responder needs to answer revoked for revoked.test: (pki, statuses)."""
    pki = make_pki(out_dir, names, ocsp_url=url)
    for kind in KINDS:
        make_leaf(pki, "revoked.test", kind, ocsp_urls=(url,))
    return pki, {pki.leaf("revoked.test", k).cert.serial_number: "revoked" for k in KINDS}


# ---- pyOpenSSL clients -------------------------------------------------------------------------

def staple_context(got: list, kind: str | None = None) -> SSL.Context:
    """A client context that appends each staple it receives (b"" for none) to ``got``; with
    ``kind``, TLS 1.2 and that kind's ECDHE cipher, so the server picks that certificate."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if kind is not None:
        ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_cipher_list(CIPHER[kind])
    ctx.set_ocsp_client_callback(lambda conn, der, data: (data.append(der), True)[1], got)
    return ctx


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.settimeout(None)                 # pyOpenSSL needs a blocking socket; bound it in the kernel
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 30, 0))
    return s


def status_request(ctx: SSL.Context, s: socket.socket, name: str) -> SSL.Connection:
    """A client connection for SNI ``name`` that asks for the staple; not yet handshaken."""
    c = SSL.Connection(ctx, s)
    c.set_tlsext_host_name(name.encode())
    c.request_ocsp()
    c.set_connect_state()
    return c


def handshakes(port: int, jobs: list[tuple[str, str]], got: list, errors: list) -> None:
    """One handshake per (name, kind) job; staples go to ``got``, exceptions to ``errors``."""
    ctxs = {kind: staple_context(got, kind) for kind in KINDS}
    for name, kind in jobs:
        s = connect(port)
        try:
            c = status_request(ctxs[kind], s, name)
            c.do_handshake()
            c.shutdown()
        except Exception as e:
            errors.append(repr(e))
        finally:
            s.close()


def handshakes_from_two_clients(port: int, names) -> tuple[list, list]:
    """500 handshakes from two client threads (250 each, over every name and kind):
    (staples, errors)."""
    jobs = [(n, k) for n in names for k in KINDS] * 63     # 252 per client
    got: list = []
    errors: list = []
    threads = [threading.Thread(target=handshakes, args=(port, jobs[:250], got, errors)),
               threading.Thread(target=handshakes, args=(port, jobs[2:252], got, errors))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return got, errors


# ---- command-line clients ----------------------------------------------------------------------

def s_client(port: int, name: str, kind: str, pki, status: bool = True) -> str:
    """``openssl s_client`` (with ``-status`` unless ``status`` is False): stdout + stderr."""
    openssl = require_tool("openssl")
    args = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name,
            "-CAfile", str(pki.root_file), "-sigalgs", SIGALGS[kind]]
    if status:
        args.append("-status")
    p = subprocess.run(args, input=b"Q\n", capture_output=True, timeout=30)
    return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def curl_cert_status(port: int, name: str, pki, *extra: str) -> subprocess.CompletedProcess:
    """``curl --cert-status`` of https://name:port/ resolved to 127.0.0.1."""
    curl = require_tool("curl")
    return subprocess.run([curl, "-sS", "--cert-status", "--cacert", str(pki.root_file),
                           "--resolve", f"{name}:{port}:127.0.0.1", *extra,
                           f"https://{name}:{port}/"],
                          capture_output=True, timeout=30)
