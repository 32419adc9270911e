"""Request target -> URL path -> (Redirect | file-system path under one root).  Pure but for
``resolve_file``, which looks at the file system.

Steps, as Apache's core and mod_alias do them:

1. split off the query; an absolute-form target gives its path part;
2. percent-decode; a bad escape is 400; an encoded ``/`` or ``\\`` or a NUL is 404
   (AllowEncodedSlashes Off);
3. a backslash anywhere is 404 (never a separator, never a file name we serve);
4. merge slashes and remove dot segments; ``..`` above the root is 400;
5. Redirect (first match in config order, on whole segments), then Alias, then DocumentRoot.

``resolve_file`` then walks the file system under the chosen root: it refuses (403) every
symlink when FollowSymLinks is off, a symlink whose owner differs from its target's under
SymLinksIfOwnerMatch, and ANY path whose real location leaves the root's real location (stricter
than Apache, which follows symlinks anywhere with FollowSymLinks: use Alias to publish another
tree).  Names starting with ``.ht`` are refused (Debian's default ``<FilesMatch "^\\.ht">``).
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote

from httpd_py.config.model import AliasSpec, RedirectSpec

_HEX = b"0123456789abcdefABCDEF"


class PathError(Exception):
    """A target that maps to no servable path; ``status`` is the response to give."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(raw path, raw query without '?') from an origin- or absolute-form request target."""
    if target.startswith((b"http://", b"https://")):
        rest = target.split(b"://", 1)[1]
        slash = rest.find(b"/")
        target = rest[slash:] if slash >= 0 else b"/"
    target = target.split(b"#", 1)[0]
    path, _, query = target.partition(b"?")
    return path, query


def percent_decode(raw: bytes) -> bytes:
    """Decode %XX; raise PathError 400 on a bad escape, 404 on %00, %2F or %5C."""
    if b"%" not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 0x25:  # %
            h = raw[i + 1:i + 3]
            if len(h) != 2 or h[0] not in _HEX or h[1] not in _HEX:
                raise PathError(400, "bad percent-escape in URL")
            b = int(h, 16)
            if b in (0x00, 0x2F, 0x5C):
                raise PathError(404, "encoded NUL, slash or backslash in URL")
            out.append(b)
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def normalize(decoded: bytes) -> str:
    """Merge slashes, drop ``.`` and resolve ``..`` segments; return a str path starting '/'.

    Bytes that are not UTF-8 survive as surrogate escapes, so they map back to the same file
    name bytes.  Raises PathError for NUL, backslash, and ``..`` above the root.
    """
    if not decoded.startswith(b"/"):
        raise PathError(400, "URL path does not start with '/'")
    if b"\x00" in decoded:
        raise PathError(404, "NUL in URL")
    if b"\\" in decoded:
        raise PathError(404, "backslash in URL")
    segs: list[bytes] = []
    parts = decoded.split(b"/")
    for seg in parts[1:]:
        if seg in (b"", b"."):
            continue
        if seg == b"..":
            if not segs:
                raise PathError(400, "URL path climbs above the root")
            segs.pop()
            continue
        segs.append(seg)
    ends_dir = parts[-1] in (b"", b".", b"..")
    path = b"/" + b"/".join(segs)
    if ends_dir and segs:
        path += b"/"
    return path.decode("utf-8", "surrogateescape")


def url_path(target: bytes) -> tuple[str, bytes]:
    """(normalised decoded path, raw query) for a request target; PathError on bad input."""
    raw, query = split_target(target)
    return normalize(percent_decode(raw)), query


def _prefix_rest(path: str, prefix: str) -> str | None:
    """The rest of ``path`` after ``prefix`` when the prefix covers whole segments."""
    p = prefix.rstrip("/") if prefix != "/" else ""
    if path == p:
        return ""
    if path.startswith(p + "/"):
        return path[len(p):]
    return None


_SAFE = "/:@!$&'()*+,;=~-._"


def quote_path(path: str) -> str:
    """Percent-encode a decoded URL path for a Location header (never CR, LF or non-ASCII)."""
    return quote(path.encode("utf-8", "surrogateescape"), safe=_SAFE)


@dataclass(frozen=True)
class RedirectTo:
    status: int
    location: str | None          # None for 410 Gone


