"""shmcb: a shared-memory cyclic-buffer cache, laid out like Apache's mod_socache_shmcb.

The segment is one ``mmap``: anonymous (``mmap(-1, size, MAP_SHARED)``, created in the master
before fork, inherited by the workers) or, with a path, a file that survives restarts (Apache
loses its cache on every restart; we keep it).  Not mp-safe: the caller holds a GlobalMutex
around every call (mod_ssl's ``ssl-stapling`` / ``ssl-cache`` mutex).

Layout (all integers little-endian)::

    segment
    +--------------------------------------------------------------------------------+
    | header (64 B)                                                                  |
    |   magic "HPSHMCB1" | version | header_size | total_size | subcache_num |       |
    |   index_num | subcache_size | data_offset | data_size | reserved | crc32       |
    +--------------------------------------------------------------------------------+
    | subcache 0 | subcache 1 | ... | subcache n-1       (n a power of two)          |
    +--------------------------------------------------------------------------------+

    subcache (subcache_size bytes)
    +--------------------------------------------------------------------------------+
    | subcache header (104 B): seq | idx_pos | idx_used | data_pos | data_used |      |
    |   live_bytes | live_count | pad                                                |
    |   stats: stores hits misses expired scrolled removes oversized resets         |
    |          relocated (9 x u64)                                                   |
    +--------------------------------------------------------------------------------+
    | hash array: index_num x 8 B   (key hash of the live entry in that slot, 0 = none)|
    +--------------------------------------------------------------------------------+
    | index: index_num x 24 B       {expires f64, data_pos u32, data_len u32,        |
    |                                key_len u32, crc32(key||value) u32}             |
    +--------------------------------------------------------------------------------+
    | data ring: data_size bytes    key||value of each entry, appended cyclically    |
    +--------------------------------------------------------------------------------+

The index is a ring too: slots ``idx_pos .. idx_pos+idx_used-1`` (mod index_num) are in use,
oldest first, and their data sits in the same order in the data ring from ``data_pos`` for
``data_used`` bytes.  The hash array is parallel to the index so a lookup is one
``mmap.find`` (C speed) instead of a Python loop over the index.

Differences from Apache, on purpose:

* the subcache is chosen from a hash of the WHOLE key (Apache uses its first byte);
* ``seq`` is odd while a store or remove is changing the subcache: a caller that finds it odd
  (it holds the mutex, so the writer died mid-change, e.g. SIGKILL) clears that subcache
  (HP05003) instead of trusting half-written state; every entry also carries a crc32 of
  key||value, checked on every read (HP05004), so a reader never sees a torn or wrong value;
* a file-backed segment has a checked header (magic, version, geometry, crc) and every
  subcache is checked on open; anything foreign or corrupt is rebuilt (HP05002), never trusted.

As in Apache: lazy expiry on lookup, a store first drops the leading run of removed or expired
entries and then evicts the oldest entries whatever their expiry (``scrolled`` counter), and an
entry larger than a subcache's data ring is refused (HP05001).  Unlike Apache, when the ring is
full but mostly of dead (overwritten or removed) entries -- ``live_bytes + need`` still fits -- a
live entry at the head is moved to the tail instead of being evicted (``relocated`` counter):
re-storing the same few staples over and over never pushes a valid one out.
"""
from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import struct
import time
import zlib
from typing import Callable, Iterator

from httpd_py import logids
from httpd_py.config.model import SHMCB_DEFAULT_SIZE, SHMCB_MAX_SIZE, SHMCB_MIN_SIZE
from httpd_py.errors import SocacheError
from httpd_py.log import error_log
from httpd_py.socache.base import MODULE

MAGIC = b"HPSHMCB1"
VERSION = 2
MIN_SIZE = SHMCB_MIN_SIZE        # the limits live with the config parser that checks them first
DEFAULT_SIZE = SHMCB_DEFAULT_SIZE
MAX_SIZE = SHMCB_MAX_SIZE

# Sizing hints (Apache's ap_socache_hints): an OCSP staple or TLS session is ~1 KB, its id 20-32 B.
AVG_KEY = 32
AVG_VALUE = 1024

