"""mod_headers: ``Header`` and ``RequestHeader``, as Apache 2.4 applies them.

Configuration (per directory, each a tuple of ``Action`` in config order; a later section's
actions run after the ones it inherits, as Apache's ``apr_array_append`` merge)::

    dir.headers.in      RequestHeader ...               request headers (fixups; early: post_read)
    dir.headers.out     Header [onsuccess] ...          r->headers_out of a normally made response
    dir.headers.err     Header always ...               r->err_headers_out of every response

An ``Action`` is parsed once at configuration time: its value is a tuple of parts (literal text,
or a format tag ``%t %D %{VAR}e %{HTTPS}s %l``), the regular expressions of ``edit``/``edit*``/
``echo`` are compiled, ``expr=`` conditions (and ``expr=`` values) are parsed.

When Apache runs them (and so when httpd-py does):

* ``early`` actions run at post_read (Apache: post_read_request, first), from the server's (or
  the virtual host's) own settings only: an ``early`` action written inside a section is accepted
  and never runs, as in Apache.  RequestHeader changes ``req.headers``; Header (onsuccess) adds to
  ``req.headers_out``, Header always to ``req.err_headers_out`` (what the pipeline merges into the
  response: headers_out only into a normally made one).
* ``RequestHeader`` (late) runs at fixups, after access control, before the handler.
* ``Header`` (late) is the output hook (``hooks.ORDER_HEADERS``, after mod_deflate's filter).  A
  normally made response (``resp.error_page`` False: a handler's answer, 2xx, 304, and a local
  ``ErrorDocument`` served through an internal redirect) gets the ``always`` table applied to a new
  err_headers_out table and the ``onsuccess`` table to its own headers; a response the server
  makes for an error status or a redirect (``error_page`` True: 404, 403, a ``Redirect``'s 302,
  mod_dir's 301) gets only the ``always`` table, as Apache's error filter.  The result is the
  err_headers_out table followed by the response's headers (``apr_table_overlay``): ``Header
  always set X a`` with ``Header set X b`` sends both lines, and ``Header always unset`` does not
  remove what the handler set -- both as in Apache.

Request header names come in lower case (``req.headers``); where Apache shows a name as the client
wrote it (``Header echo`` and SetEnvIf's header-name regexes), ``header_items`` uses the request's
``raw_headers`` when the pipeline gives them, else the usual capitalisation (``x-test`` ->
``X-Test``).  ``RequestHeader add`` of a header the request has joins the values with ", " (one
dict entry per name; Apache keeps two table entries).

``%i`` and ``%b`` (idle and busy worker percentages) and ``%{VAR}s`` other than ``HTTPS`` need
the scoreboard or the TLS connection, which a hook does not see: they are refused at start-up.

Content-Type is kept aside while the tables run, as Apache keeps ``r->content_type``: set,
setifempty, unset and edit change it, add/append/merge only the tables, and the field is written
from it at the end.  Request headers an ``expr=`` reads (``req()``, ``http()``, ``%{HTTP_*}``
but Host) are merged into Vary, then the Vary fields become one (Apache's ``fixup_vary``).

Log ids: HP08001 an ``expr=`` condition failed at request time (the action runs, as Apache's
AH01501), HP08002 an ``expr=`` value failed (the value is empty).
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

from httpd_py import expr as _expr
from httpd_py import logids
from httpd_py.config.dirconf import register
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.http.access import RequestFacts
from httpd_py.log import error_log
from httpd_py.modules.env import env_get

__all__ = ["Action", "parse_header", "parse_format", "apply_response", "apply_request",
           "header_items", "pregsub", "rows"]

IN = register("dir.headers.in", "concat")
OUT = register("dir.headers.out", "concat")
ERR = register("dir.headers.err", "concat")

ACTIONS = ("set", "setifempty", "add", "append", "merge", "unset", "echo", "edit", "edit*",
           "note")
_ACTION_ERROR = ("first argument must be 'add', 'set', 'setifempty', 'append', 'merge', "
                 "'unset', 'echo', 'note', 'edit', or 'edit*'.")


@dataclass(frozen=True)
class Action:
    """One Header/RequestHeader line."""
    action: str                   # one of ACTIONS
    header: str                   # the header name (up to a ':', as Apache)
    value: tuple = ()             # format parts: str, or (tag, arg) for %tag / %{arg}tag
    value_expr: Any = None        # a string expression (value written "expr=...")
    regex: Any = None             # edit/edit*: the match; echo: the header-name regex
    early: bool = False
    env: str | None = None        # env=VAR / env=!VAR (the "!" kept)
    cond: Any = None              # expr=...: an expr.Condition
    text: str = ""                # the line's arguments, for logs and -S


# -- format strings (parse_format_string / parse_misc_string / parse_format_tag) --------------------
_TAGS = frozenset("tDeslib")
_UNBUILT_TAGS = {"i": "idle-worker percentage", "b": "busy-worker percentage"}
_ESCAPES = {"\\": "\\", "r": "\r", "n": "\n", "t": "\t"}


def parse_format(s: str) -> tuple:
    """A header value as mod_headers reads it: literal text with the escapes \\\\ \\r \\n \\t (any
    other backslash stays), ``%%`` (or a final ``%``) for "%", and format tags."""
    parts: list = []
    buf: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            e = s[i + 1] if i + 1 < n else ""
            if e in _ESCAPES and e:
                buf.append(_ESCAPES[e])
                i += 2
            else:
                buf.append("\\")
                i += 1
            continue
        if c != "%":
            buf.append(c)
            i += 1
            continue
        i += 1
        if i >= n or s[i] == "%":
            buf.append("%")
            i += 1
            continue
        arg = ""
        if s[i] == "{":
            end = s.find("}", i + 1)
            if end < 0:              # ap_getword takes the rest; no tag letter follows
                raise ConfigError("Unrecognized header format %")
            arg = s[i + 1:end]
            i = end + 1
            if i >= n:
                raise ConfigError("Unrecognized header format %")
        tag = s[i]
        i += 1
        if tag not in _TAGS:
            raise ConfigError(f"Unrecognized header format %{tag}")
        if tag in _UNBUILT_TAGS:
            raise ConfigError(f"header format %{tag} ({_UNBUILT_TAGS[tag]}) is not built in "
                              f"httpd-py: a hook does not see the scoreboard")
        if tag == "s" and arg.upper() != "HTTPS":
            raise ConfigError(f"header format %{{{arg}}}s: only %{{HTTPS}}s is built in httpd-py "
                              f"(the TLS connection's variables are not available to headers)")
        if buf:
            parts.append("".join(buf))
            buf = []
        parts.append((tag, arg))
    if buf:
        parts.append("".join(buf))
    return tuple(parts)


def _render(parts: tuple, req: hooks.Request) -> str:
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
            continue
        tag, arg = p
        if tag == "e":
            v = env_get(req.env, arg)
            out.append("(null)" if v is None else v)
        elif tag == "t":
            out.append(f"t={int((req.start or time.time()) * 1_000_000)}")
        elif tag == "D":
            start = req.start or time.time()
            out.append(f"D={max(0, int((time.time() - start) * 1_000_000))}")
        elif tag == "s":          # mod_ssl's HTTPS (mod_ssl is always built into httpd-py)
            out.append("on" if req.https else "off")
        elif tag == "l":
            try:
                a, b, c = os.getloadavg()
                out.append(f"l={a:.2f}/{b:.2f}/{c:.2f}")
            except OSError:
                out.append("l=-1/-1/-1")
    return "".join(out)


def _string_expr(text: str):
    """A value written ``expr=...``: ap_expr's string form (text with ``%{VAR}``,
    ``%{func:arg}``, backslash escapes), parsed once."""
    lexer = _expr._Lexer(text + "\0")
    try:
        parts = lexer._parts("\0", False)
    except RecursionError:
        raise ConfigError("expression nested too deeply") from None
    return _expr._concat(parts).fn


def _value(a: Action, req: hooks.Request, resp=None) -> str:
    if a.value_expr is not None:
        facts = Facts.of_response(req, resp)
        try:
            return a.value_expr(facts, [None])
        except Exception as e:          # never let a request take the worker down
            error_log.error("headers", logids.HEADERS_VALUE_FAILED,
                            f"Failed to evaluate value expression "
                            f"({e}) - ignoring", client=req.client_ip)
            return ""
        finally:
            add_vary(req, resp, facts.vary)
    return _render(a.value, req)


def pregsub(template: str, m: re.Match) -> str:
    """ap_pregsub: ``$0``..``$9`` are the match's groups (unset ones empty); a backslash makes
    the next character literal."""
    if "$" not in template and "\\" not in template:
        return template
    out = []
    i, n = 0, len(template)
    groups = m.re.groups
    while i < n:
        c = template[i]
        if c == "$" and i + 1 < n and template[i + 1].isdigit() and template[i + 1].isascii():
            k = int(template[i + 1])
            if k <= groups:
                out.append(m.group(k) or "")
            i += 2
            continue
        if c == "\\" and i + 1 < n:
            out.append(template[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


# -- parsing a directive ---------------------------------------------------------------------------
def _compile(pattern: str, what: str):
    try:
        return _expr._compile_regex(pattern, False)
    except ConfigError:
        raise ConfigError(what) from None


def parse_header(args: list[str], request: bool) -> tuple[str, Action]:
    """One ``Header`` (request=False) or ``RequestHeader`` line, split into words -> (table,
    Action); table is "in", "out" (onsuccess) or "err" (always).  Apache's messages."""
    name = "RequestHeader" if request else "Header"
    words = list(args)
    table = "in" if request else "out"
    action = words.pop(0) if words else ""
    if not request and action.lower() in ("always", "onsuccess"):
        table = "err" if action.lower() == "always" else "out"
        action = words.pop(0) if words else ""
    hdr = words.pop(0) if words else ""
    value = words.pop(0) if words else None
    subs = words.pop(0) if words else None
    envclause = words.pop(0) if words else None
    if words:
        raise ConfigError(f"{name} takes only 2, 3, 4 or 5 arguments")
    act = action.lower()
    if act not in ACTIONS:
        raise ConfigError(_ACTION_ERROR)
    regex = None
    if act in ("edit", "edit*"):
        if subs is None:
            raise ConfigError("Header edit requires a match and a substitution")
        regex = _compile(value, "Header edit regex could not be compiled")
    else:
        if envclause is not None:
            raise ConfigError("Too many arguments to directive")
        envclause, subs = subs, None
    if act == "unset":
        if value is not None:
            if envclause is not None:
                raise ConfigError("header unset takes two arguments")
            envclause, value = value, None
    elif act == "echo":
        if value is not None:
            if envclause is not None:
                raise ConfigError("Header echo takes two arguments")
            envclause, value = value, None
        if request:
            raise ConfigError("Header echo only valid on Header directives")
        regex = _compile(hdr, "Header echo regex could not be compiled")
    elif value is None:
        raise ConfigError("Header requires three arguments")
    early, env, cond = False, None, None
    if envclause is not None:
        low = envclause.lower()
        if low == "early":
            early = True
        elif low.startswith("env="):
            env = envclause[4:]
            if env in ("", "!"):
                raise ConfigError("error: missing environment variable name. envclause should "
                                  "be in the form env=envar ")
        elif low.startswith("expr="):
            try:
                cond = _expr.parse_condition(envclause[5:])
            except ConfigError as e:
                raise ConfigError(f"Can't parse envclause/expression: {e}") from None
        else:
            raise ConfigError(f"Unknown parameter: {envclause}")
    hdr = hdr.split(":", 1)[0]
    fmt: tuple = ()
    value_expr = None
    source = subs if act in ("edit", "edit*") else value
    if act not in ("unset", "echo") and source is not None:
        if source.startswith("expr="):
            try:
                value_expr = _string_expr(source[5:])
            except ConfigError as e:
                raise ConfigError(f"Can't parse value expression : {e}") from None
        else:
            fmt = parse_format(source)
    return table, Action(act, hdr, fmt, value_expr, regex, early, env, cond,
                         " ".join(args))


