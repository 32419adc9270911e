"""Dropping root: the master binds ports and opens logs as root, workers run as User/Group.

Resolution happens in the master at start (and at each restart), so an unknown user is a clear
startup error, not a worker that fails to boot.  ``User``/``Group`` take a name or ``#uid`` /
``#gid`` as in Apache.

Decision (documented in docs/architecture.md): when the server runs as root and no ``User`` is
configured, workers drop to ``nobody`` / ``nogroup`` (Apache's compiled-in default ``#-1`` is a
nonsense uid; Debian's packaged config sets www-data).  ``User root`` is honoured explicitly
(Apache refuses it unless built with BIG_SECURITY_HOLE; we log a warning instead), which is what
the test helper uses so workers can read pytest's 0700 tmp directories.  Not running as root:
User/Group are ignored (there is nothing to drop).
"""
from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from httpd_py import logids
from httpd_py.errors import StartupError

DEFAULT_USER = "nobody"
DEFAULT_GROUP = "nogroup"


@dataclass(frozen=True)
class Credentials:
    uid: int
    gid: int
    user: str          # for initgroups and messages
    implicit: bool = False   # the default user, not a configured one


def _lookup_user(spec: str) -> pwd.struct_passwd | None:
    try:
        if spec.startswith("#"):
            return pwd.getpwuid(int(spec[1:]))
        return pwd.getpwnam(spec)
    except (KeyError, ValueError):
        return None


def _lookup_group(spec: str) -> int | None:
    try:
        if spec.startswith("#"):
            return int(spec[1:])
        return grp.getgrnam(spec).gr_gid
    except (KeyError, ValueError):
        return None


def resolve(user: str | None, group: str | None, *, euid: int | None = None) -> Credentials | None:
    """Credentials the workers switch to, or None when nothing is to be dropped.

    Raises StartupError for an unknown user or group.
    """
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        return None
    implicit = user is None
    name = DEFAULT_USER if user is None else user
    pw = _lookup_user(name)
    if pw is None:
        if name.startswith("#") and name[1:].isdigit():
            uid, gid_default, uname = int(name[1:]), None, name
        else:
            raise StartupError(f"{logids.MPM_UNKNOWN_USER}: User {name}: no such user "
                               "(getpwnam failed)")
    else:
        uid, gid_default, uname = pw.pw_uid, pw.pw_gid, pw.pw_name
    if group is not None:
        gid = _lookup_group(group)
        if gid is None:
            raise StartupError(f"{logids.MPM_UNKNOWN_USER}: Group {group}: no such group "
                               "(getgrnam failed)")
    elif implicit and _lookup_group(DEFAULT_GROUP) is not None:
        gid = _lookup_group(DEFAULT_GROUP)
    elif gid_default is not None:
        gid = gid_default
    else:
        raise StartupError(f"{logids.MPM_UNKNOWN_USER}: User {name} has no passwd entry: "
                           "set Group explicitly")
    return Credentials(uid, gid, uname, implicit)


def hand_over(paths, creds: Credentials | None) -> list[tuple[str, OSError]]:
    """Give ``paths`` (lock files, cache files, the staple store) to the workers' user and group
    when the master runs as root (Apache's ``ap_unixd_set_global_mutex_perms``), so that workers
    and helpers can use them after dropping privileges.  Returns the paths that could not be
    given, with the error (the caller logs them).  Nothing to do without credentials."""
    if creds is None or os.geteuid() != 0:
        return []
    failed = []
    for p in paths:
        try:
            os.chown(p, creds.uid, creds.gid)
        except OSError as e:
            failed.append((p, e))
    return failed


def drop(creds: Credentials | None) -> None:
    """Switch this process to ``creds`` for good (group first, then supplementary, then user)."""
    if creds is None:
        return
    if os.geteuid() != 0:
        return
    os.setgid(creds.gid)
    try:
        os.initgroups(creds.user, creds.gid)
    except (OSError, KeyError):
        os.setgroups([creds.gid])
    if creds.uid != 0:
        os.setuid(creds.uid)
