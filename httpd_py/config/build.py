"""Walk phase and model building: node tree -> frozen ServerConfig.

Every node is looked up in the directive table, its context checked (Apache's "not allowed here",
"not allowed in <Directory> context", "cannot occur within <VirtualHost> section"), its argument
count checked, then its handler runs.  Handlers record settings per server (the main server or the
current <VirtualHost>) as flat keys ("ssl.stapling.enabled") with the location that set them.

Inside <Directory>/<Location>/<Files>/<If> sections handlers write into the section's own
settings, which become a ``dirconf.DirConf``; each section becomes a ``dirconf.Section`` of its
server (``VHost.sections``; <Files> and <If> nested in another section live in that section's
DirConf).  Per-directory directives written outside any section make the server's own
``VHost.dir``, the base of every request's section walk (``http/walk.py``).  <Limit> and
<LimitExcept> limit the Require and Allow/Deny lines inside them to their methods;
<RequireAll|Any|None> build mod_authz_core's tree.

Each vhost is then the main server merged field by field with its own settings (one generic
merge, ``_merge``), and name-based tables are grouped per address:port.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from httpd_py.config import dirconf, values
from httpd_py.config.values import unquote_expr
from httpd_py.config.directives import Directive, field_defaults, lookup
from httpd_py.config.model import (
    UNSET, CertKeyPair, Location, MutexSpec, PreforkConfig, ServerConfig, SSLConfig, StaplingConfig,
    VHost, VHostAddr, VHostGroup,
)
from httpd_py.config.parser import split_args
from httpd_py.config.reader import Node, section_text
from httpd_py.errors import ConfigError

# Sections whose bodies are per-directory configuration.
DIR_SECTIONS = frozenset({"<directory", "<directorymatch", "<location", "<locationmatch",
                          "<files", "<filesmatch", "<if", "<elseif", "<else", "<limit",
                          "<limitexcept", "<requireall", "<requireany", "<requirenone"})

# List settings and how a vhost combines them with the main server's:
#   "own"    the vhost's list if it set one, else the main server's
#   "both"   the vhost's entries first, then the main server's (aliases, redirects)
#   "after"  the main server's entries, then the vhost's (later entries win on lookup)
_LIST_MERGE = {
    "server_aliases": "vhost-only",
    "server_alias_texts": "vhost-only",
    "custom_logs": "own",
    "ssl._cert_files": "own",
    "ssl._key_files": "own",
    "aliases": "both",
    "redirects": "both",
    "add_types": "after",
    "error_documents": "after",
    "module_log_levels": "after",
    "ssl.openssl_conf_cmds": "after",
}

# List directives whose every entry keeps its own location ("name#i"), for post-config errors.
_PER_ENTRY_LOCATIONS = frozenset({"sslcertificatefile", "sslcertificatekeyfile"})

MUTEX_SHOWN = ("default", "mpm-accept", "ssl-cache", "ssl-stapling", "ssl-stapling-refresh",
               "watchdog-callback")


class ServerBuild:
    def __init__(self, location: Location | None, addrs: tuple[VHostAddr, ...] = ()):
        self.location = location
        self.addrs = addrs
        self.settings: dict[str, Any] = {}
        self.locs: dict[str, Location] = {}
        self.sections: list[dirconf.Section] = []   # <Directory*>, <Location*> in file order


class Walk:
    """What a handler sees: the current server, the directive, its location."""

    def __init__(self, server_root: str, check_document_root: bool = True):
        self.server_root = server_root
        self.check_document_root = check_document_root
        self.g: dict[str, Any] = {}
        self.g_locs: dict[str, Location] = {}
        self.main = ServerBuild(None)
        self.vhosts: list[ServerBuild] = []
        self.cur = self.main
        self.in_vhost = False
        self.dir_section: Node | None = None
        self.name = ""
        self.loc: Location = Location("", 0)
        self.ignored: list[tuple[str, Location]] = []
        self.warnings: list[str] = []
        self.dir_target: dict[str, Any] = {}      # the current section's own settings
        self.limit = None                         # authz_core.Methods inside <Limit*>
        self.prev_name = ""                       # the previous directive in this scope
        self.setenv_vars: dict[str, Location] = {}   # variables only unbuilt directives set
        self.env_uses: list[tuple[str, str, Location]] = []   # (var, directive, where)
        self.refused: list[tuple[str, Location, str]] = []    # fail-closed (name, where, why)
        self.htaccess = None                      # dirconf.Overrides when reading a .htaccess
        self.htaccess_list: frozenset = frozenset()
        self.allowed_options: frozenset | None = None
        # the read phase's modules (Apache loads every module before it processes directives):
        # ids loaded (static ones included) and those named by LoadModule
        self.loaded: frozenset[str] = frozenset()
        self.load_modules: tuple[str, ...] = ()

    # -- handler API --------------------------------------------------------------------------------
    def _target(self) -> dict[str, Any]:
        return self.dir_target if self.dir_section is not None else self.cur.settings

    def own(self, key: str, default: Any = None) -> Any:
        """This section's (or server's) own value of a per-directory key, never inherited."""
        return self._target().get(key, default)

    def _section_only_server(self, key: str) -> bool:
        """A per-server setting written inside a section: Apache would apply it there; httpd-py
        applies it per server only.  Redirects are refused (dropping one would serve what the
        config sends elsewhere); the rest is listed as without effect.  True: drop it."""
        if self.dir_section is None or key in _DIRCONF_FIELDS or key in _INTERNAL_KEYS \
                or key.startswith("dir."):
            return False
        if key in ("redirects", "aliases"):
            raise ConfigError(f"{self.name} inside <{self.dir_section.name.lstrip('<')}> is not "
                              f"applied by httpd-py yet; refused rather than ignored (the URL "
                              f"would serve something else). Use it outside the section.")
        self.ignored.append((f"{self.name} (inside {self.dir_section.name}>)", self.loc))
        return True

    def set(self, key: str, value: Any) -> None:
        if self._section_only_server(key):
            return
        self._target()[key] = value
        if self.dir_section is None:
            self.cur.locs[self.name.lower()] = self.loc

    def get(self, key: str, default: Any = None) -> Any:
        t = self._target()
        if key in t:
            return t[key]
        if self.dir_section is None and self.cur is not self.main:
            return self.main.settings.get(key, default)
        return default

    def extend(self, key: str, items: tuple) -> None:
        if self._section_only_server(key):
            return
        t = self._target()
        old = t.get(key, ())
        t[key] = (*old, *items)
        if self.dir_section is None:
            lname = self.name.lower()
            self.cur.locs.setdefault(lname, self.loc)
            if lname in _PER_ENTRY_LOCATIONS:
                for i in range(len(old), len(old) + len(items)):
                    self.cur.locs[f"{lname}#{i}"] = self.loc

    def glob(self, key: str, value: Any) -> None:
        self.g[key] = value
        self.g_locs[self.name.lower()] = self.loc


def _section_words(node: Node) -> list[str]:
    return split_args(section_text(node))


def _check_context(d: Directive, w: Walk) -> None:
    shown = d.name + (">" if d.is_section and d.where == "S" else "")
    if w.dir_section is not None:
        if d.where not in ("A", "D"):
            raise ConfigError(f"{d.name} not allowed in {w.dir_section.name}> context")
    elif d.where == "D":
        raise ConfigError(f"{d.name} not allowed here")
    elif w.in_vhost and d.where == "S":
        raise ConfigError(f"{shown} cannot occur within <VirtualHost> section")


def _check_override(d: Directive, w: Walk) -> None:
    """In a .htaccess file: AllowOverride's classes (or AllowOverrideList) must admit it."""
    ok = d.name.lower() in w.htaccess_list
    if not ok and d.override == "any":
        ok = not w.htaccess.none
    elif not ok and d.override:
        ok = d.override in w.htaccess.classes
    if not ok:
        raise ConfigError(f"{d.name}{'>' if d.is_section else ''} not allowed here")


