"""The process-wide error log pointed at a temp file, so tests assert message ids."""
from __future__ import annotations

from tests.support.errlog import errlog  # noqa: F401 - the fixture, for every test here
