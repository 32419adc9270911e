"""mod_auth_basic: the ``Authorization: Basic`` credentials and the ``WWW-Authenticate`` challenge.

Behaviour follows httpd 2.4's mod_auth_basic (``get_basic_auth``, ``note_basic_auth_failure``)
and apr-util's base64 decoder, read for behaviour, not copied:

* The scheme is the value up to the first space (only a space: ``Basic<TAB>x`` is another
  scheme), compared ASCII case-insensitively with ``Basic``. Spaces and tabs after it are skipped.
* The credentials are decoded leniently, as ``apr_base64_decode``: the longest prefix of
  base64-alphabet characters is decoded, padding is optional, anything after it (``=``, spaces,
  junk) is ignored and a lone trailing character adds nothing. So malformed base64 is not
  refused: whatever it decodes to is tried, and fails as an unknown user.
* The decoded bytes end at the first NUL (C strings). The user is everything before the first
  ``:``, the password everything after it (more colons belong to the password). With no ``:``
  the whole is the user and the password is empty, and Apache still asks the providers: a user
  whose stored password is the empty string is let in.
* User and password are bytes in Apache and compared byte for byte with the files; here they are
  decoded as UTF-8 with ``surrogateescape``, so any bytes (Latin-1 from old clients included)
  survive unchanged and :mod:`authn_file`, which decodes its files the same way, compares them
  byte-exactly.

:func:`parse_authorization` returns None exactly where Apache answers 401 without asking any
provider (no header, another scheme); otherwise the pair Apache would hand to its providers.
"""
from __future__ import annotations

import base64
import re

_ENC, _ERRORS = "utf-8", "surrogateescape"
_B64_PREFIX = re.compile(r"[A-Za-z0-9+/]*")


def parse_authorization(value: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization`` value, as mod_auth_basic reads it.

    None when the header is absent or names another scheme (Apache: 401 with the challenge,
    no provider asked). Bad base64 or a missing ``:`` give what Apache decodes, which then
    fails in the provider (401) unless it matches a user.
    """
    if value is None:
        return None
    scheme, sep, rest = value.partition(" ")
    if not (scheme.isascii() and scheme.lower() == "basic"):
        return None
    rest = rest.lstrip(" \t")  # ap_getword skips the spaces after the word, then spaces, tabs
    decoded = _apr_base64_decode(rest).split(b"\0", 1)[0]
    user, _, password = decoded.partition(b":")
    return user.decode(_ENC, _ERRORS), password.decode(_ENC, _ERRORS)


def _apr_base64_decode(text: str) -> bytes:
    prefix = _B64_PREFIX.match(text).group()  # type: ignore[union-attr]  # always matches
    if len(prefix) % 4 == 1:
        prefix = prefix[:-1]  # a single leftover character carries no whole byte
    return base64.b64decode(prefix + "=" * (-len(prefix) % 4))


def escape_quotes(text: str) -> str:
    """ap_escape_quotes: put a backslash before every bare ``"``.

    A backslash and the character after it are kept as they are (so ``\\"`` stays, and ``\\\\``
    then ``"`` becomes ``\\\\\\"``); a backslash at the very end is kept alone.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out.append(text[i:i + 2])
            i += 2
            continue
        out.append('\\"' if ch == '"' else ch)
        i += 1
    return "".join(out)


def challenge(realm: str) -> bytes:
    """The ``WWW-Authenticate`` value: ``Basic realm="<AuthName>"`` with bare quotes escaped.

    ``realm`` is the AuthName as evaluated for the request (httpd 2.4 treats AuthName as a
    string expression and escapes its result with ap_escape_quotes). The bytes are sent as the
    config file spelled them: UTF-8, or any bytes carried through ``surrogateescape``. Control
    characters (the expression lexer turns ``\\b`` into a backspace) are sent as given: refusing
    such a header (Apache: AH02430, 500) is the response writer's job.
    """
    return b'Basic realm="' + escape_quotes(realm).encode(_ENC, _ERRORS) + b'"'
