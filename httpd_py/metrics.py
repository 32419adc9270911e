"""Counters in shared memory: one slot per counting process, one writer per slot, no lock.

The master maps this area (anonymous, MAP_SHARED) before its first fork (``create``), so every
worker and helper writes its own slot and any process reads all of them.  A reader sums the
slots at read time (``totals``), which is why the writers need no lock: an increment on the
handshake path is one indexed add into a ``memoryview`` (``_q[_base + i] += 1``).  A worker's
slot is its scoreboard slot, so a replacement worker in the same slot goes on counting from
where its predecessor stopped: the totals never go down, as Prometheus counters must not.

Layout (native-endian unsigned 64-bit words)::

    header (HEADER_WORDS):  magic | slots | worker slots | server start (us) | generation start
                            (us) | generation | pad...
    slot s (SLOT_WORDS words at HEADER_WORDS + s * SLOT_WORDS):
        counters  (NCOUNTERS words, indices below: accesses, body bytes, request time, status
                   classes, TLS handshakes by protocol x key type, resumed, failed, staples
                   sent / not sent, responder requests by outcome with latency sum and buckets)
        extended  (EXT_WORDS: this child's pid, accesses and bytes of this connection and child,
                   last request time; ExtendedStatus only)
        strings   (STR_BYTES bytes: client | protocol | vhost | request tail, NUL padded)

    slot 0          scratch: what is counted outside any real process role (warm-up handshakes
                    in the master and after fork, unit tests) lands here and is never summed
    slot 1          the master (the stapler's prefetch before fork)
    slots 2..9      helper processes, by their index in ``App.helpers()``
    slots 10..      workers, by scoreboard slot index

Threads: workers are single-threaded; the stapler fetches on a thread pool, so responder
counters take a lock (they are not on the handshake path).  A process picks its slot with
``enter(slot)`` (a worker, per connection), ``use_helper(i)``, ``use_master()`` or
``use_scratch()``.

This module imports only the standard library and pyOpenSSL's bindings: tls, http and stapling
all call it, and it calls none of them.
"""
from __future__ import annotations

import mmap
import os
import threading
import time
from dataclasses import dataclass, field

from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

MAGIC = 0x3130534D50484448            # "HDHPMS01" little-endian

# -- counter indices (per slot) -----------------------------------------------------------------
ACCESSES, BYTES, DURATION_US = 0, 1, 2
STATUS_CLASS = 3                        # 3..7: 1xx..5xx
PROTOCOLS = ("TLSv1.3", "TLSv1.2", "other")
KEY_TYPES = ("rsa", "ec", "other")
HANDSHAKES = 8                          # 8..16: protocol index * 3 + key type index
HANDSHAKES_RESUMED = 17
HANDSHAKES_FAILED = 18
STAPLE_SENT, STAPLE_NONE = 19, 20
OUTCOMES = ("ok", "timeout", "connect", "dns", "http-status", "too-big", "unsupported-url",
            "other")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)   # seconds, then +Inf
RESPONDER = 21                          # per outcome: count, sum (us), len(BUCKETS) + 1 buckets
RESPONDER_WORDS = 2 + len(BUCKETS) + 1
NCOUNTERS = RESPONDER + len(OUTCOMES) * RESPONDER_WORDS

# extended per-worker fields (after the counters)
EXT = NCOUNTERS
EXT_PID, EXT_CONN_ACC, EXT_CONN_BYTES, EXT_CHILD_ACC, EXT_CHILD_BYTES, EXT_LAST_US, \
    EXT_LAST_END_US = (EXT + i for i in range(7))
EXT_WORDS = 8
STRINGS = (("client", 48), ("protocol", 16), ("vhost", 64), ("request", 64))
STR_BYTES = sum(n for _, n in STRINGS)
SLOT_WORDS = NCOUNTERS + EXT_WORDS + STR_BYTES // 8
HEADER_WORDS = 8
H_MAGIC, H_SLOTS, H_WORKERS, H_START, H_GEN_START, H_GEN = range(6)

