"""ErrorLog: Apache-shaped lines with stable message ids, per-module LogLevel, per-vhost error
logs, ErrorLogFormat, piped and syslog targets.

A line looks like Apache's::

    [Thu Nov 26 14:00:00.123456 2026] [ssl:warn] [pid 123] HP02001: text

Message ids are ``HP`` plus five digits and never change meaning once shipped; tests assert on
ids, not wording.  Every id is a constant of ``httpd_py/logids.py`` (its module, meaning and
sites; ``RANGES`` gives each module its block), listed in docs/log-ids.md.

The process-wide logger is ``log.error_log``; the master configures it before forking, so
workers inherit the open descriptor.  Writes are single ``os.write`` calls on an O_APPEND
descriptor (or a pipe, or a datagram socket), so lines from many processes never interleave.

Targets (``open_target``, in the master, as root, before fork)::

    /path/file            O_APPEND file (relative paths are made absolute by the config)
    |program, ||program   piped log: the program's stdin (httpd_py/piped.py: the master
    |$shell command       restarts it when it dies; workers never notice)
    syslog[:facility[:tag]]   RFC 3164 datagrams to the local syslog socket (/dev/log, or the
                          path in $HTTPD_PY_SYSLOG_SOCKET), facility local7 by default, tag
                          "httpd-py"; the time is left to syslog, as Apache does

Per-vhost logs.  ``open_server_logs(cfg)`` opens the main ErrorLog and every vhost's own one,
and points ``error_log`` at the main one with the main server's LogLevel and ErrorLogFormat.
When a request's vhost is known (the ``post_read`` hook of ``modules/log_config.py`` calls
``error_log.enter(req)``), the lines logged while that request object lives go to the vhost's
ErrorLog (or the main one when it has none) filtered by the vhost's LogLevel (global and
per-module, ``LogLevel info ssl:warn``) and shaped by its ErrorLogFormat; the request also
gives ErrorLogFormat its ``%a %{Referer}i %{VAR}e %V`` items.  The scope ends by itself when
the request object is freed (a weak reference), at ``leave()``, or at the next request's
``enter``; a line that names another client (``client=``: a handshake or a bad request head of
another connection, read between requests) goes to the main log.

ErrorLogFormat (``compile_format``): ``%% %a %{c}a %A %{VAR}e %E %F %{Name}i %k %l %L %m %M
%{note}n %P %T %{g}T %t %{u}t %{cu}t %{c}t %v %V``, ``\\ `` (a space inside a field) and ``% ``
(a field boundary that prints nothing); a plain space also separates fields.  Modifiers: ``-``
prints "-" for an empty item, ``+`` drops the whole line when the item is empty, a level number
(``%7F``) shows the item only for messages at that level or more verbose.  A field (the text
between two separators) with an empty item is left out entirely, separator included.
"""
from __future__ import annotations

import os
import socket
import struct
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Mapping

LEVELS = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
          "trace1", "trace2", "trace3", "trace4", "trace5", "trace6", "trace7", "trace8")
LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}

#: the per-server ErrorLogFormat value (modules/log_config.py registers it)
FORMAT_KEY = "srv.log_config.error_log_format"
#: where syslog datagrams go (the environment variable overrides the default)
SYSLOG_SOCKET_ENV = "HTTPD_PY_SYSLOG_SOCKET"
DEFAULT_SYSLOG_SOCKET = "/dev/log"
SYSLOG_TAG = "httpd-py"
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
#: LogLevel -> syslog severity (trace levels are debug)
SEVERITY = {name: min(i, 7) for i, name in enumerate(LEVELS)}


def format_time(now: float) -> str:
    """Apache's error-log timestamp: ``Thu Nov 26 14:00:00.123456 2026`` (local time)."""
    t = time.localtime(now)
    usec = int((now - int(now)) * 1_000_000)
    return time.strftime("%a %b %d %H:%M:%S", t) + f".{usec:06d} " + time.strftime("%Y", t)


def format_line(module: str, level: str, msgid: str, text: str, *, now: float | None = None,
                pid: int | None = None, client: str | None = None, with_time: bool = True) -> str:
    """The default line (Apache's default ErrorLogFormat; without the time for syslog)."""
    pid = os.getpid() if pid is None else pid
    client_part = f" [client {client}]" if client else ""
    head = f"[{format_time(time.time() if now is None else now)}] " if with_time else ""
    return f"{head}[{module}:{level}] [pid {pid}]{client_part} {msgid}: {text}\n"