def walk(nodes: list[Node], w: Walk) -> None:
    prev = ""
    for node in nodes:
        w.prev_name = prev
        try:
            _walk_node(node, w)
        except ConfigError as e:
            raise e.located(node.file, node.line) from None
        except (ValueError, OSError) as e:        # e.g. a NUL byte in a path: still located
            raise ConfigError(f"{node.name}: {e}", node.file, node.line) from None
        prev = node.name.lower()


def _walk_node(node: Node, w: Walk) -> None:
    d = lookup(node.name)
    if d is None or d.read_time:
        # Read-time names never get here (the reader ran them); anything else is unknown.
        raise ConfigError(f"Invalid command '{node.name}', perhaps misspelled or defined by a "
                          f"module not included in the server configuration")
    _check_context(d, w)
    if w.htaccess is not None:
        _check_override(d, w)
    loc = Location(node.file, node.line)
    w.name, w.loc = d.name, loc
    if d.is_section:
        _section(d, node, w, loc)
        return
    args = split_args(node.args)
    w.raw_args = node.args
    d.check_count(args)
    if d.handler is not None:
        d.handler(w, args)
    if not d.used:
        from httpd_py.config.perdir import fail_closed
        why = fail_closed(d.name, args)
        if why:
            raise ConfigError(f"{d.name}: {why}; refused rather than ignored (it changes who "
                              f"may see what). Remove it, or put it in <IfModule> of a module "
                              f"that is not loaded")
        w.ignored.append((d.name, loc))


