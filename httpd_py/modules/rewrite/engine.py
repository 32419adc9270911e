"""mod_rewrite's engine: rules and conditions parsed once, applied to a request.

Pure apart from the file tests of RewriteCond (``-f -d -s -l -x``) and the map files: no
sockets, no logging of its own (trace lines go through ``Ctx.trace``, a callable the hook layer
supplies only when ``LogLevel rewrite:traceN`` asks for them).

Shapes (all frozen, built at configuration time, regexes compiled there)::

    Cond(input, pattern, kind, regex, nocase, ornext, novary, negate)
    Rule(pattern, regex, negate, output, flags, conds, status, type, handler, env, cookies,
         skip, maxrounds, escapes, noescapes)

A request is rewritten through a ``State`` (Apache's request_rec fields mod_rewrite reads and
writes: filename, args, path_info, env, notes, ...); ``apply_list`` runs a rule list over it as
``apply_rewrite_list`` does, ``translate`` and ``fixup`` are the server-context and
per-directory entry points (hook_uri2file and hook_fixup) and return a ``Decision``.

Behaviour follows Apache 2.4.71's mod_rewrite as observed and as its manual describes: the
per-directory prefix is stripped before matching and added back to relative substitutions;
``?`` in a substitution splits the query (QSA/QSD/QSL); absolute URLs redirect (302 unless
R=code), are reduced when they name this server; local results are DocumentRoot-relative unless
their first path segment exists and the substitution spelt it; a ``?`` produced by an expansion
is refused (403) unless [UnsafeAllow3F]; N is bounded (32000 rounds, or N=n).
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import stat as statmod
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Callable

from httpd_py import logids
from httpd_py.errors import ConfigError
from httpd_py.expr import _compile_regex, parse_condition

# -- rule flags (a bit set, as Apache's RULEFLAG_*) ------------------------------------------------
F_REDIRECT, F_LAST, F_NEXT, F_CHAIN, F_NOSUBREQ, F_NOTMATCH, F_PROXY, F_PT, F_QSA, F_NC, \
    F_NE, F_NOSUB, F_STATUS, F_B, F_DPI, F_QSD, F_END, F_BNP, F_QSL, F_QSNONE, F_BCTLS, \
    F_UNSAFE_PREFIX_STAT, F_UNSAFE_3F, F_UNC = (1 << i for i in range(1, 25))

# the result of one rule
RC_NOMATCH, RC_MATCH, RC_NOSUB, RC_STATUS_SET = 0, 1, 2, 3
# the result of a rule list
ACTION_NONE, ACTION_NORMAL, ACTION_NOESCAPE, ACTION_STATUS, ACTION_STATUS_SET = 0, 1, 2, 4, 8

MAX_ROUNDS = 32000
MAX_REG_MATCH = 10

# RewriteOptions (Apache's OPTION_* bits)
O_INHERIT, O_INHERIT_BEFORE, O_NOSLASH, O_ANYURI, O_MERGEBASE, O_INHERIT_DOWN, \
    O_INHERIT_DOWN_BEFORE, O_IGNORE_INHERIT, O_IGNORE_CONTEXT_INFO, O_LEGACY_PREFIX_DOCROOT, \
    O_UNSAFE_PREFIX_STAT = (1 << i for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12))

OPTION_WORDS = {"inherit": O_INHERIT, "inheritbefore": O_INHERIT_BEFORE,
                "inheritdown": O_INHERIT_DOWN, "inheritdownbefore": O_INHERIT_DOWN_BEFORE,
                "ignoreinherit": O_IGNORE_INHERIT, "allownoslash": O_NOSLASH,
                "allowanyuri": O_ANYURI, "mergebase": O_MERGEBASE,
                "ignorecontextinfo": O_IGNORE_CONTEXT_INFO,
                "legacyprefixdocroot": O_LEGACY_PREFIX_DOCROOT,
                "unsafeprefixstat": O_UNSAFE_PREFIX_STAT}

# RewriteCond pattern kinds
K_REGEX, K_FILE, K_SIZE, K_LINK, K_DIR, K_XBIT, K_LU_URL, K_LU_FILE, K_STR_LT, K_STR_LE, \
    K_STR_EQ, K_STR_GT, K_STR_GE, K_INT_LT, K_INT_LE, K_INT_EQ, K_INT_GT, K_INT_GE, \
    K_EXPR = range(19)

_HTTP_REDIRECT = range(300, 400)
#: statuses Apache knows (ap_index_of_response): R=<other> is a configuration error
KNOWN_STATUSES = frozenset((
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
    305, 306, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414,
    415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504,
    505, 506, 507, 508, 510, 511))


# -- parsing -------------------------------------------------------------------------------------
def parse_argline(text: str) -> tuple[str, str, str | None]:
    """Apache's own argument splitter for RewriteRule/RewriteCond (``parseargline``): up to three
    words, each optionally quoted with " or ', a backslash before a space keeps the space (and
    the backslash) in the word.  Raises ValueError for fewer than two words."""
    s = text
    n = len(s)
    i = 0
    words: list[str] = []
    for k in range(3):
        while i < n and s[i] in " \t\r\n\f\v":
            i += 1
        if k == 2 and i >= n:
            break
        quote = ""
        if i < n and s[i] in "\"'":
            quote = s[i]
            i += 1
        start = i
        while i < n:
            c = s[i]
            if (c in " \t\r\n\f\v" and not quote) or (quote and c == quote):
                break
            if c == "\\" and i + 1 < n and s[i + 1] in " \t\r\n\f\v":
                i += 2
                continue
            i += 1
        words.append(s[start:i])
        if i >= n:
            if k == 0:
                raise ValueError("bad argument line")
            break
        i += 1                          # the separator (or closing quote) is dropped
        if k == 2:
            break
    if len(words) < 2:
        raise ValueError("bad argument line")
    return words[0], words[1], (words[2] if len(words) > 2 else None)


def parse_flag_field(field_text: str) -> list[tuple[str, str | None]]:
    """``[A,B=x, C]`` -> [("A", None), ("B", "x"), ("C", None)] (cmd_parseflagfield)."""
    if len(field_text) < 2 or field_text[0] != "[" or field_text[-1] != "]":
        raise ValueError("bad flag delimiters")
    out = []
    for part in field_text[1:-1].split(","):
        part = part.strip(" \t")
        if not part:
            # Apache stops at an empty element ("[L,,R]" reads only L)
            break
        key, eq, val = part.partition("=")
        out.append((key, val if eq else None))
    return out


def compile_regex(pattern: str, nocase: bool) -> re.Pattern:
    """A PCRE pattern as Python's ``re`` reads it (the project's one translation, expr.py)."""
    return _compile_regex(pattern, nocase)


@dataclass(frozen=True)
class Cond:
    input: str                  # the TestString (expanded per request)
    pattern: str                # as written (with ! and operator), for the trace
    kind: int
    operand: str                # the pattern without !, operator (the compare value)
    regex: Any = None           # compiled regex (K_REGEX), ap_expr Condition (K_EXPR)
    nocase: bool = False
    ornext: bool = False
    novary: bool = False
    negate: bool = False


@dataclass(frozen=True)
class Rule:
    pattern: str
    regex: Any
    output: str
    flags: int = 0
    conds: tuple = ()
    status: int = 302
    mimetype: str | None = None
    handler: str | None = None
    env: tuple = ()
    cookies: tuple = ()
    skip: int = 0
    maxrounds: int = MAX_ROUNDS
    escapes: str | None = None
    noescapes: str | None = None
    where: str = ""             # file:line, for messages


def parse_cond(raw: str, warn: Callable[[str], None] | None = None) -> Cond:
    """One RewriteCond line (its raw argument text)."""
    try:
        a1, a2, a3 = parse_argline(raw)
    except ValueError:
        raise ConfigError(f"RewriteCond: bad argument line '{raw}'") from None
    nocase = ornext = novary = False
    if a3 is not None:
        try:
            items = parse_flag_field(a3)
        except ValueError as e:
            raise ConfigError(f"RewriteCond: {e}") from None
        for key, _val in items:
            k = key.lower()
            if k in ("nocase", "nc"):
                nocase = True
            elif k in ("ornext", "or"):
                ornext = True
            elif k in ("novary", "nv"):
                novary = True
            else:
                raise ConfigError(f"RewriteCond: unknown flag '{key}'")
    written = a2
    negate = False
    p = a2
    if p.startswith("!"):
        negate = True
        p = p[1:]
    kind = K_REGEX
    if a1.lower() == "expr":
        kind = K_EXPR
    elif len(p) >= 2:
        if p[0] == "-":
            if len(p) == 2:
                kind = {"f": K_FILE, "s": K_SIZE, "d": K_DIR, "x": K_XBIT, "h": K_LINK,
                        "L": K_LINK, "l": K_LINK, "U": K_LU_URL, "F": K_LU_FILE}.get(p[1],
                                                                                  K_REGEX)
            elif len(p) > 3:
                op = p[1:3]
                if op == "lt":
                    kind, p = K_INT_LT, p[3:]
                elif op == "le":
                    kind, p = K_INT_LE, p[3:]
                elif op == "gt":
                    kind, p = K_INT_GT, p[3:]
                elif op == "ge":
                    kind, p = K_INT_GE, p[3:]
                elif op == "eq":
                    kind, p = K_INT_EQ, p[3:]
                elif op == "ne":
                    kind, p, negate = K_INT_EQ, p[3:], not negate
        elif p[0] == ">":
            if p[1] == "=":
                kind, p = K_STR_GE, p[2:]
            else:
                kind, p = K_STR_GT, p[1:]
        elif p[0] == "<":
            if p[1] == "=":
                kind, p = K_STR_LE, p[2:]
            else:
                kind, p = K_STR_LT, p[1:]
        elif p[0] == "=":
            kind, p = K_STR_EQ, p[1:]
            if p == '""':
                p = ""
    if kind not in (K_REGEX, K_STR_LT, K_STR_LE, K_STR_EQ, K_STR_GT, K_STR_GE) and nocase:
        if warn is not None:
            warn(f"RewriteCond: NoCase option for non-regex pattern '{p}' is not supported "
                 f"and will be ignored.")
        nocase = False
    rx = None
    if kind == K_REGEX:
        try:
            rx = compile_regex(p, nocase)
        except ConfigError:
            raise ConfigError(f"RewriteCond: cannot compile regular expression '{p}'") from None
    elif kind == K_EXPR:
        try:
            rx = parse_condition(p)
        except ConfigError as e:
            raise ConfigError(f'RewriteCond: cannot compile expression "{p}": {e.msg}') \
                from None
    return Cond(a1, written, kind, p, rx, nocase, ornext, novary, negate)


_FLAG_ERR = "RewriteRule: unknown flag '{}'"


def parse_rule(raw: str, conds: tuple = (), *, proxy_available: bool = False,
               handler_ok: Callable[[str], bool] | None = None, where: str = "") -> Rule:
    """One RewriteRule line (its raw argument text) with the RewriteConds written before it."""
    try:
        a1, a2, a3 = parse_argline(raw)
    except ValueError:
        raise ConfigError(f"RewriteRule: bad argument line '{raw}'") from None
    flags = 0
    status = 302
    mimetype = handler = escapes = noescapes = None
    env: list[str] = []
    cookies: list[str] = []
    skip = 0
    maxrounds = MAX_ROUNDS
    if a3 is not None:
        try:
            items = parse_flag_field(a3)
        except ValueError as e:
            raise ConfigError(f"RewriteRule: {e}") from None
        for key, val in items:
            k = key.lower()
            v = val if val is not None else ""
            if k in ("b", "backrefescaping"):
                flags |= F_B
                if v:
                    escapes = v
            elif k == "bne":
                if not v:
                    raise ConfigError("RewriteRule: flag 'BNE' wants a list of characters "
                                      "(i.e. [BNE=...])")
                noescapes = v
            elif k in ("bnp", "backrefernoplus"):
                flags |= F_BNP
            elif k == "bctls":
                flags |= F_BCTLS | F_B
            elif k in ("c", "chain"):
                flags |= F_CHAIN
            elif k in ("co", "cookie"):
                cookies.append(v)
            elif k in ("d", "dpi", "discardpath"):
                flags |= F_DPI
            elif k.startswith("d"):
                pass                    # Apache ignores other D... words silently
            elif k in ("e", "env"):
                env.append(v)
            elif k == "end":
                flags |= F_END
            elif k in ("f", "forbidden"):
                flags |= F_STATUS | F_NOSUB
                status = 403
            elif k in ("g", "gone"):
                flags |= F_STATUS | F_NOSUB
                status = 410
            elif k in ("h", "handler"):
                if handler_ok is not None and not handler_ok(v):
                    raise ConfigError(f"RewriteRule: handler '{v}' is not built into httpd-py: "
                                      f"the files it should run would be served as they are; "
                                      f"refused rather than ignored")
                handler = v
            elif k in ("l", "last"):
                flags |= F_LAST
            elif k in ("ne", "noescape"):
                flags |= F_NE
            elif k in ("n", "next"):
                flags |= F_NEXT
                if v:
                    maxrounds = _atoi(v)
            elif k in ("ns", "nosubreq"):
                flags |= F_NOSUBREQ
            elif k in ("nc", "nocase"):
                flags |= F_NC
            elif k in ("p", "proxy"):
                if not proxy_available:
                    raise ConfigError("RewriteRule: flag [P] needs mod_proxy, which httpd-py "
                                      "does not build yet; refused rather than ignored (the "
                                      "request would be served locally instead of proxied)")
                flags |= F_PROXY
            elif k in ("pt", "passthrough"):
                flags |= F_PT
            elif k in ("qsa", "qsappend"):
                flags |= F_QSA
            elif k in ("qsd", "qsdiscard"):
                flags |= F_QSD
            elif k in ("qsl", "qslast"):
                flags |= F_QSL
            elif k in ("r", "redirect"):
                flags |= F_REDIRECT
                if v:
                    lv = v.lower()
                    code = 0
                    if lv == "permanent":
                        code = 301
                    elif lv == "temp":
                        code = 302
                    elif lv == "seeother":
                        code = 303
                    elif v[0].isdigit():
                        code = _atoi(v)
                        if code != 500 and code not in KNOWN_STATUSES:
                            raise ConfigError(f"RewriteRule: invalid HTTP response code "
                                              f"'{v}' for flag 'R'")
                        if code not in _HTTP_REDIRECT:
                            flags |= F_STATUS | F_NOSUB
                    status = code
            elif k in ("s", "skip"):
                skip = _atoi(v)
            elif k in ("t", "type"):
                mimetype = v
            elif k == "unsafeprefixstat":
                flags |= F_UNSAFE_PREFIX_STAT
            elif k == "unsafeallow3f":
                flags |= F_UNSAFE_3F
            elif k == "unc":
                flags |= F_UNC
            else:
                raise ConfigError(_FLAG_ERR.format(key))
    pattern = a1
    if pattern.startswith("!"):
        flags |= F_NOTMATCH
        pattern = pattern[1:]
    try:
        rx = compile_regex(pattern, bool(flags & F_NC))
    except ConfigError:
        raise ConfigError(f"RewriteRule: cannot compile regular expression '{pattern}'") \
            from None
    output = a2
    if output == "-":
        flags |= F_NOSUB
    if output.endswith("?"):
        if flags & F_QSA:
            flags |= F_QSL
        else:
            flags |= F_QSNONE
            output = output[:-1]
    elif flags & F_QSD and "?" not in output:
        flags |= F_QSNONE
    return Rule(pattern, rx, output, flags, tuple(conds), status, mimetype, handler,
                tuple(env), tuple(cookies), skip, maxrounds, escapes, noescapes, where)


def _atoi(s: str) -> int:
    """C's atoi: leading blanks, a sign, digits; anything else ends it (0 when none)."""
    m = re.match(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", s)
    if not m:
        return 0
    v = int(m.group(1))
    return max(-2 ** 31, min(2 ** 31 - 1, v))


# -- escaping --------------------------------------------------------------------------------------
_PATH_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                       "$-_.+!*'(),:;@&=/~")


