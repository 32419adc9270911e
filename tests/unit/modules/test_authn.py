"""mod_authn_file, mod_authz_groupfile's file and mod_auth_basic's header work.

Password files come from Debian's real ``htpasswd`` (apache2-utils), one per hash format.
"""
from __future__ import annotations

import base64
import os
import subprocess
import time
from pathlib import Path

import bcrypt
import pytest
from hypothesis import given, settings, strategies as st

from httpd_py.modules.auth_basic import challenge, escape_quotes, parse_authorization
from httpd_py.modules.authn_file import (
    DENIED, GENERAL_ERROR, GRANTED, MAX_PASSWORD_LINE, USER_NOT_FOUND, GroupFile, PasswordFile,
    apr1_md5, verify_password)
from tests.support.tools import require_tool

PASSWORD = "s3cret!"  # DES crypt only reads 8 characters: keep it shorter
FORMATS = {  # htpasswd flags per hash format
    "bcrypt": ["-B", "-C", "4"],
    "apr1": ["-m"],
    "sha1": ["-s"],
    "crypt-des": ["-d"],
    "sha256-crypt": ["-2"],
    "sha512-crypt": ["-5"],
}


@pytest.fixture(scope="module")
def htpasswd() -> str:
    return require_tool("htpasswd")


def run_htpasswd(tool: str, path: Path, *args: str) -> None:
    create = [] if path.exists() else ["-c"]
    subprocess.run([tool, *create, "-b", *args], check=True, capture_output=True)


def add_user(tool: str, path: Path, flags: list[str], user: str, password: str) -> None:
    run_htpasswd(tool, path, *flags, str(path), user, password)


# -- every format htpasswd writes --------------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_htpasswd_format_right_wrong_unknown(htpasswd, tmp_path, fmt):
    path = tmp_path / "users"
    add_user(htpasswd, path, FORMATS[fmt], "alice", PASSWORD)
    add_user(htpasswd, path, FORMATS[fmt], "bob", "other")
    users = PasswordFile(str(path))
    assert users.check("alice", PASSWORD) == GRANTED
    assert users.check("bob", "other") == GRANTED
    assert users.check("alice", "other") == DENIED
    assert users.check("alice", "") == DENIED
    assert users.check("carol", PASSWORD) == USER_NOT_FOUND
    assert users.check("Alice", PASSWORD) == USER_NOT_FOUND  # names are case-sensitive


@pytest.mark.parametrize("fmt", ["bcrypt", "apr1", "sha1", "sha512-crypt"])
def test_non_ascii_password_compares_as_utf8_bytes(htpasswd, tmp_path, fmt):
    path = tmp_path / "users"
    add_user(htpasswd, path, FORMATS[fmt], "zoë", "pässwörd")
    users = PasswordFile(str(path))
    assert users.check("zoë", "pässwörd") == GRANTED
    assert users.check("zoë", "passwort") == DENIED
    # the same text as Latin-1 bytes is another password
    latin1 = "pässwörd".encode("latin-1").decode("utf-8", "surrogateescape")
    assert users.check("zoë", latin1) == DENIED


def test_latin1_password_bytes_survive(tmp_path):
    # An old client's Latin-1 password, hashed from those very bytes, matches byte-exactly.
    raw = "pässwörd".encode("latin-1")
    stored = bcrypt.hashpw(raw, bcrypt.gensalt(4, prefix=b"2b")).decode()
    (tmp_path / "users").write_text(f"zoe:{stored}\n")
    user, password = parse_authorization("Basic " + base64.b64encode(b"zoe:" + raw).decode())
    assert PasswordFile(str(tmp_path / "users")).check(user, password) == GRANTED


def test_plaintext_never_matches(htpasswd, tmp_path):
    path = tmp_path / "users"
    add_user(htpasswd, path, ["-p"], "alice", "plain")
    assert path.read_text() == "alice:plain\n"
    users = PasswordFile(str(path))
    assert users.check("alice", "plain") == DENIED
    assert users.check("alice", "other") == DENIED


def test_file_rewritten_by_htpasswd_is_reread(htpasswd, tmp_path):
    path = tmp_path / "users"
    add_user(htpasswd, path, FORMATS["bcrypt"], "alice", "first")
    users = PasswordFile(str(path))
    assert users.check("alice", "first") == GRANTED
    add_user(htpasswd, path, FORMATS["bcrypt"], "alice", "second")  # same size, same inode
    assert users.check("alice", "first") == DENIED
    assert users.check("alice", "second") == GRANTED
    add_user(htpasswd, path, FORMATS["sha1"], "bob", "third")
    assert users.check("bob", "third") == GRANTED
    subprocess.run([htpasswd, "-D", str(path), "alice"], check=True, capture_output=True)
    assert users.check("alice", "second") == USER_NOT_FOUND