def _header_directive(request: bool):
    def h(w, args):
        table, a = parse_header(args, request)
        w.extend({"in": IN, "out": OUT, "err": ERR}[table], (a,))
    return h


# -- expressions ---------------------------------------------------------------------------------
# ap_expr's %{HTTP_*} variables: the request header each reads (Host adds no Vary: RFC 7231)
_HEADER_VARS = {"HTTP_ACCEPT": "Accept", "HTTP_COOKIE": "Cookie", "HTTP_FORWARDED": "Forwarded",
                "HTTP_PROXY_CONNECTION": "Proxy-Connection", "HTTP_REFERER": "Referer",
                "HTTP_USER_AGENT": "User-Agent"}


class Facts(RequestFacts):
    """What ``expr=`` reads: the request (access.RequestFacts) plus the response's status and
    content type when there is one.  ``vary`` collects the request headers the expression read
    (``req()``, ``http()``, ``%{HTTP_*}``), which Apache adds to the response's Vary."""
    __slots__ = ("status", "content_type", "handler", "vary")

    @classmethod
    def of_response(cls, req, resp=None) -> "Facts":
        f = cls.of(req)
        f.vary = []
        f.status = resp.status if resp is not None else 0
        ct = None
        if resp is not None:
            ct = resp.header("Content-Type") or resp.content_type
        f.content_type = ct or req.content_type or ""
        f.handler = req.handler or ""
        return f

    def header(self, name: str) -> str:
        self.vary.append(name)
        return super().header(name)

    def var(self, name: str) -> str:
        n = name.upper()
        hv = _HEADER_VARS.get(n)
        if hv is not None:
            self.vary.append(hv)
        if n == "REQUEST_STATUS":
            return str(self.status) if self.status else ""
        if n == "CONTENT_TYPE":
            return self.content_type
        if n == "HANDLER":
            return self.handler
        return super().var(n)


