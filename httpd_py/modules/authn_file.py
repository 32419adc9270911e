"""mod_authn_file (``AuthUserFile``) and the file part of mod_authz_groupfile (``AuthGroupFile``).

Behaviour follows httpd 2.4's mod_authn_file / mod_authz_groupfile and apr-util 1.6's
``apr_password_validate`` (what Debian 12 ships), read for behaviour, not copied:

* Both files are read the way Apache reads config-style files (``ap_cfg_getline``): a line
  ending in a backslash continues on the next one (backslash, CR and LF dropped); leading and
  trailing whitespace is trimmed; a NUL byte ends the line (C strings); blank lines and lines
  starting with ``#`` (after trimming) are skipped.
* Password file: ``user:hash``. The user is everything up to the first ``:``; any run of ``:``
  after it is skipped and the hash runs to the next ``:``, so ``user:hash:extra`` (and
  ``user::hash``) means ``hash``: the extra fields are ignored. The first line naming a user wins.
  A line without ``:`` names a user with an empty hash, which never matches (DENIED, not
  USER_NOT_FOUND). Apache reads into a fixed 8 KiB buffer: a line longer than
  :data:`MAX_PASSWORD_LINE` bytes ends the read there, so users below it are not found.
* Group file: ``group: user1 user2 ...``. The group is everything up to the first ``:`` with
  trailing whitespace dropped; members are config words (``ap_getword_conf``: whitespace
  separated, ``"..."`` and ``'...'`` quote, ``\\\\`` and ``\\"`` escape), so a member name may
  hold spaces when quoted. A user may sit in many groups; lines are not length-limited in
  practice (16 MiB, as Apache's growing buffer).
* Names and hashes are compared as bytes, as Apache's ``strcmp``: the file's bytes are decoded
  as UTF-8 with ``surrogateescape``, like the user and password :mod:`auth_basic` hands over.
* A file that cannot be stat'ed, opened or read, or is not a regular file (``/dev/null`` is
  allowed, as Apache), is GENERAL_ERROR (group file: ``None``).

Each file is parsed once and re-read when its ``(st_mtime_ns, st_size, st_ino)`` changes (one
``os.stat`` per check). A file whose mtime was within :data:`_RACY_NS` of the time it was read
is re-read on the next check too: a same-size rewrite in the same timestamp tick would otherwise
go unseen (git's "racy clean" problem).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
import time
import warnings
from typing import Callable, Generic, Iterator, TypeVar

import bcrypt

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt as _crypt  # deprecated in 3.11, removed in 3.13
    except ImportError:  # pragma: no cover - Python 3.13+: crypt(3) hashes then never match
        _crypt = None  # type: ignore[assignment]

GRANTED, DENIED, USER_NOT_FOUND, GENERAL_ERROR = (
    "granted", "denied", "user-not-found", "general-error")

#: longest password-file line Apache reads (MAX_STRING_LEN 8192, less the LF and the NUL)
MAX_PASSWORD_LINE = 8190
#: Apache's group-file line limit (VARBUF_MAX_LEN)
MAX_GROUP_LINE = 16 * 1024 * 1024

_RACY_NS = 2_000_000_000
_ENC = "utf-8"
_ERRORS = "surrogateescape"


# -- password hashes ---------------------------------------------------------------------------

def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash, as apr_password_validate on Linux.

    ``$2y$``/``$2a$``/``$2b$``: bcrypt (first 72 bytes of the password, as crypt_blowfish);
    ``$apr1$``: APR's MD5-crypt; ``{SHA}``: base64 of SHA-1; anything else: crypt(3) (DES,
    ``$1$``, ``$5$``, ``$6$``, and whatever else libcrypt knows). A plaintext "hash" never
    matches (crypt(3) of it is never the same string). Never raises: garbage is False.
    """
    try:
        pw = password.encode(_ENC, _ERRORS).split(b"\0", 1)[0]  # C strings end at NUL
        hashed = stored.encode(_ENC, _ERRORS).split(b"\0", 1)[0]
        if not hashed:
            return False
        candidate = _hash_like(pw, hashed)
        return candidate is not None and hmac.compare_digest(candidate, hashed)
    except Exception:  # noqa: BLE001 - garbage in, no match out
        return False