def escape_uri(s: str) -> str:
    """ap_escape_uri (ap_os_escape_path, partial): %xx (lower-case hex) for everything but
    alphanumerics and ``$-_.+!*'(),:;@&=/~``."""
    if all(c in _PATH_SAFE for c in s):
        return s
    return "".join(c if c in _PATH_SAFE else "%%%02x" % (ord(c) & 0xFF) for c in s)


def _is_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _vchar_obstext(c: str) -> bool:
    o = ord(c)
    return o != 0 and not (o < 32 or o == 127) and c != " "


def escape_backref(s: str, escapes: str | None, noescapes: str | None, flags: int) -> str:
    """The [B] escaping of a back-reference (escape_backref): like PHP's urlencode, space as '+'
    unless [BNP]; [B=chars] only those, [BNE=chars] never those, [BCTLS] controls and space."""
    noplus = bool(flags & F_BNP)
    ctls = bool(flags & F_BCTLS)
    out = []
    for c in s:
        hit = (not _vchar_obstext(c)) if ctls else (escapes is None)
        if (hit or (escapes is not None and c in escapes)) and \
                (noescapes is None or c not in noescapes):
            if _is_alnum(c) or c == "_":
                out.append(c)
            elif c == " " and not noplus:
                out.append("+")
            else:
                out.append("%%%02x" % (ord(c) & 0xFF))
        else:
            out.append(c)
    return "".join(out)


