"""The server assembled: a ServerConfig turned into the ``App`` the prefork master runs.

``run(load_config, action, foreground=, single_process=)`` is what ``cli.py`` calls; it hands
``control.run`` a ``load_app`` that reads the configuration afresh (start and every restart),
runs the post-config checks, and wraps the result in a ``ServerApp``.  Nothing is opened when
the App is made: all of that happens in ``before_fork``, in the master, still as root:

1. the main ErrorLog is opened and becomes the process-wide error log (workers inherit it);
2. directives accepted but not implemented are logged in one grouped line (HP00901);
3. the stapling service is created and initialised (socache, mutexes, and the background
   stapler wired in here: ``init(attach=stapler.attach)``); its lock and cache files and the
   staple store are handed to User/Group (``mpm.privileges.hand_over``, as Apache's
   ``ap_unixd_set_global_mutex_perms``), so workers and helpers can use them after dropping
   privileges;
4. every TLS context is built (pyOpenSSL contexts cannot change once used, so all before fork)
   with the stapling callback, and the HTTP connection handler (which opens the CustomLogs).

Workers call ``child_init`` (stapling, handler) and then ``handle_connection`` per connection.
The stapling service's helpers (the background stapler) run as supervised helper processes.
"""
from __future__ import annotations

import gc
from typing import Callable, Sequence

from httpd_py import log, logids, metrics, socache
from httpd_py.config.model import ServerConfig
from httpd_py.modules import status as mod_status
from httpd_py.mpm import control, privileges
from httpd_py.stapling import stapler
from httpd_py.stapling.service import StaplingService

MOD = "core"


