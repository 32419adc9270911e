"""Apache's expression language (ap_expr), the boolean subset used by ``<If>``, ``<ElseIf>`` and
``Require expr``.

``parse_condition(text)`` parses once, at configuration time, into a ``Condition`` whose
``evaluate(ctx)`` runs per request.  Everything that can be wrong is found at parse time and raised
as ``ConfigError`` (the caller adds file and line): syntax errors, unknown variables, functions and
operators, the parts of the language this server does not implement, and regular expressions that
Python's ``re`` cannot compile the way PCRE would.  Evaluation never raises for request data.

The parsed tree is a tree of small closures: a *word* is ``fn(ctx, st) -> str`` and a condition is
``fn(ctx, st) -> bool``.  ``st`` is a one-element list holding the last successful regex match of
this evaluation, for the back-references ``$0`` .. ``$9``.

Behaviour follows the Apache 2.4 manual ("Expressions in Apache HTTP Server"):

* words: ``'...'`` and ``"..."`` strings (with ``%{VAR}``, ``%{func:arg}`` and ``$N`` inside, and
  the escapes ``\\n \\r \\t \\b \\f \\NNN`` octal, ``\\x`` = ``x``), numbers ``-?[0-9]+``,
  ``%{NAME}``, ``%{func:arg}``, ``func(word)``, ``$0``..``$9``, concatenation with ``.``;
* ``true``, ``false``, ``!``/``not``, ``&&``/``and``, ``||``/``or`` (``!`` binds tighter than
  ``&&``, which binds tighter than ``||``), parentheses;
* string comparisons ``== = != < <= > >=`` (code-point order, i.e. byte order for the latin-1
  strings of a request); integer comparisons ``-eq -ne -lt -le -gt -ge`` (and ``eq ne lt le gt
  ge``) which, as Apache's, read each side like C's ``atoi`` ("" and "abc" are 0, "12ab" is 12);
* ``=~`` / ``!~`` with ``/re/``, ``m#re#`` (any of Apache's delimiters), flag ``i``;
* ``in`` / ``-in`` ``{'a', 'b'}``;
* ``-ipmatch``, ``-strmatch``, ``-strcmatch``, ``-fnmatch``; unary ``-n -z -T -R`` and the file
  tests ``-d -e -f -s -L -h -x``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import re
import stat
import warnings
from functools import lru_cache
from typing import Callable, Protocol

from httpd_py.errors import ConfigError

__all__ = ["Condition", "ExprContext", "parse_condition", "KNOWN_VARIABLES", "FUNCTIONS"]


class ExprContext(Protocol):
    """What an expression reads from a request.  Every method returns "" for "not set"."""

    def var(self, name: str) -> str: ...      # %{NAME}, NAME upper-case
    def header(self, name: str) -> str: ...   # request header (req, http, req_novary)
    def env(self, name: str) -> str: ...      # request environment (reqenv, env, %{ENV:x})


# ----------------------------------------------------------------------------------------------
# Names the language knows

#: Variables Apache's core registers for ``%{NAME}`` (case-insensitive); any ``SSL_*`` name is
#: mod_ssl's.  Anything else is a configuration error, as in Apache.
KNOWN_VARIABLES = frozenset("""
    HTTP_ACCEPT HTTP_COOKIE HTTP_FORWARDED HTTP_HOST HTTP_PROXY_CONNECTION HTTP_REFERER
    HTTP_USER_AGENT
    REQUEST_METHOD REQUEST_SCHEME REQUEST_URI DOCUMENT_URI REQUEST_FILENAME SCRIPT_FILENAME
    LAST_MODIFIED SCRIPT_USER SCRIPT_GROUP PATH_INFO QUERY_STRING IS_SUBREQ THE_REQUEST
    REMOTE_ADDR REMOTE_PORT REMOTE_HOST REMOTE_USER REMOTE_IDENT SERVER_NAME SERVER_PORT
    SERVER_ADMIN SERVER_PROTOCOL DOCUMENT_ROOT AUTH_TYPE CONTENT_TYPE HANDLER HTTP2 HTTPS IPV6
    REQUEST_STATUS REQUEST_LOG_ID CONN_LOG_ID CONN_REMOTE_ADDR CONTEXT_PREFIX
    CONTEXT_DOCUMENT_ROOT
    TIME_YEAR TIME_MON TIME_DAY TIME_HOUR TIME_MIN TIME_SEC TIME_WDAY TIME SERVER_SOFTWARE
    API_VERSION
