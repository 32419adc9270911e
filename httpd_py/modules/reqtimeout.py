"""mod_reqtimeout's directive row (the module itself: http/reqtimeout.py, pure, and the
connection loops).  The row of mod_reqtimeout: ``RequestReadTimeout`` (server config, virtual host).

The parsed value (``httpd_py.http.reqtimeout.ReadTimeouts``, frozen) goes to
``VHost.request_read_timeout``.  Several lines in one server add up stage by stage, and a
vhost's line keeps the main server's stages it does not name (Apache's per-stage merge) when
the main server's line comes first in the file.  None (no line): the connection layer uses
mod_reqtimeout's defaults when ``reqtimeout_module`` is loaded.
"""
from __future__ import annotations


def request_read_timeout(w, args):
    from httpd_py.http.reqtimeout import parse
    w.set("request_read_timeout", parse(args, w.get("request_read_timeout")))


def rows():
    from httpd_py.config.directives.base import RAW, Directive as D
    return [
        D("RequestReadTimeout", "mod_reqtimeout.c", "SV", RAW,
          "handshake=0 header=20-40,MinRate=500 body=20,MinRate=500",
          "Time limits (and minimum data rates) for the TLS handshake, the request head and "
          "the body", request_read_timeout,
          syntax="[handshake=timeout[-maxtimeout][,MinRate=rate]] [header=...] [body=...]"),
    ]
