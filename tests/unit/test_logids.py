"""The log-id registry (httpd_py/logids.py) against the code: every id unique, in a range,
documented in docs/log-ids.md and used; every id the package uses registered; each id used only
at the sites its entry lists and under its module (one id, one message)."""
import ast
import pickle
import re
from pathlib import Path

import pytest

from httpd_py import logids
from httpd_py.devtools import logsites

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "log-ids.md"

#: ids whose entry still covers two different messages, each in a file its owner is editing:
#: id -> (the site that says something else, what to do).  The test fails once the site is gone,
#: so the entry is removed with the fix.
KNOWN_SHARED = {
}


@pytest.fixture(scope="module")
def found():
    return logsites.uses()


def test_log_ids_md_is_current():
    assert DOC.read_text() == logids.render(), (
        "docs/log-ids.md is stale: run `python -m httpd_py.logids > docs/log-ids.md`")


def test_each_id_and_name_is_registered_once():
    """The source, not the dict (a dict keeps only the last of two equal keys or names)."""
    tree = ast.parse(Path(logids.__file__).read_text())
    names, ids = [], []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                getattr(node.value.func, "id", None) == "LogId":
            names.append(node.targets[0].id)
            ids.append(node.value.args[0].value)
    assert len(ids) == len(logids.ALL) >= 150
    assert sorted(set(names)) == sorted(names), [n for n in names if names.count(n) > 1]
    assert sorted(set(ids)) == sorted(ids), [i for i in ids if ids.count(i) > 1]
    assert not set(ids) & set(logids.RETIRED), "a retired id registered again"


def test_entries_are_complete_and_in_a_range():
    ranges = sorted(logids.RANGES)
    for a, b in zip(ranges, ranges[1:]):
        assert a[1] < b[0], f"ranges {a[:2]} and {b[:2]} overlap"
    for ident, entry in logids.ALL.items():
        assert logids.range_of(ident), f"{ident} is in no range of logids.RANGES"
        assert entry.name and entry.module and entry.sites, ident
        assert entry.meaning and "\n" not in entry.meaning and len(entry.meaning) <= 120, ident
        assert entry.ah == "" or re.fullmatch(r"AH\d{5}", entry.ah), ident
        assert len(set(entry.sites)) == len(entry.sites), f"{ident}: a site listed twice"
    for ident in logids.RETIRED:
        assert logids.range_of(ident) or ident < logids.RANGES[0][0], ident


def test_every_id_is_documented():
    text = DOC.read_text()
    for ident, entry in logids.ALL.items():
        assert f"| {ident} | `{entry.name}` |" in text, ident
    for ident in logids.RETIRED:
        assert f"| {ident} |" in text, ident


def test_code_and_registry_agree(found):
    """Every id used is registered, every registered id is used, at the sites its entry lists,
    under its module.  `python -m httpd_py.devtools.logsites --check` prints the same."""
    problems = logsites.differences(found)
    assert not problems, "\n".join(problems)


def test_every_id_the_source_mentions_is_registered():
    """Docstrings and comments too: a stale or mistyped id there misleads the next reader."""
    unknown = {i: where for i, where in logsites.mentions().items() if i not in logids.ALL}
    assert not unknown, unknown          # a retired id too: the registry alone names those


def test_known_shared_ids_are_still_shared():
    for ident, (site, _why) in KNOWN_SHARED.items():
        assert site in logids.ALL[ident].sites, (
            f"{ident} no longer used at {site}: remove it from KNOWN_SHARED")


def test_an_id_is_a_string():
    e = logids.HTTP_UNEXPECTED
    assert e == "HP03001" and f"{e}: x" == "HP03001: x" and {"HP03001": 1}[e] == 1
    assert e.module == "http" and e.name == "HTTP_UNEXPECTED" and logids.by_id("HP03001") is e
    assert pickle.loads(pickle.dumps(e)) is e
    with pytest.raises(AttributeError):
        e.meaning = "something else"
    with pytest.raises(ValueError):
        logids.LogId("HP123", "core", "too short")


def test_the_checker_sees_every_kind_of_use(tmp_path):
    """A literal, an f-string prefix, a registry constant (imported or as an attribute), a
    module-level alias; docstrings and alias definitions are not uses; the module argument is
    resolved from a literal or a module-level constant."""
    pkg = tmp_path / "httpd_py"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "sub" / "m.py").write_text(
        '"""Logs HP09999 (a docstring mention)."""\n'
        "from httpd_py import logids\n"
        "from httpd_py.logids import MPM_RESUMING as READY\n"
        'MOD = "mpm_prefork"\n'
        'ALIAS = "HP03001"\n'
        "def f(log):\n"
        '    log.notice(MOD, READY, "x")\n'
        '    log.error("http", ALIAS, "y")\n'
        '    log.log("ssl", "debug", logids.SSL_CONTEXT_BUILT, "z")\n'
        "class C:\n"
        "    def g(self):\n"
        '        raise RuntimeError(f"HP01013: could not bind {self}")\n')
    got = {(u.ident, u.site, u.module) for u in logsites.uses(pkg)}
    assert got == {("HP01001", "sub/m.py:f", "mpm_prefork"), ("HP03001", "sub/m.py:f", "http"),
                   ("HP02010", "sub/m.py:f", "ssl"), ("HP01013", "sub/m.py:C.g", None)}
    assert set(logsites.mentions(pkg)) == {"HP09999", "HP03001", "HP01013"}