def add_vary(req: hooks.Request, resp, names: list) -> None:
    """ap_expr_exec: the request headers an expression read are merged into r->headers_out's
    Vary (the response's headers; before a response exists, ``req.headers_out``)."""
    if names:
        _tmerge(resp.headers if resp is not None else req.headers_out, "Vary",
                ", ".join(names))


def fixup_vary(table: list) -> None:
    """Apache's fixup_vary: every Vary field of ``table`` as one field of unique tokens joined
    by ',' (where the first one was), in place."""
    at, tokens, seen, keep = None, [], set(), []
    for k, v in table:
        if k.lower() != "vary":
            keep.append((k, v))
            continue
        if at is None:
            at = len(keep)
        for t in v.split(","):
            t = t.strip()
            if t and t.lower() not in seen:
                seen.add(t.lower())
                tokens.append(t)
    if at is not None:
        keep.insert(at, ("Vary", ",".join(tokens)))
        table[:] = keep


def _applies(a: Action, req: hooks.Request, early: bool, resp=None) -> bool:
    if a.early != early:
        return False
    if a.cond is not None:
        facts = Facts.of_response(req, resp)
        try:
            return a.cond.evaluate(facts)
        except Exception as e:          # Apache: AH01501, the action runs
            error_log.error("headers", logids.HEADERS_CONDITION_FAILED,
                            f"Failed to evaluate expression ({e}) - "
                            f"ignoring", client=req.client_ip)
            return True
        finally:
            add_vary(req, resp, facts.vary)
    if a.env is not None and not early:
        if a.env.startswith("!"):
            return env_get(req.env, a.env[1:]) is None
        return env_get(req.env, a.env) is not None
    return True