# ---- ErrorLogFormat ---------------------------------------------------------------------------

_CODES = frozenset("aAeEFiklLmMnPTtvV%")


@dataclass(frozen=True)
class FormatItem:
    """A literal (``code`` None) or a ``%`` item of an ErrorLogFormat."""
    text: str = ""                       # the literal text
    code: str | None = None
    arg: str | None = None               # the {braced} argument
    hyphen: bool = False                 # "-": print "-" when empty
    required: bool = False               # "+": drop the line when empty
    min_level: int = 0                   # only for messages at this level number or above


@dataclass(frozen=True)
class ErrorLogFormat:
    """A compiled ErrorLogFormat: fields of items, each field with the separator before it."""
    text: str
    fields: tuple[tuple[str, tuple[FormatItem, ...]], ...]
    uses_request: bool = False           # items a request gives (%a %A %e %i %k %n %V)
    uses_caller: bool = False            # %F
    prefix: str = ""                     # "" (every line), "request" or "connection"


def compile_format(text: str, prefix: str = "") -> ErrorLogFormat:
    """Parse an ErrorLogFormat string; ValueError with Apache's kind of message when bad."""
    fields: list[tuple[str, tuple[FormatItem, ...]]] = []
    sep, items, lit = "", [], []
    uses_request = uses_caller = False

    def end_field(next_sep: str) -> None:
        nonlocal sep, items
        if lit:
            items.append(FormatItem("".join(lit)))
            lit.clear()
        if items:
            fields.append((sep, tuple(items)))
            sep = next_sep
        else:
            sep = sep + next_sep if fields else ""
        items = []

    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            lit.append({"n": "\n", "t": "\t"}.get(nxt, nxt))     # "\ " is a plain space
            i += 2
            continue
        if ch == " ":
            end_field(" ")
            i += 1
            continue
        if ch != "%":
            lit.append(ch)
            i += 1
            continue
        i += 1
        if i < n and text[i] == " ":         # "% ": a field boundary printing nothing
            end_field("")
            i += 1
            continue
        hyphen = required = False
        level = ""
        while i < n and text[i] in "-+0123456789":
            if text[i] == "-":
                hyphen = True
            elif text[i] == "+":
                required = True
            else:
                level += text[i]
            i += 1
        arg = None
        if i < n and text[i] == "{":
            end = text.find("}", i)
            if end < 0:
                raise ValueError(f"ErrorLogFormat: missing '}}' in '{text[i:]}'")
            arg = text[i + 1:end]
            i = end + 1
        if i >= n:
            raise ValueError("ErrorLogFormat: format ends with '%'")
        code = text[i]
        i += 1
        if code not in _CODES:
            raise ValueError(f"ErrorLogFormat: unknown format item '%{code}'")
        if code == "%":
            lit.append("%")
            continue
        if code in "aAeiknV":
            uses_request = True
        if code == "F":
            uses_caller = True
        if lit:
            items.append(FormatItem("".join(lit)))
            lit.clear()
        min_level = int(level) if level else 0
        if min_level > LEVEL_RANK["trace8"]:
            raise ValueError(f"ErrorLogFormat: log level {min_level} out of range")
        items.append(FormatItem("", code, arg, hyphen, required, min_level))
    end_field("")
    return ErrorLogFormat(text, tuple(fields), uses_request, uses_caller, prefix)


@dataclass
class _Line:
    """What one line may show."""
    module: str
    level: str
    msgid: str
    text: str
    client: str | None
    req: Any                             # a hooks.Request, or None
    now: float = field(default_factory=time.time)
    caller: str = ""


def _ctime(now: float, usec: bool, compact: bool) -> str:
    t = time.localtime(now)
    frac = f".{int((now - int(now)) * 1_000_000):06d}" if usec else ""
    if compact:
        return time.strftime("%Y-%m-%d %H:%M:%S", t) + frac
    return time.strftime("%a %b %d %H:%M:%S", t) + frac + time.strftime(" %Y", t)


