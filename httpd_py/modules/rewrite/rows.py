"""mod_rewrite's directives, its per-server and per-directory settings and their merges.

Two frozen values, as Apache's two config structs::

    srv.rewrite.server   ServerConf(state, options, maps, rules, conds, origin)   per server
    dir.rewrite.perdir   DirConf(state, options, baseurl, directory, rules, conds) per section

A directive written outside any section sets the server's value; RewriteEngine and
RewriteOptions there also set the server's per-directory default (Apache sets both, so the
engine state of the server rules is read from the per-directory default, as hook_uri2file
does).  Inside <Directory>/<Location>/<Files>/<If> and .htaccess only the section's value is
set; ``directory`` is the section's path with a trailing '/' (the per-directory prefix).

Merges follow Apache's config_server_merge / config_perdir_merge: the state and options are
inherited unless set; rules (and maps) are the later level's only, unless RewriteOptions
Inherit (parent's after) / InheritBefore (parent's first) or the parent's InheritDown /
InheritDownBefore (unless IgnoreInherit); RewriteBase is the later level's only unless MergeBase.

A vhost that writes no mod_rewrite directive is merged here at request time (the generic
server merge copies the main server's value to it): ``server_conf(vhost)``, cached per value.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from httpd_py.config import values
from httpd_py.config.dirconf import register
from httpd_py.config.directives.base import FLAG, ITERATE, RAW, TAKE1, TAKE23, Directive
from httpd_py.errors import ConfigError
from httpd_py.modules.rewrite import engine
from httpd_py.modules.rewrite.maps import parse_map

SRV = register("srv.rewrite.server", lambda base, new: merge_server(base, new))
DIR = register("dir.rewrite.perdir", lambda base, new: merge_perdir(base, new))

MODULE = "mod_rewrite.c"


@dataclass(frozen=True)
class ServerConf:
    state: bool = False
    state_set: bool = False
    options: int = 0
    options_set: bool = False
    maps: tuple = ()                # ((name, MapSpec), ...) later wins
    rules: tuple = ()
    conds: tuple = ()               # RewriteConds not followed by a rule yet
    origin: Any = None              # the <VirtualHost>'s Location (None: the main server)

    def map_table(self) -> dict:
        got = _MAP_TABLES.get(id(self))
        if got is None or got[0] is not self:
            got = (self, dict(self.maps))
            _MAP_TABLES[id(self)] = got
        return got[1]


@dataclass(frozen=True)
class DirConf:
    state: bool = False
    state_set: bool = False
    options: int = 0
    options_set: bool = False
    baseurl: str | None = None
    baseurl_set: bool = False
    directory: str | None = None    # None: the server's per-directory default (no rules)
    rules: tuple = ()
    conds: tuple = ()


_MAP_TABLES: dict[int, tuple] = {}


def _inherit(opts_a: int, base_opts: int) -> str:
    if opts_a & engine.O_INHERIT or (base_opts & engine.O_INHERIT_DOWN and
                                     not opts_a & engine.O_IGNORE_INHERIT):
        return "after"
    if opts_a & engine.O_INHERIT_BEFORE or (base_opts & engine.O_INHERIT_DOWN_BEFORE and
                                            not opts_a & engine.O_IGNORE_INHERIT):
        return "before"
    return "own"


def merge_server(base: ServerConf, new: ServerConf) -> ServerConf:
    state = new.state if new.state_set else base.state
    options = new.options if new.options_set else base.options
    how = _inherit(options, base.options)
    if how == "after":
        maps, rules = base.maps + new.maps, new.rules + base.rules
        conds = new.conds + base.conds
    elif how == "before":
        maps, rules = new.maps + base.maps, base.rules + new.rules
        conds = base.conds + new.conds
    else:
        maps, rules, conds = new.maps, new.rules, new.conds
    # maps: a tuple read into a dict, later entries win: "after" lets the vhost's win
    return ServerConf(state, new.state_set or base.state_set, options,
                      new.options_set or base.options_set, maps, rules, conds, new.origin)


def merge_perdir(base: DirConf, new: DirConf) -> DirConf:
    state = new.state if new.state_set else base.state
    options = new.options if new.options_set else base.options
    if options & engine.O_MERGEBASE:
        baseurl = new.baseurl if new.baseurl_set else base.baseurl
        baseurl_set = new.baseurl_set or base.baseurl_set
    else:
        baseurl, baseurl_set = new.baseurl, new.baseurl_set
    how = _inherit(options, base.options)
    if how == "after":
        rules, conds = new.rules + base.rules, new.conds + base.conds
    elif how == "before":
        rules, conds = base.rules + new.rules, base.conds + new.conds
    else:
        rules, conds = new.rules, new.conds
    return DirConf(state, new.state_set or base.state_set, options,
                   new.options_set or base.options_set, baseurl, baseurl_set, new.directory,
                   rules, conds)


_EMPTY_SERVERS: dict[int, tuple] = {}


def server_conf(vhost) -> ServerConf | None:
    """The vhost's mod_rewrite server config, as Apache's merge makes it (a vhost without
    mod_rewrite directives of its own gets the main server's state and options but not its
    rules, unless the main server says Inherit or InheritDown)."""
    conf = vhost.mod(SRV) if vhost.mods else None
    if conf is None or vhost.location is None or conf.origin == vhost.location:
        return conf
    got = _EMPTY_SERVERS.get(id(conf))
    if got is None or got[0] is not conf:
        got = (conf, merge_server(conf, ServerConf(origin=vhost.location)))
        if len(_EMPTY_SERVERS) > 1024:
            _EMPTY_SERVERS.clear()
        _EMPTY_SERVERS[id(conf)] = got
    return got[1]


# -- handlers ------------------------------------------------------------------------------------
def _server_level(w) -> bool:
    return w.dir_section is None and w.htaccess is None


def _section_directory(w) -> str:
    """The per-directory prefix of the current section (Apache's cmd->path + '/')."""
    node = w.dir_section
    if w.htaccess is not None:
        return os.path.dirname(node.args) + "/"
    from httpd_py.config.build import _section_words
    lname = node.name.lower()
    if lname in ("<if", "<elseif", "<else"):
        path = "*If"
    else:
        words = _section_words(node)
        path = words[1] if words and words[0] == "~" and len(words) > 1 else \
            (words[0] if words else "/")
        if lname == "<directory" and not (words and words[0] == "~") and path != "/":
            path = os.path.normpath(path)
    return path if path.endswith("/") else path + "/"


def _own_srv(w) -> ServerConf:
    got = w.own(SRV)
    return got if got is not None else ServerConf(origin=w.cur.location)


def _own_dir(w) -> DirConf:
    got = w.own(DIR)
    if got is not None:
        return got
    return DirConf(directory=None if _server_level(w) else _section_directory(w))


def _engine(w, args):
    on = values.flag(args[0], w.name)
    if _server_level(w):
        w.set(SRV, dataclasses.replace(_own_srv(w), state=on, state_set=True))
    w.set(DIR, dataclasses.replace(_own_dir(w), state=on, state_set=True))


def _options(w, args):
    bits = 0
    for a in args:
        low = a.lower()
        if low.startswith("maxredirects="):
            w.warnings.append("RewriteOptions: MaxRedirects option has been removed in favor "
                              "of the global LimitInternalRecursion directive and will be "
                              "ignored.")
            continue
        bit = engine.OPTION_WORDS.get(low)
        if bit is None:
            raise ConfigError(f"RewriteOptions: unknown option '{a}'")
        bits |= bit
    if _server_level(w):
        s = _own_srv(w)
        w.set(SRV, dataclasses.replace(s, options=s.options | bits, options_set=True))
    d = _own_dir(w)
    w.set(DIR, dataclasses.replace(d, options=d.options | bits, options_set=True))


def _base(w, args):
    if _server_level(w):
        raise ConfigError("RewriteBase: only valid in per-directory config files")
    a = args[0]
    if not a:
        raise ConfigError("RewriteBase: empty URL not allowed")
    if not a.startswith("/"):
        raise ConfigError("RewriteBase: argument is not a valid URL")
    w.set(DIR, dataclasses.replace(_own_dir(w), baseurl=a, baseurl_set=True))


def _map(w, args):
    spec = parse_map(args[0], args[1], w.server_root)
    s = _own_srv(w)
    w.set(SRV, dataclasses.replace(s, maps=s.maps + ((args[0], spec),)))


def _raw(w) -> str:
    return getattr(w, "raw_args", "") or ""


def _cond(w, args):
    cond = engine.parse_cond(_raw(w), w.warnings.append)
    if _server_level(w):
        s = _own_srv(w)
        w.set(SRV, dataclasses.replace(s, conds=s.conds + (cond,)))
    else:
        d = _own_dir(w)
        w.set(DIR, dataclasses.replace(d, conds=d.conds + (cond,)))


def _handler_ok(name: str) -> bool:
    from httpd_py.http import hooks
    from httpd_py.modules import core_http
    low = name.lower()
    if "%" in name or "$" in name:
        return False
    return low in hooks.HANDLERS or low in core_http.DEFAULT_HANDLERS or \
        low in core_http.HARMLESS_UNBUILT


def _proxy_available() -> bool:
    from httpd_py.http import hooks
    return "proxy-server" in hooks.HANDLERS


def _rule(w, args):
    where = f"{w.loc.file}:{w.loc.line}"
    if _server_level(w):
        s = _own_srv(w)
        rule = engine.parse_rule(_raw(w), s.conds, proxy_available=_proxy_available(),
                                 handler_ok=_handler_ok, where=where)
        w.set(SRV, dataclasses.replace(s, rules=s.rules + (rule,), conds=()))
    else:
        d = _own_dir(w)
        rule = engine.parse_rule(_raw(w), d.conds, proxy_available=_proxy_available(),
                                 handler_ok=_handler_ok, where=where)
        w.set(DIR, dataclasses.replace(d, rules=d.rules + (rule,), conds=()))


def rows() -> list[Directive]:
    M = MODULE
    return [
        Directive("RewriteEngine", M, "A", FLAG, "Off", "Turns the rewriting engine on or off "
                  "(server rules at translation, per-directory rules at fixups)", _engine,
                  override="fileinfo"),
        Directive("RewriteOptions", M, "A", ITERATE, "", "Inherit, InheritBefore, InheritDown, "
                  "InheritDownBefore, IgnoreInherit, AllowNoSlash, AllowAnyURI, MergeBase, "
                  "IgnoreContextInfo, LegacyPrefixDocRoot, UnsafePrefixStat", _options,
                  syntax="option ...", override="fileinfo"),
        Directive("RewriteBase", M, "A", TAKE1, "", "The URL-path of a per-directory rule set "
                  "(relative substitutions become URL-paths under it)", _base,
                  syntax="URL-path", override="fileinfo"),
        Directive("RewriteCond", M, "A", RAW, "", "A condition for the next RewriteRule: "
                  "%{VAR} test strings, regex, -f -d -s -l -x -F -U, = < > <= >=, -eq -ne -lt "
                  "-le -gt -ge, expr; [NC,OR,NV]", _cond,
                  syntax="TestString CondPattern [flags]", override="fileinfo"),
        Directive("RewriteRule", M, "A", RAW, "", "Rewrites the URL: L END R[=code] NC QSA "
                  "QSD QSL NE F G PT S=n C T= E= CO= DPI B N (P needs mod_proxy)", _rule,
                  syntax="Pattern Substitution [flags]", override="fileinfo"),
        Directive("RewriteMap", M, "SV", TAKE23, "", "Names a key->value map for ${name:key}: "
                  "txt:, rnd:, int:toupper|tolower|escape|unescape (prg:, dbm:, dbd: refused)",
                  _map, syntax="MapName MapType:MapSource"),
    ]
