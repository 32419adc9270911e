"""mod_headers, mod_setenvif and mod_env side by side: the same tree (tree.py) under Debian's
apache2 and under httpd-py, the same raw requests to both.

Every row of CORPUS is one request and the status Apache 2.4 gives it.  Two tests per row:

* ``test_apache_answers_as_intended[row]``: apache2 gives the row's status (the corpus is right);
* ``test_httpd_py_answers_as_apache[row]``: httpd-py gives apache2's status and the same
  response headers -- every header but the ones the modules under test do not set (Date,
  Server, Connection, Keep-Alive, Content-Length, Accept-Ranges, Last-Modified, ETag,
  Content-Type, Transfer-Encoding; a row's ``also`` adds some back), compared name by name as the
  list of values in order, after normalising what differs by nature: the port, ``t=`` (request
  time), ``D=`` (duration) and ``l=`` (load average).

The variables mod_setenvif and mod_env set are shown through ``Header set X "%{VAR}e"`` lines,
the request headers RequestHeader changes through ``Header echo``, and what ``Require env`` /
``Allow from env=`` decide through the status.

A difference may only be accepted by listing the row in KNOWN (and in docs/interop.md, section
"mod_headers, mod_setenvif, mod_env"): the row's test is then an expected failure (strict, so a
fixed difference shows).
"""
from __future__ import annotations

import re

import pytest

from tests.interop.modules.headers.tree import Answer, Row, answers_from

IGNORED = frozenset({"date", "server", "connection", "keep-alive", "content-length",
                     "accept-ranges", "last-modified", "etag", "content-type",
                     "transfer-encoding", "allow"})
BEFORE = "Sat, 01 Jan 2022 00:00:00 GMT"         # after the files' mtime: a 304


def H(*pairs: str) -> tuple[tuple[str, str], ...]:
    """H("X-A: 1", "X-B: 2") -> (("X-A", "1"), ("X-B", "2"))"""
    return tuple(tuple(p.split(": ", 1)) for p in pairs)  # type: ignore[misc]