def _item(it: FormatItem, ln: _Line) -> str:
    c, arg, req = it.code, it.arg, ln.req
    if c == "M":
        return f"{ln.msgid}: {ln.text}" if ln.msgid else ln.text
    if c == "l":
        return ln.level
    if c == "m":
        return ln.module
    if c == "P":
        return str(os.getpid())
    if c == "T":
        return str(threading.get_native_id())
    if c == "t":
        flags = arg or ""
        return _ctime(ln.now, "u" in flags, "c" in flags)
    if c == "a":
        if ln.client:
            return ln.client
        return f"{req.client_ip}:{req.client_port}" if req is not None else ""
    if c == "F":
        return ln.caller
    if req is None:
        return ""                        # %A %e %i %k %n %v %V %E %L outside a request
    if c == "A":
        return f"{req.local_ip}:{req.local_port}"
    if c == "e":
        return str(req.env.get(arg or "", "")) if getattr(req, "env", None) else ""
    if c == "i":
        return str(req.headers.get((arg or "").lower(), "")) if req.headers else ""
    if c == "n":
        return str(req.notes.get(arg or "", "")) if getattr(req, "notes", None) else ""
    if c == "v":
        return getattr(req.vhost, "server_name", "") or ""
    if c == "V":
        return req.hostname or getattr(req.vhost, "server_name", "") or ""
    return ""                            # %E (no APR status), %k, %L (no log ids)


def render(fmt: ErrorLogFormat, ln: _Line) -> str | None:
    """One line by ``fmt`` (with its newline), or None when a ``+`` item is empty."""
    rank = LEVEL_RANK[ln.level]
    out: list[str] = []
    for sep, items in fmt.fields:
        parts = []
        for it in items:
            if it.code is None:
                parts.append(it.text)
                continue
            if it.min_level and rank < it.min_level:
                parts = None
                break
            value = _item(it, ln)
            if not value:
                if it.required:
                    return None
                if it.hyphen:
                    value = "-"
                else:
                    parts = None
                    break
            parts.append(value)
        if parts is None:
            continue
        if out:
            out.append(sep)
        out.extend(parts)
    return "".join(out) + "\n"


# ---- CustomLog conditions -----------------------------------------------------------------------

@dataclass(frozen=True)
class LogCondition:
    """CustomLog's third argument, parsed at config time: ``env=VAR`` (logged when the request's
    environment has VAR, even empty), ``env=!VAR`` (when it has not), ``expr=EXPRESSION`` (when
    the ap_expr holds; httpd_py/expr.py).  http/accesslog.py asks ``wants(env, ctx)``."""
    text: str
    var: str | None = None
    negate: bool = False
    expr: Any = None                     # expr.Condition

    @classmethod
    def parse(cls, text: str) -> "LogCondition":
        from httpd_py.errors import ConfigError
        low = text[:5].lower()
        if low.startswith("env="):
            var = text[4:]
            negate = var.startswith("!")
            var = var[1:] if negate else var
            if not var:
                raise ConfigError("missing environment variable name")
            return cls(text, var=var, negate=negate)
        if low == "expr=":
            if not text[5:]:
                raise ConfigError("missing condition")
            from httpd_py import expr
            try:
                return cls(text, expr=expr.parse_condition(text[5:]))
            except ConfigError as e:
                raise ConfigError(f"Cannot parse condition clause: {e.msg}") from None
        raise ConfigError("error in condition clause")

    def wants(self, env: Mapping, ctx) -> bool:
        if self.var is not None:
            return (self.var in env) != self.negate
        return self.expr.evaluate(ctx)


# ---- targets ------------------------------------------------------------------------------------

def is_syslog(target: str) -> bool:
    t = target.lower()
    return t == "syslog" or t.startswith("syslog:")


def parse_syslog(target: str) -> tuple[int, str]:
    """``syslog[:facility[:tag]]`` -> (facility number, tag); ValueError for an unknown
    facility (Apache refuses it at start-up: AH10036)."""
    parts = target.split(":", 2)
    name = parts[1].lower() if len(parts) > 1 and parts[1] else "local7"
    if name not in FACILITIES:
        raise ValueError(f"unknown syslog facility '{parts[1]}' (one of "
                         f"{', '.join(FACILITIES)})")
    tag = parts[2] if len(parts) > 2 and parts[2] else SYSLOG_TAG
    return FACILITIES[name], tag