def test_file_replaced_by_rename_is_reread(tmp_path):
    path = tmp_path / "users"
    path.write_text("alice:{SHA}" + sha1("one") + "\n")
    users = PasswordFile(str(path))
    assert users.check("alice", "one") == GRANTED
    new = tmp_path / "users.new"
    new.write_text("alice:{SHA}" + sha1("two") + "\n")
    os.replace(new, path)
    assert users.check("alice", "two") == GRANTED


def test_same_size_rewrite_in_the_same_tick_is_seen(tmp_path):
    # Same inode, same size, mtime put back: the key is unchanged, but the file was read within
    # the racy window of its mtime, so the next check re-reads it.
    path = tmp_path / "users"
    path.write_text("alice:{SHA}" + sha1("one") + "\n")
    st = path.stat()
    users = PasswordFile(str(path))
    assert users.check("alice", "one") == GRANTED
    with open(path, "r+") as f:
        f.write("alice:{SHA}" + sha1("two") + "\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert users.check("alice", "two") == GRANTED


def test_parsed_once_while_the_key_is_unchanged(tmp_path):
    # An old mtime (outside the racy window) and an unchanged key: the cached parse is used.
    path = tmp_path / "users"
    path.write_text("alice:{SHA}" + sha1("one") + "\n")
    old = time.time_ns() - 60_000_000_000
    os.utime(path, ns=(old, old))
    users = PasswordFile(str(path))
    assert users.check("alice", "one") == GRANTED
    with open(path, "r+") as f:
        f.write("alice:{SHA}" + sha1("two") + "\n")
    os.utime(path, ns=(old, old))
    assert users.check("alice", "one") == GRANTED  # not re-read: nothing told us it changed
    os.utime(path, ns=(old, old + 1))
    assert users.check("alice", "two") == GRANTED


def test_missing_or_unreadable_file_is_general_error(tmp_path):
    assert PasswordFile(str(tmp_path / "nope")).check("alice", "x") == GENERAL_ERROR
    assert PasswordFile(str(tmp_path)).check("alice", "x") == GENERAL_ERROR  # a directory
    assert PasswordFile("/dev/null").check("alice", "x") == USER_NOT_FOUND  # Apache allows it
    path = tmp_path / "users"
    path.write_text("alice:{SHA}" + sha1("one") + "\n")
    users = PasswordFile(str(path))
    assert users.check("alice", "one") == GRANTED
    path.unlink()
    assert users.check("alice", "one") == GENERAL_ERROR
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert PasswordFile(str(fifo)).check("alice", "x") == GENERAL_ERROR  # and does not block


def sha1(password: str) -> str:
    import hashlib
    return base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()


@pytest.mark.parametrize("lines,user,password,expected", [
    # comments, blank lines, whitespace trimmed as ap_cfg_getline does
    (["# alice:{SHA}" + sha1("x"), "", "   ", "  alice:{SHA}" + sha1("x") + "  "],
     "alice", "x", GRANTED),
    (["#alice:{SHA}" + sha1("x")], "#alice", "x", USER_NOT_FOUND),
    # trailing fields are ignored; a run of colons is one separator (ap_getword)
    (["alice:{SHA}" + sha1("x") + ":Alice Liddell:extra"], "alice", "x", GRANTED),
    (["alice::{SHA}" + sha1("x")], "alice", "x", GRANTED),
    # the first line naming a user wins
    (["alice:{SHA}" + sha1("x"), "alice:{SHA}" + sha1("y")], "alice", "y", DENIED),
    # no colon: the user exists with an empty hash, which never matches
    (["alice"], "alice", "", DENIED),
    # an empty user name is a name like any other
    ([":{SHA}" + sha1("x")], "", "x", GRANTED),
    # a backslash at the end of a line continues it
    (["alice:{SHA}" + sha1("x")[:10] + "\\", sha1("x")[10:]], "alice", "x", GRANTED),
    # CRLF line endings
    (["alice:{SHA}" + sha1("x") + "\r", "bob:{SHA}" + sha1("y") + "\r"], "bob", "y", GRANTED),
    # the user name is not trimmed inside the line
    (["alice :{SHA}" + sha1("x")], "alice", "x", USER_NOT_FOUND),
])
def test_password_file_lines(tmp_path, lines, user, password, expected):
    path = tmp_path / "users"
    path.write_bytes("\n".join(lines).encode() + b"\n")
    assert PasswordFile(str(path)).check(user, password) == expected


def test_no_final_newline_and_nul_bytes(tmp_path):
    path = tmp_path / "users"
    path.write_bytes(b"carl:{SHA}" + sha1("z").encode() + b"\0junk\n"
                     + b"alice:{SHA}" + sha1("x").encode())
    users = PasswordFile(str(path))
    assert users.check("alice", "x") == GRANTED
    assert users.check("carl", "z") == GRANTED  # the line ends at the NUL


def test_overlong_line_ends_the_read(tmp_path):
    path = tmp_path / "users"
    ok = "alice:{SHA}" + sha1("x")
    path.write_text("\n".join([
        ok, "pad:" + "p" * (MAX_PASSWORD_LINE - 4), "bob:{SHA}" + sha1("y"),
        "long:" + "q" * MAX_PASSWORD_LINE, "carol:{SHA}" + sha1("z")]) + "\n")
    users = PasswordFile(str(path))
    assert users.check("alice", "x") == GRANTED
    assert users.check("bob", "y") == GRANTED  # a line of exactly the limit is read
    assert users.check("carol", "z") == USER_NOT_FOUND  # Apache stops at the line too long


# -- verify_password on its own ----------------------------------------------------------------

def test_apr1_matches_htpasswd(htpasswd, tmp_path):
    path = tmp_path / "users"
    for n, password in enumerate(["", "a", "s3cret!", "x" * 17, "y" * 64, "pässwörd"]):
        add_user(htpasswd, path, ["-m"], f"u{n}", password)
    for line, password in zip(path.read_text().splitlines(),
                              ["", "a", "s3cret!", "x" * 17, "y" * 64, "pässwörd"]):
        stored = line.split(":", 1)[1]
        assert apr1_md5(password.encode(), stored.encode()).decode() == stored
        assert verify_password(password, stored)


def test_bcrypt_prefixes_and_72_byte_limit(htpasswd, tmp_path):
    path = tmp_path / "users"
    long_pw = "L" * 72 + "tail"
    add_user(htpasswd, path, FORMATS["bcrypt"], "alice", long_pw)
    stored = path.read_text().split(":", 1)[1].strip()
    assert stored.startswith("$2y$")
    for prefix in ("$2y$", "$2a$", "$2b$"):  # the same algorithm for these passwords
        variant = prefix + stored[4:]
        assert verify_password(long_pw, variant)
        assert verify_password("L" * 72 + "other tail", variant)  # crypt_blowfish reads 72 bytes
        assert not verify_password("L" * 71, variant)
    assert not verify_password(long_pw, stored + "x")  # whole-string compare, as strcmp


@pytest.mark.parametrize("stored", [
    "", "$", "$2y$", "$2y$04$short", "$apr1$", "$apr1$$", "{SHA}", "{SHA}not-base64",
    "$1$", "$5$rounds=1$", "$6$", "*", "!", "ab", "\udcff\udcfe", "$2y$04$" + "\udcff" * 53,
])
def test_garbage_hashes_do_not_match_or_raise(stored):
    assert verify_password("password", stored) is False
    assert verify_password("", stored) is False


def test_nul_ends_the_password_as_in_c():
    stored = "{SHA}" + sha1("abc")
    assert verify_password("abc\0def", stored)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.one_of(
    st.text(),
    st.builds(lambda p, t: p + t, st.sampled_from(["$2y$04$", "$2a$", "$2b$10$", "$apr1$", "{SHA}",
                                                   "$1$", "$5$", "$6$", "$y$"]), st.text())))
