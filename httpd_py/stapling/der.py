"""A minimal DER reader and writer: just what OCSP needs that cryptography does not expose.

cryptography parses OCSP responses but hides two things verification needs: the RSASSA-PSS
parameters of the response signature, and the raw BIT STRING of a public key (the CertID's
issuerKeyHash is a hash of that BIT STRING's contents, not of the whole SubjectPublicKeyInfo).
The test responder also uses ``encode`` to forge responses that no builder would produce.

A TLV is ``(tag, value_bytes)``; ``tag`` is the single identifier octet (every tag OCSP uses is
low-tag-number form).  Everything raises ``DerError`` on malformed input and never reads past the
buffer.
"""
from __future__ import annotations


class DerError(ValueError):
    """Malformed DER."""


SEQUENCE = 0x30
OID = 0x06
NULL = 0x05
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
ENUMERATED = 0x0A


def read_tlv(buf: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """Read one TLV at ``pos``: return (tag, value, position after it)."""
    if pos + 2 > len(buf):
        raise DerError("truncated TLV header")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not supported")
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4:
            raise DerError("unsupported length form")
        if pos + n > len(buf):
            raise DerError("truncated length")
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    end = pos + length
    if end > len(buf):
        raise DerError("truncated value")
    return tag, buf[pos:end], end


def children(value: bytes) -> list[tuple[int, bytes]]:
    """Every TLV inside a constructed value, in order."""
    out = []
    pos = 0
    while pos < len(value):
        tag, v, pos = read_tlv(value, pos)
        out.append((tag, v))
    return out


def decode_oid(value: bytes) -> str:
    if not value:
        raise DerError("empty OID")
    arcs: list[int] = []
    n = 0
    for i, b in enumerate(value):
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
        elif i == len(value) - 1:
            raise DerError("truncated OID")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def encode_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return encode(OID, bytes(body))


def encode(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        head = bytes([tag, n])
    else:
        lb = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([tag, 0x80 | len(lb)]) + lb
    return head + value


def encode_int(n: int) -> bytes:
    body = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True)
    return encode(INTEGER, body)


def decode_int(value: bytes) -> int:
    if not value:
        raise DerError("empty INTEGER")
    return int.from_bytes(value, "big", signed=True)


def spki_key_bits(spki_der: bytes) -> bytes:
    """The contents (after the unused-bits octet) of a SubjectPublicKeyInfo's BIT STRING."""
    tag, body, _ = read_tlv(spki_der)
    if tag != SEQUENCE:
        raise DerError("SubjectPublicKeyInfo is not a SEQUENCE")
    parts = children(body)
    if len(parts) != 2 or parts[1][0] != BIT_STRING or not parts[1][1]:
        raise DerError("SubjectPublicKeyInfo has no BIT STRING")
    return parts[1][1][1:]


def basic_response_parts(ocsp_der: bytes) -> tuple[bytes, str, bytes | None, bytes] | None:
    """(tbsResponseData TLV, signature algorithm OID, its parameters TLV or None, signature bits).

    None when the response carries no BasicOCSPResponse.  Raises DerError when malformed.
    """
    tag, body, end = read_tlv(ocsp_der)
    if tag != SEQUENCE or end != len(ocsp_der):
        raise DerError("OCSPResponse is not one SEQUENCE")
    parts = children(body)
    if len(parts) < 2:
        return None
    tag0, rb = parts[1]
    if tag0 != 0xA0:
        raise DerError("responseBytes is not [0]")
    t, rb_seq, _ = read_tlv(rb)
    rb_parts = children(rb_seq)
    if t != SEQUENCE or len(rb_parts) != 2 or rb_parts[1][0] != OCTET_STRING:
        raise DerError("malformed ResponseBytes")
    t, basic, _ = read_tlv(rb_parts[1][1])
    if t != SEQUENCE:
        raise DerError("BasicOCSPResponse is not a SEQUENCE")
    # keep the raw TLV of tbsResponseData: the signature covers its exact encoding
    _, _, tbs_end = read_tlv(basic, 0)
    tbs_tlv = basic[:tbs_end]
    t, alg, pos = read_tlv(basic, tbs_end)
    if t != SEQUENCE:
        raise DerError("signatureAlgorithm is not a SEQUENCE")
    alg_parts = children(alg)
    if not alg_parts or alg_parts[0][0] != OID:
        raise DerError("signatureAlgorithm has no OID")
    oid = decode_oid(alg_parts[0][1])
    params = encode(*alg_parts[1]) if len(alg_parts) > 1 else None
    t, sig, pos = read_tlv(basic, pos)
    if t != BIT_STRING or not sig or sig[0] != 0:
        raise DerError("signature is not a whole-octet BIT STRING")
    return tbs_tlv, oid, params, sig[1:]