# -- tables --------------------------------------------------------------------------------------
def _tget(table: list, lname: str) -> str | None:
    for k, v in table:
        if k.lower() == lname:
            return v
    return None


def _tset(table: list, name: str, value: str) -> None:
    """apr_table_setn: the first entry of that name takes the value (and keeps its spelling),
    the others go; else a new entry at the end."""
    lname = name.lower()
    for i, (k, _) in enumerate(table):
        if k.lower() == lname:
            table[i] = (k, value)
            table[i + 1:] = [(kk, vv) for kk, vv in table[i + 1:] if kk.lower() != lname]
            return
    table.append((name, value))


def _tmerge(table: list, name: str, value: str) -> None:
    """apr_table_mergen: ", " onto the first entry of that name, else a new entry."""
    lname = name.lower()
    for i, (k, v) in enumerate(table):
        if k.lower() == lname:
            table[i] = (k, f"{v}, {value}")
            return
    table.append((name, value))


def _tunset(table: list, lname: str) -> None:
    table[:] = [(k, v) for k, v in table if k.lower() != lname]


def _has_token(current: str, new: str) -> bool:
    """mod_headers' merge: is ``new`` already one of the comma-separated tokens (quoted strings
    kept whole, compared exactly)?"""
    i, n = 0, len(current)
    while i < n:
        while i < n and current[i] in " \t\n\r\f\v":
            i += 1
        start = i
        while i < n and current[i] != ",":
            c = current[i]
            i += 1
            if c == '"':
                while i < n:
                    c = current[i]
                    i += 1
                    if c == '"':
                        break
        if current[start:i] == new:
            return True
        if i < n:
            i += 1
    return False


