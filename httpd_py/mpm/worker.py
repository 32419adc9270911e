"""A prefork worker: one process, one connection at a time.

After fork: reset the master's signal handlers, ask the kernel for SIGTERM when the master dies,
drop privileges, ``app.child_init()`` (an exception here is a boot failure: exit code
``BOOT_ERROR``, and the master halts), then loop: wait in epoll on every listener
(EPOLLEXCLUSIVE: one idle worker is woken per connection) and a wake-up pipe, accept,
``app.handle_connection``, close, count.

Signals in a worker (as Apache's prefork child):
  SIGTERM   die at once (the default action), even mid-connection;
  SIGUSR1   graceful: finish the current connection (``slot.stopping()`` turns True so a
            keep-alive loop closes after the current request), then exit 0;
  SIGHUP, SIGINT, SIGWINCH  ignored (the master acts on them and tells the workers).
The worker also exits 0 after MaxConnectionsPerChild connections.
"""
from __future__ import annotations

import errno
import os
import select
import signal
import socket
import traceback
from typing import Sequence

from httpd_py import log
from httpd_py.mpm import privileges
from httpd_py.mpm.process import die_with_parent
from httpd_py.mpm.scoreboard import Slot

BOOT_ERROR = 3          # exit code: the worker could not start (gunicorn's WORKER_BOOT_ERROR)
_EPOLLEXCLUSIVE = getattr(select, "EPOLLEXCLUSIVE", 1 << 28)


_USR1 = {signal.SIGUSR1}


def _usr1_pending() -> bool:
    return signal.SIGUSR1 in signal.sigpending()


class Worker:
    def __init__(self, app, listeners: Sequence, slot: Slot, creds, master_pid: int,
                 max_connections: int = 0):
        self.app = app
        self.listeners = list(listeners)
        self.slot = slot
        self.creds = creds
        self.master_pid = master_pid
        self.max_connections = max_connections
        self.connections = 0
        self._wake_r = self._wake_w = -1

    # --- setup --------------------------------------------------------------------------------
    def request_stop(self, signum=None, frame=None) -> None:
        """Graceful: finish the connection in hand, then exit (SIGUSR1; TERM/INT under -X)."""
        self.slot.request_stop()

    def install_signals(self) -> None:
        """The worker's signal dispositions (the master calls it right after fork, before the
        handled signals are unblocked)."""
        signal.set_wakeup_fd(-1)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGWINCH, signal.SIGTTIN,
                    signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, self.request_stop)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        # Python starts with SIGPIPE ignored (EPIPE instead): keep it.

    def boot(self) -> int | None:
        """Everything before serving; returns an exit code on failure, None when ready."""
        if self._wake_r < 0:
            self.install_signals()
        die_with_parent(self.master_pid)
        try:
            privileges.drop(self.creds)
        except OSError as e:
            log.error_log.emerg("mpm_prefork", "HP01019",
                                f"worker cannot switch to user {self.creds.user}: {e}")
            return BOOT_ERROR
        try:
            self.app.child_init()
        except Exception as e:                                    # noqa: BLE001
            log.error_log.emerg("mpm_prefork", "HP01020",
                                f"worker failed to boot: {type(e).__name__}: {e}")
            log.error_log.debug("mpm_prefork", "HP01020", traceback.format_exc())
            return BOOT_ERROR
        return None

    # --- the loop -----------------------------------------------------------------------------
    def run(self, boot: bool = True) -> int:
        if boot:
            code = self.boot()
            if code is not None:
                return code
        self.slot.set_state("idle")
        # epoll with EPOLLEXCLUSIVE on the shared listeners: a new connection wakes ONE idle
        # worker, not all of them (select() woke every idle worker for each connection, and all
        # but one found nothing to accept: ~3 wasted wake-ups per connection with 4 workers).
        # Apache's prefork gets the same from a blocking accept() on a single listener.
        poller = select.epoll()
        by_fd = {}
        for lst in self.listeners:
            fd = lst.fileno()
            poller.register(fd, select.EPOLLIN | _EPOLLEXCLUSIVE)
            by_fd[fd] = lst
        poller.register(self._wake_r, select.EPOLLIN)
        try:
            return self._loop(poller, by_fd)
        finally:
            poller.close()

    def _loop(self, poller, by_fd: dict) -> int:
        while not self.slot.stopping():
            if self.max_connections and self.connections >= self.max_connections:
                log.error_log.debug("mpm_prefork", "HP01015",
                                    f"MaxConnectionsPerChild {self.max_connections} reached, "
                                    "worker exiting")
                break
            try:
                events = poller.poll(10.0)
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise
            if not events:
                if os.getppid() != self.master_pid:
                    break
                continue
            if any(fd == self._wake_r for fd, _ in events):
                try:
                    os.read(self._wake_r, 512)
                except BlockingIOError:
                    pass
                continue          # re-check the stop flag before taking a connection
            for fd, _ in events:
                lst = by_fd.get(fd)
                if lst is None or self.slot.stopping():
                    break
                try:
                    conn, addr = lst.sock.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue      # another worker took it
                except OSError as e:
                    if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        log.error_log.error("mpm_prefork", "HP01021", f"accept: {e}")
                        continue
                    if e.errno in (errno.EINVAL, errno.EBADF):
                        # the master stopped this listener (graceful stop, Listen removed)
                        try:
                            poller.unregister(fd)
                        except OSError:
                            pass
                        del by_fd[fd]
                        if not by_fd:
                            return 0
                        continue
                    raise
                self._serve(conn, addr, lst)
                break
        return 0

    def _serve(self, conn: socket.socket, addr, lst) -> None:
        self.connections += 1
        self.slot.count_connection()
        self.slot.set_state("reading")
        # SIGUSR1 (graceful) is held back while a connection is served: a handler running
        # during a blocking read on a socket with SO_RCVTIMEO ends that read (the kernel does
        # not restart it), which OpenSSL and the loop would take for a timeout.  The loop sees
        # a pending SIGUSR1 through slot.stopping() and finishes the connection as Apache does.
        signal.pthread_sigmask(signal.SIG_BLOCK, _USR1)
        self.slot.stop_pending = _usr1_pending
        try:
            conn.setblocking(True)
            self.app.handle_connection(conn, addr, lst, self.slot)
        except Exception as e:                                    # noqa: BLE001
            # One bad connection must never take the worker (and its siblings' capacity) down.
            client = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
            log.error_log.error("mpm_prefork", "HP01012",
                                f"unhandled {type(e).__name__} serving a connection: {e}",
                                client=client)
            log.error_log.debug("mpm_prefork", "HP01012", traceback.format_exc())
        finally:
            try:
                conn.close()
            except OSError:
                pass
            self.slot.set_state("idle")
            self.slot.stop_pending = None
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _USR1)   # a pending one runs now


def run_in_child(worker: Worker) -> "NoReturn":  # noqa: F821
    """Body of a forked worker: never returns, never runs the parent's atexit handlers."""
    code = 1
    try:
        code = worker.run()
    except BaseException as e:                                    # noqa: BLE001
        try:
            log.error_log.error("mpm_prefork", "HP01022",
                                f"worker crashed: {type(e).__name__}: {e}")
            log.error_log.debug("mpm_prefork", "HP01022", traceback.format_exc())
        except BaseException:                                     # noqa: BLE001
            pass
    finally:
        os._exit(code)
