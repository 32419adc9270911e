"""docs/directives.md is generated from the directive table; this fails when it is stale."""
from pathlib import Path

from httpd_py.config import directives, docs, modules

DOC = Path(__file__).resolve().parents[3] / "docs" / "directives.md"


def test_directives_md_is_current():
    assert DOC.read_text() == docs.render(), (
        "docs/directives.md is stale: run `python -m httpd_py.config.docs > docs/directives.md`")


def test_every_mod_ssl_directive_has_a_row():
    apache_ssl = {n for n, (_, src, _) in modules.apache_directives().items() if src == "mod_ssl.c"}
    ours = {n for n, d in directives.TABLE.items() if d.module == "mod_ssl.c" and d.handler}
    assert len(apache_ssl) >= 70 and apache_ssl <= ours
    for name in ("sslstaplingrefresh", "sslstaplingrenewwindow", "sslstaplingmuststaple",
                 "sslstaplingstoredir"):
        assert directives.TABLE[name].ext


def test_rows_are_complete():
    for d in directives.implemented_rows():
        assert d.doc and d.where in ("S", "SV", "A", "D") and d.args in directives.ARG_SYNTAX
        assert d.read_time or d.is_section or d.handler is not None or not d.used, d.name
