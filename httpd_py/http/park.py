"""Parking a request while a backend answers: the request's code waits for a descriptor and the
worker's event loop serves other connections meanwhile.

The event loop (``mpm/worker.py``) serves each ready connection of a config that may park
(``ConnectionHandler.may_park``) in a greenlet (reused from one request to the next).  Code on
the request path that would sleep -- mod_proxy's backend reads, writes and connects, a slow
client's body or download -- calls ``wait_readable(fd, timeout, owner)`` (``wait_writable``,
``wait_client`` for the request's own connection): it switches back to the loop with that
tuple; the loop watches ``fd`` in its epoll set and switches back in with True when it is
ready or False when ``timeout`` passed.  Outside such a greenlet (WaitingConnections Off, tests
and benches calling the pipeline directly) it returns None at once and the caller blocks, as
before.

The loop saves and restores the request state the connection handler keeps between phases
(``ConnectionHandler.request_state``) around every switch, and holds SIGUSR1 back while it
serves or resumes requests (the blocking reads' rule, see ``mpm/worker.py``).  The protocol
between the two sides is only that tuple and that bool: ``mpm`` imports nothing from ``http``.
"""
from __future__ import annotations

try:
    from greenlet import getcurrent
except ImportError:                     # pragma: no cover - greenlet is a dependency
    getcurrent = None

AVAILABLE = getcurrent is not None


def _park(wanted: tuple):
    """Hand ``wanted`` -- (fd or fds, timeout, owner[, write]) -- to the loop and return what
    it resumes the request with; None when the caller is not parkable."""
    if getcurrent is None:
        return None
    parent = getcurrent().parent
    if parent is None:                  # the main greenlet: nobody to hand the worker to
        return None
    return parent.switch(wanted)


def wait_readable(fd: int, timeout: float | None, owner: object) -> bool | None:
    """True once ``fd`` is readable, False when ``timeout`` seconds passed first; None when
    the caller is not parkable (read blocking instead).  ``owner``: the object whose
    descriptor it is while it stays open (the loop keeps ``fd`` in its epoll set for the
    owner's next wait, and registers it afresh for another owner)."""
    return _park((fd, timeout, owner))


def wait_writable(fd: int, timeout: float | None, owner: object) -> bool | None:
    """As ``wait_readable``, for writable: a backend connect in progress (EINPROGRESS), a
    write the backend cannot take yet, a TLS call that wants to write."""
    return _park((fd, timeout, owner, True))


def wait_readable_any(fds: tuple[int, ...], timeout: float | None,
                      owner: object) -> int | bool | None:
    """The first of ``fds`` found readable, False when ``timeout`` passed first, None when not
    parkable.  The request's own client connection may be among them (a tunnel waits for
    either side); ``owner`` as for ``wait_readable``, for the others."""
    return _park((tuple(fds), timeout, owner))


def wait_client(fd: int, timeout: float, read: bool) -> bool | None:
    """Park until the request's own client connection is writable (``read``: readable, a TLS
    write that needs the peer's bytes first), False when ``timeout`` passed; None when not
    parkable.  A slow client then holds no worker: the loop serves the others meanwhile."""
    return _park((fd, timeout, None, not read))


def parkable() -> bool:
    return getcurrent is not None and getcurrent().parent is not None
