"""The section walk: which per-directory configuration a request gets, in Apache's order.

For a request mapped to ``filename`` (a file-system path) with URL path ``uri``::

    the server's own per-directory settings (VHost.dir)
    <Directory> sections, shortest path first, each level followed by that level's .htaccess
        (when the AllowOverride in force there admits any class)
    <Directory ~> / <DirectoryMatch>, in file order, against the filename
    <Files> / <FilesMatch> (and those nested in what matched so far), against the last name
    <Location> / <LocationMatch>, in file order, against the URL path
    <If> / <ElseIf> / <Else> chains (from everything merged so far), per request

Everything up to the <If> step depends only on (filename, is_dir, uri) and the .htaccess files
read: it is merged once and kept per worker (``SectionWalker.lookup``); a hit re-checks only the
identity (inode, size, mtime) of the .htaccess files it read.  The <If> step evaluates the
conditions per request and merges the chosen branches once per combination.

Main-server sections come before a vhost's (Apache concatenates them), so at the same depth
the vhost's win.
"""
from __future__ import annotations

import fnmatch
import os
from typing import NamedTuple

from httpd_py.config import dirconf
from httpd_py.config.dirconf import EMPTY, DirConf, merge
from httpd_py.config.model import UNSET
from httpd_py.errors import ConfigError

CACHE_SIZE = 4096


class HtaccessError(Exception):
    """A .htaccess file that does not parse or uses a directive it may not: 500."""

    def __init__(self, path: str, error: ConfigError):
        super().__init__(f"{path}: {error.msg}" + (f" (line {error.line})" if error.line else ""))
        self.path = path


class Walked(NamedTuple):
    conf: DirConf                       # merged, before <If>
    htaccess: tuple                     # ((path, identity or None), ...) consulted
    error: HtaccessError | None
    env: tuple = ()                     # (("MATCH_NAME", value), ...) from named regex groups


def _captures(m, env: dict) -> None:
    for k, v in m.groupdict().items():
        if v is not None:
            env["MATCH_" + k.upper()] = v


def _ident(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c]


def _dir_matches(sec: dirconf.Section, prefix_parts: list[str]) -> bool:
    pat = _components(sec.pattern)
    if len(pat) != len(prefix_parts):
        return False
    if not sec.wildcard:
        return pat == prefix_parts
    return all(fnmatch.fnmatchcase(p, q) for p, q in zip(prefix_parts, pat))


def location_matches(sec: dirconf.Section, uri: str) -> bool:
    if sec.regex is not None:
        return sec.regex.search(uri) is not None
    pat = sec.pattern
    if sec.wildcard:
        return _fnmatch_pathname(pat, uri)
    if not uri.startswith(pat):
        return False
    n = len(pat)
    return pat.endswith("/") or len(uri) == n or uri[n] == "/"


def _fnmatch_pathname(pat: str, text: str) -> bool:
    """fnmatch where wildcards do not cross '/' (FNM_PATHNAME)."""
    p, t = pat.split("/"), text.split("/")
    return len(p) == len(t) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(t, p))


def files_matches(sec: dirconf.Section, name: str) -> bool:
    if sec.regex is not None:
        return sec.regex.search(name) is not None
    if sec.wildcard:
        return fnmatch.fnmatchcase(name, sec.pattern)
    return name == sec.pattern


