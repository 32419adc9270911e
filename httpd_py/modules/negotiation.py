"""mod_negotiation: MultiViews and type maps (Apache 2.4's mod_negotiation.c, by behaviour).

Directives: LanguagePriority, ForceLanguagePriority (per directory, FileInfo), and
CacheNegotiatedDocs (per server).  Active only when ``negotiation_module`` is loaded.

Hooks (http/hooks.py):

* ``NEGOTIATE`` (``multiviews``): the requested file does not exist and Options MultiViews is
  on.  The directory is scanned for ``name.*``; each entry must pass the walk and access
  checks of a sub-request (``req.allowed``), gets mod_mime's answer under the request's
  per-directory configuration (``mime.resolve``), and is kept when every extension mod_mime
  did not recognise matches the requested name in order (MultiviewsMatch).  A type
  map among them replaces the scan.  Apache's server-driven algorithm (or RVSA/1.0 when the
  client sends ``Negotiate``) picks the variant; the hook returns its path (the pipeline walks
  and access-checks it), an error status (404 when names matched but none could be
  negotiated, 406 with the variant list in ``notes["variant-list"]``, 300 for transparent
  negotiation list responses), or a ``Response`` for a type map's inline body.
* ``HANDLERS["type-map"]``: a ``.var`` file (AddHandler type-map var) is parsed (cached per
  worker by path, size and mtime) and negotiated; a URI variant becomes an internal redirect
  to that URI, an inline ``Body:`` variant is answered directly (Debian's localized error
  pages are such maps).
* output (before mod_deflate): the structured ETag ``"<variant etag>;<variant-list
  validator>`` (Apache's, including its missing closing quote), ``Expires`` for negotiated
  type-map responses to HTTP/1.0 clients (CacheNegotiatedDocs Off), and mod_negotiation's
  fixup that spells Content-Encoding as the client did (gzip vs x-gzip).

Headers a negotiation adds go to ``req.err_headers_out`` as Apache's do (they survive internal
redirects and error pages): ``Vary`` (negotiate, accept, accept-language, accept-charset,
accept-encoding: the dimensions in which the variants differ, merged into one comma-joined
field), ``TCN``, ``Content-Location`` and, for list responses, ``Alternates``.

Quality values are computed in single precision, as Apache's floats, so that ties fall the
same way.  Between requests only the parsed type maps are kept; the directory scan is redone
per request, as Apache does.
"""
from __future__ import annotations

import os
import stat
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from httpd_py.config.dirconf import register
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.log import error_log
from httpd_py.modules import mime

LANGUAGE_PRIORITY = register("dir.negotiation.language_priority")
FORCE_PRIORITY = register("dir.negotiation.force_priority")
CACHE_NEGOTIATED = register("srv.negotiation.cache_negotiated_docs")

FLP_NONE, FLP_PREFER, FLP_FALLBACK = 1, 2, 4
FLP_DEFAULT = FLP_PREFER

MAP_FILE_MAGIC_TYPE = "application/x-type-map"
CGI_MAGIC_TYPE = "application/x-httpd-cgi"
INCLUDES_MAGIC_TYPE = "text/x-server-parsed-html"
INCLUDES_MAGIC_TYPE3 = "text/x-server-parsed-html3"
HTTP_VARIANT_ALSO_VARIES = 506


def f32(x: float) -> float:
    """``x`` rounded to a C float (Apache keeps every quality in one)."""
    return struct.unpack("f", struct.pack("f", x))[0]


Q_STAR, Q_TYPE_STAR = f32(0.01), f32(0.02)
Q_NO_LANG, Q_FIDDLE, Q_FALLBACK = f32(0.0001), f32(0.001), f32(0.0001)
Q_CGI_LOW = f32(0.001)


# -- directives -------------------------------------------------------------------------------
def _language_priority(w, args):
    w.set(LANGUAGE_PRIORITY, (*(w.own(LANGUAGE_PRIORITY) or ()), *args))


def _force_priority(w, args):
    flags = w.own(FORCE_PRIORITY) or 0
    for a in args:
        word = a.lower()
        if word == "none":
            if flags & ~FLP_NONE:
                raise ConfigError("Cannot combine ForceLanguagePriority options with None")
            flags = FLP_NONE
        elif word == "prefer":
            if flags & FLP_NONE:
                raise ConfigError("Cannot combine ForceLanguagePriority options None and Prefer")
            flags |= FLP_PREFER
        elif word == "fallback":
            if flags & FLP_NONE:
                raise ConfigError("Cannot combine ForceLanguagePriority options None and "
                                  "Fallback")
            flags |= FLP_FALLBACK
        else:
            raise ConfigError(f"Invalid ForceLanguagePriority option {a}")
    w.set(FORCE_PRIORITY, flags)


def _cache_negotiated(w, args):
    from httpd_py.config import values
    w.set(CACHE_NEGOTIATED, values.flag(args[0], w.name))


def rows():
    from httpd_py.config.directives.base import FLAG, ITERATE, Directive as D
    N = "mod_negotiation.c"
    return [
        D("LanguagePriority", N, "A", ITERATE, "", "Languages to prefer when the client does "
          "not decide", _language_priority, syntax="language-tag ...", override="fileinfo"),
        D("ForceLanguagePriority", N, "A", ITERATE, "Prefer", "Use LanguagePriority to break "
          "ties (Prefer) and instead of 406 (Fallback)", _force_priority,
          syntax="None|Prefer|Fallback [Prefer|Fallback]", override="fileinfo"),
        D("CacheNegotiatedDocs", N, "SV", FLAG, "Off", "Let HTTP/1.0 caches keep negotiated "
          "type-map responses (no Expires)", _cache_negotiated),
    ]


