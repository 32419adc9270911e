"""Per-directory access control, side by side: the same site (tests/interop/site/sitetree.py)
under Debian's apache2 and under httpd-py, the same raw requests to both.

Every row of CORPUS is one request (method, raw target sent untouched, headers) and the status
Apache 2.4 gives it.  Two tests per row:

* ``test_apache_answers_as_intended[row]``: apache2 gives the row's status (the corpus is right:
  a row meant to show a denial really gets 403/401 from Apache);
* ``test_httpd_py_answers_as_apache[row]``: httpd-py gives apache2's status, and for a 401 the
  same WWW-Authenticate header.

Each server is started once for the module and every row is sent to it once (one short
connection per request, ``Connection: close``), by the ``apache_answers`` and
``httpd_py_answers`` fixtures.  To add a row, append ``Row(id, target, status, ...)`` to CORPUS.
A difference may only be accepted by listing the row in DOCUMENTED (and in docs/interop.md), and
only where httpd-py is deliberately stricter for security; there are none.
"""
from __future__ import annotations

import base64

import os

import pytest

from tests.interop.site.sitetree import NEVER_SET, USERS, Answer, Row, answers_from

ROOT_ONLY = "needs root (os.lchown of a symlink to another user)"


def basic(user: str, password: str | None = None) -> tuple[str, str]:
    pw = USERS[user][0] if password is None else password
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode())


def creds(user: str, password: str | None = None) -> tuple[tuple[str, str], ...]:
    return (basic(user, password),)


def xtest(value: str) -> tuple[tuple[str, str], ...]:
    return (("X-Test", value),)


