"""The scoreboard: one shared-memory slot per worker, written by workers, read by the master.

Mapped (MAP_SHARED) by the master before it forks, so every worker writes its own slot and the
master (and a status reader) sees the writes at once.  The mapping is backed by a file when a
path is given (the server puts it next to the PidFile, so ``python -m httpd_py.mpm.scoreboard
FILE`` and the tests can read it from outside); otherwise it is anonymous.

Layout (little-endian, fixed size, no locks: each slot has one writer)::

    header (64 bytes):  magic "HPSB0001" | master pid u32 | generation u32 | slots u32 | pad 4 |
                        busy_since f64 | queued u32 | queued_peak u32 | episodes u32 | pad
        busy_since: wall-clock time since when every worker has been busy with connections
        waiting in the listen queue (0.0: not now); queued: connections waiting at the last
        check (the kernel's accept-queue length, summed over the listeners); queued_peak: the
        most seen in this episode; episodes: how many such episodes since the start.  Written by
        the master once a second (Apache shows the same pressure only as "0 idle workers").
    slot i (SLOT_SIZE bytes, at 64 + i * SLOT_SIZE):
        pid u32 | generation u32 | state u8 | pad 1 | waiting: handshake u16, head u16,
        keep-alive u16 (the worker's event loop) |
        requests u64 | connections u64 | last_used f64 |
        request line length u16 | request line (REQUEST_MAX bytes, UTF-8, truncated) |
        parked u16 (requests the event loop holds parked: waiting for a backend, or for a slow
        client to send its body or take its response; http/park.py)

A reader can see a slot half-written; the fields are independent, so the worst is a stale
request line next to a fresh count.  That is what Apache's scoreboard gives too.
"""
from __future__ import annotations

import mmap
import os
import struct
import sys
import time
from dataclasses import dataclass

MAGIC = b"HPSB0001"
HEADER = struct.Struct("<8sIII")
PRESSURE = struct.Struct("<dIII")
PRESSURE_OFFSET = 24
HEADER_SIZE = 64
REQUEST_MAX = 128
_SLOT_HEAD = struct.Struct("<IIB7xQQdH")
_U64, _TIME_LEN = struct.Struct("<Q"), struct.Struct("<dH")    # parts of it, at 16 and 32
PARKED_OFFSET = _SLOT_HEAD.size + REQUEST_MAX
SLOT_SIZE = (PARKED_OFFSET + 2 + 7) // 8 * 8

# Worker states, as Apache's scoreboard names them (SERVER_DEAD, SERVER_STARTING, ...).
DEAD, STARTING, IDLE, READING, WRITING, KEEPALIVE, CLOSING = range(7)
STATE_NAMES = ("dead", "starting", "idle", "reading", "writing", "keepalive", "closing")
_STATE_BY_NAME = {name: i for i, name in enumerate(STATE_NAMES)}
# Apache's status-page letters, for the one-line summary.
STATE_LETTERS = ".S_RWKC"


@dataclass(frozen=True)
class SlotInfo:
    """A copy of one slot, as read at one moment."""
    index: int
    pid: int
    generation: int
    state: str
    requests: int
    connections: int
    last_used: float
    request: str
    waiting: tuple = (0, 0, 0)          # connections held waiting: handshake, head, keep-alive
    parked: int = 0                     # requests held parked (http/park.py)


@dataclass(frozen=True)
class Pressure:
    """The header's queue-pressure fields (see the layout)."""
    busy_since: float = 0.0
    queued: int = 0
    queued_peak: int = 0
    episodes: int = 0


