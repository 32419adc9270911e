"""mod_env: ``SetEnv``, ``UnsetEnv``, ``PassEnv`` -- variables of the request's environment
(Apache's ``r->subprocess_env``, here ``hooks.Request.env``) set per directory.

Per-directory value (``dir.env.vars``, merged as Apache's ``merge_env_dir_configs`` in the
order Apache's walks merge: see ``merge``)::

    EnvConf(vars=(("NAME", "value"), ...),   # SetEnv / PassEnv, config order, one per name
            unset=("NAME", ...),             # UnsetEnv of this section (applied to what it
                                             # inherits; dropped once merged)
            walk="dir")                      # "" server level; "dir", "file", "loc", "if"

``PassEnv`` reads the server's own environment when the configuration is loaded (a variable that
is not set there is a warning, as Apache's AH01506).  The fixups hook adds the variables to
``req.env`` as ``apr_table_overlay`` does: a variable the request already has (SetEnvIf set it
in an earlier phase) keeps its value.  As in Apache, the fixups phase runs after access
control, so ``Require env`` never sees what ``SetEnv`` sets.

The environment is a table with case-insensitive names in Apache (``apr_table``): ``env_get``,
``env_set`` and ``env_unset`` are those lookups over the ``req.env`` dict, shared with
mod_setenvif and mod_headers.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from httpd_py.config.dirconf import register
from httpd_py.http import hooks

__all__ = ["EnvConf", "env_get", "env_set", "env_unset", "merge", "rows"]


# -- the request environment: a case-insensitive table ---------------------------------------------
def env_get(env: dict, name: str) -> str | None:
    """``apr_table_get(r->subprocess_env, name)``: the value, names compared without case."""
    v = env.get(name)
    if v is None and env:
        lname = name.lower()
        for k, val in env.items():
            if k.lower() == lname:
                return val
    return v


def env_set(env: dict, name: str, value: str) -> None:
    """``apr_table_setn``: replace the value under any spelling of the name (the first spelling
    stays), else add it."""
    if name not in env and env:
        lname = name.lower()
        for k in env:
            if k.lower() == lname:
                name = k
                break
    env[name] = value


def env_unset(env: dict, name: str) -> None:
    """``apr_table_unset``: remove every spelling of the name."""
    env.pop(name, None)
    if env:
        lname = name.lower()
        for k in [k for k in env if k.lower() == lname]:
            del env[k]


# -- configuration ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnvConf:
    """mod_env's per-directory value.  A value a handler wrote: ``vars`` and ``unset`` of the
    server (``walk`` "") or of one section (``walk`` "dir", "file", "loc" or "if": the walk of
    Apache's that merges it).  A merged value (``walk`` "merged"): the server level's ``vars``,
    then ``segments`` ((walk, vars, unset), ...), one per walk, in order."""
    vars: tuple = ()          # ((name, value), ...)
    unset: tuple = ()         # (name, ...)
    walk: str = ""
    segments: tuple = ()


def _without(items: tuple, name: str) -> tuple:
    lname = name.lower()
    return tuple((k, v) for k, v in items if k.lower() != lname)


def _with(items: tuple, name: str, value: str) -> tuple:
    """apr_table_setn on a tuple of pairs: the first entry of that name takes the value."""
    lname = name.lower()
    for i, (k, _) in enumerate(items):
        if k.lower() == lname:
            return items[:i] + ((k, value),) + _without(items[i + 1:], name)
    return items + ((name, value),)


def _apply(base_vars: tuple, vars_: tuple, unset: tuple) -> tuple:
    """merge_env_dir_configs: the base's variables, minus the later value's UnsetEnv, plus its
    SetEnv/PassEnv (a merged result has no UnsetEnv list any more)."""
    out = base_vars
    for name in unset:
        out = _without(out, name)
    for name, value in vars_:
        out = _with(out, name, value)
    return out


def _parts(c: EnvConf) -> tuple[tuple, tuple]:
    if c.walk == "":
        return c.vars, ()
    if c.walk == "merged":
        return c.vars, c.segments
    return (), ((c.walk, c.vars, c.unset),)


def merge(base: EnvConf, new: EnvConf) -> EnvConf:
    """Apache's order of merges for mod_env: each walk (directory with .htaccess, files,
    location, <If>) first merges the sections it matched that use mod_env directives among
    themselves, then merges that onto what the request has; so an UnsetEnv in a section removes
    a variable of the server level only when it is the only mod_env section of its walk.  A
    virtual host's own value merges straight onto the main server's."""
    srv, segs = _parts(base)
    if new.walk == "":
        return EnvConf(_apply(srv, new.vars, new.unset), (), "merged", segs)
    if segs and segs[-1][0] == new.walk:
        w, v, u = segs[-1]
        segs = segs[:-1] + ((w, _apply(v, new.vars, new.unset), ()),)
    else:
        segs = segs + ((new.walk, new.vars, new.unset),)
    return EnvConf(srv, (), "merged", segs)


def effective(c: EnvConf) -> tuple:
    """The variables a request in this configuration gets: ((name, value), ...)."""
    out, segs = _parts(c)
    for _, v, u in segs:
        out = _apply(out, v, u)
    return out


VARS = register("dir.env.vars", merge)

_WALKS = {"<files": "file", "<filesmatch": "file", "<location": "loc", "<locationmatch": "loc",
          "<if": "if", "<elseif": "if", "<else": "if"}


def _own(w) -> EnvConf:
    sec = w.dir_section
    return w.own(VARS) or EnvConf(walk="" if sec is None else _WALKS.get(sec.lname, "dir"))


def _set_env(w, args):
    name = args[0]
    if "=" in name:
        var, _, rest = name.partition("=")
        w.warnings.append(f"Spurious usage of '=' in an environment variable name. "
                          f"'{w.name} {var} {rest}' expected instead? (line {w.loc.line} of "
                          f"{w.loc.file})")
    c = _own(w)
    w.set(VARS, EnvConf(_with(c.vars, name, args[1] if len(args) > 1 else ""), c.unset, c.walk))


def _unset_env(w, args):
    c = _own(w)
    v, u = c.vars, c.unset
    for name in args:
        v = _without(v, name)
        if name.lower() not in (x.lower() for x in u):
            u += (name,)
    w.set(VARS, EnvConf(v, u, c.walk))


def _pass_env(w, args):
    c = _own(w)
    v = c.vars
    for name in args:
        value = os.environ.get(name)
        if value is None:
            w.warnings.append(f"PassEnv variable {name} was undefined (line {w.loc.line} of "
                              f"{w.loc.file})")
        else:
            v = _with(v, name, value)
    w.set(VARS, EnvConf(v, c.unset, c.walk))


# -- the fixups hook -----------------------------------------------------------------------------
_effective: dict[int, tuple] = {}     # id(EnvConf) -> (EnvConf, effective vars), per worker


def fixup(req: hooks.Request):
    conf = req.conf
    if conf is None or not conf.mods:
        return None
    c = conf.mod(VARS)
    if c is None:
        return None
    got = _effective.get(id(c))
    if got is None or got[0] is not c:
        got = (c, effective(c))
        if len(_effective) >= 4096:
            _effective.clear()
        _effective[id(c)] = got
    env = req.env
    for name, value in got[1]:
        if env_get(env, name) is None:
            env[name] = value
    return None


hooks.FIXUPS.append(fixup)
hooks.INERT[fixup] = lambda vhost, conf: conf.mod(VARS) is None


def rows():
    from httpd_py.config.directives.base import ITERATE, TAKE12, Directive as D
    E = "mod_env.c"
    return [
        D("SetEnv", E, "A", TAKE12, "", "Set a variable of the request environment",
          _set_env, syntax="variable [value]", override="fileinfo"),
        D("UnsetEnv", E, "A", ITERATE, "", "Remove variables SetEnv/PassEnv set in enclosing "
          "scopes", _unset_env, syntax="variable ...", override="fileinfo"),
        D("PassEnv", E, "A", ITERATE, "", "Copy variables of the server's environment (read at "
          "start-up) into the request environment", _pass_env, syntax="variable ...",
          override="fileinfo"),
    ]
