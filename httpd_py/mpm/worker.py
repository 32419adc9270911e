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
import heapq
import os
import select
import signal
import _signal
import socket
import time
import traceback
from typing import Sequence

try:
    from greenlet import getcurrent, greenlet
except ImportError:                         # pragma: no cover - a dependency
    greenlet = None

from httpd_py import log, logids
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
            log.error_log.emerg("mpm_prefork", logids.MPM_SETUID_FAILED,
                                f"worker cannot switch to user {self.creds.user}: {e}")
            return BOOT_ERROR
        try:
            self.app.child_init()
        except Exception as e:                                    # noqa: BLE001
            log.error_log.emerg("mpm_prefork", logids.MPM_BOOT_FAILED,
                                f"worker failed to boot: {type(e).__name__}: {e}")
            log.error_log.debug("mpm_prefork", logids.MPM_BOOT_FAILED, traceback.format_exc())
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
            if hasattr(type(self.app), "open_waiting") and self.app.event_loop:
                return self._loop_events(poller, by_fd)
            return self._loop(poller, by_fd)
        finally:
            poller.close()

    def _loop(self, poller, by_fd: dict) -> int:
        while not self.slot.stopping():
            if self.max_connections and self.connections >= self.max_connections:
                log.error_log.debug("mpm_prefork", logids.MPM_MAX_CONNECTIONS,
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
                        log.error_log.error("mpm_prefork", logids.MPM_ACCEPT_FAILED, f"accept: {e}")
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

    # --- the event loop: waiting connections held without a process each ----------------------
    def _loop_events(self, poller, by_fd: dict) -> int:
        """Accept, and hold every connection that waits (TLS handshake, request head,
        keep-alive) in epoll; serve one request at a time, blocking, once its head is complete
        (``app.open_waiting/step/serve_ready``, see http/waiting.py).  At most
        ``app.max_waiting`` connections wait here; at the bound the listeners leave the epoll
        set so another worker accepts.  A graceful stop closes idle keep-alive connections at
        once and serves what is already arriving, without keep-alive."""
        app = self.app
        waiting: dict[int, object] = {}
        registered: dict[int, int] = {}          # fd -> epoll mask
        listening = True
        max_waiting = max(1, int(getattr(app, "max_waiting", 256)))
        IN, OUT = select.EPOLLIN | select.EPOLLRDHUP, select.EPOLLOUT
        WAIT_READ, WAIT_WRITE, READY = 1, 2, 3
        # deadlines in a heap, one entry per watch(); an entry counts only while its connection
        # waits and it is the connection's newest (version), so a loop turn costs O(log n), not
        # a scan of every waiting connection
        timers: list = []
        version: dict[int, int] = {}
        ticket = [0]
        counts = {"handshake": 0, "head": 0, "keepalive": 0, "parked": 0}
        stage_of: dict[int, str] = {}
        # requests parked while a backend answers (http/park.py): the descriptor waited for
        # -> [greenlet, connection, the handler's request state].  In a config that may park,
        # requests are served in greenlets, kept for the next request once one is done (a new
        # greenlet costs an mmap and munmap of its frame stack).  A waited descriptor stays in
        # epoll after its request resumed (a kept backend connection is waited for again by
        # the next request: no epoll_ctl per request); ``kept`` says whose it is and for what
        # (EPOLLIN; EPOLLOUT for a connect in progress or a write), so a closed and reused
        # descriptor number is registered afresh, and an event with nobody parked on it (a
        # kept connection the backend closed) takes it out.
        parked: dict[int, list] = {}
        kept: dict[int, tuple] = {}
        idle_serving: list = []
        may_park = greenlet is not None and getattr(app, "may_park", False)

        # SIGUSR1 (graceful) is held back while requests are served (see _serve): blocked
        # once before the first request a loop turn serves or resumes, released before the
        # next epoll_wait -- two sigprocmask calls per turn, not two per request and two more
        # per park; turns that only accept or step handshakes and heads make none
        masked = [False]
        # ... and looked for once per turn, at the first request that asks (slot.stopping(),
        # for its keep-alive): a graceful stop that comes later in the turn is seen at the
        # next, which closes the idle keep-alive connections (one sigpending per turn, not one
        # per request)
        seen: list = [None]

        def turn_pending() -> bool:
            got = seen[0]
            if got is None:
                got = seen[0] = _usr1_pending()
            return got

        def hold_usr1() -> None:
            if not masked[0]:
                _signal.pthread_sigmask(signal.SIG_BLOCK, _USR1)
                seen[0] = None
                self.slot.stop_pending = turn_pending
                masked[0] = True

        def release_usr1() -> None:
            if masked[0]:
                self.slot.stop_pending = None
                _signal.pthread_sigmask(signal.SIG_UNBLOCK, _USR1)   # a pending one runs now
                masked[0] = False

        def serving() -> None:
            me = getcurrent()
            w = me.parent.switch(None)
            while True:
                w = me.parent.switch(self._serve_waiting(w))

        def watch(w, how) -> None:
            mask = OUT if how == WAIT_WRITE else IN
            fd = w.fd
            old = registered.get(fd)
            if old is None:
                kept.pop(fd, None)                # a backend's closed descriptor, reused
                poller.register(fd, mask)
            elif old != mask:
                poller.modify(fd, mask)
            registered[fd] = mask
            waiting[fd] = w
            ticket[0] += 1
            version[fd] = ticket[0]
            heapq.heappush(timers, (app.deadline(w), ticket[0], fd, w))
            st = getattr(w, "stage", "head")
            was = stage_of.get(fd)
            if was != st:
                if was is not None:
                    counts[was] -= 1
                counts[st] = counts.get(st, 0) + 1
                stage_of[fd] = st
            if len(timers) > 2 * len(waiting) + 64:
                timers[:] = [e for e in timers if version.get(e[2]) == e[1]]
                heapq.heapify(timers)

        def unwait(fd) -> None:
            waiting.pop(fd, None)
            version.pop(fd, None)
            was = stage_of.pop(fd, None)
            if was is not None:
                counts[was] -= 1

        def forget(w) -> None:
            fd = w.fd
            unwait(fd)
            if registered.pop(fd, None) is not None:
                try:
                    poller.unregister(fd)
                except (OSError, ValueError):
                    pass

        def live(entry) -> bool:
            fd = entry[2]
            return version.get(fd) == entry[1] and (waiting.get(fd) is entry[3]
                                                    or parked.get(fd) is entry[3])

        def park(g, w, wanted) -> None:
            """The request in ``g`` waits for a descriptor (or for the first of several, its
            own connection's among them: a tunnel): watch it, serve others."""
            fd, timeout, owner = wanted[0], wanted[1], wanted[2]
            mask = OUT if len(wanted) > 3 and wanted[3] else IN   # (fd, t, owner, write)
            fds = fd if type(fd) is tuple else (fd,)
            fd = fds[0]
            rec = [g, w, app.request_state(), fds]
            counts["parked"] += 1
            for one in fds:
                parked[one] = rec
                if one == w.fd:                   # the client's own: its bookkeeping
                    if registered.get(one) != mask:
                        try:
                            poller.register(one, mask)
                        except FileExistsError:
                            poller.modify(one, mask)
                        registered[one] = mask
                elif kept.get(one) != (owner, mask):
                    try:
                        poller.register(one, mask)
                    except FileExistsError:
                        poller.modify(one, mask)
                    kept[one] = (owner, mask)
            ticket[0] += 1
            version[fd] = ticket[0]
            at = time.monotonic() + (timeout if timeout is not None and timeout > 0 else 3600.0)
            heapq.heappush(timers, (at, ticket[0], fd, rec))

        def resume(fd, ok: bool) -> None:
            """Back into a parked request: True, its descriptor is readable; False, its
            time ran out.  Then on as ``drive`` once it is served (or parks again)."""
            g, w, state, fds = parked[fd]
            for one in fds:
                del parked[one]
            counts["parked"] -= 1
            version.pop(fds[0], None)
            app.set_request_state(state)
            hold_usr1()
            served = g.switch(fd if ok and len(fds) > 1 else ok)
            finished(g, w, served)

        def finished(g, w, got) -> None:
            if type(got) is tuple:            # parked (again)
                park(g, w, got)
                return
            if len(idle_serving) < 64:
                idle_serving.append(g)
            if not got:
                registered.pop(w.fd, None)    # closed: the kernel dropped it from epoll
                return
            drive(w, app.after_serve(w))

        def drive(w, st) -> None:
            """Follow a connection until it waits again or is done (serving as it comes)."""
            while True:
                if st in (WAIT_READ, WAIT_WRITE):
                    watch(w, st)
                    return
                if st != READY:                   # DONE: the handler closed it
                    forget(w)
                    return
                fd = w.fd
                unwait(fd)                        # stays in epoll: no DEL + ADD per request
                hold_usr1()
                if may_park:
                    if idle_serving:
                        g = idle_serving.pop()
                    else:
                        g = greenlet(serving)
                        g.switch()
                    finished(g, w, g.switch(w))
                    return
                if not self._serve_waiting(w):
                    registered.pop(fd, None)      # closed: the kernel dropped it from epoll
                    return
                st = app.after_serve(w)           # pipelined or TLS-buffered bytes, or wait

        def set_listening(on: bool) -> None:
            nonlocal listening
            if on == listening:
                return
            for fd in by_fd:
                try:
                    if on:
                        poller.register(fd, select.EPOLLIN | _EPOLLEXCLUSIVE)
                    else:
                        poller.unregister(fd)
                except OSError:
                    pass
            listening = on

        stopping_seen = False
        while True:
            release_usr1()
            stopping = self.slot.stopping()
            at_max = bool(self.max_connections and self.connections >= self.max_connections)
            if stopping and not stopping_seen:
                stopping_seen = True
                for w in list(waiting.values()):  # idle keep-alive: closed now
                    if getattr(w, "stage", "") == "keepalive" and not w.buf:
                        st = app.step(w)          # unless its next request is arriving
                        if w.buf or st != WAIT_READ:
                            drive(w, st)
                        else:
                            forget(w)
                            app.close_waiting(w)
            if stopping or at_max:
                set_listening(False)
                if not waiting and not parked:
                    if at_max and not stopping:
                        log.error_log.debug("mpm_prefork", logids.MPM_MAX_CONNECTIONS,
                                            f"MaxConnectionsPerChild {self.max_connections} "
                                            "reached, worker exiting")
                    break
            else:
                set_listening(len(waiting) + len(parked) < max_waiting)
            self._report_counts(counts)
            now = time.monotonic()
            timeout = 10.0
            while timers and not live(timers[0]):
                heapq.heappop(timers)
            if timers:
                timeout = min(timeout, timers[0][0] - now)
            release_usr1()                        # (a graceful stop's last requests above)
            try:
                events = poller.poll(max(0.0, timeout))
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise
            if not events and not waiting and not parked and os.getppid() != self.master_pid:
                break
            for fd, ev in events:
                if fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 512)
                    except BlockingIOError:
                        pass
                    continue
                lst = by_fd.get(fd)
                if lst is not None:
                    if not listening or self.slot.stopping():
                        continue
                    self._accept_some(lst, poller, by_fd, fd, waiting, max_waiting, drive)
                    continue
                w = waiting.get(fd)
                if w is None:
                    if fd in parked:
                        resume(fd, True)
                    elif kept.pop(fd, None) is not None:
                        registered.pop(fd, None)
                        try:                  # a kept backend connection closed (or spoke)
                            poller.unregister(fd)
                        except (OSError, ValueError):
                            pass
                    elif registered.pop(fd, None) is not None:
                        # a connection whose request is parked: not watched until it is
                        # served (level-triggered: it would wake every turn)
                        try:
                            poller.unregister(fd)
                        except (OSError, ValueError):
                            pass
                    continue
                drive(w, app.step(w))
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                entry = heapq.heappop(timers)
                if live(entry):
                    if entry[2] in parked:
                        resume(entry[2], False)       # (a timer is keyed by the first fd)
                        continue
                    forget(entry[3])
                    app.expire(entry[3])
        for w in list(waiting.values()):
            forget(w)
            app.close_waiting(w)
        self._report_counts({"handshake": 0, "head": 0, "keepalive": 0, "parked": 0})  # none now
        return 0

    def _accept_some(self, lst, poller, by_fd, fd, waiting, max_waiting, drive) -> None:
        """Accept one connection per wake-up (up to the bound): epoll is level-triggered, so a
        listener with more connections queued wakes a worker again, which spreads a burst over
        the idle workers (EPOLLEXCLUSIVE) and never pays for an accept that finds nothing (an
        EAGAIN raised as BlockingIOError: once per connection at low rates)."""
        if len(waiting) >= max_waiting or self.slot.stopping():
            return
        if self.max_connections and self.connections >= self.max_connections:
            return
        try:
            conn, addr = lst.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                log.error_log.error("mpm_prefork", logids.MPM_ACCEPT_FAILED, f"accept: {e}")
                return
            if e.errno in (errno.EINVAL, errno.EBADF):
                try:
                    poller.unregister(fd)
                except OSError:
                    pass
                by_fd.pop(fd, None)
                return
            raise
        self.connections += 1
        self.slot.count_connection()
        try:
            w = self.app.open_waiting(conn, addr, lst, self.slot)
        except Exception as e:                                    # noqa: BLE001
            client = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
            log.error_log.error("mpm_prefork", logids.MPM_CONNECTION_CRASHED,
                                f"unhandled {type(e).__name__} opening a connection: {e}",
                                client=client)
            conn.close()
            return
        if w is not None:
            drive(w, self.app.step(w))

    def _serve_waiting(self, w) -> bool:
        """One ready connection's request(s), blocking, as ``_serve`` does for a whole one
        (serve_ready sets the slot's states); the loop holds SIGUSR1 back meanwhile."""
        try:
            return bool(self.app.serve_ready(w, self.slot))
        except Exception as e:                                    # noqa: BLE001
            log.error_log.error("mpm_prefork", logids.MPM_CONNECTION_CRASHED,
                                f"unhandled {type(e).__name__} serving a connection: {e}",
                                client=getattr(w, "client", "-"))
            try:
                self.app.close_waiting(w)
            except Exception:                                     # noqa: BLE001
                pass
            return False

    def _report_counts(self, counts: dict) -> None:
        key = (counts["handshake"], counts["head"], counts["keepalive"], counts.get("parked", 0))
        if key != getattr(self, "_last_waiting", None):
            self._last_waiting = key
            setter = getattr(self.slot, "set_waiting", None)
            if setter is not None:
                setter(*key)

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
            log.error_log.error("mpm_prefork", logids.MPM_CONNECTION_CRASHED,
                                f"unhandled {type(e).__name__} serving a connection: {e}",
                                client=client)
            log.error_log.debug("mpm_prefork", logids.MPM_CONNECTION_CRASHED,
                                traceback.format_exc())
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
            log.error_log.error("mpm_prefork", logids.MPM_WORKER_CRASHED,
                                f"worker crashed: {type(e).__name__}: {e}")
            log.error_log.debug("mpm_prefork", logids.MPM_WORKER_CRASHED, traceback.format_exc())
        except BaseException:                                     # noqa: BLE001
            pass
    finally:
        os._exit(code)
