"""Listening sockets: bind every ``Listen`` and keep the unchanged ones across restarts.

``Listen 8443`` (no address) binds both families: ``0.0.0.0`` and ``[::]`` with IPV6_V6ONLY, so
the two never clash (a host without IPv6 gets the IPv4 one only).  ``Listen 127.0.0.1:8443`` and
``Listen [::1]:8443`` bind that address; a host name binds every address it resolves to.
Sockets get SO_REUSEADDR, close-on-exec, non-blocking mode (workers wait in select and several
may race for one connection) and the ListenBacklog.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Iterable

from httpd_py import logids
from httpd_py.config.model import ListenSpec
from httpd_py.errors import StartupError


@dataclass(eq=False)
class Listener:
    """One bound, listening socket.

    ``addr`` is the bound (host, port) as the kernel reports it; ``protocol`` is the Listen's
    protocol argument ("https", "http" or "" = by port, as Apache); ``key`` identifies the
    socket across restarts.
    """
    sock: socket.socket
    family: int
    host: str
    port: int
    protocol: str
    spec: ListenSpec | None = None
    key: tuple = field(default=())

    @property
    def addr(self) -> tuple[str, int]:
        # a bound socket's address never changes: asked once, not per connection
        got = self.__dict__.get("_addr")
        if got is None:
            got = self.__dict__["_addr"] = self.sock.getsockname()[:2]
        return got

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self, unlisten: bool = False) -> None:
        """Close our descriptor; ``unlisten`` also stops the socket listening in every process
        that shares it (workers of an old generation), so no connection waits in its backlog
        for a worker that will never accept it."""
        if unlisten:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __repr__(self) -> str:
        host = f"[{self.host}]" if self.family == socket.AF_INET6 else self.host
        return f"Listener({host}:{self.port})"


def _strip(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def addresses(spec: ListenSpec) -> list[tuple[int, str, int]]:
    """The (family, host, port) triples one Listen binds."""
    host = _strip(spec.host)
    if host in ("", "*"):
        out = [(socket.AF_INET, "0.0.0.0", spec.port)]
        if _ipv6_available():
            out.append((socket.AF_INET6, "::", spec.port))
        return out
    try:
        infos = socket.getaddrinfo(host, spec.port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                   socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise StartupError(f"Could not resolve host name {host} -- ignoring! ({e})") from None
    out: list[tuple[int, str, int]] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        triple = (family, sockaddr[0], spec.port)
        if family in (socket.AF_INET, socket.AF_INET6) and triple not in out:
            out.append(triple)
    return out


def _bind(family: int, host: str, port: int, backlog: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        raise StartupError(f"{logids.MPM_BIND_FAILED}: could not bind to address {shown}:{port}: "
                           f"{e.strerror or e}\nno listening sockets available, shutting down"
                           ) from None
    return sock


def bind_all(specs: Iterable[ListenSpec], backlog: int,
             keep: dict[tuple, Listener] | None = None) -> list[Listener]:
    """Bind every Listen; reuse the sockets in ``keep`` (by key) instead of binding them again.

    On an error every socket bound by this call is closed again (the ones from ``keep`` stay
    open) and StartupError is raised.
    """
    keep = keep or {}
    result: list[Listener] = []
    fresh: list[Listener] = []
    seen: set[tuple] = set()
    try:
        for spec in specs:
            for family, host, port in addresses(spec):
                key = (family, host, port)
                if key in seen:
                    continue
                seen.add(key)
                if key in keep:
                    old = keep[key]
                    old.protocol, old.spec = spec.protocol, spec
                    try:
                        old.sock.listen(backlog)   # a changed ListenBacklog takes effect
                    except OSError:
                        pass
                    result.append(old)
                    continue
                lst = Listener(_bind(family, host, port, backlog), family, host, port,
                               spec.protocol, spec, key)
                fresh.append(lst)
                result.append(lst)
    except BaseException:
        for lst in fresh:
            lst.close()
        raise
    if not result:
        raise StartupError("no listening sockets available (no Listen directive), shutting down")
    return result