# -- reading Accept* headers --------------------------------------------------------------------
def get_token(s: str, i: int, accept_white: bool) -> tuple[str, int]:
    """ap_get_token: a token (quoted strings kept whole) from ``s[i:]``; blanks around it
    skipped; stops at ';' and ',' (and blanks unless ``accept_white``)."""
    n = len(s)
    while i < n and s[i].isspace():
        i += 1
    start = i
    while i < n and (accept_white or not s[i].isspace()) and s[i] not in ";,":
        c = s[i]
        i += 1
        if c == '"':
            while i < n:
                c = s[i]
                i += 1
                if c == '"':
                    break
    tok = s[start:i]
    while i < n and s[i].isspace():
        i += 1
    return tok, i


def atoq(s: str) -> float:
    """A q-value as Apache reads it: "0.xyz" (three digits at most), ".5"; anything not
    starting with 0 or '.' is 1."""
    if not s:
        return 1.0
    s = s.lstrip()
    j = 0
    if not s or s[0] != ".":
        if not s or s[0] != "0":
            return 1.0
        j = 1
    if j < len(s) and s[j] == ".":
        v = 0
        d = s[j + 1:j + 4]
        if d[:1].isdigit() and d[:1].isascii():
            v += int(d[0]) * 100
            if d[1:2].isdigit() and d[1:2].isascii():
                v += int(d[1]) * 10
                if "1" <= d[2:3] <= "9":
                    v += int(d[2])
        return f32(v / 1000)
    return 0.0


def _atoi(s: str) -> int:
    s = s.lstrip()
    j = 0
    if s[:1] in "+-" and s[:1]:
        j = 1
    k = j
    while k < len(s) and "0" <= s[k] <= "9":
        k += 1
    if k == j:
        return 0
    return int(s[:k])


@dataclass
class AcceptRec:
    name: str
    quality: float = 1.0
    level: float = 0.0
    charset: str = ""


def get_entry(line: str, i: int = 0) -> tuple[AcceptRec, int]:
    """One media range (or language, charset, encoding) and its parameters."""
    name, i = get_token(line, i, False)
    rec = AcceptRec(name.lower())
    if rec.name == "text/html" or rec.name == INCLUDES_MAGIC_TYPE:
        rec.level = 2.0
    elif rec.name == INCLUDES_MAGIC_TYPE3:
        rec.level = 3.0
    n = len(line)
    while i < n and line[i] == ";":
        i += 1
        parm, i = get_token(line, i, True)
        cp = 0
        while cp < len(parm) and not parm[cp].isspace() and parm[cp] != "=":
            cp += 1
        if cp >= len(parm):
            continue
        var = parm[:cp].lower()
        rest = parm[cp + 1:]
        k = 0
        while k < len(rest) and (rest[k].isspace() or rest[k] == "="):
            k += 1
        rest = rest[k:]
        if rest.startswith('"'):
            rest = rest[1:]
            end = 0
            while end < len(rest) and rest[end] not in '\n\r"':
                end += 1
        else:
            end = 0
            while end < len(rest) and not rest[end].isspace():
                end += 1
        value = rest[:end].lower()
        if var in ("q", "qs"):
            rec.quality = atoq(value)
        elif var == "level":
            rec.level = float(_atoi(value))
        elif var == "charset":
            rec.charset = value
    if i < n and line[i] == ",":
        i += 1
    return rec, i


def header_line(value: str | None) -> list[AcceptRec] | None:
    """do_header_line: every entry of an Accept* header (None when the header is absent; an
    empty header is an empty list)."""
    if value is None:
        return None
    out = []
    i, n = 0, len(value)
    while i < n:
        rec, j = get_entry(value, i)
        out.append(rec)
        if j <= i:          # nothing consumed (cannot happen with ap_get_token's rules)
            break
        i = j
    return out


# -- variants -------------------------------------------------------------------------------
@dataclass(frozen=True)
class VariantSpec:
    """A variant as a type map or a directory scan describes it."""
    file_name: str
    mime_type: str = ""
    source_quality: float = 0.0
    level: float = 0.0
    charset: str = ""
    encoding: str | None = None
    languages: tuple | None = None
    description: str = ""
    body: int = 0                   # offset of an inline body in the map (0: none)
    bytes: int = -1                 # length when known (Content-Length, a body, a stat)
    has_handler: bool = False       # the file has a handler (AddHandler): no {length}
    path: str = ""                  # the variant's file (directory scans)


@dataclass
class Variant:
    spec: VariantSpec
    lang_quality: float = 1.0
    encoding_quality: float = 1.0
    charset_quality: float = 1.0
    mime_type_quality: float = 1.0
    lang_index: int = -1
    level_matched: float = 0.0
    mime_stars: int = 0
    definite: bool = True
    bytes: int = -1

    @property
    def is_pseudo_html(self) -> bool:
        t = self.spec.mime_type
        return t == "text/html" or t == INCLUDES_MAGIC_TYPE or t == INCLUDES_MAGIC_TYPE3


def _spec_from_type(file_name: str, ctype: str, **kw) -> VariantSpec:
    rec, _ = get_entry(ctype)
    return VariantSpec(file_name, rec.name, rec.quality, rec.level, rec.charset, **kw)


# -- type maps --------------------------------------------------------------------------------
class MapError(Exception):
    pass


def _strip_paren_comments(s: str) -> str:
    out = list(s)
    i, n = 0, len(out)
    while i < n:
        c = out[i]
        if c == '"':
            j = s.find('"', i + 1)
            if j < 0:
                return "".join(out)
            i = j + 1
        elif c == "(":
            while i < n and out[i] != ")":
                out[i] = " "
                i += 1
            if i < n:
                out[i] = " "
                i += 1
        else:
            i += 1
    return "".join(out)


def _languages(body: str) -> tuple:
    langs = []
    i, n = 0, len(body)
    while i < n:
        tok, i = get_token(body, i, False)
        langs.append(tok.lower())
        if i < n and body[i] in ",;":
            i += 1
        elif i < n and not tok:
            i += 1
    return tuple(langs)


