"""mod_deflate's DEFLATE output filter, and how it is switched on: mod_filter's
AddOutputFilterByType, core's SetOutputFilter, mod_mime's AddOutputFilter (Apache 2.4, by
behaviour).  Active only when ``deflate_module`` is loaded (and, for AddOutputFilterByType,
``filter_module``).

Directives: DeflateCompressionLevel, DeflateWindowSize, DeflateMemLevel, DeflateBufferSize,
DeflateAlterETag, DeflateFilterNote (per server, as Apache: ``srv.deflate.*``);
DeflateInflate* are accepted (no input filter is built).  AddOutputFilterByType keeps, per
section, filter name -> media types (``dir.filter.bytype``; a section naming a filter again
replaces its types, as mod_filter's per-section providers do); SetOutputFilter is
``dir.deflate.set_filter``.

The output hook (``hooks.ORDER_CONTENT``) decides as deflate_out_filter does, in its order:
bodies of 68 bytes or less are left alone (and get no Vary), as are 204s, ``no-gzip``,
``gzip-only-text/html`` for other types, and bodies already Content-Encoded; then ``Vary:
Accept-Encoding`` is added; then the client must list ``gzip`` (q not 0) unless
``force-gzip``.  AddOutputFilterByType applies to 200 responses only (mod_filter), so 304s,
error pages and 206s are never compressed by it; a range of a compressed response is the range
of the gzip stream (Apache compresses before its byte-range filter).  The body becomes a gzip
member: Apache's 10-byte header (mtime 0, OS 3), raw deflate with Apache's parameters
(level 6, window 15, memLevel 9), CRC-32 and length, so the bytes equal Apache's.

A file body (``hooks.FileBody`` of the whole file) is compressed once per worker and kept in
a bounded cache (key: path, size, mtime_ns, inode and the zlib parameters); bigger files and
iterator bodies are compressed as they are sent (``zlib.compressobj``), never read whole.
"""
from __future__ import annotations

import os
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator

from httpd_py.config.dirconf import register
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.http.static import UNSATISFIABLE, parse_range
from httpd_py.modules.negotiation import get_token, merge_vary

SETTINGS = register("srv.deflate.settings")
BYTYPE = register("dir.filter.bytype", lambda base, new: _merge_bytype(base, new))
SET_FILTER = register("dir.deflate.set_filter")

GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
SMALL = 10 + 8 + 50              # gzip header + trailer + room for the headers it adds

ETAG_ADDSUFFIX, ETAG_NOCHANGE, ETAG_REMOVE = "addsuffix", "nochange", "remove"


@dataclass(frozen=True)
class DeflateSettings:
    level: int = -1                      # Z_DEFAULT_COMPRESSION
    window: int = 15
    memlevel: int = 9
    buffer_size: int = 8096
    etag: str = ETAG_ADDSUFFIX
    note_ratio: str | None = None
    note_input: str | None = None
    note_output: str | None = None


DEFAULT = DeflateSettings()


def _merge_bytype(base: tuple, new: tuple) -> tuple:
    out = dict(base)
    out.update(new)
    return tuple(sorted(out.items()))


# -- directives -------------------------------------------------------------------------------
def _settings(w) -> DeflateSettings:
    got = w.own(SETTINGS)
    if got is None and w.in_vhost:
        got = w.get(SETTINGS)
    return got if got is not None else DEFAULT


def _store(w, **changes) -> None:
    import dataclasses
    w.set(SETTINGS, dataclasses.replace(_settings(w), **changes))


def _c_atoi(text: str) -> int:
    """C's atoi: leading blanks, a sign, digits; anything else stops (Apache's parsing)."""
    s = text.lstrip()
    j = 1 if s[:1] in ("+", "-") and s[:1] else 0
    k = j
    while k < len(s) and "0" <= s[k] <= "9":
        k += 1
    return int(s[:k]) if k > j else 0


def _level(w, args):
    i = _c_atoi(args[0])
    if i < 1 or i > 9:
        raise ConfigError("Compression Level must be between 1 and 9")
    _store(w, level=i)


def _window(w, args):
    i = _c_atoi(args[0])
    if i < 1 or i > 15:
        raise ConfigError("DeflateWindowSize must be between 1 and 15")
    _store(w, window=i)


