"""CustomLog / LogFormat: compile a format string once, render one line per request.

Supported codes: ``%h %a %A %l %u %t %r %s %>s %<s %b %B %D %T %m %U %q %H %v %V %p %P %X %k %I %O %%
%{Name}i %{Name}o %{SSL_PROTOCOL}x %{SSL_CIPHER}x %{VAR}e`` (the request's environment,
``RequestRecord.env``; "-" when unset).  Apache's conditional modifiers (``%400,501{...}i``,
``%!200s``) are parsed and ignored.  Unknown codes raise ``ValueError`` at compile time.  Strings
from the client (%r, %i, %U, %q, %e) are escaped as Apache does: ``"`` and ``\\`` get a
backslash, control and non-ASCII bytes become ``\\xhh``.

``AccessLogs`` opens each file once, in the master (before privileges drop), O_APPEND, and
writes each line with one ``os.write`` so workers never interleave.  ``|program``,
``||program`` and ``|$command`` are piped logs (httpd_py/piped.py: the master owns the pipe and
restarts the program when it dies).

Conditions (``CustomLog file format env=[!]VAR|expr=EXPR``, ``log.LogCondition``):
``renderer(fmt, condition)`` gives a renderer that returns None for a request the condition
excludes, and ``write`` skips None.  ``expr=`` sees the request as ``RecordContext`` does:
``%{REQUEST_STATUS}``, ``%{REQUEST_URI}``, ``%{QUERY_STRING}``, ``%{REMOTE_ADDR}``,
``%{HTTP_*}`` / ``req('Name')``, ``%{CONTENT_TYPE}`` (the response's) and ``env('VAR')``.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from httpd_py import piped

# Nicknames Debian's apache2.conf defines; used when the configuration names one it did not define.
LOG_FORMATS = {
    "common": '%h %l %u %t "%r" %>s %b',
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
    "vhost_combined": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
    "referer": "%{Referer}i -> %U",
    "agent": "%{User-agent}i",
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(slots=True)
class RequestRecord:
    """What a log line may show about one request."""
    remote_ip: str = "-"
    remote_port: int = 0
    local_ip: str = "-"
    local_port: int = 0
    request_line: str = ""
    method: str = "-"
    url_path: str = "-"
    query: str = ""
    protocol: str = "HTTP/1.1"
    status: int = 0
    bytes_sent: int = 0                           # body bytes
    start: float = field(default_factory=time.time)
    duration: float = 0.0
    request_headers: dict[str, str] = field(default_factory=dict)     # lower-case names
    response_headers: dict[str, str] = field(default_factory=dict)    # lower-case names
    server_name: str = "-"
    host_header: str = ""
    ssl_protocol: str | None = None
    ssl_cipher: str | None = None
    keepalive: bool = False
    requests_on_connection: int = 1               # this request's number on its connection
    http10: bool = False
    head_bytes: int = 0                           # response head size (for %O)
    request_bytes: int = 0                        # request head size (for %I)
    env: dict = field(default_factory=dict)       # the request's environment (hooks.Request.env)


def new_record(remote_ip: str, remote_port: int, local_ip: str, local_port: int,
               request_line: str, method: str, protocol: str, start: float,
               request_headers: dict, host_header: str, ssl_protocol, ssl_cipher,
               requests_on_connection: int, http10: bool, request_bytes: int) -> RequestRecord:
    """A request's record as the connection starts it: every field by position, in the
    class's order (half the cost of keywords, once per request)."""
    return RequestRecord(remote_ip, remote_port, local_ip, local_port, request_line, method,
                         "-", "", protocol, 0, 0, start, 0.0, request_headers, {}, "-",
                         host_header, ssl_protocol, ssl_cipher, False, requests_on_connection,
                         http10, 0, request_bytes, {})