def _hash_like(pw: bytes, hashed: bytes) -> bytes | None:
    """The password hashed with the stored hash's algorithm and salt (None: cannot)."""
    if hashed[:4] in (b"$2y$", b"$2a$", b"$2b$"):
        return bcrypt.hashpw(pw[:72], hashed)
    if hashed.startswith(b"$apr1$"):
        return apr1_md5(pw, hashed)
    if hashed.startswith(b"{SHA}"):
        return b"{SHA}" + base64.b64encode(hashlib.sha1(pw).digest())
    return _crypt3(pw, hashed)


def _crypt3(pw: bytes, hashed: bytes) -> bytes | None:
    if _crypt is None:
        return None
    # The stdlib module takes str and encodes it as strict UTF-8: a password that is not valid
    # UTF-8 cannot be passed (UnicodeDecodeError -> no match; a known gap, see the report).
    out = _crypt.crypt(pw.decode(_ENC), hashed.decode(_ENC))
    return out.encode(_ENC) if out else None


_ITOA64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _to64(value: int, n: int) -> bytes:
    out = bytearray()
    for _ in range(n):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return bytes(out)


def apr1_md5(pw: bytes, setting: bytes) -> bytes:
    """APR's MD5-crypt: Poul-Henning Kamp's FreeBSD md5crypt with the magic ``$apr1$``.

    The salt is up to 8 bytes after the magic, ending at ``$``. Returns
    ``$apr1$<salt>$<22 chars>``.
    """
    magic = b"$apr1$"
    rest = setting[len(magic):] if setting.startswith(magic) else setting
    salt = rest.split(b"$", 1)[0][:8]

    alt = hashlib.md5(pw + salt + pw).digest()
    ctx = hashlib.md5(pw + magic + salt)
    for n in range(len(pw), 0, -16):
        ctx.update(alt[:min(n, 16)])
    i = len(pw)
    while i:
        ctx.update(b"\0" if i & 1 else pw[:1])
        i >>= 1
    final = ctx.digest()

    for i in range(1000):  # stretching, as the original: alternate password, salt and digest
        step = hashlib.md5(pw if i & 1 else final)
        if i % 3:
            step.update(salt)
        if i % 7:
            step.update(pw)
        step.update(final if i & 1 else pw)
        final = step.digest()

    out = bytearray(magic + salt + b"$")
    for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        out += _to64((final[a] << 16) | (final[b] << 8) | final[c], 4)
    out += _to64(final[11], 2)
    return bytes(out)


# -- Apache's config-style line reader ---------------------------------------------------------

class _LineTooLong(Exception):
    pass


def config_lines(data: bytes, max_len: int) -> Iterator[bytes]:
    """Logical lines as ``ap_cfg_getline`` yields them: continuations joined, trimmed.

    Raises :class:`_LineTooLong` where Apache's read would fail with APR_ENOSPC (the caller
    keeps what came before, as Apache's read loops simply stop).
    """
    pending = b""
    lines = data.split(b"\n")
    last = len(lines) - 1
    for index, line in enumerate(lines):
        if index == last and not line:
            break  # the file ended with LF
        has_lf = index != last
        if b"\0" in line:  # strlen stops here; the LF is not seen, so no continuation
            line, has_lf = line.split(b"\0", 1)[0], False
        if len(pending) + len(line) > max_len:
            raise _LineTooLong
        if has_lf:
            # Apache looks at the joined buffer, so the backslash may be the last gathered byte
            body = pending + (line[:-1] if line.endswith(b"\r") else line)
            if body.endswith(b"\\"):
                pending = body[:-1]
                continue
        yield (pending + line).strip(b" \t\n\r\x0b\x0c")
        pending = b""
    if pending:  # a continuation at end of file: what was gathered is the last line
        yield pending.strip(b" \t\n\r\x0b\x0c")


def _getword(line: bytes, stop: bytes) -> tuple[bytes, bytes]:
    """ap_getword: up to ``stop``, then skip every ``stop`` that follows."""
    word, sep, rest = line.partition(stop)
    return word, rest.lstrip(stop) if sep else b""


_SPACE = b" \t\n\r\x0b\x0c"