def _memlevel(w, args):
    i = _c_atoi(args[0])
    if i < 1 or i > 9:
        raise ConfigError("DeflateMemLevel must be between 1 and 9")
    _store(w, memlevel=i)


def _buffer_size(w, args):
    i = _c_atoi(args[0])
    if i <= 0:
        raise ConfigError("DeflateBufferSize should be positive")
    _store(w, buffer_size=i)


def _alter_etag(w, args):
    v = args[0].lower()
    if v not in (ETAG_ADDSUFFIX, ETAG_NOCHANGE, ETAG_REMOVE):
        raise ConfigError("DeflateAlterETAG accepts only 'NoChange', 'AddSuffix', and 'Remove'")
    _store(w, etag=v)


def _filter_note(w, args):
    if len(args) == 1:
        _store(w, note_ratio=args[0])
        return
    kind = args[0].lower()
    if kind not in ("ratio", "input", "output"):
        raise ConfigError(f"Unknown note type {args[0]}")
    _store(w, **{f"note_{kind}": args[1]})


def _inflate_limit(w, args):
    if not args[0].isdigit():
        raise ConfigError("DeflateInflateLimitRequestBody requires a non-negative integer.")


def _inflate_positive(w, args):
    if _c_atoi(args[0]) <= 0:
        raise ConfigError(f"{w.name} must be positive")


def _by_type(w, args):
    if len(args) < 2:           # mod_filter's own check (TAKE_ARGV), in its words
        raise ConfigError("AddOutputFilterByType requires at least two arguments")
    names = [n for n in args[0].split(";") if n]
    current = dict(w.own(BYTYPE) or ())
    for name in names:
        up = name.upper()
        if up != "DEFLATE":
            w.ignored.append((f"AddOutputFilterByType {name}", w.loc))
            continue
        current[up] = (*current.get(up, ()), *args[1:])
    w.set(BYTYPE, tuple(sorted(current.items())))


def _set_output_filter(w, args):
    names = tuple(n.upper() for n in args[0].split(";") if n)
    for n in names:
        if n != "DEFLATE":
            w.ignored.append((f"SetOutputFilter {n}", w.loc))
    w.set(SET_FILTER, names)


def rows():
    from httpd_py.config.directives.base import RAW, TAKE1, TAKE12, Directive as D
    M, F, C = "mod_deflate.c", "mod_filter.c", "core.c"
    return [
        D("DeflateCompressionLevel", M, "SV", TAKE1, "6 (zlib's default)", "zlib compression "
          "level, 1 (fast) to 9 (small)", _level, syntax="1-9"),
        D("DeflateWindowSize", M, "SV", TAKE1, "15", "zlib window size (log2 bytes)", _window,
          syntax="1-15"),
        D("DeflateMemLevel", M, "SV", TAKE1, "9", "zlib memory level", _memlevel,
          syntax="1-9"),
        D("DeflateBufferSize", M, "SV", TAKE1, "8096", "Bytes compressed at a time",
          _buffer_size, syntax="bytes"),
        D("DeflateAlterETag", M, "SV", TAKE1, "AddSuffix", "ETag of compressed responses: "
          "-gzip suffix, unchanged, or removed", _alter_etag,
          syntax="AddSuffix|NoChange|Remove"),
        D("DeflateFilterNote", M, "SV", TAKE12, "", "Request notes with the compression ratio, "
          "input and output sizes (for logging)", _filter_note,
          syntax="[ratio|input|output] notename"),
        D("DeflateInflateLimitRequestBody", M, "A", TAKE1, "", "Limit on inflated request "
          "bodies (accepted; no input filter is built)", _inflate_limit, used=False,
          syntax="bytes", override="any"),
        D("DeflateInflateRatioLimit", M, "A", TAKE1, "200", "Inflate ratio limit (accepted; "
          "no input filter is built)", _inflate_positive, used=False, syntax="ratio",
          override="any"),
        D("DeflateInflateRatioBurst", M, "A", TAKE1, "3", "Inflate ratio burst (accepted; "
          "no input filter is built)", _inflate_positive, used=False, syntax="count",
          override="any"),
        D("AddOutputFilterByType", F, "A", RAW, "", "Run an output filter (DEFLATE) on "
          "200 responses of these media types", _by_type,
          syntax="filter[;filter...] media-type ...", override="fileinfo"),
        D("SetOutputFilter", C, "A", TAKE1, "", "Run output filters (DEFLATE) on every "
          "response here", _set_output_filter, syntax="filter[;filter...]",
          override="fileinfo"),
    ]


