"""Typed errors shared by every layer.

Handlers and value parsers raise ``ConfigError(msg)`` knowing no location; the config walker
attaches the file and line with ``located``; only the CLI prints.  Each layer keeps its own error
classes below these and translates lower layers' exceptions at its boundary.
"""
from __future__ import annotations


class HttpdError(Exception):
    """Base of every error httpd-py raises on purpose."""


class ConfigError(HttpdError):
    """A configuration error, optionally tied to a file and line.

    ``str()`` gives Apache's two-line shape when a location is known::

        AH00526: Syntax error on line 12 of /etc/httpd/conf/httpd.conf:
        Invalid command 'Foo', perhaps misspelled or defined by a module not included ...

    An error of the read phase inside ``Include``d files carries the Include lines that led to
    it (``chain``, outermost first) and reads as Apache's one line (the CLI puts the program
    name first)::

        Syntax error on line 14 of httpd.conf: Syntax error on line 2 of conf.d/site.conf: ...

    ``file``/``line`` stay the innermost location (where the error is).
    """

    def __init__(self, msg: str, file: str | None = None, line: int | None = None,
                 chain: tuple[tuple[str, int], ...] = ()):
        super().__init__(msg)
        self.msg = msg
        self.file = file
        self.line = line
        self.chain = chain

    def located(self, file: str, line: int) -> "ConfigError":
        """Return this error with a location, keeping an inner location if one is set."""
        if self.file is not None:
            return self
        return type(self)(self.msg, file, line)

    def within(self, file: str, line: int) -> "ConfigError":
        """This (located) error as seen from the ``Include`` at ``file``:``line``."""
        return type(self)(self.msg, self.file, self.line, ((file, line), *self.chain))

    def __str__(self) -> str:
        if self.file is None or self.line is None:
            return self.msg
        if self.chain:
            where = "".join(f"Syntax error on line {ln} of {f}: "
                            for f, ln in (*self.chain, (self.file, self.line)))
            return where + self.msg
        return f"AH00526: Syntax error on line {self.line} of {self.file}:\n{self.msg}"


class StartupError(HttpdError):
    """The server cannot start (post-config checks, binding, privileges)."""


class SocacheError(HttpdError):
    """A shared object cache provider failed (I/O, server down, corrupt segment)."""


class StaplingError(HttpdError):
    """Fetching or validating an OCSP response failed."""
