"""ErrorLog: Apache-shaped lines with stable message ids and per-module LogLevel.

A line looks like Apache's::

    [Thu Nov 26 14:00:00.123456 2026] [ssl:warn] [pid 123] HP02001: text

Message ids are ``HP`` plus five digits and never change meaning once shipped; tests assert on
ids, not wording.  Id ranges: 00xxx core/cli, 01xxx mpm, 02xxx ssl/tls, 03xxx http, 04xxx
stapling, 05xxx socache and mutex.

The process-wide logger is ``log.error_log``; the master configures it (``configure``) before
forking, so workers inherit the open file descriptor.  Writes are single ``os.write`` calls on an
O_APPEND descriptor, so lines from many processes never interleave.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Mapping

LEVELS = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
          "trace1", "trace2", "trace3", "trace4", "trace5", "trace6", "trace7", "trace8")
LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}


def format_time(now: float) -> str:
    """Apache's error-log timestamp: ``Thu Nov 26 14:00:00.123456 2026`` (local time)."""
    t = time.localtime(now)
    usec = int((now - int(now)) * 1_000_000)
    return time.strftime("%a %b %d %H:%M:%S", t) + f".{usec:06d} " + time.strftime("%Y", t)


def format_line(module: str, level: str, msgid: str, text: str, *, now: float | None = None,
                pid: int | None = None, client: str | None = None) -> str:
    now = time.time() if now is None else now
    pid = os.getpid() if pid is None else pid
    client_part = f" [client {client}]" if client else ""
    return f"[{format_time(now)}] [{module}:{level}] [pid {pid}]{client_part} {msgid}: {text}\n"


class ErrorLog:
    """Writes error-log lines to one descriptor, filtered by LogLevel (global and per module)."""

    def __init__(self, fd: int | None = None, level: str = "warn",
                 module_levels: Mapping[str, str] | None = None):
        self.fd = sys.stderr.fileno() if fd is None else fd
        self.level = LEVEL_RANK[level]
        self.module_levels = {m: LEVEL_RANK[l] for m, l in (module_levels or {}).items()}

    def enabled(self, module: str, level: str) -> bool:
        # As Apache's log_error_core: notice lines (start, restart, stop) are always written.
        return level == "notice" or LEVEL_RANK[level] <= self.module_levels.get(module, self.level)

    def log(self, module: str, level: str, msgid: str, text: str, *, client: str | None = None) -> None:
        if not self.enabled(module, level):
            return
        line = format_line(module, level, msgid, text, client=client)
        try:
            os.write(self.fd, line.encode("utf-8", "backslashreplace"))
        except OSError:
            pass  # a full disk or closed log must never take a request or handshake down

    # Shorthands, so call sites read like Apache's ap_log_error(APLOG_MARK, APLOG_WARNING, ...)
    def emerg(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "emerg", msgid, text, **kw)
    def error(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "error", msgid, text, **kw)
    def warn(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "warn", msgid, text, **kw)
    def notice(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "notice", msgid, text, **kw)
    def info(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "info", msgid, text, **kw)
    def debug(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "debug", msgid, text, **kw)


error_log = ErrorLog()


def configure(fd: int | None, level: str = "warn", module_levels: Mapping[str, str] | None = None) -> ErrorLog:
    """Point the process-wide error log at ``fd`` (None: stderr) with the given LogLevel."""
    global error_log
    error_log.fd = sys.stderr.fileno() if fd is None else fd
    error_log.level = LEVEL_RANK[level]
    error_log.module_levels = {m: LEVEL_RANK[l] for m, l in (module_levels or {}).items()}
    return error_log