def _section(d: Directive, node: Node, w: Walk, loc: Location) -> None:
    lname = d.name.lower()
    if lname == "<virtualhost":
        words = _section_words(node)
        if not words:
            raise ConfigError("<VirtualHost> directive requires additional arguments")
        addrs = tuple(VHostAddr(*values.vhost_addr(a)) for a in words)
        vh = ServerBuild(loc, addrs)
        w.vhosts.append(vh)
        w.cur, w.in_vhost = vh, True
        try:
            walk(node.children or [], w)
        finally:
            w.cur, w.in_vhost = w.main, False
        return
    if lname in DIR_SECTIONS:
        if lname in ("<files", "<filesmatch") and w.dir_section is not None and \
                w.dir_section.lname in ("<location", "<locationmatch"):
            raise ConfigError(f"{d.name}> cannot occur within <Location> section")
        if lname in ("<requireall", "<requireany", "<requirenone"):
            _require_section(lname, node, w)
            return
        words = _section_words(node)
        if lname == "<else":
            if words:
                raise ConfigError("<Else> does not take an argument")
        elif not words:
            raise ConfigError(f"{d.name}> directive requires additional arguments")
        if lname in ("<limit", "<limitexcept"):
            from httpd_py.modules.authz_core import Methods
            outer_limit = w.limit
            w.limit = Methods(frozenset("GET" if m == "HEAD" else m for m in words),
                              lname == "<limitexcept")
            try:
                walk(node.children or [], w)
            finally:
                w.limit = outer_limit
            return
        if lname in ("<elseif", "<else") and w.prev_name not in ("<if", "<elseif"):
            raise ConfigError("<Else> or <ElseIf> section without previous <If> or <ElseIf> "
                              "section in same scope")
        outer, outer_target, outer_limit = w.dir_section, w.dir_target, w.limit
        own: dict[str, Any] = {}
        w.dir_section, w.dir_target, w.limit = node, own, None
        try:
            walk(node.children or [], w)
        finally:
            w.dir_section, w.dir_target, w.limit = outer, outer_target, outer_limit
        conf = _dirconf(own)
        parent = w._target()
        if lname in ("<if", "<elseif", "<else"):
            cond = None
            if lname != "<else":
                from httpd_py.expr import parse_condition
                cond = parse_condition(unquote_expr(section_text(node)))
            if lname == "<if":
                parent["ifs"] = (*parent.get("ifs", ()), dirconf.Section(
                    "if", unquote_expr(section_text(node)), conf, loc, chain=((cond, conf),)))
            else:
                *rest, last = parent["ifs"]
                parent["ifs"] = (*rest, dataclasses.replace(
                    last, chain=last.chain + ((cond, conf),)))
            return
        sec = _make_section(lname, words, conf, loc)
        if sec.kind == "files":
            parent["files"] = (*parent.get("files", ()), sec)
        else:
            w.cur.sections.append(sec)
        return
    if d.handler is not None and d.used:
        # a module's own section (e.g. mod_proxy's <Proxy balancer://>): its row reads it
        d.handler(w, node)
        return
    # A section of an Apache module httpd-py does not implement: accepted, body ignored.
    _section_words(node)
    w.ignored.append((d.name + ">", loc))


