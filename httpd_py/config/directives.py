"""The directive table: one row per directive, and the handlers that fill the model.

A row says where a directive may appear (``where``), how many arguments it takes (``args``, checked
by the walker before the handler runs, with Apache's messages), its default, its handler and a
one-line doc.  ``httpd-py -L``, ``docs/directives.md`` and the usage text in errors all come from
these rows.

``where``: "S" main server only (Apache's GLOBAL_ONLY: "cannot occur within <VirtualHost>
section"), "SV" main server and <VirtualHost>, "A" anywhere (also inside <Directory>-like
sections), "D" only inside <Directory>-like sections ("not allowed here" outside them).

Handlers receive the walk context ``w`` and the split arguments.  They raise ``ConfigError(msg)``
with no location; the walker adds it.  ``w.set(key, value)`` records a per-server setting (the
main server or the current <VirtualHost>; inside <Directory>-like sections values are validated
but not applied, see build.py); ``w.glob(key, value)`` records a server-wide one.

Rows whose ``used`` is False are validated but have no effect in httpd-py; like the directives
of Apache modules httpd-py does not implement (rows built from ``apache_directives.tsv``), they
are listed in ``ServerConfig.ignored_directives`` and logged once at start-up.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from httpd_py import log as _log
from httpd_py.config import modules, values
from httpd_py.config.model import LogFormatRef
from httpd_py.errors import ConfigError

FLAG, NOARGS, TAKE1, TAKE2, TAKE12, TAKE3, TAKE23, TAKE123, TAKE13, ITERATE, ITERATE2, RAW = (
    "FLAG", "NOARGS", "TAKE1", "TAKE2", "TAKE12", "TAKE3", "TAKE23", "TAKE123", "TAKE13",
    "ITERATE", "ITERATE2", "RAW")

_ARG_RULES: dict[str, tuple[int, int | None, str]] = {
    FLAG: (0, None, ""),        # Apache reads the first word only; none: "must be On or Off"
    NOARGS: (0, 0, "takes no arguments"),
    TAKE1: (1, 1, "takes one argument"),
    TAKE2: (2, 2, "takes two arguments"),
    TAKE12: (1, 2, "takes 1-2 arguments"),
    TAKE3: (3, 3, "takes three arguments"),
    TAKE23: (2, 3, "takes two or three arguments"),
    TAKE123: (1, 3, "takes one, two or three arguments"),
    TAKE13: (1, 3, "takes one or three arguments"),
    ITERATE: (1, None, "requires at least one argument"),
    ITERATE2: (2, None, "requires at least two arguments"),
    RAW: (0, None, ""),
}
ARG_SYNTAX = {FLAG: "On|Off", NOARGS: "", TAKE1: "arg", TAKE2: "arg1 arg2",
              TAKE12: "arg1 [arg2]", TAKE3: "arg1 arg2 arg3", TAKE23: "arg1 arg2 [arg3]",
              TAKE123: "arg1 [arg2 [arg3]]", TAKE13: "arg1 [arg2 arg3]", ITERATE: "arg ...",
              ITERATE2: "arg1 arg2 ...", RAW: "..."}

WHERE_TEXT = {"S": "server config", "SV": "server config, virtual host",
              "A": "server config, virtual host, directory", "D": "directory"}


@dataclass(frozen=True)
class Directive:
    name: str                    # as Apache spells it; sections start with "<"
    module: str                  # module source name, e.g. "mod_ssl.c"
    where: str                   # "S", "SV", "A" or "D"
    args: str                    # argument shape (FLAG, TAKE1, ...)
    default: str                 # the default, as text for the docs
    doc: str                     # one line, our own words
    handler: Callable[[Any, list[str]], None] | None = None
    used: bool = True            # False: validated, but no effect in httpd-py
    read_time: bool = False      # executed while reading (Include, Define, <IfModule>, ...)
    ext: bool = False            # httpd-py extension (not in Apache)
    syntax: str = ""             # argument syntax for docs, when more telling than ARG_SYNTAX
    override: str = ""           # AllowOverride class that admits it in .htaccess ("" never,
                                 # "any" with any class, as Apache's OR_ALL)

    @property
    def is_section(self) -> bool:
        return self.name.startswith("<")

    def check_count(self, args: list[str]) -> None:
        lo, hi, text = _ARG_RULES[self.args]
        n = len(args)
        if self.args == FLAG and n == 0:
            raise ConfigError(f"{self.name} must be On or Off")
        # Apache appends the directive's help text; rows of modules httpd-py does not
        # implement have none worth showing.
        usage = f"{self.name} {text}" + (f", {self.doc}" if self.handler is not None
                                         or self.read_time else "")
        if self.args == TAKE13 and n == 2:
            raise ConfigError(usage)
        if n < lo or (hi is not None and n > hi):
            raise ConfigError(usage)


# -- handler builders ----------------------------------------------------------------------------
def _flag(key: str) -> Callable:
    def h(w, args):
        w.set(key, values.flag(args[0], w.name))
    return h


def _int(key: str | None, minimum: int | None = 0, maximum: int | None = None,
         glob: bool = False) -> Callable:
    def h(w, args):
        v = values.integer(args[0], w.name, minimum=minimum, maximum=maximum)
        if key:
            (w.glob if glob else w.set)(key, v)
    return h


_HTTP_PROTOCOL_OPTIONS = {"strict": (0, "Strict"), "unsafe": (0, "Unsafe"),
                          "registeredmethods": (1, "RegisteredMethods"),
                          "lenientmethods": (1, "LenientMethods"),
                          "allow0.9": (2, "Allow0.9"), "require1.0": (2, "Require1.0")}


def _http_protocol_options(w, args):
    """HttpProtocolOptions: each word sets one of three choices; the others keep Apache's
    defaults (Strict LenientMethods Allow0.9)."""
    opts = ["Strict", "LenientMethods", "Allow0.9"]
    for a in args:
        got = _HTTP_PROTOCOL_OPTIONS.get(a.lower())
        if got is None:
            raise ConfigError(f"HttpProtocolOptions: Illegal option {a}")
        opts[got[0]] = got[1]
    w.set("http_protocol_options", tuple(opts))


_TIME = re.compile(r"([0-9]+)(ms|s|mi|h)?\Z", re.I)


def time_interval(text: str, name: str, default_unit: str = "s") -> float:
    """Apache's ap_timeout_parameter_parse: a number with an optional ms/s/mi/h unit."""
    m = _TIME.match(text)
    if not m:
        raise ConfigError(f"{name} has wrong format: '{text}' (a whole number with an optional "
                          f"unit ms, s, mi or h)")
    n = float(m.group(1))
    unit = (m.group(2) or default_unit).lower()
    return n * {"ms": 0.001, "s": 1, "mi": 60, "h": 3600}[unit]