class ServerApp:
    """The App (``httpd_py.mpm.app.App``) for one configuration generation."""

    def __init__(self, cfg: ServerConfig):
        self.config = cfg
        self.sites = None
        self._warm_status = False
        self.handler = None
        self.stapling = None
        self._logs: log.ServerLogs | None = None

    # --- master -------------------------------------------------------------------------------
    def before_fork(self, listeners: Sequence) -> None:
        cfg = self.config
        gc.unfreeze()           # the previous generation's objects may be collected again
        # the main ErrorLog and every vhost's (files, |programs, syslog), LogLevel, ErrorLogFormat
        self._logs = log.open_server_logs(cfg)
        try:
            from httpd_py.config import ignored_summary
            summary = ignored_summary(cfg)
            if summary:
                log.error_log.warn(MOD, logids.CORE_IGNORED_DIRECTIVES, summary)
            metrics.create(max(1, cfg.prefork.server_limit))
            metrics.use_master()            # the stapler's prefetch counts as the master's
            self.stapling = StaplingService.from_config(cfg)
            if self.stapling is not None:
                self.stapling.init(attach=stapler.attach)
                creds = privileges.resolve(cfg.user, cfg.group)
                for path, e in privileges.hand_over(self.stapling.runtime_paths(), creds):
                    log.error_log.warn(MOD, logids.CORE_HAND_OVER_FAILED,
                                       f"cannot give {path} to {creds.user}: {e}")
            mod_status.configure(cfg, self.stapling)
            metrics.use_scratch()           # warm-up handshakes are not counted
            from httpd_py.http.connection import ConnectionHandler
            from httpd_py.tls.sites import build_sites
            callback_for = self.stapling.callback_for if self.stapling is not None else None
            self.sites = build_sites(cfg, ocsp_callback_for=callback_for)
            self.handler = ConnectionHandler(cfg, self.sites)
            # warm code paths once here, so no worker's first handshake pays for them; ask for a
            # staple only where the OCSP callback just reads the cache (never fetches)
            from httpd_py.tls.sites import warm_up
            # (not under SSLStaplingMustStaple strict: a missing staple there is a logged refusal)
            stapled = [v.ssl.stapling for v in cfg.all_vhosts() if v.ssl.stapling.enabled]
            self._warm_status = self.stapling is not None and self.stapling.background and all(
                s.refresh == "background" and s.must_staple != "strict" for s in stapled)
            warm_up(self.sites, status_request=self._warm_status)
            # everything built so far to the collector's permanent generation: a full collection
            # in the master walks every tracked object and so writes to every page of the heap
            # the workers and helpers share with it (measured at 1,000 vhosts: a child's
            # gc.collect() copies 23.5 MB; 0.1 MB after gc.freeze()).  The next generation's
            # before_fork unfreezes first, so the cycles of this one can still be collected.
            gc.freeze()
        except BaseException as e:
            # a failed restart: the old generation keeps its error log (and its lock files,
            # which have the same names).  Ctrl-C reaches here only during the first load (the
            # master takes SIGINT itself once it serves): nothing else uses the files then.
            self._logs.restore_previous()
            self.shutdown(graceful=False, final=isinstance(e, KeyboardInterrupt))
            raise

    def single_process(self) -> None:
        if self.stapling is not None:
            self.stapling.forget_lock_files()

    def helpers(self) -> list[tuple[str, Callable[[], None]]]:
        found = self.stapling.helpers() if self.stapling is not None else []
        return [(name, metrics.as_helper(i, fn)) for i, (name, fn) in enumerate(found)]

    def shutdown(self, graceful: bool, final: bool = False) -> None:
        if self.handler is not None:
            self.handler.close()
            self.handler = None
        if self.stapling is not None:
            try:
                self.stapling.shutdown(unlink_locks=final)
            finally:
                self.stapling = None
        if self._logs is not None and log.error_log.fd != self._logs.main_fd:
            # a newer generation writes to its own descriptors now
            self._logs.close()
            self._logs = None

    # --- worker -------------------------------------------------------------------------------
    def child_init(self) -> None:
        metrics.use_scratch()
        if self.stapling is not None:
            self.stapling.child_init()
        child_init = getattr(self.handler, "child_init", None)
        if child_init is not None:
            child_init()
        # once more in the worker, before its first accept: the pages a handshake touches are
        # copied (copy-on-write) here rather than during the first client's handshake
        from httpd_py.tls.sites import warm_up
        warm_up(self.sites, status_request=self._warm_status)

    def handle_connection(self, sock, client_addr, listener, slot) -> None:
        metrics.enter(slot)
        self.handler(sock, client_addr, listener.addr, slot)

    # --- the worker's event loop over waiting connections (http/waiting.py) -------------------
    @property
    def event_loop(self) -> bool:
        return bool(self.config.mod("glob.core.waiting_connections", True))

    @property
    def max_waiting(self) -> int:
        return int(self.config.mod("glob.core.max_waiting_connections", 256))

    def open_waiting(self, sock, client_addr, listener, slot):
        metrics.enter(slot)
        return self.handler.open_waiting(sock, client_addr, listener.addr, slot)

    def step(self, w) -> int:
        return self.handler.step(w)

    def after_serve(self, w) -> int:
        return self.handler.after_serve(w)

    def deadline(self, w) -> float:
        return self.handler.deadline(w)

    def expire(self, w) -> None:
        self.handler.expire(w)

    def serve_ready(self, w, slot) -> bool:
        return self.handler.serve_ready(w, slot)

    def close_waiting(self, w) -> None:
        self.handler.close_waiting(w)

    # --- parking a request (a backend, a slow client, a tunnel: http/park.py) -----------------
    @property
    def may_park(self) -> bool:
        return bool(getattr(self.handler, "may_park", False))

    def request_state(self) -> tuple:
        return self.handler.request_state()

    def set_request_state(self, state: tuple) -> None:
        self.handler.set_request_state(state)


def make_load_app(load_config: Callable[[], ServerConfig]) -> Callable[[], ServerApp]:
    """``load_app`` for the master: read the config, run the post-config checks, wrap it."""
    def load_app() -> ServerApp:
        cfg = load_config()
        from httpd_py.config import check
        for warning in check(cfg):
            log.error_log.warn(MOD, logids.CONFIG_CHECK_WARNING, warning)
        socache.check(cfg)                  # a provider's own checks, with file:line
        return ServerApp(cfg)
    return load_app


def run(load_config: Callable[[], ServerConfig], action: str | None = "start", *,
        foreground: bool = False, single_process: bool = False) -> int:
    """Carry out ``httpd-py -k ACTION`` (start by default); returns the exit status."""
    return control.run(make_load_app(load_config), action, foreground=foreground,
                       single_process=single_process, name="httpd-py")
