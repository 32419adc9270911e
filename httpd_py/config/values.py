"""Strict value parsers shared by every directive handler.

Each takes the argument text (and the directive name for messages) and returns a typed value or
raises ``ConfigError(msg)`` without a location (the walker adds file and line).  Unlike Apache's
``atoi``, "abc" is never 0 and "10x" is never 10.
"""
from __future__ import annotations

import ipaddress
import os
import re

from httpd_py.config import modules
from httpd_py.config.model import (SHMCB_DEFAULT_SIZE, SHMCB_MAX_SIZE, SHMCB_MIN_SIZE, MutexSpec,
                                   SocacheSpec)
from httpd_py.errors import ConfigError

_INT = re.compile(r"[+-]?[0-9]+\Z")
_NUM = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")


def integer(value: str, name: str, *, minimum: int | None = 0, maximum: int | None = None) -> int:
    """A whole decimal number within [minimum, maximum]."""
    if not _INT.match(value):
        raise ConfigError(f"{name}: '{value}' is not a whole number")
    n = int(value)
    if minimum is not None and n < minimum:
        raise ConfigError(f"{name}: invalid argument '{value}' (must be >= {minimum})")
    if maximum is not None and n > maximum:
        raise ConfigError(f"{name}: invalid argument '{value}' (must be <= {maximum})")
    return n


_UNITS = re.compile(r"([0-9]+)(ms|s|mi|h)?\Z", re.I)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "mi": 60, "h": 3600}


def seconds(value: str, name: str, *, units: bool = False, fraction: bool = False,
            minimum: float | None = 0) -> float | int:
    """The one seconds parser: every directive that takes a time goes through it.

    ``units``: Apache's ap_timeout_parameter_parse (Timeout, KeepAliveTimeout, RedisTimeout,
    ProxyTimeout, ...): a whole number with an optional unit ms, s, mi or h, returned as float
    seconds.  Otherwise a count of seconds: an int, or with ``fraction`` a float (0.5).
    ``minimum`` (None: no bound) is checked on the result."""
    if units:
        m = _UNITS.match(value)
        if not m:
            raise ConfigError(f"{name} has wrong format: '{value}' (a whole number with an "
                              f"optional unit ms, s, mi or h)")
        n: float | int = float(m.group(1)) * _UNIT_SECONDS[(m.group(2) or "s").lower()]
    else:
        pattern, what, convert = ((_NUM, "a number", float) if fraction
                                  else (_INT, "a whole number", int))
        if not pattern.match(value):
            raise ConfigError(f"{name}: invalid argument '{value}' ({what} of seconds)")
        n = convert(value)
    if minimum is not None and n < minimum:
        raise ConfigError(f"{name}: invalid argument '{value}' (must be >= {minimum:g})")
    return n


def size(value: str, name: str) -> int:
    """A non-negative byte count."""
    return integer(value, name, minimum=0)


def flag(value: str, name: str) -> bool:
    """On/Off, case-insensitive, with Apache's message."""
    v = value.lower()
    if v == "on":
        return True
    if v == "off":
        return False
    raise ConfigError(f"{name} must be On or Off")


def choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    v = value.lower()
    for c in choices:
        if v == c.lower():
            return c
    raise ConfigError(f"{name}: '{value}' must be one of {', '.join(choices)}")


def path(value: str, server_root: str) -> str:
    """A filesystem path, made absolute against ServerRoot (Apache's ap_server_root_relative)."""
    if not value:
        raise ConfigError("empty path")
    if "\0" in value:
        raise ConfigError(f"invalid path '{value}'")
    return os.path.normpath(value if os.path.isabs(value) else os.path.join(server_root, value))


def log_target(value: str, server_root: str) -> str:
    """ErrorLog / CustomLog target: "|program" and "syslog[:facility]" kept, files made absolute."""
    if value.startswith("|") or value.startswith("syslog"):
        return value
    return path(value, server_root)


def port(value: str, what: str = "port") -> int:
    if not value.isdigit():
        raise ConfigError(f"Invalid {what} '{value}'")
    n = int(value)
    if not 0 < n < 65536:
        raise ConfigError(f"Invalid {what} '{value}' (must be 1-65535)")
    return n