def _interval(key: str, glob: bool = False, integral: bool = False) -> Callable:
    def h(w, args):
        v = time_interval(args[0], w.name)
        if integral:
            if v != int(v):
                raise ConfigError(f"{w.name}: '{args[0]}' must be a whole number of seconds")
            v = int(v)
        (w.glob if glob else w.set)(key, v)
    return h


def _path(key: str, glob: bool = False, must_exist: str | None = None) -> Callable:
    def h(w, args):
        p = values.path(args[0], w.server_root)
        if must_exist:
            _check_exists(w.name, p, must_exist)
        (w.glob if glob else w.set)(key, p)
    return h


def _check_exists(name: str, p: str, kind: str) -> None:
    import os
    if kind == "file":
        if not os.path.isfile(p) or os.path.getsize(p) == 0:
            raise ConfigError(f"{name}: file '{p}' does not exist or is empty")
    elif kind == "dir":
        if not os.path.isdir(p):
            raise ConfigError(f"{name}: directory '{p}' does not exist")


def _text(key: str, glob: bool = False, lower: bool = False) -> Callable:
    def h(w, args):
        v = args[0].lower() if lower else args[0]
        (w.glob if glob else w.set)(key, v)
    return h


def _validate_flag(w, args):
    values.flag(args[0], w.name)


def _validate_int(w, args):
    values.integer(args[0], w.name, minimum=0)


def _validate_choice(*choices: str) -> Callable:
    def h(w, args):
        for a in args:
            values.choice(a, w.name, choices)
    return h


def _validate_file(kind: str = "file") -> Callable:
    def h(w, args):
        _check_exists(w.name, values.path(args[0], w.server_root), kind)
    return h


def _nothing(w, args):
    pass


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


def _timeout(w, args):
    v = time_interval(args[0], w.name)
    w.set("timeout", max(1, int(v)) if v else 0)


def _keepalive_timeout(w, args):
    w.set("keep_alive_timeout", time_interval(args[0], w.name))


def _listen(w, args):
    host, port, proto = values.listen(args)
    for other in w.g.get("listens", []):
        if other.host == host and other.port == port:
            raise ConfigError("Cannot define multiple Listeners on the same IP:port")
    from httpd_py.config.model import ListenSpec
    w.g.setdefault("listens", []).append(ListenSpec(host, port, proto, w.loc))


def _mutex(w, args):
    # No directory given: "" here, DefaultRuntimeDir filled in when the model is built.
    for spec in values.mutex(args, w.server_root, "", modules.mutex_types(w.loaded)):
        w.g.setdefault("mutex_lines", {})[spec.name] = spec


def _error_document(w, args):
    if not args[0].isdigit() or not 100 <= int(args[0]) <= 599:
        raise ConfigError(f"Unsupported HTTP response code {args[0]}")
    code = int(args[0])
    w.extend("error_documents", ((code, args[1]),))


def _directory_index(w, args):
    if not args:        # Apache accepts the bare directive and changes nothing
        return
    w.set("directory_index", tuple(args) if args[0].lower() != "disabled" else ())


def _add_type(w, args):
    mime = args[0].lower()
    w.extend("add_types", tuple((e.lower().lstrip("."), mime) for e in args[1:]))
    from httpd_py.modules import mime as mod_mime      # mod_mime's table (RemoveType order)
    mod_mime.add_type_row(w, args)


def _alias(w, args):
    from httpd_py.config.model import AliasSpec
    section = w.dir_section.lname if w.dir_section is not None else ""
    if section in ("<location", "<locationmatch"):
        if len(args) != 1:
            raise ConfigError("Alias must have one argument when used in a Location")
        raise ConfigError("Alias inside <Location> is not applied by httpd-py yet; refused "
                          "rather than ignored (the URL would serve something else). Use "
                          "'Alias URL-path file-path' outside the section.")
    if section:
        raise ConfigError("Alias cannot occur within directory context")
    if len(args) != 2:
        raise ConfigError("Alias must have two arguments when used globally")
    w.extend("aliases", (AliasSpec(args[0], values.path(args[1], w.server_root)),))


_REDIRECT_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}


def _redirect(status: int | None) -> Callable:
    def h(w, args):
        from httpd_py.config.model import RedirectSpec
        words = list(args)
        code = status
        if code is None:
            first = words[0].lower()
            if first in _REDIRECT_STATUS:
                code = _REDIRECT_STATUS[first]
                words = words[1:]
            elif first.isdigit():
                code = int(first)
                words = words[1:]
                if not 300 <= code <= 599:
                    raise ConfigError(f"Redirect: invalid status '{first}' (300-599)")
            else:
                code = 302
        if not words:
            raise ConfigError(f"{w.name} takes 1-3 arguments, an optional status, then document "
                              "to be redirected and destination URL")
        url_path, target = words[0], (words[1] if len(words) > 1 else None)
        if len(words) > 2:
            raise ConfigError(f"{w.name}: too many arguments")
        if 300 <= code <= 399 and target is None:
            raise ConfigError("URL to redirect to is missing")
        if not 300 <= code <= 399 and target is not None:
            raise ConfigError("Redirect URL not valid for this status")
        if target is not None and not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target) \
                and not target.startswith("/"):
            raise ConfigError("Redirect to non-URL")
        w.extend("redirects", (RedirectSpec(code, url_path, target),))
    return h


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