R = Row
CORPUS: list[Row] = [
    # ---- server level: both tables on every kind of response ----
    R("root", "/", 200),
    R("root-file", "/a.txt", 200),
    R("root-head", "/a.txt", 200, method="HEAD"),
    R("root-missing", "/missing.txt", 404),
    R("root-304", "/a.txt", 304, headers=H(f"If-Modified-Since: {BEFORE}")),
    R("root-post", "/a.txt", 200, method="POST"),
    R("root-options", "/a.txt", 200, method="OPTIONS"),
    R("root-http10", "/a.txt", 200, version="1.0"),
    # ---- every action (onsuccess table) ----
    R("actions", "/hdr/actions/f.txt", 200),
    R("actions-head", "/hdr/actions/f.txt", 200, method="HEAD"),
    R("actions-404", "/hdr/actions/nope", 404),
    R("actions-304", "/hdr/actions/f.txt", 304, headers=H(f"If-Modified-Since: {BEFORE}")),
    # ---- always vs onsuccess on 200/304/404/403/302/301/410 ----
    R("tables-200", "/hdr/tables/f.txt", 200),
    R("tables-head", "/hdr/tables/f.txt", 200, method="HEAD"),
    R("tables-304", "/hdr/tables/f.txt", 304, headers=H(f"If-Modified-Since: {BEFORE}")),
    R("tables-404", "/hdr/tables/missing.txt", 404),
    R("tables-403", "/hdr/tables/denied.txt", 403),
    R("tables-302", "/hdr/tables/moved", 302),
    R("tables-410", "/hdr/tables/gone", 410),
    R("tables-301-dir", "/hdr/tables/sub", 301),
    R("tables-dir-index", "/hdr/tables/sub/", 200),
    R("tables-etag-kept", "/hdr/tables/f.txt", 200, also=("etag",)),
    # ---- env= and expr= conditions ----
    R("cond-plain", "/hdr/cond/f.txt", 200),
    R("cond-flag", "/hdr/cond/f.txt", 200, headers=H("X-Flag: on")),
    R("cond-flag-off", "/hdr/cond/f.txt", 200, headers=H("X-Flag: off")),
    R("cond-server-var", "/hdr/cond/f.txt", 200, headers=H("X-Test: ab")),
    R("cond-server-var-dropped", "/hdr/cond/f.txt", 200, headers=H("X-Test: ab", "X-Drop: 1")),
    R("cond-sub", "/hdr/cond/sub/f.txt", 200),
    R("cond-query", "/hdr/cond/f.txt?x=1", 200),
    R("cond-query-other", "/hdr/cond/f.txt?x=2", 200),
    R("cond-req-func", "/hdr/cond/f.txt", 200, headers=H("X-Other: ok")),
    R("cond-404", "/hdr/cond/missing", 404),
    R("cond-404-sub", "/hdr/cond/sub/missing", 404),
    R("cond-post", "/hdr/cond/f.txt?a=b", 200, method="POST"),
    # ---- edit / edit* with regexes and captures ----
    R("edit", "/hdr/edit/f.txt", 200, also=("content-type",)),
    R("edit-with-var", "/hdr/edit/f.txt", 200, headers=H("X-Test: a"), also=("content-type",)),
    R("edit-404", "/hdr/edit/missing", 404),
    # ---- echo ----
    R("echo", "/hdr/echo/f.txt", 200,
      headers=H("X-Echo-One: 1", "X-Echo-Two: two words", "x-echo-lower: l", "Y-Always: y",
                "Accept: text/plain", "Accept-Language: en", "X-Other: o")),
    R("echo-none", "/hdr/echo/f.txt", 200),
    R("echo-404", "/hdr/echo/missing", 404, headers=H("X-Echo-One: 1", "Y-Always: y")),
    # ---- format specifiers ----
    R("fmt", "/hdr/fmt/f.txt", 200),
    R("fmt-var", "/hdr/fmt/f.txt", 200, headers=H("X-Test: ab")),
    R("fmt-https", "/hdr/https/f.txt", 200),
    # ---- RequestHeader (late, and early at server level), seen through echo ----
    R("req", "/hdr/req/f.txt", 200),
    R("req-sent", "/hdr/req/f.txt", 200,
      headers=H("X-Req-In: sent", "X-Req-Merge: dup", "X-Req-Drop: gone", "X-Req-Edit: a12b3",
                "X-Req-Edits: banana", "X-Req-Sie: client", "X-Req-Set: client")),
    R("req-merge-new", "/hdr/req/f.txt", 200, headers=H("X-Req-Merge: other")),
    R("req-env", "/hdr/req/f.txt", 200, headers=H("X-Test: ab")),
    R("req-early-overrides-client", "/hdr/echo/f.txt", 200, headers=H("X-Early-Req: client")),
    # ---- Content-Type ----
    R("ct-set", "/hdr/ct/a.txt", 200, also=("content-type",)),
    R("ct-unset", "/hdr/ct/b.txt", 200, also=("content-type",)),
    R("ct-setifempty", "/hdr/ct/c.txt", 200, also=("content-type",)),
    R("ct-append", "/hdr/ct/d.txt", 200, also=("content-type",)),
    # ---- merge order: <Directory>, <Files>, <Location> ----
    R("loc-dir-loc", "/hdr/loc/f.txt", 200),
    R("loc-dir-files-loc", "/hdr/loc/f2.txt", 200),
    # ---- ErrorDocument served from a local URL ----
    R("errdoc-200", "/hdr/errdoc/f.txt", 200),
    R("errdoc-404", "/hdr/errdoc/missing", 404),
    # ---- SetEnvIf attributes (server level at post_read, directory level), SetEnv, PassEnv ----
    R("env", "/env/f.txt", 200),
    R("env-test", "/env/f.txt", 200, headers=H("X-Test: ab")),
    R("env-test-one-group", "/env/f.txt", 200, headers=H("X-Test: axe")),
    R("env-test-nomatch", "/env/f.txt", 200, headers=H("X-Test: ba")),
    R("env-nocase", "/env/f.txt", 200, headers=H("X-Nocase: ABCdef")),
    R("env-post", "/env/f.txt", 200, method="POST"),
    R("env-http10", "/env/f.txt", 200, version="1.0"),
    R("env-header-name-regex", "/env/f.txt", 200, headers=H("X-Rx-A: zebra", "X-Rxb: no")),
    R("env-header-name-regex-last", "/env/f.txt", 200, headers=H("X-Rx-A: no", "X-Rxb: zoo")),
    R("env-browser-old", "/env/f.txt", 200, headers=H("User-Agent: Mozilla/4.0 (compatible)")),
    R("env-browser-bot", "/env/f.txt", 200, headers=H("User-Agent: GoogleBOT/2.1")),
    R("env-browser-curl", "/env/f.txt", 200, headers=H("User-Agent: curl/8.0")),
    R("env-expr", "/env/f.txt?q=hello&r=1", 200),
    R("env-encoded-uri", "/env/%66.txt", 200),
    R("env-dot-uri", "/env/./f.txt", 200),
    R("env-double-slash", "/env//f.txt", 200),
    R("env-query-uri", "/env/f.txt?x=/y", 200),
    R("env-level-top", "/env/f.txt", 200, headers=H("X-Level: 1")),
    R("env-level-sub", "/env/sub/f.txt", 200, headers=H("X-Level: 1")),
    R("env-sub", "/env/sub/f.txt", 200),
    R("env-quirk", "/env/quirk/f.txt", 200),
    R("env-404", "/env/missing", 404, headers=H("X-Test: ab")),
    # ---- access control reads SetEnvIf's variables ----
    R("access-srv-denied", "/access/srv/f.txt", 403),
    R("access-srv-granted", "/access/srv/f.txt", 200, headers=H("X-Test: open")),
    R("access-srv-case", "/access/srv/f.txt", 403, headers=H("X-Test: OPEN")),
    R("access-dir-denied", "/access/dir/f.txt", 403, headers=H("X-Key: kx")),
    R("access-dir-granted", "/access/dir/f.txt", 200, headers=H("X-Key: k7")),
    R("access-compat-denied", "/access/compat/f.txt", 403),
    R("access-compat-granted", "/access/compat/f.txt", 200, headers=H("X-Test: open")),
    R("access-setenv-too-late", "/access/setenv/f.txt", 403),
    R("access-nothing", "/access/nothing/f.txt", 403),
    R("access-not-env", "/access/notenv/f.txt", 200),
    R("access-not-env-bot", "/access/notenv/f.txt", 403, headers=H("User-Agent: a bot")),
    # ---- .htaccess ----
    R("ht", "/ht/f.txt", 200),
    R("ht-var", "/ht/f.txt", 200, headers=H("X-Ht: from-client")),
    R("ht-404", "/ht/missing", 404, headers=H("X-Ht: x")),
]