# -- gzip ----------------------------------------------------------------------------------
def _compressor(s: DeflateSettings):
    return zlib.compressobj(s.level, zlib.DEFLATED, -s.window, s.memlevel,
                            zlib.Z_DEFAULT_STRATEGY)


def gzip_bytes(data: bytes, s: DeflateSettings = DEFAULT) -> bytes:
    """One gzip member as mod_deflate writes it."""
    c = _compressor(s)
    body = c.compress(data) + c.flush(zlib.Z_FINISH)
    return b"".join((GZIP_HEADER, body, (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little"),
                     (len(data) & 0xFFFFFFFF).to_bytes(4, "little")))


def gzip_stream(chunks, s: DeflateSettings = DEFAULT, counts: list | None = None
                ) -> Iterator[bytes]:
    """gzip of an iterator of bytes, produced as it is read (``counts`` gets [in, out])."""
    c = _compressor(s)
    crc = 0
    total = 0
    out = len(GZIP_HEADER)
    yield GZIP_HEADER
    try:
        for chunk in chunks:
            if not chunk:
                continue
            crc = zlib.crc32(chunk, crc)
            total += len(chunk)
            got = c.compress(chunk)
            if got:
                out += len(got)
                yield got
        tail = c.flush(zlib.Z_FINISH) + (crc & 0xFFFFFFFF).to_bytes(4, "little") + \
            (total & 0xFFFFFFFF).to_bytes(4, "little")
        out += len(tail)
        if counts is not None:
            counts[:] = [total, out]
        yield tail
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class GzipCache:
    """Compressed whole files, per worker: LRU, at most ``max_bytes`` in all, entries of at
    most ``max_entry`` bytes."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024, max_entry: int = 4 * 1024 * 1024):
        self.max_bytes = max_bytes
        self.max_entry = max_entry
        self.entries: OrderedDict = OrderedDict()
        self.size = 0
        self.hits = self.misses = 0

    def get(self, key) -> bytes | None:
        got = self.entries.get(key)
        if got is not None:
            self.entries.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
        return got

    def put(self, key, data: bytes) -> None:
        if len(data) > self.max_entry:
            return
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self.entries[key] = data
        self.size += len(data)
        while self.size > self.max_bytes and self.entries:
            _, dropped = self.entries.popitem(last=False)
            self.size -= len(dropped)


# HTTPD_PY_GZIP_CACHE=0 in the server's environment turns the cache off (scripts/bench_gzip.py
# measures compression per request with it)
CACHE = GzipCache(max_bytes=0 if os.environ.get("HTTPD_PY_GZIP_CACHE") == "0"
                  else 32 * 1024 * 1024)
#: files up to this size are compressed whole (and cached); bigger ones are streamed
WHOLE_FILE_LIMIT = 8 * 1024 * 1024


def _file_chunks(fd: int, offset: int, length: int, chunk: int) -> Iterator[bytes]:
    off, left = offset, length
    while left > 0:
        data = os.pread(fd, min(chunk, left), off)
        if not data:
            return
        off += len(data)
        left -= len(data)
        yield data


def compressed_file(body: hooks.FileBody, s: DeflateSettings) -> bytes | None:
    """The whole file of ``body`` gzipped, from the cache when it is there; None when the
    file is too big to hold (stream it instead)."""
    st = os.fstat(body.fd)
    if st.st_size > WHOLE_FILE_LIMIT:
        return None
    key = (body.path, st.st_size, st.st_mtime_ns, st.st_ino, s.level, s.window, s.memlevel)
    got = CACHE.get(key)
    if got is None:
        data = os.pread(body.fd, st.st_size, 0) if st.st_size else b""
        got = gzip_bytes(data, s)
        if body.path:
            CACHE.put(key, got)
    return got


# -- the decision ---------------------------------------------------------------------------
def accepts_gzip(value: str) -> bool:
    """mod_deflate's reading of Accept-Encoding: the first "gzip" token (case-insensitive;
    not x-gzip, not *), refused when its first parameter is q=0 (q=0, q=0.0 .. q=0.000)."""
    n = len(value)
    tok, i = get_token(value, 0, False)
    while tok and tok.lower() != "gzip":
        while i < n and value[i] == ";":        # parameters of another coding: skipped
            i += 1
            _, i = get_token(value, i, True)
        if i < n and value[i] == ",":
            i += 1
        if i < n:
            tok, i = get_token(value, i, False)
        else:
            tok = None
    if not tok:
        return False
    q = None
    if i < n:
        while i < n and value[i] == ";":
            i += 1
        q, i = get_token(value, i, True)
    if q and len(q) >= 3 and "q=0.000".startswith(q):
        return False
    return True


def _loaded(req) -> tuple[bool, bool]:
    server = req.server
    if server is None:
        return True, True
    got = _LOADED.get(id(server))
    if got is None or got[0] is not server:
        mods = server.loaded_modules
        got = (server, ("deflate_module" in mods, "filter_module" in mods))
        if len(_LOADED) > 16:
            _LOADED.clear()
        _LOADED[id(server)] = got
    return got[1]


_LOADED: dict[int, tuple] = {}


def _type_matches(ctype: str | None, types: tuple) -> bool:
    if not ctype:
        return False
    n = len(ctype)
    for sep in ";\t ":
        k = ctype.find(sep)
        if 0 <= k < n:
            n = k
    base = ctype[:n]
    return base in types


def _content_type(resp: hooks.Response) -> str | None:
    got = resp.header("Content-Type")
    return got if got is not None else resp.content_type


def _ranged_file(resp: hooks.Response) -> bool:
    """A 206 the static handler cut from a file: Apache's byte-range filter runs after
    DEFLATE, so the filter sees (and compresses) the whole 200 response."""
    return resp.status == 206 and isinstance(resp.body, hooks.FileBody) and \
        resp.header("Content-Range") is not None


def _wanted(req, resp: hooks.Response) -> bool:
    """Does a DEFLATE filter sit in this response's chain?"""
    conf = req.conf
    direct = False
    if conf is not None and conf.mods:
        sf = conf.mod(SET_FILTER)
        if sf and "DEFLATE" in sf:
            direct = True
    notes = req.notes
    if not direct and notes:
        mf = notes.get("mime.filters")
        if mf and any(f.upper() == "DEFLATE" for f in mf):
            direct = True
    if not direct:
        bt = conf.mod(BYTYPE) if conf is not None and conf.mods else None
        types = dict(bt).get("DEFLATE") if bt else None
        if not types or not _loaded(req)[1]:
            return False
        status = 200 if _ranged_file(resp) else resp.status
        if status != 200 and "filter-errordocs" not in req.env:
            return False
        if not _type_matches(_content_type(resp), types):
            return False
    return _loaded(req)[0]