def _edit(a: Action, value: str, req: hooks.Request) -> str:
    """process_regexp: replace the first match (edit) or every match (edit*) with the
    replacement (its format tags first, then $N).  As Apache, edit* searches the remainder
    after a match as a new string (``^`` matches again there); an empty match steps over one
    character."""
    m = a.regex.search(value)
    if m is None:
        return value
    repl = _value(a, req)
    out = []
    rest = value
    while m is not None:
        out.append(rest[:m.start()])
        out.append(pregsub(repl, m))
        end = m.end()
        if m.start() == end and end < len(rest):
            out.append(rest[end])
            end += 1
        rest = rest[end:]
        if a.action != "edit*" or not rest:
            break
        m = a.regex.search(rest)
    out.append(rest)
    return "".join(out)


def header_items(req: hooks.Request) -> list[tuple[str, str]]:
    """The request headers as Apache's headers_in holds them: (name as the client wrote it,
    value), in order.  Without ``raw_headers`` from the pipeline, names are capitalised."""
    raw = getattr(req, "raw_headers", None)
    spelled: dict[str, str] = {}
    if raw:
        for k, _ in raw:
            name = k.decode("latin-1") if isinstance(k, bytes) else k
            spelled.setdefault(name.lower(), name)
    return [(spelled.get(k) or _capitalised(k), v) for k, v in req.headers.items()]


def _capitalised(lname: str) -> str:
    return "-".join(p[:1].upper() + p[1:] for p in lname.split("-"))


def apply_response(actions: tuple, table: list, req: hooks.Request, resp,
                   early: bool = False, ctype: list | None = None) -> None:
    """do_headers_fixup on a response table (a list of (name, value), changed in place).
    ``echo`` adds to ``resp.headers`` (r->headers_out), whichever table runs it.  ``ctype``
    (a one-item list) is r->content_type, which set, setifempty, unset and edit of
    Content-Type also change, as Apache's."""
    for a in actions:
        if not _applies(a, req, early, resp):
            continue
        act, lname = a.action, a.header.lower()
        if ctype is not None and lname == "content-type" and act in ("set", "setifempty",
                                                                     "unset", "edit", "edit*"):
            _content_type(a, table, req, resp, ctype)
            continue
        if act == "set":
            _tset(table, a.header, _value(a, req, resp))
        elif act == "add":
            table.append((a.header, _value(a, req, resp)))
        elif act == "append":
            _tmerge(table, a.header, _value(a, req, resp))
        elif act == "merge":
            new = _value(a, req, resp)
            cur = _tget(table, lname)
            if cur is None:
                table.append((a.header, new))
            elif not _has_token(cur, new):
                _tmerge(table, a.header, new)
        elif act == "setifempty":
            if _tget(table, lname) is None:
                _tset(table, a.header, _value(a, req, resp))
        elif act == "unset":
            _tunset(table, lname)
        elif act == "echo":
            target = resp.headers if resp is not None else req.headers_out
            for name, value in header_items(req):
                if a.regex.search(name):
                    target.append((name, value))
        elif act in ("edit", "edit*"):
            if _tget(table, lname) is not None:
                edited = [(k, _edit(a, v, req)) for k, v in table if k.lower() == lname]
                _tunset(table, lname)
                table.extend(edited)
        elif act == "note":
            key = _value(a, req, resp)
            v = _tget(table, lname)
            if v is None:
                req.notes.pop(key, None)
            else:
                req.notes[key] = v


def _content_type(a: Action, table: list, req: hooks.Request, resp, ctype: list) -> None:
    act = a.action
    if act == "set":
        ctype[0] = v = _value(a, req, resp)
        _tset(table, a.header, v)
    elif act == "setifempty":
        if _tget(table, "content-type") is None:
            ctype[0] = v = _value(a, req, resp)
            _tset(table, a.header, v)
    elif act == "unset":
        _tunset(table, "content-type")
        ctype[0] = None
    else:
        if ctype[0] is not None:
            ctype[0] = _edit(a, ctype[0], req)
        if _tget(table, "content-type") is not None:
            edited = [(k, _edit(a, v, req)) for k, v in table if k.lower() == "content-type"]
            _tunset(table, "content-type")
            table.extend(edited)