class Syslog:
    """A datagram socket to the local syslog daemon, shared by every process (one datagram a
    line: atomic).  Sends are bounded (1 s); a daemon that is gone or restarted is looked for
    again at most once a second, and lines meanwhile are dropped, never raised."""

    def __init__(self, facility: int, tag: str = SYSLOG_TAG, path: str | None = None):
        self.facility, self.tag = facility, tag
        self.path = path or os.environ.get(SYSLOG_SOCKET_ENV) or DEFAULT_SYSLOG_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 1, 0))
        self.fd = self.sock.fileno()
        self.ino = os.fstat(self.fd).st_ino
        self._retry_at = 0.0
        self._connect()

    def _connect(self) -> bool:
        try:
            self.sock.connect(self.path)
            return True
        except OSError:
            self._retry_at = time.monotonic() + 1.0
            return False

    def send(self, severity: int, message: str) -> None:
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
        data = (f"<{self.facility * 8 + severity}>{stamp} {self.tag}[{os.getpid()}]: "
                f"{message.rstrip(chr(10))}").encode("utf-8", "backslashreplace")
        try:
            self.sock.send(data)
            return
        except OSError:
            if time.monotonic() < self._retry_at:
                return
        if self._connect():                  # the daemon restarted: its socket is new
            try:
                self.sock.send(data)
            except OSError:
                self._retry_at = time.monotonic() + 1.0

    def close(self) -> None:
        _SYSLOG.pop(self.fd, None)
        self.sock.close()


_SYSLOG: dict[int, Syslog] = {}
_TARGETS: dict[str, int | None] = {}       # target text -> descriptor, of the current generation


def _syslog_of(fd: int | None) -> Syslog | None:
    s = _SYSLOG.get(fd) if fd is not None else None
    if s is None:
        return None
    try:
        return s if os.fstat(fd).st_ino == s.ino else None
    except OSError:
        return None


def open_target(target: str) -> int | None:
    """Open an ErrorLog target (see the module docstring); None means stderr.

    In the master, before fork.  Raises ``StartupError`` with Apache's wording.
    """
    from httpd_py.errors import StartupError
    if not target or target in ("/dev/stderr", "stderr"):
        return None
    if target.startswith("|"):
        from httpd_py import piped
        try:
            return piped.open_handle(target)
        except (OSError, ValueError) as e:
            why = f"({e.errno}){e.strerror}: " if isinstance(e, OSError) and e.errno else f"{e}: "
            raise StartupError(f"{why}Couldn't start ErrorLog process '{target[1:].lstrip('|$')}'."
                               "\nUnable to open logs") from None
    if is_syslog(target):
        try:
            facility, tag = parse_syslog(target)
        except ValueError as e:
            raise StartupError(f"could not open syslog error log: {e}.\nUnable to open logs") \
                from None
        s = Syslog(facility, tag)
        _SYSLOG[s.fd] = s
        return s.fd
    try:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        return os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise StartupError(f"({e.errno}){e.strerror}: could not open error log file {target}.\n"
                           "Unable to open logs") from None


def close_target(fd: int | None) -> None:
    if fd is None:
        return
    s = _SYSLOG.get(fd)
    if s is not None:
        s.close()
        return
    try:
        os.close(fd)
    except OSError:
        pass


# ---- the error log ------------------------------------------------------------------------------

