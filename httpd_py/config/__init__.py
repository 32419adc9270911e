"""httpd.conf front end: ``load`` reads a configuration into a frozen ``ServerConfig``,
``check`` runs the post-config checks.

    from httpd_py.config import load, check
    cfg = load("/etc/httpd-py/httpd.conf", defines=("SSL",))
    warnings = check(cfg)          # raises ConfigError (with file:line) on a fatal problem

Both raise ``httpd_py.errors.ConfigError`` carrying the file and line of the offending directive;
``str(err)`` is Apache's ``AH00526: Syntax error on line N of FILE:`` + message.
"""
from __future__ import annotations

import os
from typing import Iterable

from httpd_py import log, logids
from httpd_py.config import build, directives, modules
from httpd_py.config.checks import check
from httpd_py.config.model import ServerConfig
from httpd_py.config.parser import parse_text
from httpd_py.config.reader import Reader, ReadState
from httpd_py.errors import ConfigError

__all__ = ["load", "check", "ConfigError", "ServerConfig", "PRE_POST_FILE"]

# The pseudo-file -C/-c directives are reported in (Apache's wording).
PRE_POST_FILE = "-c/-C directives"


def _directive_known(loaded: set[str]):
    sources = modules.loaded_sources(loaded)

    def known(lname: str) -> bool:
        d = directives.TABLE.get(lname)
        return d is not None and (d.module in sources or d.ext)
    return known


def load(config_file: str, *, server_root: str | None = None, defines: Iterable[str] = (),
         pre_directives: Iterable[str] = (), post_directives: Iterable[str] = (),
         log_warnings: bool = True, check_document_root: bool = True) -> ServerConfig:
    """Read ``config_file`` (relative paths are relative to ServerRoot) into a ServerConfig.

    server_root: ``-d`` (default: the configuration file's directory).  defines: ``-D`` names
    (``NAME`` or ``NAME=value``).  pre_directives / post_directives: ``-C`` / ``-c`` lines, read
    before / after the file.  check_document_root=False is ``-T`` (a DocumentRoot need not
    exist).  Non-fatal findings (undefined ${VAR}, prefork clamps) are in
    ``cfg.warnings`` and, with log_warnings, written to the error log (HP00101).
    """
    if server_root is None:
        server_root = os.path.dirname(os.path.abspath(config_file))
    server_root = os.path.abspath(server_root)
    if not os.path.isabs(config_file):
        config_file = os.path.join(server_root, config_file)
    config_file = os.path.normpath(config_file)
    defs: dict[str, str] = {}
    for d in defines:
        name, _, value = d.partition("=")
        defs[name] = value
    loaded = set(modules.static_ids())
    state = ReadState(server_root=server_root, defines=defs, loaded=loaded)
    state.directive_known = _directive_known(loaded)
    reader = Reader(state)

    nodes = []
    w = build.Walk(state.server_root, check_document_root)
    try:
        pre = list(pre_directives)
        if pre:
            nodes += reader.build(_pseudo(pre), (), None)[0]
        nodes += reader.read_top(config_file)
        post = list(post_directives)
        if post:
            nodes += reader.build(_pseudo(post), (), None)[0]
        w.server_root = state.server_root
        w.loaded = frozenset(state.loaded)
        w.load_modules = tuple(m for m, _ in state.load_modules)
        build.walk(nodes, w)
    except ConfigError:
        if log_warnings:     # what was found before the error (Apache logs it as it reads)
            for msg in state.warnings + w.warnings:
                log.error_log.warn("core", logids.CONFIG_WARNING, msg)
        raise
    if state.runtime_dir is not None:
        w.g["default_runtime_dir"] = state.runtime_dir
    warnings = state.warnings + w.warnings
    cfg = build.make_config(w, config_file=config_file, server_root=state.server_root,
                            defines=state.defines, loaded=state.loaded,
                            includes=state.includes, warnings=warnings)
    if log_warnings:
        for msg in cfg.warnings:
            log.error_log.warn("core", logids.CONFIG_WARNING, msg)
    return cfg


def _pseudo(lines: list[str]):
    from httpd_py.config.reader import _Source
    parsed = parse_text("\n".join(lines) + "\n", PRE_POST_FILE)
    return _Source(parsed)


def load_htaccess(path: str, text: str, cfg: ServerConfig, overrides, override_list=()):
    """One .htaccess file -> its DirConf, as Apache reads it: only directives whose override
    class AllowOverride admits (or that AllowOverrideList names), everything else "not allowed
    here".  Raises ConfigError with the file and line."""
    from httpd_py.config import dirconf
    from httpd_py.config.reader import Node, _Source
    loaded = set(cfg.loaded_modules)
    state = ReadState(server_root=cfg.server_root, defines=dict(cfg.define_values),
                      loaded=loaded)
    state.directive_known = _directive_known(loaded)
    nodes = Reader(state).build(_Source(parse_text(text, path)), (), None)[0]
    w = build.Walk(cfg.server_root, check_document_root=False)
    w.htaccess = overrides
    w.htaccess_list = frozenset(override_list or ())
    if overrides.options is not None:
        w.allowed_options = overrides.options
    own: dict = {}
    w.dir_section, w.dir_target = Node("<Directory", path, path, 0, []), own
    build.walk(nodes, w)
    if w.env_uses and w.setenv_vars:
        build._check_env_uses(w)
    conf = build._dirconf(own)
    if conf.authz is not dirconf.UNSET and conf.authz is not None:
        from httpd_py.modules.authz_core import check_negative_only
        check_negative_only(conf.authz)
    return conf


def ignored_summary(cfg: ServerConfig) -> str | None:
    """One line for everything accepted but without effect, grouped by module with counts
    (HP00901 at start-up; also printed by -t)."""
    if not cfg.ignored_directives:
        return None
    groups: dict[str, dict[str, int]] = {}
    for name, _where in cfg.ignored_directives:
        d = directives.lookup(name.split()[0].rstrip(">"))
        mod = d.module if d is not None else "?"
        per = groups.setdefault(mod, {})
        per[name] = per.get(name, 0) + 1
    parts = []
    for mod in sorted(groups, key=lambda m: (-sum(groups[m].values()), m)):
        names = ", ".join(f"{n}" + (f" x{c}" if c > 1 else "")
                          for n, c in sorted(groups[mod].items()))
        parts.append(f"{mod} ({sum(groups[mod].values())}: {names})")
    n = len(cfg.ignored_directives)
    return (f"{n} directive{'s' if n != 1 else ''} accepted without effect in httpd-py "
            f"(not built yet; nothing that decides access): " + "; ".join(parts))