def find_redirect(path: str, query: bytes, redirects: tuple[RedirectSpec, ...]) -> RedirectTo | None:
    for r in redirects:
        rest = _prefix_rest(path, r.url_path)
        if rest is None:
            continue
        if r.target is None or r.status == 410:
            return RedirectTo(r.status, None)
        # mod_alias: the rest of the path appended to the target as is (a target ending in
        # "/" gives "//"), the query string unless the target has one
        if rest and len(path) >= len(r.url_path) and path.startswith(r.url_path):
            rest = path[len(r.url_path):]       # after the prefix as written (mod_alias)
        loc = r.target + quote_path(rest) if rest else r.target
        if query and "?" not in r.target:
            loc += "?" + query.decode("latin-1")
        return RedirectTo(r.status, loc)
    return None


def map_to_root(path: str, document_root: str, aliases: tuple[AliasSpec, ...]) -> tuple[str, str]:
    """(root, file path) for a normalised URL path: the first matching Alias, else DocumentRoot."""
    for a in aliases:
        if len(a.url_path) > 1 and a.url_path.endswith("/") and not path.startswith(a.url_path):
            continue            # "Alias /x/ ..." requires the trailing slash (mod_alias)
        rest = _prefix_rest(path, a.url_path)
        if rest is not None:
            target = a.target
            if a.url_path.endswith("/") and not target.endswith("/"):
                target += "/"
            return a.target.rstrip("/") or "/", target.rstrip("/") + rest if rest else target
    if not document_root:
        raise PathError(404, "no DocumentRoot")
    return document_root.rstrip("/") or "/", document_root.rstrip("/") + path


class Resolved(NamedTuple):
    """(A NamedTuple: built once per request, and a frozen dataclass's __init__ costs more.)"""
    path: str                  # real file or directory path (symlinks resolved)
    st: os.stat_result
    is_dir: bool
    fd: int | None = None      # open descriptor of the checked file (open_file=True); the caller
                               # closes it unless ``kept``
    kept: bool = False         # fd belongs to an OpenFiles cache: do not close it


class OpenFiles:
    """Descriptors of recently served regular files, kept open across requests (one process).

    ``resolve_file(..., open_files=)`` reuses a kept descriptor only when the requested path
    still stats to the same (device, inode), after the same symlink-option checks; containment
    and the ``.ht`` rule are then checked on the descriptor's current /proc/self/fd name, so what
    is served is a file that currently has a name inside the root (a renamed file is followed,
    an unlinked name is not: "(deleted)" sends the request down the fresh path, which decides).
    The kept descriptor pins its inode, so no other file can take its (device, inode) meanwhile.
    Saves open + fstat + close per request for a repeated file; at most ``size`` descriptors.
    """

    def __init__(self, size: int = 32):
        self.size = size
        # file path -> (fd, dev, ino, the descriptor's checked real path, the inode's ctime then)
        self._fds: dict[str, tuple[int, int, int, str, int]] = {}

    def get(self, path: str, st: os.stat_result) -> int | None:
        e = self.entry(path, st)
        return None if e is None else e[0]

    def entry(self, path: str, st: os.stat_result) -> tuple[int, int, int, str, int] | None:
        e = self._fds.get(path)
        if e is None:
            return None
        if e[1] == st.st_dev and e[2] == st.st_ino:
            return e
        self.drop(path)
        return None

    def put(self, path: str, fd: int, st: os.stat_result, real: str = "") -> None:
        self.drop(path)
        if len(self._fds) >= self.size:
            self.drop(next(iter(self._fds)))        # the oldest
        self._fds[path] = (fd, st.st_dev, st.st_ino, real, st.st_ctime_ns)

    def refresh(self, path: str, real: str, st: os.stat_result) -> None:
        """The kept descriptor of ``path`` was checked again: its name and the inode's ctime now."""
        e = self._fds.get(path)
        if e is not None:
            self._fds[path] = (e[0], e[1], e[2], real, st.st_ctime_ns)

    def drop(self, path: str) -> None:
        e = self._fds.pop(path, None)
        if e is not None:
            try:
                os.close(e[0])
            except OSError:
                pass

    def close(self) -> None:
        for path in list(self._fds):
            self.drop(path)

    def __len__(self) -> int:
        return len(self._fds)


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip("/") + "/")


_PROC_FD = os.path.isdir("/proc/self/fd")