def split_host_port(text: str) -> tuple[str, str | None]:
    """``[v6]:port``, ``host:port``, ``host``, ``port`` -> (host, port text or None)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"Invalid address '{text}' (missing ']')")
        host, rest = text[1:end], text[end + 1:]
        if rest == "":
            return host, None
        if not rest.startswith(":"):
            raise ConfigError(f"Invalid address '{text}'")
        return host, rest[1:]
    if text.count(":") > 1:          # bare IPv6 without a port
        return text, None
    if ":" in text:
        host, p = text.split(":", 1)
        return host, p
    return text, None


def listen(args: list[str]) -> tuple[str, int, str]:
    """``Listen [addr:]port [protocol]`` -> (host, port, protocol); host "" is every address."""
    text = args[0]
    host, p = split_host_port(text)
    if p is None:
        if host.isdigit():
            host, p = "", host
        else:
            raise ConfigError("Port must be specified")
    if not p.isdigit() or not 0 < int(p) < 65536:
        raise ConfigError("Invalid address or port")
    if host == "*":
        host = ""
    if host:
        _check_host(host)
    protocol = args[1].lower() if len(args) > 1 else ""
    return host, int(p), protocol


_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\Z")


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise ConfigError("Invalid address or port")


def vhost_addr(text: str) -> tuple[str, int | None]:
    """One ``<VirtualHost>`` address: ``*``, ``_default_``, IP or name, optional ``:port``/``:*``."""
    host, p = split_host_port(text)
    if host == "":
        raise ConfigError(f"Invalid address or port in <VirtualHost> argument '{text}'")
    if p is None or p == "*":
        return host, None
    if not p.isdigit() or not 0 <= int(p) < 65536:
        raise ConfigError(f"The address or port is invalid: '{text}'")
    if host not in ("*", "_default_"):
        _check_host(host)
    return host, int(p) or None


_PROTOCOLS = {"sslv3": "SSLv3", "tlsv1": "TLSv1", "tlsv1.1": "TLSv1.1", "tlsv1.2": "TLSv1.2",
              "tlsv1.3": "TLSv1.3"}
_ALL = frozenset({"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"})


def protocols(args: list[str], name: str = "SSLProtocol",
              base: frozenset[str] = frozenset()) -> frozenset[str]:
    """SSLProtocol: ``[+-]proto ...``; a word without +/- starts from nothing (Apache's rule).

    SSLv3 is accepted (OpenSSL 3 cannot speak it, so it never ends up in the set).
    """
    result = set(base)
    for word in args:
        op = ""
        if word[:1] in ("+", "-"):
            op, word = word[0], word[1:]
        w = word.lower()
        if w == "all":
            items = set(_ALL)
        elif w in _PROTOCOLS:
            items = {_PROTOCOLS[w]} - {"SSLv3"}
        else:
            raise ConfigError(f"{name}: Illegal protocol '{word}'")
        if op == "-":
            result -= items
        elif op == "+":
            result |= items
        else:
            result = set(items)
    return frozenset(result)


SOCACHE_PROVIDERS = modules.socache_providers(())       # every provider httpd-py builds in
_DEFAULT_PORTS = {"memcache": 11211, "redis": 6379}


def socache(arg: str, directive: str, server_root: str, *, kind: str = "stapling",
            providers: tuple[str, ...] = SOCACHE_PROVIDERS) -> SocacheSpec:
    """``shmcb[:path[(bytes)]]``, ``dbm[:path]``, ``memcache:h[:p],...``, ``redis:h[:p],...``.

    ``providers``: the names the loaded socache modules register (``modules.socache_providers``);
    a provider is looked up by its exact name, as Apache's ap_lookup_provider.  Errors follow
    Apache's wording (mod_ssl's "not supported" message, whose punctuation differs between the
    session and the stapling cache, and the socache providers' "Invalid argument: ..."
    messages), prefixed with the directive name.
    """
    name, sep, rest = arg.partition(":")
    provider = name
    if provider not in providers:
        end = "." if kind == "session" else ""
        raise ConfigError(
            f"{directive}: '{name}' {kind} cache not supported (known names: "
            f"{','.join(providers)}){end} Maybe you need to load the appropriate socache "
            f"module (mod_socache_{name}?){end}")
    if provider in ("shmcb", "default"):
        return _shmcb(rest, arg, directive, server_root)
    if provider == "dbm":
        p = path(rest, server_root) if rest else None
        return SocacheSpec(provider="dbm", raw=arg, path=p)
    return SocacheSpec(provider=provider, raw=arg, servers=_servers(rest, provider, directive))


def _shmcb(rest: str, raw: str, directive: str, server_root: str) -> SocacheSpec:
    if not rest:
        return SocacheSpec(provider="shmcb", raw=raw)
    p, shm_size = rest, SHMCB_DEFAULT_SIZE
    open_at = rest.rfind("(")
    if open_at >= 0:
        if not rest.endswith(")"):
            raise ConfigError(f"{directive}: Invalid argument: no closing parenthesis or cache size "
                              "missing after pathname with parenthesis")
        digits = rest[open_at + 1:-1]
        p = rest[:open_at]
        if digits and not re.fullmatch(r"\s*[+-]?[0-9]+", digits):
            raise ConfigError(f"{directive}: Invalid argument: cache size not numerical")
        shm_size = int(digits) if digits else 0
        if shm_size < SHMCB_MIN_SIZE:
            raise ConfigError(f"{directive}: Invalid argument: size has to be >= "
                              f"{SHMCB_MIN_SIZE} bytes")
        if shm_size >= SHMCB_MAX_SIZE:
            raise ConfigError(f"{directive}: Invalid argument: size has to be < {SHMCB_MAX_SIZE} "
                              "bytes on this platform")
    elif ")" in rest:
        raise ConfigError(f"{directive}: Invalid argument: no opening parenthesis")
    return SocacheSpec(provider="shmcb", raw=raw, path=path(p, server_root) if p else None,
                       size=shm_size)


def _servers(rest: str, provider: str, directive: str) -> tuple[tuple[str, int], ...]:
    if not rest:
        raise ConfigError(f"{directive}: {provider} cache needs a list of servers "
                          f"(host[:port][,host[:port]...])")
    servers = []
    for item in rest.split(","):
        item = item.strip()
        if not item:
            raise ConfigError(f"{directive}: empty server name in '{rest}'")
        host, p = split_host_port(item)
        if not host:
            raise ConfigError(f"{directive}: missing host in '{item}'")
        try:
            _check_host(host)
        except ConfigError:
            raise ConfigError(f"{directive}: invalid host '{host}'") from None
        try:
            n = port(p, f"{provider} port") if p is not None else _DEFAULT_PORTS[provider]
        except ConfigError as e:
            raise ConfigError(f"{directive}: {e.msg}") from None
        servers.append((host, n))
    return tuple(servers)


# Mutex types Apache's modules register (modules.MUTEX_TYPES), and which of them refuse "none"
# (mod_ssl registers its three without AP_MUTEX_ALLOW_NONE).
MUTEX_NAMES = tuple(modules.MUTEX_TYPES)
_NO_NONE = frozenset({"ssl-cache", "ssl-stapling", "ssl-stapling-refresh"})
_MECHANISMS = {"default": "default", "yes": "default", "none": "none", "no": "none",
               "fcntl": "fcntl", "flock": "flock", "file": "file", "posixsem": "default",
               "sysvsem": "default", "sem": "default", "pthread": "default"}
_MECH_HELP = ("(Mutex mechanisms are: 'none', 'default', 'flock:/path/to/file', "
              "'fcntl:/path/to/file', 'file:/path/to/file', 'pthread', 'sysvsem', 'posixsem', "
              "'sem')")


def mutex(args: list[str], server_root: str, runtime_dir: str,
          types: frozenset[str] | tuple[str, ...] = MUTEX_NAMES) -> list[MutexSpec]:
    """``Mutex mechanism[:dir] [name ...] [OmitPID]`` -> one MutexSpec per named mutex.
    ``types``: the mutex types the loaded modules register (``modules.mutex_types``)."""
    if not args:
        raise ConfigError(f"Mutex requires at least a mechanism argument {_MECH_HELP}")
    mech_arg, names, omit_pid = args[0], [], False
    for a in args[1:]:
        if a.lower() == "omitpid":
            omit_pid = True
        else:
            names.append(a.lower())
    mech_name, sep, directory = mech_arg.partition(":")
    mechanism = _MECHANISMS.get(mech_name.lower())
    if mechanism is None or (sep and mechanism not in ("fcntl", "flock", "file")):
        raise ConfigError(f"Invalid Mutex argument {mech_arg} {_MECH_HELP}")
    if sep:
        if not directory:
            raise ConfigError(f"Invalid Mutex argument {mech_arg} {_MECH_HELP}")
        directory = path(directory, server_root)
        if not os.path.isdir(directory):
            raise ConfigError(f"Invalid Mutex directory in argument {mech_arg}")
    else:
        directory = runtime_dir
    specs = []
    for n in names or ["default"]:
        if n not in types:
            raise ConfigError(f"Mutex type {n} is not valid")
        if mechanism == "none" and n in _NO_NONE:
            raise ConfigError(f"None is not allowed for mutex type {n}")
        specs.append(MutexSpec(name=n, mechanism=mechanism, directory=directory,
                               omit_pid=omit_pid, using_defaults=False))
    return specs

def unquote_expr(text: str) -> str:
    """An expression argument without one level of enclosing double quotes (as Apache)."""
    t = text.strip()
    if len(t) >= 2 and t[0] == '"' and t[-1] == '"':
        t = t[1:-1]
    return t