def unescape_url(s: str) -> str:
    """ap_unescape_url's result text (bad escapes stay as written)."""
    if "%" not in s:
        return s
    out = []
    i, n = 0, len(s)
    hexd = "0123456789abcdefABCDEF"
    while i < n:
        c = s[i]
        if c == "%" and i + 2 < n and s[i + 1] in hexd and s[i + 2] in hexd:
            out.append(chr(int(s[i + 1:i + 3], 16)))
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


# -- absolute URIs -------------------------------------------------------------------------------
_SCHEMES = (("ajp://", True), ("balancer://", True), ("ftp://", False), ("fcgi://", True),
            ("gopher://", False), ("http://", True), ("https://", True), ("h2://", True),
            ("h2c://", True), ("ldap://", False), ("mailto:", True), ("news:", False),
            ("nntp://", False), ("scgi://", True), ("ws://", True), ("wss://", True))


def absolute_uri(uri: str) -> tuple[int, bool]:
    """(length of the scheme part incl. "://", whether the scheme takes a query), or (0, False)
    (is_absolute_uri)."""
    if not uri or uri[0] == "/" or len(uri) <= 5:
        return 0, False
    low = uri[:12].lower()
    for scheme, qs in _SCHEMES:
        if low.startswith(scheme):
            return len(scheme), qs
    if low.startswith("unix:"):
        return (7 if uri[5:7] == "//" else 5), True
    return 0, False


def escape_absolute_uri(uri: str, scheme_len: int) -> str:
    """Escape the path part of an absolute URL for a redirect (escape_absolute_uri)."""
    if not scheme_len or len(uri) < scheme_len:
        return uri
    cp = scheme_len
    if uri[cp - 1] == "/":
        while cp < len(uri) and uri[cp] != "/":
            cp += 1
        if cp >= len(uri) or cp + 1 >= len(uri):
            return uri
        cp += 1
        if uri[:4].lower() == "ldap":
            parts = uri[cp:].split("?", 4)
            return uri[:cp] + "?".join(escape_uri(p) for p in parts)
    return uri[:cp] + escape_uri(uri[cp:])


# -- the request as mod_rewrite sees it ----------------------------------------------------------
@dataclass
class State:
    """The request_rec fields mod_rewrite reads and writes (the hook layer copies them from and
    back to ``hooks.Request``).  ``args`` None: no query at all (Apache's NULL r->args)."""
    uri: str
    filename: str | None
    args: str | None
    method: str = "GET"
    headers: dict = field(default_factory=dict)      # lower-case names
    the_request: str = ""
    protocol: str = "HTTP/1.1"
    https: bool = False
    scheme: str = "http"
    server_name: str = ""          # ap_get_server_name_for_url
    server_port: int = 80          # ap_get_server_port
    server_names: tuple = ()       # ServerName + ServerAlias (lower-case) for reduce_uri
    server_addrs: tuple = ()       # (host, port|None) of the <VirtualHost> addresses
    conf_port: int = 0             # the port ServerName gives (0: none), Apache's s->port
    server_admin: str = ""
    local_ip: str = ""
    local_port: int = 0
    remote_ip: str = ""
    remote_port: int = 0
    document_root: str = ""
    context_prefix: str = ""
    context_document_root: str = ""
    path_info: str = ""
    user: str | None = None
    auth_type: str | None = None
    env: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    pool: dict = field(default_factory=dict)         # lives across internal redirects
    ssl_vars: Any = None           # callable(name) -> str, or None
    is_subreq: bool = False
    unparsed_uri: str = ""
    limit_req_line: int = 8190
    request_time: float = 0.0
    status: int = 200
    headers_out: list = field(default_factory=list)
    err_headers_out: list = field(default_factory=list)
    options: int = 0               # the server conf's RewriteOptions (LegacyPrefixDocroot)
    errors: list = field(default_factory=list)       # (msgid, text) for the error log
    lookup_uri: Any = None         # callable(uri) -> status  (a sub-request, -U / LA-U)
    lookup_file: Any = None        # callable(path) -> (status, filename)  (-F)
    server_software: str = "Apache"

    @property
    def default_port(self) -> int:
        return 443 if self.scheme == "https" else 80


def qualify(state: State, path: str) -> str:
    """fully_qualify_uri: scheme://name[:port] before a path that is not absolute yet."""
    if state.method == "CONNECT" or absolute_uri(path)[0]:
        return path
    port = "" if state.server_port == state.default_port else f":{state.server_port}"
    return f"{state.scheme}://{state.server_name}{port}{'' if path.startswith('/') else '/'}" \
           f"{path}"


# -- expansion -------------------------------------------------------------------------------------
class Ctx:
    """One rule list applied to one request (rewrite_ctx)."""

    __slots__ = ("st", "perdir", "uri", "rr", "rc", "vary", "vary_this", "maps", "trace",
                 "tlevel", "lastsub", "rewritten_dir")

    def __init__(self, st: State, perdir: str | None, maps: dict, trace=None, tlevel: int = 0,
                 rewritten_dir: str | None = None):
        self.st = st
        self.perdir = perdir
        self.uri = ""
        self.rr = None              # the rule's match (re.Match) or None
        self.rc = None              # the last matched condition's match
        self.vary: list[str] = []
        self.vary_this: list[str] = []
        self.maps = maps
        self.trace = trace
        self.tlevel = tlevel
        self.lastsub: Rule | None = None
        self.rewritten_dir = rewritten_dir      # baseurl or directory, for LA-U in per-dir

    def log(self, level: int, text: str, perdir: bool = True) -> None:
        if self.tlevel >= level and self.trace is not None:
            self.trace(level, self.perdir if perdir else None, text)

    # ap_expr's context (RewriteCond expr)
    def var(self, name: str) -> str:
        return lookup_variable(name, self)

    def header(self, name: str) -> str:
        return self.st.headers.get(name.lower(), "") or ""

    def env(self, name: str) -> str:
        return self.st.env.get(name, "")


def _header(name: str, ctx: Ctx) -> str | None:
    v = ctx.st.headers.get(name.lower())
    if v is not None and name.lower() != "host":
        ctx.vary_this.append(name)
    return v


