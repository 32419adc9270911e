"""Model test: random trees of <Directory> sections with `Require all granted|denied` and
AuthMerging, random request paths; httpd-py's decision (SectionWalker + access.check) against a
reference written from Apache's manual:

* <Directory> sections apply shortest path first, in config order at the same depth;
* a section with Require lines replaces the inherited rules (AuthMerging Off, the default);
  with AuthMerging And/Or they combine with the inherited rules; a section with AuthMerging
  Off and no Require lines leaves no rules (mod_authz_core copies its empty config);
  a section with neither inherits;
* no Require anywhere: granted.
"""
from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from httpd_py.config import load
from httpd_py.http import access
from httpd_py.http.access import RequestFacts
from httpd_py.http.walk import SectionWalker

COMPONENTS = ("a", "b", "c")
ALL_DIRS = [p for n in (1, 2, 3) for p in itertools.product(COMPONENTS, repeat=n)]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("walkmodel")
    docs = root / "docs"
    for p in ALL_DIRS:
        (docs.joinpath(*p)).mkdir(parents=True, exist_ok=True)
    return root, str(docs)


paths = st.lists(st.sampled_from(COMPONENTS), min_size=0, max_size=3).map(tuple)
sections = st.lists(
    st.tuples(paths,
              st.sampled_from([None, "granted", "denied"]),
              st.sampled_from([None, None, "off", "and", "or"])),
    min_size=0, max_size=7)


def config_text(root, docs, secs) -> str:
    out = [f"Listen 127.0.0.1:18080", f"ServerRoot {root}", f"DocumentRoot {docs}",
           f"ErrorLog {root}/error.log"]
    for path, req, merging in secs:
        out.append(f"<Directory {os.path.join(docs, *path)}>")
        if merging is not None:
            out.append(f"AuthMerging {merging}")
        if req is not None:
            out.append(f"Require all {req}")
        out.append("</Directory>")
    return "\n".join(out) + "\n"


def reference(secs, req_dir: tuple) -> int:
    applicable = [s for s in secs if s[0] == req_dir[:len(s[0])]]
    applicable.sort(key=lambda s: len(s[0]))             # stable: config order per depth
    state = None                                         # None: no rules; else granted?
    for _path, req, merging in applicable:
        new = None if req is None else (req == "granted")
        if merging is None and new is None:
            continue                                     # inherits
        if merging in (None, "off") or (state is None and new is None):
            state = new
        elif state is not None and new is not None:
            state = (state and new) if merging == "and" else (state or new)
        elif new is not None:
            state = new
    return 0 if state is None or state else 403


def facts(filename, uri):
    return RequestFacts(method="GET", remote_ip="192.0.2.1", local_ip="192.0.2.100",
                        local_port=443, headers={"host": "h"}, uri=uri, query="", https=True,
                        protocol="HTTP/1.1", request_line=f"GET {uri} HTTP/1.1",
                        filename=filename)


def decide(root, docs, secs, targets):
    conf_path = root / "httpd.conf"
    conf_path.write_text(config_text(root, docs, secs))
    cfg = load(str(conf_path), log_warnings=False)
    sw = SectionWalker(cfg.main, cfg)
    for req_dir, is_dir in targets:
        if is_dir:
            filename, uri = os.path.join(docs, *req_dir), "/" + "/".join(req_dir)
        else:
            filename = os.path.join(docs, *req_dir, "f.html")
            uri = "/" + "/".join((*req_dir, "f.html"))
        walked = sw.lookup(filename, is_dir, uri)
        assert walked.error is None
        got = access.check(walked.conf, facts(filename, uri), None).status
        assert got == reference(secs, req_dir), (config_text(root, docs, secs), filename)
        assert sw.lookup(filename, is_dir, uri) is walked


# the shapes the random search must not miss, with the status the reference gives
@pytest.mark.parametrize("secs, req_dir, expected", [
    ([], ("a",), 0),
    ([((), "denied", None)], ("a", "b"), 403),
    ([(("a",), "granted", None), ((), "denied", None)], ("a",), 0),       # shortest first
    ([(("a",), "granted", None), (("a",), "denied", None)], ("a",), 403),  # file order
    ([((), "denied", None), (("a",), None, "off")], ("a",), 0),           # Off alone: no rules
    ([((), "denied", None), (("a",), None, None)], ("a",), 403),          # nothing: inherits
    ([((), "denied", None), (("a",), None, "or")], ("a",), 403),
    ([((), "denied", None), (("a",), "granted", "or")], ("a",), 0),
    ([((), "denied", None), (("a",), "granted", "and")], ("a",), 403),
    ([((), "granted", None), (("a",), "denied", "or")], ("a", "b"), 0),
    ([((), "granted", None), (("a",), "granted", "and"), (("a", "b"), "denied", "or")],
     ("a", "b"), 0),
    ([((), "denied", None), (("a",), "granted", "or"), (("a", "b"), "denied", "and")],
     ("a", "b"), 403),
    ([((), "denied", None), (("a",), "granted", "and")], ("b",), 403),
])
def test_reference_shapes(site, secs, req_dir, expected):
    root, docs = site
    assert reference(secs, req_dir) == expected
    decide(root, docs, secs, [(req_dir, False), (req_dir, True)])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secs=sections, data=st.data())
def test_directory_walk_matches_reference(site, secs, data):
    root, docs = site
    # request paths: random ones, and ones at or under a section's path (where it applies)
    near = [st.tuples(st.just(p), paths).map(lambda t: (t[0] + t[1])[:3]) for p, _, _ in secs]
    targets = data.draw(st.lists(st.tuples(st.one_of(paths, *near), st.booleans()),
                                 min_size=1, max_size=6), label="targets")
    decide(root, docs, secs, targets)