""".split())

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _to_bytes(s: str) -> bytes:
    """Request strings hold bytes as latin-1 code points; config text may hold more."""
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape")


def _from_bytes(b: bytes) -> str:
    return b.decode("latin-1")


def _env_or_os(ctx, arg: str) -> str:
    # Apache: request note, then request environment, then the process environment.
    return ctx.env(arg) or os.environ.get(arg, "")


_URI_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                      b"$-_.+!*'(),:;@&=/~")


def _escape(s: str) -> str:
    return "".join(chr(c) if c in _URI_SAFE else "%%%02x" % c for c in _to_bytes(s))


def _unescape(s: str) -> str:
    """%XX decoding that keeps %2F encoded; "" for a bad escape or %00 (as Apache)."""
    if "%" not in s:
        return s
    out = bytearray()
    raw = _to_bytes(s)
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != 0x25:
            out.append(c)
            i += 1
            continue
        h = raw[i + 1:i + 3]
        if len(h) != 2 or not all(x in b"0123456789abcdefABCDEF" for x in h):
            return ""
        v = int(h, 16)
        if v == 0:
            return ""
        if v == 0x2F:
            out += raw[i:i + 3]
        else:
            out.append(v)
        i += 3
    return _from_bytes(bytes(out))


_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _unbase64(s: str) -> str:
    """Lenient decode: the leading run of base64 characters, cut at the first NUL."""
    raw = _to_bytes(s)
    n = 0
    while n < len(raw) and raw[n] in _B64:
        n += 1
    body = raw[:n]
    rem = n % 4
    if rem == 1:
        body = body[:-1]
    elif rem:
        body += b"=" * (4 - rem)
    try:
        out = base64.b64decode(body)
    except (binascii.Error, ValueError):  # pragma: no cover - the input is clean by construction
        return ""
    return _from_bytes(out.split(b"\0", 1)[0])


#: String functions: name (lower-case) -> fn(ctx, arg) -> str
FUNCTIONS: dict[str, Callable[[object, str], str]] = {
    "req": lambda ctx, a: ctx.header(a),
    "http": lambda ctx, a: ctx.header(a),
    "req_novary": lambda ctx, a: ctx.header(a),
    "reqenv": lambda ctx, a: ctx.env(a),
    "env": _env_or_os,
    "osenv": lambda ctx, a: os.environ.get(a, ""),
    "tolower": lambda ctx, a: a.translate(_ASCII_LOWER),
    "toupper": lambda ctx, a: a.translate(_ASCII_UPPER),
    "escape": lambda ctx, a: _escape(a),
    "unescape": lambda ctx, a: _unescape(a),
    "base64": lambda ctx, a: base64.b64encode(_to_bytes(a)).decode("ascii"),
    "unbase64": lambda ctx, a: _unbase64(a),
    "md5": lambda ctx, a: hashlib.md5(_to_bytes(a)).hexdigest(),
    "sha1": lambda ctx, a: hashlib.sha1(_to_bytes(a)).hexdigest(),
}

#: Functions Apache has that this server does not implement, with the reason.
_UNSUPPORTED_FUNCTIONS = {
    "resp": "response headers are not available to expressions here",
    "note": "request notes are not implemented",
    "file": "reading files from expressions is not implemented",
    "filesize": "reading files from expressions is not implemented",
    "filemod": "reading files from expressions is not implemented",
    "ldap": "LDAP escaping is not implemented",
    "ssl": "mod_ssl's SSL() function is not implemented; use %{SSL_...}",
}

_UNSUPPORTED_UNARY = {
    "F": "needs subrequests",
    "U": "needs subrequests",
    "A": "needs subrequests",
}


# ----------------------------------------------------------------------------------------------
# Words: (fn(ctx, st) -> str, constant value or None)

class _Word:
    __slots__ = ("fn", "const", "uses_user", "const_string")

    def __init__(self, fn, const=None, uses_user=False):
        self.fn = fn
        self.const = const              # the value, when known at parse time
        self.uses_user = uses_user      # reads %{REMOTE_USER}
        self.const_string = False       # a quoted string without variables (-ipmatch, -R)


def _const(value: str) -> _Word:
    return _Word(lambda ctx, st: value, value)


def _concat(parts: list[_Word]) -> _Word:
    parts = [p for p in parts if p.const != ""] or [_const("")]
    uses_user = any(p.uses_user for p in parts)
    if all(p.const is not None for p in parts):
        return _const("".join(p.const for p in parts))
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts[0].fn, parts[1].fn
        return _Word(lambda ctx, st: a(ctx, st) + b(ctx, st), None, uses_user)
    fns = tuple(p.fn for p in parts)
    return _Word(lambda ctx, st: "".join([f(ctx, st) for f in fns]), None, uses_user)


def _variable(name: str) -> _Word:
    upper = name.upper()
    if upper not in KNOWN_VARIABLES and not name.startswith("SSL_"):
        raise ConfigError(f"unknown variable '%{{{name}}}'")
    return _Word(lambda ctx, st: ctx.var(upper), None, upper == "REMOTE_USER")


def _function(name: str, arg: _Word) -> _Word:
    key = name.lower()
    fn = FUNCTIONS.get(key)
    if fn is None:
        if key in _UNSUPPORTED_FUNCTIONS:
            raise ConfigError(f"unsupported function '{name}' ({_UNSUPPORTED_FUNCTIONS[key]})")
        raise ConfigError(f"unknown function '{name}'")
    afn = arg.fn
    return _Word(lambda ctx, st: fn(ctx, afn(ctx, st)), None, arg.uses_user)


def _backref(n: int) -> _Word:
    def fn(ctx, st):
        m = st[0]
        if m is None or n > m.re.groups:
            return ""
        return m.group(n) or ""
    return _Word(fn)


# ----------------------------------------------------------------------------------------------
# Lexer

_WS = " \t\n"
_ID_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ID_CHARS = _ID_START | frozenset("0123456789_")
_DIGITS = frozenset("0123456789")
_REGEX_DELIMS = frozenset("/#$%^,;:_?|-!.'\"")
_KEYWORDS = {
    "and": ("AND",), "or": ("OR",), "not": ("NOT",), "true": ("TRUE",), "false": ("FALSE",),
    "in": ("IN",), "eq": ("INT", "eq"), "ne": ("INT", "ne"), "lt": ("INT", "lt"),
    "le": ("INT", "le"), "gt": ("INT", "gt"), "ge": ("INT", "ge"),
}
_DASH_KEYWORDS = {"in": ("IN",), "eq": ("INT", "eq"), "ne": ("INT", "ne"), "lt": ("INT", "lt"),
                  "le": ("INT", "le"), "gt": ("INT", "gt"), "ge": ("INT", "ge")}
_SYMBOLS = [  # longest first
    ("==", ("STR", "==")), ("=~", ("REG", True)), ("!=", ("STR", "!=")), ("!~", ("REG", False)),
    ("<=", ("STR", "<=")), (">=", ("STR", ">=")), ("&&", ("AND",)), ("||", ("OR",)),
    ("=", ("STR", "==")), ("<", ("STR", "<")), (">", ("STR", ">")), ("!", ("NOT",)),
    (".", ("DOT",)), ("(", ("(",)), (")", (")",)), ("{", ("{",)), ("}", ("}",)), (",", (",",)),
]


def _show(ch: str) -> str:
    return repr(ch)[1:-1] if ch.isprintable() else ascii(ch)[1:-1]


class _Lexer:
    """Turns the text into tokens; quoted strings and %{...} come out as ("WORD", _Word)."""

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.n = len(text)

    def error(self, msg: str):
        raise ConfigError(msg)

    def tokens(self) -> list[tuple]:
        out = []
        s, n = self.s, self.n
        while True:
            while self.i < n and s[self.i] in _WS:
                self.i += 1
            if self.i >= n:
                out.append(("EOF",))
                return out
            start = self.i
            tok = self._token()
            out.append(tok + (start,) if tok[0] != "WORD" else ("WORD", tok[1], start))

    def _token(self) -> tuple:
        s, i, n = self.s, self.i, self.n
        c = s[i]
        if c in "'\"":
            self.i = i + 1
            return ("WORD", self._string(c))
        if c == "%" and s.startswith("%{", i):
            self.i = i + 2
            return ("WORD", self._var())
        if c == "$" and i + 1 < n and s[i + 1] in _DIGITS:
            self.i = i + 2
            return ("WORD", _backref(int(s[i + 1])))
        if c == "/":
            self.i = i + 1
            return self._regex("/")
        if c in _DIGITS or (c == "-" and i + 1 < n and s[i + 1] in _DIGITS):
            j = i + 1
            while j < n and s[j] in _DIGITS:
                j += 1
            self.i = j
            return ("WORD", _const(s[i:j]))
        if c == "-" and i + 1 < n and (s[i + 1] in _ID_START or s[i + 1] == "_"):
            j = i + 2
            while j < n and s[j] in _ID_CHARS:
                j += 1
            self.i = j
            name = s[i + 1:j]
            if name in _DASH_KEYWORDS:
                return _DASH_KEYWORDS[name]
            return ("UNARY", name) if len(name) == 1 else ("BINARY", name)
        if c in _ID_START:
            j = i + 1
            while j < n and s[j] in _ID_CHARS:
                j += 1
            # "m" plus a delimiter opens a regex unless a longer identifier matches
            if c == "m" and i + 1 < n and s[i + 1] in _REGEX_DELIMS and j - i <= 2:
                self.i = i + 2
                return self._regex(s[i + 1])
            self.i = j
            word = s[i:j]
            return _KEYWORDS.get(word, ("ID", word))
        for sym, tok in _SYMBOLS:
            if s.startswith(sym, i):
                self.i = i + len(sym)
                return tok
        self.error(f"syntax error near '{_show(c)}' at offset {i}")

    def _regex(self, delim: str) -> tuple:
        s = self.s
        end = s.find(delim, self.i)
        if end < 0:
            self.error(f"unterminated regular expression (missing closing '{delim}')")
        pattern = s[self.i:end]
        self.i = end + 1
        icase = False
        if self.i < self.n and s[self.i] == "i":
            icase = True
            self.i += 1
        return ("REGEX", pattern, icase)

    def _escape(self) -> str:
        """After a backslash inside a string or %{func:arg}."""
        s, i, n = self.s, self.i, self.n
        if i >= n:
            self.error("unterminated string or variable")
        c = s[i]
        if c in _DIGITS:
            j = i
            while j < n and s[j] in _DIGITS:
                j += 1
            k = i
            while k < n and k < i + 3 and s[k] in "01234567":
                k += 1
            if j > k:
                self.error(f"bad escape sequence '\\{s[i:j]}'")
            value = int(s[i:k], 8)
            if value > 0xFF:
                self.error(f"escape sequence '\\{s[i:k]}' out of bound")
            self.i = k
            return chr(value)
        if c == "\n":
            self.i = i + 1
            return "\n"
        self.i = i + 1
        return {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}.get(c, c)

    def _parts(self, end: str, in_arg: bool) -> list[_Word]:
        """String body up to `end` (a quote, or '}' for a %{func:arg} argument)."""
        s, n = self.s, self.n
        parts: list[_Word] = []
        buf: list[str] = []
        while True:
            if self.i >= n:
                self.error("unterminated string or variable")
            c = s[self.i]
            if c == end:
                self.i += 1
                break
            if c == "\n":
                self.error("unterminated string or variable (newline)")
            if in_arg and c in "'\"":
                self.error("quote inside a %{function:argument}")
            if c == "\\":
                self.i += 1
                buf.append(self._escape())
            elif c == "%" and s.startswith("%{", self.i):
                if buf:
                    parts.append(_const("".join(buf)))
                    buf = []
                self.i += 2
                parts.append(self._var())
            elif c == "$" and self.i + 1 < n and s[self.i + 1] in _DIGITS:
                if buf:
                    parts.append(_const("".join(buf)))
                    buf = []
                parts.append(_backref(int(s[self.i + 1])))
                self.i += 2
            else:
                buf.append(c)
                self.i += 1
        if buf:
            parts.append(_const("".join(buf)))
        return parts

    def _string(self, quote: str) -> _Word:
        parts = self._parts(quote, False)
        word = _concat(parts)
        if word.const is not None:
            word = _const(word.const)
            word.const_string = True
        return word

    def _var(self) -> _Word:
        s, n = self.s, self.n
        i = self.i
        if i >= n:
            self.error("unterminated string or variable")
        if s[i] not in _ID_START:
            self.error(f"invalid character in variable name '{_show(s[i])}'")
        j = i + 1
        while j < n and s[j] in _ID_CHARS:
            j += 1
        name = s[i:j]
        if j >= n:
            self.error(f"unterminated variable '%{{{name}'")
        if s[j] == "}":
            self.i = j + 1
            return _variable(name)
        if s[j] == ":":
            self.i = j + 1
            parts = self._parts("}", True)
            if not parts:
                self.error(f"empty argument in '%{{{name}:}}'")
            return _function(name, _concat(parts))
        self.error(f"invalid character in variable name '{_show(s[j])}'")


# ----------------------------------------------------------------------------------------------
# Operators

def _atoi64(s: str) -> int:
    """C's atoi as Apache's apr_atoi64 reads it: leading space, sign, digits; else 0."""
    m = _ATOI.match(s)
    if not m:
        return 0
    v = int(m.group(1))
    return max(-(1 << 63), min(v, (1 << 63) - 1))


_ATOI = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", re.ASCII)

_INT_OPS = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
}
_STR_OPS = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _fnmatch_regex(pattern: str, pathname: bool, icase: bool) -> re.Pattern:
    """Translate an apr_fnmatch-style pattern (*, ?, [...] with ! or ^, backslash escapes)."""
    any_char = "[^/]" if pathname else "(?s:.)"
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append(any_char + "*")
            continue
        if c == "?":
            out.append(any_char)
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = i + 1
            negate = j < n and pattern[j] in "!^"
            if negate:
                j += 1
            items = []
            first = True
            closed = False
            while j < n:
                ch = pattern[j]
                if ch == "]" and not first:
                    closed = True
                    break
                first = False
                if ch == "\\" and j + 1 < n:
                    j += 1
                    ch = pattern[j]
                if j + 2 < n and pattern[j + 1] == "-" and pattern[j + 2] != "]":
                    hi = pattern[j + 2]
                    if hi == "\\" and j + 3 < n:
                        hi = pattern[j + 3]
                        j += 1
                    if ch <= hi:
                        items.append(re.escape(ch) + "-" + re.escape(hi))
                    j += 3
                    continue
                items.append(re.escape(ch))
                j += 1
            if not closed:
                out.append(re.escape("["))
            else:
                body = "".join(items)
                if negate:
                    out.append(f"[^{body}{'/' if pathname else ''}]" if body or pathname
                               else "(?s:.)")
                elif not body:
                    out.append("(?!)")
                elif pathname:
                    out.append(f"(?!/)[{body}]")
                else:
                    out.append(f"[{body}]")
                i = j + 1
                continue
        else:
            out.append(re.escape(c))
        i += 1
    flags = re.ASCII | re.DOTALL | (re.IGNORECASE if icase else 0)
    return re.compile("".join(out), flags)


_fnmatch_cached = lru_cache(maxsize=256)(_fnmatch_regex)


def _parse_subnet(op: str, spec: str) -> Callable[[str], bool]:
    """Apache's subnet forms: address, partial IPv4 (10.1), address/bits, address/netmask."""
    addr, _, mask = spec.partition("/")
    try:
        if ":" in addr:
            net = ipaddress.ip_network(f"{addr}/{mask or 128}", strict=False)
        else:
            octets = addr.split(".")
            if not 1 <= len(octets) <= 4 or not all(o.isdigit() and len(o) <= 3 and int(o) < 256
                                                    for o in octets):
                raise ValueError(spec)
            if len(octets) < 4 and not mask:
                mask = str(8 * len(octets))
            octets += ["0"] * (4 - len(octets))
            if mask and not mask.isdigit():
                ipaddress.IPv4Address(mask)  # dotted netmask
            net = ipaddress.ip_network(f"{'.'.join(octets)}/{mask or 32}", strict=False)
        if mask.isdigit() and int(mask) == 0:
            raise ValueError(spec)
    except ValueError:
        raise ConfigError(f"-{op}: cannot parse subnet/netmask '{spec}'") from None
    v4 = net.version == 4

    def test(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if v4 and ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.version == net.version and ip in net
    return test


def _stat(path: str, follow: bool):
    try:
        p = _to_bytes(path)
        return os.stat(p) if follow else os.lstat(p)
    except (OSError, ValueError):
        return None


def _file_test(op: str) -> Callable[[str], bool]:
    if op in "Lh":
        return lambda p: (st := _stat(p, False)) is not None and stat.S_ISLNK(st.st_mode)
    if op == "x":
        return lambda p: (st := _stat(p, False)) is not None and bool(st.st_mode & 0o111)
    if op == "d":
        return lambda p: (st := _stat(p, True)) is not None and stat.S_ISDIR(st.st_mode)
    if op == "e":
        return lambda p: _stat(p, True) is not None
    if op == "f":
        return lambda p: (st := _stat(p, True)) is not None and stat.S_ISREG(st.st_mode)
    assert op == "s"
    return lambda p: ((st := _stat(p, True)) is not None and stat.S_ISREG(st.st_mode)
                      and st.st_size > 0)


_FALSEY = frozenset(("", "0", "off", "false", "no"))


# ----------------------------------------------------------------------------------------------
# Regular expressions: PCRE text -> Python re

_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "xdigit": "0-9A-Fa-f",
    "punct": "!-/:-@\\[-`{-~", "cntrl": "\\x00-\\x1f\\x7f", "print": "\\x20-\\x7e",
    "graph": "\\x21-\\x7e", "word": "a-zA-Z0-9_", "ascii": "\\x00-\\x7f",
}
_POSIX_RE = re.compile(r"\[([:.=])(\^?)([a-z]*)\1\]")


