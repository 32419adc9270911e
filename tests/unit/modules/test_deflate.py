"""mod_deflate / mod_filter (httpd_py/modules/deflate.py): the gzip member Apache writes, its
reading of Accept-Encoding, and the output hook's decisions in deflate_out_filter's order
(size, 204, no-gzip, gzip-only-text/html, already encoded, Vary, Accept-Encoding, force-gzip),
AddOutputFilterByType (200s only, by type), SetOutputFilter, AddOutputFilter, ETag suffixes,
ranges of the gzip stream, HEAD, 304, the per-worker file cache and incremental compression of
iterator bodies.  Responses are built directly; tests/interop/modules/mime compares the same
cases with apache2."""
from __future__ import annotations

import gzip
import os
import zlib

import pytest

from httpd_py.config import load
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.http.walk import SectionWalker
from httpd_py.modules import deflate, mime
from httpd_py.modules.deflate import GZIP_HEADER, accepts_gzip, gzip_bytes, gzip_stream

BIG = b"<p>" + b"hello world " * 300 + b"</p>\n"


def test_gzip_member_as_apache_writes_it():
    out = gzip_bytes(BIG)
    assert out[:10] == GZIP_HEADER == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
    assert gzip.decompress(out) == BIG
    assert out[-8:] == (zlib.crc32(BIG).to_bytes(4, "little") + len(BIG).to_bytes(4, "little"))
    c = zlib.compressobj(6, zlib.DEFLATED, -15, 9)          # Apache's defaults
    assert out[10:-8] == c.compress(BIG) + c.flush()


def test_stream_equals_whole_and_is_incremental():
    pulled = []

    def source():
        for i in range(0, len(BIG), 100):
            pulled.append(i)
            yield BIG[i:i + 100]

    counts = []
    it = gzip_stream(source(), counts=counts)
    assert next(it) == GZIP_HEADER and pulled == []         # nothing read before it is needed
    rest = b"".join(it)
    assert GZIP_HEADER + rest == gzip_bytes(BIG)
    assert counts == [len(BIG), len(GZIP_HEADER + rest)]


@pytest.mark.parametrize("value, ok", [
    ("gzip", True), ("GZIP", True), ("x-gzip", False), ("*", False), ("gzip;q=0", False),
    ("gzip; q=0.0", False), ("gzip;q=0.000", False), ("gzip;q=0.0001", True),
    ("gzip;q=0.5", True), ("deflate, gzip;q=0.5", True), (", gzip", False),
    ("deflate;q=0.1, gzip", True), ("br, deflate", False), ("gzip;Q=0", True), ("", False),
    ("identity", False), ("gzip, deflate, br, zstd", True),
])
def test_accepts_gzip(value, ok):
    assert accepts_gzip(value) is ok


# -- the hook -------------------------------------------------------------------------------------
MODS = ("LoadModule deflate_module /usr/lib/apache2/modules/mod_deflate.so\n"
        "LoadModule filter_module /usr/lib/apache2/modules/mod_filter.so\n")


def ld(tmp_path, body: str, mods: str = MODS):
    d = tmp_path / "docs"
    d.mkdir(exist_ok=True)
    p = tmp_path / "httpd.conf"
    p.write_text(f"Listen 127.0.0.1:18080\nServerRoot {tmp_path}\nDocumentRoot {d}\n"
                 f"ErrorLog {tmp_path}/error.log\n{mods}{body}")
    return load(str(p), log_warnings=False)


BYTYPE = "AddOutputFilterByType DEFLATE text/html text/plain\n"


def req(cfg, path="/docs/x.html", headers=None, env=None, method="GET"):
    conf = SectionWalker(cfg.main, cfg).lookup(path, False, "/x").conf
    h = {"accept-encoding": "gzip"} if headers is None else headers
    r = hooks.Request(method=method, uri="/x", query="", headers=h, version="1.1",
                      request_line=f"{method} /x HTTP/1.1", client_ip="127.0.0.1",
                      client_port=1, local_ip="127.0.0.1", local_port=80, https=False,
                      vhost=cfg.main, server=cfg, filename=path, conf=conf, env=env or {})
    return r


def resp(body=BIG, ctype="text/html", status=200, etag='"bb8-60dd710212000"', extra=()):
    h = [("ETag", etag)] if etag else []
    h += [("Content-Type", ctype)] if ctype else []
    return hooks.Response(status, h + list(extra), body)


def run(r, p):
    return deflate.output(r, p)