MAX_STRING_LEN = 8192


def parse_type_map(data: bytes, map_name: str, log=None) -> list[VariantSpec]:
    """read_type_map over a type map's bytes: RFC 822-style records separated by blank lines;
    '#' lines are comments; a line starting with blanks continues the previous one;
    ``Body:tag`` records carry their content inline up to the closing tag.  A record needs a
    URI (or a body) and one of Content-Type/-Length/-Language/-Encoding.  Raises MapError for
    a header without ':' or without a value (Apache's 500)."""
    text = data.decode("latin-1")
    pos, n = 0, len(text)
    variants: list[VariantSpec] = []
    cur: dict[str, Any] = {}
    has_content = False

    def gets() -> str | None:
        nonlocal pos
        if pos >= n:
            return None
        end = text.find("\n", pos)
        end = n if end < 0 else end + 1
        if end - pos > MAX_STRING_LEN - 1:
            end = pos + MAX_STRING_LEN - 1
        line = text[pos:end]
        pos = end
        return line

    while True:
        # get_header_line
        line = gets()
        while line is not None and line.startswith("#"):
            line = gets()
        if line is None:
            state = "eof"
        elif not line.strip():
            state = "sep"
        else:
            state = "seen"
            if line[:5].lower() != "body:":
                while pos < n:
                    c = text[pos]
                    if c == "#":
                        end = text.find("\n", pos)
                        pos = n if end < 0 else end + 1
                        continue
                    if c.isspace():
                        while pos < n and text[pos] != "\n" and text[pos].isspace():
                            pos += 1
                        if pos >= n or text[pos] == "\n":
                            break           # a blank line follows: this header is complete
                        end = text.find("\n", pos)
                        end = n if end < 0 else end
                        line += text[pos:end] + "\n"
                        pos = end + 1 if end < n else n
                        continue
                    break
        if state == "seen":
            colon = line.find(":")
            if colon < 0:
                raise MapError(f"Syntax error in type map, no ':' in {map_name} for header "
                               f"{line.rstrip()}")
            hname = line[:colon].lower()
            k = colon + 1
            while k < len(line) and line[k].isspace():
                k += 1
            if k >= len(line):
                raise MapError(f"Syntax error in type map --- no header body: {map_name} for "
                               f"{line.rstrip()}")
            body = _strip_paren_comments(line[k:])
            if hname == "uri":
                cur["file_name"] = get_token(body, 0, False)[0]
            elif hname == "content-type":
                rec, _ = get_entry(body)
                cur.update(mime_type=rec.name, source_quality=rec.quality, level=rec.level,
                           charset=rec.charset)
                has_content = True
            elif hname == "content-length":
                tok = get_token(body, 0, False)[0]
                if not tok.isdigit() or not tok.isascii():
                    if log:
                        log(f"Parse error in type map, Content-Length: '{tok}' in {map_name} "
                            f"is invalid.")
                    break
                cur["bytes"] = int(tok)
                has_content = True
            elif hname == "content-language":
                cur["languages"] = _languages(body)
                has_content = True
            elif hname == "content-encoding":
                cur["encoding"] = get_token(body, 0, False)[0]
                has_content = True
            elif hname == "description":
                desc = body.replace("\n", " ")
                cur["description"] = desc[:-1] if desc else desc
            elif hname == "body":
                tag = body.rstrip()
                chunk = text[pos:pos + MAX_STRING_LEN - 1]
                at = chunk.find(tag) if tag else 0
                if at < 0 or not tag:
                    if log:
                        log(f"Syntax error in type map, no end tag '{tag}' found in {map_name} "
                            f"for Body: content.")
                    break
                after = at + len(tag)
                nl = chunk.find("\n", after)
                after = len(chunk) if nl < 0 else nl + 1
                cur["body"] = pos
                cur["bytes"] = at
                cur["file_name"] = map_name
                pos += after
        else:
            if cur.get("file_name") and has_content:
                variants.append(VariantSpec(**cur))
            cur = {}
            has_content = False
            if state == "eof":
                break
    return variants


_MAPS: dict[str, tuple[tuple, list[VariantSpec], bytes | None]] = {}
_MAPS_MAX = 256


def read_map(path: str, log=None) -> tuple[list[VariantSpec], os.stat_result, bytes]:
    """The parsed type map at ``path`` (cached per process by path, size and mtime)."""
    st = os.stat(path)
    key = (st.st_size, st.st_mtime_ns, st.st_ino)
    got = _MAPS.get(path)
    if got is not None and got[0] == key:
        return got[1], st, got[2]
    with open(path, "rb") as f:
        data = f.read(16 * 1024 * 1024)
    variants = parse_type_map(data, os.path.basename(path), log)
    if len(_MAPS) >= _MAPS_MAX:
        _MAPS.clear()
    _MAPS[path] = (key, variants, data)
    return variants, st, data


# -- the negotiation --------------------------------------------------------------------------
@dataclass
class Neg:
    """negotiation_state: the client's preferences, the variants and the algorithm's knobs."""
    accepts: list | None
    accept_encodings: list | None
    accept_langs: list | None
    accept_charsets: list | None
    language_priority: tuple | None
    force: int
    env: dict
    variants: list = field(default_factory=list)
    accept_q: bool = False
    default_lang_quality: float = 1.0
    count_multiviews_variants: int = 0
    is_transparent: bool = False
    dont_fiddle_headers: bool = False
    ua_supports_trans: bool = False
    send_alternates: bool = False
    may_choose: bool = True
    use_rvsa: bool = False
    dir_name: str = ""


