"""muststaple: RFC 7633 detection on certificates made by the test PKI, and the handshake gate."""
from __future__ import annotations

import pytest

from httpd_py.devtools.pki import make_pki
from httpd_py.stapling import muststaple


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), ("plain.test", "ms.test"),
                    must_staple_names=("ms.test",))


@pytest.mark.parametrize("name, kind, expected", [
    ("plain.test", "rsa", False), ("plain.test", "ec", False),
    ("ms.test", "rsa", True), ("ms.test", "ec", True),
])
def test_requires_staple(pki, name, kind, expected):
    assert muststaple.requires_staple(pki.leaf(name, kind).cert) is expected


def test_ca_certificates_do_not_require_staple(pki):
    assert not muststaple.requires_staple(pki.root)
    assert not muststaple.requires_staple(pki.inter)


@pytest.mark.parametrize("must, mode, has, expected", [
    (False, "warn", False, "serve"),
    (False, "strict", False, "serve"),
    (True, "warn", False, "serve"),
    (True, "strict", False, "refuse"),
    (True, "strict", True, "serve"),
    (True, "warn", True, "serve"),
])
def test_gate(must, mode, has, expected):
    assert muststaple.gate(must, mode, has) == expected
