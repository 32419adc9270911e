"""README "Use": the commands work as written, from a clone, right after scripts/demo.

The clone is a temporary directory holding what scripts/demo leaves behind: ``.venv`` (a link
to this one), the shipped ``conf/``, and ``demo/`` with the demo PKI made by the same command
the demo runs.  Every README line runs as written with the clone as the working directory; the
commands that bind also get ``-D DEMO_PORT=<free port>`` (the demo's own knob), so the test does
not depend on 8443 being free.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.tools import free_port, port_accepting, wait_until

REPO = Path(__file__).resolve().parents[3]


def readme_use_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Use\n.*?```sh\n(.*?)```", text, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


@pytest.fixture
def clone():
    d = Path(tempfile.mkdtemp(prefix="httpd-py-readme-"))
    d.chmod(0o755)                      # workers run as nobody when the tests run as root
    (d / ".venv").symlink_to(REPO / ".venv")
    (d / "conf").symlink_to(REPO / "conf")
    for sub in ("run", "logs"):
        (d / "demo" / sub).mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "httpd_py.devtools.pki", "--ocsp-url",
                    "http://127.0.0.1:8888/", str(d / "demo" / "pki"), "a.test", "b.test"],
                   check=True, capture_output=True, cwd=REPO)
    yield d
    pid = d / "demo" / "run" / "httpd.pid"
    if pid.exists():                    # a failed test: stop the server it started, by its pid
        try:
            os.kill(int(pid.read_text().split()[0]), 15)
        except (ValueError, ProcessLookupError):
            pass
    subprocess.run(["rm", "-rf", str(d)], check=False)


def test_readme_use_commands_work_as_written_after_the_demo(clone):
    cmds = readme_use_commands()
    assert all(c.startswith(".venv/bin/httpd-py ") for c in cmds), cmds
    assert (clone / ".venv" / "bin" / "httpd-py").exists()
    port = free_port()
    foreground = None
    for cmd in cmds:
        argv = shlex.split(cmd)
        binds = "start" in argv or "-DFOREGROUND" in argv
        if binds:
            argv += ["-D", f"DEMO_PORT={port}"]
        if "-DFOREGROUND" in argv:
            foreground = argv
            continue
        r = subprocess.run(argv, cwd=clone, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
        if argv[-1] == "-t":
            assert "Syntax OK" in r.stderr
        elif argv[-1] == "-S":
            assert "namevhost a.test" in r.stdout and "namevhost b.test" in r.stdout
        elif "start" in argv:
            assert port_accepting(port)
        elif "--json" in argv:
            report = json.loads(r.stdout)
            assert len(report["certificates"]) == 4
        elif argv[-1] == "stop":
            wait_until(lambda: not port_accepting(port), 30, what="the server to stop")
    assert foreground is not None
    p = subprocess.Popen(foreground, cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: port_accepting(port) or p.poll() is not None, 60, what="-DFOREGROUND")
        assert p.poll() is None, p.communicate()
    finally:
        p.send_signal(2)                                   # Ctrl-C
        out, err = p.communicate(timeout=30)
    assert p.returncode in (0, 130), err