def parse_accept_headers(req: hooks.Request) -> Neg:
    h = req.headers
    conf = req.conf
    lp = conf.mod(LANGUAGE_PRIORITY) if conf is not None else None
    force = (conf.mod(FORCE_PRIORITY) if conf is not None else None) or 0
    neg = Neg(header_line(h.get("accept")), header_line(h.get("accept-encoding")),
              header_line(h.get("accept-language")), header_line(h.get("accept-charset")),
              lp, force, req.env)
    if neg.accepts:
        neg.accept_q = any(a.quality < 1.0 for a in neg.accepts)
    return neg


def parse_negotiate_header(req: hooks.Request, neg: Neg) -> None:
    negotiate = req.headers.get("negotiate")
    neg.ua_supports_trans = neg.send_alternates = neg.use_rvsa = False
    neg.dont_fiddle_headers = False
    neg.may_choose = True
    if negotiate is None:
        return
    if negotiate == "trans":
        ua = req.headers.get("user-agent", "")
        if ua.startswith("Lynx"):
            return
    neg.may_choose = False
    for tok in _list_items(negotiate):
        if tok in ("trans", "vlist", "guess-small") or tok[:1].isdigit() or tok == "*":
            neg.ua_supports_trans = True
            neg.send_alternates = True
            if tok == "1.0":
                neg.may_choose = neg.use_rvsa = neg.dont_fiddle_headers = True
            elif tok.startswith("*"):
                neg.may_choose = neg.dont_fiddle_headers = True


def _list_items(value: str) -> list[str]:
    """ap_get_list_item: comma-separated items, blanks collapsed, lower-cased outside
    quotes."""
    out = []
    for part in value.split(","):
        item = " ".join(part.split())
        if item:
            out.append(item.lower())
    return out


def maybe_add_default_accepts(neg: Neg, prefer_scripts: bool) -> None:
    if neg.accepts is None:
        neg.accepts = [AcceptRec("*/*", 1.0, 0.0)]
    q = 0.0 if neg.use_rvsa else (2.0 if prefer_scripts else Q_CGI_LOW)
    neg.accepts.append(AcceptRec(CGI_MAGIC_TYPE, q, 0.0))


def mime_match(accept: AcceptRec, v: Variant) -> bool:
    at = accept.name
    avail = v.spec.mime_type
    if at == "*" or at == "*/*":
        if v.mime_stars < 1:
            v.mime_stars = 1
        return True
    n = len(at)
    if n > 2 and at.endswith("/*") and avail.startswith(at[:-1]):
        if v.mime_stars < 2:
            v.mime_stars = 2
        return True
    if at == avail or (at == "text/html" and avail in (INCLUDES_MAGIC_TYPE, INCLUDES_MAGIC_TYPE3)):
        if accept.level >= v.spec.level:
            v.level_matched = v.spec.level
            v.mime_stars = 3
            return True
    return False


def level_cmp(a: Variant, b: Variant) -> int:
    if a.is_pseudo_html and not b.is_pseudo_html:
        return 0
    if not a.is_pseudo_html and a.spec.mime_type != b.spec.mime_type:
        return 0
    if a.level_matched > b.level_matched:
        return 1
    if a.level_matched < b.level_matched:
        return -1
    if a.spec.level < b.spec.level:
        return 1
    if a.spec.level > b.spec.level:
        return -1
    return 0


def _find_lang_index(priority: tuple | None, lang: str) -> int:
    if not lang or not priority:
        return -1
    ll = lang.lower()
    for i, p in enumerate(priority):
        if ll.startswith(p.lower()):
            return i
    return -1


def set_default_lang_quality(neg: Neg) -> None:
    if not neg.dont_fiddle_headers:
        for v in neg.variants:
            if v.spec.languages:
                neg.default_lang_quality = Q_NO_LANG
                return
    neg.default_lang_quality = 1.0


def set_language_quality(neg: Neg, v: Variant) -> None:
    force = neg.force or FLP_DEFAULT
    langs = v.spec.languages
    if not langs:
        if not neg.dont_fiddle_headers:
            v.lang_quality = neg.default_lang_quality
        return
    if neg.accept_langs is None:
        v.definite = False
    else:
        best = star = None
        fiddle_q = 0.0
        any_match_on_star = False
        for lang in langs:
            bestthistag = None
            longest = 0
            for acc in neg.accept_langs:
                if acc.name == "*":
                    if star is None:
                        star = acc
                    continue
                alen = len(acc.name)
                if len(lang) >= alen and lang.startswith(acc.name) and \
                        (len(lang) == alen or lang[alen] == "-"):
                    if alen > longest:
                        longest = alen
                        bestthistag = acc
                if bestthistag is None and not neg.dont_fiddle_headers:
                    p = acc.name.find("-")
                    if p >= 0 and lang.startswith(acc.name[:p]):
                        fiddle_q = Q_FIDDLE
            if best is None or (bestthistag is not None and bestthistag.quality > best.quality):
                best = bestthistag
            if bestthistag is None and star is not None:
                any_match_on_star = True
        if any_match_on_star and ((best is not None and star.quality > best.quality)
                                  or best is None):
            best = star
            v.definite = False
        v.lang_quality = best.quality if best is not None else fiddle_q
    if (force & FLP_PREFER and v.lang_index < 0) or (force & FLP_FALLBACK and not v.lang_quality):
        bestidx = -1
        for lang in langs:
            idx = _find_lang_index(neg.language_priority, lang)
            if idx >= 0 and (bestidx == -1 or idx < bestidx):
                bestidx = idx
        if bestidx >= 0:
            if v.lang_quality:
                if force & FLP_PREFER:
                    v.lang_index = bestidx
            elif force & FLP_FALLBACK:
                v.lang_index = bestidx
                v.lang_quality = Q_FALLBACK
                v.definite = False


def find_content_length(neg: Neg, v: Variant) -> int:
    if v.bytes < 0:
        if v.spec.bytes >= 0:
            v.bytes = v.spec.bytes
        else:
            try:
                v.bytes = os.stat(v.spec.path or os.path.join(neg.dir_name,
                                                               v.spec.file_name)).st_size
            except OSError:
                pass
    return v.bytes