def _fd_path(fd: int, fallback: str) -> str:
    """The kernel's path of an open descriptor (one readlink), else realpath of ``fallback``."""
    if _PROC_FD:
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return os.path.realpath(fallback)


def _stat_error(e: OSError) -> PathError:
    if isinstance(e, (FileNotFoundError, NotADirectoryError)):
        return PathError(404, "file does not exist")
    return PathError(403, f"cannot access file: {e.strerror}")


def resolve_file(file_path: str, root: str, *, follow_symlinks: bool = True,
                 if_owner_match: bool = False, root_real: str | None = None,
                 open_file: bool = False, open_files: OpenFiles | None = None,
                 st0: os.stat_result | None = None) -> Resolved:
    """Check ``file_path`` (under ``root``) against the symlink options and containment.

    The containment check runs on the opened descriptor (its /proc/self/fd link), so what is
    checked is what is served; with ``open_file`` the descriptor of a regular file is returned
    in ``Resolved.fd``.  With ``open_files`` (and ``open_file``) a regular file's descriptor is
    kept there and reused by later calls (``Resolved.kept``; see OpenFiles).  ``st0``: the
    caller's own ``os.stat(file_path)`` of this request, when it has one (saves the stat; the
    descriptor is still checked against it).  Raises PathError 404 when missing, 403 when refused.
    """
    root_real = root_real or os.path.realpath(root)
    if file_path.rstrip("/").rpartition("/")[2].startswith(".ht"):
        raise PathError(403, ".ht* files are never served")
    if not follow_symlinks or if_owner_match:
        rel = file_path[len(root.rstrip("/")):].strip("/")
        cur = root.rstrip("/") or "/"
        for seg in [s for s in rel.split("/") if s]:
            cur = os.path.join(cur, seg)
            try:
                lst = os.lstat(cur)
            except OSError as e:
                raise _stat_error(e) from None
            if stat.S_ISLNK(lst.st_mode):
                if not if_owner_match:
                    raise PathError(403, "symbolic link not allowed (Options -FollowSymLinks)")
                try:
                    tst = os.stat(cur)
                except OSError:
                    raise PathError(404, "symbolic link target does not exist") from None
                if tst.st_uid != lst.st_uid:
                    raise PathError(403, "symbolic link owner does not match target owner "
                                         "(Options SymLinksIfOwnerMatch)")
    if st0 is None:
        try:
            st0 = os.stat(file_path)
        except OSError as e:
            raise _stat_error(e) from None
    is_dir = stat.S_ISDIR(st0.st_mode)
    if not is_dir and not stat.S_ISREG(st0.st_mode):
        raise PathError(403, "not a regular file")      # never open FIFOs or devices
    cache = open_files if (open_files is not None and open_file and not is_dir) else None
    if cache is not None:
        e = cache.entry(file_path, st0)
        if e is not None:
            fd = e[0]
            if root_real == "/" and e[3] and e[4] == st0.st_ctime_ns:
                # The path still names the kept inode (stat just now), unchanged since it was
                # checked (a link, unlink or rename of it moves its ctime): the descriptor's
                # name is the one checked then, and "/" leaves no containment to re-check.
                return Resolved(e[3], st0, False, fd, True)
            real = _fd_path(fd, file_path)
            if (_inside(real, root_real) and not real.endswith(" (deleted)")
                    and not real.rpartition("/")[2].startswith(".ht")):
                if e[4] != st0.st_ctime_ns or e[3] != real:
                    cache.refresh(file_path, real, st0)
                return Resolved(real, st0, False, fd, True)
            cache.drop(file_path)                       # the fresh path below decides
    try:
        fd = os.open(file_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise _stat_error(e) from None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (st0.st_dev, st0.st_ino):
            raise PathError(403, "file changed while being checked")
        real = _fd_path(fd, file_path)
        if not _inside(real, root_real):
            raise PathError(403, "path resolves outside the served tree")
        if real.rpartition("/")[2].startswith(".ht"):
            raise PathError(403, ".ht* files are never served")
        keep = open_file and not is_dir
        if keep and cache is not None:
            cache.put(file_path, fd, st, real)
            return Resolved(real, st, False, fd, True)
        res = Resolved(real, st, is_dir, fd if keep else None)
        if not keep:
            os.close(fd)
        return res
    except BaseException:
        os.close(fd)
        raise
