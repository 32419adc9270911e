"""mod_setenvif: ``SetEnvIf``, ``SetEnvIfNoCase``, ``BrowserMatch``, ``BrowserMatchNoCase`` and
``SetEnvIfExpr`` set (or unset) variables of the request environment (``req.env``) from the
request.

Two tables of ``Rule`` (config order; a virtual host's or a later section's rules run after the
ones it inherits, as Apache's ``apr_array_append`` merge)::

    srv.setenvif.rules   rules written outside any section: run at post_read, before the URL is
                         translated (Request_URI is then the path as the client sent it,
                         %-escapes and all)
    dir.setenvif.rules   rules in <Directory>, <Location>, <Files>, .htaccess...: run at
                         header_parser, after the section walk and before access control, so
                         ``Require env`` and ``Allow from env=`` see both tables' variables

A rule's attribute is one of Remote_Host (the client's address: httpd-py never looks names up),
Remote_Addr, Server_Addr, Request_Method, Request_Protocol, Request_URI, a request header (a
missing header falls back to an environment variable of that name, as Apache), or a regular
expression over header names (the last matching header counts).  A regex with no
metacharacters is a plain substring test, as Apache's ``non_regex_pattern`` (its ``$N`` are then
left as they are); otherwise ``$0``..``$9`` in a value are the match's groups.  ``!VAR`` (or a
value starting with "!") unsets.  Consecutive rules on the same attribute read it once, as
Apache does.  SetEnvIfExpr's ``$N`` are the groups of the expression's last regex match; the
request headers it reads go into Vary (``req.headers_out``, as Apache's r->headers_out).

Log id: HP08010 a SetEnvIfExpr failed at request time (nothing is set).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from httpd_py import expr as _expr
from httpd_py import logids
from httpd_py.config.dirconf import register
from httpd_py.errors import ConfigError
from httpd_py.http import hooks
from httpd_py.log import error_log
from httpd_py.modules.env import env_get, env_set, env_unset
from httpd_py.modules.headers import Facts, add_vary, header_items, pregsub

__all__ = ["Rule", "parse_rule", "run_rules", "rows"]

SERVER_RULES = register("srv.setenvif.rules", "concat")
DIR_RULES = register("dir.setenvif.rules", "concat")

SPECIAL = ("remote_addr", "remote_host", "request_uri", "request_method", "request_protocol",
           "server_addr")
_HEADER_NAME = re.compile(r"[-A-Za-z0-9_]*\Z")
_META = frozenset("^.$|()[]*+?{}")


@dataclass(frozen=True)
class Rule:
    """One SetEnvIf-family line (several consecutive lines on the same attribute and regex
    stay separate rules: running them in turn gives what Apache's merged entry gives)."""
    attribute: str | None         # as written (None: SetEnvIfExpr)
    kind: str                     # one of SPECIAL, "header", "header-regex", "expr"
    features: tuple               # ((name, value or None to unset), ...)
    pattern: str | None = None    # a plain substring (no metacharacters)
    regex: Any = None             # compiled value regex
    name_regex: Any = None        # kind "header-regex": compiled header-name regex
    icase: bool = False
    cond: Any = None              # SetEnvIfExpr: expr.Condition


def non_regex_pattern(s: str) -> str | None:
    """The plain string a regex stands for when it uses no metacharacter (escaped
    metacharacters allowed, escapes removed); None when it is a real regex."""
    in_escape = escapes = False
    for c in s:
        if c in _META:
            if not in_escape:
                return None
            in_escape = False
        elif c == "\\":
            if not in_escape:
                in_escape = escapes = True
            else:
                in_escape = False
        elif in_escape:
            return None
    if not escapes:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\":
            i += 1
            if i >= len(s):
                break
        out.append(s[i])
        i += 1
    return "".join(out)


def _features(words: list[str], name: str) -> tuple:
    out = []
    for w in words:
        if not w:
            continue
        var, sep, value = w.partition("=")
        if sep and value:
            out.append((var, value))
        elif var.startswith("!"):
            out.append((var[1:], None))
        else:
            out.append((var, "1"))
    if not out:
        raise ConfigError(f"Missing envariable expression for {name}")
    return tuple(out)


def _compile(pattern: str, icase: bool, what: str):
    try:
        return _expr._compile_regex(pattern, icase)
    except ConfigError:
        raise ConfigError(what) from None


def parse_rule(name: str, args: list[str]) -> Rule:
    """One line (directive ``name``, its words) -> Rule, with Apache's messages."""
    lname = name.lower()
    icase = lname.endswith("nocase")
    words = list(args)
    if lname == "setenvifexpr":
        text = words.pop(0) if words else ""
        if not text:
            raise ConfigError(f"Missing expression for {name}")
        try:
            cond = _expr.parse_condition(text)
        except ConfigError as e:
            raise ConfigError(f"Could not parse expression \"{text}\": {e}") from None
        return Rule(None, "expr", _features(words, name), cond=cond)
    if lname.startswith("browsermatch"):
        attribute = "User-Agent"
    else:
        attribute = words.pop(0) if words else ""
        if not attribute:
            raise ConfigError(f"Missing header-field name for {name}")
    regex_text = words.pop(0) if words else ""
    if not regex_text:
        raise ConfigError(f"Missing regular expression for {name}")
    features = _features(words, name)
    simple = non_regex_pattern(regex_text)
    pattern = regex = None
    if simple is not None:
        pattern = simple.lower() if icase else simple
    else:
        regex = _compile(regex_text, icase, f"{name} regex could not be compiled.")
    kind = attribute.lower()
    name_regex = None
    if kind not in SPECIAL:
        if _HEADER_NAME.match(attribute):
            kind = "header"
        else:
            kind = "header-regex"
            name_regex = _compile(attribute, icase, f"{name}Header name regex could not be "
                                                    f"compiled.")
    return Rule(attribute, kind, features, pattern, regex, name_regex, icase)


def _directive(w, args):
    rule = parse_rule(w.name, args)
    if w.dir_section is None:
        w.extend(SERVER_RULES, (rule,))
    else:
        w.extend(DIR_RULES, (rule,))


# -- at request time -------------------------------------------------------------------------------
def _raw_path(req: hooks.Request) -> str:
    """r->uri before translation: the request target's path as sent (no query, no scheme and
    host of an absolute-form target)."""
    target = req.unparsed_uri or req.uri
    if not target.startswith("/") and "://" in target:
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    for sep in ("?", "#"):
        cut = target.find(sep)
        if cut >= 0:
            target = target[:cut]
    return target


def _attribute(rule: Rule, req: hooks.Request, early: bool) -> str | None:
    kind = rule.kind
    if kind in ("remote_addr", "remote_host"):
        return req.client_ip
    if kind == "server_addr":
        return req.local_ip
    if kind == "request_uri":
        return _raw_path(req) if early else req.uri
    if kind == "request_method":
        return req.method
    if kind == "request_protocol":
        return "HTTP/" + req.version
    if kind == "header-regex":
        val = None
        for name, value in header_items(req):
            if rule.name_regex.search(name):
                val = value
        return val
    val = req.headers.get(rule.attribute.lower())
    if val is None:
        val = env_get(req.env, rule.attribute)
    return val


def run_rules(rules: tuple, req: hooks.Request, early: bool) -> None:
    """match_headers: each rule in turn against the request, setting req.env."""
    env = req.env
    last = None
    val = ""
    for rule in rules:
        m = None
        if rule.kind == "expr":
            st = [None]
            facts = Facts.of_response(req)
            try:
                ok = bool(rule.cond._fn(facts, st))
            except Exception as e:       # never let a request take the worker down
                error_log.error("setenvif", logids.SETENVIF_EXPR_FAILED,
                                f"Failed to evaluate expression "
                                f"({e}): {rule.cond.text}", client=req.client_ip)
                ok = False
            add_vary(req, None, facts.vary)     # the headers it read: Vary (headers_out)
            if not ok:
                continue
            m = st[0]
        else:
            key = rule.attribute.lower()
            if key != last:
                last = key
                val = _attribute(rule, req, early) or ""
            if rule.pattern is not None:
                hay = val.lower() if rule.icase else val
                if rule.pattern not in hay:
                    continue
            else:
                m = rule.regex.search(val)
                if m is None:
                    continue
        for name, value in rule.features:
            if value is None or value.startswith("!"):
                env_unset(env, name)
            elif rule.pattern is not None:
                env_set(env, name, value)
            elif m is not None:
                env_set(env, name, pregsub(value, m))
            else:                       # an expression without a regex: $N are empty
                env_set(env, name, pregsub(value, _NO_MATCH))


_NO_MATCH = re.compile("").match("")


def post_read(req: hooks.Request):
    vhost = req.vhost
    if vhost is None or not vhost.mods:
        return None
    rules = vhost.mod(SERVER_RULES)
    if rules:
        run_rules(rules, req, early=True)
    return None


def header_parser(req: hooks.Request):
    conf = req.conf
    if conf is None or not conf.mods:
        return None
    rules = conf.mod(DIR_RULES)
    if rules:
        run_rules(rules, req, early=False)
    return None


hooks.POST_READ.append(post_read)
hooks.INERT[post_read] = lambda vhost, conf: not (vhost.mods and vhost.mod(SERVER_RULES))
hooks.HEADER_PARSER.append(header_parser)
hooks.INERT[header_parser] = lambda vhost, conf: not conf.mod(DIR_RULES)


def rows():
    from httpd_py.config.directives.base import RAW, Directive as D
    S = "mod_setenvif.c"
    attr = "attribute regex [!]env-variable[=value] ..."
    return [
        D("SetEnvIf", S, "A", RAW, "", "Set variables when a request attribute or header "
          "matches a regular expression", _directive, syntax=attr, override="fileinfo"),
        D("SetEnvIfNoCase", S, "A", RAW, "", "SetEnvIf, matching without regard to case",
          _directive, syntax=attr, override="fileinfo"),
        D("BrowserMatch", S, "A", RAW, "", "Set variables when the User-Agent matches",
          _directive, syntax="regex [!]env-variable[=value] ...", override="fileinfo"),
        D("BrowserMatchNoCase", S, "A", RAW, "", "BrowserMatch, matching without regard to "
          "case", _directive, syntax="regex [!]env-variable[=value] ...", override="fileinfo"),
        D("SetEnvIfExpr", S, "A", RAW, "", "Set variables when an ap_expr expression is true",
          _directive, syntax="expression [!]env-variable[=value] ...", override="fileinfo"),
    ]
