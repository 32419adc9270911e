"""docs/interop-stapling.md is generated from the pinned cases (httpd_py/devtools/
interop_stapling.py): it must be current, and the pins consistent (every observation labelled,
every difference explained)."""
from pathlib import Path

from httpd_py.devtools import interop_stapling

DOC = Path(__file__).resolve().parents[3] / "docs" / "interop-stapling.md"


def test_pins_are_consistent():
    assert interop_stapling.check_cases() == []


def test_interop_stapling_md_is_current():
    assert DOC.read_text() == interop_stapling.render(), (
        "stale: python -m httpd_py.devtools.interop_stapling > docs/interop-stapling.md")


def test_interop_md_links_the_generated_page():
    text = (DOC.parent / "interop.md").read_text()
    assert "(interop-stapling.md)" in text and "interop-table:begin" not in text