def _user_group(key: str) -> Callable:
    """User/Group: the name must exist (Apache resolves it at config time: "bad user name")."""
    def h(w, args):
        import grp
        import pwd
        name = args[0]
        if not name.startswith("#"):
            try:
                (pwd.getpwnam if key == "user" else grp.getgrnam)(name)
            except KeyError:
                raise ConfigError(f"bad {key} name {name}") from None
        elif not name[1:].isdigit():
            raise ConfigError(f"bad {key} id {name}")
        w.glob(key, name)
    return h


def _types_config(w, args):
    w.set("types_config", values.path(args[0], w.server_root))


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


# -- prefork ---------------------------------------------------------------------------------------
def _prefork(key: str, minimum: int = 0) -> Callable:
    def h(w, args):
        w.glob(f"prefork.{key}", values.integer(args[0], w.name, minimum=minimum))
    return h


# -- socache providers -----------------------------------------------------------------------------
def _redis_timeout(key: str) -> Callable:
    def h(w, args):
        v = time_interval(args[0], w.name)
        if v > 3600:
            raise ConfigError(f"{w.name} can only be 0 or up to one hour.")
        if v <= 0 and key == "redis_timeout":
            raise ConfigError(f"{w.name} must be > 0")
        w.glob(key, v)
    return h


def _memcache_ttl(w, args):
    v = time_interval(args[0], w.name)
    if v >= 4294967:
        raise ConfigError("MemcacheConnTTL has to be less than 4294967 seconds")
    w.glob("memcache_conn_ttl", v)


# -- mod_ssl ---------------------------------------------------------------------------------------
def _ssl_engine(w, args):
    v = args[0].lower()
    if v not in ("on", "off", "optional", "addr"):
        raise ConfigError("Argument must be On, Off, or Optional")
    w.set("ssl.engine", v == "on")


def _ssl_pem_files(key: str) -> Callable:
    """SSLCertificateFile/SSLCertificateKeyFile: append one existing, non-empty file (a key pairs
    with the certificate of the same position)."""
    def h(w, args):
        p = values.path(args[0], w.server_root)
        _check_exists(w.name, p, "file")
        w.extend(key, (p,))
    return h


def _ssl_ca(key: str, kind: str) -> Callable:
    inner = _path(key, must_exist=kind)

    def h(w, args):
        if w.dir_section is not None:     # as OpenSSL builds of mod_ssl say
            raise ConfigError("Your SSL library does not have support for per-directory CA")
        inner(w, args)
    return h


def _ssl_protocol(w, args):
    w.set("ssl.protocols", values.protocols(args, w.name))


def _ssl_proxy_cipher_suite(w, args):
    if len(args) == 2 and args[0].lower() not in ("ssl", "tlsv1.3"):
        raise ConfigError(f"protocol '{args[0]}' not supported")


def _ssl_cipher_suite(w, args):
    if len(args) == 2:
        proto = args[0].lower()
        if proto == "ssl":
            w.set("ssl.cipher_suite", args[1])
        elif proto == "tlsv1.3":
            w.set("ssl.tls13_cipher_suites", args[1])
        else:
            raise ConfigError(f"protocol '{args[0]}' not supported")
    else:
        w.set("ssl.cipher_suite", args[0])


# OpenSSL's SSL_CONF file-style command names (case-insensitive), as SSLOpenSSLConfCmd takes them.
_CONF_CMDS = frozenset(c.lower() for c in (
    "SignatureAlgorithms", "ClientSignatureAlgorithms", "Curves", "Groups", "MinProtocol",
    "MaxProtocol", "Protocol", "Options", "VerifyMode", "ChainCAFile", "ChainCAPath",
    "VerifyCAFile", "VerifyCAPath", "RequestCAFile", "ClientCAFile", "RequestCAPath",
    "ClientCAPath", "Certificate", "PrivateKey", "ServerInfoFile", "DHParameters",
    "RecordPadding", "NumTickets", "CipherString", "Ciphersuites", "ECDHParameters"))


# Commands whose value OpenSSL reads as a file: Apache resolves it against ServerRoot and
# refuses a missing or empty one at config time.
_CONF_FILE_CMDS = frozenset(c.lower() for c in (
    "Certificate", "PrivateKey", "ServerInfoFile", "DHParameters", "ChainCAFile",
    "VerifyCAFile", "RequestCAFile", "ClientCAFile"))


def _ssl_conf_cmd(w, args):
    if args[0].lower() not in _CONF_CMDS:
        raise ConfigError(f"'{args[0]}': invalid OpenSSL configuration command")
    value = args[1]
    if args[0].lower() in _CONF_FILE_CMDS:
        value = values.path(value, w.server_root)
        if not os.path.isfile(value) or os.path.getsize(value) == 0:
            raise ConfigError(f"SSLOpenSSLConfCmd: file '{value}' does not exist or is empty")
    w.extend("ssl.openssl_conf_cmds", ((args[0], value),))


def _ssl_session_cache(w, args):
    arg = args[0]
    if arg.lower() in ("none", "nonenotnull"):
        from httpd_py.config.model import SocacheSpec
        w.glob("session_cache", SocacheSpec(provider="none", raw=arg))
        return
    w.glob("session_cache", values.socache(arg, "SSLSessionCache", w.server_root, kind="session",
                                           providers=modules.socache_providers(w.load_modules)))


def _ssl_stapling_cache(w, args):
    w.glob("stapling_cache", values.socache(args[0], "SSLStaplingCache", w.server_root,
                                            providers=modules.socache_providers(w.load_modules)))


def _whole_seconds(w, text: str, minimum: int) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ConfigError(f"{w.name}: invalid argument '{text}' (a whole number of seconds)")
    v = int(text)
    if v < minimum:
        raise ConfigError(f"{w.name}: invalid argument")
    return v


def _stapling_seconds(key: str, minimum: int = 0) -> Callable:
    def h(w, args):
        w.set(key, _whole_seconds(w, args[0], minimum))
    return h


def _stapling_responder_timeout(w, args):
    v = _whole_seconds(w, args[0], 0)
    if v == 0:
        raise ConfigError(f"{w.name}: 0 would make every OCSP fetch fail at once; use >= 1")
    w.set("ssl.stapling.responder_timeout", float(v))


