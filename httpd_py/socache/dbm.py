"""dbm: the ``dbm[:path]`` socache provider, on an SQLite file (Python's stdlib).

Apache's mod_socache_dbm opens an APR DBM file for every call and needs the global mutex; this
Python has no gdbm/ndbm module, and ``dbm.dumb`` is not safe across processes, so the provider
keeps one table ``(key BLOB PRIMARY KEY, value BLOB, expires REAL)`` in an SQLite file in WAL mode.
SQLite does its own locking, so the provider is mp-safe (the caller may still hold a mutex).

WAL mode needs ``<path>-wal`` and ``<path>-shm`` beside the database, and SQLite deletes them
when the last connection closes; a worker that dropped privileges could not create them again
in a directory only root may write (DefaultRuntimeDir).  So the master keeps one connection open
from ``init`` to ``destroy`` (never used after fork: children open their own), the three files
exist for the server's life, and ``files()`` names them for the hand-over to User/Group, as
Apache gives its DBM files to User.

* Path: ``dbm:/path`` or, like Apache, ``<DefaultRuntimeDir>/socache-dbm-<namespace>``; created
  mode 0600.  Unlike Apache, ``destroy`` keeps the file: entries survive a restart.
* Connections are opened lazily in the process that uses them (never shared across fork).
* Expired rows are misses and are purged every ``PURGE_EVERY`` stores of a process.
* A file that is not a usable database is logged (HP05007) and rebuilt; a runtime error (disk
  full, lock held longer than ``timeout``) is logged (HP05008) and answered as a miss.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from typing import Iterator

from httpd_py import logids
from httpd_py.errors import SocacheError
from httpd_py.log import error_log
from httpd_py.socache.base import MODULE, new_counters, refuse_oversized

MAX_ENTRY_SIZE = 1 << 20
PURGE_EVERY = 256
_SCHEMA = ("CREATE TABLE IF NOT EXISTS socache "
           "(k BLOB PRIMARY KEY, v BLOB NOT NULL, e REAL NOT NULL)")


class DbmCache:
    name = "dbm"
    mp_safe = True
    max_entry_size = MAX_ENTRY_SIZE

    def __init__(self, path: str | None = None, runtime_dir: str = "", timeout: float = 1.0):
        self.path = path
        self.runtime_dir = runtime_dir or tempfile.gettempdir()
        self.timeout = timeout
        self.namespace = ""
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._keeper: sqlite3.Connection | None = None    # the master's, see the docstring
        self._keeper_pid = 0
        self._stores = 0
        self.counters = new_counters("purged")

    # ---- lifecycle -------------------------------------------------------------------------

    def init(self, namespace: str) -> None:
        self.namespace = namespace
        if self.path is None:
            self.path = os.path.join(self.runtime_dir, f"socache-dbm-{namespace}")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            os.fchmod(fd, 0o600)
            os.close(fd)
        except OSError as e:
            error_log.error(MODULE, logids.DBM_ERROR, f"dbm: cannot open {self.path}: {e}")
            raise SocacheError(f"dbm: cannot open {self.path}: {e}") from e
        try:
            self._setup()
        except sqlite3.DatabaseError as e:
            error_log.warn(MODULE, logids.DBM_REBUILT,
                           f"dbm: {self.path} is not a usable cache ({e}); rebuilding it")
            self._close()
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.close(fd)
            self._setup()
        # kept open (and referenced: a child dropping its _db must not close it), unused after
        # fork: the -wal and -shm files live as long as the server
        self._keeper, self._keeper_pid = self._db, os.getpid()

    def _setup(self) -> None:
        db = self._conn()
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(_SCHEMA)
        db.execute("SELECT count(*) FROM socache").fetchone()

    def files(self) -> tuple[str, ...]:
        """The files the workers open: the database, its WAL and its shared-memory index."""
        return (self.path, self.path + "-wal", self.path + "-shm") if self.path else ()

    def child_init(self) -> None:
        self._db = None                   # never close the parent's connection from a child
        # (the parent's connection stays referenced by _keeper, so it is not closed by GC either)

    def destroy(self) -> None:
        self._close()
        keeper, self._keeper = self._keeper, None
        if keeper is not None and self._keeper_pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                keeper.close()

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None and self._pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():
            if self.path is None:
                raise SocacheError("dbm: used before init()")
            self._db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._pid = os.getpid()
        return self._db

    def _failed(self, what: str, e: Exception) -> None:
        self.counters["errors"] += 1
        error_log.error(MODULE, logids.DBM_ERROR, f"dbm {self.path}: {what} failed: {e}")

    # ---- the provider API ------------------------------------------------------------------

    def store(self, key: bytes, value: bytes, expires_at: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if refuse_oversized(self, logids.DBM_ERROR, key, value):
            return False
        if expires_at <= now or not key:
            return False
        try:
            db = self._conn()
            db.execute("INSERT OR REPLACE INTO socache (k, v, e) VALUES (?, ?, ?)",
                       (key, value, expires_at))
            self._stores += 1
            if self._stores % PURGE_EVERY == 0:
                cur = db.execute("DELETE FROM socache WHERE e <= ?", (time.time(),))
                self.counters["purged"] += max(cur.rowcount, 0)
        except sqlite3.Error as e:
            self._failed("store", e)
            return False
        self.counters["stores"] += 1
        return True

    def retrieve(self, key: bytes, now: float | None = None) -> bytes | None:
        now = time.time() if now is None else now
        try:
            row = self._conn().execute("SELECT v, e FROM socache WHERE k = ?", (key,)).fetchone()
        except sqlite3.Error as e:
            self._failed("retrieve", e)
            row = None
        if row is None or row[1] <= now:
            self.counters["misses"] += 1
            return None
        self.counters["hits"] += 1
        return bytes(row[0])

    def remove(self, key: bytes) -> None:
        try:
            self._conn().execute("DELETE FROM socache WHERE k = ?", (key,))
            self.counters["removes"] += 1
        except sqlite3.Error as e:
            self._failed("remove", e)

    def iterate(self, now: float | None = None) -> Iterator[tuple[bytes, bytes, float]]:
        now = time.time() if now is None else now
        try:
            rows = self._conn().execute("SELECT k, v, e FROM socache WHERE e > ?",
                                        (now,)).fetchall()
        except sqlite3.Error as e:
            self._failed("iterate", e)
            rows = []
        return iter([(bytes(k), bytes(v), e) for k, v, e in rows])

    def status(self) -> dict:
        entries = 0
        with contextlib.suppress(sqlite3.Error, SocacheError):
            entries = self._conn().execute("SELECT count(*) FROM socache").fetchone()[0]
        return {"provider": "dbm", "namespace": self.namespace, "path": self.path,
                "entries": entries, "max_entry_size": self.max_entry_size, **self.counters}