def test_verify_password_never_raises(password, stored):
    assert verify_password(password, stored) in (True, False)


# -- group files -------------------------------------------------------------------------------

def test_groups_of(tmp_path):
    path = tmp_path / "groups"
    path.write_text("\n".join([
        "# admins: mallory",
        "admins: alice bob",
        "staff:alice   carol\tdave",
        "readers  : alice \"eve adams\" 'fred' g\\\\h",
        "empty:",
        "nocolon alice",
        "  ",
        "writers: bob \\",
        "  alice",
    ]) + "\n")
    groups = GroupFile(str(path))
    assert groups.groups_of("alice") == {"admins", "staff", "readers", "writers"}
    assert groups.groups_of("bob") == {"admins", "writers"}
    assert groups.groups_of("carol") == {"staff"}
    assert groups.groups_of("dave") == {"staff"}
    assert groups.groups_of("eve adams") == {"readers"}
    assert groups.groups_of("fred") == {"readers"}
    assert groups.groups_of("g\\h") == {"readers"}
    assert groups.groups_of("mallory") == frozenset()
    assert groups.groups_of("nobody") == frozenset()


def test_groups_long_line_and_reread(tmp_path):
    path = tmp_path / "groups"
    members = " ".join(f"user{i}" for i in range(5000))  # ~50 KiB, past any 8 KiB buffer
    path.write_text(f"big: {members}\nsmall: user4999\n")
    groups = GroupFile(str(path))
    assert groups.groups_of("user0") == {"big"}
    assert groups.groups_of("user4999") == {"big", "small"}
    new = tmp_path / "groups.new"
    new.write_text("small: user0\n")
    os.replace(new, path)
    assert groups.groups_of("user0") == {"small"}
    assert groups.groups_of("user4999") == frozenset()


