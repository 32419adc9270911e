"""Worker state shared by every process, and mod_proxy_balancer's choice of a member.

Shared table (``SharedTable``): one anonymous ``MAP_SHARED`` mapping made when this module is
imported, which happens in the master while the directive table is built, before any worker is
forked; every worker inherits the same pages, so a member one worker found dead is skipped by
all of them (Apache keeps the same state in its slotmem).  Slots are handed out by name in the
master, at config time (``slot_for``), so every process agrees on them; the numbers stay the
same across restarts (a restart keeps a dead member's retry window, as Apache's).

    offset 0           header: magic b"HPPX", version u32, used slots u32, 4 bytes pad
    offset 16 + 32*i   slot i:  error_time f64   (0: usable; else when it failed, time.time())
                                lbstatus   i64   (byrequests' running score)
                                elected    i64   (times chosen)
                                failures   i64   (connect failures seen)

Updates are plain stores into the mapping without a lock, as Apache's byrequests updates
``lbstatus`` under a per-process lock only: two workers choosing at the same instant may both
pick the same member; the scores stay bounded (each choice adds and removes the same total).

``choose(balancer, table, now, route=None)``: Apache's byrequests over the usable members of the
lowest lbset that has one (hot standbys only when no other member is usable); a sticky ``route``
names the member first.  Pure apart from the table it is given.
"""
from __future__ import annotations

import mmap
import struct

HEADER = struct.Struct("<4sIII")
SLOT = struct.Struct("<dqqq")
CAPACITY = 4096
_SIZE = HEADER.size + SLOT.size * CAPACITY


class SharedTable:
    def __init__(self, buf=None):
        self.buf = buf if buf is not None else mmap.mmap(-1, _SIZE, mmap.MAP_SHARED)
        HEADER.pack_into(self.buf, 0, b"HPPX", 1, 0, 0)
        self.names: dict[str, int] = {}

    def slot_for(self, name: str) -> int:
        """The slot of a worker (or balancer member) name; allocated in the master at config
        time.  Past CAPACITY names the last slot is shared (logged once by the caller)."""
        got = self.names.get(name)
        if got is None:
            got = min(len(self.names), CAPACITY - 1)
            self.names[name] = got
            HEADER.pack_into(self.buf, 0, b"HPPX", 1, len(self.names), 0)
        return got

    def _off(self, slot: int) -> int:
        return HEADER.size + SLOT.size * slot

    def read(self, slot: int) -> tuple[float, int, int, int]:
        return SLOT.unpack_from(self.buf, self._off(slot))

    def error_time(self, slot: int) -> float:
        return struct.unpack_from("<d", self.buf, self._off(slot))[0]

    def set_error(self, slot: int, when: float) -> None:
        e, lb, el, fails = self.read(slot)
        SLOT.pack_into(self.buf, self._off(slot), when, lb, el, fails + (1 if when else 0))

    def clear_error(self, slot: int) -> None:
        struct.pack_into("<d", self.buf, self._off(slot), 0.0)

    def add_lbstatus(self, slot: int, delta: int, elected: int = 0) -> int:
        e, lb, el, fails = self.read(slot)
        lb += delta
        SLOT.pack_into(self.buf, self._off(slot), e, lb, el + elected, fails)
        return lb


TABLE = SharedTable()


def usable(member, table: SharedTable, now: float, force: bool = False) -> bool:
    """Apache's PROXY_WORKER_IS_USABLE, with the retry window: a member in error becomes
    usable again once ``retry`` seconds have passed since it failed."""
    st = member.params.status
    if "disabled" in st or "stopped" in st:
        return False
    if "in-error" in st and member.params.retry <= 0 and not force:
        return False
    err = table.error_time(member.slot)
    if err and not force and now - err < member.params.retry:
        return False
    return True


def route_of(value: str, sep: str) -> str | None:
    """The route part of a sticky session value: what follows the first separator."""
    i = value.find(sep)
    return value[i + 1:] if i >= 0 else None


def choose(balancer, table: SharedTable, now: float, route: str | None = None,
           exclude: frozenset = frozenset()):
    """The member to use, or None (no usable member: 503)."""
    members = [m for m in balancer.members if m.name not in exclude]
    if route is not None:
        for m in members:
            if m.params.route == route:
                if usable(m, table, now):
                    # a sticky choice counts as a byrequests choice of that member, as
                    # mod_proxy_balancer updates every usable member's score for it
                    total = 0
                    for o in members:
                        if usable(o, table, now):
                            table.add_lbstatus(o.slot, o.params.loadfactor)
                            total += o.params.loadfactor
                    table.add_lbstatus(m.slot, -total, 1)
                    return m
                if balancer.nofailover:
                    return None
                break
    force = False
    live = [m for m in members if usable(m, table, now)]
    if not live and balancer.forcerecovery:
        live = [m for m in members if usable(m, table, now, force=True)]
        force = True
    if not live:
        return None
    regular = [m for m in live if "hot-standby" not in m.params.status]
    pool = regular or live
    lowest = min(m.params.lbset for m in pool)
    pool = [m for m in pool if m.params.lbset == lowest]
    total = 0
    best = None
    best_score = None
    for m in pool:
        score = table.add_lbstatus(m.slot, m.params.loadfactor)
        total += m.params.loadfactor
        if best is None or score > best_score:
            best, best_score = m, score
    table.add_lbstatus(best.slot, -total, 1)
    if force:
        table.clear_error(best.slot)
    return best


def sticky_route(balancer, cookies: str | None, path: str, query: str) -> str | None:
    """The route a request asks for: a stickysession name as a cookie, a ``;name=`` path
    parameter or a ``name=`` query parameter (Apache looks at the URL first, then the cookie)."""
    for name in balancer.sticky:
        value = None
        key = name + "="
        i = path.find(";" + key)
        if i >= 0:
            value = path[i + len(key) + 1:].split(";")[0].split("/")[0]
        if value is None and query:
            for part in query.replace(";" if balancer.scolonpathdelim else "&", "&").split("&"):
                if part.startswith(key):
                    value = part[len(key):]
                    break
        if value is None and cookies:
            for part in cookies.replace(",", ";").split(";"):
                part = part.strip()
                if part.startswith(key):
                    value = part[len(key):]
                    break
        if value:
            r = route_of(value, balancer.stickysep)
            if r:
                return r
    return None
