"""mod_reqtimeout, the pure part: ``RequestReadTimeout`` values and per-connection deadlines.

No sockets and no clock of its own: every call takes ``now`` (``time.monotonic()`` seconds).

Three stages, as Apache 2.4.39+:
- ``handshake``: the TLS handshake (from accept);
- ``header``: the request line and headers; for the first request it starts when the connection
  (or its handshake) is ready, after a keep-alive wait only when the first byte of the next
  request arrives (the wait itself is KeepAliveTimeout's);
- ``body``: the request body, from the end of the headers.

A stage is ``timeout[-maxtimeout][,MinRate=rate]``: ``timeout`` seconds from the stage's start;
with MinRate each byte received moves the deadline by 1/rate s (Apache's whole microseconds per
byte), never past start + maxtimeout (0 or absent: no cap). ``timeout`` 0 disables the stage.

Observed in Debian's apache2 2.4.71 (prefork) and to be reproduced by the connection loop:
- A timed-out stage logs ``AH01382: Request <stage> read timeout`` at info (module reqtimeout).
- handshake: silent close. header: a 408 with ``Connection: close`` once the request line is
  complete; a partial request line: silent close (the access log still records ``- 408``).
  body: 408 with ``Connection: close``.
- A read that starts with less than 1 s left still waits 1 s (Apache's floor): a client
  trickling a byte a second past its deadline is cut when that byte arrives.  Bytes that arrive
  late still extend the deadline before it is checked.
- Each blocking read also stays bounded by ``Timeout``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from httpd_py.errors import ConfigError

STAGES = ("handshake", "header", "body")
READ_FLOOR = 1.0                 # Apache never asks a read to wait less than one second
_USEC = 1_000_000
_LONG_MAX = 2 ** 63 - 1
_FORM = "Invalid RequestReadTimeout parameter. Parameter must be in the form 'key=value'"


@dataclass(frozen=True)
class Stage:
    """One stage's limits; ``timeout`` 0 disables it; ``max_timeout`` 0: no cap; ``min_rate``
    0: no extension (bytes per second)."""
    timeout: int
    max_timeout: int = 0
    min_rate: int = 0

    @property
    def enabled(self) -> bool:
        return self.timeout > 0

    @property
    def usec_per_byte(self) -> int:
        return _USEC // self.min_rate if self.min_rate > 0 else 0

    def __str__(self) -> str:
        s = str(self.timeout) + (f"-{self.max_timeout}" if self.max_timeout else "")
        return s + (f",MinRate={self.min_rate}" if self.min_rate else "")


@dataclass(frozen=True)
class ReadTimeouts:
    """The stages one server set; None: not set here (inherited, then the module's default)."""
    handshake: Stage | None = None
    header: Stage | None = None
    body: Stage | None = None

    def stage(self, name: str) -> Stage:
        """The stage in force: this value's, else the module's compiled-in default."""
        return getattr(self, name) or getattr(DEFAULT, name)

    def over(self, base: "ReadTimeouts | None") -> "ReadTimeouts":
        """Per-stage merge as Apache's: a stage set here wins, the others come from ``base``."""
        if base is None:
            return self
        return ReadTimeouts(*(getattr(self, n) or getattr(base, n) for n in STAGES))

    def resolved(self) -> "ReadTimeouts":
        return ReadTimeouts(*(self.stage(n) for n in STAGES))

    def __str__(self) -> str:
        return " ".join(f"{n}={getattr(self, n)}" for n in STAGES if getattr(self, n))


# The defaults when mod_reqtimeout is loaded and no directive sets a stage (2.4.39+).
DEFAULT = ReadTimeouts(handshake=Stage(0), header=Stage(20, 40, 500), body=Stage(20, 0, 500))


# -- parsing --------------------------------------------------------------------------------------
def _strtol(text: str) -> tuple[int | None, str]:
    """C's strtol in base 10: leading white space, a sign, digits (clamped to a long);
    (None, text) when no digit."""
    i = 0
    while i < len(text) and text[i] in " \t\n\v\f\r":
        i += 1
    j = i + (1 if i < len(text) and text[i] in "+-" else 0)
    k = j
    while k < len(text) and text[k] in "0123456789":
        k += 1
    if k == j:
        return None, text
    v = int(text[i:k])
    return max(-_LONG_MAX - 1, min(_LONG_MAX, v)), text[k:]


def _number(text: str) -> int:
    """A non-negative count as mod_reqtimeout reads it: a long narrowed to a C int (so a value
    that wraps to a negative int is refused and one that wraps to a positive int is kept)."""
    v, rest = _strtol(text)
    if v is None:
        raise ConfigError(f"Value '{text}' not numerical")
    if rest:
        raise ConfigError(f"Cannot parse '{rest}'")
    v &= 0xFFFFFFFF
    if v >= 2 ** 31:
        raise ConfigError("Value must be non-negative")
    return v


def parse_stage(value: str) -> Stage:
    """``timeout[-maxtimeout][,MinRate=rate]``, checked in Apache's order."""
    rate = 0
    cut = value.lower().find(",minrate=")
    has_rate = cut >= 0
    if has_rate:
        rate = _number(value[cut + len(",minrate="):])
        if rate == 0:
            raise ConfigError("Minimum data rate must be larger than 0")
        value = value[:cut]
    initial, dash, maximum = value.partition("-")
    max_timeout = 0
    if dash:
        if not has_rate:
            raise ConfigError("Must set MinRate option if using timeout range")
        max_timeout = _number(maximum)
    timeout = _number(initial)
    if max_timeout and max_timeout <= timeout:
        raise ConfigError("Maximum timeout must be larger than initial timeout")
    return Stage(timeout, max_timeout, rate)


def parse_arg(arg: str) -> tuple[str, Stage]:
    """One ``stage=value`` word -> (stage name, Stage); ConfigError with Apache's text."""
    key, eq, value = arg.partition("=")
    if not eq:
        raise ConfigError(_FORM)
    name = key.lower()
    try:
        if name not in STAGES:
            raise ConfigError("Unknown RequestReadTimeout parameter")
        return name, parse_stage(value)
    except ConfigError as e:
        raise ConfigError(f"RequestReadTimeout: {arg}: {e.args[0] if e.args else e}") from None


def parse(args: list[str], base: ReadTimeouts | None = None) -> ReadTimeouts:
    """The words of one ``RequestReadTimeout`` line over ``base`` (an earlier line of the same
    server): a later word for the same stage wins; stages not named keep ``base``'s."""
    out = base or ReadTimeouts()
    for arg in args:
        name, stage = parse_arg(arg)
        out = dataclasses.replace(out, **{name: stage})
    return out


# -- per connection -------------------------------------------------------------------------------
class Deadlines:
    """The running stage of one connection.  ``timeouts`` is the vhost's value (or
    ``DEFAULT``); unset stages take the default.

    The connection loop calls ``start(stage, now)`` when a stage begins, ``received(n, now)``
    after each read that returned n > 0 bytes, then ``expired(now)``; ``read_timeout(now)`` is
    how long the next blocking read may wait (combine with Timeout: the smaller); ``stop()``
    when no stage runs (response written, keep-alive wait)."""

    __slots__ = ("_stages", "stage", "_at", "_max_at", "_usec_per_byte")

    def __init__(self, timeouts: ReadTimeouts | None = None):
        t = (timeouts or DEFAULT).resolved()
        self._stages = {n: t.stage(n) for n in STAGES}
        self.stage: str | None = None
        self._at: int | None = None          # microseconds, to extend as Apache does
        self._max_at: int | None = None
        self._usec_per_byte = 0

    def limits(self, stage: str) -> Stage:
        return self._stages[stage]

    def start(self, stage: str, now: float) -> None:
        """Begin ``stage`` at ``now``; a disabled stage (timeout 0) leaves no deadline."""
        s = self._stages[stage]
        self.stage = stage
        if not s.enabled:
            self._at = self._max_at = None
            self._usec_per_byte = 0
            return
        t0 = round(now * _USEC)
        self._at = t0 + s.timeout * _USEC
        self._max_at = t0 + s.max_timeout * _USEC if s.max_timeout else None
        self._usec_per_byte = s.usec_per_byte

    def stop(self) -> None:
        self.stage = None
        self._at = self._max_at = None
        self._usec_per_byte = 0

    def received(self, nbytes: int, now: float) -> None:
        """``nbytes`` arrived: MinRate moves the deadline (from the deadline, not from now),
        capped at the stage's maximum.  ``now`` is not used (Apache extends from the deadline,
        whenever the bytes came); callers pass it so the trace reads the same everywhere."""
        if self._at is None or nbytes <= 0 or not self._usec_per_byte:
            return
        at = self._at + nbytes * self._usec_per_byte
        self._at = min(at, self._max_at) if self._max_at is not None else at

    def deadline(self) -> float | None:
        """Absolute time the current stage times out; None: no stage or a disabled one."""
        return None if self._at is None else self._at / _USEC

    def expired(self, now: float) -> bool:
        return self._at is not None and round(now * _USEC) >= self._at

    def read_timeout(self, now: float) -> float | None:
        """Seconds the next blocking read may wait: what is left, but at least READ_FLOOR as
        Apache; 0.0 when already expired (time out without reading); None: no limit here."""
        if self._at is None:
            return None
        left = (self._at - round(now * _USEC)) / _USEC
        return 0.0 if left <= 0 else max(left, READ_FLOOR)
