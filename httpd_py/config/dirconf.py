"""Per-directory configuration: what `<Directory>`, `<Location>`, `<Files>`, `<If>` and
`.htaccess` set, and the one merge that combines them in Apache's order.

A ``DirConf`` is one section's own settings (every field ``UNSET`` unless the section set it);
``merge(base, new)`` is Apache's per-directory merge for every module httpd-py implements, field
by field (core, mod_dir, mod_mime, mod_authz_core, mod_auth_basic/authn_core/authn_file,
mod_authz_groupfile, mod_access_compat).  The server's own per-directory defaults (directives
written outside any section) are a ``DirConf`` too: the base of every request's walk.

A ``Section`` is one `<Directory>` / `<DirectoryMatch>` / `<Files>` / `<FilesMatch>` /
`<Location>` / `<LocationMatch>` / `<If>` chain with its ``DirConf``.  `<Files>` and `<If>`
written inside another section live in that section's ``DirConf.files`` / ``DirConf.ifs``,
as in Apache, and apply only where their parent did.

Merged results are immutable and cached by the request path (``http/walk.py``): a request looks
its per-directory configuration up, it never merges.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from httpd_py.config.model import UNSET, Location

# Options words -> the flags they stand for (Apache 2.4: All = everything but MultiViews).
OPTION_WORDS = {
    "none": (), "all": ("execcgi", "includes", "indexes", "followsymlinks"),
    "followsymlinks": ("followsymlinks",), "symlinksifownermatch": ("symlinksifownermatch",),
    "execcgi": ("execcgi",), "includes": ("includes",), "includesnoexec": ("includesnoexec",),
    "indexes": ("indexes",), "multiviews": ("multiviews",), "runscripts": ("execcgi",),
}
#: Apache 2.4's default when no Options directive applies
DEFAULT_OPTIONS = frozenset({"followsymlinks"})

# AllowOverride classes (Apache's OR_* bits).
OVERRIDE_CLASSES = ("authconfig", "fileinfo", "indexes", "limit", "options")


@dataclass(frozen=True)
class OptionsSpec:
    """One Options line: ``base`` replaces what is inherited (no +/- words), else ``add`` and
    ``remove`` adjust it."""
    base: frozenset | None
    add: frozenset = frozenset()
    remove: frozenset = frozenset()

    def apply(self, inherited: frozenset) -> frozenset:
        if self.base is not None:
            return self.base
        return (inherited - self.remove) | self.add

    def then(self, later: "OptionsSpec") -> "OptionsSpec":
        """This line followed by ``later`` (two Options lines in one section)."""
        if later.base is not None:
            return later
        if self.base is not None:
            return OptionsSpec(later.apply(self.base))
        return OptionsSpec(None, (self.add - later.remove) | later.add,
                           (self.remove - later.add) | later.remove)


@dataclass(frozen=True)
class Overrides:
    """AllowOverride: the classes allowed in .htaccess, and ``options`` the Options= words
    (None: any option)."""
    classes: frozenset
    options: frozenset | None = None

    @property
    def none(self) -> bool:
        return not self.classes


NO_OVERRIDES = Overrides(frozenset())


@dataclass(frozen=True)
class DirConf:
    """One section's own per-directory settings (UNSET: not set here)."""
    options: Any = UNSET                 # OptionsSpec
    allow_override: Any = UNSET          # Overrides
    allow_override_list: Any = UNSET     # tuple of lower-case directive names
    directory_index: Any = UNSET         # tuple of names (() = disabled)
    error_documents: Any = UNSET         # ((status, document), ...) later wins
    add_types: Any = UNSET               # ((ext, type), ...) later wins
    limit_request_body: Any = UNSET
    require_ssl: Any = UNSET             # SSLRequireSSL
    # mod_authz_core
    authz: Any = UNSET                   # modules.authz_core.Container (the section's Require tree)
    auth_merging: Any = UNSET            # "off" | "and" | "or"
    authz_forbidden_on_fail: Any = UNSET
    # mod_authn_core, mod_auth_basic, mod_authn_file, mod_authz_groupfile
    auth_type: Any = UNSET               # "basic" | "none" | other (lower-case)
    auth_name: Any = UNSET
    auth_basic_provider: Any = UNSET     # tuple of provider names
    auth_user_file: Any = UNSET
    auth_group_file: Any = UNSET
    # mod_access_compat
    order: Any = UNSET                   # ((methods|None, order), ...)
    allows: Any = UNSET                  # tuple of access_compat.HostRule
    denies: Any = UNSET
    satisfy: Any = UNSET                 # "all" | "any"
    # nested sections (apply only where this one does)
    files: tuple = ()
    ifs: tuple = ()
    # the per-directory settings of httpd_py/modules/* (Apache's per-module config vector):
    # ((key, value), ...) sorted by key; keys are "dir.<module>.<name>", written by a row's
    # handler with w.set/w.extend and merged by the rule the module registered (``register``)
    mods: tuple = ()

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (UNSET, ()) for f in dataclasses.fields(self))

    def mod(self, key: str, default: Any = None) -> Any:
        """A module's merged per-directory value (``default`` when no section set it)."""
        for k, v in self.mods:
            if k == key:
                return v
        return default


