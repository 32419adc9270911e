"""core.c and http_core.c: sections, reading, servers, limits, logs' ErrorLog/LogLevel, Mutex."""
from __future__ import annotations

import os
import re
from typing import Callable

from httpd_py import log as _log
from httpd_py.config import modules, values
from httpd_py.config.directives.base import (
    FLAG, ITERATE, RAW, TAKE1, TAKE12, TAKE2, Directive, flag, FromServerRoot, integer, Parser,
    path, seconds, text)
from httpd_py.config.directives.log_config import _access_log_target
from httpd_py.errors import ConfigError


HTTP_PROTOCOL_DEFAULTS = ("Strict", "LenientMethods", "Allow0.9")
_HTTP_PROTOCOL_OPTIONS = {"strict": (0, "Strict"), "unsafe": (0, "Unsafe"),
                          "registeredmethods": (1, "RegisteredMethods"),
                          "lenientmethods": (1, "LenientMethods"),
                          "allow0.9": (2, "Allow0.9"), "require1.0": (2, "Require1.0")}


def _http_protocol_options(w, args):
    """HttpProtocolOptions: each word sets one of three choices; the others keep Apache's
    defaults (Strict LenientMethods Allow0.9)."""
    opts = list(HTTP_PROTOCOL_DEFAULTS)
    for a in args:
        got = _HTTP_PROTOCOL_OPTIONS.get(a.lower())
        if got is None:
            raise ConfigError(f"HttpProtocolOptions: Illegal option {a}")
        opts[got[0]] = got[1]
    w.set("http_protocol_options", tuple(opts))


# -- core ----------------------------------------------------------------------------------------
def _server_name(w, args):
    v = args[0]
    m = re.match(r"(?:([A-Za-z][A-Za-z0-9+.-]*)://)?([^/:]*|\[[^\]]*\])(?::([0-9]+))?\Z", v)
    if not m or not m.group(2) or re.search(r"[\s/]", m.group(2)):
        raise ConfigError(f"Invalid ServerName \"{v}\" use a fully qualified domain name")
    w.set("server_name", m.group(2).lower())
    w.set("server_name_text", m.group(2))
    if m.group(3):
        w.set("srv.core.server_name_port", int(m.group(3)))


def _document_root(w, args):
    p = values.path(args[0], w.server_root)
    if w.check_document_root and not os.path.isdir(p):
        if w.in_vhost:     # Apache only warns for a vhost (AH00112)
            w.warnings.append(f"Warning: DocumentRoot [{p}] does not exist "
                              f"(line {w.loc.line} of {w.loc.file})")
        else:
            raise ConfigError(f"DocumentRoot '{p}' is not a directory, or is not readable")
    w.set("document_root", p)


def _server_alias(w, args):
    if not w.in_vhost:
        raise ConfigError("ServerAlias only used in <VirtualHost>")
    w.extend("server_aliases", tuple(a.lower() for a in args))
    w.extend("server_alias_texts", tuple(args))


def _log_level(w, args):
    levels = set(_log.LEVELS)
    mods = []
    for a in args:
        mod, sep, lvl = a.rpartition(":")
        if lvl.lower() not in levels:
            raise ConfigError(f"{a + ': ' if sep else ''}Log level keyword must be one of "
                              "emerg/alert/crit/error/warn/notice/info/debug/trace1/.../trace8")
        if sep:
            if not mod:
                raise ConfigError(f"LogLevel: invalid module name in '{a}'")
            mods.append((modules.short(mod.removeprefix("mod_").removesuffix(".c")).lower(),
                         lvl.lower()))
        else:
            w.set("log_level", lvl.lower())
    if mods:
        w.extend("module_log_levels", tuple(mods))


def _timeout_seconds(w, text: str) -> int:
    """Timeout: whole seconds, at least 1 unless 0 (a sub-second value rounds up to 1)."""
    v = values.seconds(text, w.name, units=True)
    return max(1, int(v)) if v else 0


def _mutex(w, args):
    # No directory given: "" here, DefaultRuntimeDir filled in when the model is built.
    for spec in values.mutex(args, w.server_root, "", modules.mutex_types(w.loaded)):
        w.g.setdefault("mutex_lines", {})[spec.name] = spec


def _error_document(w, args):
    if not args[0].isdigit() or not 100 <= int(args[0]) <= 599:
        raise ConfigError(f"Unsupported HTTP response code {args[0]}")
    code = int(args[0])
    w.extend("error_documents", ((code, args[1]),))


def _error_log(w, args):
    """ErrorLog: a file, "|program" / "||program" / "|$command", or syslog[:facility[:tag]]."""
    target = args[0]
    if target.startswith("|"):
        target = _access_log_target(target, w.server_root)
    elif _log.is_syslog(target):
        try:
            _log.parse_syslog(target)
        except ValueError as e:               # Apache refuses it at start-up (AH10036)
            raise ConfigError(f"ErrorLog: {e}") from None
    else:
        target = values.path(target, w.server_root)
    w.set("error_log", target)