def _body_length(resp: hooks.Response) -> int | None:
    b = resp.body
    if isinstance(b, hooks.FileBody):
        return b.length
    if isinstance(b, (bytes, bytearray, memoryview)):
        return len(b)
    cl = resp.header("Content-Length")
    if cl is not None and cl.isdigit():
        return int(cl)
    return None


def output(req: hooks.Request, resp: hooks.Response) -> hooks.Response:
    """hooks.OUTPUT at ORDER_CONTENT: mod_deflate's filter."""
    if resp.error_page or not _wanted(req, resp):
        return resp
    length = _body_length(resp)
    if _ranged_file(resp):
        size = resp.header("Content-Range").rpartition("/")[2]
        length = int(size) if size.isdigit() else None
    if length is not None and length <= SMALL:
        return resp
    env = req.env
    if resp.status == 204 or "no-gzip" in env:
        return resp
    ctype = _content_type(resp)
    if (ctype is None or not ctype.startswith("text/html")) and \
            env.get("gzip-only-text/html") == "1":
        return resp
    if resp.status == 206 and not _ranged_file(resp):
        return resp                 # a Content-Range the filter did not make: left alone
    enc = resp.header("Content-Encoding")
    if req.content_encoding and req.content_encoding != enc:
        enc = f"{enc},{req.content_encoding}" if enc else req.content_encoding
    if enc:
        for tok in (t.strip() for t in enc.split(",")):
            if tok and tok not in ("identity", "7bit", "8bit", "binary"):
                return resp
    merge_vary(resp.headers, ("Accept-Encoding",))
    if "force-gzip" not in env:
        ae = req.headers.get("accept-encoding")
        if ae is None or not accepts_gzip(ae):
            return resp
    return _compress(req, resp, enc)