_HEADER_VARS = {"HTTP_ACCEPT": "Accept", "HTTP_COOKIE": "Cookie", "HTTP_FORWARDED": "Forwarded",
                "HTTP_HOST": "Host", "HTTP_PROXY_CONNECTION": "Proxy-Connection",
                "HTTP_REFERER": "Referer", "HTTP_USER_AGENT": "User-Agent"}


def _owner_name(path: str, group: bool) -> str:
    """The owner (group) of the file, or of the directory Apache's walk stopped in."""
    st = None
    p = path
    while p:
        try:
            st = os.stat(p)
            break
        except (OSError, ValueError):
            if p == "/":
                break
            p = os.path.dirname(p.rstrip("/")) or "/"
    if st is None:
        return "<unknown>"
    try:
        if group:
            return grp.getgrgid(st.st_gid).gr_name
        return pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        return str(st.st_gid if group else st.st_uid)


def lookup_variable(var: str, ctx: Ctx) -> str:
    """%{NAME} (lookup_variable): every name of the 2.4 manual the server can know; an unknown
    name is ""."""
    st = ctx.st
    if len(var) < 4:
        return ""
    if var[3] == ":":
        if len(var) > 4 and var[:3].upper() == "ENV":
            name = var[4:]
            v = st.notes.get(name)
            if v is None:
                v = st.env.get(name)
            if v is None:
                v = os.environ.get(name)
            return v or ""
        if len(var) > 4 and var[:3].upper() == "SSL":
            if st.ssl_vars is None:
                return ""
            return st.ssl_vars(var[4:]) or ""
        return ""
    if len(var) > 4 and var[4] == ":":
        if len(var) > 5:
            head = var[:4].upper()
            if head == "HTTP":
                return _header(var[5:], ctx) or ""
            if head in ("LA-U", "LA-F"):
                return _lookahead(head, var[5:], ctx)
        return ""
    v = var.upper()
    if v.startswith("TIME"):
        tm = time.localtime(time.time())
        if v == "TIME":
            r = time.strftime("%Y%m%d%H%M%S", tm)
            ctx.log(1, f"RESULT='{r}'")
            return r
        got = {"TIME_YEAR": "%04d" % tm.tm_year, "TIME_MON": "%02d" % tm.tm_mon,
               "TIME_DAY": "%02d" % tm.tm_mday, "TIME_HOUR": "%02d" % tm.tm_hour,
               "TIME_MIN": "%02d" % tm.tm_min, "TIME_SEC": "%02d" % tm.tm_sec,
               "TIME_WDAY": "%d" % ((tm.tm_wday + 1) % 7)}.get(v)
        if got is not None:
            return got
    if v in _HEADER_VARS:
        return _header(_HEADER_VARS[v], ctx) or ""
    if v == "IPV6":
        on = ":" in st.remote_ip and not st.remote_ip.lower().startswith("::ffff:")
        ctx.log(1, f"IPV6='{'on' if on else 'off'}'")
        return "on" if on else "off"
    if v == "HTTPS":
        return "on" if st.https else "off"
    if v == "IS_SUBREQ":
        return "true" if st.is_subreq else "false"
    if v == "PATH_INFO":
        return st.path_info or ""
    if v == "AUTH_TYPE":
        return st.auth_type or ""
    if v == "SERVER_NAME":
        return st.server_name
    if v == "REMOTE_ADDR":
        return st.remote_ip
    if v == "SERVER_ADDR":
        return st.local_ip
    if v == "THE_REQUEST":
        return st.the_request
    if v == "API_VERSION":
        return "20120211:142"
    if v == "SERVER_PORT":
        return str(st.server_port)
    if v == "REMOTE_HOST":
        return st.remote_ip
    if v == "REMOTE_PORT":
        return str(st.remote_port)
    if v == "REMOTE_USER":
        return st.user or ""
    if v == "SCRIPT_USER":
        return _owner_name(st.filename, False) if ctx.perdir and st.filename else "<unknown>"
    if v == "REQUEST_URI":
        return st.uri
    if v == "SCRIPT_GROUP":
        return _owner_name(st.filename, True) if ctx.perdir and st.filename else "<unknown>"
    if v == "REMOTE_IDENT":
        return ""
    if v == "QUERY_STRING":
        return st.args or ""
    if v == "SERVER_ADMIN":
        return st.server_admin
    if v == "DOCUMENT_ROOT":
        return st.document_root
    if v == "CONTEXT_PREFIX":
        return st.context_prefix
    if v == "REQUEST_METHOD":
        return st.method
    if v == "REQUEST_SCHEME":
        return st.scheme
    if v in ("SCRIPT_FILENAME", "REQUEST_FILENAME"):
        return st.filename or ""
    if v == "SERVER_PROTOCOL":
        return st.protocol
    if v == "SERVER_SOFTWARE":
        return st.server_software
    if v == "CONN_REMOTE_ADDR":
        return st.remote_ip
    if v == "CONTEXT_DOCUMENT_ROOT":
        return st.context_document_root or st.document_root
    return ""


def _lookahead(kind: str, var: str, ctx: Ctx) -> str:
    """%{LA-U:var} / %{LA-F:var}: a variable as a sub-request would see it.  Without a
    sub-request facility from the pipeline, the look-ahead answers what this request knows,
    which is what Apache answers for the common %{LA-U:REMOTE_USER} before authentication
    has run... only when the variable does not depend on the sub-request."""
    return lookup_variable(var, ctx)


def _find_closing_curly(s: str, i: int) -> int:
    depth = 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == "}":
            depth -= 1
            if depth == 0:
                return i
        elif c == "{":
            depth += 1
        i += 1
    return -1


def _find_char_in_curlies(s: str, i: int, ch: str) -> int:
    depth = 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == ch and depth == 1:
            return i
        if c == "}":
            depth -= 1
            if depth == 0:
                return -1
        elif c == "{":
            depth += 1
        i += 1
    return -1


_SPECIALS = "\\$%"


def expand(text: str, ctx: Ctx, rule: Rule | None = None, track_qmark: bool = False
           ) -> tuple[str, int]:
    """do_expand: ``\\c``, ``%{VAR}``, ``${map:key|default}``, ``$N``, ``%N`` in one pass (an
    expansion's result is never expanded again).  Returns (text, unsafe_qmark): -1 no '?', 0 the
    deciding '?' was literal, 1 it came from an expansion (the first '?', or the last with QSL)."""
    if not any(c in text for c in _SPECIALS) and not (track_qmark and "?" in text):
        return text, -1
    out: list[str] = []
    qm = -1
    tracking = track_qmark
    qsl = rule is not None and bool(rule.flags & F_QSL)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c not in _SPECIALS:
            j = i
            while j < n and text[j] not in _SPECIALS:
                j += 1
            seg = text[i:j]
            if tracking and "?" in seg:
                qm = 0
                if not qsl:
                    tracking = False
            out.append(seg)
            i = j
            continue
        expanded = False
        piece = ""
        if c == "\\":
            if i + 1 >= n:
                out.append("\\")
                break
            out.append(text[i + 1])
            i += 2
            continue
        if i + 1 < n and text[i + 1] == "{":
            end = _find_closing_curly(text, i + 2)
            if end < 0:
                out.append(text[i:i + 2])
                i += 2
                continue
            if c == "%":
                piece = lookup_variable(text[i + 2:end], ctx)
                expanded = True
                i = end + 1
            else:
                colon = _find_char_in_curlies(text, i + 2, ":")
                if colon < 0:
                    out.append(text[i:i + 2])
                    i += 2
                    continue
                name = text[i + 2:colon]
                rest = text[colon + 1:end]
                bar = _find_char_in_curlies(rest, 0, "|")
                key, dflt = (rest[:bar], rest[bar + 1:]) if bar >= 0 else (rest, None)
                value = lookup_map(ctx, name, expand(key, ctx, rule)[0])
                if value is None and dflt:
                    value = expand(dflt, ctx, rule)[0]
                piece = value or ""
                expanded = True
                i = end + 1
        elif i + 1 < n and text[i + 1].isdigit() and text[i + 1].isascii():
            num = ord(text[i + 1]) - 48
            m = ctx.rr if c == "$" else ctx.rc
            if m is not None and num < MAX_REG_MATCH and num <= m.re.groups:
                s, e = m.span(num)
                if s >= 0 and e > s:
                    piece = m.string[s:e]
                    if rule is not None and rule.flags & F_B:
                        escaped = escape_backref(piece, rule.escapes, rule.noescapes, rule.flags)
                        ctx.log(5, f"escaping backreference '{piece}' to '{escaped}'")
                        piece = escaped
                    expanded = True
            i += 2
        else:
            out.append(c)
            i += 1
            continue
        if tracking and expanded and "?" in piece:
            qm = 1
            if not qsl:
                tracking = False
        out.append(piece)
    return "".join(out), qm