_DIRCONF_FIELDS = frozenset(f.name for f in dataclasses.fields(dirconf.DirConf))


def _dirconf(settings: dict) -> dirconf.DirConf:
    kw = {k: v for k, v in settings.items() if k in _DIRCONF_FIELDS}
    mods = tuple(sorted((k, v) for k, v in settings.items() if k.startswith("dir.")))
    if mods:
        kw["mods"] = mods
    return dirconf.DirConf(**kw) if kw else dirconf.EMPTY



def _regex(pattern: str):
    """A section's regex, PCRE spelling of named groups accepted."""
    import re
    py = re.sub(r"\(\?<(?![=!])", "(?P<", pattern)
    try:
        return re.compile(py)
    except re.error as e:
        raise ConfigError(f"Regex could not be compiled: {e}") from None


def _make_section(lname: str, words: list[str], conf, loc: Location) -> "dirconf.Section":
    kind = {"<directory": "directory", "<directorymatch": "directory", "<files": "files",
            "<filesmatch": "files", "<location": "location",
            "<locationmatch": "location"}[lname]
    is_regex = lname.endswith("match")
    if not is_regex and words[0] == "~":
        if len(words) < 2:
            raise ConfigError(f"{lname[1:].capitalize()}> ~ needs a regular expression")
        is_regex, pattern = True, words[1]
    else:
        pattern = words[0]
    if is_regex:
        return dirconf.Section(kind, pattern, conf, loc, regex=_regex(pattern))
    wildcard = any(c in pattern for c in "*?[")
    if kind == "directory":
        p = pattern.rstrip("/") or "/"
        return dirconf.Section(kind, p, conf, loc, depth=dirconf.directory_depth(p),
                               wildcard=wildcard)
    return dirconf.Section(kind, pattern, conf, loc, wildcard=wildcard)


def _require_section(lname: str, node: Node, w: Walk) -> None:
    from httpd_py.modules.authz_core import Container, add_container
    if section_text(node).strip():
        raise ConfigError(f"{node.name}> directive doesn't take additional arguments")
    t = w._target()
    outer = t.get("authz")
    op, negate = {"<requireall": ("and", False), "<requireany": ("or", False),
                  "<requirenone": ("or", True)}[lname]
    t["authz"] = Container(op, negate, ())
    try:
        walk(node.children or [], w)
        child = t["authz"]
    finally:
        t["authz"] = outer
    t["authz"] = add_container(outer, child, node.name)


# -- model ------------------------------------------------------------------------------------------
def _merge(main: ServerBuild, own: ServerBuild | None) -> tuple[dict, dict]:
    """One generic merge: a vhost's settings over the main server's."""
    if own is None:
        return dict(main.settings), dict(main.locs)
    merged = dict(main.settings)
    for key, value in own.settings.items():
        how = _LIST_MERGE.get(key)
        if key.startswith("srv."):
            rule = dirconf.MOD_MERGE.get(key, "override")
            if key in main.settings and rule != "override":
                value = (main.settings[key] + value if rule == "concat"
                         else rule(main.settings[key], value))
            merged[key] = value
        elif how == "both":
            merged[key] = (*value, *main.settings.get(key, ()))
        elif how == "after":
            merged[key] = (*main.settings.get(key, ()), *value)
        else:
            merged[key] = value
    if "server_aliases" not in own.settings:
        merged.pop("server_aliases", None)
        merged.pop("server_alias_texts", None)
    locs = dict(main.locs)
    if "sslcertificatefile" in own.locs or "sslcertificatekeyfile" in own.locs:
        # The vhost's certificate list replaces the main server's: so do their locations.
        for k in [k for k in locs if "#" in k]:
            del locs[k]
    locs.update(own.locs)
    return merged, locs


def _fill(cls, settings: dict, prefix: str, **extra):
    kw = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in settings.items():
        if key.startswith(prefix):
            rest = key[len(prefix):]
            if "." not in rest and rest in names:
                kw[rest] = value
    kw.update(extra)
    return cls(**kw)