def _compress(req, resp: hooks.Response, enc: str | None) -> hooks.Response:
    s = req.vhost.mod(SETTINGS, DEFAULT) if req.vhost is not None else DEFAULT
    body = resp.body
    content_range = resp.header("Content-Range") if _ranged_file(resp) else None
    if content_range is not None and isinstance(body, hooks.FileBody):
        size = content_range.rpartition("/")[2]
        if size.isdigit():
            body = hooks.FileBody(body.fd, 0, int(size), body.path)
    counts: list = []
    if isinstance(body, hooks.FileBody):
        whole = body.offset == 0 and body.length == os.fstat(body.fd).st_size
        data = compressed_file(body, s) if whole else None
        if data is None:
            new_body: Any = gzip_stream(_file_chunks(body.fd, body.offset, body.length,
                                                     max(s.buffer_size, 65536)), s, counts)
        else:
            new_body = data
            counts = [body.length, len(data)]
    elif isinstance(body, (bytes, bytearray, memoryview)):
        new_body = gzip_bytes(bytes(body), s)
        counts = [len(body), len(new_body)]
    else:
        new_body = gzip_stream(iter(body), s, counts)
    if not enc or enc.lower() == "identity":
        resp.set_header("Content-Encoding", "gzip")
    else:
        resp.set_header("Content-Encoding", f"{enc}, gzip")
    if req.content_encoding:
        req.content_encoding = resp.header("Content-Encoding")
    resp.remove_header("Content-Length")
    resp.remove_header("Content-MD5")
    if s.etag == ETAG_REMOVE:
        resp.remove_header("ETag")
    elif s.etag == ETAG_ADDSUFFIX:
        etag = resp.header("ETag")
        if etag and len(etag) > 2 and etag.endswith('"'):
            resp.set_header("ETag", etag[:-1] + '-gzip"')
    if content_range is not None:
        if not isinstance(new_body, bytes):
            new_body = b"".join(new_body)
        rng = parse_range(req.headers.get("range"), len(new_body))
        if rng == UNSATISFIABLE:
            resp.remove_header("Content-Range")
            resp.set_header("Content-Range", f"bytes */{len(new_body)}")
            resp.status = 416
            resp.body = b""
            return resp
        if rng is None:
            resp.status = 200
            resp.remove_header("Content-Range")
        else:
            first, last = rng
            resp.set_header("Content-Range", f"bytes {first}-{last}/{len(new_body)}")
            new_body = new_body[first:last + 1]
    resp.body = new_body
    _notes(req, s, counts)
    return resp


def _notes(req, s: DeflateSettings, counts: list) -> None:
    if not (s.note_ratio or s.note_input or s.note_output) or len(counts) != 2:
        return
    total_in, total_out = counts
    if s.note_input:
        req.notes[s.note_input] = str(total_in) if total_in > 0 else "-"
    if s.note_output:
        req.notes[s.note_output] = str(total_out) if total_out > 0 else "-"
    if s.note_ratio:
        req.notes[s.note_ratio] = str(total_out * 100 // total_in) if total_in > 0 else "-"


hooks.add_output(output, hooks.ORDER_CONTENT)


def _no_deflate(vhost, conf) -> bool:
    """No DEFLATE filter in conf's chain (SetOutputFilter, AddOutputFilterByType); a lane's
    requests get none by file name (AddOutputFilter is mod_mime's, for files)."""
    if not conf.mods:
        return True
    sf, bt = conf.mod(SET_FILTER), conf.mod(BYTYPE)
    return not (sf and "DEFLATE" in sf) and not (bt and dict(bt).get("DEFLATE"))


hooks.INERT[output] = _no_deflate
