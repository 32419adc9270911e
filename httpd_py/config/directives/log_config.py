"""mod_log_config: LogFormat, CustomLog, TransferLog (and the access-log target ErrorLog shares)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from httpd_py import log as _log
from httpd_py.config import values
from httpd_py.config.directives.base import TAKE1, TAKE12, TAKE23, Directive
from httpd_py.config.model import LogFormatRef
from httpd_py.errors import ConfigError

def _log_format(w, args):
    nick = args[1] if len(args) > 1 else "%default"
    if len(args) > 1 and "%" in args[1] and "%" not in args[0]:
        raise ConfigError("LogFormat nickname may not contain '%'... did you swap the arguments?")
    formats = w.g.setdefault("log_formats", {})
    formats[nick] = args[0]


def _access_log_target(value: str, server_root: str) -> str:
    """CustomLog/TransferLog: "|program" kept (checked), anything else a file (even "syslog")."""
    if value.startswith("|"):
        from httpd_py import piped
        try:
            piped.parse(value)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return value
    return values.path(value, server_root)


@dataclass(frozen=True)
class ConditionalLogRef(LogFormatRef):
    """A CustomLog with its third argument: ``condition`` (log.LogCondition) decides per
    request whether the line is written (http/accesslog.py)."""
    condition: Any = None


def _custom_log(w, args):
    target = _access_log_target(args[0], w.server_root)
    fmt = args[1] if len(args) > 1 else "%h %l %u %t \"%r\" %>s %b"
    if len(args) == 3:
        w.extend("custom_logs", (ConditionalLogRef(target, fmt,
                                                   _log.LogCondition.parse(args[2])),))
        return
    w.extend("custom_logs", (LogFormatRef(target, fmt),))


def _transfer_log(w, args):
    w.extend("custom_logs", (LogFormatRef(_access_log_target(args[0], w.server_root), ""),))


def rows() -> list[Directive]:
    LOG = "mod_log_config.c"
    D = Directive
    return [
        D("LogFormat", LOG, "SV", TAKE12, "", "Define an access-log format, optionally under a "
          "nickname", _log_format, field="server.log_formats", syntax="format [nickname]"),
        D("CustomLog", LOG, "SV", TAKE23, "", "Write an access log with a format or nickname",
          _custom_log, field="custom_logs", value=(),
          syntax="file|pipe format|nickname [env=[!]var|expr=expr]"),
        D("TransferLog", LOG, "SV", TAKE1, "", "Write an access log in the last LogFormat",
          _transfer_log, field="custom_logs", syntax="file|pipe"),
    ]
