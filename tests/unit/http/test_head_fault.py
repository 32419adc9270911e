"""ProtocolError.kind: the connection loop picks HP03003 (a LimitRequest* limit) or HP03004
(malformed) from the kind, not from the reason's wording."""
from __future__ import annotations

import pytest

from httpd_py.http.protocol import HeadFault, Limits, ProtocolError, parse_head


@pytest.mark.parametrize("head,limits,status,kind", [
    (b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n\r\n", Limits(request_line=50), 414, HeadFault.LIMIT),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 100 + b"\r\n\r\n", Limits(field_size=50), 400, HeadFault.LIMIT),
    (b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", Limits(fields=2), 400, HeadFault.LIMIT),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 100, Limits(field_size=50), 400, HeadFault.LIMIT),
    (b"GET / HTTP/1.1\nHost: x\r\n\r\n", Limits(), 400, HeadFault.MALFORMED),
    (b"\rGET / HTTP/1.1\r\n\r\n", Limits(), 400, HeadFault.MALFORMED),
])
def test_kind(head, limits, status, kind):
    with pytest.raises(ProtocolError) as e:
        parse_head(head, limits)
    assert (e.value.status, e.value.kind) == (status, kind)
