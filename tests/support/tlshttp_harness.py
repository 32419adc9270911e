"""A small prefork harness for the tls/ and http/ tests, independent of the real master.

``serve(cfg, workers=2)`` builds the Sites and the ConnectionHandler in this (the "master")
process, binds one listening socket per distinct Listen, forks ``workers`` children per socket
that accept and call the handler, and yields a ``Running`` with the port(s) and the error-log
path.  The listening socket exists before the fork, so clients may connect at once.  Teardown
SIGTERMs and reaps every child.

Config helpers build a ``ServerConfig`` straight from the model, as the config loader would.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from httpd_py import log
from httpd_py.config.model import (CertKeyPair, ListenSpec, LogFormatRef, SSLConfig, ServerConfig,
                                   VHost, VHostAddr)
from httpd_py.http.connection import ConnectionHandler
from httpd_py.tls.sites import build_sites

COMMON = '%h %l %u %t "%r" %>s %b'
COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'


def ssl_for(pki, name: str, kinds=("rsa", "ec"), **kw) -> SSLConfig:
    """SSLConfig serving ``name``'s leaves from a devtools PKI."""
    certs = tuple(CertKeyPair(str(pki.leaf(name, k).cert_file), str(pki.leaf(name, k).key_file))
                  for k in kinds)
    return SSLConfig(engine=True, certificates=certs, **kw)


def vhost(name: str, docroot: str | os.PathLike, port: int | None, *, host: str = "*",
          **kw) -> VHost:
    # a vhost's LogLevel applies to its requests (log_config's scope); serve() logs at info
    kw.setdefault("log_level", "info")
    return VHost(addrs=(VHostAddr(host, port),), server_name=name, document_root=str(docroot), **kw)


def config(tmp: Path, vhosts: tuple[VHost, ...], ports: tuple[int, ...], *, main: VHost | None = None,
           host: str = "127.0.0.1") -> ServerConfig:
    main = main or VHost(document_root=str(tmp))
    return ServerConfig(config_file=str(tmp / "httpd.conf"), server_root=str(tmp), main=main,
                        vhosts=vhosts, listens=tuple(ListenSpec(host, p) for p in ports))


def with_log(v: VHost, path: str | os.PathLike, fmt: str = COMBINED) -> VHost:
    return dataclasses.replace(v, custom_logs=v.custom_logs + (LogFormatRef(str(path), fmt),))


class FileSlot:
    """A scoreboard slot stand-in that appends its calls to a file (one line each)."""

    def __init__(self, path: str):
        self.path = path

    def _put(self, line: str) -> None:
        with open(self.path, "a") as f:
            f.write(line + "\n")

    def set_state(self, state: str) -> None:
        self._put(f"state {state}")

    def record_request(self, line: str) -> None:
        self._put(f"request {line}")

    def stopping(self) -> bool:
        """A graceful stop is requested while ``<path>.stop`` exists."""
        return os.path.exists(self.path + ".stop")


@dataclass
class Running:
    ports: list[int]
    error_log: Path
    pids: list[int] = field(default_factory=list)
    handler: ConnectionHandler | None = None

    @property
    def port(self) -> int:
        return self.ports[0]

    def error_text(self) -> str:
        return self.error_log.read_text() if self.error_log.exists() else ""


def _worker(lsock: socket.socket, handler: ConnectionHandler, slot_path: str | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    slot = FileSlot(slot_path) if slot_path else None
    while True:
        try:
            sock, addr = lsock.accept()
        except InterruptedError:
            continue
        handler(sock, addr, lsock.getsockname(), slot)


@contextlib.contextmanager
def serve(cfg: ServerConfig, tmp: Path, *, workers: int = 2, log_level: str = "info",
          ocsp_callback_for: Callable | None = None, slot_path: str | None = None,
          module_levels: dict[str, str] | None = None) -> Iterator[Running]:
    err_path = tmp / "error.log"
    fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    saved = (log.error_log.fd, log.error_log.level, dict(log.error_log.module_levels))
    log.configure(fd, log_level, module_levels)
    running = Running([], err_path)
    socks = []
    try:
        sites = build_sites(cfg, ocsp_callback_for)
        handler = ConnectionHandler(cfg, sites)
        running.handler = handler
        for spec in cfg.listens:
            s = socket.socket(socket.AF_INET6 if ":" in spec.host else socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((spec.host, spec.port))
            s.listen(128)
            socks.append(s)
            running.ports.append(s.getsockname()[1])
        for s in socks:
            for _ in range(workers):
                pid = os.fork()
                if pid == 0:
                    code = 0
                    try:
                        _worker(s, handler, slot_path)
                    except BaseException:
                        code = 1
                    finally:
                        os._exit(code)
                running.pids.append(pid)
        yield running
    finally:
        for pid in running.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in running.pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        for s in socks:
            s.close()
        if running.handler is not None:
            running.handler.close()
        log.error_log.fd, log.error_log.level, log.error_log.module_levels = saved
        os.close(fd)