def test_missing_group_file_is_none(tmp_path):
    assert GroupFile(str(tmp_path / "nope")).groups_of("alice") is None
    assert GroupFile(str(tmp_path)).groups_of("alice") is None


# -- Authorization: Basic ----------------------------------------------------------------------

def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("value,expected", [
    (None, None),                                            # no header: 401, no provider
    ("Basic " + b64(b"alice:s3cret"), ("alice", "s3cret")),
    ("basic " + b64(b"alice:s3cret"), ("alice", "s3cret")),  # scheme is case-insensitive
    ("BASIC   \t " + b64(b"alice:s3cret"), ("alice", "s3cret")),
    ("Basic " + b64(b"alice:a:b:c"), ("alice", "a:b:c")),    # the first colon splits
    ("Basic " + b64(b":pw"), ("", "pw")),
    ("Basic " + b64(b"alice:"), ("alice", "")),
    ("Basic " + b64(b"alice"), ("alice", "")),               # no colon: empty password (Apache)
    ("Basic " + b64(b"alice:s3cret").rstrip("="), ("alice", "s3cret")),  # padding optional
    ("Basic " + b64(b"alice:s3cret") + " junk", ("alice", "s3cret")),    # trailing junk ignored
    ("Basic " + b64(b"ab:cd") + "!!", ("ab", "cd")),
    ("Basic " + b64(b"ab:c\0d"), ("ab", "c")),              # C string: NUL ends it
    ("Basic !!!!", ("", "")),                                # bad base64 decodes to nothing
    ("Basic", ("", "")),
    ("Basic ", ("", "")),
    ("Basic Z", ("", "")),                                   # a lone character adds no byte
    ("Basic " + b64("zoë:pä".encode()), ("zoë", "pä")),
    ("Basic " + b64(b"z\xf6e:p\xe4"),
     ("z\udcf6e", "p\udce4")),                               # Latin-1 bytes kept (surrogateescape)
    ("Digest username=\"alice\"", None),                    # another scheme: 401, no provider
    ("Bearer abc", None),
    ("Basic\t" + b64(b"alice:s3cret"), None),                # only a space ends the scheme
    ("Basicx " + b64(b"alice:s3cret"), None),
    ("", None),
    (" Basic " + b64(b"alice:s3cret"), None),                # the http layer strips the value
])
def test_parse_authorization(value, expected):
    assert parse_authorization(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(), st.builds(lambda t: "Basic " + t, st.text())))
def test_parse_authorization_never_raises(value):
    result = parse_authorization(value)
    assert result is None or (isinstance(result, tuple) and len(result) == 2)


@settings(max_examples=200, deadline=None)
@given(st.binary().filter(lambda b: b":" not in b and b"\0" not in b),
       st.binary().filter(lambda b: b"\0" not in b))
def test_parse_authorization_round_trips_bytes(user, password):
    user_s, pw_s = parse_authorization("Basic " + b64(user + b":" + password))
    assert user_s.encode("utf-8", "surrogateescape") == user
    assert pw_s.encode("utf-8", "surrogateescape") == password


# -- WWW-Authenticate ---------------------------------------------------------------------------

@pytest.mark.parametrize("realm,expected", [
    ("Members Only", b'Basic realm="Members Only"'),
    ("", b'Basic realm=""'),
    ('say "hi"', b'Basic realm="say \\"hi\\""'),
    ('already \\"escaped\\"', b'Basic realm="already \\"escaped\\""'),  # \" kept as is
    ("back\\slash", b'Basic realm="back\\slash"'),                       # \s kept, not doubled
    ('two\\\\"', b'Basic realm="two\\\\\\""'),                            # \\ pair, then bare "
    ("trailing\\", b'Basic realm="trailing\\"'),                         # lone final \ kept
    ("zoë's realm", 'Basic realm="zoë\'s realm"'.encode()),
])
def test_challenge(realm, expected):
    assert challenge(realm) == expected


def test_escape_quotes_leaves_no_bare_quote():
    for text in ['"', '""', '\\""', 'a"b\\"c\\\\"d']:
        out = escape_quotes(text)
        i = 0
        while i < len(out):
            if out[i] == "\\":
                i += 2
                continue
            assert out[i] != '"', (text, out)
            i += 1