class Slot:
    """One worker's slot: what ``App.handle_connection`` receives as ``slot``.

    ``set_state`` takes the state name ("idle", "reading", "writing", "keepalive", "closing");
    ``record_request`` stores the request line and counts the request.  ``stopping()`` is True
    once the master asked this worker to stop gracefully (graceful restart or stop, or spare
    reduction): a keep-alive loop should then finish the current request and close, as Apache's
    ``ap_graceful_stop_signalled()``.
    """

    def __init__(self, board: "Scoreboard", index: int):
        self.board = board
        self.index = index
        self.offset = HEADER_SIZE + index * SLOT_SIZE
        self._stop_requested = False
        self.stop_pending = None        # the worker's check for a blocked, pending SIGUSR1

    # --- worker side --------------------------------------------------------------------------
    def set_state(self, state: str | int) -> None:
        code = _STATE_BY_NAME[state] if isinstance(state, str) else int(state)
        self.board.mm[self.offset + 8] = code
        if code != IDLE:
            struct.pack_into("<d", self.board.mm, self.offset + 32, time.time())

    def set_waiting(self, handshake: int, head: int, keepalive: int, parked: int = 0) -> None:
        """How many connections this worker's event loop holds, by stage (u16 each, in the
        slot's padding after the state byte), and how many requests it holds parked."""
        mm, off = self.board.mm, self.offset
        struct.pack_into("<HHH", mm, off + 10, min(handshake, 65535), min(head, 65535),
                         min(keepalive, 65535))
        struct.pack_into("<H", mm, off + PARKED_OFFSET, min(parked, 65535))

    def record_request(self, line: str | bytes) -> None:
        raw = line.encode("utf-8", "backslashreplace") if isinstance(line, str) else bytes(line)
        raw = raw[:REQUEST_MAX]
        mm, off = self.board.mm, self.offset
        _U64.pack_into(mm, off + 16, _U64.unpack_from(mm, off + 16)[0] + 1)    # requests
        _TIME_LEN.pack_into(mm, off + 32, time.time(), len(raw))    # (connections between)
        mm[off + _SLOT_HEAD.size: off + _SLOT_HEAD.size + len(raw)] = raw

    def count_connection(self) -> None:
        mm, off = self.board.mm, self.offset
        struct.pack_into("<Q", mm, off + 24, struct.unpack_from("<Q", mm, off + 24)[0] + 1)

    def stopping(self) -> bool:
        if self._stop_requested:
            return True
        pending = self.stop_pending
        return pending is not None and pending()

    def request_stop(self) -> None:
        self._stop_requested = True

    # --- master side --------------------------------------------------------------------------
    def claim(self, pid: int, generation: int) -> None:
        """A fresh worker takes this slot: counts cleared, state STARTING.

        The master claims before fork (pid 0) and sets the pid after: a claim after fork could
        overwrite the state a fast child already set.
        """
        _SLOT_HEAD.pack_into(self.board.mm, self.offset, pid, generation, STARTING, 0, 0,
                             time.time(), 0)
        struct.pack_into("<H", self.board.mm, self.offset + PARKED_OFFSET, 0)

    def set_pid(self, pid: int) -> None:
        struct.pack_into("<I", self.board.mm, self.offset, pid)

    def release(self) -> None:
        struct.pack_into("<IIB", self.board.mm, self.offset, 0, 0, DEAD)

    def read(self) -> SlotInfo:
        pid, gen, state, requests, conns, last_used, n = _SLOT_HEAD.unpack_from(
            self.board.mm, self.offset)
        start = self.offset + _SLOT_HEAD.size
        line = bytes(self.board.mm[start:start + min(n, REQUEST_MAX)]).decode("utf-8", "replace")
        name = STATE_NAMES[state] if state < len(STATE_NAMES) else "dead"
        return SlotInfo(self.index, pid, gen, name, requests, conns, last_used, line,
                        struct.unpack_from("<HHH", self.board.mm, self.offset + 10),
                        struct.unpack_from("<H", self.board.mm, self.offset + PARKED_OFFSET)[0])


