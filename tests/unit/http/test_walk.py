"""http/walk.py: the section walk on configs loaded from text over real tmp directories --
<Directory> shortest first, vhost sections after the main server's, regex <Directory>,
<Files> (top level and nested), <Location>/<LocationMatch>, <If> chains, .htaccess (read,
re-read, refused) and the per-key cache ("merge once, look up per request")."""
from __future__ import annotations

import os

import pytest

from httpd_py.config import load
from httpd_py.config.model import UNSET
from httpd_py.http.access import RequestFacts
from httpd_py.http.walk import HtaccessError, SectionWalker, Walked


def setup(tmp_path, body: str, vhost: str | None = None, dirs=("a/b/c", "b", "ab")):
    docs = tmp_path / "docs"
    for d in dirs:
        (docs / d).mkdir(parents=True, exist_ok=True)
    text = (f"Listen 127.0.0.1:18080\nServerRoot {tmp_path}\nDocumentRoot {docs}\n"
            f"ErrorLog {tmp_path}/error.log\n" + body.replace("@D", str(docs)))
    if vhost is not None:
        text += ("<VirtualHost *:18080>\nServerName v.example\n" + vhost.replace("@D", str(docs))
                 + "\n</VirtualHost>\n")
    p = tmp_path / "httpd.conf"
    p.write_text(text)
    cfg = load(str(p), log_warnings=False)
    return cfg, str(docs)


def walker(cfg, vhost=False):
    return SectionWalker(cfg.vhosts[0] if vhost else cfg.main, cfg)


def name_of(w: Walked):
    return w.conf.auth_name if w.conf.auth_name is not UNSET else None


def facts(method="GET", query="", uri="/x", remote_ip="192.0.2.1"):
    return RequestFacts(method=method, remote_ip=remote_ip, local_ip="192.0.2.100",
                        local_port=443, headers={"host": "h"}, uri=uri, query=query, https=True,
                        protocol="HTTP/1.1", request_line=f"{method} {uri} HTTP/1.1")


# -- <Directory> ----------------------------------------------------------------------------------
DIRS = """
<Directory @D/a/b>
AuthName deep
</Directory>
<Directory @D/a>
AuthName shallow
</Directory>
<Directory @D>
AuthName root
ErrorDocument 404 /root.html
</Directory>
<Directory @D/b>
AuthName b-first
</Directory>
<Directory @D/b/>
AuthName b-second
</Directory>
"""


@pytest.mark.parametrize("rel, is_dir, expected", [
    ("x.html", False, "root"),
    ("a/x.html", False, "shallow"),
    ("a", True, "shallow"),
    ("a/b/x.html", False, "deep"),          # deeper wins although written first
    ("a/b/c/x.html", False, "deep"),
    ("a/b", True, "deep"),
    ("ab/x.html", False, "root"),           # /a is a path component, not a prefix
    ("b/x.html", False, "b-second"),        # same depth: the later in the file wins
    ("nonexistent/x.html", False, "root"),
])
def test_directory_shortest_first(tmp_path, rel, is_dir, expected):
    cfg, docs = setup(tmp_path, DIRS)
    w = walker(cfg).lookup(os.path.join(docs, rel), is_dir, "/" + rel)
    assert w.error is None and name_of(w) == expected
    assert w.conf.error_documents[0][0] == 404        # the shallower section still merged in


def test_outside_any_section_gets_the_server_base(tmp_path):
    cfg, docs = setup(tmp_path, "DirectoryIndex base.html\n" + DIRS)
    w = walker(cfg).lookup(str(tmp_path / "elsewhere.html"), False, "/elsewhere.html")
    assert name_of(w) is None and w.conf.directory_index == ("base.html",)


@pytest.mark.parametrize("rel, expected", [
    ("x.html", "vhost-root"),               # vhost's section at the same depth wins
    ("a/x.html", "main-a"),                 # main's deeper section still applies
    ("a/b/x.html", "vhost-b"),
])
def test_vhost_sections_after_main_at_same_depth(tmp_path, rel, expected):
    cfg, docs = setup(tmp_path,
                      "<Directory @D>\nAuthName main-root\n</Directory>\n"
                      "<Directory @D/a>\nAuthName main-a\n</Directory>\n",
                      vhost="<Directory @D>\nAuthName vhost-root\n</Directory>\n"
                            "<Directory @D/a/b>\nAuthName vhost-b\n</Directory>")
    assert name_of(walker(cfg, vhost=True).lookup(os.path.join(docs, rel), False, "/" + rel)) \
        == expected
    # the main server does not see the vhost's sections
    main = name_of(walker(cfg).lookup(os.path.join(docs, rel), False, "/" + rel))
    assert main == ("main-a" if rel.startswith("a/") else "main-root")


