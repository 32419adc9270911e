"""Static-file HTTP semantics, pure over values: validators, conditional requests, ranges, MIME.

* ETag as Apache's default ``FileETag MTime Size``: ``"<size hex>-<mtime usec hex>"``.
* Conditionals in RFC 9110 section 13.2.2 order: If-Match / If-Unmodified-Since -> 412,
  If-None-Match (weak comparison) else If-Modified-Since -> 304 for GET and HEAD.
* One byte range (``bytes=a-b``, ``a-``, ``-n``) -> 206, unsatisfiable -> 416; several ranges
  or a malformed header -> the whole file (200), which RFC 9110 allows; If-Range guards it.
"""
from __future__ import annotations

import email.utils
import time
from typing import Iterable


_DATE_CACHE: dict[int, str] = {}


def http_date(ts: float) -> str:
    """IMF-fixdate; memoised per whole second (Last-Modified values repeat across requests)."""
    key = int(ts)
    s = _DATE_CACHE.get(key)
    if s is None:
        if len(_DATE_CACHE) > 4096:
            _DATE_CACHE.clear()
        s = _DATE_CACHE[key] = email.utils.formatdate(key, usegmt=True)
    return s


def parse_http_date(value: str) -> float | None:
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        return None
    return dt.timestamp()


def make_etag(size: int, mtime_ns: int) -> str:
    return f'"{size:x}-{mtime_ns // 1000:x}"'


def _etag_list(value: str) -> list[str]:
    out, cur, inq = [], [], False
    for ch in value:
        if ch == '"':
            inq = not inq
            cur.append(ch)
        elif ch == "," and not inq:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return [t for t in out if t]


def _weak_eq(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def _strong_eq(a: str, b: str) -> bool:
    return not a.startswith("W/") and not b.startswith("W/") and a == b


def evaluate_conditionals(method: str, headers: dict[str, str], etag: str, mtime: float
                          ) -> int | None:
    """304 or 412 when a precondition decides the response, else None.

    ``headers`` maps lower-case names to values (the last value of a repeated header).
    """
    lm = int(mtime)
    im = headers.get("if-match")
    if im is not None:
        tags = _etag_list(im)
        if "*" not in tags and not any(_strong_eq(t, etag) for t in tags):
            return 412
    else:
        ius = headers.get("if-unmodified-since")
        if ius is not None:
            t = parse_http_date(ius)
            if t is not None and lm > t:
                return 412
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = _etag_list(inm)
        if "*" in tags or any(_weak_eq(t, etag) for t in tags):
            return 304 if method in ("GET", "HEAD") else 412
        return None
    ims = headers.get("if-modified-since")
    if ims is not None and method in ("GET", "HEAD"):
        t = parse_http_date(ims)
        if t is not None and lm <= t:
            return 304
    return None


UNSATISFIABLE = "unsatisfiable"


def parse_range(value: str | None, size: int) -> tuple[int, int] | str | None:
    """(first, last) inclusive for one satisfiable range; UNSATISFIABLE; or None (serve all)."""
    if value is None:
        return None
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec.split(",") if s.strip()]
    if len(specs) != 1:
        return None                      # several ranges (or none): the whole file
    first_s, dash, last_s = specs[0].partition("-")
    if not dash:
        return None
    first_s, last_s = first_s.strip(), last_s.strip()
    if not (first_s.isdigit() or first_s == "") or not (last_s.isdigit() or last_s == ""):
        return None
    if first_s == "":
        if last_s == "":
            return None
        n = int(last_s)
        if n == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and last < first:
        return None                      # syntactically invalid: ignore
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


def if_range_allows(value: str | None, etag: str, mtime: float) -> bool:
    """True when the Range header may be honoured (no If-Range, or it matches)."""
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return _strong_eq(value, etag)
    t = parse_http_date(value)
    return t is not None and int(mtime) == int(t)


class MimeTypes:
    """Extension -> type from a mime.types file (TypesConfig) overlaid with AddType."""

    def __init__(self, types_config: str | None, add_types: Iterable[tuple[str, str]] = (),
                 default: str | None = None):
        self.map: dict[str, str] = {}
        self.default = default
        if types_config:
            try:
                with open(types_config, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        line = line.split("#", 1)[0].split()
                        if len(line) >= 2:
                            for ext in line[1:]:
                                self.map[ext.lower()] = line[0]
            except OSError:
                pass    # the caller logs: a missing TypesConfig serves files without a type
        for ext, mtype in add_types:
            self.map[ext.lower().lstrip(".")] = mtype

    def lookup(self, filename: str) -> str | None:
        # Apache looks at every extension; the last one that names a type wins.
        parts = filename.rsplit("/", 1)[-1].split(".")[1:]
        found = None
        for ext in parts:
            t = self.map.get(ext.lower())
            if t is not None:
                found = t
        return found or self.default


def now() -> float:
    return time.time()
