"""What the master runs: the ``App`` protocol (``httpd_py.server`` builds the real one).

The master knows processes, sockets and signals, nothing of TLS or HTTP.  Lifecycle of one
generation (the start, then each restart with a freshly read configuration)::

    master:  load_app() -> app;  bind listeners;  app.before_fork(listeners)
    worker:  fork -> drop privileges -> app.child_init() -> app.handle_connection(...) per accept
    helper:  fork -> drop privileges -> callable() (restarted with backoff when it exits)
    master:  app.shutdown(graceful, final) when the generation is replaced or the server stops

``before_fork`` runs as root (when started as root): open logs, build TLS contexts, create
shared caches.  An exception from it at start stops the server; at a restart it keeps the old
generation serving.  An exception from ``child_init`` is a worker that failed to boot: the
master halts the server instead of respawning forever.
"""
from __future__ import annotations

import socket
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from httpd_py.config.model import ServerConfig


@runtime_checkable
class App(Protocol):
    config: ServerConfig

    def before_fork(self, listeners: Sequence[Any]) -> None:
        """In the master, before the workers of this generation fork (still privileged)."""

    def child_init(self) -> None:
        """In each worker, after fork and after privileges are dropped."""

    def handle_connection(self, sock: socket.socket, client_addr: Any, listener: Any,
                          slot: Any) -> None:
        """Serve one accepted connection (blocking socket); the worker closes it afterwards.

        ``listener`` is the ``mpm.listeners.Listener`` it came in on (``.addr``, ``.port``,
        ``.protocol``); ``slot`` the worker's scoreboard slot (``set_state(name)``,
        ``record_request(line)``, ``stopping()``).
        """

    def helpers(self) -> list[tuple[str, Callable[[], None]]]:
        """Long-lived helper processes to run beside the workers: (name, callable)."""

    def single_process(self) -> None:
        """``-X``: in the one process, still privileged, just before it drops privileges and
        serves; nothing forks from here on.  Remove what only a forked child would open again
        (lock files), which the process could not remove after dropping privileges."""

    def shutdown(self, graceful: bool, final: bool = False) -> None:
        """In the master, when this generation ends: replaced by a restart (final False: the
        next generation may already use the same lock files) or the server stops (final True:
        remove what the generation created)."""