def test_wildcard_directory(tmp_path):
    cfg, docs = setup(tmp_path, "<Directory @D/*/b>\nAuthName wild\n</Directory>\n"
                                "<Directory @D/a>\nAuthName a\n</Directory>\n")
    w = walker(cfg)
    assert name_of(w.lookup(f"{docs}/a/b/x", False, "/a/b/x")) == "wild"
    assert name_of(w.lookup(f"{docs}/a/x", False, "/a/x")) == "a"
    assert name_of(w.lookup(f"{docs}/b/x", False, "/b/x")) is None


def test_regex_directory_against_filename_after_plain_ones(tmp_path):
    cfg, docs = setup(tmp_path,
                      '<DirectoryMatch "^@D/a/(?<sect>[^/]+)">\nAuthName regex\n'
                      "</DirectoryMatch>\n"
                      "<Directory @D/a/b/c>\nAuthName plain-deep\n</Directory>\n"
                      '<Directory ~ "\\.txt$">\nAuthName txt\n</Directory>\n')
    w = walker(cfg)
    got = w.lookup(f"{docs}/a/b/c/x.html", False, "/a/b/c/x.html")
    assert name_of(got) == "regex"                      # regex after plain, however deep
    assert dict(got.env) == {"MATCH_SECT": "b"}
    assert name_of(w.lookup(f"{docs}/a/b/c/x.txt", False, "/a/b/c/x.txt")) == "txt"
    assert name_of(w.lookup(f"{docs}/b/x.html", False, "/b/x.html")) is None
    assert w.lookup(f"{docs}/b/x.html", False, "/b/x.html").env == ()


# -- <Files> ------------------------------------------------------------------------------------
FILES = """
<Files "x.txt">
AuthName files-x
</Files>
<Files "*.cfg">
AuthName files-glob
</Files>
<FilesMatch "^(?<stem>[a-z]+)\\.bak$">
AuthName files-match
</FilesMatch>
<Directory @D/a>
AuthName dir-a
<Files "n.txt">
AuthName nested
</Files>
</Directory>
<Files "b">
AuthName files-dir
</Files>
"""


@pytest.mark.parametrize("rel, is_dir, expected", [
    ("x.txt", False, "files-x"),
    ("a/x.txt", False, "files-x"),          # basename, at any depth; Files after Directory
    ("a/xx.txt", False, "dir-a"),
    ("a/b/c/site.cfg", False, "files-glob"),
    ("a/n.txt", False, "nested"),           # nested <Files>: only under its <Directory>
    ("a/b/n.txt", False, "nested"),
    ("n.txt", False, None),
    ("b/n.txt", False, None),
    ("b", True, "files-dir"),               # the last component of a directory path
    ("a/b", True, "files-dir"),
    ("ab", True, None),
])
def test_files(tmp_path, rel, is_dir, expected):
    cfg, docs = setup(tmp_path, FILES)
    assert name_of(walker(cfg).lookup(os.path.join(docs, rel), is_dir, "/" + rel)) == expected


def test_files_match_named_capture(tmp_path):
    cfg, docs = setup(tmp_path, FILES)
    got = walker(cfg).lookup(f"{docs}/a/old.bak", False, "/a/old.bak")
    assert name_of(got) == "files-match" and dict(got.env) == {"MATCH_STEM": "old"}


# -- <Location> -----------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern, uri, matches", [
    ("/a", "/a", True), ("/a", "/a/", True), ("/a", "/a/b", True), ("/a", "/ab", False),
    ("/a", "/", False), ("/a", "/b/a", False),
    ("/a/", "/a/", True), ("/a/", "/a/b", True), ("/a/", "/a", False), ("/a/", "/ab", False),
    ("/", "/", True), ("/", "/anything", True),
    ("/a/b", "/a/b/c", True), ("/a/b", "/a/bc", False),
])
def test_location_prefix(tmp_path, pattern, uri, matches):
    cfg, docs = setup(tmp_path, f"<Location {pattern}>\nAuthName loc\n</Location>\n")
    got = walker(cfg).lookup(docs + uri, uri.endswith("/"), uri)
    assert (name_of(got) == "loc") is matches


def test_location_overrides_directory_and_files(tmp_path):
    cfg, docs = setup(tmp_path, FILES + "<Location /a>\nAuthName loc-a\n</Location>\n"
                                        "<Location /a/b>\nAuthName loc-ab\n</Location>\n")
    w = walker(cfg)
    assert name_of(w.lookup(f"{docs}/a/n.txt", False, "/a/n.txt")) == "loc-a"
    assert name_of(w.lookup(f"{docs}/a/b/x.txt", False, "/a/b/x.txt")) == "loc-ab"
    assert name_of(w.lookup(f"{docs}/x.txt", False, "/x.txt")) == "files-x"


