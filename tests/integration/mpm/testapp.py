"""A tiny App for driving the prefork master as a real process, without TLS or HTTP.

Run as ``python -m tests.integration.mpm.testapp SPEC.json [-k ACTION] [-X] [--foreground]``
(from the repository root).  SPEC.json is re-read on every start and restart (that is
``load_app``); invalid JSON or a "bad": true spec raises ConfigError, as a broken httpd.conf
would.  Spec keys::

    listens: [[host, port], ...]       prefork: {start_servers: 2, ...}   pid_file, error_log
    log_level ("info")   tag (echoed in replies)   fail_boot (child_init raises)
    helper_file (a helper writes "<pid>\n" there, then blocks)   user, group
    load_delay (seconds before_fork sleeps: a restart whose config load is slow)

Protocol, one line at a time on a kept-alive connection: the client sends ``<text>\n``; the
worker answers ``<pid> <tag> <text>\n``.  After an answer it closes when ``slot.stopping()``
(a graceful restart or stop asked it to), as an HTTP keep-alive loop does.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys

from httpd_py import log
from httpd_py.config.model import ListenSpec, PreforkConfig, ServerConfig, VHost
from httpd_py.errors import ConfigError
from httpd_py.mpm import control


def load_spec(path: str) -> dict:
    try:
        with open(path) as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read test spec: {e}", path, 1) from None
    if spec.get("bad"):
        raise ConfigError("Invalid command 'Bad', perhaps misspelled", path, 1)
    return spec


class EchoApp:
    def __init__(self, spec: dict):
        self.spec = spec
        self.tag = spec.get("tag", "a")
        self.config = ServerConfig(
            config_file="spec.json", server_root=os.getcwd(),
            main=VHost(error_log=spec.get("error_log", "")), vhosts=(),
            listens=tuple(ListenSpec(h, p) for h, p in spec["listens"]),
            prefork=PreforkConfig(**spec.get("prefork", {})),
            pid_file=spec["pid_file"], user=spec.get("user"), group=spec.get("group"))
        self.log_fd: int | None = None

    def before_fork(self, listeners) -> None:
        path = self.spec.get("error_log")
        if path:
            self.log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        log.configure(self.log_fd, self.spec.get("log_level", "info"))
        if self.spec.get("load_delay"):
            import time
            time.sleep(float(self.spec["load_delay"]))

    def child_init(self) -> None:
        if self.spec.get("fail_boot"):
            raise RuntimeError("test spec says fail_boot")

    def handle_connection(self, sock, client_addr, listener, slot) -> None:
        f = sock.makefile("rb")
        while True:
            slot.set_state("keepalive")
            line = f.readline(1024)
            if not line:
                return
            slot.set_state("reading")
            text = line.decode().strip()
            slot.record_request(text)
            slot.set_state("writing")
            sock.sendall(f"{os.getpid()} {self.tag} {text}\n".encode())
            if slot.stopping():
                slot.set_state("closing")
                return

    def helpers(self):
        path = self.spec.get("helper_file")
        if not path:
            return []

        def helper() -> None:
            with open(path, "w") as f:
                f.write(f"{os.getpid()}\n")
            r, _w = os.pipe()
            select.select([r], [], [])       # block until killed

        return [("test-helper", helper)]

    def single_process(self) -> None:
        pass

    def shutdown(self, graceful: bool, final: bool = False) -> None:
        if self.log_fd is not None:
            # the next generation configured its own descriptor already
            if log.error_log.fd != self.log_fd:
                os.close(self.log_fd)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("-k", dest="action", default=None)
    ap.add_argument("-X", dest="single", action="store_true")
    ap.add_argument("--foreground", action="store_true")
    args = ap.parse_args(argv)
    return control.run(lambda: EchoApp(load_spec(args.spec)), args.action,
                       foreground=args.foreground or args.single, single_process=args.single,
                       name="testapp")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
