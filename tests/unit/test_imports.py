"""The package's imports follow the documented direction (docs/architecture.md, and
httpd_py/devtools/imports.py): no cycle, no import against the layers.

KNOWN lists what other work in progress does against the rule today, so that this test fails on
anything new; each entry disappears when its owner fixes it (then this test asks to remove it
from KNOWN: the list only shrinks)."""
from __future__ import annotations

import subprocess
import sys

from httpd_py.devtools import imports as I

KNOWN: set[str] = set()     # none left: modules use the pipeline's pure helpers (http.lib) and
                            # stapling's read side; the config, model/vhosts and log/piped
                            # cycles are broken


def test_no_new_import_against_the_direction_and_no_new_cycle():
    found = set(I.violations())
    assert found - KNOWN == set(), "new violations (fix them, see docs/architecture.md)"


def test_known_violations_that_are_fixed_leave_the_list():
    found = set(I.violations())
    assert KNOWN - found == set(), "fixed: remove these from KNOWN"


def test_the_refresh_engines_have_no_cycle_and_mpm_stays_below_the_app():
    modules, edges = I.graph()
    pairs = {(e.src, e.dst) for e in edges}
    assert ("httpd_py.stapling.service", "httpd_py.stapling.stapler") not in pairs
    assert ("httpd_py.stapling.stapler", "httpd_py.stapling.service") not in pairs   # typing only
    for e in edges:
        if I.layer(e.src) == "mpm":
            assert I.layer(e.dst) in ("mpm", *I.BASE), e
        assert I.layer(e.dst) not in ("cli", "server") or I.layer(e.src) in ("cli", "__main__", "server", "devtools"), e


def test_the_checker_finds_a_cycle_and_a_wrong_way_import():
    e = I.Edge
    mods = {"httpd_py.stapling.service", "httpd_py.stapling.stapler", "httpd_py.mpm.master",
            "httpd_py.tls.sites"}
    edges = [e("httpd_py.stapling.service", "httpd_py.stapling.stapler", 1, True),
             e("httpd_py.stapling.stapler", "httpd_py.stapling.service", 2, False),
             e("httpd_py.mpm.master", "httpd_py.tls.sites", 3, False)]
    assert I.violations(mods, edges) == [
        "httpd_py.mpm.master -> httpd_py.tls.sites",
        "cycle: httpd_py.stapling.service <-> httpd_py.stapling.stapler"]


def test_type_checking_imports_do_not_count(tmp_path):
    p = I.ROOT / "stapling" / "service.py"
    edges = I.edges_of(p, I.graph()[0])
    assert not any(x.dst == "httpd_py.stapling.stapler" for x in edges)


def test_the_command_prints_the_graph():
    r = subprocess.run([sys.executable, "-m", "httpd_py.devtools.imports"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0
    assert "stapling    -> socache" in r.stdout and "violations:" in r.stdout