def test_location_order_is_file_order_not_length(tmp_path):
    cfg, docs = setup(tmp_path, "<Location /a/b>\nAuthName long\n</Location>\n"
                                "<Location /a>\nAuthName short\n</Location>\n")
    assert name_of(walker(cfg).lookup(f"{docs}/a/b/x", False, "/a/b/x")) == "short"


def test_location_match_named_capture(tmp_path):
    cfg, docs = setup(tmp_path, '<LocationMatch "^/a/(?<name>[^/]+)">\nAuthName lm\n'
                                "</LocationMatch>\n")
    w = walker(cfg)
    got = w.lookup(f"{docs}/a/b/x", False, "/a/b/x")
    assert name_of(got) == "lm" and dict(got.env) == {"MATCH_NAME": "b"}
    other = w.lookup(f"{docs}/b/x", False, "/b/x")
    assert name_of(other) is None and other.env == ()


def test_location_wildcard(tmp_path):
    cfg, docs = setup(tmp_path, "<Location /a/*/c>\nAuthName wild\n</Location>\n")
    w = walker(cfg)
    assert name_of(w.lookup(f"{docs}/a/b/c", True, "/a/b/c")) == "wild"
    assert name_of(w.lookup(f"{docs}/a/b/x/c", True, "/a/b/x/c")) is None


# -- <If> / <ElseIf> / <Else> ------------------------------------------------------------------------
IFS = """
<Directory @D/a>
AuthName dir
<If "%{REQUEST_METHOD} == 'POST'">
AuthName if-post
</If>
<ElseIf "%{QUERY_STRING} == 'q'">
AuthName elseif-q
</ElseIf>
<Else>
AuthName else
</Else>
</Directory>
<If "%{REMOTE_ADDR} == '10.0.0.1'">
ErrorDocument 404 /ten.html
</If>
"""


@pytest.mark.parametrize("kw, expected, ten", [
    (dict(method="POST"), "if-post", False),
    (dict(method="POST", query="q"), "if-post", False),   # the first true branch only
    (dict(query="q"), "elseif-q", False),
    (dict(), "else", False),
    (dict(remote_ip="10.0.0.1"), "else", True),           # a separate chain also applies
])
def test_if_chains(tmp_path, kw, expected, ten):
    cfg, docs = setup(tmp_path, IFS)
    sw = walker(cfg)
    got = sw.lookup(f"{docs}/a/x", False, "/a/x")
    assert name_of(got) == "dir" and len(got.conf.ifs) == 2
    conf = sw.apply_ifs(got.conf, facts(**kw))
    assert conf.auth_name == expected
    assert (conf.error_documents is not UNSET) is ten
    # per combination of chosen branches, merged once
    assert sw.apply_ifs(got.conf, facts(**kw)) is conf


def test_if_outside_the_directory_does_not_carry_its_chain(tmp_path):
    cfg, docs = setup(tmp_path, IFS)
    sw = walker(cfg)
    got = sw.lookup(f"{docs}/b/x", False, "/b/x")
    assert len(got.conf.ifs) == 1
    assert sw.apply_ifs(got.conf, facts(method="POST")).auth_name is UNSET


def test_no_ifs_returns_conf_itself(tmp_path):
    cfg, docs = setup(tmp_path, "<Directory @D>\nAuthName d\n</Directory>\n")
    sw = walker(cfg)
    conf = sw.lookup(f"{docs}/x", False, "/x").conf
    assert sw.apply_ifs(conf, facts()) is conf


# -- .htaccess -------------------------------------------------------------------------------------
def test_htaccess_read_when_allowed_and_reread_after_change(tmp_path):
    cfg, docs = setup(tmp_path, "<Directory @D>\nAllowOverride AuthConfig\n</Directory>\n"
                                "<Directory @D/a/b>\nAuthName section-b\n</Directory>\n")
    ht = tmp_path / "docs" / "a" / ".htaccess"
    ht.write_text("AuthName ht-one\n")
    sw = walker(cfg)
    w1 = sw.lookup(f"{docs}/a/x", False, "/a/x")
    assert w1.error is None and name_of(w1) == "ht-one"
    assert (str(ht), os.stat(ht).st_ino) in [(p, i[0] if i else None) for p, i in w1.htaccess]
    # a deeper <Directory> merges after the shallower .htaccess
    assert name_of(sw.lookup(f"{docs}/a/b/x", False, "/a/b/x")) == "section-b"
    # the same key again: the very same object
    assert sw.lookup(f"{docs}/a/x", False, "/a/x") is w1
    ht.write_text("AuthName ht-number-two\n")                 # a different size
    w2 = sw.lookup(f"{docs}/a/x", False, "/a/x")
    assert w2 is not w1 and name_of(w2) == "ht-number-two"
    assert sw.lookup(f"{docs}/a/x", False, "/a/x") is w2
    ht.unlink()
    w3 = sw.lookup(f"{docs}/a/x", False, "/a/x")
    assert name_of(w3) is None and w3.error is None


