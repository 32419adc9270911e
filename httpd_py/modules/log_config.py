"""Error-log shaping per server: ``ErrorLogFormat`` and the per-vhost ErrorLog/LogLevel scope.

Values (per server; a vhost without its own inherits the main server's)::

    srv.log_config.error_log_format         log.ErrorLogFormat (compiled) or None (the default)
    srv.log_config.error_log_format.extra   (ErrorLogFormat, ...) of "request"/"connection" lines

The ``post_read`` hook hands the request to the error log (``log.error_log.enter``): while the
request lives, its lines go to its vhost's ErrorLog with its LogLevel and format.  It costs a dict
lookup when the vhost logs like the main server with a format that needs no request.

ErrorLog, LogLevel, CustomLog, TransferLog and LogFormat keep their rows in
``config/directives.py``; the targets, the formats and the piped-log manager are in
``httpd_py/log.py``, ``httpd_py/http/accesslog.py`` and ``httpd_py/piped.py``.
"""
from __future__ import annotations

from httpd_py import log
from httpd_py.config.dirconf import register
from httpd_py.errors import ConfigError
from httpd_py.http import hooks

ERROR_LOG_FORMAT = register(log.FORMAT_KEY)
ERROR_LOG_FORMAT_EXTRA = register(log.FORMAT_KEY + ".extra", "concat")


def _error_log_format(w, args):
    prefix = ""
    if len(args) == 2:
        prefix = args[0].lower()
        if prefix not in ("connection", "request"):
            raise ConfigError(f"ErrorLogFormat type must be one of request, connection")
    text = args[-1]
    try:
        fmt = log.compile_format(text, prefix) if text else None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if prefix:
        if fmt is not None:
            w.extend(ERROR_LOG_FORMAT_EXTRA, (fmt,))
    else:
        w.set(ERROR_LOG_FORMAT, fmt)


def rows():
    from httpd_py.config.directives.base import TAKE12, Directive as D
    return [
        D("ErrorLogFormat", "core.c", "SV", TAKE12, "", "The shape of error-log lines (%-items "
          "as Apache's); with 'request' or 'connection', an extra line before the first of each",
          _error_log_format, syntax="[connection|request] format"),
    ]


def _post_read(req):
    log.error_log.enter(req)
    return None


hooks.POST_READ.append(_post_read)