def test_compresses_and_marks(tmp_path):
    cfg = ld(tmp_path, BYTYPE)
    out = run(req(cfg), resp())
    assert out.header("Content-Encoding") == "gzip"
    assert out.header("Vary") == "Accept-Encoding"
    assert out.header("ETag") == '"bb8-60dd710212000-gzip"'
    assert gzip.decompress(out.body) == BIG


@pytest.mark.parametrize("name, body, headers, env, ctype, status, encoded, vary", [
    ("small", b"x" * 68, None, None, "text/html", 200, False, False),
    ("just-big-enough", b"x" * 69, None, None, "text/html", 200, True, True),
    ("no-accept-encoding", BIG, {}, None, "text/html", 200, False, True),
    ("q0", BIG, {"accept-encoding": "gzip;q=0"}, None, "text/html", 200, False, True),
    ("x-gzip-only", BIG, {"accept-encoding": "x-gzip"}, None, "text/html", 200, False, True),
    ("no-gzip-env", BIG, None, {"no-gzip": "1"}, "text/html", 200, False, False),
    ("only-html-txt", BIG, None, {"gzip-only-text/html": "1"}, "text/plain", 200, False, False),
    ("only-html-html", BIG, None, {"gzip-only-text/html": "1"}, "text/html", 200, True, True),
    ("force-gzip", BIG, {}, {"force-gzip": "1"}, "text/plain", 200, True, True),
    ("other-type", BIG, None, None, "text/css", 200, False, False),
    ("type-params", BIG, None, None, "text/html; charset=utf-8", 200, True, True),
    ("type-case", BIG, None, None, "Text/HTML", 200, False, False),   # mod_filter: exact
    ("404", BIG, None, None, "text/html", 404, False, False),        # mod_filter: 200 only
    ("204", BIG, None, None, "text/html", 204, False, False),
    ("304", b"", None, None, None, 304, False, False),
    ("filter-errordocs", BIG, None, {"filter-errordocs": "1"}, "text/html", 404, True, True),
])
def test_decisions_by_type(tmp_path, name, body, headers, env, ctype, status, encoded, vary):
    cfg = ld(tmp_path, BYTYPE)
    out = run(req(cfg, headers=headers, env=env), resp(body, ctype, status))
    assert (out.header("Content-Encoding") == "gzip") is encoded
    assert (out.header("Vary") is not None) is vary
    if encoded:
        assert gzip.decompress(out.body) == body


def test_already_encoded_is_left_alone(tmp_path):
    cfg = ld(tmp_path, "SetOutputFilter DEFLATE\n")
    out = run(req(cfg), resp(extra=[("Content-Encoding", "br")]))
    assert out.header("Content-Encoding") == "br" and out.header("Vary") is None
    r = req(cfg)
    r.content_encoding = "x-gzip"
    out = run(r, resp(ctype="application/gzip"))
    assert out.header("Content-Encoding") is None and out.body == BIG
    out = run(req(cfg), resp(extra=[("Content-Encoding", "identity")]))
    assert out.header("Content-Encoding") == "gzip"


def test_set_output_filter_any_type_but_not_error_pages(tmp_path):
    cfg = ld(tmp_path, "SetOutputFilter DEFLATE\n")
    assert run(req(cfg), resp(ctype="text/css")).header("Content-Encoding") == "gzip"
    assert run(req(cfg), resp(status=404)).header("Content-Encoding") == "gzip"
    page = resp(status=404)
    page.error_page = True              # built-in pages lose the content filters (ap_die)
    assert run(req(cfg), page).header("Content-Encoding") is None


def test_add_output_filter_by_extension(tmp_path):
    cfg = ld(tmp_path, "AddOutputFilter DEFLATE .css\n")
    r = req(cfg, "/docs/a.css")
    mime.type_checker(r)
    assert run(r, resp(ctype="text/css")).header("Content-Encoding") == "gzip"
    r = req(cfg, "/docs/a.html")
    mime.type_checker(r)
    assert run(r, resp()).header("Content-Encoding") is None


def test_nothing_without_the_modules(tmp_path):
    cfg = ld(tmp_path, BYTYPE, mods="LoadModule deflate_module x/mod_deflate.so\n")
    assert run(req(cfg), resp()).header("Content-Encoding") is None      # no mod_filter
    cfg = ld(tmp_path, "SetOutputFilter DEFLATE\n", mods="")
    assert run(req(cfg), resp()).header("Content-Encoding") is None      # no mod_deflate


