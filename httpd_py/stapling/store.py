"""The staple store: one file per certificate, so staples survive restarts, crashes and reboots.

Directory ``SSLStaplingStoreDir`` (default ``<DefaultRuntimeDir>/ssl-staples``), mode 0700::

    <dir>/<sha1-of-cert-der, 40 hex>.json     one record (below), mode 0600
    <dir>/.<name>.<pid>.tmp                   a record being written (renamed over the record)

A record is JSON::

    {"version": 1, "key": "<hex>",
     "der": "<base64 of the last good OCSP response DER>" | null,
     "fetched_at": t, "this_update": t, "next_update": t | null, "cert_status": "good",
     "subject": "...", "serial": "<hex>", "responder": "http://...",
     "last_attempt": t, "last_error": "..." | null, "failures": n,
     "next_refresh": t, "requests": n}

Only the background stapler writes (one process per server); a write is a temporary file,
fsync, rename, so a reader (the stapler after a crash, ``stapling-status``) sees a whole old or a
whole new record, never a torn one.  A record is data, not trust: on load the stapler checks the
response again (CertID, signature, times) before it staples it.  A file that cannot be read or
parsed is reported and ignored, never deleted (the next good fetch replaces it).
"""
from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field, fields
from typing import Iterator

from httpd_py.errors import StaplingError

VERSION = 1
DIR_NAME = "ssl-staples"


@dataclass
class Record:
    """What the stapler knows about one certificate's staple."""
    key: bytes                         # cache key: SHA-1 of the certificate DER
    der: bytes | None = None           # last good response
    fetched_at: float | None = None
    this_update: float | None = None
    next_update: float | None = None
    cert_status: str | None = None     # "good", "revoked", "unknown"
    subject: str = ""
    serial: str = ""
    responder: str = ""
    last_attempt: float | None = None
    last_error: str | None = None
    failures: int = 0
    next_refresh: float | None = None
    requests: int = 0                  # responder requests made by this server, ever
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        # a shallow copy of the fields (asdict's deep copy was half of a save's CPU); the
        # values are JSON's own types, and ``extra`` comes from JSON
        d = {name: getattr(self, name) for name in _FIELDS}
        d["key"] = self.key.hex()
        d["der"] = base64.b64encode(self.der).decode("ascii") if self.der is not None else None
        return json.dumps({"version": VERSION, **d}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Record":
        """Parse a record; raise ValueError (with the reason) on anything malformed."""
        try:
            d = json.loads(text)
        except ValueError as e:
            raise ValueError(f"malformed staple record: {e}") from None
        if not isinstance(d, dict) or d.get("version") != VERSION:
            raise ValueError("not a version-1 staple record")
        try:
            key = bytes.fromhex(d["key"])
            der = base64.b64decode(d["der"], validate=True) if d.get("der") is not None else None
            rec = cls(key=key, der=der)
            for name in ("fetched_at", "this_update", "next_update", "last_attempt", "next_refresh"):
                v = d.get(name)
                if v is not None and not isinstance(v, (int, float)):
                    raise ValueError(f"{name} is not a number")
                setattr(rec, name, None if v is None else float(v))
            for name in ("cert_status", "last_error"):
                v = d.get(name)
                if v is not None and not isinstance(v, str):
                    raise ValueError(f"{name} is not a string")
                setattr(rec, name, v)
            for name in ("subject", "serial", "responder"):
                setattr(rec, name, str(d.get(name) or ""))
            for name in ("failures", "requests"):
                v = d.get(name, 0)
                if not isinstance(v, int) or v < 0:
                    raise ValueError(f"{name} is not a count")
                setattr(rec, name, v)
            rec.extra = d.get("extra") or {}
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"malformed staple record: {e}") from None
        if len(key) != 20:
            raise ValueError("malformed staple record: key is not 20 bytes")
        return rec


_FIELDS = tuple(f.name for f in fields(Record))


def default_dir(cfg) -> str | None:
    """The store directory for a ``ServerConfig``: SSLStaplingStoreDir, else the runtime dir's."""
    if cfg.stapling_store_dir:
        return cfg.stapling_store_dir
    if cfg.default_runtime_dir:
        return os.path.join(cfg.default_runtime_dir, DIR_NAME)
    return None


class StapleStore:
    """The records of one store directory."""

    def __init__(self, directory: str):
        self.directory = os.path.abspath(directory)

    def ensure(self) -> None:
        """Create the directory (0700) if needed; StaplingError with the reason if impossible."""
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        except OSError as e:
            raise StaplingError(f"cannot create staple store {self.directory}: {e.strerror}") from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise StaplingError(f"staple store {self.directory} is not writable")

    def path(self, key: bytes) -> str:
        return os.path.join(self.directory, key.hex() + ".json")

    def load(self, key: bytes) -> Record | None:
        """The record for ``key``; None when there is none.  Raises ValueError when unreadable."""
        try:
            with open(self.path(key), encoding="utf-8") as f:
                text = f.read(1 << 20)
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"cannot read {self.path(key)}: {e}") from None
        rec = Record.from_json(text)
        if rec.key != key:
            raise ValueError(f"{self.path(key)} holds the record of another certificate")
        return rec

    def save(self, rec: Record, *, sync_dir: bool = True) -> None:
        """Write ``rec`` atomically (temporary file, fsync, rename).  Raises OSError.
        ``sync_dir=False``: the caller fsyncs the directory once after a batch (``sync_dir``):
        the directory's fsync was half of a save's time at start-up, 1,000 of them in a row."""
        final = self.path(rec.key)
        tmp = os.path.join(self.directory, f".{rec.key.hex()}.{os.getpid()}.tmp")
        data = rec.to_json().encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if sync_dir:
            self.sync_dir()

    def sync_dir(self) -> None:
        """fsync the directory: the renames of the records saved so far are durable."""
        try:
            dfd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass  # the rename is done; a directory fsync failing only weakens crash safety

    def keys(self) -> Iterator[bytes]:
        """Keys of every record file in the directory."""
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return
        for name in names:
            stem, dot, ext = name.partition(".")
            if ext != "json" or len(stem) != 40:
                continue
            try:
                yield bytes.fromhex(stem)
            except ValueError:
                continue
