"""The prefork MPM: a master that binds, forks, supervises and restarts; workers that accept.

Modules: ``master`` (the loop, signals, spares, restarts), ``worker`` (one connection at a time),
``scoreboard`` (shared-memory slots), ``listeners`` (Listen -> sockets), ``privileges``
(User/Group), ``pidfile``, ``control`` (``-k`` actions, detaching), ``app`` (the App protocol).
Imports nothing from tls/, http/ or stapling/.

Error-log ids (module ``mpm_prefork``), stable:

    HP01001 notice  "<name> configured -- resuming normal operations" (each start and restart)
    HP01002 notice  caught SIGTERM/SIGINT, shutting down
    HP01003 notice  SIGHUP received.  Attempting to restart
    HP01004 notice  Graceful restart requested, doing restart
    HP01005 notice  caught SIGWINCH, shutting down gracefully
    HP01006 error   restart failed, the old configuration keeps serving
    HP01007 emerg   a worker failed to boot: the server halts
    HP01008 error   server reached MaxRequestWorkers setting
    HP01009 info    server seems busy, spawning N children
    HP01010 notice  child pid N exit signal S / exited with status N (unexpected)
    HP01011 error   helper process exited or failed (restarted with backoff)
    HP01012 error   unhandled exception while serving a connection
    HP01013 (startup error text) could not bind to address
    HP01014 error   child processes did not exit (SIGKILL sent / given up)
    HP01015 debug   MaxConnectionsPerChild reached
    HP01017 warn    ServerLimit changed at restart (ignored)
    HP01018 notice/warn  which user workers run as (default nobody; User root)
    HP01019 (startup error text) unknown User/Group; emerg: setuid failed in a worker
    HP01020 emerg   why a worker failed to boot
    HP01021 error   accept() failed (descriptors exhausted)
    HP01022 error   a worker crashed (exception outside a connection)
    HP01023 debug   traceback of a failed before_fork
    HP01024 error   fork failed
    HP01025 error   App.shutdown failed
    HP01026 error   PidFile could not be moved at restart
    HP01027 debug   SIGWINCH from the terminal (a resize) ignored
    HP01028 info    a restart's configuration load ended (time, forks meanwhile); a restart asked
                    during a load follows it; debug: a fork put off (a thread inside OpenSSL)
    HP01029 error   every worker busy and connections queued (MaxRequestWorkers reached), with the
                    scoreboard's state counts and oldest requests; once per generation and episode
    HP01030 info    the queue pressure is over (no queue for 10 s): how long, peak queued
"""
