"""The process-wide error log pointed at a temp file, so tests assert message ids."""
from __future__ import annotations

import os

import pytest

from httpd_py import log


class ErrLog:
    def __init__(self, path: str):
        self.path = path

    def ids(self) -> list[str]:
        with open(self.path, encoding="utf-8", errors="replace") as f:
            return [w.rstrip(":") for w in f.read().split()
                    if w.startswith("HP") and w.endswith(":")]


@pytest.fixture
def errlog(tmp_path):
    path = str(tmp_path / "error.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    old = (log.error_log.fd, log.error_log.level, dict(log.error_log.module_levels))
    log.error_log.fd, log.error_log.level = fd, log.LEVEL_RANK["debug"]
    try:
        yield ErrLog(path)
    finally:
        log.error_log.fd, log.error_log.level, log.error_log.module_levels = old
        os.close(fd)
