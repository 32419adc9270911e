"""The row type, the argument shapes and the handler builders every row file uses."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable

from httpd_py.config import values
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


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True)
class FromServerRoot:
    """A default computed at load: ``rel`` under the ServerRoot (ErrorLog, PidFile, ...)."""
    rel: str

    def resolve(self, server_root: str) -> str:
        return os.path.join(server_root, self.rel)


class UnknownField(ValueError):
    """A row names a model field that does not exist (raised when the row is built)."""


def _nested() -> dict:
    from httpd_py.config import model as m
    return {(m.VHost, "ssl"): m.SSLConfig, (m.SSLConfig, "stapling"): m.StaplingConfig,
            (m.ServerConfig, "prefork"): m.PreforkConfig}


def model_field(path: str) -> dataclasses.Field:
    """The model dataclass field a row's ``field`` names: "x", "ssl.x", "ssl.stapling.x" in
    ``VHost``; "server.x", "server.prefork.x" in ``ServerConfig``."""
    from httpd_py.config import model as m
    cls, rest = (m.ServerConfig, path[len("server."):]) if path.startswith("server.") \
        else (m.VHost, path)
    parts = rest.split(".")
    nested = _nested()
    for i, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields or (i < len(parts) - 1 and (cls, part) not in nested):
            raise UnknownField(f"directive row field {path!r}: {cls.__name__} has no field "
                               f"{part!r}")
        if i == len(parts) - 1:
            return fields[part]
        cls = nested[(cls, part)]
    raise UnknownField(path)


def setting_key(field: str) -> tuple[bool, str]:
    """(server-wide?, the key the walk records) of a row's field."""
    if field.startswith("server."):
        return True, field[len("server."):]
    return False, field


def default_text(value: Any) -> str:
    """A typed default as the docs show it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "On" if value else "Off"
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    if isinstance(value, FromServerRoot):
        return value.rel
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    if isinstance(value, frozenset):
        return " ".join(sorted(map(str, value)))
    return str(value)


@dataclass(frozen=True)
class Parser:
    """A row's value parser: (walk, argument text) -> the field's value.  ``kind`` names it in
    the docs (flag, int, seconds, path, text, choice)."""
    kind: str
    fn: Callable[[Any, str], Any]

    def __call__(self, w, text: str) -> Any:
        return self.fn(w, text)


def flag() -> Parser:
    return Parser("flag", lambda w, t: values.flag(t, w.name))


def integer(minimum: int | None = 0, maximum: int | None = None) -> Parser:
    return Parser("int", lambda w, t: values.integer(t, w.name, minimum=minimum,
                                                      maximum=maximum))


def seconds(**kw) -> Parser:
    """values.seconds (units=True: Apache's ms/s/mi/h suffixes)."""
    return Parser("seconds", lambda w, t: values.seconds(t, w.name, **kw))


def path(must_exist: str | None = None) -> Parser:
    """ServerRoot-relative path; must_exist "file" (non-empty) or "dir"."""
    def fn(w, t):
        p = values.path(t, w.server_root)
        if must_exist:
            _check_exists(w.name, p, must_exist)
        return p
    return Parser("path", fn)


def text(lower: bool = False) -> Parser:
    return Parser("text", lambda w, t: t.lower() if lower else t)


def choice(*choices: str) -> Parser:
    return Parser("choice", lambda w, t: values.choice(t, w.name, choices))


def _derived(field: str, parse: Parser) -> Callable:
    server_wide, key = setting_key(field)

    def h(w, args):
        v = parse(w, args[0])
        (w.glob if server_wide else w.set)(key, v)
    h.derived = True
    return h


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
    # Typed rows: the model field the directive fills ("keep_alive", "ssl.stapling.enabled";
    # "server.<name>" for ServerConfig's server-wide fields), its value parser (the handler is
    # derived from field + parse when none is given) and its default value, stated here once
    # (FromServerRoot: computed at load).  ``default`` (docs text) is derived from ``value``.
    field: str = ""
    parse: "Parser | None" = None
    value: Any = NO_DEFAULT

    def __post_init__(self) -> None:
        if self.field:
            model_field(self.field)          # an unknown field fails the import, here
        elif self.parse is not None or self.value is not NO_DEFAULT:
            raise ValueError(f"row {self.name}: parse= and value= need field=")
        if self.parse is not None and self.handler is None:
            object.__setattr__(self, "handler", _derived(self.field, self.parse))
        if self.value is not NO_DEFAULT and not self.default:
            object.__setattr__(self, "default", default_text(self.value))

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
def _check_exists(name: str, p: str, kind: str) -> None:
    if kind == "file":
        if not os.path.isfile(p) or os.path.getsize(p) == 0:
            raise ConfigError(f"{name}: file '{p}' does not exist or is empty")
    elif kind == "dir":
        if not os.path.isdir(p):
            raise ConfigError(f"{name}: directory '{p}' does not exist")


def _validate_flag(w, args):
    values.flag(args[0], w.name)


def _validate_int(w, args):
    values.integer(args[0], w.name, minimum=0)


def _validate_file(kind: str = "file") -> Callable:
    def h(w, args):
        _check_exists(w.name, values.path(args[0], w.server_root), kind)
    return h


def _nothing(w, args):
    pass