def test_htaccess_appearing_later_is_noticed(tmp_path):
    cfg, docs = setup(tmp_path, "<Directory @D>\nAllowOverride All\n</Directory>\n")
    sw = walker(cfg)
    assert name_of(sw.lookup(f"{docs}/b/x", False, "/b/x")) is None
    (tmp_path / "docs" / "b" / ".htaccess").write_text("AuthName late\n")
    assert name_of(sw.lookup(f"{docs}/b/x", False, "/b/x")) == "late"


@pytest.mark.parametrize("override", ["None", None])
def test_htaccess_not_read_without_allow_override(tmp_path, override):
    body = f"<Directory @D>\nAllowOverride {override}\n</Directory>\n" if override else ""
    cfg, docs = setup(tmp_path, body)
    (tmp_path / "docs" / "a" / ".htaccess").write_text("AuthName ignored\nBogus line\n")
    got = walker(cfg).lookup(f"{docs}/a/x", False, "/a/x")
    assert got.error is None and name_of(got) is None and got.htaccess == ()


def test_htaccess_allow_override_switched_off_deeper(tmp_path):
    cfg, docs = setup(tmp_path, "<Directory @D>\nAllowOverride All\n</Directory>\n"
                                "<Directory @D/a/b>\nAllowOverride None\n</Directory>\n")
    (tmp_path / "docs" / "a" / ".htaccess").write_text("AuthName at-a\n")
    (tmp_path / "docs" / "a" / "b" / ".htaccess").write_text("AuthName at-b\n")
    sw = walker(cfg)
    assert name_of(sw.lookup(f"{docs}/a/x", False, "/a/x")) == "at-a"
    assert name_of(sw.lookup(f"{docs}/a/b/x", False, "/a/b/x")) == "at-a"


@pytest.mark.parametrize("override, text, fragment", [
    ("AuthConfig", "Options Indexes\n", "not allowed here"),
    ("Options", "Require all denied\n", "not allowed here"),
    ("AuthConfig", "Require all\n", "granted"),
    ("All", "Bogus directive\n", "Bogus"),
    ("All", "<Files x>\nRequire all denied\n", ""),           # unclosed section
    ("All", "AllowOverride All\n", "not allowed here"),
])
def test_htaccess_refused_gives_error(tmp_path, override, text, fragment):
    cfg, docs = setup(tmp_path, f"<Directory @D>\nAllowOverride {override}\n</Directory>\n")
    ht = tmp_path / "docs" / "a" / ".htaccess"
    ht.write_text(text)
    got = walker(cfg).lookup(f"{docs}/a/b/x", False, "/a/b/x")
    assert isinstance(got.error, HtaccessError)
    assert got.error.path == str(ht) and fragment in str(got.error)


def test_htaccess_allowed_directive_applies_with_access_file_name(tmp_path):
    cfg, docs = setup(tmp_path, "AccessFileName .acl\n"
                                "<Directory @D>\nAllowOverride AuthConfig\n</Directory>\n")
    (tmp_path / "docs" / "a" / ".htaccess").write_text("AuthName wrong-name\n")
    (tmp_path / "docs" / "a" / ".acl").write_text("AuthName acl\nRequire all denied\n")
    got = walker(cfg).lookup(f"{docs}/a/x", False, "/a/x")
    assert name_of(got) == "acl" and got.conf.authz is not UNSET


# -- the cache ---------------------------------------------------------------------------------------
def test_lookup_is_cached_per_key(tmp_path):
    cfg, docs = setup(tmp_path, DIRS + FILES)
    sw = walker(cfg)
    a = sw.lookup(f"{docs}/a/x.txt", False, "/a/x.txt")
    assert sw.lookup(f"{docs}/a/x.txt", False, "/a/x.txt") is a
    b = sw.lookup(f"{docs}/a/x.txt", False, "/other")          # another URI: another key
    assert b is not a and b.conf == a.conf
    # two walkers (two workers) compute equal results independently
    assert walker(cfg).lookup(f"{docs}/a/x.txt", False, "/a/x.txt") == a