def _http_url(key: str) -> Callable:
    def h(w, args):
        u = urlsplit(args[0])
        if u.scheme.lower() not in ("http", "https") or not u.hostname:
            raise ConfigError(f"{w.name}: '{args[0]}' is not an http:// or https:// URL")
        try:
            u.port
        except ValueError:
            raise ConfigError(f"{w.name}: invalid port in '{args[0]}'") from None
        w.set(key, args[0])
    return h


def _stapling_refresh(w, args):
    w.set("ssl.stapling.refresh", values.choice(args[0], w.name, ("background", "on-demand")))


def _stapling_renew_window(w, args):
    w.set("ssl.stapling.renew_window", int(values.seconds(args[0], w.name, minimum=1)))


def _stapling_must_staple(w, args):
    w.set("ssl.stapling.must_staple", values.choice(args[0], w.name, ("warn", "strict")))


def _ssl_store_dir(w, args):
    w.glob("stapling_store_dir", values.path(args[0], w.server_root))


def _ssl_verify_client(w, args):
    values.choice(args[0], w.name, ("none", "optional", "require", "optional_no_ca"))


def _ssl_options(w, args):
    known = ("stdenvvars", "exportcertdata", "fakebasicauth", "strictrequire",
             "optrenegotiate", "legacydnstringformat", "compatenvvars")
    for a in args:
        name = a[1:] if a[:1] in ("+", "-") else a
        if name.lower() not in known:
            raise ConfigError(f"SSLOptions: Illegal option '{name}'")


def _ssl_compression(w, args):
    if values.flag(args[0], w.name):
        raise ConfigError("This version of OpenSSL does not have any compression methods "
                          "available, cannot enable SSLCompression.")


def _ssl_crypto_device(w, args):
    if args[0] not in ("builtin", "dynamic"):
        raise ConfigError("SSLCryptoDevice: Invalid argument; must be one of: 'builtin' (none), "
                          "'dynamic' (Dynamic engine loading support)")


def _ssl_pass_phrase(w, args):
    a = args[0]
    if a != "builtin" and not a.startswith("|") and not a.startswith("exec:"):
        raise ConfigError("SSLPassPhraseDialog: Invalid argument")
    # Apache runs a pass-phrase program only for an encrypted key; httpd-py refuses encrypted
    # keys at start-up, so for the keys it serves the line means what it means to Apache.


_SYSTEM_RANDOM = ("builtin", "file:/dev/urandom", "file:/dev/random")


def _ssl_random_seed(w, args):
    if args[0].lower() not in ("startup", "connect"):
        raise ConfigError("SSLRandomSeed: invalid context: `" + args[0] + "'")
    if args[1].lower() not in _SYSTEM_RANDOM:   # OpenSSL seeds itself from the system
        w.ignored.append((w.name, w.loc))


def _hostname_lookups(w, args):
    v = args[0].lower()
    if v not in ("on", "off", "double"):
        raise ConfigError("parameter must be 'on', 'off', or 'double'")
    if v != "off":              # httpd-py never looks client names up
        w.ignored.append((w.name, w.loc))


def _ssl_revocation_check(w, args):
    values.choice(args[0], w.name, ("none", "chain", "leaf"))
    for a in args[1:]:
        values.choice(a, w.name, ("no_crl_for_cert_ok",))


def _ssl_ocsp_enable(w, args):
    values.choice(args[0], w.name, ("on", "off", "leaf"))
    for a in args[1:]:
        if a.lower() != "no_ocsp_for_cert_ok":
            raise ConfigError(f"SSLOCSPEnable: Invalid argument '{a}'")


def _ssl_deprecated(w, args):
    raise ConfigError(f"{w.name} directive is no longer supported - use "
                      f"{'ErrorLog' if w.name == 'SSLLog' else 'LogLevel'}.")


def _ssl_proxy_protocol(w, args):
    values.protocols(args, w.name)


def _ssl_sni_policy(w, args):
    values.choice(args[0], w.name, ("strict", "secure", "authonly", "insecure"))