_HEADER = struct.Struct("<8sIIQIIIIII")            # without the trailing crc32
HEADER_SIZE = 64
_SUB = struct.Struct("<IIIII")                     # seq idx_pos idx_used data_pos data_used
_LIVE = struct.Struct("<II")                       # live_bytes live_count (at offset 20)
LIVE_OFFSET = 20
_SEQ = struct.Struct("<I")
_STATS = struct.Struct("<9Q")
_U64 = struct.Struct("<Q")
STATS_OFFSET = 32
SUB_HEADER_SIZE = STATS_OFFSET + 9 * 8             # 104
STAT_NAMES = ("stores", "hits", "misses", "expired", "scrolled", "removes", "oversized", "resets",
              "relocated")
(_ST_STORES, _ST_HITS, _ST_MISSES, _ST_EXPIRED, _ST_SCROLLED, _ST_REMOVES, _ST_OVERSIZED,
 _ST_RESETS, _ST_RELOCATED) = (STATS_OFFSET + 8 * i for i in range(9))
_ENTRY = struct.Struct("<dIIII")                   # expires data_pos data_len key_len crc
ENTRY_SIZE = _ENTRY.size                           # 24
HASH_SIZE = 8
_ZERO_HASH = bytes(HASH_SIZE)


def key_hash(key: bytes) -> bytes:
    """8-byte hash of the whole key, never all zeros (zero marks an empty slot)."""
    h = hashlib.blake2b(key, digest_size=HASH_SIZE).digest()
    return h if h != _ZERO_HASH else b"\x01" + h[1:]