R = Row
CORPUS: list[Row] = [
    # ---- the deny-by-default shape, DirectoryIndex, ErrorDocument, FilesMatch ^\.ht ----
    R("root", "/", 200),
    R("root-index", "/index.html", 200),
    R("root-file", "/hello.txt", 200),
    R("root-missing", "/missing.txt", 404),
    R("root-head", "/hello.txt", 200, method="HEAD"),
    R("root-options", "/hello.txt", 200, method="OPTIONS"),
    R("root-post-static", "/hello.txt", 200, method="POST"),
    R("root-htaccess-ignored", "/?x=1", 200),          # docroot's .htaccess: AllowOverride None
    R("dot-htaccess", "/.htaccess", 403),
    R("dot-htpasswd", "/.htpasswd", 403),
    R("dot-ht-missing", "/public/.htnothing", 403),
    R("dot-htfoo", "/public/.htfoo", 403),
    R("x-dot-ht", "/public/x.ht", 200),
    R("public-file", "/public/a.txt", 200),
    R("public-dir-no-slash", "/public", 301),
    R("public-dir-no-index", "/public/", 404),
    R("errordocument-itself", "/errors/403.html", 200),
    R("absolute-form", "http://localhost/hello.txt", 200),
    R("server-if-evil-host", "/hello.txt", 403, host="evil.test"),
    R("server-if-other-host", "/hello.txt", 200, host="good.test"),
    # ---- a denied directory and path tricks against it ----
    R("private", "/private/x", 403),
    R("private-secret", "/private/secret.txt", 403),
    R("private-sub", "/private/sub/y.txt", 403),
    R("private-missing", "/private/nothing", 403),
    R("private-dir", "/private/", 403),
    R("private-dir-no-slash", "/private", 403),
    R("private-head", "/private/x", 403, method="HEAD"),
    R("private-post", "/private/x", 403, method="POST"),
    R("private-double-slash", "//private/x", 403),
    R("private-inner-double-slash", "/private//x", 403),
    R("private-dot-segment", "/./private/x", 403),
    R("private-inner-dot", "/private/./x", 403),
    R("private-encoded-p", "/%70rivate/x", 403),
    R("private-encoded-a", "/priv%61te/secret.txt", 403),
    R("private-encoded-slash", "/private%2fx", 404),
    R("private-encoded-slash-upper", "/private%2Fx", 404),
    R("private-trailing-dot", "/private/x.", 403),
    R("private-trailing-slash", "/private/x/", 403),
    R("private-trailing-space", "/private/x%20", 403),
    R("private-case", "/PRIVATE/x", 404),
    R("private-case-file", "/private/X", 403),
    R("private-dotdot", "/private/../private/x", 403),
    R("private-dotdot-from-public", "/public/../private/x", 403),
    R("private-encoded-dotdot", "/public/%2e%2e/private/x", 403),
    R("private-encoded-dotdot-upper", "/public/%2E%2E/private/x", 403),
    R("private-encoded-dot", "/%2e/private/x", 403),
    R("private-dotdot-above-root", "/../private/x", 400),
    R("private-encoded-dotdot-above-root", "/%2e%2e/private/x", 400),
    R("private-nul", "/private/x%00", 404),
    R("private-query", "/private/x?a=b", 403),
    R("private-backslash", "/private%5cx", 404),
    R("private-absolute-form", "http://localhost/private/x", 403),
    R("private-location-open", "/private/loc-open/f.txt", 200),
    R("private-location-open-dotdot", "/private/loc-open/../x", 403),
    # ---- <Directory> at several depths ----
    R("deep", "/deep/f.txt", 403),
    R("deep-a", "/deep/a/f.txt", 200),
    R("deep-a-b", "/deep/a/b/f.txt", 403),
    R("deep-a-b-c", "/deep/a/b/c/f.txt", 200),
    R("deep-a-b-c-d", "/deep/a/b/c/d/f.txt", 200),
    R("deep-regex-after-plain", "/deep/a/r/f.txt", 403),
    R("deep-regex-beats-plain", "/deep/a/r2/f.txt", 403),
    R("twice-later-grants", "/twice/f.txt", 200),
    R("twice-later-denies", "/twice2/f.txt", 403),
    # ---- <Directory ~>, <DirectoryMatch> with a named capture ----
    R("rx-digit", "/rx1/f.txt", 403),
    R("rx-digits", "/rx22/f.txt", 403),
    R("rx-letter", "/rx1a/f.txt", 404),
    R("rx-no-match", "/rxa/f.txt", 200),
    R("rxend-file", "/rxend1/f.txt", 200),
    R("rxend-dir", "/rxend1/", 200),
    R("dm-open", "/dm/open/f.txt", 200),
    R("dm-shut", "/dm/shut/f.txt", 403),
    R("dm-no-match", "/dm/Open9/f.txt", 200),
    # ---- <Files>, <FilesMatch>, nested, overridden by <Location> ----
    R("files-secret", "/files/a.secret", 403),
    R("files-secret-missing", "/files/none.secret", 403),
    R("files-secret-subdir", "/files/sub/b.secret", 403),
    R("files-secret-trailing-dot", "/files/a.secret.", 404),
    R("files-secret-encoded-dot", "/files/a%2esecret", 403),
    R("files-secret-path-info", "/files/a.secret/", 403),
    R("files-secret-case", "/files/A.SECRET", 404),
    R("files-plain", "/files/x.txt", 200),
    R("files-bak", "/files/a.bak", 403),
    R("files-old", "/files/a.old", 403),
    R("files-bak-txt", "/files/a.bak.txt", 200),
    R("files-top-level", "/public/forbidden.txt", 403),
    R("files-nested-in-dir", "/files/nested/x.txt", 403),
    R("files-nested-other", "/files/nested/y.txt", 200),
    R("files-location-overrides", "/files/loc-open.secret", 200),
    # ---- <Location>, <LocationMatch> ----
    R("loc-denied", "/loc/denied/x", 403),
    R("loc-denied-missing", "/loc/denied/none", 403),
    R("loc-denied-prefix-only", "/loc/denied-not/x", 200),
    R("loc-denied-double-slash", "//loc//denied/x", 403),
    R("loc-denied-dot", "/loc/./denied/x", 403),
    R("loc-denied-encoded", "/loc/%64enied/x", 403),
    R("loc-denied-dotdot", "/loc/open/../denied/x", 403),
    R("loc-denied-case", "/LOC/denied/x", 404),
    R("loc-denied-encoded-slash", "/loc/denied%2fx", 404),
    R("loc-open", "/loc/open/x", 200),
    R("locmatch-digit", "/loc/m1/x", 403),
    R("locmatch-letter", "/loc/mx/x", 200),
    R("locmatch-encoded", "/loc/m%31/x", 403),
    R("locmatch-capture-good", "/loc/good-x/f.txt", 200),
    R("locmatch-capture-bad", "/loc/bad-x/f.txt", 403),
    # ---- <If>/<ElseIf>/<Else> ----
    R("cond-else", "/cond/x.txt", 200),
    R("cond-query", "/cond/x.txt?deny", 403),
    R("cond-query-value", "/cond/x.txt?a=1&deny=1", 403),
    R("cond-query-no-match", "/cond/x.txt?denyx", 200),
    R("cond-header-in", "/cond/x.txt", 403, headers=xtest("block")),
    R("cond-header-in-2", "/cond/x.txt", 403, headers=xtest("deny")),
    R("cond-header-not-in", "/cond/x.txt", 200, headers=xtest("blocked")),
    R("cond-strmatch", "/cond/stop.txt", 403),
    R("cond-strmatch-sub", "/cond/stopper/y.txt", 403),
    R("cond-strmatch-encoded", "/cond/%73top.txt", 403),
    R("cond-host", "/cond/x.txt", 403, host="blocked.test"),
    R("cond-if-beats-location", "/cond/loc/f.txt?deny", 403),
    R("cond-location-else", "/cond/loc/f.txt", 200),
    R("cond2-denied", "/cond2/f.txt", 403),
    R("cond2-open", "/cond2/f.txt", 200, headers=xtest("open")),
    R("cond2-open-wrong", "/cond2/f.txt", 403, headers=xtest("Open")),
    # ---- every Require form ----
    R("req-granted", "/req/granted/f.txt", 200),
    R("req-denied", "/req/denied/f.txt", 403),
    R("req-ip-cidr", "/req/ip-cidr/f.txt", 200),
    R("req-ip-cidr-other", "/req/ip-cidr-other/f.txt", 403),
    R("req-ip-partial", "/req/ip-partial/f.txt", 200),
    R("req-ip-partial-other", "/req/ip-partial-other/f.txt", 403),
    R("req-ip-mask", "/req/ip-mask/f.txt", 200),
    R("req-ip-list", "/req/ip-list/f.txt", 200),
    R("req-ip6", "/req/ip6/f.txt", 403),
    R("req-local", "/req/local/f.txt", 200),
    R("req-not-local", "/req/not-local/f.txt", 403),
    R("req-host", "/req/host/f.txt", 200),
    R("req-host-other", "/req/host-other/f.txt", 403),
    R("req-env", "/req/env/f.txt", 403),
    R("req-env-header", "/req/env/f.txt", 403, headers=((NEVER_SET, "1"),)),
    R("req-not-env", "/req/not-env/f.txt", 200),
    R("req-method-get", "/req/method/f.txt", 200),
    R("req-method-head", "/req/method/f.txt", 200, method="HEAD"),
    R("req-method-post", "/req/method/f.txt", 403, method="POST"),
    R("req-method-options", "/req/method/f.txt", 403, method="OPTIONS"),
    R("req-expr-no", "/req/expr/f.txt", 403),
    R("req-expr-yes", "/req/expr/f.txt?key=1", 200),
    R("req-expr-in", "/req/expr-in/f.txt", 200),
    R("req-expr-in-other-host", "/req/expr-in/f.txt", 403, host="b.test"),
    R("req-expr-in-strmatch", "/req/expr-in/f.txt", 403, headers=xtest("nope")),
    R("req-multi", "/req/multi/f.txt", 200),
    R("req-all", "/req/all/f.txt", 200),
    R("req-all-post", "/req/all/f.txt", 403, method="POST"),
    R("req-all-deny", "/req/all-deny/f.txt", 403),
    R("req-any-get", "/req/any/f.txt", 403),
    R("req-any-post", "/req/any/f.txt", 200, method="POST"),
    R("req-none-get", "/req/none/f.txt", 200),
    R("req-none-delete", "/req/none/f.txt", 403, method="DELETE"),
    R("req-none-alone", "/req/none-alone/f.txt", 403),
    R("req-nested-query", "/req/nested/f.txt?k=1", 200),
    R("req-nested-nothing", "/req/nested/f.txt", 403),
    R("req-nested-header", "/req/nested/f.txt", 200, headers=xtest("yes")),
    R("req-nested-header-put", "/req/nested/f.txt", 403, method="PUT", headers=xtest("yes")),
    R("req-nested-query-post", "/req/nested/f.txt?k=1", 403, method="POST"),
    # ---- Basic auth ----
    R("auth-none", "/auth/f.txt", 401),
    R("auth-bcrypt", "/auth/f.txt", 200, headers=creds("alice")),
    R("auth-bcrypt-wrong", "/auth/f.txt", 401, headers=creds("alice", "nope")),
    R("auth-unknown-user", "/auth/f.txt", 401,
      headers=(("Authorization", "Basic " + base64.b64encode(b"nobody:pw").decode()),)),
    R("auth-user-not-in-file", "/auth/f.txt", 401, headers=(basic("bob"),)),
    R("auth-scheme-lowercase", "/auth/f.txt", 200,
      headers=(("Authorization", "basic " + basic("alice")[1].split()[1]),)),
    R("auth-scheme-digest", "/auth/f.txt", 401, headers=(("Authorization", "Digest x=1"),)),
    R("auth-bad-base64", "/auth/f.txt", 401, headers=(("Authorization", "Basic !!!!"),)),
    R("auth-no-colon", "/auth/f.txt", 401,
      headers=(("Authorization", "Basic " + base64.b64encode(b"alice").decode()),)),
    R("auth-empty", "/auth/f.txt", 401, headers=(("Authorization", "Basic "),)),
    R("auth-missing-file", "/auth/none.txt", 401),
    R("auth-missing-file-creds", "/auth/none.txt", 404, headers=creds("alice")),
    R("auth-head", "/auth/f.txt", 401, method="HEAD"),
    R("auth-md5", "/auth/md5/f.txt", 200, headers=creds("bob")),
    R("auth-md5-none", "/auth/md5/f.txt", 401),
    R("auth-md5-wrong", "/auth/md5/f.txt", 401, headers=creds("bob", "bob-PW")),
    R("auth-sha1", "/auth/sha1/f.txt", 200, headers=creds("carol")),
    R("auth-sha1-wrong", "/auth/sha1/f.txt", 401, headers=creds("carol", "carol")),
    R("auth-crypt", "/auth/crypt/f.txt", 200, headers=creds("dave")),
    R("auth-crypt-8-chars", "/auth/crypt/f.txt", 200, headers=creds("dave", "davepass")),
    R("auth-crypt-wrong", "/auth/crypt/f.txt", 401, headers=creds("dave", "davepas")),
    R("auth-plain", "/auth/plain/f.txt", 401, headers=creds("erin")),
    R("auth-sha256", "/auth/sha256/f.txt", 200, headers=creds("frank")),
    R("auth-sha256-wrong", "/auth/sha256/f.txt", 401, headers=creds("frank", "x")),
    R("auth-sha512", "/auth/sha512/f.txt", 200, headers=creds("grace")),
    R("auth-sha512-wrong", "/auth/sha512/f.txt", 401, headers=creds("grace", "x")),
    R("auth-wrong-file-for-user", "/auth/md5/f.txt", 401, headers=creds("alice")),
    R("auth-require-user-yes", "/auth/user/f.txt", 200, headers=creds("bob")),
    R("auth-require-user-no", "/auth/user/f.txt", 401, headers=creds("alice")),
    R("auth-require-user-none", "/auth/user/f.txt", 401),
    R("auth-group-yes", "/auth/group/f.txt", 200, headers=creds("alice")),
    R("auth-group-yes-crypt", "/auth/group/f.txt", 200, headers=creds("dave")),
    R("auth-group-no", "/auth/group/f.txt", 401, headers=creds("carol")),
    R("auth-group-not-listed", "/auth/group/f.txt", 401, headers=creds("grace")),
    R("auth-expr-user-yes", "/auth/expr-user/f.txt", 200, headers=creds("bob")),
    R("auth-expr-user-no", "/auth/expr-user/f.txt", 401, headers=creds("alice")),
    R("auth-expr-user-none", "/auth/expr-user/f.txt", 401),
    R("auth-other-realm", "/auth/other-realm/f.txt", 401),
    R("auth-private-trick", "/auth/%2e%2e/private/x", 403, headers=creds("alice")),
    # ---- AuthMerging ----
    R("merge-parent", "/merge/f.txt", 401),
    R("merge-parent-creds", "/merge/f.txt", 200, headers=creds("carol")),
    R("merge-or", "/merge/or/f.txt", 200),
    R("merge-and-none", "/merge/and/f.txt", 401),
    R("merge-and-alice", "/merge/and/f.txt", 200, headers=creds("alice")),
    R("merge-and-bob", "/merge/and/f.txt", 401, headers=creds("bob")),
    R("merge-and-or-alice", "/merge/and/or/f.txt", 200, headers=creds("alice")),
    R("merge-and-or-bob", "/merge/and/or/f.txt", 401, headers=creds("bob")),
    R("merge-and-or-none", "/merge/and/or/f.txt", 401),
    R("merge-and-ip", "/merge/and-ip/f.txt", 403),
    R("merge-and-ip-creds", "/merge/and-ip/f.txt", 403, headers=creds("alice")),
    R("merge-off", "/merge/off/f.txt", 200),
    R("merge-inherit", "/merge/inherit/f.txt", 401),
    R("merge-inherit-creds", "/merge/inherit/f.txt", 200, headers=creds("grace")),
    # ---- Order/Allow/Deny/Satisfy ----
    R("compat-deny-all", "/compat/deny-all/f.txt", 403),
    R("compat-allow-local", "/compat/allow-local/f.txt", 200),
    R("compat-deny-local", "/compat/deny-local/f.txt", 403),
    R("compat-allow-other", "/compat/allow-other/f.txt", 403),
    R("compat-allow-partial", "/compat/allow-partial/f.txt", 200),
    R("compat-allow-env", "/compat/allow-env/f.txt", 403),
    R("compat-any-auth", "/compat/any-auth/f.txt", 200),
    R("compat-any-auth-deny", "/compat/any-auth-deny/f.txt", 401),
    R("compat-any-auth-deny-creds", "/compat/any-auth-deny/f.txt", 200, headers=creds("bob")),
    R("compat-any-auth-deny-wrong", "/compat/any-auth-deny/f.txt", 401,
      headers=creds("bob", "x")),
    R("compat-all-auth", "/compat/all-auth/f.txt", 401),
    R("compat-all-auth-creds", "/compat/all-auth/f.txt", 200, headers=creds("bob")),
    R("compat-all-auth-deny", "/compat/all-auth-deny/f.txt", 403),
    R("compat-all-auth-deny-creds", "/compat/all-auth-deny/f.txt", 403, headers=creds("bob")),
    # ---- <Limit>, <LimitExcept> ----
    R("limit-post-get", "/limit/post/f.txt", 200),
    R("limit-post-post", "/limit/post/f.txt", 403, method="POST"),
    R("limit-except-get", "/limit/except/f.txt", 200),
    R("limit-except-head", "/limit/except/f.txt", 200, method="HEAD"),
    R("limit-except-options", "/limit/except/f.txt", 403, method="OPTIONS"),
    R("limit-except-post", "/limit/except/f.txt", 403, method="POST"),
    R("limit-auth-get", "/limit/auth/f.txt", 200),
    R("limit-auth-post", "/limit/auth/f.txt", 401, method="POST"),
    R("limit-auth-post-creds", "/limit/auth/f.txt", 200, method="POST", headers=creds("bob")),
    R("limit-mixed-get", "/limit/mixed/f.txt", 200),
    R("limit-mixed-post", "/limit/mixed/f.txt", 200, method="POST"),
    # ---- Options: symlinks, Indexes ----
    R("links-nofollow-real", "/links/nofollow/real.txt", 200),
    R("links-nofollow-file", "/links/nofollow/to-file", 403),
    R("links-nofollow-dir", "/links/nofollow/to-dir/out.txt", 403),
    R("links-follow-file", "/links/follow/to-file", 200),
    R("links-follow-relative", "/links/follow/rel", 200),
    R("links-follow-out-dir", "/links/follow/to-out/out.txt", 200),
    R("links-follow-out-file", "/links/follow/to-out-file", 200),
    R("links-follow-into-private", "/links/follow/to-private/x", 200),
    R("links-owner-same", "/links/owner/same", 200),
    R("links-owner-other", "/links/owner/other", 403, needs_root=True),
    R("links-owner-real", "/links/owner/real.txt", 200),
    R("links-none", "/links/none/to-file", 403),
    R("links-none-real", "/links/none/real.txt", 200),
    R("idx-on-dir", "/idx/on/", 404),
    R("idx-on-no-slash", "/idx/on", 301),
    R("idx-on-file", "/idx/on/file.txt", 200),
    R("idx-off-dir", "/idx/off/", 404),
    R("idx-has-index", "/idx/has/", 200),
    # ---- AllowOverride and .htaccess ----
    R("ht-none-ignored", "/ht/none/f.txt", 200),
    R("ht-none-bad-ignored", "/ht/none-bad/f.txt", 200),
    R("ht-all", "/ht/all/f.txt", 403),
    R("ht-all-sub", "/ht/all/sub/f.txt", 403),
    R("ht-all-deeper-grants", "/ht/all/open/f.txt", 200),
    R("ht-all-dot-htaccess", "/ht/all/.htaccess", 403),
    R("ht-accessfilename-default", "/ht/all/named/f.txt", 403),
    R("ht-syntax", "/ht/syntax/f.txt", 500),
    R("ht-syntax-missing", "/ht/syntax/none.txt", 500),
    R("ht-syntax-unclosed", "/ht/syntax-section/f.txt", 500),
    R("ht-files-x", "/ht/files/x.txt", 403),
    R("ht-files-y", "/ht/files/y.txt", 200),
    R("ht-limit-sect-get", "/ht/limit-sect/f.txt", 200),
    R("ht-limit-sect-post", "/ht/limit-sect/f.txt", 403, method="POST"),
    R("ht-authconfig", "/ht/auth/f.txt", 401),
    R("ht-authconfig-creds", "/ht/auth/f.txt", 200, headers=creds("carol")),
    R("ht-authconfig-forbidden", "/ht/auth-bad/f.txt", 500),
    R("ht-limit", "/ht/limit/f.txt", 403),
    R("ht-limit-forbidden", "/ht/limit-bad/f.txt", 500),
    R("ht-opts-real", "/ht/opts/real.txt", 200),
    R("ht-opts-link", "/ht/opts/link.txt", 403),
    R("ht-opts-forbidden", "/ht/opts-bad/f.txt", 500),
    # ---- Alias to a directory outside the DocumentRoot ----
    R("alias-file", "/alias/a.txt", 200),
    R("alias-denied", "/alias/denied/x", 403),
    R("alias-no-slash", "/alias", 404),
    R("alias-double-slash", "/alias//a.txt", 200),
    R("alias-dotdot-private", "/alias/../private/x", 403),
    R("alias-encoded-dotdot", "/alias/%2e%2e/hello.txt", 200),
    R("alias-outside-direct", "/outside/out.txt", 404),
]