class SectionWalker:
    """Per vhost, per worker: sections sorted once, merged results cached."""

    def __init__(self, vhost, cfg, htaccess_loader=None):
        self.vhost = vhost
        self.cfg = cfg
        base = vhost.dir if vhost.dir is not None else EMPTY
        self.base = base
        dirs = [s for s in vhost.sections if s.kind == "directory"]
        self.plain = sorted((s for s in dirs if s.regex is None), key=lambda s: s.depth)
        self.regex_dirs = [s for s in dirs if s.regex is not None]
        self.locations = [s for s in vhost.sections if s.kind == "location"]
        self.names = vhost.access_file_name
        self._cache: dict[tuple, Walked] = {}
        self._ifs: dict[tuple, DirConf] = {}
        self._htaccess: dict[str, tuple] = {}       # path -> (identity, DirConf | error)
        self._load = htaccess_loader

    # -- the walk ---------------------------------------------------------------------------
    def lookup(self, filename: str, is_dir: bool, uri: str) -> Walked:
        key = (filename, is_dir, uri)
        w = self._cache.get(key)
        if w is not None:
            if all(_ident(p) == ident for p, ident in w.htaccess):
                return w
        w = self._walk(filename, is_dir, uri)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = w
        return w

    def _walk(self, filename: str, is_dir: bool, uri: str) -> Walked:
        if filename.startswith("proxy:"):
            return self._walk_proxy(uri)
        conf = self.base
        consulted: list = []
        dirpath = filename.rstrip("/") if is_dir else os.path.dirname(filename)
        parts = _components(dirpath)
        plain = self.plain
        i = 0
        for level in range(len(parts) + 1):
            prefix = parts[:level]
            while i < len(plain) and plain[i].depth < level:
                i += 1
            j = i
            while j < len(plain) and plain[j].depth == level:
                if _dir_matches(plain[j], prefix):
                    conf = merge(conf, plain[j].conf)
                j += 1
            ao = conf.allow_override
            if ao is not UNSET and not ao.none and self.names:
                d = "/" + "/".join(prefix)
                for name in self.names:
                    path = os.path.join(d, name)
                    ident = _ident(path)
                    consulted.append((path, ident))
                    if ident is None:
                        continue
                    got = self._read_htaccess(path, ident, ao, conf.allow_override_list)
                    if isinstance(got, HtaccessError):
                        return Walked(conf, tuple(consulted), got)
                    conf = merge(conf, got)
                    break
        env: dict[str, str] = {}
        for sec in self.regex_dirs:
            m = sec.regex.search(filename)
            if m:
                conf = merge(conf, sec.conf)
                _captures(m, env)
        name = filename.rstrip("/").rpartition("/")[2]
        # <Files> sections: those of the server and of every section merged so far, in order
        for sec in conf.files:
            if files_matches(sec, name):
                conf = merge(conf, sec.conf)
                if sec.regex is not None:
                    _captures(sec.regex.search(name), env)
        for sec in self.locations:
            if sec.regex is not None:
                m = sec.regex.search(uri)
                if m:
                    conf = merge(conf, sec.conf)
                    _captures(m, env)
            elif location_matches(sec, uri):
                conf = merge(conf, sec.conf)
        return Walked(conf, tuple(consulted), None, tuple(env.items()))

    def _walk_proxy(self, uri: str) -> Walked:
        """A request mod_proxy handles ("proxy:URL"): no file, so no <Directory>/<Files> walk
        and no .htaccess (mod_proxy's map_to_storage), only <Location> on the URL path."""
        conf = self.base
        env: dict[str, str] = {}
        for sec in self.locations:
            if sec.regex is not None:
                m = sec.regex.search(uri)
                if m:
                    conf = merge(conf, sec.conf)
                    _captures(m, env)
            elif location_matches(sec, uri):
                conf = merge(conf, sec.conf)
        return Walked(conf, (), None, tuple(env.items()))

    def _read_htaccess(self, path: str, ident, overrides, override_list):
        key = (path, overrides, override_list if override_list is not UNSET else ())
        got = self._htaccess.get(path)
        if got is not None and got[0] == (ident, key):
            return got[1]
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read(1024 * 1024)
            from httpd_py.config import load_htaccess
            result = load_htaccess(path, text, self.cfg, overrides,
                                   override_list if override_list is not UNSET else ())
        except ConfigError as e:
            result = HtaccessError(path, e)
        except OSError as e:
            result = HtaccessError(path, ConfigError(f"unable to read: {e.strerror}"))
        if len(self._htaccess) >= CACHE_SIZE:
            self._htaccess.clear()
        self._htaccess[path] = ((ident, key), result)
        return result

    # -- <If> ---------------------------------------------------------------------------------
    def apply_ifs(self, conf: DirConf, ctx) -> DirConf:
        """Merge the <If>/<ElseIf>/<Else> branches whose conditions hold for this request."""
        if not conf.ifs:
            return conf
        chosen = []
        for sec in conf.ifs:
            pick = -1
            for k, (cond, _branch) in enumerate(sec.chain):
                if cond is None or cond.evaluate(ctx):
                    pick = k
                    break
            chosen.append(pick)
        key = (id(conf), tuple(chosen))
        got = self._ifs.get(key)
        if got is not None:
            return got[1]
        out = conf
        for sec, pick in zip(conf.ifs, chosen):
            if pick >= 0:
                out = merge(out, sec.chain[pick][1])
        # <If> branches do not apply their own nested <If>s again
        if len(self._ifs) >= CACHE_SIZE:
            self._ifs.clear()
        self._ifs[key] = (conf, out)       # keep conf alive: its id is the key
        return out