_INTERNAL_KEYS = frozenset({"ssl._cert_files", "ssl._key_files", "files", "ifs"})


def _known_keys() -> frozenset:
    names = {f.name for f in dataclasses.fields(VHost)}
    names |= {"ssl." + f.name for f in dataclasses.fields(SSLConfig)}
    names |= {"ssl.stapling." + f.name for f in dataclasses.fields(StaplingConfig)}
    return frozenset(names | _DIRCONF_FIELDS | _INTERNAL_KEYS)


def check_keys(settings: dict) -> None:
    """Every key a handler wrote must be a field of the model (or a per-directory field): a
    misspelled key is a bug caught at load time, never a silently lost setting."""
    unknown = {k for k in set(settings) - _known_keys()
               if not (k.startswith(("dir.", "srv.")) and k in dirconf.MOD_MERGE)}
    if unknown:
        raise AssertionError(f"directive handlers wrote unknown settings: {sorted(unknown)}")


def _vhost(settings: dict, locs: dict, build: ServerBuild | None, defaults: dict,
           dir_conf=None, sections: tuple = ()) -> VHost:
    s = {**defaults, **settings}
    certs = s.get("ssl._cert_files", ())
    keys = s.get("ssl._key_files", ())
    pairs = tuple(CertKeyPair(c, keys[i] if i < len(keys) else None) for i, c in enumerate(certs))
    stapling = _fill(StaplingConfig, s, "ssl.stapling.")
    ssl = _fill(SSLConfig, s, "ssl.", certificates=pairs, stapling=stapling)
    return _fill(VHost, s, "", ssl=ssl, dir=dir_conf or dirconf.EMPTY, sections=sections,
                 mods=tuple(sorted((k, v) for k, v in s.items() if k.startswith("srv."))),
                 location=build.location if build else None,
                 addrs=build.addrs if build else (),
                 locations=tuple(locs.items()))


def make_config(w: Walk, *, config_file: str, server_root: str, defines: dict[str, str],
                loaded: set[str], includes: list, warnings: list[str]) -> ServerConfig:
    g = w.g
    # Every default comes from the directive rows (ServerRoot-relative ones resolved here).
    defaults, server_wide = field_defaults(server_root)
    g = {**server_wide, **g}
    runtime_dir = g["default_runtime_dir"]
    if "session_cache" in g:
        defaults["ssl.session_cache"] = g["session_cache"]
    for sb in (w.main, *w.vhosts):
        check_keys(sb.settings)
    main_settings, main_locs = _merge(w.main, None)
    main_dir = _dirconf(w.main.settings)
    main = _vhost(main_settings, main_locs, None, defaults, main_dir, tuple(w.main.sections))
    vhosts = []
    for vb in w.vhosts:
        s, l = _merge(w.main, vb)
        vhosts.append(_vhost(s, l, vb, defaults, dirconf.merge(main_dir, _dirconf(vb.settings)),
                             (*w.main.sections, *vb.sections)))
    _check_authz(main, vhosts)
    _check_env_uses(w)

    groups: dict[tuple[str, int | None], list[int]] = {}
    for i, vb in enumerate(w.vhosts):
        for a in vb.addrs:
            host = "*" if a.host == "_default_" else a.host     # the same wildcard in 2.4
            idx = groups.setdefault((host, a.port), [])
            if i not in idx:
                idx.append(i)
    vhost_groups = tuple(VHostGroup(h, p, tuple(ix)) for (h, p), ix in groups.items())


    # Mutex precedence: a line naming the mutex, then a "default" line, then built-in defaults.
    lines: dict[str, MutexSpec] = g.get("mutex_lines", {})
    mutexes = []
    for name in dict.fromkeys((*MUTEX_SHOWN, *lines)):
        spec = lines.get(name) or (dataclasses.replace(lines["default"], name=name,
                                                       using_defaults=True)
                                   if "default" in lines else None)
        if spec is None:
            spec = MutexSpec(name=name, directory=runtime_dir)
        elif not spec.directory:
            spec = dataclasses.replace(spec, directory=runtime_dir)
        mutexes.append(spec)

    prefork = _prefork(g, warnings)
    return ServerConfig(
        config_file=config_file,
        server_root=server_root,
        main=main,
        vhosts=tuple(vhosts),
        listens=tuple(g.get("listens", ())),
        prefork=prefork,
        pid_file=g["pid_file"],
        user=g.get("user"),
        group=g.get("group"),
        default_runtime_dir=runtime_dir,
        mutexes=tuple(mutexes),
        stapling_cache=g.get("stapling_cache"),
        stapling_store_dir=g.get("stapling_store_dir"),
        redis_timeout=g["redis_timeout"],
        redis_conn_pool_ttl=g["redis_conn_pool_ttl"],
        memcache_conn_ttl=g["memcache_conn_ttl"],
        defines=tuple(defines),
        define_values=tuple(defines.items()),
        loaded_modules=tuple(sorted(loaded)),
        ignored_directives=tuple(w.ignored),
        log_formats=tuple(g.get("log_formats", {}).items()),
        vhost_groups=vhost_groups,
        warnings=tuple(warnings),
        includes=tuple(includes),
        mods=tuple(sorted((k, v) for k, v in g.items() if k.startswith("glob."))),
        locations=tuple(w.g_locs.items()),
    )


