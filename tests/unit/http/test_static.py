"""Validators, conditionals, ranges and MIME lookup: tables over values."""
from __future__ import annotations

import pytest

from httpd_py.http.static import (UNSATISFIABLE, MimeTypes, evaluate_conditionals, http_date,
                                  if_range_allows, make_etag, parse_http_date, parse_range)

MTIME = 1_700_000_000.5
ETAG = make_etag(45, 1_700_000_000_500_000_000)
LM = http_date(MTIME)
BEFORE = http_date(MTIME - 10)
AFTER = http_date(MTIME + 10)


def test_etag_shape_is_apaches_size_mtime():
    assert ETAG == '"2d-60a241825e120"'  # 1_700_000_000_500_000 usec


def test_http_date_round_trip():
    assert parse_http_date(http_date(1_700_000_000)) == 1_700_000_000
    assert parse_http_date("garbage") is None
    assert parse_http_date("") is None


@pytest.mark.parametrize("method,headers,expect", [
    ("GET", {}, None),
    ("GET", {"if-none-match": ETAG}, 304),
    ("HEAD", {"if-none-match": ETAG}, 304),
    ("GET", {"if-none-match": "W/" + ETAG}, 304),             # weak comparison
    ("GET", {"if-none-match": f'"x", {ETAG}'}, 304),
    ("GET", {"if-none-match": "*"}, 304),
    ("GET", {"if-none-match": '"other"'}, None),
    ("GET", {"if-none-match": '"other"', "if-modified-since": AFTER}, None),   # INM wins over IMS
    ("GET", {"if-modified-since": LM}, 304),
    ("GET", {"if-modified-since": AFTER}, 304),
    ("GET", {"if-modified-since": BEFORE}, None),
    ("GET", {"if-modified-since": "not a date"}, None),
    ("GET", {"if-match": ETAG}, None),
    ("GET", {"if-match": '"other"'}, 412),
    ("GET", {"if-match": "W/" + ETAG}, 412),                  # strong comparison
    ("GET", {"if-match": "*"}, None),
    ("GET", {"if-unmodified-since": BEFORE}, 412),
    ("GET", {"if-unmodified-since": AFTER}, None),
])
def test_conditionals(method, headers, expect):
    assert evaluate_conditionals(method, headers, ETAG, MTIME) == expect


@pytest.mark.parametrize("value,size,expect", [
    (None, 100, None),
    ("bytes=0-9", 100, (0, 9)),
    ("bytes=10-", 100, (10, 99)),
    ("bytes=-10", 100, (90, 99)),
    ("bytes=-1000", 100, (0, 99)),
    ("bytes=90-1000", 100, (90, 99)),
    ("bytes=99-99", 100, (99, 99)),
    ("bytes=100-", 100, UNSATISFIABLE),
    ("bytes=100-200", 100, UNSATISFIABLE),
    ("bytes=-0", 100, UNSATISFIABLE),
    ("bytes=0-", 0, UNSATISFIABLE),
    ("bytes=5-2", 100, None),                    # invalid: ignored
    ("bytes=0-1,5-6", 100, None),                # several: whole file
    ("items=0-1", 100, None),
    ("bytes=a-b", 100, None),
    ("bytes=", 100, None),
    ("bytes=-", 100, None),
    (" bytes = 1-2", 100, (1, 2)),
])
def test_parse_range(value, size, expect):
    assert parse_range(value, size) == expect


def test_if_range():
    assert if_range_allows(None, ETAG, MTIME)
    assert if_range_allows(ETAG, ETAG, MTIME)
    assert not if_range_allows('"x"', ETAG, MTIME)
    assert not if_range_allows("W/" + ETAG, ETAG, MTIME)
    assert if_range_allows(LM, ETAG, MTIME)
    assert not if_range_allows(BEFORE, ETAG, MTIME)


def test_mime_types_file_and_addtype(tmp_path):
    f = tmp_path / "mime.types"
    f.write_text("# comment\ntext/html html htm\nimage/png png\napplication/x-gzip gz\n\n")
    m = MimeTypes(str(f), (("htm", "text/x-custom"), (".Foo", "application/foo")))
    assert m.lookup("/a/b.html") == "text/html"
    assert m.lookup("/a/b.HTM") == "text/x-custom"
    assert m.lookup("x.foo") == "application/foo"
    assert m.lookup("x.png.gz") == "application/x-gzip"
    assert m.lookup("/dir.png/noext") is None
    assert MimeTypes(str(tmp_path / "missing")).lookup("a.html") is None


def test_debian_mime_types():
    m = MimeTypes("/etc/mime.types")
    if not m.map:
        pytest.fail("/etc/mime.types missing (Debian package media-types)")
    assert m.lookup("a.css") == "text/css"