def set_accept_quality(neg: Neg, v: Variant) -> None:
    if neg.accepts is None:
        if v.spec.mime_type:
            v.definite = False
        return
    q = 0.0
    q_definite = True
    for acc in neg.accepts:
        prev = v.mime_stars
        if not mime_match(acc, v):
            continue
        if prev == v.mime_stars:
            continue
        if not neg.dont_fiddle_headers and not neg.accept_q and v.mime_stars == 1:
            q = Q_STAR
        elif not neg.dont_fiddle_headers and not neg.accept_q and v.mime_stars == 2:
            q = Q_TYPE_STAR
        else:
            q = acc.quality
        q_definite = v.mime_stars == 3
    v.mime_type_quality = q
    v.definite = v.definite and q_definite


def set_charset_quality(neg: Neg, v: Variant) -> None:
    charset = v.spec.charset
    if neg.accept_charsets is None:
        if charset:
            v.definite = False
        return
    if not charset:
        t = v.spec.mime_type
        if not (t.startswith("text/") or t in (INCLUDES_MAGIC_TYPE, INCLUDES_MAGIC_TYPE3)):
            return
        if neg.dont_fiddle_headers:
            return
        charset = "iso-8859-1"
    star = None
    for acc in neg.accept_charsets:
        if acc.name == charset:
            v.charset_quality = acc.quality
            return
        if acc.name == "*":
            star = acc
    if star is not None:
        v.charset_quality = star.quality
        v.definite = False
        return
    v.charset_quality = 1.0 if charset == "iso-8859-1" else 0.0


def is_identity_encoding(enc: str | None) -> bool:
    return not enc or enc in ("7bit", "8bit", "binary")


def set_encoding_quality(neg: Neg, v: Variant) -> None:
    enc = v.spec.encoding
    if neg.accept_encodings is None:
        v.encoding_quality = 1.0 if is_identity_encoding(enc) else f32(0.5)
        return
    value_if_not_found = 0.0
    if is_identity_encoding(enc):
        enc = "identity"
        value_if_not_found = Q_NO_LANG
    if enc.startswith("x-"):
        enc = enc[2:]
    star = None
    for acc in neg.accept_encodings:
        name = acc.name[2:] if acc.name.startswith("x-") else acc.name
        if name == enc:
            v.encoding_quality = acc.quality
            return
        if name == "*":
            star = acc
    if star is not None:
        v.encoding_quality = star.quality
        return
    v.encoding_quality = value_if_not_found


def is_variant_better_rvsa(neg: Neg, v: Variant, best: Variant | None, bestq: float):
    if v.encoding_quality == 0.0:
        return False, bestq
    q = f32(f32(f32(v.mime_type_quality * v.spec.source_quality) * v.charset_quality)
            * v.lang_quality)
    if q <= 0.0:
        return False, bestq
    if q > bestq:
        return True, q
    if q == bestq and best is not None and v.encoding_quality > best.encoding_quality:
        return True, q
    return False, bestq


def is_variant_better(neg: Neg, v: Variant, best: Variant | None, bestq: float):
    if (v.encoding_quality == 0.0 or v.lang_quality == 0.0 or v.spec.source_quality == 0.0
            or v.charset_quality == 0.0 or v.mime_type_quality == 0.0):
        return False, bestq
    q = f32(v.mime_type_quality * v.spec.source_quality)
    if q == 0.0 or q < bestq:
        return False, bestq
    if q > bestq or best is None:
        return True, q
    if v.lang_quality < best.lang_quality:
        return False, bestq
    if v.lang_quality > best.lang_quality:
        return True, q
    if best.lang_index != -1 and (v.lang_index == -1 or v.lang_index > best.lang_index):
        return False, bestq
    if v.lang_index != -1 and (best.lang_index == -1 or v.lang_index < best.lang_index):
        return True, q
    lc = level_cmp(v, best)
    if lc == -1:
        return False, bestq
    if lc == 1:
        return True, q
    if v.charset_quality < best.charset_quality:
        return False, bestq
    vc, bc = v.spec.charset, best.spec.charset
    if v.charset_quality > best.charset_quality or (
            vc and vc != "iso-8859-1" and (not bc or bc == "iso-8859-1")):
        return True, q
    if v.encoding_quality < best.encoding_quality:
        return False, bestq
    if v.encoding_quality > best.encoding_quality:
        return True, q
    if find_content_length(neg, v) >= find_content_length(neg, best):
        return False, bestq
    return True, q


def _discard_by_env(v: Variant, discard: int) -> bool:
    enc = v.spec.encoding
    if is_identity_encoding(enc) or enc == "identity":
        return False
    return discard == 1 or (discard == 2 and not v.spec.mime_type.startswith("text/html"))


def best_match(neg: Neg) -> tuple[bool, Variant | None]:
    """(a choice was made, the best variant): Apache's algorithm, or RVSA/1.0."""
    preferred = neg.env.get("prefer-language")
    may_discard = 0
    if "no-gzip" in neg.env:
        may_discard = 1
    elif neg.env.get("gzip-only-text/html") == "1":
        may_discard = 2
    set_default_lang_quality(neg)
    while True:
        best = None
        bestq = 0.0
        for v in neg.variants:
            if may_discard and _discard_by_env(v, may_discard):
                continue
            if preferred and not (v.spec.languages and preferred in v.spec.languages):
                continue
            set_accept_quality(neg, v)
            if preferred:
                v.lang_quality = 1.0
                v.definite = True
            else:
                set_language_quality(neg, v)
            set_encoding_quality(neg, v)
            set_charset_quality(neg, v)
            if neg.may_choose:
                better, bestq = (is_variant_better_rvsa if neg.use_rvsa else is_variant_better)(
                    neg, v, best, bestq)
                if better:
                    best = v
        if neg.use_rvsa:
            choice = best is not None and best.definite and bestq > 0
        else:
            choice = bestq > 0
        if preferred and (best is None or not choice):
            preferred = None
            continue
        return choice, best