class Geometry:
    """Subcache count and sizes for a segment of ``size`` bytes (Apache's sizing rule)."""

    def __init__(self, size: int):
        if size < MIN_SIZE:
            raise SocacheError(f"shmcb size {size} has to be >= {MIN_SIZE} bytes")
        if size >= MAX_SIZE:
            raise SocacheError(f"shmcb size {size} has to be < {MAX_SIZE}")
        self.size = size
        per_entry = AVG_KEY + AVG_VALUE + HASH_SIZE + ENTRY_SIZE
        num_idx = (size - HEADER_SIZE) // per_entry
        n = 256
        while n > 1 and num_idx // n < 2 * n:
            n //= 2
        self.subcache_num = n
        self.index_num = max(num_idx // n, 1)
        self.subcache_size = ((size - HEADER_SIZE) // n) & ~7
        self.data_offset = SUB_HEADER_SIZE + self.index_num * (HASH_SIZE + ENTRY_SIZE)
        self.data_size = self.subcache_size - self.data_offset
        if self.index_num < 5 or self.data_size < 1024:
            raise SocacheError(f"shmcb size {size} leaves too few index entries per subcache")

    def header(self) -> bytes:
        body = _HEADER.pack(MAGIC, VERSION, HEADER_SIZE, self.size, self.subcache_num,
                            self.index_num, self.subcache_size, self.data_offset, self.data_size, 0)
        head = body + struct.pack("<I", zlib.crc32(body))
        return head + bytes(HEADER_SIZE - len(head))


class ShmcbCache:
    """The shmcb provider.  ``path`` None: anonymous shared memory; else a file (mode 0600)."""

    name = "shmcb"
    mp_safe = False

    def __init__(self, path: str | None = None, size: int = DEFAULT_SIZE):
        self.path = path
        self.geo = Geometry(size)
        self.max_entry_size = self.geo.data_size
        self.namespace = ""
        self._mm: mmap.mmap | None = None
        # Test hook (fault injection): called with a phase name at points inside store().
        self.fault_hook: Callable[[str], None] | None = None
        g = self.geo
        self._mask = g.subcache_num - 1
        self._inum = g.index_num
        self._dsize = g.data_size

    # ---- lifecycle -------------------------------------------------------------------------

    def init(self, namespace: str) -> None:
        self.namespace = namespace
        if self._mm is not None:
            return
        if self.path is None:
            self._mm = mmap.mmap(-1, self.geo.size, flags=mmap.MAP_SHARED)
            self._mm[:HEADER_SIZE] = self.geo.header()
            return
        self._mm = self._open_file()

    def child_init(self) -> None:
        """Nothing to do: the MAP_SHARED mapping made in the master is inherited across fork."""

    def files(self) -> tuple[str, ...]:
        return (self.path,) if self.path else ()

    def destroy(self) -> None:
        mm, self._mm = self._mm, None
        if mm is not None:
            if self.path is not None:
                try:
                    mm.flush()
                except (OSError, ValueError):
                    pass
            mm.close()

    def _open_file(self) -> mmap.mmap:
        g = self.geo
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as e:
            error_log.error(MODULE, logids.SHMCB_OPEN_FAILED,
                            f"shmcb: cannot open {self.path}: {e}")
            raise SocacheError(f"shmcb: cannot open {self.path}: {e}") from e
        try:
            os.fchmod(fd, 0o600)
            st_size = os.fstat(fd).st_size
            fresh = st_size == 0
            reason = None if fresh else self._check_file_header(fd, st_size)
            if fresh or reason:
                if reason:
                    error_log.warn(MODULE, logids.SHMCB_REBUILT,
                                   f"shmcb: {self.path}: {reason}; rebuilding the cache file")
                # A new file renamed into place: processes still mapping the old one (workers
                # of a previous generation) keep a valid mapping instead of getting SIGBUS.
                os.close(fd)
                fd = self._new_file()
            mm = mmap.mmap(fd, g.size, flags=mmap.MAP_SHARED)
        except OSError as e:
            error_log.error(MODULE, logids.SHMCB_OPEN_FAILED, f"shmcb: cannot map {self.path}: {e}")
            raise SocacheError(f"shmcb: cannot map {self.path}: {e}") from e
        finally:
            os.close(fd)
        if fresh or reason:
            mm[:HEADER_SIZE] = g.header()
        else:
            for i in range(g.subcache_num):
                problem = self._check_subcache(mm, i)
                if problem:
                    error_log.warn(MODULE, logids.SHMCB_SUBCACHE_RESET,
                                   f"shmcb: {self.path}: subcache {i} {problem}; cleared")
                    self._clear(mm, HEADER_SIZE + i * g.subcache_size, count=True)
        return mm

    def _new_file(self) -> int:
        """A zeroed file of the right size, atomically renamed over ``self.path``."""
        directory, base = os.path.split(self.path)
        tmp = os.path.join(directory, f".{base}.{os.getpid()}.new")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o600)
        try:
            os.fchmod(fd, 0o600)
            os.ftruncate(fd, self.geo.size)
            os.rename(tmp, self.path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return fd

    def _check_file_header(self, fd: int, st_size: int) -> str | None:
        """Why the file cannot be trusted, or None when its header matches our geometry."""
        head = os.pread(fd, HEADER_SIZE, 0)
        if len(head) < _HEADER.size + 4 or head[:8] != MAGIC:
            return "not a shmcb cache file (bad magic)"
        body = head[:_HEADER.size]
        (crc,) = struct.unpack_from("<I", head, _HEADER.size)
        if zlib.crc32(body) != crc:
            return "header checksum mismatch"
        if head != self.geo.header():
            return "version or geometry differs from the configured size"
        if st_size != self.geo.size:
            return f"file size {st_size} differs from the header"
        return None

    def _check_subcache(self, mm: mmap.mmap, i: int) -> str | None:
        g = self.geo
        base = HEADER_SIZE + i * g.subcache_size
        seq, ipos, iused, dpos, dused = _SUB.unpack_from(mm, base)
        if seq & 1:
            return "was left mid-write"
        if ipos >= g.index_num or iused > g.index_num or dpos >= g.data_size or dused > g.data_size:
            return "has an impossible header"
        total = live_b = live_n = 0
        p = dpos
        for j in range(iused):
            slot = (ipos + j) % g.index_num
            _exp, epos, elen, klen, _crc = _ENTRY.unpack_from(mm, base + SUB_HEADER_SIZE
                                                               + g.index_num * HASH_SIZE
                                                               + slot * ENTRY_SIZE)
            if epos != p or klen > elen or elen > g.data_size:
                return "has an inconsistent index"
            total += elen
            p = (p + elen) % g.data_size
            hoff = base + SUB_HEADER_SIZE + slot * HASH_SIZE
            if mm[hoff:hoff + HASH_SIZE] != _ZERO_HASH:
                live_b += elen
                live_n += 1
        if total != dused:
            return "has an inconsistent data ring"
        if _LIVE.unpack_from(mm, base + LIVE_OFFSET) != (live_b, live_n):
            return "has inconsistent live counters"
        for slot in range(g.index_num):               # slots outside the ring hold no hash
            if (slot - ipos) % g.index_num >= iused:
                hoff = base + SUB_HEADER_SIZE + slot * HASH_SIZE
                if mm[hoff:hoff + HASH_SIZE] != _ZERO_HASH:
                    return "has a stray index entry"
        return None

    # ---- internals -------------------------------------------------------------------------

    def _clear(self, mm: mmap.mmap, base: int, count: bool) -> None:
        """Empty one subcache (index and hashes), keeping its stats."""
        g = self.geo
        _SEQ.pack_into(mm, base, 1)
        mm[base + SUB_HEADER_SIZE: base + SUB_HEADER_SIZE + g.index_num * HASH_SIZE] = \
            bytes(g.index_num * HASH_SIZE)
        _SUB.pack_into(mm, base, 1, 0, 0, 0, 0)
        _LIVE.pack_into(mm, base + LIVE_OFFSET, 0, 0)
        if count:
            self._bump(mm, base + _ST_RESETS)
        _SEQ.pack_into(mm, base, 0)

    @staticmethod
    def _bump(mm: mmap.mmap, off: int) -> None:
        _U64.pack_into(mm, off, _U64.unpack_from(mm, off)[0] + 1)

    def _sub(self, h: bytes) -> int:
        """Base offset of the subcache for hash ``h``; repairs it if a writer died mid-change."""
        mm = self._mm
        base = HEADER_SIZE + (int.from_bytes(h[:4], "little") & self._mask) * self.geo.subcache_size
        if _SEQ.unpack_from(mm, base)[0] & 1:
            self._repair(base)
        return base

    def _find(self, base: int, h: bytes) -> int:
        """Slot holding hash ``h`` in the subcache at ``base``, or -1."""
        mm = self._mm
        lo = base + SUB_HEADER_SIZE
        hi = lo + self._inum * HASH_SIZE
        pos = mm.find(h, lo, hi)
        while pos >= 0:
            if not (pos - lo) & 7:
                return (pos - lo) >> 3
            pos = mm.find(h, pos + 1, hi)
        return -1

    def _read(self, base: int, dpos: int, n: int) -> bytes:
        mm = self._mm
        start = base + self.geo.data_offset
        if dpos + n <= self._dsize:
            return mm[start + dpos: start + dpos + n]
        first = self._dsize - dpos
        return mm[start + dpos: start + self._dsize] + mm[start: start + n - first]

    def _entry_off(self, base: int, slot: int) -> int:
        return base + SUB_HEADER_SIZE + self._inum * HASH_SIZE + slot * ENTRY_SIZE

    def _hash_off(self, base: int, slot: int) -> int:
        return base + SUB_HEADER_SIZE + slot * HASH_SIZE

    def _pop_head(self, mm: mmap.mmap, base: int, now: float, force: bool) -> bool:
        """Drop the oldest entry if ``force`` or it is removed/expired.  False: nothing dropped."""
        seq, ipos, iused, dpos, dused = _SUB.unpack_from(mm, base)
        if not iused:
            return False
        hoff = self._hash_off(base, ipos)
        live = mm[hoff:hoff + HASH_SIZE] != _ZERO_HASH
        expires, _p, elen, _k, _c = _ENTRY.unpack_from(mm, self._entry_off(base, ipos))
        if live and expires > now and not force:
            return False
        if live:
            self._unlive(mm, base, hoff, elen)
            self._bump(mm, base + (_ST_SCROLLED if expires > now else _ST_EXPIRED))
        _SUB.pack_into(mm, base, seq, (ipos + 1) % self._inum, iused - 1,
                       (dpos + elen) % self._dsize, dused - elen)
        return True

    def _kill_slot(self, mm: mmap.mmap, base: int, slot: int) -> None:
        elen = _ENTRY.unpack_from(mm, self._entry_off(base, slot))[2]
        self._unlive(mm, base, self._hash_off(base, slot), elen)

    @staticmethod
    def _unlive(mm: mmap.mmap, base: int, hoff: int, elen: int) -> None:
        mm[hoff:hoff + HASH_SIZE] = _ZERO_HASH
        lb, ln = _LIVE.unpack_from(mm, base + LIVE_OFFSET)
        _LIVE.pack_into(mm, base + LIVE_OFFSET, lb - elen, ln - 1)

    def _relocate_head(self, mm: mmap.mmap, base: int, fault) -> None:
        """Move the live head entry to the tail (same bytes, same expiry): frees nothing by
        itself, but lets the dead entries behind it reach the head and be dropped."""
        _s, ipos, iused, dpos, dused = _SUB.unpack_from(mm, base)
        hoff = self._hash_off(base, ipos)
        h = mm[hoff:hoff + HASH_SIZE]
        expires, epos, elen, klen, crc = _ENTRY.unpack_from(mm, self._entry_off(base, ipos))
        blob = self._read(base, epos, elen)
        self._unlive(mm, base, hoff, elen)
        _SUB.pack_into(mm, base, _s, (ipos + 1) % self._inum, iused - 1,
                       (dpos + elen) % self._dsize, dused - elen)
        if fault:
            fault("relocate")
        self._append(mm, base, blob, klen, expires, crc, h, None)
        self._bump(mm, base + _ST_RELOCATED)

    def _append(self, mm: mmap.mmap, base: int, blob: bytes, klen: int, expires: float,
                crc: int, h: bytes, fault) -> None:
        """Write an entry at the tail (the caller made room); the header update comes last."""
        seq, ipos, iused, dpos, dused = _SUB.unpack_from(mm, base)
        need = len(blob)
        wpos = (dpos + dused) % self._dsize
        start = base + self.geo.data_offset
        if wpos + need <= self._dsize:
            mm[start + wpos: start + wpos + need] = blob
        else:
            first = self._dsize - wpos
            mm[start + wpos: start + self._dsize] = blob[:first]
            if fault:
                fault("data-wrap")
            mm[start: start + need - first] = blob[first:]
        if fault:
            fault("data")
        slot = (ipos + iused) % self._inum
        _ENTRY.pack_into(mm, self._entry_off(base, slot), expires, wpos, need, klen, crc)
        hoff = self._hash_off(base, slot)
        mm[hoff:hoff + HASH_SIZE] = h
        if fault:
            fault("index")
        _SUB.pack_into(mm, base, seq, ipos, iused + 1, dpos, dused + need)
        lb, ln = _LIVE.unpack_from(mm, base + LIVE_OFFSET)
        _LIVE.pack_into(mm, base + LIVE_OFFSET, lb + need, ln + 1)

    # ---- the provider API ------------------------------------------------------------------

    # Damage that the checks above cannot rule out (e.g. another process scribbling on a
    # file-backed segment without the mutex) must cost a subcache, never an exception.
    _DAMAGE = (struct.error, ValueError, IndexError, OverflowError)

    def _damaged(self, key: bytes, what: str, e: Exception) -> None:
        base = HEADER_SIZE + (int.from_bytes(key_hash(key)[:4], "little") & self._mask) \
            * self.geo.subcache_size
        error_log.warn(MODULE, logids.SHMCB_SUBCACHE_RESET,
                       f"shmcb: {what}: subcache at {base} is damaged ({e}); cleared")
        with contextlib.suppress(*self._DAMAGE):
            self._clear(self._mm, base, count=True)

    def store(self, key: bytes, value: bytes, expires_at: float, now: float | None = None) -> bool:
        try:
            return self._store(key, value, expires_at, now)
        except self._DAMAGE as e:
            self._damaged(key, "store", e)
            return False

    def retrieve(self, key: bytes, now: float | None = None) -> bytes | None:
        try:
            return self._retrieve(key, now)
        except self._DAMAGE as e:
            self._damaged(key, "retrieve", e)
            return None

    def remove(self, key: bytes) -> None:
        try:
            self._remove(key)
        except self._DAMAGE as e:
            self._damaged(key, "remove", e)

    def _store(self, key: bytes, value: bytes, expires_at: float, now: float | None) -> bool:
        mm = self._mm
        if mm is None:
            raise SocacheError("shmcb: store() before init()")
        now = time.time() if now is None else now
        if not key:
            error_log.error(MODULE, logids.SHMCB_BAD_KEY, "shmcb: empty key refused")
            return False
        h = key_hash(key)
        base = self._sub(h)
        need = len(key) + len(value)
        if need > self._dsize:
            self._bump(mm, base + _ST_OVERSIZED)
            error_log.error(MODULE, logids.SHMCB_OVERSIZED,
                            f"shmcb: entry of {need} bytes is larger than a subcache "
                            f"({self._dsize} bytes); not stored (raise the cache size)")
            return False
        if expires_at <= now:
            return False
        fault = self.fault_hook
        seq = _SEQ.unpack_from(mm, base)[0]
        _SEQ.pack_into(mm, base, seq + 1)                  # odd: changing
        if fault:
            fault("begin")
        slot = self._find(base, h)
        while slot >= 0:                                   # drop an older value of this key
            expires, epos, elen, klen, crc = _ENTRY.unpack_from(mm, self._entry_off(base, slot))
            if klen == len(key) and self._read(base, epos, klen) == key:
                self._kill_slot(mm, base, slot)
                break
            slot = self._find_next(base, h, slot)
        while self._pop_head(mm, base, now, force=False):  # leading removed/expired run
            pass
        _s, ipos, iused, dpos, dused = _SUB.unpack_from(mm, base)
        moves = iused                                      # bound: each entry moves once at most
        while iused >= self._inum or self._dsize - dused < need:
            lb, ln = _LIVE.unpack_from(mm, base + LIVE_OFFSET)
            if moves > 0 and lb + need <= self._dsize and ln < self._inum \
                    and mm[self._hash_off(base, ipos):self._hash_off(base, ipos) + HASH_SIZE] \
                    != _ZERO_HASH:
                self._relocate_head(mm, base, fault)       # mostly dead ring: keep live ones
                moves -= 1
            else:
                self._pop_head(mm, base, now, force=True)  # evict the oldest, whatever its expiry
            while self._pop_head(mm, base, now, force=False):
                pass
            _s, ipos, iused, dpos, dused = _SUB.unpack_from(mm, base)
        if fault:
            fault("evicted")
        blob = key + value
        self._append(mm, base, blob, len(key), expires_at, zlib.crc32(blob), h, fault)
        self._bump(mm, base + _ST_STORES)
        _SEQ.pack_into(mm, base, seq + 2)                  # even: consistent
        return True

    def _find_next(self, base: int, h: bytes, slot: int) -> int:
        mm = self._mm
        lo = base + SUB_HEADER_SIZE
        hi = lo + self._inum * HASH_SIZE
        pos = mm.find(h, lo + (slot + 1) * HASH_SIZE, hi)
        while pos >= 0:
            if not (pos - lo) & 7:
                return (pos - lo) >> 3
            pos = mm.find(h, pos + 1, hi)
        return -1

    def _retrieve(self, key: bytes, now: float | None) -> bytes | None:
        mm = self._mm
        if mm is None:
            raise SocacheError("shmcb: retrieve() before init()")
        h = key_hash(key)
        base = self._sub(h)
        slot = self._find(base, h)
        while slot >= 0:
            expires, epos, elen, klen, crc = _ENTRY.unpack_from(mm, self._entry_off(base, slot))
            if klen == len(key) and elen <= self._dsize:
                blob = self._read(base, epos, elen)
                if blob[:klen] == key:
                    if now is None:
                        now = time.time()
                    if expires <= now:                         # lazy expiry
                        self._drop(mm, base, slot, _ST_EXPIRED)
                        break
                    if zlib.crc32(blob) != crc:
                        error_log.warn(MODULE, logids.SHMCB_BAD_ENTRY,
                                       "shmcb: an entry failed its checksum; dropped")
                        self._drop(mm, base, slot, _ST_RESETS)
                        break
                    self._bump(mm, base + _ST_HITS)
                    return blob[klen:]
            slot = self._find_next(base, h, slot)
        self._bump(mm, base + _ST_MISSES)
        return None

    def _drop(self, mm: mmap.mmap, base: int, slot: int, stat: int) -> None:
        seq = _SEQ.unpack_from(mm, base)[0]
        _SEQ.pack_into(mm, base, seq + 1)
        self._kill_slot(mm, base, slot)
        self._bump(mm, base + stat)
        _SEQ.pack_into(mm, base, seq + 2)

    def _remove(self, key: bytes) -> None:
        mm = self._mm
        if mm is None:
            raise SocacheError("shmcb: remove() before init()")
        h = key_hash(key)
        base = self._sub(h)
        slot = self._find(base, h)
        while slot >= 0:
            _e, epos, _l, klen, _c = _ENTRY.unpack_from(mm, self._entry_off(base, slot))
            if klen == len(key) and self._read(base, epos, klen) == key:
                self._drop(mm, base, slot, _ST_REMOVES)
                return
            slot = self._find_next(base, h, slot)

    def iterate(self, now: float | None = None) -> Iterator[tuple[bytes, bytes, float]]:
        """Every live entry; the list is built at once so the caller may release its lock."""
        mm = self._mm
        if mm is None:
            raise SocacheError("shmcb: iterate() before init()")
        now = time.time() if now is None else now
        out = []
        g = self.geo
        for i in range(g.subcache_num):
            base = HEADER_SIZE + i * g.subcache_size
            if _SEQ.unpack_from(mm, base)[0] & 1:
                self._repair(base)
            _s, ipos, iused, _dp, _du = _SUB.unpack_from(mm, base)
            for j in range(min(iused, g.index_num)):
                slot = (ipos + j) % g.index_num
                hoff = self._hash_off(base, slot)
                if mm[hoff:hoff + HASH_SIZE] == _ZERO_HASH:
                    continue
                expires, epos, elen, klen, crc = _ENTRY.unpack_from(mm, self._entry_off(base, slot))
                if expires <= now or elen > self._dsize or epos >= self._dsize:
                    continue
                blob = self._read(base, epos, elen)
                if zlib.crc32(blob) != crc:
                    continue
                out.append((blob[:klen], blob[klen:], expires))
        return iter(out)

    def _repair(self, base: int) -> None:
        error_log.warn(MODULE, logids.SHMCB_SUBCACHE_RESET,
                       f"shmcb: subcache at {base} was left mid-write (writer died); cleared")
        self._clear(self._mm, base, count=True)

    def status(self) -> dict:
        mm = self._mm
        g = self.geo
        st = {"provider": "shmcb", "namespace": self.namespace, "path": self.path,
              "size": g.size, "subcaches": g.subcache_num, "indexes_per_subcache": g.index_num,
              "data_per_subcache": g.data_size, "max_entry_size": self.max_entry_size,
              "entries": 0}
        for n in STAT_NAMES:
            st[n] = 0
        if mm is None:
            return st
        for i in range(g.subcache_num):
            base = HEADER_SIZE + i * g.subcache_size
            _s, ipos, iused, _dp, _du = _SUB.unpack_from(mm, base)
            for j in range(min(iused, g.index_num)):
                hoff = self._hash_off(base, (ipos + j) % g.index_num)
                if mm[hoff:hoff + HASH_SIZE] != _ZERO_HASH:
                    st["entries"] += 1
            for n, v in zip(STAT_NAMES, _STATS.unpack_from(mm, base + STATS_OFFSET)):
                st[n] += v
        return st