def escape(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif o < 0x20 or o == 0x7F:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{o:02x}"))
        elif o > 0x7E:
            for b in ch.encode("utf-8", "surrogateescape"):
                out.append(f"\\x{b:02x}")
        else:
            out.append(ch)
    return "".join(out)


def clf_time(ts: float) -> str:
    t = time.localtime(ts)
    off = t.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    off = abs(off) // 60
    return (f"[{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {sign}{off // 60:02d}{off % 60:02d}]")


Piece = Callable[[RequestRecord], str]


def _header(getter: Callable[[RequestRecord], dict[str, str]], name: str) -> Piece:
    key = name.lower()
    return lambda r: escape(getter(r).get(key, "-")) or "-"


def _simple(code: str) -> Piece:
    table: dict[str, Piece] = {
        "h": lambda r: r.remote_ip,
        "a": lambda r: r.remote_ip,
        "A": lambda r: r.local_ip,
        "l": lambda r: "-",
        "u": lambda r: "-",
        "t": lambda r: clf_time(r.start),
        "r": lambda r: escape(r.request_line),
        "s": lambda r: str(r.status),
        "b": lambda r: str(r.bytes_sent) if r.bytes_sent else "-",
        "B": lambda r: str(r.bytes_sent),
        "D": lambda r: str(int(r.duration * 1_000_000)),
        "T": lambda r: str(int(r.duration)),
        "m": lambda r: escape(r.method),
        "U": lambda r: escape(r.url_path),
        "q": lambda r: "?" + escape(r.query) if r.query else "",
        "H": lambda r: r.protocol,
        "v": lambda r: r.server_name or "-",
        "V": lambda r: escape(r.host_header.split(":", 1)[0]) if r.host_header else (r.server_name or "-"),
        "p": lambda r: str(r.local_port),
        "P": lambda r: str(os.getpid()),
        "X": lambda r: "+" if r.keepalive else "-",
        "k": lambda r: str(max(0, r.requests_on_connection - 1)),
        "O": lambda r: str(r.bytes_sent + r.head_bytes),
        "I": lambda r: str(r.request_bytes),
        "%": lambda r: "%",
    }
    if code not in table:
        raise ValueError(f"LogFormat: unrecognized format code %{code}")
    return table[code]


def _braced(arg: str, code: str) -> Piece:
    if code == "i":
        return _header(lambda r: r.request_headers, arg)
    if code == "o":
        return _header(lambda r: r.response_headers, arg)
    if code == "x":
        if arg == "SSL_PROTOCOL":
            return lambda r: r.ssl_protocol or "-"
        if arg == "SSL_CIPHER":
            return lambda r: r.ssl_cipher or "-"
        return lambda r: "-"
    if code == "e":
        return lambda r: escape(str(r.env[arg])) if arg in r.env else "-"
    if code == "n" or code == "C":
        return lambda r: "-"
    if code == "t":
        fmt = arg
        if fmt.startswith(("begin:", "end:")):
            fmt = fmt.split(":", 1)[1]
        if fmt in ("sec", "msec", "usec"):
            mult = {"sec": 1, "msec": 1000, "usec": 1_000_000}[fmt]
            return lambda r: str(int(r.start * mult))
        return lambda r: time.strftime(fmt, time.localtime(r.start))
    raise ValueError(f"LogFormat: unrecognized format code %{{{arg}}}{code}")


def compile_format(fmt: str) -> Callable[[RequestRecord], str]:
    """Compile a LogFormat string into a renderer; ValueError on an unknown code."""
    pieces: list[Piece | str] = []
    i, n = 0, len(fmt)
    lit: list[str] = []
    while i < n:
        ch = fmt[i]
        if ch == "\\" and i + 1 < n:
            lit.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(fmt[i + 1], fmt[i + 1]))
            i += 2
            continue
        if ch != "%":
            lit.append(ch)
            i += 1
            continue
        i += 1
        # modifiers: status conditions (%400,501 / %!200) and < > (original/final)
        while i < n and (fmt[i].isdigit() or fmt[i] in ",!<>"):
            i += 1
        arg = None
        if i < n and fmt[i] == "{":
            end = fmt.find("}", i)
            if end < 0:
                raise ValueError("LogFormat: unterminated %{")
            arg = fmt[i + 1:end]
            i = end + 1
        if i >= n:
            raise ValueError("LogFormat: format ends with %")
        code = fmt[i]
        i += 1
        if lit:
            pieces.append("".join(lit))
            lit = []
        pieces.append(_braced(arg, code) if arg is not None else _simple(code))
    if lit:
        pieces.append("".join(lit))

    def render(r: RequestRecord) -> str:
        return "".join(p if isinstance(p, str) else p(r) for p in pieces)
    return render


