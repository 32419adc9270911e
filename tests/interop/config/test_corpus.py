"""apache2 -t and httpd-py -t side by side over the corpus in corpus/: the same verdict, and for
an error the same file and line.

Each corpus file starts with ``# expect: ok``, ``# expect: error``, ``# expect: stricter (...)``
or ``# expect: lenient (...)``.  "stricter" records a place where Apache is lenient by accident
(``atoi("abc")`` is 0) and httpd-py refuses the value: Apache must say Syntax OK there and
httpd-py must report the error in that file.  "lenient" records where the issue asks httpd-py to
accept what Apache refuses (a UTF-8 byte-order mark).  For the few errors Apache reports without
a line (it exits at once, e.g. AH00543 for an unknown User), the verdict must agree and httpd-py
must name the case file.  A case is read through ``Include`` from a common base that loads the
modules Apache needs, so errors are located in the case file itself.
"""
import re
import shutil
from pathlib import Path

import pytest

from httpd_py import cli
from httpd_py.devtools import pki
from tests.support.apache import SYNTAX_ERROR_AT, minimal_conf, run_apache
from tests.support.tools import free_port, require_tool

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name for p in CORPUS.glob("*.conf"))
# The modules the cases use; a case is read through Include after the base.
MODULES = ("mpm_prefork", "ssl", "socache_shmcb", "authz_core", "mime", "dir", "alias")


def base_conf(root: Path, port: int, case: Path) -> str:
    return minimal_conf(root, MODULES, defines=(f"PORT {port}", f"ROOT {root}"),
                        pid_file="logs/httpd.pid", listen="127.0.0.1:${PORT}",
                        extra=f"DefaultRuntimeDir {root}/logs\nInclude {case}\n")


def expectation(name: str) -> str:
    first = (CORPUS / name).read_bytes().decode("utf-8-sig").splitlines()[0]
    m = re.match(r"# expect: (ok|error|stricter|lenient)", first)
    assert m, f"{name}: first line must be '# expect: ok|error|stricter|lenient'"
    return m.group(1)


def location(text: str):
    found = SYNTAX_ERROR_AT.findall(text)
    return (found[-1][1], int(found[-1][0])) if found else None


def test_corpus_size_and_balance():
    kinds = [expectation(n) for n in CASES]
    assert len(CASES) >= 60
    assert kinds.count("ok") >= 30 and kinds.count("error") + kinds.count("stricter") >= 30


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    require_tool("apache2")
    root = tmp_path_factory.mktemp("corpus-root")
    (root / "logs").mkdir()
    shutil.copytree(CORPUS / "inc", root / "inc")
    pki.make_pki(root / "pki", ("a.test",), kinds=("rsa",))
    return root, free_port()


def run_ours(root: Path, main: Path, capfd):
    rc = cli.main(["-d", str(root), "-f", str(main), "-t"])
    out, err = capfd.readouterr()
    return rc, out + err


@pytest.mark.parametrize("name", CASES)
def test_case(name, root, capfd):
    rootdir, port = root
    case = rootdir / name
    shutil.copyfile(CORPUS / name, case)
    main = rootdir / f"main-{name}"
    main.write_text(base_conf(rootdir, port, case))
    a = run_apache(rootdir, main, "-t")
    a_rc, a_out = a.returncode, a.stdout + a.stderr
    o_rc, o_out = run_ours(rootdir, main, capfd)
    assert "Traceback" not in o_out
    kind = expectation(name)
    if kind == "ok":
        assert a_rc == 0, f"Apache rejects an 'ok' case:\n{a_out}"
        assert o_rc == 0, f"httpd-py rejects what Apache accepts:\n{o_out}"
        assert "Syntax OK" in o_out
    elif kind == "error":
        assert a_rc != 0, f"Apache accepts an 'error' case:\n{a_out}"
        assert o_rc == 1, f"httpd-py accepts what Apache rejects:\n{a_out}"
        # a read-phase error inside the Include is Apache's one line with the Include chain
        # ("apache2: Syntax error on line N of main: Syntax error on line M of case: ..."),
        # any other the two AH00526 lines: the same shape as Apache's
        read_phase = a_out.startswith("apache2: Syntax error on line ")
        assert o_out.startswith("httpd-py: Syntax error on line " if read_phase
                                else "AH00526: Syntax error on line "), (a_out, o_out)
        if location(a_out) is None:
            assert "names no line" in (CORPUS / name).read_text().splitlines()[0], a_out
            assert location(o_out)[0] == str(case)
        elif "Include cycle" in o_out:
            # Apache recurses until its depth limit and prints a chain whose end depends on
            # how much of it fits its message buffer (so on the length of the tmp path): the
            # innermost location it shows is one of the cycle's Include lines, as ours is
            o_file, o_line = location(o_out)
            cycle = re.findall(r"line (\d+) of ([^:\n]+):", a_out)
            assert (str(o_line), o_file) in cycle, f"Apache:\n{a_out[:2000]}\nhttpd-py:\n{o_out}"
        else:
            assert location(o_out) == location(a_out), f"Apache:\n{a_out}\nhttpd-py:\n{o_out}"
    elif kind == "lenient":
        assert a_rc != 0 and o_rc == 0, f"Apache:\n{a_out}\nhttpd-py:\n{o_out}"
    else:
        assert a_rc == 0, f"no longer lenient in Apache? update the case:\n{a_out}"
        assert o_rc == 1 and location(o_out) is not None
        assert location(o_out)[0] == str(case), o_out
