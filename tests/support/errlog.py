"""The process-wide error log pointed at a temp file, so tests assert message ids.

A conftest offers the fixture with ``from tests.support.errlog import errlog  # noqa: F401``; the
descriptor is inherited by forked children, so their lines land in the same file.
"""
from __future__ import annotations

import os

import pytest

from httpd_py import log


class ErrLog:
    def __init__(self, path: str):
        self.path = path

    def text(self) -> str:
        with open(self.path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def ids(self) -> list[str]:
        return [w.rstrip(":") for w in self.text().split()
                if w.startswith("HP") and w.endswith(":")]


@pytest.fixture
def errlog(tmp_path):
    """The error log at debug into ``tmp_path/error.log`` for the test, then back as it was."""
    path = str(tmp_path / "error.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    old = (log.error_log.fd, log.error_log.level, dict(log.error_log.module_levels))
    log.error_log.fd, log.error_log.level = fd, log.LEVEL_RANK["debug"]
    try:
        yield ErrLog(path)
    finally:
        log.error_log.fd, log.error_log.level, log.error_log.module_levels = old
        os.close(fd)