def _check_authz(main: VHost, vhosts: list[VHost]) -> None:
    """mod_authz_core's start-up check on every section's Require tree (AH01624)."""
    from httpd_py.modules.authz_core import check_negative_only

    def confs(c):
        yield c
        for sec in c.files:
            yield from confs(sec.conf)
        for sec in c.ifs:
            for _, cc in sec.chain:
                yield from confs(cc)

    seen = set()
    for v in (main, *vhosts):
        for c in [v.dir, *(s.conf for s in v.sections)]:
            for cc in confs(c):
                if id(cc) in seen or cc.authz is UNSET or cc.authz is None:
                    continue
                seen.add(id(cc))
                check_negative_only(cc.authz)


def _check_env_uses(w: Walk) -> None:
    """Fail closed: an access rule that reads a variable only a directive httpd-py does not
    build would set (``w.setenv_vars``) could grant or deny differently from Apache: refuse it.
    SetEnvIf/BrowserMatch are built (modules/setenvif.py) and set nothing here; a variable that
    nothing sets is simply absent, and Apache denies on it too."""
    for var, what, loc in w.env_uses:
        if var in w.setenv_vars:
            src = w.setenv_vars[var]
            raise ConfigError(f"{what} {var}: the variable is set by a directive httpd-py does "
                              f"not build ({src.file}:{src.line}); refused rather than deciding "
                              f"access without it", loc.file, loc.line)


def _prefork(g: dict, warnings: list[str]) -> PreforkConfig:
    """prefork's clamps (Apache's AH00175-AH00187), each with a warning."""
    p = {k.split(".", 1)[1]: v for k, v in g.items() if k.startswith("prefork.")}
    cfg = PreforkConfig(**p)
    server_limit = cfg.server_limit
    if server_limit > 200000:
        warnings.append(f"ServerLimit of {server_limit} exceeds compile-time limit of 200000, "
                        "decreasing to match")
        server_limit = 200000
    elif server_limit < 1:
        warnings.append(f"ServerLimit of {server_limit} not allowed, increasing to 1")
        server_limit = 1
    mrw = cfg.max_request_workers
    if mrw > server_limit:
        warnings.append(f"MaxRequestWorkers of {mrw} exceeds ServerLimit value of "
                        f"{server_limit} servers, decreasing MaxRequestWorkers to "
                        f"{server_limit}. To increase, please see the ServerLimit directive.")
        mrw = server_limit
    elif mrw < 1:
        warnings.append(f"MaxRequestWorkers of {mrw} not allowed, increasing to 1")
        mrw = 1
    start = max(1, cfg.start_servers)
    min_spare = cfg.min_spare_servers
    if min_spare < 1:
        warnings.append(f"MinSpareServers of {min_spare} not allowed, increasing to 1")
        min_spare = 1
    max_spare = max(cfg.max_spare_servers, min_spare + 1)
    return dataclasses.replace(cfg, server_limit=server_limit, max_request_workers=mrw,
                               start_servers=start, min_spare_servers=min_spare,
                               max_spare_servers=max_spare)