SCRATCH, MASTER, FIRST_HELPER, HELPER_SLOTS = 0, 1, 2, 8
FIRST_WORKER = FIRST_HELPER + HELPER_SLOTS


@dataclass
class Totals:
    """The slots summed (``totals()``): what /server-status and /metrics show."""
    counters: list = field(default_factory=lambda: [0] * NCOUNTERS)

    def __getitem__(self, i: int) -> int:
        return self.counters[i]

    def handshakes(self) -> dict[tuple[str, str], int]:
        return {(p, k): self.counters[HANDSHAKES + pi * 3 + ki]
                for pi, p in enumerate(PROTOCOLS) for ki, k in enumerate(KEY_TYPES)}

    def responder(self, outcome: str) -> tuple[int, float, list[int]]:
        """(count, latency sum in seconds, per-bucket counts, not cumulative; +Inf last)."""
        base = RESPONDER + OUTCOMES.index(outcome) * RESPONDER_WORDS
        c = self.counters
        return c[base], c[base + 1] / 1e6, c[base + 2:base + RESPONDER_WORDS]


@dataclass(frozen=True)
class WorkerExt:
    """A worker slot's extended fields (ExtendedStatus)."""
    pid: int
    slot_accesses: int
    slot_bytes: int
    slot_duration_ms: int
    conn_accesses: int
    conn_bytes: int
    child_accesses: int
    child_bytes: int
    last_ms: int
    last_end: float
    client: str
    protocol: str
    vhost: str
    request_tail: str


class Shared:
    """The mapping (or a private stand-in) and how to read it."""

    def __init__(self, worker_slots: int, *, shared: bool = True):
        self.worker_slots = worker_slots
        self.slots = FIRST_WORKER + worker_slots
        words = HEADER_WORDS + self.slots * SLOT_WORDS
        self.mm = mmap.mmap(-1, words * 8, flags=mmap.MAP_SHARED if shared else mmap.MAP_PRIVATE)
        self.q = memoryview(self.mm).cast("Q")
        now = int(time.time() * 1e6)
        self.q[H_MAGIC], self.q[H_SLOTS], self.q[H_WORKERS] = MAGIC, self.slots, worker_slots
        self.q[H_START] = self.q[H_GEN_START] = now

    def base(self, slot: int) -> int:
        return HEADER_WORDS + slot * SLOT_WORDS

    @property
    def started(self) -> float:
        return self.q[H_START] / 1e6

    @property
    def generation_started(self) -> float:
        return self.q[H_GEN_START] / 1e6

    @property
    def generation(self) -> int:
        return self.q[H_GEN]

    def new_generation(self, now: float | None = None) -> None:
        self.q[H_GEN] += 1
        self.q[H_GEN_START] = int((time.time() if now is None else now) * 1e6)

    def totals(self) -> Totals:
        t = Totals()
        c = t.counters
        q = self.q
        for s in range(MASTER, self.slots):
            b = self.base(s)
            row = q[b:b + NCOUNTERS]
            if not any(row):
                continue
            for i, v in enumerate(row):
                if v:
                    c[i] += v
        return t

    def worker(self, index: int) -> WorkerExt:
        """Worker slot ``index``'s extended fields (scoreboard numbering)."""
        b = self.base(FIRST_WORKER + index)
        q = self.q
        raw = bytes(self.mm[(b + NCOUNTERS + EXT_WORDS) * 8:(b + SLOT_WORDS) * 8])
        texts, off = [], 0
        for _, n in STRINGS:
            texts.append(raw[off:off + n].split(b"\0", 1)[0].decode("utf-8", "replace"))
            off += n
        return WorkerExt(q[b + EXT_PID], q[b + ACCESSES], q[b + BYTES], q[b + DURATION_US] // 1000,
                         q[b + EXT_CONN_ACC], q[b + EXT_CONN_BYTES], q[b + EXT_CHILD_ACC],
                         q[b + EXT_CHILD_BYTES], q[b + EXT_LAST_US] // 1000,
                         q[b + EXT_LAST_END_US] / 1e6, *texts)

    def close(self) -> None:
        try:
            self.q.release()
            self.mm.close()
        except (BufferError, ValueError):
            pass