def lookup_map(ctx: Ctx, name: str, key: str) -> str | None:
    spec = ctx.maps.get(name)
    if spec is None:
        return None
    return _maps.lookup(spec, key, ctx)


# -- conditions ------------------------------------------------------------------------------------
def _compare(a: str, b: str) -> int:
    """compare_lexicography: the longer string is greater; equal lengths compare by bytes."""
    if len(a) != len(b):
        return 1 if len(a) > len(b) else -1
    return (a > b) - (a < b)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _casecmp(a: str, b: str) -> int:
    a, b = a.translate(_ASCII_LOWER), b.translate(_ASCII_LOWER)
    return (a > b) - (a < b)


def _stat(path: str, follow: bool = True):
    try:
        return os.stat(path) if follow else os.lstat(path)
    except (OSError, ValueError):
        return None


def apply_cond(c: Cond, ctx: Ctx) -> bool:
    st = ctx.st
    inp = "" if c.kind == K_EXPR else expand(c.input, ctx)[0]
    k = c.kind
    rc = False
    if k == K_REGEX:
        m = c.regex.search(inp)
        rc = m is not None
        if rc and not c.negate:
            ctx.rc = m
    elif k == K_FILE:
        s = _stat(inp)
        rc = s is not None and statmod.S_ISREG(s.st_mode)
    elif k == K_SIZE:
        s = _stat(inp)
        rc = s is not None and statmod.S_ISREG(s.st_mode) and s.st_size > 0
    elif k == K_LINK:
        s = _stat(inp, follow=False)
        rc = s is not None and statmod.S_ISLNK(s.st_mode)
    elif k == K_DIR:
        s = _stat(inp)
        rc = s is not None and statmod.S_ISDIR(s.st_mode)
    elif k == K_XBIT:
        s = _stat(inp)
        rc = s is not None and bool(s.st_mode & 0o111)
    elif k == K_LU_URL:
        if inp and not st.is_subreq:
            status = st.lookup_uri(inp) if st.lookup_uri is not None else 200
            rc = status < 400
            ctx.log(5, f"RewriteCond URI (-U check: path={inp} -> status={status}", False)
    elif k == K_LU_FILE:
        if inp and not st.is_subreq:
            if st.lookup_file is not None:
                status, fname = st.lookup_file(inp)
            else:
                status, fname = 200, inp
            rc = status < 300 and _stat(fname) is not None
            ctx.log(5, f"RewriteCond file (-F check: path={inp} -> file={fname} "
                       f"status={status}", False)
    elif k in (K_STR_GT, K_STR_GE):
        cmp = _casecmp(inp, c.operand) if c.nocase else _compare(inp, c.operand)
        rc = cmp >= (1 if k == K_STR_GT else 0)
    elif k in (K_STR_LT, K_STR_LE):
        cmp = _casecmp(inp, c.operand) if c.nocase else _compare(inp, c.operand)
        rc = cmp <= (-1 if k == K_STR_LT else 0)
    elif k == K_STR_EQ:
        rc = _casecmp(inp, c.operand) == 0 if c.nocase else inp == c.operand
    elif k in (K_INT_LT, K_INT_LE, K_INT_EQ, K_INT_GT, K_INT_GE):
        a, b = _atoi(inp), _atoi(c.operand)
        rc = {K_INT_LT: a < b, K_INT_LE: a <= b, K_INT_EQ: a == b, K_INT_GT: a > b,
              K_INT_GE: a >= b}[k]
    elif k == K_EXPR:
        try:
            rc = c.regex.evaluate(ctx)
        except Exception as e:          # evaluation never takes a request down
            ctx.log(1, f"RewriteCond: expr='{c.pattern}' evaluation failed: {e}")
            rc = False
    if c.negate:
        rc = not rc
    if ctx.tlevel >= 4:
        ctx.log(4, f"RewriteCond: input='{inp}' pattern='{c.pattern}'"
                   f"{' [NC]' if c.nocase else ''} => {'matched' if rc else 'not-matched'}")
    return rc


# -- rules -----------------------------------------------------------------------------------------
def _split_query(st: State, flags: int, ctx: Ctx) -> None:
    """splitout_queryargs: the '?' of the new filename starts the query (QSA appends the old
    one, QSD drops it, QSL splits at the last '?')."""
    if flags & F_QSNONE:
        ctx.log(2, "discarding query string, no parse from substitution", False)
        st.args = None
        return
    skip, qs = absolute_uri(st.filename)
    if skip and not qs:
        st.args = None
        return
    if flags & F_QSD:
        st.args = None
        ctx.log(2, "discarding query string", False)
    fn = st.filename
    q = fn.rfind("?", skip) if flags & F_QSL else fn.find("?", skip)
    if q >= 0:
        old = fn
        st.filename = fn[:q]
        new = fn[q + 1:]
        if flags & F_QSA:
            if new:
                st.args = new + "&" + (st.args or "")
        else:
            st.args = new
        if st.args is not None:
            if not st.args:
                st.args = None
            elif st.args.endswith("&"):
                st.args = st.args[:-1]
        ctx.log(3, f"split uri={old} -> uri={st.filename}, args="
                   f"{st.args if st.args is not None else '<none>'}", False)


def _reduce_uri(st: State, ctx: Ctx) -> None:
    """Strip http[s]://<this server>[:port] from the new filename (reduce_uri)."""
    fn = st.filename
    scheme = st.scheme
    lp = len(scheme)
    if not (len(fn) > lp + 3 and fn[:lp].lower() == scheme and fn[lp:lp + 3] == "://"):
        return
    rest = fn[lp + 3:]
    i = 0
    while i < len(rest) and rest[i] not in "/:":
        i += 1
    host = rest[:i]
    if i < len(rest) and rest[i] == ":":
        j = i + 1
        while j < len(rest) and rest[j] != "/":
            j += 1
        port = _atoi(rest[i + 1:j]) & 0xFFFF
        url = rest[j:] or "/"
    elif i < len(rest):
        port = st.default_port
        url = rest[i:]
    else:
        port = st.default_port
        url = "/"
    if _matches_vhost(st, host, port):
        ctx.log(3, f"reduce {fn} -> {url}", False)
        st.filename = url
        if not (st.options & O_LEGACY_PREFIX_DOCROOT):
            st.notes["mod_rewrite_uri_reduced"] = "true"


def _matches_vhost(st: State, host: str, port: int) -> bool:
    """ap_matches_request_vhost: one of the vhost's addresses, or (on its port) its names."""
    h = host.lower()
    for ahost, aport in st.server_addrs:
        if (aport is None or aport == port) and ahost.lower() == h:
            return True
    if port != st.conf_port:
        return False
    for name in st.server_names:
        if name == h or (("*" in name or "?" in name) and fnmatchcase(h, name)):
            return True
    return False