_PATH_SEGMENT_SAFE = frozenset("$-_.+!*'(),:@&=~")
_OS_PATH_SAFE = frozenset("$-_.+!*'(),:;@&=/~")


def _escape(s: str, safe: frozenset) -> str:
    out = []
    for b in s.encode("utf-8", "surrogateescape"):
        c = chr(b)
        if (c.isascii() and c.isalnum()) or c in safe:
            out.append(c)
        else:
            out.append(f"%{b:02x}")
    return "".join(out)


def escape_path_segment(s: str) -> str:
    return _escape(s, _PATH_SEGMENT_SAFE)


def escape_uri(s: str) -> str:
    return _escape(s, _OS_PATH_SAFE)


def escape_html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"',
                                                                                  "&quot;")


def _qstr(q: float) -> str:
    s = list("%1.3f" % q)
    if len(s) >= 5 and s[4] == "0":
        s = s[:4]
        if s[3] == "0":
            s = s[:3]
            if s[2] == "0":
                s = s[:1]
    return "".join(s)


def set_neg_headers(req: hooks.Request, neg: Neg, choice: bool) -> None:
    """Vary (and Alternates, TCN) into err_headers_out, as set_neg_headers."""
    vary_type = vary_lang = vary_charset = vary_enc = False
    first = None
    alts = []
    for v in neg.variants:
        lang = ",".join(v.spec.languages) if v.spec.languages else None
        sample = (v.spec.mime_type or "", v.spec.charset or "", lang or "", v.spec.encoding or "")
        if first is None:
            first = sample
        else:
            vary_type = vary_type or sample[0] != first[0]
            vary_charset = vary_charset or sample[1] != first[1]
            vary_lang = vary_lang or sample[2] != first[2]
            vary_enc = vary_enc or sample[3] != first[3]
        if not neg.send_alternates:
            continue
        a = '{"' + escape_path_segment(v.spec.file_name) + '" ' + _qstr(v.spec.source_quality)
        if v.spec.mime_type:
            a += " {type " + v.spec.mime_type + "}"
        if v.spec.charset:
            a += " {charset " + v.spec.charset + "}"
        if lang:
            a += " {language " + lang + "}"
        if v.spec.encoding:
            a += " {encoding " + v.spec.encoding + "}"
        if not v.spec.has_handler:
            n = find_content_length(neg, v)
            if n >= 0:
                a += " {length %d}" % n
        alts.append(a + "}")
    eh = req.err_headers_out
    if neg.send_alternates and neg.variants:
        _merge_header(eh, "Alternates", ", ".join(alts))
    tokens = [t for t, on in (("negotiate", neg.is_transparent), ("accept", vary_type),
                              ("accept-language", vary_lang), ("accept-charset", vary_charset),
                              ("accept-encoding", vary_enc)) if on]
    if tokens:
        merge_vary(eh, tokens)
    if neg.is_transparent:
        _set_header(eh, "TCN", "choice" if choice else "list")


def _merge_header(headers: list, name: str, value: str) -> None:
    lname = name.lower()
    for i, (n, v) in enumerate(headers):
        if n.lower() == lname:
            headers[i] = (n, f"{v}, {value}")
            return
    headers.append((name, value))


def _set_header(headers: list, name: str, value: str) -> None:
    lname = name.lower()
    headers[:] = [(n, v) for n, v in headers if n.lower() != lname]
    headers.append((name, value))


def merge_vary(headers: list, tokens) -> None:
    """Add ``tokens`` to the Vary field of ``headers`` (a list of (name, value)), as one field
    of unique tokens joined by ',' (Apache's fixup_vary), in place."""
    values = []
    seen = set()
    at = None
    keep = []
    for n, v in headers:
        if n.lower() == "vary":
            if at is None:
                at = len(keep)
            for t in v.split(","):
                t = t.strip()
                if t and t.lower() not in seen:
                    seen.add(t.lower())
                    values.append(t)
        else:
            keep.append((n, v))
    for t in tokens:
        if t.lower() not in seen:
            seen.add(t.lower())
            values.append(t)
    if at is None:
        at = len(keep)
    keep.insert(at, ("Vary", ",".join(values)))
    headers[:] = keep


def make_variant_list(neg: Neg) -> str:
    out = ["Available variants:\n<ul>\n"]
    for v in neg.variants:
        s = v.spec
        name = s.file_name or ""
        out.append(f'<li><a href="{escape_path_segment(name)}">{escape_html(name)}</a> '
                   f'{s.description or ""}')
        if s.mime_type:
            out.append(f", type {s.mime_type}")
        if s.languages:
            out.append(", language " + ",".join(s.languages))
        if s.charset:
            out.append(f", charset {s.charset}")
        if s.encoding is not None:
            out.append(f", encoding {s.encoding}")
        out.append("</li>\n")
    out.append("</ul>\n")
    return "".join(out)


def _vlist_validator(path_stat: os.stat_result | None, now: float, nofile_mtime: int = 0) -> str:
    """ap_make_etag of the variant list's source: the type map's own ETag ("size-mtime"), or
    for a directory scan the missing file's record, which holds the directory's mtime.  Weak
    when modified within the second of the request."""
    if path_stat is not None:
        mtime_us = path_stat.st_mtime_ns // 1000
        body = f"{path_stat.st_size:x}-{mtime_us:x}"
    else:
        mtime_us = nofile_mtime
        body = f"{mtime_us:x}"
    weak = now * 1_000_000 - mtime_us < 1_000_000
    return ("W/" if weak else "") + f'"{body}"'