# -- the process's view ---------------------------------------------------------------------------
SHARED: Shared | None = None
_q = memoryview(bytearray(8 * (HEADER_WORDS + SLOT_WORDS))).cast("Q")   # before create(): private
_base = HEADER_WORDS                   # this process's slot (scratch until told otherwise)
_slot_obj = None                       # the scoreboard slot last entered (a worker)
_lock = threading.Lock()
_key_types: dict[int, int] = {}        # X509 pointer -> KEY_TYPES index (per process memo)
extended = False                       # ExtendedStatus: record client/vhost/request per worker
see_tail = False                       # SeeRequestTail
board = None                           # the scoreboard (read side), known once a worker serves


def create(worker_slots: int) -> Shared:
    """Master, before the first fork: map the area (kept across restarts: counters never reset
    while the master lives).  A second call returns the same area."""
    global SHARED, _q, _base
    if SHARED is None:              # (ServerLimit cannot grow at a restart: the scoreboard neither)
        SHARED = Shared(worker_slots)
        _q = SHARED.q
        _base = SHARED.base(SCRATCH)
    return SHARED


def reset_for_tests() -> None:
    """Forget the area (unit tests only)."""
    global SHARED, _q, _base, _slot_obj, board, extended, see_tail
    SHARED = None
    _q = memoryview(bytearray(8 * (HEADER_WORDS + SLOT_WORDS))).cast("Q")
    _base = HEADER_WORDS
    _slot_obj = board = None
    extended = see_tail = False
    _key_types.clear()


def _use(slot: int) -> None:
    global _base
    if SHARED is not None and slot < SHARED.slots:
        _base = SHARED.base(slot)
    elif SHARED is not None:
        _base = SHARED.base(SCRATCH)


def use_scratch() -> None:
    _use(SCRATCH)


def use_master() -> None:
    _use(MASTER)


def use_helper(index: int) -> None:
    _use(FIRST_HELPER + index if index < HELPER_SLOTS else SCRATCH)


def as_helper(index: int, target):
    """Wrap a helper's callable so that the helper process counts into its own slot."""
    def run():
        use_helper(index)
        return target()
    run.__name__ = getattr(target, "__name__", "helper")
    return run


def enter(slot) -> None:
    """A worker starts a connection on scoreboard ``slot`` (``slot.index``, ``slot.board``)."""
    global _slot_obj, _base, board
    if slot is not _slot_obj:
        _slot_obj = slot
        board = getattr(slot, "board", None)
        index = getattr(slot, "index", None)
        if SHARED is None or index is None or FIRST_WORKER + index >= SHARED.slots:
            _base = HEADER_WORDS if SHARED is None else SHARED.base(SCRATCH)
        else:
            _base = SHARED.base(FIRST_WORKER + index)
    if extended:
        b = _base
        q = _q
        pid = os.getpid()
        if q[b + EXT_PID] != pid:           # a new child in this slot
            q[b + EXT_PID] = pid
            q[b + EXT_CHILD_ACC] = q[b + EXT_CHILD_BYTES] = 0
        q[b + EXT_CONN_ACC] = q[b + EXT_CONN_BYTES] = 0


# -- the counting calls (hot paths: never raise, a few word adds) ---------------------------------
def staple(sent: bool) -> None:
    """The OCSP status callback answered a status_request: with a staple or without."""
    _q[_base + (STAPLE_SENT if sent else STAPLE_NONE)] += 1


