"""The prefork MPM: a master that binds, forks, supervises and restarts; workers that accept.

Modules: ``master`` (the loop, signals, spares, restarts), ``worker`` (one connection at a time),
``scoreboard`` (shared-memory slots), ``listeners`` (Listen -> sockets), ``privileges``
(User/Group), ``pidfile``, ``control`` (``-k`` actions, detaching), ``app`` (the App protocol).
Imports nothing from tls/, http/ or stapling/.

Error-log ids: HP01xxx, module ``mpm_prefork``; the ``MPM_*`` constants of
``httpd_py/logids.py`` say what each means (docs/log-ids.md lists them).
"""