def test_section_replaces_types_of_the_filter(tmp_path):
    d = tmp_path / "docs"
    cfg = ld(tmp_path, BYTYPE + f"<Directory {d}/css>\nAddOutputFilterByType DEFLATE text/css\n"
                                f"</Directory>\n")
    assert run(req(cfg, f"{d}/css/a"), resp(ctype="text/css")).header("Content-Encoding")
    assert run(req(cfg, f"{d}/css/a"), resp()).header("Content-Encoding") is None
    assert run(req(cfg, f"{d}/a"), resp()).header("Content-Encoding") == "gzip"


@pytest.mark.parametrize("alter, expected", [("AddSuffix", '"e-gzip"'), ("NoChange", '"e"'),
                                             ("Remove", None)])
def test_alter_etag(tmp_path, alter, expected):
    cfg = ld(tmp_path, f"SetOutputFilter DEFLATE\nDeflateAlterETag {alter}\n")
    assert run(req(cfg), resp(etag='"e"')).header("ETag") == expected


def test_etag_without_closing_quote_keeps_no_suffix(tmp_path):
    cfg = ld(tmp_path, "SetOutputFilter DEFLATE\n")
    out = run(req(cfg), resp(etag='"9-60dd;661d'))        # negotiated (Apache's own shape)
    assert out.header("ETag") == '"9-60dd;661d' and out.header("Content-Encoding") == "gzip"


def test_vary_merges_into_negotiation_vary(tmp_path):
    cfg = ld(tmp_path, "SetOutputFilter DEFLATE\n")
    out = run(req(cfg), resp(extra=[("Vary", "negotiate,accept-language")]))
    assert out.header("Vary") == "negotiate,accept-language,Accept-Encoding"


def file_body(tmp_path, data=BIG, name="f.html"):
    p = tmp_path / name
    p.write_bytes(data)
    fd = os.open(p, os.O_RDONLY)
    return p, fd


def test_file_body_compressed_once_and_cached(tmp_path):
    cfg = ld(tmp_path, "SetOutputFilter DEFLATE\n")
    p, fd = file_body(tmp_path)
    try:
        deflate.CACHE.entries.clear()
        hits = deflate.CACHE.hits
        for _ in range(3):
            out = run(req(cfg), resp(hooks.FileBody(fd, 0, len(BIG), str(p))))
            assert gzip.decompress(out.body) == BIG
        assert deflate.CACHE.hits == hits + 2 and len(deflate.CACHE.entries) == 1
        os.utime(p, ns=(1, 1))                      # a changed file is a new entry
        run(req(cfg), resp(hooks.FileBody(fd, 0, len(BIG), str(p))))
        assert len(deflate.CACHE.entries) == 2
    finally:
        os.close(fd)


def test_cache_is_bounded():
    c = deflate.GzipCache(max_bytes=100, max_entry=60)
    c.put("a", b"x" * 50)
    c.put("b", b"y" * 50)
    c.put("big", b"z" * 61)                         # too big for an entry
    assert list(c.entries) == ["a", "b"]
    c.get("a")
    c.put("c", b"w" * 10)
    assert list(c.entries) == ["a", "c"] and c.size == 60


def test_big_file_is_streamed(tmp_path, monkeypatch):
    monkeypatch.setattr(deflate, "WHOLE_FILE_LIMIT", 1000)
    cfg = ld(tmp_path, "SetOutputFilter DEFLATE\n")
    p, fd = file_body(tmp_path)
    try:
        out = run(req(cfg), resp(hooks.FileBody(fd, 0, len(BIG), str(p))))
        assert not isinstance(out.body, bytes)
        assert gzip.decompress(b"".join(out.body)) == BIG
    finally:
        os.close(fd)


def test_iterator_body(tmp_path):
    cfg = ld(tmp_path, "SetOutputFilter DEFLATE\n")
    out = run(req(cfg), resp(iter([BIG[:10], b"", BIG[10:]]),
                             extra=[("Content-Length", str(len(BIG)))]))
    assert out.header("Content-Length") is None
    assert gzip.decompress(b"".join(out.body)) == BIG