def handshake(conn) -> None:
    """A TLS handshake completed on ``conn`` (a pyOpenSSL Connection): count it by protocol and
    the key type of the certificate OpenSSL chose, and whether the session was resumed."""
    try:
        ssl = conn._ssl
        v = _lib.SSL_version(ssl)
        p = 0 if v == 0x0304 else 1 if v == 0x0303 else 2
        ptr = int(_ffi.cast("uintptr_t", _lib.SSL_get_certificate(ssl)))
        k = _key_types.get(ptr)
        if k is None:
            k = _key_types[ptr] = _key_type(conn) if len(_key_types) < 256 else 2
        q, b = _q, _base
        q[b + HANDSHAKES + p * 3 + k] += 1
        if _lib.SSL_session_reused(ssl):
            q[b + HANDSHAKES_RESUMED] += 1
    except Exception:           # counting must never take a handshake down
        pass


def _key_type(conn) -> int:
    try:
        cert = conn.get_certificate(as_cryptography=True)
    except TypeError:
        x = conn.get_certificate()
        cert = x.to_cryptography() if x is not None else None
    if cert is None:
        return 2
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    key = cert.public_key()
    return 0 if isinstance(key, rsa.RSAPublicKey) else 1 if isinstance(key, ec.EllipticCurvePublicKey) else 2


def handshake_failed() -> None:
    _q[_base + HANDSHAKES_FAILED] += 1


def responder_request(outcome: str, seconds: float) -> None:
    """One request to an OCSP responder ended (``outcome``: fetch's error kind, "" = ok)."""
    try:
        o = OUTCOMES.index(outcome or "ok")
    except ValueError:
        o = len(OUTCOMES) - 1
    b = 0
    while b < len(BUCKETS) and seconds > BUCKETS[b]:
        b += 1
    base = RESPONDER + o * RESPONDER_WORDS
    with _lock:                 # the stapler fetches on several threads
        q, s = _q, _base
        q[s + base] += 1
        q[s + base + 1] += int(max(0.0, seconds) * 1e6)
        q[s + base + 2 + b] += 1


def request_done(status: int, nbytes: int, seconds: float, client: str = "", protocol: str = "",
                 vhost: str = "", request_line: str = "") -> None:
    """A response was handed to the connection (its body bytes, when known; see ``add_bytes``)."""
    q, b = _q, _base
    q[b + ACCESSES] += 1
    q[b + BYTES] += nbytes
    us = int(seconds * 1e6) if seconds > 0 else 0
    q[b + DURATION_US] += us
    cls = status // 100
    if 1 <= cls <= 5:
        q[b + STATUS_CLASS + cls - 1] += 1
    if extended:
        q[b + EXT_CONN_ACC] += 1
        q[b + EXT_CONN_BYTES] += nbytes
        q[b + EXT_CHILD_ACC] += 1
        q[b + EXT_CHILD_BYTES] += nbytes
        q[b + EXT_LAST_US] = us
        q[b + EXT_LAST_END_US] = int(time.time() * 1e6)
        if SHARED is not None:
            _write_strings(b, (client, protocol, vhost,
                               request_line[-63:] if see_tail else ""))


def add_bytes(n: int) -> None:
    """Body bytes of a streamed response, counted as they are produced."""
    q, b = _q, _base
    q[b + BYTES] += n
    if extended:
        q[b + EXT_CONN_BYTES] += n
        q[b + EXT_CHILD_BYTES] += n


def _write_strings(base_word: int, texts) -> None:
    mm = SHARED.mm
    off = (base_word + NCOUNTERS + EXT_WORDS) * 8
    for (_, n), text in zip(STRINGS, texts):
        raw = text.encode("utf-8", "replace")[:n - 1]
        mm[off:off + n] = raw + b"\0" * (n - len(raw))
        off += n


def totals() -> Totals:
    return SHARED.totals() if SHARED is not None else Totals()