# row id -> why httpd-py differs (also in docs/interop.md); the row's test is an expected failure
KNOWN: dict[str, str] = {
    "fmt-https": "mod_ssl is always built into httpd-py: %{HTTPS}s is 'off' on a plain "
                 "connection; apache2 without mod_ssl loaded says '(null)'",
}


def _ids(rows: list[Row]) -> list[str]:
    return [r.id for r in rows]


assert len(set(_ids(CORPUS))) == len(CORPUS), "row ids must be unique"


@pytest.fixture(scope="module")
def apache_answers(apache_port) -> dict[str, Answer]:
    return answers_from(apache_port, CORPUS)


@pytest.fixture(scope="module")
def httpd_py_answers(httpd_py_port) -> dict[str, Answer]:
    return answers_from(httpd_py_port, CORPUS)


def compared(answer: Answer, row: Row, port: int) -> dict[str, list[str]]:
    """The headers this suite compares: name -> values in order, normalised."""
    out: dict[str, list[str]] = {}
    for k, v in answer.headers:
        if k in IGNORED and k not in row.also:
            continue
        v = v.replace(f":{port}", ":PORT")
        v = re.sub(r"\bt=\d+", "t=N", v)
        v = re.sub(r"\bD=\d+", "D=N", v)
        v = re.sub(r"\bl=[\d.]+/[\d.]+/[\d.]+", "l=N", v)
        out.setdefault(k, []).append(v)
    return out


@pytest.mark.parametrize("row", CORPUS, ids=_ids(CORPUS))
def test_apache_answers_as_intended(row: Row, apache_answers):
    got = apache_answers[row.id]
    assert got.status == row.apache, (
        f"{row.method} {row.target}: the corpus says Apache answers {row.apache}, apache2 "
        f"answered {got.status} {got.note}")


@pytest.mark.parametrize("row", [pytest.param(r, marks=pytest.mark.xfail(
    reason=KNOWN[r.id], strict=True)) if r.id in KNOWN else r for r in CORPUS], ids=_ids(CORPUS))
def test_httpd_py_answers_as_apache(row: Row, apache_port, httpd_py_port, apache_answers,
                                    httpd_py_answers):
    theirs, ours = apache_answers[row.id], httpd_py_answers[row.id]
    assert ours.status == theirs.status, (
        f"{row.method} {row.target} {dict(row.headers)}: Apache {theirs.status}, httpd-py "
        f"{ours.status} {ours.note}")
    a, h = compared(theirs, row, apache_port), compared(ours, row, httpd_py_port)
    diff = {k: (a.get(k), h.get(k)) for k in sorted(set(a) | set(h)) if a.get(k) != h.get(k)}
    assert not diff, (f"{row.method} {row.target} {dict(row.headers)}: headers differ "
                      f"(name: (Apache, httpd-py)): {diff}")


def test_corpus_covers_the_features():
    """At least 70 requests, every status kind the features meet."""
    assert len(CORPUS) >= 70
    assert {r.apache for r in CORPUS} >= {200, 301, 302, 304, 403, 404, 410}