class ErrorLog:
    """Writes error-log lines to one target, filtered by LogLevel (global and per module)."""

    def __init__(self, fd: int | None = None, level: str = "warn",
                 module_levels: Mapping[str, str] | None = None,
                 fmt: ErrorLogFormat | None = None, extra: tuple = ()):
        self.fd = sys.stderr.fileno() if fd is None else fd
        self.level = LEVEL_RANK[level]
        self.module_levels = {m: LEVEL_RANK[l] for m, l in (module_levels or {}).items()}
        self.fmt = fmt
        self.extra = extra                   # ErrorLogFormat request/connection lines
        self.target: str | None = None       # the ErrorLog text, when open_server_logs set it
        self._scope: tuple | None = None     # (weakref to the request, its vhost's ErrorLog)
        self._vhosts: dict[int, tuple] = {}  # id(vhost) -> (vhost, its ErrorLog or self)
        self._last_conn: tuple | None = None
        self._lock = threading.Lock()

    # fd: setting it (also by plain assignment, as tests and the master do) notices a syslog
    # socket
    @property
    def fd(self) -> int:
        return self._fd

    @fd.setter
    def fd(self, value: int) -> None:
        self._fd = value
        self._syslog = _syslog_of(value)

    def enabled(self, module: str, level: str) -> bool:
        target = self._target()[0] if self._scope is not None else self
        # As Apache's log_error_core: notice lines (start, restart, stop) are always written.
        return level == "notice" or LEVEL_RANK[level] <= target.module_levels.get(module, target.level)

    def _target(self) -> tuple["ErrorLog", Any, Any]:
        scope = self._scope
        if scope is None:
            return self, None, None
        req = scope[0]()
        if req is None:                      # the request is over
            self._scope = None
            return self, None, None
        return scope[1], req, scope[2]

    def log(self, module: str, level: str, msgid: str, text: str, *, client: str | None = None) -> None:
        target, req, state = self._target() if self._scope is not None else (self, None, None)
        if client is not None and req is not None and client != self._scope[3]:
            target, req, state = self, None, None    # another connection's line (see enter)
        if not (level == "notice"
                or LEVEL_RANK[level] <= target.module_levels.get(module, target.level)):
            return
        fmt = target.fmt
        try:
            if fmt is None:
                line = format_line(module, level, msgid, text, client=client,
                                   with_time=target._syslog is None)
            else:
                ln = _Line(module, level, msgid, text, client, req)
                if fmt.uses_caller:
                    ln.caller = _caller()
                line = render(fmt, ln)
                if line is None:
                    return
                if target.extra and req is not None:
                    line = self._extra_lines(target.extra, ln, req, state) + line
        except Exception as e:                                # noqa: BLE001 - never raise
            line = format_line(module, level, msgid, f"{text} (ErrorLogFormat failed: {e})",
                               client=client)
        target._write(SEVERITY[level], line)

    def _extra_lines(self, extra, ln: _Line, req, state: list) -> str:
        """ErrorLogFormat request/connection lines: once before the first line of a request
        (of a connection: the client address and port and the local port)."""
        out = []
        for f in extra:
            if f.prefix == "request":
                if state[0]:
                    continue
                state[0] = True
            else:
                conn = (req.client_ip, req.client_port, req.local_port)
                if self._last_conn == conn:
                    continue
                self._last_conn = conn
            rendered = render(f, ln)
            if rendered:
                out.append(rendered)
        return "".join(out)

    def _write(self, severity: int, line: str) -> None:
        if self._syslog is not None:
            for part in line.splitlines():
                self._syslog.send(severity, part)
            return
        try:
            os.write(self._fd, line.encode("utf-8", "backslashreplace"))
        except OSError:
            pass  # a full disk or closed log must never take a request or handshake down

    # --- per-vhost scope ----------------------------------------------------------------------
    def enter(self, req) -> None:
        """``req``'s vhost is known: until ``req`` is freed (or ``leave``, or the next request's
        ``enter``), lines go to that vhost's ErrorLog with its LogLevel and ErrorLogFormat (and
        ErrorLogFormat sees the request).  A line naming another client (``client=`` of another
        connection: a handshake or a bad head read between requests) goes to the main log."""
        v = req.vhost
        got = self._vhosts.get(id(v))
        lg = got[1] if got is not None and got[0] is v else self._vhost_logger(v, req.server)
        if lg is self and not (self.fmt is not None and self.fmt.uses_request) and not self.extra:
            self._scope = None
            return
        self._scope = (weakref.ref(req), lg, [False], f"{req.client_ip}:{req.client_port}")

    def leave(self) -> None:
        self._scope = None

    def _vhost_logger(self, v, cfg) -> "ErrorLog":
        """The ErrorLog of vhost ``v`` (self when it logs exactly as the main server)."""
        with self._lock:
            main_target = self.target if self.target is not None else \
                (cfg.main.error_log if cfg is not None else v.error_log)
            fd = self._fd
            if v.error_log != main_target and v.error_log in _TARGETS:
                fd = _TARGETS[v.error_log]
                fd = sys.stderr.fileno() if fd is None else fd
            mods = {m: LEVEL_RANK[l] for m, l in v.module_log_levels}
            fmt = v.mod(FORMAT_KEY) if hasattr(v, "mod") else None
            extra = tuple(v.mod(FORMAT_KEY + ".extra", ()) or ()) if hasattr(v, "mod") else ()
            if fmt is None and self.target is None:
                fmt = self.fmt                     # not configured by open_server_logs
            if (fd == self._fd and LEVEL_RANK[v.log_level] == self.level
                    and mods == self.module_levels and fmt == self.fmt and extra == self.extra):
                lg = self
            else:
                lg = ErrorLog(fd, v.log_level, dict(v.module_log_levels), fmt, extra)
            if len(self._vhosts) > 4096:
                self._vhosts.clear()
            self._vhosts[id(v)] = (v, lg)
            return lg

    # --- state (the master restores it in each child; a failed restart puts it back) ---------
    def snapshot(self) -> tuple:
        return (self._fd, self.level, dict(self.module_levels), self.fmt, self.extra,
                self.target, dict(self._vhosts), dict(_TARGETS))

    def restore(self, state: tuple) -> None:
        if len(state) == 3:                  # (fd, level, module_levels), the old shape
            state = (*state, self.fmt, self.extra, self.target, self._vhosts, _TARGETS)
        (self.fd, self.level, self.module_levels, self.fmt, self.extra, self.target,
         vhosts, targets) = state
        self.module_levels = dict(self.module_levels)
        self._vhosts = dict(vhosts)
        self._scope = None
        if targets is not _TARGETS:
            _TARGETS.clear()
            _TARGETS.update(targets)

    # Shorthands, so call sites read like Apache's ap_log_error(APLOG_MARK, APLOG_WARNING, ...)
    def emerg(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "emerg", msgid, text, **kw)
    def alert(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "alert", msgid, text, **kw)
    def crit(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "crit", msgid, text, **kw)
    def error(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "error", msgid, text, **kw)
    def warn(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "warn", msgid, text, **kw)
    def notice(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "notice", msgid, text, **kw)
    def info(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "info", msgid, text, **kw)
    def debug(self, module: str, msgid: str, text: str, **kw) -> None: self.log(module, "debug", msgid, text, **kw)


