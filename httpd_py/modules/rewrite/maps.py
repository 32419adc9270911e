"""RewriteMap: ``txt:``, ``rnd:`` and ``int:`` maps (``prg:``, ``dbm:``, ``dbd:``/``fastdbd:``
are refused at configuration time: a rule that needs one would rewrite differently).

A text map is read whole on its first lookup in a worker and again when its mtime changes (as
Apache's map cache, keyed by the file's mtime); Apache's reading rules hold: a line starting
with '#' or white space is skipped, the key is the first word and must be followed by white
space, the value is the next word (a line without one is skipped), the first line for a key
wins, and a physical line longer than 1024 bytes is read as several.  ``rnd:`` picks one of
the '|'-separated values at random.  ``int:`` has toupper, tolower, escape and unescape.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

from httpd_py import logids
from httpd_py.config import values
from httpd_py.errors import ConfigError

TXT, RND, INT = "txt", "rnd", "int"
_LINE_MAX = 1024


@dataclass(frozen=True)
class MapSpec:
    name: str
    kind: str                   # "txt", "rnd", "int"
    path: str = ""              # txt/rnd: the file
    func: str = ""              # int: the function name


def _int_toupper(key: str) -> str:
    return key.translate(_UPPER)


def _int_tolower(key: str) -> str:
    return key.translate(_LOWER)


_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
#: int: functions; engine.py adds escape (ap_escape_uri) and unescape (ap_unescape_url)
INTERNAL = {"toupper": _int_toupper, "tolower": _int_tolower}


def parse_map(name: str, source: str, server_root: str) -> MapSpec:
    """``RewriteMap name type:source``: a MapSpec, or ConfigError (Apache's wording where it has
    one)."""
    low = source.lower()
    if low.startswith("txt:") or low.startswith("rnd:"):
        kind = TXT if low.startswith("txt:") else RND
        path = values.path(source[4:], server_root)
    elif low.startswith("int:"):
        func = source[4:]
        if func not in INTERNAL:
            raise ConfigError(f"RewriteMap: internal map not found:{func}")
        return MapSpec(name, INT, func=func)
    elif low.startswith("prg:"):
        raise ConfigError("RewriteMap: prg: maps (an external program) are not built into "
                          "httpd-py; refused rather than ignored (the rules that use the map "
                          "would rewrite differently)")
    elif low.startswith("dbm"):
        raise ConfigError("RewriteMap: dbm maps are not built into httpd-py; refused rather "
                          "than ignored (convert the map to txt:)")
    elif low.startswith("dbd:") or low.startswith("fastdbd:"):
        raise ConfigError("RewriteMap types dbd and fastdbd require mod_dbd! (not built into "
                          "httpd-py)")
    else:
        kind = TXT
        path = values.path(source, server_root)
    if not os.path.exists(path):
        raise ConfigError(f"RewriteMap: file for map {name} not found:{path}")
    return MapSpec(name, kind, path=path)


# per worker: path -> (mtime_ns, size, {key: value})
_CACHE: dict[str, tuple] = {}


def read_text_map(text: str) -> dict[str, str]:
    """A text map's entries, as Apache's line-by-line lookup would find them."""
    out: dict[str, str] = {}
    for physical in text.splitlines(keepends=True):
        for k in range(0, max(len(physical), 1), _LINE_MAX):
            line = physical[k:k + _LINE_MAX]
            if not line or line[0] == "#" or line[0].isspace():
                continue
            words = line.split(None, 2)
            if not words:
                continue
            key = words[0]
            if len(key) >= len(line) or not line[len(key)].isspace():
                continue            # the key must be followed by white space
            if len(words) < 2:
                continue
            out.setdefault(key, words[1])
    return out


def _entries(spec: MapSpec, st) -> dict[str, str] | None:
    try:
        s = os.stat(spec.path)
    except OSError as e:
        st.errors.append((logids.REWRITE_MAP_UNREADABLE,
                          f"mod_rewrite: can't access text RewriteMap file "
                          f"{spec.path}: {e.strerror}"))
        return None
    got = _CACHE.get(spec.path)
    ident = (s.st_mtime_ns, s.st_size)
    if got is not None and got[0] == ident:
        return got[1]
    try:
        with open(spec.path, "rb") as f:
            text = f.read().decode("latin-1")
    except OSError as e:
        st.errors.append((logids.REWRITE_MAP_OPEN_FAILED,
                          f"mod_rewrite: can't open text RewriteMap file "
                          f"{spec.path}: {e.strerror}"))
        return None
    entries = read_text_map(text)
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[spec.path] = (ident, entries)
    return entries


def lookup(spec: MapSpec, key: str, ctx) -> str | None:
    """The map's value for ``key``, or None (not found: the default applies)."""
    if spec.kind == INT:
        value = INTERNAL[spec.func](key)
        ctx.log(5, f"map lookup OK: map={spec.name} key={key} -> val={value}", False)
        return value
    entries = _entries(spec, ctx.st)
    if entries is None:
        return None
    value = entries.get(key) if key and not any(c.isspace() for c in key) else None
    if value is None:
        ctx.log(5, f"map lookup FAILED: map={spec.name}[txt] key={key}", False)
        return None
    ctx.log(5, f"map lookup OK: map={spec.name}[txt] key={key} -> val={value}", False)
    if spec.kind == RND:
        choices = value.split("|")
        value = random.choice(choices)
        ctx.log(5, f"randomly chosen the subvalue `{value}'", False)
    return value or None