# row id -> why httpd-py is deliberately stricter there (also listed in docs/interop.md)
DOCUMENTED: dict[str, str] = {}


def _ids(rows: list[Row]) -> list[str]:
    return [r.id for r in rows]


assert len(set(_ids(CORPUS))) == len(CORPUS), "row ids must be unique"


@pytest.fixture(scope="module")
def apache_answers(apache_port) -> dict[str, Answer]:
    return answers_from(apache_port, CORPUS)


@pytest.fixture(scope="module")
def httpd_py_answers(httpd_py_port) -> dict[str, Answer]:
    return answers_from(httpd_py_port, CORPUS)


def _skip_unless_possible(row: Row, site) -> None:
    if row.needs_root and not site.foreign_link:
        if os.environ.get("CI"):        # CI runs as root: a row that cannot run there fails
            pytest.fail(ROOT_ONLY)
        pytest.skip(ROOT_ONLY)          # not under CI: it failed just above


@pytest.mark.parametrize("row", CORPUS, ids=_ids(CORPUS))
def test_apache_answers_as_intended(row: Row, site, apache_answers):
    _skip_unless_possible(row, site)
    got = apache_answers[row.id]
    assert got.status == row.apache, (
        f"{row.method} {row.target}: the corpus says Apache answers {row.apache}, apache2 "
        f"answered {got}")
    if got.status == 401:
        assert got.www_authenticate, "a 401 without WWW-Authenticate"


@pytest.mark.parametrize("row", CORPUS, ids=_ids(CORPUS))
def test_httpd_py_answers_as_apache(row: Row, site, apache_answers, httpd_py_answers):
    _skip_unless_possible(row, site)
    theirs, ours = apache_answers[row.id], httpd_py_answers[row.id]
    if row.id in DOCUMENTED:
        assert ours.status in (401, 403) and theirs.status != ours.status, (
            f"documented difference no longer shows: Apache {theirs}, httpd-py {ours}")
        return
    assert ours.status == theirs.status, (
        f"{row.method} {row.target} (headers {dict(row.headers)}, Host {row.host}): "
        f"Apache {theirs.status}, httpd-py {ours}")
    if theirs.status == 401:
        assert ours.www_authenticate == theirs.www_authenticate, (
            f"{row.method} {row.target}: WWW-Authenticate: Apache {theirs.www_authenticate}, "
            f"httpd-py {ours.www_authenticate}")


def test_corpus_covers_the_features():
    """The corpus keeps its breadth: at least 150 rows, every status kind the features give."""
    assert len(CORPUS) >= 150
    assert {r.apache for r in CORPUS} >= {200, 301, 400, 401, 403, 404, 500}
