"""A CI-sized soak with faults (scripts/soak, scripts/soaklib.py): three real servers sharing one
redis-server for 2 minutes under client load, while the seeded schedule (seed 3 gives one or
more of every fault in 2 minutes) SIGKILLs workers and the stapler helper, restarts (USR1, HUP),
restarts redis, stops it for 15 s, flaps the responder (tryLater, hang) and fills the staple
store's tmpfs (root only).  docs/reliability.md has the long runs."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[3]
MINUTES = 2
SEED = 3


@pytest.mark.slow
@pytest.mark.timeout(MINUTES * 60 + 180)
def test_two_minute_soak_with_faults(tmp_path):
    require_tool("redis-server")
    report = tmp_path / "soak.json"
    p = subprocess.run([str(ROOT / "scripts" / "soak"), "--minutes", str(MINUTES), "--servers", "3",
                        "--seed", str(SEED), "--report", str(report)],
                       cwd=ROOT, capture_output=True, text=True, timeout=MINUTES * 60 + 150)
    assert report.exists(), f"no report (exit {p.returncode}):\n{p.stdout}\n{p.stderr}"
    rep = json.loads(report.read_text())
    summary = p.stdout
    faults = rep["faults"]["counts"]
    expected = {"kill-worker", "kill-stapler", "graceful", "restart", "redis-restart",
                "redis-stop", "responder tryLater", "responder hang"}
    if os.geteuid() == 0 and rep["run"]["store_tmpfs"]:
        expected.add("disk-fill")
    assert expected <= set(faults), (faults, summary)
    assert not rep["faults"]["problems"], summary
    assert rep["requests"]["handshakes"] > 1000, summary      # the load really ran
    assert rep["staples"]["invalid"] == 0, summary
    assert rep["failures"]["unexplained"] == 0, summary
    assert not rep["logs"]["traceback"], summary
    assert all(r["fds"]["flat"] for r in rep["resources"]), summary
    assert rep["verdict"]["pass"] and p.returncode == 0, summary