def _pcre_to_python(p: str) -> str:
    """Rewrite the PCRE constructs whose Python spelling differs; Python's compiler rejects the
    rest of what it does not know."""
    out = []
    i, n = 0, len(p)
    in_class = False
    class_start = 0
    while i < n:
        c = p[i]
        if c == "\\" and i + 1 < n:
            e = p[i + 1]
            if not in_class and e == "Z":
                out.append(r"(?=\n?\Z)")
            elif not in_class and e == "z":
                out.append(r"\Z")
            elif not in_class and e == "k" and i + 2 < n and p[i + 2] in "<{'":
                close = {"<": ">", "{": "}", "'": "'"}[p[i + 2]]
                end = p.find(close, i + 3)
                if end < 0:
                    raise re.error("unterminated \\k reference")
                out.append(f"(?P={p[i + 3:end]})")
                i = end + 1
                continue
            else:
                out.append(p[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "[":
                m = _POSIX_RE.match(p, i)
                if m:
                    kind, neg, name = m.groups()
                    if kind != ":":
                        raise re.error("POSIX collating elements are not supported")
                    if neg or name not in _POSIX_CLASSES:
                        raise re.error(f"unsupported POSIX class [:{neg}{name}:]")
                    out.append(_POSIX_CLASSES[name])
                    i = m.end()
                    continue
                out.append("\\[")
                i += 1
                continue
            if c == "]" and i > class_start:
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            if _POSIX_RE.match(p, i):
                raise re.error("POSIX named classes are supported only within a class")
            in_class = True
            out.append(c)
            i += 1
            if i < n and p[i] == "^":
                out.append("^")
                i += 1
            class_start = i  # a "]" right here is a literal
            if i < n and p[i] == "]":
                out.append("\\]")
                i += 1
            continue
        if c == "(" and p.startswith("(?<", i) and i + 3 < n and p[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        if c == "(" and p.startswith("(?'", i):
            end = p.find("'", i + 3)
            if end < 0:
                raise re.error("unterminated group name")
            out.append(f"(?P<{p[i + 3:end]}>")
            i = end + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _compile_regex(pattern: str, icase: bool) -> re.Pattern:
    flags = re.ASCII | (re.IGNORECASE if icase else 0)
    try:
        translated = _pcre_to_python(pattern)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(translated, flags)
    except (re.error, OverflowError, RecursionError, ValueError) as e:
        raise ConfigError(f"cannot compile regular expression /{pattern}/: {e}") from None


# ----------------------------------------------------------------------------------------------
# Parser

_MAX_DEPTH = 64


class _Parser:
    def __init__(self, text: str):
        self.toks = _Lexer(text).tokens()
        self.pos = 0
        self.depth = 0
        self.uses_user = False

    def peek(self) -> tuple:
        return self.toks[self.pos]

    def take(self) -> tuple:
        t = self.toks[self.pos]
        self.pos += 1
        return t

    def fail(self, what: str, tok: tuple | None = None):
        tok = tok or self.peek()
        where = f" at offset {tok[-1]}" if isinstance(tok[-1], int) else ""
        raise ConfigError(f"syntax error: {what}, found {_describe(tok)}{where}")

    def expect(self, kind: str, what: str):
        if self.peek()[0] != kind:
            self.fail(f"expected {what}")
        return self.take()

    def parse(self):
        fn = self.expr_or()
        if self.peek()[0] != "EOF":
            self.fail("expected end of expression or an operator (&&, ||)")
        return fn

    def nest(self):
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ConfigError(f"expression nested more than {_MAX_DEPTH} levels deep")

    def expr_or(self):
        terms = [self.expr_and()]
        while self.peek()[0] == "OR":
            self.take()
            terms.append(self.expr_and())
        if len(terms) == 1:
            return terms[0]
        if len(terms) == 2:
            a, b = terms
            return lambda ctx, st: a(ctx, st) or b(ctx, st)
        terms = tuple(terms)

        def any_of(ctx, st):
            for t in terms:
                if t(ctx, st):
                    return True
            return False
        return any_of

    def expr_and(self):
        terms = [self.expr_not()]
        while self.peek()[0] == "AND":
            self.take()
            terms.append(self.expr_not())
        if len(terms) == 1:
            return terms[0]
        if len(terms) == 2:
            a, b = terms
            return lambda ctx, st: a(ctx, st) and b(ctx, st)
        terms = tuple(terms)

        def all_of(ctx, st):
            for t in terms:
                if not t(ctx, st):
                    return False
            return True
        return all_of

    def expr_not(self):
        if self.peek()[0] == "NOT":
            self.take()
            self.nest()
            inner = self.expr_not()
            self.depth -= 1
            return lambda ctx, st: not inner(ctx, st)
        return self.primary()

    def primary(self):
        tok = self.peek()
        kind = tok[0]
        if kind == "TRUE":
            self.take()
            return lambda ctx, st: True
        if kind == "FALSE":
            self.take()
            return lambda ctx, st: False
        if kind == "(":
            self.take()
            self.nest()
            inner = self.expr_or()
            self.depth -= 1
            self.expect(")", "')'")
            return inner
        if kind == "UNARY":
            self.take()
            return self.unary(tok[1])
        if kind == "EOF":
            self.fail("expected a condition")
        left = self.word()
        return self.comparison(left)

    # -- words
    def word(self) -> _Word:
        parts = [self.atom()]
        while self.peek()[0] == "DOT":
            self.take()
            parts.append(self.atom())
        w = _concat(parts) if len(parts) > 1 else parts[0]
        if w.uses_user:
            self.uses_user = True
        return w

    def atom(self) -> _Word:
        tok = self.peek()
        if tok[0] == "WORD":
            self.take()
            return tok[1]
        if tok[0] == "ID":
            self.take()
            if self.peek()[0] != "(":
                self.fail(f"expected '(' after function name '{tok[1]}'")
            self.take()
            arg = self.word()
            self.expect(")", "')'")
            return _function(tok[1], arg)
        self.fail("expected a string, number, %{variable} or function call")

    # -- comparisons
    def comparison(self, left: _Word):
        tok = self.take()
        kind = tok[0]
        lf = left.fn
        if kind == "STR":
            right = self.word()
            op, rf = _STR_OPS[tok[1]], right.fn
            return lambda ctx, st: op(lf(ctx, st), rf(ctx, st))
        if kind == "INT":
            right = self.word()
            op, rf = _INT_OPS[tok[1]], right.fn
            return lambda ctx, st: op(_atoi64(lf(ctx, st)), _atoi64(rf(ctx, st)))
        if kind == "REG":
            rtok = self.take()
            if rtok[0] != "REGEX":
                self.fail("expected a regular expression (/.../ or m#...#) after "
                          + ("=~" if tok[1] else "!~"), rtok)
            rx = _compile_regex(rtok[1], rtok[2])
            return self.regex_test(lf, rx, tok[1])
        if kind == "IN":
            return self.in_list(lf)
        if kind == "BINARY":
            return self.binary(tok[1], lf)
        self.fail("expected a comparison operator after a word", tok)

    @staticmethod
    def regex_test(lf, rx: re.Pattern, positive: bool):
        search = rx.search
        if rx.groups:
            def match(ctx, st):
                m = search(lf(ctx, st))
                st[0] = m
                return m is not None
        else:
            def match(ctx, st):
                return search(lf(ctx, st)) is not None
        if positive:
            return match
        return lambda ctx, st: not match(ctx, st)

    def in_list(self, lf):
        tok = self.peek()
        if tok[0] == "ID":
            self.fail(f"unsupported list function '{tok[1]}' (no list-returning functions are "
                      "implemented)")
        self.expect("{", "'{' to open a list")
        words = [self.word()]
        while self.peek()[0] == ",":
            self.take()
            words.append(self.word())
        self.expect("}", "',' or '}' in a list")
        if all(w.const is not None for w in words):
            values = frozenset(w.const for w in words)
            return lambda ctx, st: lf(ctx, st) in values
        fns = tuple(w.fn for w in words)

        def test(ctx, st):
            v = lf(ctx, st)
            for f in fns:
                if f(ctx, st) == v:
                    return True
            return False
        return test

    def constant_arg(self, op: str, w: _Word) -> str:
        if not w.const_string:
            raise ConfigError(f"-{op} requires subnet/netmask as a constant quoted string")
        return w.const

    def binary(self, name: str, lf):
        op = name.lower()
        if op not in ("ipmatch", "strmatch", "strcmatch", "fnmatch"):
            raise ConfigError(f"unknown binary operator '-{name}'")
        right = self.word()
        if op == "ipmatch":
            test = _parse_subnet(name, self.constant_arg(name, right))
            return lambda ctx, st: test(lf(ctx, st))
        pathname, icase = op == "fnmatch", op == "strcmatch"
        if right.const is not None:
            rx = _fnmatch_regex(right.const, pathname, icase).fullmatch
            return lambda ctx, st: rx(lf(ctx, st)) is not None
        rf = right.fn
        return lambda ctx, st: _fnmatch_cached(rf(ctx, st), pathname, icase).fullmatch(
            lf(ctx, st)) is not None

    def unary(self, op: str):
        if op in _UNSUPPORTED_UNARY:
            raise ConfigError(f"unsupported operator -{op} ({_UNSUPPORTED_UNARY[op]})")
        if op not in "nzTRdefsLhx":
            raise ConfigError(f"unknown unary operator '-{op}'")
        if self.peek()[0] not in ("WORD", "ID"):
            self.fail(f"expected a word after -{op}")
        arg = self.word()
        af = arg.fn
        if op == "n":
            return lambda ctx, st: af(ctx, st) != ""
        if op == "z":
            return lambda ctx, st: af(ctx, st) == ""
        if op == "T":
            return lambda ctx, st: af(ctx, st).lower() not in _FALSEY
        if op == "R":
            test = _parse_subnet("R", self.constant_arg("R", arg))
            return lambda ctx, st: test(ctx.var("REMOTE_ADDR"))
        check = _file_test(op)
        return lambda ctx, st: check(af(ctx, st))


def _describe(tok: tuple) -> str:
    kind = tok[0]
    if kind == "EOF":
        return "end of expression"
    names = {"STR": None, "INT": None, "AND": "'&&'", "OR": "'||'", "NOT": "'!'", "TRUE": "'true'",
             "FALSE": "'false'", "IN": "'in'", "DOT": "'.'", "WORD": "a word",
             "REGEX": "a regular expression"}
    if kind in ("STR", "INT"):
        return f"'{tok[1] if kind == 'STR' else '-' + tok[1]}'"
    if kind in ("ID",):
        return f"'{tok[1]}'"
    if kind in ("UNARY", "BINARY"):
        return f"'-{tok[1]}'"
    if kind == "REG":
        return "'=~'" if tok[1] else "'!~'"
    return names.get(kind) or f"'{kind}'"


# ----------------------------------------------------------------------------------------------
# Public API

class Condition:
    """A parsed boolean expression; immutable, hashable, compared by its source text."""

    __slots__ = ("text", "uses_user", "_fn")

    def __init__(self, text: str, fn, uses_user: bool):
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "uses_user", uses_user)
        object.__setattr__(self, "_fn", fn)

    def __setattr__(self, name, value):
        raise AttributeError("Condition is immutable")

    def __delattr__(self, name):
        raise AttributeError("Condition is immutable")

    def evaluate(self, ctx: ExprContext) -> bool:
        return bool(self._fn(ctx, [None]))

    def __eq__(self, other):
        return isinstance(other, Condition) and other.text == self.text

    def __hash__(self):
        return hash(("Condition", self.text))

    def __repr__(self):
        return f"Condition({self.text!r})"


def parse_condition(text: str) -> Condition:
    """Parse a boolean ap_expr (the text inside `<If "...">` or after `Require expr`)."""
    if not isinstance(text, str):
        raise ConfigError("expression must be a string")
    if not text.strip(_WS):
        raise ConfigError("empty expression")
    try:
        parser = _Parser(text)
        fn = parser.parse()
    except RecursionError:
        raise ConfigError("expression nested too deeply") from None
    return Condition(text, fn, parser.uses_user)