def test_range_is_a_range_of_the_gzip_stream(tmp_path):
    cfg = ld(tmp_path, BYTYPE)
    p, fd = file_body(tmp_path)
    whole = gzip_bytes(BIG)
    try:
        r = req(cfg, headers={"accept-encoding": "gzip", "range": "bytes=0-9"})
        out = run(r, resp(hooks.FileBody(fd, 0, 10, str(p)),
                          extra=[("Content-Range", f"bytes 0-9/{len(BIG)}")], status=206))
        assert (out.status, out.header("Content-Range"), out.body) == \
            (206, f"bytes 0-9/{len(whole)}", whole[:10])
        r = req(cfg, headers={"accept-encoding": "gzip", "range": "bytes=5000-6000"})
        out = run(r, resp(hooks.FileBody(fd, 5000, 10, str(p)),
                          extra=[("Content-Range", f"bytes 5000-5009/{len(BIG)}")],
                          status=206))
        assert (out.status, out.header("Content-Range")) == (416, f"bytes */{len(whole)}")
        r = req(cfg, headers={"range": "bytes=0-9"})         # no gzip: the plain range stays
        out = run(r, resp(hooks.FileBody(fd, 0, 10, str(p)),
                          extra=[("Content-Range", f"bytes 0-9/{len(BIG)}")], status=206))
        assert out.status == 206 and out.header("Content-Encoding") is None
        assert out.header("Vary") == "Accept-Encoding"
    finally:
        os.close(fd)


def test_head_gets_the_compressed_length(tmp_path):
    cfg = ld(tmp_path, BYTYPE)
    p, fd = file_body(tmp_path)
    try:
        out = run(req(cfg, method="HEAD"), resp(hooks.FileBody(fd, 0, len(BIG), str(p))))
        assert out.body == gzip_bytes(BIG)          # the pipeline sends its length, no body
    finally:
        os.close(fd)


def test_filter_notes(tmp_path):
    cfg = ld(tmp_path, "SetOutputFilter DEFLATE\nDeflateFilterNote Input in\n"
                       "DeflateFilterNote Output out\nDeflateFilterNote ratio\n")
    r = req(cfg)
    out = run(r, resp())
    assert r.notes["in"] == str(len(BIG)) and r.notes["out"] == str(len(out.body))
    assert r.notes["ratio"] == str(len(out.body) * 100 // len(BIG))


def test_settings_and_level(tmp_path):
    cfg = ld(tmp_path, "SetOutputFilter DEFLATE\nDeflateCompressionLevel 1\nDeflateMemLevel 8\n"
                       "DeflateWindowSize 9\nDeflateBufferSize 4096\n")
    s = cfg.main.mod(deflate.SETTINGS)
    assert (s.level, s.memlevel, s.window, s.buffer_size) == (1, 8, 9, 4096)
    out = run(req(cfg), resp())
    c = zlib.compressobj(1, zlib.DEFLATED, -9, 8)
    assert out.body[10:-8] == c.compress(BIG) + c.flush()


@pytest.mark.parametrize("line, msg", [
    ("DeflateCompressionLevel 0", "Compression Level must be between 1 and 9"),
    ("DeflateCompressionLevel x", "Compression Level must be between 1 and 9"),
    ("DeflateWindowSize 16", "DeflateWindowSize must be between 1 and 15"),
    ("DeflateMemLevel 10", "DeflateMemLevel must be between 1 and 9"),
    ("DeflateBufferSize 0", "DeflateBufferSize should be positive"),
    ("DeflateAlterETag Sometimes", "DeflateAlterETAG accepts only 'NoChange', 'AddSuffix', "
                                   "and 'Remove'"),
    ("DeflateFilterNote bogus n", "Unknown note type bogus"),
    ("<Directory />\nDeflateCompressionLevel 5\n</Directory>",
     "DeflateCompressionLevel not allowed in <Directory> context"),
    ("AddOutputFilterByType DEFLATE", "AddOutputFilterByType requires at least two arguments"),
    ("SetOutputFilter", "SetOutputFilter takes one argument"),
])
def test_directive_errors(tmp_path, line, msg):
    with pytest.raises(ConfigError) as e:
        ld(tmp_path, line + "\n")
    assert e.value.msg.startswith(msg)


def test_other_filters_are_listed(tmp_path):
    cfg = ld(tmp_path, "AddOutputFilterByType SUBSTITUTE;DEFLATE text/html\n"
                       "SetOutputFilter INCLUDES;DEFLATE\nDeflateInflateLimitRequestBody 10\n")
    names = [n for n, _ in cfg.ignored_directives]
    assert "AddOutputFilterByType SUBSTITUTE" in names and "SetOutputFilter INCLUDES" in names
    assert "DeflateInflateLimitRequestBody" in names
    assert dict(cfg.main.dir.mod(deflate.BYTYPE))["DEFLATE"] == ("text/html",)


def test_stock_deflate_conf(tmp_path):
    cfg = ld(tmp_path, "Include /etc/apache2/mods-available/deflate.conf\n")
    types = dict(cfg.main.dir.mod(deflate.BYTYPE))["DEFLATE"]
    assert "text/html" in types and "application/wasm" in types
    assert cfg.ignored_directives == ()