def _one_of(choices: tuple[str, ...], message: str) -> Callable:
    """Validate-only handler for core keywords Apache checks (message as Apache words it)."""
    def h(w, args):
        if args[0].lower() not in choices:
            raise ConfigError(message)
    return h


def _port(w, args):
    raise ConfigError("Port was replaced with Listen in Apache 2.0")


def _name_virtual_host(w, args):
    w.warnings.append(f"NameVirtualHost has no effect and will be removed in the next release "
                      f"{w.loc.file}:{w.loc.line}")


def _hostname_lookups(w, args):
    v = args[0].lower()
    if v not in ("on", "off", "double"):
        raise ConfigError("parameter must be 'on', 'off', or 'double'")
    if v != "off":              # httpd-py never looks client names up
        w.ignored.append((w.name, w.loc))


def rows() -> list[Directive]:
    C, H, SO = "core.c", "http_core.c", "mod_so.c"
    D = Directive
    return [
        # core: sections
        D("<VirtualHost", C, "S", RAW, "", "Container for a virtual host, takes one or more "
          "addresses (addr[:port], * or _default_)", syntax="addr[:port] [addr[:port]] ..."),
        D("<Directory", C, "SV", RAW, "", "Container for directives about a directory tree",
          syntax="directory-path"),
        D("<DirectoryMatch", C, "SV", RAW, "", "Container for directories matching a regex",
          syntax="regex"),
        D("<Location", C, "SV", RAW, "", "Container for directives about a URL path",
          syntax="URL-path"),
        D("<LocationMatch", C, "SV", RAW, "", "Container for URL paths matching a regex",
          syntax="regex"),
        D("<Files", C, "A", RAW, "", "Container for directives about file names",
          syntax="filename"),
        D("<FilesMatch", C, "A", RAW, "", "Container for file names matching a regex",
          syntax="regex"),
        D("<If", C, "A", RAW, "", "Container applied when an expression is true at request time",
          syntax="expression"),
        D("<ElseIf", C, "A", RAW, "", "Container applied when the previous <If> failed and this "
          "expression is true", syntax="expression"),
        D("<Else", C, "A", RAW, "", "Container applied when the previous <If>/<ElseIf> failed"),
        D("<Limit", C, "D", RAW, "", "Container limiting access controls to HTTP methods",
          syntax="method ..."),
        D("<LimitExcept", C, "D", RAW, "", "Container for access controls of all but the named "
          "HTTP methods", syntax="method ..."),
        D("<IfDefine", C, "A", RAW, "", "Read the section only if a parameter is (!: is not) "
          "defined with -D or Define", read_time=True, syntax="[!]name"),
        D("<IfModule", C, "A", RAW, "", "Read the section only if a module is (!: is not) loaded "
          "(ssl_module, mod_ssl.c or ssl)", read_time=True, syntax="[!]module"),
        D("<IfFile", C, "A", RAW, "", "Read the section only if a file exists (ServerRoot-"
          "relative)", read_time=True, syntax="[!]path"),
        D("<IfDirective", C, "A", RAW, "", "Read the section only if a directive is known",
          read_time=True, syntax="[!]directive"),
        D("<IfSection", C, "A", RAW, "", "Read the section only if a section name is known",
          read_time=True, syntax="[!]section-name"),
        D("<IfVersion", "mod_version.c", "A", RAW, "", "Read the section only if the httpd "
          "version (2.4.71 for httpd-py) compares true", read_time=True,
          syntax="[[!]operator] version"),
        # core: reading
        D("Include", C, "A", TAKE1, "", "Read other configuration files (wildcards allowed; "
          "fails when nothing matches)", read_time=True, syntax="file-path|directory-path|wildcard"),
        D("IncludeOptional", C, "A", TAKE1, "", "Read other configuration files; silently "
          "ignored when nothing matches", read_time=True, syntax="file-path|directory-path|wildcard"),
        D("Define", C, "A", TAKE12, "", "Define a variable for ${NAME} and <IfDefine>, like -D",
          read_time=True, syntax="name [value]"),
        D("UnDefine", C, "A", TAKE1, "", "Remove a variable set with Define or -D",
          read_time=True, syntax="name"),
        D("ServerRoot", C, "S", TAKE1, "/etc/httpd-py", "Base directory for relative paths",
          read_time=True, syntax="directory-path"),
        D("LoadModule", SO, "S", TAKE2, "", "Mark a module Apache ships as loaded (httpd-py "
          "builds its own in; the file need not exist)", read_time=True,
          syntax="module filename"),
        D("LoadFile", SO, "S", ITERATE, "", "Accepted for compatibility; nothing is loaded",
          read_time=True, used=False, syntax="filename ..."),
        # core: servers
        D("ServerName", C, "SV", TAKE1, "(host name)", "The host name (and optional scheme/port) "
          "that identifies the server", _server_name, field="server_name", value="",
          syntax="[scheme://]name[:port]"),
        D("ServerAlias", C, "SV", ITERATE, "", "More names a name-based virtual host answers to "
          "(wildcards allowed)", _server_alias, field="server_aliases", value=(),
          syntax="hostname ..."),
        D("ServerAdmin", C, "SV", TAKE1, "", "The e-mail address of the server administrator",
          field="server_admin", parse=text(), value="", syntax="email|URL"),
        D("DocumentRoot", C, "SV", TAKE1, "", "The directory that holds the "
          "documents (must exist, unless -T)", _document_root, field="document_root",
          value="/var/www/html", syntax="directory-path"),
        D("ErrorLog", C, "SV", TAKE1, "", "Where the error log goes (file, "
          "|program or syslog)", _error_log, field="error_log",
          value=FromServerRoot("logs/error_log"),
          syntax="file-path|syslog[:facility[:tag]]|\"|program\""),
        D("LogLevel", C, "A", ITERATE, "", "Error-log verbosity, globally and per module",
          _log_level, field="log_level", value="warn", syntax="[module:]level ..."),
        D("Timeout", C, "SV", TAKE1, "", "Seconds to wait for network reads and writes",
          field="timeout", parse=Parser("seconds", _timeout_seconds), value=60,
          syntax="seconds"),
        D("KeepAlive", H, "SV", FLAG, "", "Allow persistent connections",
          field="keep_alive", parse=flag(), value=True),
        D("MaxKeepAliveRequests", H, "SV", TAKE1, "", "Requests per persistent connection "
          "(0: unlimited)", field="max_keep_alive_requests", parse=integer(), value=100,
          syntax="number"),
        D("KeepAliveTimeout", H, "SV", TAKE1, "", "Seconds to wait for the next request on a "
          "persistent connection (ms suffix allowed)", field="keep_alive_timeout",
          parse=seconds(units=True), value=5.0, syntax="seconds"),
        D("LimitRequestLine", C, "SV", TAKE1, "", "Longest request line, in bytes",
          field="limit_request_line", parse=integer(0, 65534), value=8190, syntax="bytes"),
        D("LimitRequestFieldSize", C, "SV", TAKE1, "", "Longest request header line, in "
          "bytes", field="limit_request_field_size", parse=integer(0, 65534), value=8190,
          syntax="bytes"),
        D("LimitRequestFields", C, "SV", TAKE1, "", "Most request header lines (0: "
          "unlimited)", field="limit_request_fields", parse=integer(0, 32767), value=100,
          syntax="number"),
        D("HttpProtocolOptions", C, "SV", ITERATE, "",
          "HTTP/1 request parsing: Strict or Unsafe (bare LF line ends, loose request line), "
          "RegisteredMethods (unknown methods 501 at once) or LenientMethods, Allow0.9 or "
          "Require1.0", _http_protocol_options, field="http_protocol_options",
          value=HTTP_PROTOCOL_DEFAULTS,
          syntax="[Strict|Unsafe] [RegisteredMethods|LenientMethods] [Allow0.9|Require1.0]"),
        D("LimitRequestBody", C, "A", TAKE1, "", "Largest request body, in bytes (0: "
          "unlimited)", field="limit_request_body", parse=integer(0, 2 ** 63 - 1), value=0,
          syntax="bytes"),
        D("PidFile", C, "S", TAKE1, "", "File holding the master's process id",
          field="server.pid_file", parse=path(), value=FromServerRoot("logs/httpd.pid"),
          syntax="filename"),
        D("DefaultRuntimeDir", C, "A", TAKE1, "", "Directory for run-time files (lock "
          "files)", read_time=True, field="server.default_runtime_dir",
          value=FromServerRoot("logs"), syntax="directory-path"),
        D("Mutex", C, "S", RAW, "default", "Lock mechanism and directory for named mutexes "
          "(ssl-stapling, ssl-stapling-refresh, ...)", _mutex, field="server.mutexes",
          syntax="mechanism[:dir] [default|mutex-name] ... [OmitPID]"),
        D("ErrorDocument", C, "A", TAKE2, "", "What to send for an HTTP error status (URL "
          "path, URL or text)", _error_document, field="error_documents", value=(),
          syntax="status document"),
        # core keywords Apache validates; accepted without effect in httpd-py
        D("HostnameLookups", C, "A", TAKE1, "Off", "Reverse DNS of clients (Off, as httpd-py "
          "does; On/Double are listed as without effect)", _hostname_lookups,
          syntax="On|Off|Double"),
        D("EnableSendfile", C, "A", TAKE1, "Off", "sendfile(2) for static files (accepted)",
          _one_of(("on", "off"), "parameter must be 'on' or 'off'"), used=False,
          syntax="On|Off"),
        D("EnableMMAP", C, "A", TAKE1, "On", "mmap(2) for static files (accepted)",
          _one_of(("on", "off"), "parameter must be 'on' or 'off'"), used=False,
          syntax="On|Off"),
        D("NameVirtualHost", C, "SV", TAKE1, "", "No effect since Apache 2.3.11 (a warning)",
          _name_virtual_host, used=False, syntax="addr[:port]"),
        D("Port", C, "SV", TAKE1, "", "Removed in Apache 2.0: an error pointing to Listen",
          _port, used=False, syntax="number"),
    ]