# -- the table ---------------------------------------------------------------------------------------
def _rows() -> list[Directive]:
    C, H, SO, UX, PF = "core.c", "http_core.c", "mod_so.c", "mod_unixd.c", "prefork.c"
    SSL, MIME, DIR, ALIAS, LOG, AUTHZ = ("mod_ssl.c", "mod_mime.c", "mod_dir.c", "mod_alias.c",
                                         "mod_log_config.c", "mod_authz_core.c")
    R, M = "mod_socache_redis.c", "mod_socache_memcache.c"
    D = Directive
    rows = [
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
          "that identifies the server", _server_name, syntax="[scheme://]name[:port]"),
        D("ServerAlias", C, "SV", ITERATE, "", "More names a name-based virtual host answers to "
          "(wildcards allowed)", _server_alias, syntax="hostname ..."),
        D("ServerAdmin", C, "SV", TAKE1, "", "The e-mail address of the server administrator",
          _text("server_admin"), syntax="email|URL"),
        D("DocumentRoot", C, "SV", TAKE1, "/var/www/html", "The directory that holds the "
          "documents (must exist, unless -T)", _document_root, syntax="directory-path"),
        D("ErrorLog", C, "SV", TAKE1, "logs/error_log", "Where the error log goes (file, "
          "|program or syslog)", _error_log, syntax="file-path|syslog[:facility[:tag]]|\"|program\""),
        D("LogLevel", C, "A", ITERATE, "warn", "Error-log verbosity, globally and per module",
          _log_level, syntax="[module:]level ..."),
        D("Timeout", C, "SV", TAKE1, "60", "Seconds to wait for network reads and writes",
          _timeout, syntax="seconds"),
        D("KeepAlive", H, "SV", FLAG, "On", "Allow persistent connections",
          _flag("keep_alive")),
        D("MaxKeepAliveRequests", H, "SV", TAKE1, "100", "Requests per persistent connection "
          "(0: unlimited)", _int("max_keep_alive_requests"), syntax="number"),
        D("KeepAliveTimeout", H, "SV", TAKE1, "5", "Seconds to wait for the next request on a "
          "persistent connection (ms suffix allowed)", _keepalive_timeout, syntax="seconds"),
        D("LimitRequestLine", C, "SV", TAKE1, "8190", "Longest request line, in bytes",
          _int("limit_request_line", 0, 65534), syntax="bytes"),
        D("LimitRequestFieldSize", C, "SV", TAKE1, "8190", "Longest request header line, in "
          "bytes", _int("limit_request_field_size", 0, 65534), syntax="bytes"),
        D("LimitRequestFields", C, "SV", TAKE1, "100", "Most request header lines (0: "
          "unlimited)", _int("limit_request_fields", 0, 32767), syntax="number"),
        D("HttpProtocolOptions", C, "SV", ITERATE, "Strict LenientMethods Allow0.9",
          "HTTP/1 request parsing: Strict or Unsafe (bare LF line ends, loose request line), "
          "RegisteredMethods (unknown methods 501 at once) or LenientMethods, Allow0.9 or "
          "Require1.0", _http_protocol_options,
          syntax="[Strict|Unsafe] [RegisteredMethods|LenientMethods] [Allow0.9|Require1.0]"),
        D("LimitRequestBody", C, "A", TAKE1, "0", "Largest request body, in bytes (0: "
          "unlimited)", _int("limit_request_body", 0, 2 ** 63 - 1), syntax="bytes"),
        D("PidFile", C, "S", TAKE1, "logs/httpd.pid", "File holding the master's process id",
          _path("pid_file", glob=True), syntax="filename"),
        D("DefaultRuntimeDir", C, "A", TAKE1, "logs", "Directory for run-time files (lock "
          "files)", read_time=True, syntax="directory-path"),
        D("Mutex", C, "S", RAW, "default", "Lock mechanism and directory for named mutexes "
          "(ssl-stapling, ssl-stapling-refresh, ...)", _mutex,
          syntax="mechanism[:dir] [default|mutex-name] ... [OmitPID]"),
        D("Listen", PF, "S", TAKE12, "", "An address and port to accept connections on",
          _listen, syntax="[addr:]port [protocol]"),
        D("ListenBacklog", PF, "S", TAKE1, "511", "Length of the pending-connection queue",
          _prefork("listen_backlog", 1), syntax="backlog"),
        D("ErrorDocument", C, "A", TAKE2, "", "What to send for an HTTP error status (URL "
          "path, URL or text)", _error_document, syntax="status document"),
        D("User", UX, "S", TAKE1, "(unchanged)", "User the workers run as", _user_group("user"),
          syntax="unix-userid"),
        D("Group", UX, "S", TAKE1, "(unchanged)", "Group the workers run as",
          _user_group("group"), syntax="unix-group"),
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
        # authz_core, dir, mime, alias, log_config
        D("DirectoryIndex", DIR, "A", RAW, "index.html", "Files to try for a directory "
          "request (disabled: none)", _directory_index, syntax="disabled|local-url ..."),
        D("TypesConfig", MIME, "SV", TAKE1, "/etc/mime.types", "The mime.types file",
          _types_config, syntax="file-path"),
        D("AddType", MIME, "A", ITERATE2, "", "Map file extensions to a content type",
          _add_type, syntax="media-type extension ..."),
        D("Alias", ALIAS, "A", TAKE12, "", "Map a URL path to a filesystem path", _alias,
          syntax="URL-path file-path|directory-path"),
        D("Redirect", ALIAS, "A", TAKE123, "", "Redirect a URL path to another URL",
          _redirect(None), syntax="[status] URL-path [URL]"),
        D("RedirectPermanent", ALIAS, "A", TAKE2, "", "Redirect a URL path with 301",
          _redirect(301), syntax="URL-path URL"),
        D("RedirectTemp", ALIAS, "A", TAKE2, "", "Redirect a URL path with 302",
          _redirect(302), syntax="URL-path URL"),
        D("LogFormat", LOG, "SV", TAKE12, "", "Define an access-log format, optionally under a "
          "nickname", _log_format, syntax="format [nickname]"),
        D("CustomLog", LOG, "SV", TAKE23, "", "Write an access log with a format or nickname",
          _custom_log, syntax="file|pipe format|nickname [env=[!]var|expr=expr]"),
        D("TransferLog", LOG, "SV", TAKE1, "", "Write an access log in the last LogFormat",
          _transfer_log, syntax="file|pipe"),
        # prefork
        D("StartServers", PF, "S", TAKE1, "5", "Worker processes started at start-up",
          _prefork("start_servers"), syntax="number"),
        D("MinSpareServers", PF, "S", TAKE1, "5", "Least number of idle workers",
          _prefork("min_spare_servers"), syntax="number"),
        D("MaxSpareServers", PF, "S", TAKE1, "10", "Most idle workers",
          _prefork("max_spare_servers"), syntax="number"),
        D("MaxRequestWorkers", PF, "S", TAKE1, "256", "Most workers (simultaneous "
          "connections)", _prefork("max_request_workers"), syntax="number"),
        D("MaxClients", PF, "S", TAKE1, "256", "Old name of MaxRequestWorkers",
          _prefork("max_request_workers"), syntax="number"),
        D("ServerLimit", PF, "S", TAKE1, "256", "Upper bound for MaxRequestWorkers",
          _prefork("server_limit"), syntax="number"),
        D("MaxConnectionsPerChild", C, "S", TAKE1, "0", "Connections a worker serves before it "
          "exits (0: no limit)", _prefork("max_connections_per_child"), syntax="number"),
        D("MaxRequestsPerChild", C, "S", TAKE1, "0", "Old name of MaxConnectionsPerChild",
          _prefork("max_connections_per_child"), syntax="number"),
        D("GracefulShutdownTimeout", PF, "S", TAKE1, "0", "Seconds a graceful stop waits for "
          "workers (0: forever)", _prefork("graceful_shutdown_timeout"), syntax="seconds"),
        # socache providers
        D("RedisTimeout", R, "SV", TAKE1, "5s", "Timeout of each Redis operation",
          _redis_timeout("redis_timeout"), syntax="time[ms|s]"),
        D("RedisConnPoolTTL", R, "SV", TAKE1, "15s", "How long an idle Redis connection is kept",
          _redis_timeout("redis_conn_pool_ttl"), syntax="time[ms|s]"),
        D("MemcacheConnTTL", M, "SV", TAKE1, "15s", "How long an idle memcached connection is "
          "kept", _memcache_ttl, syntax="time[ms|s]"),
    ]
    from httpd_py.config import perdir, reqtimeout_rows
    rows += perdir.rows(D, ITERATE, TAKE1, FLAG, RAW)
    rows += reqtimeout_rows.rows(D, RAW)
    rows += _ssl_rows(D, SSL)
    return rows