def do_negotiation(req: hooks.Request, neg: Neg, prefer_scripts: bool):
    """(status or None, best variant).  Headers go to req.err_headers_out."""
    if req.method in ("GET", "HEAD"):
        neg.is_transparent = True
        if req.path_info:
            neg.is_transparent = False
        for v in neg.variants:
            if "/" in v.spec.file_name or v.spec.body:
                neg.is_transparent = False
    if neg.is_transparent:
        parse_negotiate_header(req, neg)
    else:
        neg.may_choose = True
    maybe_add_default_accepts(neg, prefer_scripts)
    choice, best = best_match(neg)
    if not choice:
        neg.send_alternates = True
        set_neg_headers(req, neg, False)
        req.notes["variant-list"] = make_variant_list(neg)
        if neg.is_transparent and neg.ua_supports_trans:
            return 300, None
        if best is None:
            error_log.error("negotiation", "HP10001", f"no acceptable variant: {req.filename}",
                            client=req.client_ip)
            return 406, None
    if neg.is_transparent:
        st = _choice_check(req, neg, best)
        if st:
            return st, None
        _set_header(req.err_headers_out, "Content-Location",
                    escape_path_segment(best.spec.file_name))
        set_neg_headers(req, neg, True)
    else:
        set_neg_headers(req, neg, choice)
    return None, best


def _choice_check(req: hooks.Request, neg: Neg, best: Variant) -> int:
    """setup_choice_response's check on the chosen variant: it must not itself be a type map
    (506).  A missing file is no error here: the redirect to it answers 404 (with the
    negotiation's headers), as Apache's sub-request lookup succeeds for it."""
    if best.spec.body:
        return 0
    path = best.spec.path or os.path.join(neg.dir_name, best.spec.file_name)
    md = req.conf.mod(mime.KEY) if req.conf is not None else None
    got = mime.resolve(path, md, mime._types_for(req))
    if got.handler == "type-map":
        return HTTP_VARIANT_ALSO_VARIES
    return 0


def _loaded(req: hooks.Request) -> bool:
    server = req.server
    if server is None:
        return True
    got = _LOADED.get(id(server))
    if got is None or got[0] is not server:
        got = (server, "negotiation_module" in server.loaded_modules)
        if len(_LOADED) > 16:
            _LOADED.clear()
        _LOADED[id(server)] = got
    return got[1]


_LOADED: dict[int, tuple] = {}


def _log(req: hooks.Request):
    return lambda text: error_log.error("negotiation", "HP10002", text, client=req.client_ip)


# -- MultiViews -----------------------------------------------------------------------------
def read_types_multi(req: hooks.Request, neg: Neg, directory: str, name: str):
    """The directory's ``name.*`` files as variants.  Returns a status (404: names matched,
    none negotiable; 500: a broken type map), the type map path when one was found, or None."""
    md = req.conf.mod(mime.KEY) if req.conf is not None else None
    types = mime._types_for(req)
    prefix = name + "."
    try:
        entries = os.scandir(directory)
    except OSError as e:
        error_log.error("negotiation", "HP10003", f"cannot read directory for multi: "
                        f"{directory}: {e.strerror}", client=req.client_ip)
        return 403
    anymatch = False
    specs: list[VariantSpec] = []
    allowed = getattr(req, "allowed", None)
    udir = req.uri[:req.uri.rfind("/") + 1]
    with entries:
        for ent in entries:
            fname = ent.name
            if not fname.startswith(prefix):
                continue
            try:
                if ent.is_dir(follow_symlinks=False):
                    continue
            except OSError:
                continue
            anymatch = True
            path = os.path.join(directory, fname)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if allowed is not None and not allowed(path, False, udir + fname):
                continue            # the sub-request would be refused: not a candidate
            got = mime.resolve(fname, md, types)
            ctype = got.content_type
            if got.handler is not None and not ctype:
                ctype = CGI_MAGIC_TYPE
            if got.exceptions is None:
                continue
            if not _exceptions_match(name, got.exceptions):
                continue
            if not ctype:
                continue
            if ctype == MAP_FILE_MAGIC_TYPE or got.handler == "type-map":
                return path
            specs.append(_spec_from_type(fname, ctype, encoding=got.encoding,
                                         languages=got.languages or None,
                                         bytes=st.st_size,
                                         has_handler=got.handler is not None, path=path))
    if anymatch and not specs:
        error_log.error("negotiation", "HP10004", f"Negotiation: discovered file(s) matching "
                        f"request: {os.path.join(directory, name)} (None could be negotiated).",
                        client=req.client_ip)
        return 404
    specs.sort(key=lambda s: (-s.source_quality, os.fsencode(s.file_name)))
    neg.variants = [Variant(s) for s in specs]
    neg.count_multiviews_variants = len(specs)
    return None


def _exceptions_match(name: str, exceptions: tuple) -> bool:
    """Every extension mod_mime did not recognise must appear, in order, among the requested
    name's dot-separated segments."""
    k, left = 0, len(exceptions)
    pos, n = 0, len(name)
    while pos < n and left:
        end = name.find(".", pos)
        if end < 0:
            end = n
        if name[pos:end] == exceptions[k]:
            k += 1
            left -= 1
        if end >= n:
            break
        pos = end + 1
    return left == 0


def multiviews(req: hooks.Request, directory: str, name: str) -> Any:
    """hooks.NEGOTIATE: Apache's handle_multi."""
    if not _loaded(req):
        return None
    neg = parse_accept_headers(req)
    neg.dir_name = directory
    got = read_types_multi(req, neg, directory, name)
    if isinstance(got, int):
        return got
    now = req.start or time.time()
    if isinstance(got, str):            # a type map stands for the variants
        return _negotiate_map(req, neg, got, now, from_multiviews=True)
    if not neg.variants:
        return None
    try:
        dmtime = os.stat(directory).st_mtime_ns // 1000
    except OSError:
        dmtime = 0
    req.notes["vlist-validator"] = _vlist_validator(None, now, dmtime)
    prefer_scripts = req.method not in ("GET", "HEAD") or "?" in (req.unparsed_uri or "") \
        or bool(req.path_info)
    status, best = do_negotiation(req, neg, prefer_scripts)
    if status is not None:
        return status
    return best.spec.path


