"""Diffie-Hellman parameters for DHE cipher suites, chosen as Apache's mod_ssl chooses them.

Apache (2.4.71, measured with ``openssl s_client -msg``) answers a DHE-RSA suite with the
well-known MODP group matching the server key's size: RFC 3526's 2048/3072/4096/6144/8192-bit
groups (RFC 2409's 1024-bit group below 1025 bits), generator 2.  The primes are defined by a
formula over pi (RFC 2409 section 6.2, RFC 3526): computed here, so no long hex is copied::

    p = 2^N - 2^(N-64) - 1 + 2^64 * ( floor(2^(N-130) * pi) + c )

``for_key_bits(bits)`` -> PEM (PKCS#3 DH parameters); ``apply(ctx, pem)`` sets them on a
pyOpenSSL Context (OpenSSL's SSL_CTX_set_tmp_dh; pyOpenSSL only offers a file path).
"""
from __future__ import annotations

import base64
from functools import lru_cache

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

# (bits N, smallest server key size that gets it, the RFC's offset c)
_GROUPS = ((8192, 6145, 4743158), (6144, 4097, 929484), (4096, 3073, 240904),
           (3072, 2049, 1690314), (2048, 1025, 124476), (1024, 0, 129093))


def _pi_scaled(bits: int) -> int:
    """floor(pi * 2**bits), by Machin's formula in fixed point with guard bits."""
    guard = 64
    one = 1 << (bits + guard)

    def arctan_inv(x: int) -> int:
        total, term, n, sign = 0, one // x, 1, 1
        x2 = x * x
        while term:
            total += sign * (term // n)
            term //= x2
            n += 2
            sign = -sign
        return total

    return (16 * arctan_inv(5) - 4 * arctan_inv(239)) >> guard


def modp_prime(n: int) -> int:
    c = {bits: off for bits, _, off in _GROUPS}[n]
    return 2 ** n - 2 ** (n - 64) - 1 + 2 ** 64 * (_pi_scaled(n - 130) + c)


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_int(v: int) -> bytes:
    body = v.to_bytes(v.bit_length() // 8 + 1, "big")       # a leading 0: positive
    return b"\x02" + _der_len(len(body)) + body


@lru_cache(maxsize=None)
def _pem(n: int) -> bytes:
    """PKCS#3 DHParameter ::= SEQUENCE { prime INTEGER, base INTEGER }, as PEM."""
    body = _der_int(modp_prime(n)) + _der_int(2)
    der = b"\x30" + _der_len(len(body)) + body
    b64 = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return b"-----BEGIN DH PARAMETERS-----\n" + lines + b"\n-----END DH PARAMETERS-----\n"


def for_key_bits(bits: int) -> bytes:
    """The DH parameters (PEM) Apache uses with a server key of ``bits`` bits."""
    n = next(n for n, least, _ in _GROUPS if bits >= least)
    return _pem(n)


def apply(ctx: SSL.Context, pem: bytes) -> None:
    """Set DH parameters (PEM) on ``ctx``; raises SSL.Error when OpenSSL refuses them."""
    bio = _lib.BIO_new_mem_buf(pem, len(pem))
    if bio == _ffi.NULL:
        raise SSL.Error("BIO_new_mem_buf failed")
    bio = _ffi.gc(bio, _lib.BIO_free)
    params = _lib.PEM_read_bio_DHparams(bio, _ffi.NULL, _ffi.NULL, _ffi.NULL)
    if params == _ffi.NULL:
        raise SSL.Error("no DH parameters in the PEM data")
    params = _ffi.gc(params, _lib.DH_free)
    if _lib.SSL_CTX_set_tmp_dh(ctx._context, params) != 1:
        raise SSL.Error("SSL_CTX_set_tmp_dh failed")