def _ssl_rows(D, SSL: str) -> list[Directive]:
    U = False   # "used": False for accepted-but-without-effect directives
    return [
        D("SSLEngine", SSL, "SV", TAKE1, "off", "Use TLS on this server's connections",
          _ssl_engine, syntax="on|off|optional"),
        D("SSLCertificateFile", SSL, "SV", TAKE1, "", "A PEM certificate (may hold the chain "
          "and the key); repeat for RSA and ECDSA", _ssl_pem_files("ssl._cert_files"),
          syntax="file-path"),
        D("SSLCertificateKeyFile", SSL, "SV", TAKE1, "", "The private key of the certificate of "
          "the same position", _ssl_pem_files("ssl._key_files"), syntax="file-path"),
        D("SSLCertificateChainFile", SSL, "SV", TAKE1, "", "Intermediate certificates (PEM); "
          "deprecated, put them in SSLCertificateFile", _path("ssl.chain_file",
                                                               must_exist="file"),
          syntax="file-path"),
        D("SSLCACertificateFile", SSL, "A", TAKE1, "", "CA certificates (PEM) for client "
          "authentication and stapling issuer lookup", _ssl_ca("ssl.ca_file", "file"),
          syntax="file-path"),
        D("SSLCACertificatePath", SSL, "A", TAKE1, "", "Directory of hashed CA certificates",
          _ssl_ca("ssl.ca_path", "dir"), syntax="directory-path"),
        D("SSLCADNRequestFile", SSL, "SV", TAKE1, "", "CA names sent when asking for a client "
          "certificate", _validate_file(), used=U, syntax="file-path"),
        D("SSLCADNRequestPath", SSL, "SV", TAKE1, "", "Directory of CA names sent when asking "
          "for a client certificate", _validate_file("dir"), used=U, syntax="directory-path"),
        D("SSLCARevocationCheck", SSL, "SV", ITERATE, "none", "CRL checking of client "
          "certificates", _ssl_revocation_check, used=U, syntax="chain|leaf|none [flags]"),
        D("SSLCARevocationFile", SSL, "SV", TAKE1, "", "CRLs (PEM) for client authentication",
          _validate_file(), used=U, syntax="file-path"),
        D("SSLCARevocationPath", SSL, "SV", TAKE1, "", "Directory of hashed CRLs",
          _validate_file("dir"), used=U, syntax="directory-path"),
        D("SSLCipherSuite", SSL, "A", TAKE12, "DEFAULT", "OpenSSL cipher list (TLS <= 1.2), or "
          "with TLSv1.3 first the TLS 1.3 suites", _ssl_cipher_suite,
          syntax="[SSL|TLSv1.3] cipher-spec"),
        D("SSLCompression", SSL, "SV", FLAG, "off", "TLS-level compression (off only, as "
          "OpenSSL 3 has none)", _ssl_compression, used=U),
        D("SSLCryptoDevice", SSL, "S", TAKE1, "builtin", "OpenSSL engine (accepted; builtin "
          "only)", _ssl_crypto_device, used=U, syntax="engine"),
        D("SSLFIPS", SSL, "S", FLAG, "off", "OpenSSL FIPS mode (accepted; not switched)",
          _validate_flag, used=U),
        D("SSLHonorCipherOrder", SSL, "SV", FLAG, "off", "Prefer the server's cipher order",
          _flag("ssl.honor_cipher_order")),
        D("SSLInsecureRenegotiation", SSL, "SV", FLAG, "off", "Legacy renegotiation (accepted; "
          "never allowed)", _validate_flag, used=U),
        D("SSLLog", SSL, "A", TAKE1, "", "Removed in Apache 2.x: use ErrorLog", _ssl_deprecated,
          used=U),
        D("SSLLogLevel", SSL, "A", TAKE1, "", "Removed in Apache 2.x: use LogLevel",
          _ssl_deprecated, used=U),
        D("SSLOCSPDefaultResponder", SSL, "SV", TAKE1, "", "OCSP responder for client "
          "certificate checks", _nothing, used=U, syntax="uri"),
        D("SSLOCSPEnable", SSL, "SV", ITERATE, "off", "OCSP checks of client certificates",
          _ssl_ocsp_enable, used=U, syntax="on|leaf|off [no_ocsp_for_cert_ok]"),
        D("SSLOCSPNoVerify", SSL, "SV", FLAG, "off", "Skip OCSP responder certificate "
          "verification (client certificates)", _validate_flag, used=U),
        D("SSLOCSPOverrideResponder", SSL, "SV", FLAG, "off", "Always use the default "
          "responder (client certificates)", _validate_flag, used=U),
        D("SSLOCSPProxyURL", SSL, "SV", TAKE1, "", "HTTP proxy for OCSP requests, stapling "
          "included", _http_url("ssl.stapling.proxy_url"), syntax="url"),
        D("SSLOCSPResponderCertificateFile", SSL, "SV", TAKE1, "", "Trusted OCSP responder "
          "certificates (client certificates)", _validate_file(), used=U, syntax="file-path"),
        D("SSLOCSPResponderTimeout", SSL, "SV", TAKE1, "10", "OCSP timeout for client "
          "certificate checks", _validate_int, used=U, syntax="seconds"),
        D("SSLOCSPResponseMaxAge", SSL, "SV", TAKE1, "-1", "Largest OCSP response age for "
          "client certificate checks", _validate_int, used=U, syntax="seconds"),
        D("SSLOCSPResponseTimeSkew", SSL, "SV", TAKE1, "300", "OCSP clock skew for client "
          "certificate checks", _validate_int, used=U, syntax="seconds"),
        D("SSLOCSPUseRequestNonce", SSL, "SV", FLAG, "on", "Nonce in OCSP requests for client "
          "certificates", _validate_flag, used=U),
        D("SSLOpenSSLConfCmd", SSL, "SV", TAKE2, "", "An OpenSSL SSL_CONF command for this "
          "server", _ssl_conf_cmd, syntax="command value"),
        D("SSLOptions", SSL, "A", RAW, "", "Per-request SSL options (accepted)",
          _ssl_options, used=U, syntax="[+-]option ..."),
        D("SSLPassPhraseDialog", SSL, "S", TAKE1, "builtin", "How encrypted keys get their "
          "pass phrase (httpd-py needs unencrypted keys)", _ssl_pass_phrase,
          syntax="builtin|exec:path|\"|path\""),
        D("SSLProtocol", SSL, "SV", RAW, "TLSv1.2 TLSv1.3", "TLS versions to accept",
          _ssl_protocol, syntax="[+-]protocol ..."),
        D("SSLProxyCACertificatePath", SSL, "SV", TAKE1, "", "CA directory for proxied backends "
          "(accepted)", _validate_file("dir"), used=U, syntax="directory-path"),
        D("SSLProxyCARevocationCheck", SSL, "SV", ITERATE, "none", "CRL checks for proxied "
          "backends (accepted)", _ssl_revocation_check, used=U, syntax="chain|leaf|none"),
        D("SSLProxyCARevocationFile", SSL, "SV", TAKE1, "", "CRLs for proxied backends "
          "(accepted)", _validate_file(), used=U, syntax="file-path"),
        D("SSLProxyCARevocationPath", SSL, "SV", TAKE1, "", "CRL directory for proxied backends "
          "(accepted)", _validate_file("dir"), used=U, syntax="directory-path"),
        D("SSLProxyCheckPeerExpire", SSL, "SV", FLAG, "on", "Check a backend certificate's "
          "expiry (accepted)", _validate_flag, used=U),
        D("SSLProxyCipherSuite", SSL, "SV", TAKE12, "", "Ciphers towards backends (accepted)",
          _ssl_proxy_cipher_suite, used=U, syntax="[protocol] cipher-spec"),
        D("SSLProxyMachineCertificateChainFile", SSL, "SV", TAKE1, "", "Client chain towards "
          "backends (accepted)", _validate_file(), used=U, syntax="file-path"),
        D("SSLProxyMachineCertificateFile", SSL, "SV", TAKE1, "", "Client certificates towards "
          "backends (accepted)", _validate_file(), used=U, syntax="file-path"),
        D("SSLProxyMachineCertificatePath", SSL, "SV", TAKE1, "", "Client certificate directory "
          "towards backends (accepted)", _validate_file("dir"), used=U,
          syntax="directory-path"),
        D("SSLProxyProtocol", SSL, "SV", RAW, "all -SSLv3", "TLS versions towards backends "
          "(accepted)", _ssl_proxy_protocol, used=U, syntax="[+-]protocol ..."),
        D("SSLProxyVerifyDepth", SSL, "SV", TAKE1, "1", "Backend chain depth (accepted)",
          _validate_int, used=U, syntax="number"),
        D("SSLRandomSeed", SSL, "S", TAKE23, "", "Entropy sources (builtin and the system's "
          "random devices: what OpenSSL seeds itself from)", _ssl_random_seed,
          syntax="startup|connect source [bytes]"),
        D("SSLRenegBufferSize", SSL, "D", TAKE1, "131072", "Body buffer for renegotiation "
          "(accepted)", _validate_int, used=U, syntax="bytes"),
        D("SSLRequire", SSL, "D", ITERATE, "", "Legacy access expression (accepted)", _nothing,
          used=U, syntax="expression"),
        D("SSLRequireSSL", SSL, "D", RAW, "", "Refuse (403) requests not made over TLS",
          lambda w, a: w.set("require_ssl", True), override="authconfig"),
        D("SSLSessionCache", SSL, "S", TAKE1, "none", "Session cache (accepted; httpd-py uses "
          "session tickets)", _ssl_session_cache,
          syntax="none|nonenotnull|shmcb:path[(bytes)]|dbm:path|memcache:host[:port],...|"
                 "redis:host[:port],..."),
        D("SSLSessionCacheTimeout", SSL, "SV", TAKE1, "300", "Session lifetime in seconds",
          _int("ssl.session_cache_timeout"), syntax="seconds"),
        D("SSLSessionTicketKeyFile", SSL, "SV", TAKE1, "", "Session ticket keys (accepted; "
          "OpenSSL's own keys are used)", _validate_file(), used=U, syntax="file-path"),
        D("SSLSessionTickets", SSL, "SV", FLAG, "on", "TLS session tickets",
          _flag("ssl.session_tickets")),
        D("SSLSRPUnknownUserSeed", SSL, "SV", TAKE1, "", "SRP seed (accepted; no SRP)",
          _nothing, used=U, syntax="secret"),
        D("SSLSRPVerifierFile", SSL, "SV", TAKE1, "", "SRP verifier file (accepted; no SRP)",
          _validate_file(), used=U, syntax="file-path"),
        D("SSLStaplingCache", SSL, "S", TAKE1, "", "Cache of OCSP responses (required by "
          "SSLUseStapling)", _ssl_stapling_cache,
          syntax="shmcb:path[(bytes)]|dbm:path|memcache:host[:port],...|redis:host[:port],..."),
        D("SSLStaplingErrorCacheTimeout", SSL, "SV", TAKE1, "600", "Seconds an error response "
          "stays cached", _stapling_seconds("ssl.stapling.error_cache_timeout"),
          syntax="seconds"),
        D("SSLStaplingFakeTryLater", SSL, "SV", FLAG, "on", "Staple a made-up tryLater when the "
          "responder cannot be reached", _flag("ssl.stapling.fake_try_later")),
        D("SSLStaplingForceURL", SSL, "SV", TAKE1, "", "OCSP responder URL overriding the "
          "certificate's AIA", _http_url("ssl.stapling.force_url"), syntax="uri"),
        D("SSLStaplingResponderTimeout", SSL, "SV", TAKE1, "10", "Seconds allowed for an OCSP "
          "query", _stapling_responder_timeout, syntax="seconds"),
        D("SSLStaplingResponseMaxAge", SSL, "SV", TAKE1, "-1 (no limit)", "Oldest acceptable "
          "thisUpdate, in seconds", _stapling_seconds("ssl.stapling.response_max_age"),
          syntax="seconds"),
        D("SSLStaplingResponseTimeSkew", SSL, "SV", TAKE1, "300", "Clock skew allowed when "
          "checking OCSP validity times", _stapling_seconds("ssl.stapling.response_time_skew"),
          syntax="seconds"),
        D("SSLStaplingReturnResponderErrors", SSL, "SV", FLAG, "on", "Staple responses that are "
          "errors, expired or for another certificate",
          _flag("ssl.stapling.return_responder_errors")),
        D("SSLStaplingStandardCacheTimeout", SSL, "SV", TAKE1, "3600", "Seconds a good response "
          "stays cached", _stapling_seconds("ssl.stapling.standard_cache_timeout"),
          syntax="seconds"),
        D("SSLStrictSNIVHostCheck", SSL, "SV", FLAG, "off", "Refuse clients without SNI on "
          "name-based SSL vhosts", _flag("ssl.strict_sni")),
        D("SSLUserName", SSL, "A", TAKE1, "", "Variable used as the request user (accepted)",
          _nothing, used=U, syntax="varname"),
        D("SSLUseStapling", SSL, "SV", FLAG, "off", "Staple OCSP responses in handshakes",
          _flag("ssl.stapling.enabled")),
        D("SSLVerifyClient", SSL, "A", TAKE1, "none", "Client certificate verification "
          "(accepted; not requested)", _ssl_verify_client, used=U, syntax="level"),
        D("SSLVerifyDepth", SSL, "A", TAKE1, "1", "Client chain depth (accepted)",
          _validate_int, used=U, syntax="number"),
        D("SSLVHostSNIPolicy", SSL, "S", TAKE1, "secure", "How strictly SNI and Host must "
          "agree across vhosts (accepted)", _ssl_sni_policy, used=U,
          syntax="strict|secure|authonly|insecure"),
        # httpd-py extensions
        D("SSLStaplingRefresh", SSL, "SV", TAKE1, "background", "Fetch OCSP responses ahead of "
          "time in a helper process (background) or in the handshake like Apache (on-demand)",
          _stapling_refresh, ext=True, syntax="background|on-demand"),
        D("SSLStaplingRenewWindow", SSL, "SV", TAKE1, "(half the validity)", "Refresh this many "
          "seconds before nextUpdate", _stapling_renew_window, ext=True, syntax="seconds"),
        D("SSLStaplingMustStaple", SSL, "SV", TAKE1, "warn", "For Must-Staple certificates "
          "without a valid response: warn, or refuse the handshake (strict)",
          _stapling_must_staple, ext=True, syntax="warn|strict"),
        D("SSLStaplingStoreDir", SSL, "S", TAKE1, "", "Directory where OCSP responses persist "
          "across restarts", _ssl_store_dir, ext=True, syntax="directory-path"),
    ]