def getword_conf(line: bytes) -> tuple[bytes, bytes]:
    """ap_getword_conf: one config word (quotes and backslash escapes honoured), and the rest."""
    i, n = 0, len(line)
    while i < n and line[i] in _SPACE:
        i += 1
    if i == n:
        return b"", b""
    quote = line[i]
    if quote in b"\"'":
        j = i + 1
        while j < n and line[j] != quote:
            j += 2 if line[j] == 0x5C and j + 1 < n and line[j + 1] in (quote, 0x5C) else 1
        word = _unescape(line[i + 1:j], quote)
        if j < n:
            j += 1  # the closing quote
    else:
        j = i
        while j < n and line[j] not in _SPACE:
            j += 1
        word = _unescape(line[i:j], None)
    while j < n and line[j] in _SPACE:
        j += 1
    return word, line[j:]


def _unescape(raw: bytes, quote: int | None) -> bytes:
    """substring_conf: ``\\\\`` -> ``\\``, and ``\\<quote>`` -> ``<quote>`` inside quotes."""
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        if raw[i] == 0x5C and i + 1 < n and (raw[i + 1] == 0x5C or raw[i + 1] == quote):
            i += 1
        out.append(raw[i])
        i += 1
    return bytes(out)


# -- cached files ------------------------------------------------------------------------------

T = TypeVar("T")


class _CachedFile(Generic[T]):
    """A file parsed once and re-parsed when its (mtime_ns, size, inode) changes."""

    def __init__(self, path: str, parse: Callable[[bytes], T]):
        self.path = path
        self._parse = parse
        # (key, racy, value) swapped in one assignment, so a reader never sees a torn state
        self._state: tuple[tuple[int, int, int], bool, T] | None = None

    def get(self) -> T | None:
        """The parsed content, or None when the file is missing, unreadable or not regular."""
        try:
            st = os.stat(self.path)
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode) and self.path != "/dev/null":
            return None  # Apache: "not a regular file" (and a FIFO would block us)
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        state = self._state
        if state is not None and state[0] == key and not state[1]:
            return state[2]
        try:
            with open(self.path, "rb") as f:
                fst = os.fstat(f.fileno())
                data = f.read()
        except OSError:
            return None
        value = self._parse(data)
        racy = time.time_ns() - fst.st_mtime_ns < _RACY_NS
        self._state = ((fst.st_mtime_ns, fst.st_size, fst.st_ino), racy, value)
        return value


def _decode(b: bytes) -> str:
    return b.decode(_ENC, _ERRORS)


def _parse_passwords(data: bytes) -> dict[str, str]:
    users: dict[str, str] = {}
    try:
        for line in config_lines(data, MAX_PASSWORD_LINE):
            if not line or line.startswith(b"#"):
                continue
            user, rest = _getword(line, b":")
            hashed, _ = _getword(rest, b":")
            users.setdefault(_decode(user), _decode(hashed))
    except _LineTooLong:
        pass
    return users


def _parse_groups(data: bytes) -> dict[str, frozenset[str]]:
    groups_by_user: dict[str, set[str]] = {}
    try:
        for line in config_lines(data, MAX_GROUP_LINE):
            if not line or line.startswith(b"#"):
                continue
            group, rest = _getword(line, b":")
            name = _decode(group.rstrip(_SPACE))
            while rest:
                member, rest = getword_conf(rest)
                groups_by_user.setdefault(_decode(member), set()).add(name)
    except _LineTooLong:
        pass
    return {user: frozenset(groups) for user, groups in groups_by_user.items()}


class PasswordFile:
    """An ``AuthUserFile``: checks a user's password (mod_authn_file's check_password)."""

    def __init__(self, path: str):
        self.path = path
        self._file = _CachedFile(path, _parse_passwords)

    def check(self, user: str, password: str) -> str:
        """GRANTED, DENIED (wrong password), USER_NOT_FOUND or GENERAL_ERROR (file unreadable)."""
        users = self._file.get()
        if users is None:
            return GENERAL_ERROR
        stored = users.get(user)
        if stored is None:
            return USER_NOT_FOUND
        return GRANTED if verify_password(password, stored) else DENIED


class GroupFile:
    """An ``AuthGroupFile``: the groups a user belongs to (mod_authz_groupfile)."""

    _EMPTY: frozenset[str] = frozenset()

    def __init__(self, path: str):
        self.path = path
        self._file = _CachedFile(path, _parse_groups)

    def groups_of(self, user: str) -> frozenset[str] | None:
        """The user's groups (maybe empty); None when the file is missing or unreadable."""
        groups = self._file.get()
        if groups is None:
            return None
        return groups.get(user, self._EMPTY)