def _force_type_handler(rule: Rule, ctx: Ctx) -> None:
    st = ctx.st
    if rule.mimetype:
        t = expand(rule.mimetype, ctx, rule)[0]
        if t:
            t = t.lower()
            ctx.log(2, f"remember {st.filename} to have MIME-type '{t}'")
            st.notes["rewrite-forced-mimetype"] = t
    if rule.handler:
        h = expand(rule.handler, ctx, rule)[0]
        if h:
            h = h.lower()
            ctx.log(2, f"remember {st.filename} to have Content-handler '{h}'")
            st.notes["rewrite-forced-handler"] = h


def _set_env(items: tuple, ctx: Ctx) -> None:
    for item in items:
        name = expand(item, ctx)[0]
        if name.startswith("!"):
            ctx.st.env.pop(name[1:], None)
            ctx.log(5, f"unsetting env variable '{name[1:]}'", False)
        else:
            n, sep, v = name.partition(":")
            ctx.st.env[n] = v if sep else ""
            ctx.log(5, f"setting env variable '{n}' to '{v if sep else ''}'", False)


_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _add_cookie(spec: str, ctx: Ctx) -> None:
    """[CO=name:value:domain[:lifetime[:path[:secure[:httponly[:samesite]]]]]] (add_cookie);
    a leading ';' makes ';' the separator.  One Set-Cookie per name per request."""
    st = ctx.st
    sep = ":"
    if spec.startswith(";"):
        sep, spec = ";", spec[1:]
    toks = [t for t in spec.split(sep) if t]           # apr_strtok skips empty tokens
    if len(toks) < 3:
        return
    var, val, domain = toks[0], toks[1], toks[2]
    seen = st.pool.setdefault("rewrite-cookies", set())
    if var in seen:
        ctx.log(5, f"skipping already set cookie '{var}'", False)
        return
    expires = toks[3] if len(toks) > 3 else None
    path = toks[4] if len(toks) > 4 else None
    secure = toks[5] if len(toks) > 5 else None
    httponly = toks[6] if len(toks) > 6 else None
    samesite = toks[7] if len(toks) > 7 else None
    cookie = f"{var}={val}; path={path or '/'}; domain={domain}"
    if expires is not None:
        minutes = _atoi(expires)
        if minutes:
            t = time.gmtime(st.request_time + 60 * minutes)
            cookie += (f"; expires={_DAYS[(t.tm_wday + 1) % 7]}, {t.tm_mday:02d}-"
                       f"{_MONTHS[t.tm_mon - 1]}-{t.tm_year:04d} {t.tm_hour:02d}:"
                       f"{t.tm_min:02d}:{t.tm_sec:02d} GMT")
    if secure is not None and (secure.lower() in ("true", "secure") or secure == "1"):
        cookie += "; secure"
    if httponly is not None and (httponly.lower() in ("true", "httponly") or httponly == "1"):
        cookie += "; HttpOnly"
    if samesite is not None and samesite != "0" and samesite.lower() != "false":
        cookie += f"; SameSite={samesite}"
    st.err_headers_out.append(("Set-Cookie", cookie))
    seen.add(var)
    ctx.log(5, f"setting cookie '{cookie}'", False)


def apply_rule(rule: Rule, ctx: Ctx) -> int:
    """apply_rewrite_rule: RC_NOMATCH, RC_MATCH, RC_NOSUB or RC_STATUS_SET."""
    st = ctx.st
    ctx.uri = st.filename or ""
    perdir = ctx.perdir
    prefix_added = False
    if perdir:
        if st.path_info:
            ctx.log(3, f"add path info postfix: {ctx.uri} -> {ctx.uri}{st.path_info}")
            ctx.uri = ctx.uri + st.path_info
        if ctx.uri.startswith(perdir):
            ctx.log(3, f"strip per-dir prefix: {ctx.uri} -> {ctx.uri[len(perdir):]}")
            ctx.uri = ctx.uri[len(perdir):]
    ctx.log(3, f"applying pattern '{rule.pattern}' to uri '{ctx.uri}'")
    m = rule.regex.search(ctx.uri)
    if (m is not None) == bool(rule.flags & F_NOTMATCH):
        return RC_NOMATCH
    ctx.vary_this = []
    ctx.rc = None
    ctx.rr = None if rule.flags & F_NOTMATCH else m
    conds = rule.conds
    i = 0
    nconds = len(conds)
    while i < nconds:
        c = conds[i]
        rc = apply_cond(c, ctx)
        if c.novary:
            ctx.vary_this = []
        if c.ornext:
            if not rc:
                ctx.vary_this = []
                i += 1
                continue
            while i < nconds and conds[i].ornext:
                i += 1
        elif not rc:
            return RC_NOMATCH
        if ctx.vary_this:
            ctx.vary.extend(ctx.vary_this)
            ctx.vary_this = []
        i += 1
    newuri = ""
    if not rule.flags & F_NOSUB:
        newuri, qm = expand(rule.output, ctx, rule,
                            track_qmark=not (rule.flags & F_UNSAFE_3F))
        ctx.log(2, f"rewrite '{ctx.uri}' -> '{newuri}'")
        if qm > 0:
            st.errors.append((logids.REWRITE_UNSAFE_3F,
                              "Unsafe URL with %3f URL rewritten without UnsafeAllow3F"))
            st.status = 403
            return RC_STATUS_SET
    _set_env(rule.env, ctx)
    for cookie in rule.cookies:
        _add_cookie(expand(cookie, ctx)[0], ctx)
    if rule.flags & F_NOSUB:
        _force_type_handler(rule, ctx)
        if rule.flags & F_STATUS:
            ctx.log(2, f"forcing responsecode {rule.status} for {st.filename}")
            st.status = rule.status
        return RC_NOSUB
    if not newuri.startswith("/") and not absolute_uri(newuri)[0]:
        if perdir:
            ctx.log(3, f"add per-dir prefix: {newuri} -> {perdir}{newuri}")
            newuri = perdir + newuri
            prefix_added = True
        elif not rule.flags & (F_PROXY | F_REDIRECT):
            ctx.log(3, f"add root prefix: {newuri} -> /{newuri}")
            newuri = "/" + newuri
            prefix_added = True
    st.filename = newuri
    if perdir and rule.flags & F_DPI:
        st.path_info = ""
    _split_query(st, rule.flags, ctx)
    if rule.flags & F_PROXY:
        st.filename = "proxy:" + qualify(st, st.filename)
        ctx.log(2, f"forcing proxy-throughput with {st.filename[6:]}")
        return RC_MATCH
    if rule.flags & F_REDIRECT:
        st.filename = qualify(st, st.filename)
        ctx.log(2, f"explicitly forcing redirect with {st.filename}")
        st.status = rule.status
        return RC_MATCH
    _reduce_uri(st, ctx)
    if absolute_uri(st.filename)[0]:
        ctx.log(2, f"implicitly forcing redirect (rc={rule.status} with {st.filename}")
        st.status = rule.status
        return RC_MATCH
    if not (rule.flags & F_UNC or prefix_added):
        if not rule.output.startswith("//"):
            fn = st.filename
            k = 0
            while fn[k:k + 2] == "//":
                k += 1
            st.filename = fn[k:]
    _force_type_handler(rule, ctx)
    return RC_MATCH