# Argument counts apache2 accepts (probed, in apache_directives.tsv) -> the shape that checks them.
_SHAPES = {(1, 1): TAKE1, (2, 2): TAKE2, (1, 2): TAKE12, (3, 3): TAKE3, (2, 3): TAKE23,
           (1, 3): TAKE123, (1, None): ITERATE, (2, None): ITERATE2, (0, None): RAW}


def _ignored_rows(known: set[str]) -> list[Directive]:
    rows = []
    for lname, (name, src, ctx) in modules.apache_directives().items():
        if lname in known:
            continue
        where = {"SV": "SV", "D": "D"}.get(ctx, "A")
        shape = _SHAPES.get(modules.apache_arg_counts(lname) or (0, None), RAW)
        rows.append(Directive(name, src, where, shape, "", f"Apache {src[:-2]} directive: "
                              f"accepted and ignored by httpd-py", used=False))
    return rows


# AllowOverride classes of rows defined without one (Apache's req_override of each directive).
_OVERRIDES = {
    "errordocument": "fileinfo", "addtype": "fileinfo", "redirect": "fileinfo",
    "redirectpermanent": "fileinfo", "redirecttemp": "fileinfo", "redirectmatch": "fileinfo",
    "directoryindex": "indexes", "limitrequestbody": "any", "<files": "any",
    "<filesmatch": "any", "<if": "any", "<elseif": "any", "<else": "any", "<limit": "any",
    "<limitexcept": "any", "setenvif": "fileinfo", "setenvifnocase": "fileinfo",
    "browsermatch": "fileinfo", "browsermatchnocase": "fileinfo", "setenvifexpr": "fileinfo",
}