def apply_request(actions: tuple, req: hooks.Request, early: bool) -> None:
    """do_headers_fixup on the request headers (``req.headers``: lower-case names)."""
    headers = req.headers
    for a in actions:
        if not _applies(a, req, early):
            continue
        act, lname = a.action, a.header.lower()
        if act == "set":
            headers[lname] = _value(a, req)
        elif act in ("add", "append"):
            new = _value(a, req)
            headers[lname] = f"{headers[lname]}, {new}" if lname in headers else new
        elif act == "merge":
            new = _value(a, req)
            cur = headers.get(lname)
            if cur is None:
                headers[lname] = new
            elif not _has_token(cur, new):
                headers[lname] = f"{cur}, {new}"
        elif act == "setifempty":
            if lname not in headers:
                headers[lname] = _value(a, req)
        elif act == "unset":
            headers.pop(lname, None)
        elif act in ("edit", "edit*"):
            if lname in headers:
                headers[lname] = _edit(a, headers[lname], req)
        elif act == "note":
            key = _value(a, req)
            if lname in headers:
                req.notes[key] = headers[lname]
            else:
                req.notes.pop(key, None)


# -- hooks ---------------------------------------------------------------------------------------
def _has_early(actions) -> bool:
    return any(a.early for a in actions)


def post_read(req: hooks.Request):
    """``early`` actions of the server's own settings (the vhost's per-directory defaults)."""
    vhost = req.vhost
    conf = vhost.dir if vhost is not None else None
    if conf is None or not conf.mods:
        return None
    for key in (IN, ERR, OUT):
        actions = conf.mod(key)
        if actions and _has_early(actions):
            if key == IN:
                apply_request(actions, req, early=True)
            else:
                apply_response(actions, req.err_headers_out if key == ERR else req.headers_out,
                               req, None, early=True)
    return None


def fixup(req: hooks.Request):
    conf = req.conf
    if conf is None or not conf.mods:
        return None
    actions = conf.mod(IN)
    if actions:
        apply_request(actions, req, early=False)
    return None


def _names(tables, name: str) -> bool:
    return any(a.header.lower() == name for t in tables if t for a in t)


def output(req: hooks.Request, resp: hooks.Response) -> hooks.Response:
    conf = req.conf if req.conf is not None else (req.vhost.dir if req.vhost is not None
                                                  else None)
    if conf is None or not conf.mods:
        return resp
    err = conf.mod(ERR)
    out = None if resp.error_page else conf.mod(OUT)
    if not err and not out:
        return resp
    ctype = None
    if _names((err, out), "content-type"):
        # Apache keeps the type in r->content_type until its header filter writes the field
        # (over whatever the tables hold): set/setifempty/unset/edit change it, add/append/
        # merge only the tables
        ctype = [resp.header("Content-Type") or resp.content_type]
        resp.remove_header("Content-Type")
        resp.content_type = None
    vary_before = [v for k, v in resp.headers if k.lower() == "vary"]
    table: list = []
    if err:
        apply_response(err, table, req, resp, ctype=ctype)
    if out:
        apply_response(out, resp.headers, req, resp, ctype=ctype)
    if table:
        resp.headers[:0] = table
    if ctype is not None and ctype[0] is not None:
        resp.remove_header("Content-Type")
        resp.content_type = ctype[0]
    if _names((err, out), "vary") or vary_before != [v for k, v in resp.headers
                                                     if k.lower() == "vary"]:
        fixup_vary(resp.headers)
    return resp


hooks.POST_READ.append(post_read)
hooks.INERT[post_read] = lambda vhost, conf: not (
    vhost.dir is not None and vhost.dir.mods
    and any(_has_early(vhost.dir.mod(k) or ()) for k in (IN, ERR, OUT)))
hooks.FIXUPS.append(fixup)
hooks.INERT[fixup] = lambda vhost, conf: not conf.mod(IN)
hooks.add_output(output, hooks.ORDER_HEADERS)
hooks.INERT[output] = lambda vhost, conf: not conf.mod(OUT) and not conf.mod(ERR)


def rows():
    from httpd_py.config.directives.base import RAW, Directive as D
    H = "mod_headers.c"
    return [
        D("Header", H, "A", RAW, "", "Change response headers: set, append, add, merge, unset, "
          "setifempty, edit, edit*, echo, note; always or onsuccess; env=, expr= or early",
          _header_directive(False),
          syntax="[always|onsuccess] action header [[expr=]value [replacement]] "
                 "[early|env=[!]variable|expr=expression]", override="fileinfo"),
        D("RequestHeader", H, "A", RAW, "", "Change request headers before the handler: set, "
          "append, add, merge, unset, setifempty, edit, edit*, note; env=, expr= or early",
          _header_directive(True),
          syntax="action header [[expr=]value [replacement]] "
                 "[early|env=[!]variable|expr=expression]", override="fileinfo"),
    ]