def apply_list(rules: tuple, ctx: Ctx) -> int:
    """apply_rewrite_list: run the rules in order (C chains, S skips, N restarts, L/END/PT
    stop); returns ACTION_*."""
    st = ctx.st
    ctx.lastsub = None
    changed = ACTION_NONE
    rounds = 1
    n = len(rules)
    while True:
        restart = False
        i = 0
        while i < n:
            rule = rules[i]
            if st.is_subreq and rule.flags & (F_NOSUBREQ | F_REDIRECT):
                i += 1
                continue
            ctx.vary = []
            rc = apply_rule(rule, ctx)
            if rc != RC_NOMATCH:
                if not rule.flags & F_NOSUB:
                    ctx.log(2, f"setting lastsub to rule with output {rule.output}")
                    ctx.lastsub = rule
                if len(st.filename or "") > 2 * st.limit_req_line:
                    st.errors.append((logids.REWRITE_URI_TOO_LONG,
                                      f"RewriteRule '{rule.pattern}' and URI "
                                      f"'{st.uri}' exceeded maximum length "
                                      f"({2 * st.limit_req_line})"))
                    st.status = 500
                    return ACTION_STATUS
                if ctx.vary:
                    _merge_vary(st, ctx.vary)
                if rc == RC_STATUS_SET:
                    return ACTION_STATUS_SET
                if rule.flags & F_STATUS:
                    return ACTION_STATUS
                if rc != RC_NOSUB:
                    changed = ACTION_NOESCAPE if rule.flags & F_NE else ACTION_NORMAL
                if rule.flags & F_PT:
                    ctx.log(2, f"forcing '{st.filename}' to get passed through to next API "
                               f"URI-to-filename handler")
                    st.filename = "passthrough:" + (st.filename or "")
                    changed = ACTION_NORMAL
                    break
                if rule.flags & F_END:
                    ctx.log(8, "Rule has END flag, no further rewriting for this request")
                    st.pool["rewrite-end"] = True
                    break
                if rule.flags & (F_PROXY | F_LAST):
                    break
                if rule.flags & F_NEXT:
                    rounds += 1
                    if rounds >= rule.maxrounds:
                        st.errors.append((logids.REWRITE_TOO_MANY_ROUNDS,
                                          f"RewriteRule '{rule.pattern}' and URI "
                                          f"'{st.uri}' exceeded maximum number of "
                                          f"rounds ({rule.maxrounds}) via the [N] "
                                          f"flag"))
                        st.status = 500
                        return ACTION_STATUS
                    restart = True
                    break
                if rule.skip > 0:
                    i = min(n, i + rule.skip)
            else:
                while i < n and rules[i].flags & F_CHAIN:
                    i += 1
            i += 1
        if not restart:
            return changed


def _merge_vary(st: State, names: list) -> None:
    value = ", ".join(names)
    for k, (name, old) in enumerate(st.headers_out):
        if name.lower() == "vary":
            st.headers_out[k] = (name, old + ", " + value)
            return
    st.headers_out.append(("Vary", value))


# -- the two entry points ---------------------------------------------------------------------------
@dataclass
class Decision:
    """What a hook answers.  kind: "declined", "status" (an HTTP error status), "redirect"
    (status + location), "file" (serve ``filename``), "passthrough" (translate ``uri`` again
    with the rest of the server's mapping), "internal" (an internal redirect to ``uri``, query
    included), "ok" (the per-dir rules changed nothing that matters), "proxy" ([P]: hand
    ``filename``, "proxy:URL", to mod_proxy)."""
    kind: str
    status: int = 0
    location: str = ""
    filename: str = ""
    uri: str = ""
    nocanon: bool = False


DECLINED = Decision("declined")


def _bad_query(args: str | None) -> bool:
    return bool(args) and any(not _vchar_obstext(c) for c in args)


def _prefix_stat(st: State, path: str, lastsub: Rule | None, ctx: Ctx) -> bool:
    """Is ``path`` meant as a file-system path?  Its first segment must exist and the
    substitution must have spelt it (or the path lies under DocumentRoot) -- prefix_stat."""
    if not path.startswith("/"):
        return False
    rest = path.lstrip("/")
    first = rest.split("/", 1)[0]
    if first in ("..",):
        return False
    statpath = "/" + first
    if _stat(statpath) is None:
        return False
    if lastsub is None:
        ctx.log(3, f"prefix_stat no lastsub subst prefix {statpath}", False)
        return True
    ctx.log(3, f"prefix_stat compare statpath {statpath} and lastsub output "
               f"{lastsub.output} STATOK {lastsub.flags & F_UNSAFE_PREFIX_STAT} ", False)
    if lastsub.flags & F_UNSAFE_PREFIX_STAT:
        return True
    docroot = st.document_root
    cdocroot = st.context_document_root or docroot
    return (lastsub.output.startswith(statpath) or (bool(docroot) and path.startswith(docroot))
            or (cdocroot != docroot and path.startswith(cdocroot)))


def walk_split(path: str) -> tuple[str, str]:
    """(filename, path_info) as Apache's directory walk leaves them for a path that does not
    exist: the path up to and including its first missing segment, and the rest."""
    try:
        os.lstat(path)
        return path, ""
    except (OSError, ValueError):
        pass
    parts = path.split("/")
    cur = ""
    for k in range(1, len(parts)):
        cur = cur + "/" + parts[k]
        if not parts[k]:
            continue
        try:
            st = os.stat(cur)
        except (OSError, ValueError):
            rest = "/".join(parts[k + 1:])
            return cur, ("/" + rest) if k + 1 < len(parts) else ""
        if not statmod.S_ISDIR(st.st_mode):
            rest = "/".join(parts[k + 1:])
            return cur, ("/" + rest) if k + 1 < len(parts) else ""
    return path, ""


def docroot_join(docroot: str, uri: str) -> str | None:
    """ap_core_translate's merge of DocumentRoot and a URL-path (TRUENAME|SECUREROOT): None when
    the path climbs out of the root."""
    parts: list[str] = []
    for seg in uri.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(seg)
    tail = "/".join(parts)
    if uri.endswith("/") and tail:
        tail += "/"
    root = docroot.rstrip("/")
    return f"{root}/{tail}" if tail or uri.endswith("/") else (root or "/")


def _redirect_decision(st: State, rulestatus: int, skip_absolute: int, oargs: str | None,
                       ctx: Ctx) -> Decision:
    if rulestatus != ACTION_NOESCAPE:
        ctx.log(1, f"escaping {st.filename} for redirect", False)
        st.filename = escape_absolute_uri(st.filename, skip_absolute)
    if st.args is not None:
        noescape = rulestatus == ACTION_NOESCAPE or (oargs is not None and st.args == oargs)
        q = st.args if noescape else escape_uri(st.args)
        st.filename = st.filename + "?" + q
        ctx.log(1, f"{'copying' if noescape else 'escaping'} {st.args} to query string for "
                   f"redirect {'' if noescape else q}", False)
    n = st.status if st.status in _HTTP_REDIRECT else 302
    st.status = 200
    ctx.log(1, f"redirect to {st.filename} [REDIRECT/{n}]", False)
    return Decision("redirect", status=n, location=st.filename)


def _proxy_decision(st: State, rulestatus: int, proxy: bool, server: bool, ctx: Ctx
                    ) -> Decision:
    """[P]: hand the URL to mod_proxy (its handler adds the query; NE: proxy-nocanon)."""
    fn = st.filename or ""
    if not proxy:
        st.errors.append((logids.REWRITE_NO_PROXY,
                          f"attempt to make remote request from mod_rewrite without "
                          f"proxy enabled: {fn}"))
        return Decision("status", status=403)
    if server and st.path_info:
        fn += st.path_info
    if rulestatus == ACTION_NOESCAPE and any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in fn):
        # not escaped ([NE]) and not a valid URL: refused as apache2 answers it (403)
        st.errors.append((logids.REWRITE_CONTROL_CHARACTERS,
                          "Rewritten URL for the proxy contains control characters "
                          "or spaces"))
        return Decision("status", status=403)
    ctx.log(1, f"go-ahead with proxy request {fn} [OK]", server is False)
    return Decision("proxy", filename=fn, nocanon=rulestatus == ACTION_NOESCAPE)