# -- type maps ------------------------------------------------------------------------------
def _negotiate_map(req: hooks.Request, neg: Neg, path: str, now: float,
                   from_multiviews: bool = False) -> Any:
    try:
        specs, st, data = read_map(path, _log(req))
    except MapError as e:
        error_log.error("negotiation", "HP10005", str(e), client=req.client_ip)
        return 500
    except OSError as e:
        error_log.error("negotiation", "HP10006", f"cannot access type map file: {path}: "
                        f"{e.strerror}", client=req.client_ip)
        return 404 if isinstance(e, (FileNotFoundError, NotADirectoryError)) else 403
    neg.dir_name = os.path.dirname(path)
    neg.variants = [Variant(s) for s in specs]
    neg.count_multiviews_variants = 0
    req.notes["vlist-validator"] = _vlist_validator(st, now)
    status, best = do_negotiation(req, neg, False)
    if status is not None:
        return status
    cached = req.vhost.mod(CACHE_NEGOTIATED, False) if req.vhost is not None else False
    if not cached and req.version in ("1.0", "0.9") and not from_multiviews:
        # HTTP/1.0 caches cannot honour Vary: Expires now (a MultiViews answer loses this
        # in Apache's fast redirect, so only type maps asked for by name get it)
        req.notes["no-cache"] = True
    if best.spec.body:
        return _body_response(req, best, data)
    if from_multiviews:
        return os.path.join(neg.dir_name, best.spec.file_name)
    return _redirect_to(req, best)


def _body_response(req: hooks.Request, best: Variant, data: bytes) -> Any:
    """An inline ``Body:`` variant, answered by the handler itself (no ETag, no
    Last-Modified, as Apache)."""
    if req.method not in ("GET", "HEAD", "POST"):
        req.err_headers_out.append(("Allow", "GET,POST,OPTIONS,HEAD"))
        return 405
    s = best.spec
    body = data[s.body:s.body + s.bytes]       # offsets of the latin-1 text are byte offsets
    headers = [("Accept-Ranges", "bytes")]
    ctype = None
    if s.mime_type:
        ctype = f"{s.mime_type}; charset={s.charset}" if s.charset else s.mime_type
    req.content_type = ctype
    if s.languages:
        req.content_language = tuple(s.languages)
        headers.append(("Content-Language", ",".join(s.languages)))
    if s.encoding:
        req.content_encoding = s.encoding
        headers.append(("Content-Encoding", s.encoding))
    return hooks.Response(200, headers, body, content_type=ctype)


def _redirect_to(req: hooks.Request, best: Variant) -> Any:
    uri = req.uri
    if req.path_info and uri.endswith(req.path_info):
        uri = uri[:len(uri) - len(req.path_info)]
    udir = escape_uri(uri[:uri.rfind("/") + 1])
    target = udir + best.spec.file_name + (req.path_info or "")
    if "?" in (req.unparsed_uri or ""):
        target += "?" + req.query
    req.internal_redirect = target
    return hooks.OK


def handle_map_file(req: hooks.Request) -> Any:
    """HANDLERS["type-map"]: negotiate over a type map file."""
    neg = parse_accept_headers(req)
    return _negotiate_map(req, neg, req.filename, req.start or time.time())


# -- fixups and output --------------------------------------------------------------------------
def fix_encoding(req: hooks.Request, enc: str) -> str:
    """mod_negotiation's fixup: Content-Encoding spelled as the client's Accept-Encoding
    spells it (gzip or x-gzip)."""
    base = enc[2:] if enc.startswith("x-") else enc
    recs = header_line(req.headers.get("accept-encoding"))
    if recs is None:
        return enc
    x_enc = None
    for r in recs:
        if r.name == base:
            return r.name
        if r.name.startswith("x-") and r.name[2:] == base:
            x_enc = r.name
    return x_enc if x_enc is not None else enc


def output(req: hooks.Request, resp: hooks.Response) -> hooks.Response:
    """Before mod_deflate: the structured ETag of a negotiated response, Expires for HTTP/1.0
    (no-cache), and fix_encoding."""
    notes = req.notes
    if notes:
        vlv = notes.get("vlist-validator")
        if vlv is not None:
            etag = resp.header("ETag")
            if etag:
                resp.set_header("ETag", structured_etag(etag, vlv))
        if notes.get("no-cache") and resp.header("Expires") is None:
            from httpd_py.http.static import http_date
            resp.headers.append(("Expires", http_date(req.start or time.time())))
    enc = req.content_encoding
    if enc and "accept-encoding" in req.headers and _loaded(req):
        ce = resp.header("Content-Encoding")
        if ce == enc:
            new = fix_encoding(req, enc)
            if new != enc:
                resp.set_header("Content-Encoding", new)
                req.content_encoding = new
    return resp


def structured_etag(etag: str, vlv: str) -> str:
    """ap_make_etag with a variant list validator: the variant's tag without its closing quote,
    ';', then the validator without its opening quote and (an Apache quirk) its last
    character; weak when either is."""
    weak = etag.startswith("W/")
    body = etag[2:] if weak else etag
    if vlv.startswith("W/"):
        weak = True
        v = vlv[3:]
    else:
        v = vlv[1:]
    if body.endswith('"'):
        body = body[:-1]
    return ("W/" if weak else "") + body + ";" + v[:-1]


hooks.NEGOTIATE.append(multiviews)
hooks.HANDLERS["type-map"] = handle_map_file
hooks.add_output(output, hooks.ORDER_CONTENT - 1)
# it acts on what negotiating a file left in the request: a lane's requests map to no file
hooks.INERT[output] = lambda vhost, conf: True
