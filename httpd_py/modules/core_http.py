"""Core odds and ends the request pipeline applies (Apache's core.c / http_core.c / mod_alias):
ServerTokens, ServerSignature, TraceEnable, UseCanonicalName, SetHandler, AddDefaultCharset,
FileETag, LimitInternalRecursion, RedirectMatch and AliasMatch.

Only rows and values live here; ``http/connection.py`` reads them from the model:

    glob.core.server_tokens            "prod" | "major" | "minor" | "min" | "os" | "full"
    dir.core.server_signature          "off" | "on" | "email"
    srv.core.trace_enable              "on" | "off" | "extended"
    dir.core.use_canonical_name        "off" | "on" | "dns"
    dir.core.handler                   SetHandler's name ("none": unset)
    dir.core.add_default_charset       None (Off) or the charset
    dir.core.file_etag                 FileETagSpec
    srv.core.limit_internal_recursion  (redirects, subrequest depth)
    srv.alias.redirect_match           (RedirectMatchSpec, ...) in config order
    srv.alias.alias_match              (AliasMatchSpec, ...) in config order

A SetHandler naming a handler no module registers (``http/hooks.py`` HANDLERS) is refused at
start-up: serving the files as they are could show what the handler would have run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from httpd_py.config import values
from httpd_py.config.dirconf import register
from httpd_py.errors import ConfigError
from httpd_py.http import hooks

SERVER_TOKENS = register("glob.core.server_tokens")
SERVER_SIGNATURE = register("dir.core.server_signature")
TRACE_ENABLE = register("srv.core.trace_enable")
CANONICAL_NAME = register("dir.core.use_canonical_name")
HANDLER = register("dir.core.handler")
DEFAULT_CHARSET = register("dir.core.add_default_charset")
LIMIT_RECURSION = register("srv.core.limit_internal_recursion")
WAITING = register("glob.core.waiting_connections")
MAX_WAITING = register("glob.core.max_waiting_connections")
SERVER_NAME_PORT = register("srv.core.server_name_port")     # ServerName host:port's port
REDIRECT_MATCH = register("srv.alias.redirect_match", "concat")
ALIAS_MATCH = register("srv.alias.alias_match", "concat")

#: handlers that are no-ops for a static server (Apache's default handler serves the file)
DEFAULT_HANDLERS = frozenset({"default-handler", "none"})
#: handler names httpd-py accepts without serving anything differently: the page they would
#: make is answered by the modules that register them, or not at all (404), never the file
HARMLESS_UNBUILT = frozenset({"server-status", "server-info", "ldap-status", "balancer-manager",
                              "type-map", "stapling-status", "metrics"})


@dataclass(frozen=True)
class FileETagSpec:
    """FileETag: which of inode, mtime, size the ETag of a file is made of (2.4 default:
    MTime Size)."""
    inode: bool = False
    mtime: bool = True
    size: bool = True

    @property
    def none(self) -> bool:
        return not (self.inode or self.mtime or self.size)


def _apply(base: "FileETagSpec | None", adj: tuple) -> "FileETagSpec | None":
    """+/- words over an inherited setting, as core.c merges its bits: over no setting they
    only add (removing from nothing leaves the default), over None they add to nothing."""
    bits = {"inode": False, "mtime": False, "size": False}
    if base is not None:
        bits = {"inode": base.inode, "mtime": base.mtime, "size": base.size}
    for sign, comp in adj:
        for name in (("inode", "mtime", "size") if comp == "all" else (comp,)):
            bits[name] = sign == "+"
    if not any(bits.values()):
        keep_none = base is not None and base.none and not any(sg == "+" for sg, _ in adj)
        return base if keep_none else None
    return FileETagSpec(**bits)


def resolve_etag(spec) -> "FileETagSpec | None":
    """A merged FileETag value: a spec, +/- words over no setting, or () / None (the default)."""
    if isinstance(spec, FileETagSpec):
        return spec
    return _apply(None, spec) if spec else None


FILE_ETAG = register("dir.core.file_etag", lambda b, n: n if isinstance(n, FileETagSpec)
                     else _apply(resolve_etag(b), n) or ())


@dataclass(frozen=True)
class RedirectMatchSpec:
    status: int
    regex: re.Pattern
    target: str | None


@dataclass(frozen=True)
class AliasMatchSpec:
    regex: re.Pattern
    target: str


def _choice(key: str, choices: tuple[str, ...], message: str, glob: bool = False):
    def h(w, args):
        v = args[0].lower()
        if v not in choices:
            raise ConfigError(message)
        v = {"productonly": "prod", "minimal": "min"}.get(v, v)
        (w.glob if glob else w.set)(key, v)
    return h


def _set_handler(w, args):
    name = args[0].lower()
    if name in DEFAULT_HANDLERS:
        w.set(HANDLER, "none")
        return
    if name in hooks.HANDLERS:
        w.set(HANDLER, name)
        return
    if name in HARMLESS_UNBUILT:
        w.set(HANDLER, name)            # answered 404 by the pipeline (no handler registered)
        return
    raise ConfigError(f"SetHandler: handler '{args[0]}' is not built into httpd-py: the files it "
                      f"should run would be served as they are; refused rather than ignored "
                      f"(it changes who may see what). Remove it, or put it in <IfModule> of a "
                      f"module that is not loaded")


def _add_default_charset(w, args):
    v = args[0]
    if v.lower() == "off":
        w.set(DEFAULT_CHARSET, None)
    elif v.lower() == "on":
        w.set(DEFAULT_CHARSET, "iso-8859-1")
    else:
        w.set(DEFAULT_CHARSET, v)


_ETAG_WORDS = ("inode", "mtime", "size", "all", "none")


def _file_etag(w, args):
    """FileETag: plain words replace the inherited set, +/- words adjust it (core.c)."""
    if not args:
        raise ConfigError("FileETag requires at least one argument")
    signed = [a for a in args if a[:1] in "+-"]
    if signed and len(signed) != len(args):
        raise ConfigError("FileETag: cannot mix +/- keywords with plain ones")
    if signed:
        adj = []
        for a in args:
            word = a[1:].lower()
            if word not in ("inode", "mtime", "size", "all"):
                raise ConfigError(f"Unknown keyword '{a[1:]}' for FileETag")
            adj.append((a[0], word))
        w.set(FILE_ETAG, tuple(adj))
        return
    inode = mtime = size = False
    for a in args:
        word = a.lower()
        if word not in _ETAG_WORDS:
            raise ConfigError(f"Unknown keyword '{a}' for FileETag")
        if word == "none":
            if len(args) > 1:
                raise ConfigError("FileETag 'None' cannot be combined with other keywords")
        elif word == "all":
            inode = mtime = size = True
        else:
            inode, mtime, size = inode or word == "inode", mtime or word == "mtime", size or word == "size"
    w.set(FILE_ETAG, FileETagSpec(inode, mtime, size))


def _flag_glob(key: str):
    def h(w, args):
        w.glob(key, values.flag(args[0], w.name))
    return h


def _int_glob(key: str, minimum: int):
    def h(w, args):
        w.glob(key, values.integer(args[0], w.name, minimum=minimum))
    return h


def _limit_internal_recursion(w, args):
    a = values.integer(args[0], w.name, minimum=1)
    b = values.integer(args[1], w.name, minimum=1) if len(args) > 1 else a
    w.set(LIMIT_RECURSION, (a, b))


def _pcre(pattern: str, name: str) -> re.Pattern:
    try:
        return re.compile(re.sub(r"\(\?<(?![=!])", "(?P<", pattern))
    except re.error as e:
        raise ConfigError(f"Regular expression could not be compiled: {e}") from None


_REDIRECT_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}


def _redirect_match(w, args):
    words = list(args)
    code = 302
    first = words[0].lower()
    if first in _REDIRECT_STATUS:
        code, words = _REDIRECT_STATUS[first], words[1:]
    elif first.isdigit():
        code, words = int(first), words[1:]
        if not 300 <= code <= 599:
            raise ConfigError(f"RedirectMatch: invalid status '{first}' (300-599)")
    if not words or len(words) > 2:
        raise ConfigError("RedirectMatch takes 1-3 arguments, an optional status, then a regular "
                          "expression and the destination URL")
    target = words[1] if len(words) > 1 else None
    if 300 <= code <= 399 and target is None:
        raise ConfigError("URL to redirect to is missing")
    if not 300 <= code <= 399 and target is not None:
        raise ConfigError("Redirect URL not valid for this status")
    if w.dir_section is not None:
        raise ConfigError("RedirectMatch inside a section is not applied by httpd-py yet; refused "
                          "rather than ignored (the URL would serve something else). Use it "
                          "outside the section.")
    w.extend(REDIRECT_MATCH, (RedirectMatchSpec(code, _pcre(words[0], w.name), target),))


def _alias_match(w, args):
    w.extend(ALIAS_MATCH, (AliasMatchSpec(_pcre(args[0], w.name), args[1]),))


def rows():
    from httpd_py.config.directives.base import FLAG, ITERATE, RAW, TAKE1, TAKE12, TAKE2, TAKE123, Directive as D
    C, ALIAS = "core.c", "mod_alias.c"
    return [
        D("ServerTokens", C, "S", TAKE1, "Full", "How much the Server header says",
          _choice(SERVER_TOKENS, ("prod", "productonly", "major", "minor", "min", "minimal", "os",
                                  "full"),
                  "ServerTokens takes 1 argument: 'Prod(uctOnly)', 'Major', 'Minor', "
                  "'Min(imal)', 'OS', or 'Full'", glob=True),
          syntax="Prod|Major|Minor|Min|OS|Full"),
        D("ServerSignature", C, "A", TAKE1, "Off", "Footer line on server-generated pages",
          _choice(SERVER_SIGNATURE, ("on", "off", "email"),
                  "ServerSignature: use one of: off | on | email"), syntax="On|Off|EMail",
          override="any"),
        D("TraceEnable", C, "SV", TAKE1, "On", "TRACE requests: echoed (On), 405 (Off), with a "
          "body (extended)", _choice(TRACE_ENABLE, ("on", "off", "extended"),
                                     "TraceEnable must be one of 'on', 'off', or 'extended'"),
          syntax="On|Off|extended"),
        D("UseCanonicalName", C, "A", TAKE1, "Off", "Self-referential URLs from ServerName (On) "
          "or the Host header (Off)", _choice(CANONICAL_NAME, ("on", "off", "dns"),
                                              "parameter must be 'on', 'off', or 'dns'"),
          syntax="On|Off|DNS"),
        D("SetHandler", C, "A", TAKE1, "", "Answer requests here with a named handler "
          "(server-status, ...)", _set_handler, syntax="handler-name|none", override="fileinfo"),
        D("AddDefaultCharset", C, "A", TAKE1, "Off", "Charset added to text/plain and text/html "
          "responses without one", _add_default_charset, syntax="On|Off|charset",
          override="fileinfo"),
        D("FileETag", C, "A", RAW, "MTime Size", "What a file's ETag is made of", _file_etag,
          syntax="component ...", override="fileinfo"),
        D("LimitInternalRecursion", C, "SV", TAKE12, "10", "Internal redirects (and nested "
          "subrequests) allowed per request", _limit_internal_recursion,
          syntax="number [number]"),
        D("RedirectMatch", ALIAS, "A", TAKE123, "", "Redirect URLs matching a regular "
          "expression", _redirect_match, syntax="[status] regex [URL]", override="fileinfo"),
        D("WaitingConnections", C, "S", FLAG, "On", "Hold connections that wait (TLS "
          "handshake, request head, keep-alive) in each worker's event loop instead of a worker "
          "each", _flag_glob(WAITING), ext=True, syntax="On|Off"),
        D("MaxWaitingConnections", C, "S", TAKE1, "256", "Connections one worker holds waiting "
          "at most (then its siblings accept)", _int_glob(MAX_WAITING, 1), ext=True,
          syntax="number"),
        D("AliasMatch", ALIAS, "SV", TAKE2, "", "Map URLs matching a regular expression to "
          "filesystem paths", _alias_match, syntax="regex file-path|directory-path"),
    ]


def substitute(template: str, m: re.Match) -> str:
    """$0..$9 in a RedirectMatch/AliasMatch target (ap_pregsub: a backslash makes the next
    character literal)."""
    out = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch == "\\" and i + 1 < n:
            out.append(template[i + 1])
            i += 2
            continue
        if ch == "$" and i + 1 < n and template[i + 1].isdigit():
            g = int(template[i + 1])
            if g <= (m.re.groups or 0):
                out.append(m.group(g) or "")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