class RecordContext:
    """A finished request as ``expr=`` conditions see it (httpd_py.expr.ExprContext)."""
    __slots__ = ("r",)

    def __init__(self, r: RequestRecord):
        self.r = r

    def header(self, name: str) -> str:
        return self.r.request_headers.get(name.lower(), "")

    def env(self, name: str) -> str:
        return str(self.r.env.get(name, ""))

    def var(self, name: str) -> str:
        n = name.upper()
        if n.startswith("HTTP_") and n != "HTTPS":
            return self.r.request_headers.get(n[5:].lower().replace("_", "-"), "")
        f = _VARS.get(n)
        return f(self.r) if f is not None else ""


def _time_var(fmt: str) -> Callable[[RequestRecord], str]:
    return lambda r: time.strftime(fmt, time.localtime(r.start))


_VARS: dict[str, Callable[[RequestRecord], str]] = {
    "REQUEST_STATUS": lambda r: str(r.status),
    "REQUEST_METHOD": lambda r: r.method,
    "REQUEST_URI": lambda r: r.url_path,
    "DOCUMENT_URI": lambda r: r.url_path,
    "QUERY_STRING": lambda r: r.query,
    "THE_REQUEST": lambda r: r.request_line,
    "SERVER_PROTOCOL": lambda r: r.protocol,
    "REMOTE_ADDR": lambda r: r.remote_ip,
    "REMOTE_PORT": lambda r: str(r.remote_port),
    "SERVER_ADDR": lambda r: r.local_ip,
    "SERVER_PORT": lambda r: str(r.local_port),
    "SERVER_NAME": lambda r: r.server_name if r.server_name != "-" else "",
    "HTTP_HOST": lambda r: r.host_header,
    "HTTPS": lambda r: "on" if r.ssl_protocol else "off",
    "REQUEST_SCHEME": lambda r: "https" if r.ssl_protocol else "http",
    "IPV6": lambda r: "on" if ":" in r.remote_ip else "off",
    "CONTENT_TYPE": lambda r: r.response_headers.get("content-type", ""),
    "TIME_YEAR": _time_var("%Y"), "TIME_MON": _time_var("%m"), "TIME_DAY": _time_var("%d"),
    "TIME_HOUR": _time_var("%H"), "TIME_MIN": _time_var("%M"), "TIME_SEC": _time_var("%S"),
    "TIME_WDAY": lambda r: str((time.localtime(r.start).tm_wday + 1) % 7),
    "TIME": _time_var("%Y%m%d%H%M%S"),
}


def conditional(render: Callable[[RequestRecord], str], condition) -> Callable[[RequestRecord], str | None]:
    """``render`` for the requests ``condition`` (log.LogCondition) wants; None for the others."""
    if condition is None:
        return render

    def render_if(r: RequestRecord) -> str | None:
        try:
            wanted = condition.wants(r.env, RecordContext(r))
        except Exception:                                   # noqa: BLE001 - a log never fails
            wanted = True
        return render(r) if wanted else None
    return render_if


class AccessLogs:
    """Open CustomLog targets once (master), share descriptors by path."""

    def __init__(self):
        self._fds: dict[str, int] = {}
        self._renderers: dict[tuple, Callable[[RequestRecord], str | None]] = {}

    def open(self, path: str) -> int:
        """The descriptor for a CustomLog target (a file, or a piped log's handle).  OSError
        when it cannot be opened (or a log program cannot be started)."""
        fd = self._fds.get(path)
        if fd is not None:
            return fd
        if path.startswith("|"):
            try:
                fd = piped.open_handle(path)
            except ValueError as e:
                raise OSError(0, str(e)) from None
        else:
            d = os.path.dirname(path)
            if d:
                os.makedirs(d, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._fds[path] = fd
        return fd

    def renderer(self, fmt: str, condition=None) -> Callable[[RequestRecord], str | None]:
        """A LogFormat renderer (ValueError for a bad format); with ``condition`` (a CustomLog's
        ``env=``/``expr=``, log.LogCondition), it returns None for requests not to log."""
        key = (fmt, condition)
        r = self._renderers.get(key)
        if r is None:
            base = self._renderers.get((fmt, None))
            if base is None:
                base = self._renderers[(fmt, None)] = compile_format(fmt)
            r = self._renderers[key] = conditional(base, condition)
        return r

    @staticmethod
    def write(fd: int, line: str | None) -> None:
        if line is None:                    # a CustomLog condition excluded this request
            return
        try:
            os.write(fd, (line + "\n").encode("utf-8", "surrogateescape"))
        except OSError:
            pass    # a full disk must not take a request down

    def close(self) -> None:
        """Close every descriptor (a piped log's program ends when no generation uses it)."""
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()