def module_rows() -> list[Directive]:
    """The rows of every module file in ``httpd_py/modules/`` that defines ``rows()``: each
    such file holds its module's directives, per-directory settings and hooks (STYLE.md).
    Importing it registers its merge rules (dirconf.register) and its request hooks
    (http/hooks.py).  Its rows' ``module`` (e.g. "mod_headers.c") counts as implemented."""
    import importlib
    import pkgutil
    import httpd_py.modules as pkg
    rows: list[Directive] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"httpd_py.modules.{info.name}")
        fn = getattr(mod, "rows", None)
        if callable(fn):
            rows.extend(fn())
    return rows


def build_table() -> dict[str, Directive]:
    import dataclasses
    rows = _rows()
    table = {r.name.lower(): r for r in rows}
    extra = module_rows()
    for r in extra:
        if r.name.lower() in table:
            raise AssertionError(f"directive {r.name} has two rows")
        table[r.name.lower()] = r
    modules.IMPLEMENTED = modules.IMPLEMENTED | {r.module for r in extra}
    for r in _ignored_rows(set(table)):
        table[r.name.lower()] = r
    for lname, cls in _OVERRIDES.items():
        if lname in table and not table[lname].override:
            table[lname] = dataclasses.replace(table[lname], override=cls)
    return table


TABLE: dict[str, Directive] = build_table()


def lookup(name: str) -> Directive | None:
    return TABLE.get(name.lower())


def implemented_rows() -> list[Directive]:
    """The rows httpd-py implements (for -L and the docs), in table order."""
    return [r for r in TABLE.values() if r.module in modules.IMPLEMENTED
            or r.module == "mod_version.c" or r.ext]