def translate(st: State, rules: tuple, options: int, maps: dict, trace=None,
              tlevel: int = 0, proxy: bool = False) -> Decision:
    """Server-context rules (hook_uri2file), after the engine and END checks of the caller."""
    ctx = Ctx(st, None, maps, trace, tlevel)
    if not (options & O_ANYURI) and (st.unparsed_uri == "*" or not st.uri.startswith("/")):
        ctx.log(8, f"Declining, request-URI '{st.uri}' is not a URL-path. Consult the manual "
                   f"entry for the RewriteOptions directive for options and caveats about "
                   f"matching other strings.", False)
        return DECLINED
    oargs = st.args
    script_url = st.env.get("REDIRECT_SCRIPT_URL")
    st.env["SCRIPT_URL"] = script_url if script_url is not None else st.uri
    port = "" if st.server_port == st.default_port else f":{st.server_port}"
    st.env["SCRIPT_URI"] = f"{st.scheme}://{st.server_name}{port}{st.env['SCRIPT_URL']}"
    if st.filename is None:
        st.filename = st.uri
        ctx.log(2, f"init rewrite engine with requested uri {st.filename}", False)
    else:
        ctx.log(2, f"init rewrite engine with passed filename {st.filename}. Original uri = "
                   f"{st.uri}", False)
    st.options = options
    rulestatus = apply_list(rules, ctx)
    if not rulestatus:
        ctx.log(1, f"pass through {st.filename}", False)
        return DECLINED
    fn = st.filename or ""
    skip_absolute = absolute_uri(fn)[0] if fn else 0
    will_escape = skip_absolute and rulestatus != ACTION_NOESCAPE
    if st.args is not None and not will_escape and _bad_query(st.args):
        st.errors.append((logids.REWRITE_CONTROL_CHARACTERS,
                          "Rewritten query string contains control characters or "
                          "spaces"))
        return Decision("status", status=403)
    if rulestatus == ACTION_STATUS:
        n = st.status
        st.status = 200
        return Decision("status", status=n)
    if rulestatus == ACTION_STATUS_SET:
        return Decision("status", status=st.status)
    if fn.startswith("proxy:") and len(fn) > 6:
        return _proxy_decision(st, rulestatus, proxy, True, ctx)
    if skip_absolute > 0:
        return _redirect_decision(st, rulestatus, skip_absolute, oargs, ctx)
    if len(fn) > 12 and fn.startswith("passthrough:"):
        return Decision("passthrough", uri=fn[12:])
    ctx.log(2, f"local path result: {fn}", False)
    if not fn.startswith("/"):
        return Decision("status", status=400)
    reduced = None if options & O_LEGACY_PREFIX_DOCROOT else \
        st.notes.get("mod_rewrite_uri_reduced")
    lastsub = None if options & O_UNSAFE_PREFIX_STAT else ctx.lastsub
    if not _prefix_stat(st, fn, lastsub, ctx) or reduced is not None:
        joined = docroot_join(st.document_root, fn)
        if joined is None:
            ctx.log(1, f"prefixing with document_root of {fn} FAILED", False)
            st.errors.append((logids.REWRITE_CANNOT_MAP, f"Cannot map {st.the_request} to file"))
            return Decision("status", status=403)
        st.filename = joined
        ctx.log(2, f"prefixed with document_root to {st.filename}", False)
    ctx.log(1, f"go-ahead with {st.filename} [OK]", False)
    return Decision("file", filename=st.filename)


def subst_prefix_path(path: str, match: str, subst: str, ctx: Ctx | None = None) -> str:
    """Replace the directory prefix ``match`` of ``path`` with ``subst`` (RewriteBase)."""
    m = match[:-1] if match.endswith("/") else match
    ln = len(m)
    if path.startswith(m) and path[ln:ln + 1] == "/":
        rest = path[ln + 1:]
        if ctx is not None:
            ctx.log(5, f"strip matching prefix: {path} -> {rest}", False)
        base = subst if (not subst or subst.endswith("/")) else subst + "/"
        out = base + rest
        if ctx is not None:
            ctx.log(4, f"add subst prefix: {rest} -> {out}", False)
        return out
    return path


def fixup(st: State, directory: str, rules: tuple, options: int, baseurl: str | None,
          maps: dict, follow_symlinks: bool, trace=None, tlevel: int = 0,
          proxy: bool = False) -> Decision:
    """Per-directory rules (hook_fixup), after the caller checked the engine state and that
    the directory has rules of its own."""
    ctx = Ctx(st, directory, maps, trace, tlevel)
    if not options & O_NOSLASH:
        ln = len(directory) - 1
        if st.filename is not None and len(st.filename) == ln and directory[ln] == "/" and \
                directory.startswith(st.filename):
            return DECLINED
    if st.pool.get("rewrite-end"):
        ctx.log(8, "Declining, no further rewriting due to END flag")
        return DECLINED
    if not follow_symlinks:
        st.errors.append((logids.REWRITE_SYMLINKS_OFF,
                          f"Options FollowSymLinks and SymLinksIfOwnerMatch are both "
                          f"off, so the RewriteRule directive is also forbidden due "
                          f"to its similar ability to circumvent directory "
                          f"restrictions : {st.filename}"))
        return Decision("status", status=403)
    ofilename = st.filename
    oargs = st.args
    if st.filename is None:
        st.filename = st.uri
        ctx.log(2, f"init rewrite engine with requested uri {st.filename}")
    st.options = options
    rulestatus = apply_list(rules, ctx)
    if not rulestatus:
        ctx.log(1, f"pass through {st.filename}")
        st.filename = ofilename
        return DECLINED
    fn = st.filename or ""
    skip_absolute = absolute_uri(fn)[0]
    will_escape = skip_absolute and rulestatus != ACTION_NOESCAPE
    if st.args is not None and not will_escape and _bad_query(st.args):
        st.errors.append((logids.REWRITE_CONTROL_CHARACTERS,
                          "Rewritten query string contains control characters or "
                          "spaces"))
        return Decision("status", status=403)
    if rulestatus == ACTION_STATUS:
        n = st.status
        st.status = 200
        return Decision("status", status=n)
    if rulestatus == ACTION_STATUS_SET:
        return Decision("status", status=st.status)
    if fn.startswith("proxy:") and len(fn) > 6:
        return _proxy_decision(st, rulestatus, proxy, False, ctx)
    if skip_absolute > 0:
        if baseurl is not None:
            cp = fn.find("/", skip_absolute)
            if cp >= 0 and cp + 1 < len(fn):
                cp += 1
                ctx.log(2, f"trying to replace prefix {directory} with {baseurl}")
                tail = fn[cp:]
                tail2 = subst_prefix_path(tail, directory[1:] if directory.startswith("/")
                                          else directory, baseurl[1:], ctx)
                if tail2 != tail:
                    st.filename = fn[:cp] + tail2
        return _redirect_decision(st, rulestatus, skip_absolute, oargs, ctx)
    if len(fn) > 12 and fn.startswith("passthrough:"):
        fn = st.filename = fn[12:]
    if not fn.startswith("/"):
        return Decision("status", status=400)
    if ofilename is not None and fn == ofilename:
        ctx.log(1, f"initial URL equal rewritten URL: {fn} [IGNORING REWRITE]")
        return Decision("ok")
    before = fn
    if baseurl is not None:
        ctx.log(2, f"trying to replace prefix {directory} with {baseurl}")
        fn = subst_prefix_path(fn, directory, baseurl, ctx)
    else:
        root = st.document_root
        if root:
            r = root[:-1] if root.endswith("/") else root
            if fn.startswith(r) and fn[len(r):len(r) + 1] == "/":
                ctx.log(2, f"strip document_root prefix: {fn} -> {fn[len(r):]}")
                fn = fn[len(r):]
    if fn is before and not options & O_IGNORE_CONTEXT_INFO and st.context_prefix and \
            st.context_document_root:
        ctx.log(2, f"trying to replace context docroot {st.context_document_root} with context "
                   f"prefix {st.context_prefix}")
        fn = subst_prefix_path(fn, st.context_document_root, st.context_prefix, ctx)
    st.filename = fn
    ctx.log(1, f"internal redirect with {fn} [INTERNAL REDIRECT]")
    target = fn + ("?" + st.args if st.args is not None else "")
    return Decision("internal", uri=target)


from httpd_py.modules.rewrite import maps as _maps  # noqa: E402  (maps needs escape/unescape)

_maps.INTERNAL.update(escape=escape_uri, unescape=unescape_url)