class Scoreboard:
    """``slots`` worker slots in one shared mapping (see the module docstring for the layout)."""

    def __init__(self, slots: int, path: str | None = None):
        self.size = HEADER_SIZE + slots * SLOT_SIZE
        self.path = path
        if path is None:
            self.mm = mmap.mmap(-1, self.size, flags=mmap.MAP_SHARED)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.ftruncate(fd, self.size)
                self.mm = mmap.mmap(fd, self.size, flags=mmap.MAP_SHARED)
            finally:
                os.close(fd)
        self.slots = [Slot(self, i) for i in range(slots)]
        HEADER.pack_into(self.mm, 0, MAGIC, os.getpid(), 0, slots)

    @property
    def generation(self) -> int:
        return HEADER.unpack_from(self.mm, 0)[2]

    def set_generation(self, generation: int) -> None:
        HEADER.pack_into(self.mm, 0, MAGIC, os.getpid(), generation, len(self.slots))

    @property
    def pressure(self) -> Pressure:
        return Pressure(*PRESSURE.unpack_from(self.mm, PRESSURE_OFFSET))

    def set_pressure(self, p: Pressure) -> None:
        PRESSURE.pack_into(self.mm, PRESSURE_OFFSET, p.busy_since, p.queued, p.queued_peak,
                           p.episodes)

    def snapshot(self) -> list[SlotInfo]:
        return [s.read() for s in self.slots]

    def close(self, unlink: bool = True) -> None:
        try:
            self.mm.close()
        except (BufferError, ValueError):
            pass
        if unlink and self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


@dataclass(frozen=True)
class BoardView:
    """What ``read_board`` returns: the header and every live slot."""
    master_pid: int
    generation: int
    slots: list[SlotInfo]
    pressure: Pressure = Pressure()

    def workers(self, generation: int | None = None) -> list[SlotInfo]:
        """Slots holding a live worker (of ``generation`` when given)."""
        return [s for s in self.slots if s.pid and s.state != "dead"
                and (generation is None or s.generation == generation)]

    def count(self, *states: str, generation: int | None = None) -> int:
        return sum(1 for s in self.workers(generation) if s.state in states)


def read_board(path: str) -> BoardView:
    """Read a file-backed scoreboard from another process (status tools, tests)."""
    with open(path, "rb") as f:
        data = f.read()
    magic, master, gen, n = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise ValueError(f"{path}: not an httpd-py scoreboard")
    slots = []
    for i in range(n):
        off = HEADER_SIZE + i * SLOT_SIZE
        if off + SLOT_SIZE > len(data):
            break
        pid, g, state, requests, conns, last_used, ln = _SLOT_HEAD.unpack_from(data, off)
        start = off + _SLOT_HEAD.size
        line = data[start:start + min(ln, REQUEST_MAX)].decode("utf-8", "replace")
        name = STATE_NAMES[state] if state < len(STATE_NAMES) else "dead"
        slots.append(SlotInfo(i, pid, g, name, requests, conns, last_used, line,
                              struct.unpack_from("<HHH", data, off + 10),
                              struct.unpack_from("<H", data, off + PARKED_OFFSET)[0]))
    pressure = Pressure(*PRESSURE.unpack_from(data, PRESSURE_OFFSET))
    return BoardView(master, gen, slots, pressure)


def main(argv: list[str] | None = None) -> int:
    """``python -m httpd_py.mpm.scoreboard FILE``: print the scoreboard as a status table."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m httpd_py.mpm.scoreboard SCOREBOARD_FILE", file=sys.stderr)
        return 2
    try:
        view = read_board(args[0])
    except (OSError, ValueError, struct.error) as e:
        print(f"cannot read scoreboard: {e}", file=sys.stderr)
        return 1
    live = view.workers()
    print(f"master pid {view.master_pid}, generation {view.generation}, {len(live)} workers, "
          f"{view.count('starting', 'idle')} idle")
    print("".join(STATE_LETTERS[STATE_NAMES.index(s.state)] for s in view.slots))
    p = view.pressure
    if p.busy_since:
        print(f"all workers busy since {time.strftime('%H:%M:%S', time.localtime(p.busy_since))} "
              f"({max(0.0, time.time() - p.busy_since):.0f} s), {p.queued} connections queued "
              f"(peak {p.queued_peak})")
    else:
        print(f"not saturated; {p.episodes} episode(s) of every worker busy with connections "
              f"queued since the start")
    for s in live:
        hs, head, ka = s.waiting
        print(f"{s.index:4d} pid {s.pid:7d} gen {s.generation:3d} {s.state:9s} "
              f"req {s.requests:6d} conn {s.connections:6d} "
              f"waiting {hs}/{head}/{ka} parked {s.parked} {s.request}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