def _caller() -> str:
    """file:line of the code that called the error log (for %F)."""
    f = sys._getframe(2)
    here = __file__
    while f is not None and f.f_code.co_filename == here:
        f = f.f_back
    if f is None:
        return ""
    return f"{os.path.basename(f.f_code.co_filename)}({f.f_lineno})"


error_log = ErrorLog()


def configure(fd: int | None, level: str = "warn", module_levels: Mapping[str, str] | None = None) -> ErrorLog:
    """Point the process-wide error log at ``fd`` (None: stderr) with the given LogLevel."""
    global error_log
    error_log.fd = sys.stderr.fileno() if fd is None else fd
    error_log.level = LEVEL_RANK[level]
    error_log.module_levels = {m: LEVEL_RANK[l] for m, l in (module_levels or {}).items()}
    error_log._vhosts = {}
    error_log._scope = None
    return error_log


class ServerLogs:
    """What ``open_server_logs`` opened for one configuration generation."""

    def __init__(self, previous: tuple, fds: dict[str, int | None]):
        self.previous = previous
        self.fds = fds
        self.main_fd: int | None = None

    def restore_previous(self) -> None:
        """A failed restart: the old generation keeps its error log."""
        error_log.restore(self.previous)
        self.close()

    def close(self) -> None:
        """The generation is over (a newer one logs through its own descriptors)."""
        for target, fd in self.fds.items():
            if fd is not None and fd != error_log.fd and _TARGETS.get(target) != fd:
                close_target(fd)
        self.fds = {}


def open_server_logs(cfg) -> ServerLogs:
    """Open the main ErrorLog and every vhost's own ErrorLog of ``cfg`` (``StartupError``
    when one cannot be opened; nothing stays open then) and point ``error_log`` at the main
    one with the main server's LogLevel and ErrorLogFormat.  In the master, before fork."""
    main = cfg.main
    previous = error_log.snapshot()
    fds: dict[str, int | None] = {}
    try:
        for v in cfg.all_vhosts():
            if v.error_log not in fds:
                fds[v.error_log] = open_target(v.error_log)
    except BaseException:
        for fd in fds.values():
            close_target(fd)
        raise
    _TARGETS.clear()
    _TARGETS.update(fds)
    configure(fds[main.error_log], main.log_level, dict(main.module_log_levels))
    error_log.fmt = main.mod(FORMAT_KEY) if hasattr(main, "mod") else None
    error_log.extra = tuple(main.mod(FORMAT_KEY + ".extra", ()) or ()) if hasattr(main, "mod") else ()
    error_log.target = main.error_log
    logs = ServerLogs(previous, fds)
    logs.main_fd = fds[main.error_log]
    return logs


# the piped-log manager reports through this error log (it does not import this module)
from httpd_py import piped as _piped  # noqa: E402
_piped.bind(error_log)