EMPTY = DirConf()

# How a field of a later section combines with the earlier value.
_AFTER = ("error_documents", "add_types", "allows", "denies", "order")
_CONCAT = ("files", "ifs")


# How a module key combines a later section's value with the inherited one: "override" (the
# default: the later wins), "concat" (inherited items, then the later's: lists of actions), or
# a function (base, new) -> merged.  Modules register their keys at import.
MOD_MERGE: dict[str, Any] = {}


def register(key: str, how: Any = "override") -> str:
    """Declare a module's settings key and its merge rule; returns the key.  The prefix says
    where it lives: "dir." per directory (DirConf.mods), "srv." per server (VHost.mods, a
    vhost's value over the main server's by the same rule), "glob." server-wide
    (ServerConfig.mods)."""
    if not key.startswith(("dir.", "srv.", "glob.")):
        raise ValueError(f"module key {key!r} must start with dir., srv. or glob.")
    MOD_MERGE[key] = how
    return key


def merge_mods(base: tuple, new: tuple) -> tuple:
    """Merge two ``mods`` tuples key by key with the registered rules."""
    if not new:
        return base
    if not base:
        return new
    out = dict(base)
    for k, v in new:
        if k in out:
            how = MOD_MERGE.get(k, "override")
            if how == "concat":
                v = out[k] + v
            elif callable(how):
                v = how(out[k], v)
        out[k] = v
    return tuple(sorted(out.items()))


def merge(base: DirConf, new: DirConf) -> DirConf:
    """Apache's per-directory merge of ``new`` (a later section) over ``base``."""
    if new is EMPTY:
        return base
    if base is EMPTY:
        return new
    kw = {}
    for f in dataclasses.fields(DirConf):
        name = f.name
        b, n = getattr(base, name), getattr(new, name)
        if name in _CONCAT:
            kw[name] = b + n
        elif name == "mods":
            kw[name] = merge_mods(b, n)
        elif n is UNSET:
            kw[name] = b
        elif b is UNSET:
            kw[name] = n
        elif name == "options":
            kw[name] = b.then(n)
        elif name in _AFTER:
            kw[name] = b + n
        else:
            kw[name] = n
    _merge_authz(base, new, kw)
    return DirConf(**kw)


def _merge_authz(base: DirConf, new: DirConf, kw: dict) -> None:
    """mod_authz_core's merge: a section with its own Require lines replaces what it inherits
    (AuthMerging Off, the default) or combines with it (And / Or)."""
    from httpd_py.modules.authz_core import Container
    op = new.auth_merging
    if op is UNSET and new.authz is UNSET:
        kw["authz"], kw["auth_merging"] = base.authz, base.auth_merging
        return
    if op in (UNSET, "off") or (base.authz is UNSET and new.authz is UNSET):
        kw["authz"], kw["auth_merging"] = new.authz, op
        return
    if base.authz is not UNSET and new.authz is not UNSET:
        kw["authz"] = Container(op, False, (base.authz, new.authz), merged=True)
    else:
        kw["authz"] = new.authz if new.authz is not UNSET else base.authz
    kw["auth_merging"] = op


def effective_options(conf: DirConf) -> frozenset:
    return conf.options.apply(DEFAULT_OPTIONS) if conf.options is not UNSET else DEFAULT_OPTIONS


@dataclass(frozen=True)
class Section:
    """One per-directory section as written in the config (or one <If>/<ElseIf>/<Else> chain).

    kind: "directory" (pattern a path, or ``regex``), "files" (a name with wildcards, or
    ``regex``), "location" (a URL path with wildcards, or ``regex``), "if" (``chain``).
    """
    kind: str
    pattern: str
    conf: DirConf
    location: Location | None = None
    regex: re.Pattern | None = None
    depth: int = 0                       # path components of a non-regex <Directory>
    wildcard: bool = False               # pattern has * ? [ (fnmatch)
    chain: tuple = ()                    # <If>: ((Condition | None, DirConf), ...) in order


def directory_depth(path: str) -> int:
    """Components of a <Directory> path, as Apache counts them for its shortest-first order."""
    p = path.rstrip("/")
    return p.count("/") if p else 0
