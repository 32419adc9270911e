"""mod_rewrite's request hooks (http/hooks.py phases): the glue between ``hooks.Request`` and the
engine.

    TRANSLATE   server/vhost rules (hook_uri2file): a redirect (Response), a status (F, G, R=4xx,
                403 for an unsafe '?'), a file (req.filename, OK), or [PT]: req.uri/req.query
                changed and None, so Alias/Redirect/DocumentRoot map the new URI
    FIXUPS      per-directory rules (hook_fixup), after access: a redirect, a status, or an
                internal redirect (req.internal_redirect = new URI, OK); then, last, the forced
                MIME type and handler of [T=] / [H=] (hook_mimetype)

Both return at once when the engine is off for the request (one tuple scan of the merged
per-directory settings).  State that must outlive an internal redirect (the END flag, the
cookies already set) lives in ``req.notes``, which the pipeline carries across; what must not
(the forced type) is tagged with the redirect count.  The trace (``LogLevel rewrite:traceN``)
is formatted only when asked for: HP12100 lines shaped like Apache's rewrite log.
"""
from __future__ import annotations

import os
from http import HTTPStatus

from httpd_py import log, logids
from httpd_py.config.dirconf import effective_options
from httpd_py.http import hooks
from httpd_py.http.paths import PathError, map_to_root, url_path
from httpd_py.modules import core_http
from httpd_py.modules.rewrite import engine
from httpd_py.modules.rewrite.rows import DIR, server_conf
from httpd_py.version import server_token

_POOL = "rewrite.pool"              # req.notes key: the dict that lives across redirects
_FORCED = "rewrite.forced"          # req.notes key: (redirect_count, mimetype, handler)
_VARY = "rewrite.vary"              # req.notes key: (redirect_count, Vary kept across a redirect)
_TRACE_LEVELS: dict[int, tuple] = {}


def trace_level(vhost) -> int:
    """N of ``LogLevel rewrite:traceN`` (or a global traceN) for this vhost, else 0."""
    got = _TRACE_LEVELS.get(id(vhost))
    if got is not None and got[0] is vhost:
        return got[1]
    level = vhost.log_level
    for mod, lvl in vhost.module_log_levels:
        if mod == "rewrite":
            level = lvl
    n = int(level[5:]) if level.startswith("trace") else 0
    if len(_TRACE_LEVELS) > 1024:
        _TRACE_LEVELS.clear()
    _TRACE_LEVELS[id(vhost)] = (vhost, n)
    return n


_LOG_ESCAPES = {"\\": "\\\\", "\b": "\\b", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                "\v": "\\v"}


def escape_errorlog(text: str) -> str:
    """Apache's ap_escape_errorlog_item: backslash doubled, control characters and bytes over
    0x7e as \\xhh (double quotes kept)."""
    if text.isprintable() and text.isascii() and "\\" not in text:
        return text
    out = []
    for c in text:
        o = ord(c)
        if c in _LOG_ESCAPES:
            out.append(_LOG_ESCAPES[c])
        elif o < 32 or o > 126:
            out.append("\\x%02x" % (o & 0xFF))
        else:
            out.append(c)
    return "".join(out)


def _tracer(req, st: engine.State):
    """The engine's trace callable for this request: Apache's rewrite-log line shape."""
    client = f"{req.client_ip}:{req.client_port}"
    redir = f"/redir#{req.redirect_count}" if req.redirect_count else ""
    head = (f"{req.client_ip} - {req.user or '-'} [{st.server_name}/sid#{id(req.vhost):x}]"
            f"[rid#{id(req):x}/initial{redir}]")

    def emit(level: int, perdir, text: str) -> None:
        text = escape_errorlog(f"{head} {'[perdir ' + perdir + '] ' if perdir else ''}{text}")
        line = log.format_line("rewrite", f"trace{level}", logids.REWRITE_TRACE, text, client=client)
        try:
            os.write(log.error_log.fd, line.encode("utf-8", "backslashreplace"))
        except OSError:
            pass
    return emit


def _host_port(req) -> tuple[str, int]:
    """ap_get_server_name_for_url and ap_get_server_port (UseCanonicalName Off: the Host
    header's name and port, else the server's name and the connection's port)."""
    vh = req.vhost
    conf = req.conf if req.conf is not None else vh.dir
    canonical = conf.mod(core_http.CANONICAL_NAME, "off") if conf is not None and conf.mods \
        else "off"
    port = vh.mod(core_http.SERVER_NAME_PORT) or (443 if req.https else 80)
    if canonical == "on":
        name = vh.server_name or req.local_ip
    else:
        name = req.hostname or vh.server_name or req.local_ip
        host = req.headers.get("host", "")
        tail = host.rsplit("]", 1)[-1] if host.startswith("[") else host
        if ":" in tail:
            p = tail.rsplit(":", 1)[1]
            if p.isdigit():
                port = int(p)
    name = name.strip("[]")
    if ":" in name:
        name = f"[{name}]"
    return name, port


_BANNERS: dict[int, tuple] = {}


def _banner(cfg) -> str:
    """%{SERVER_SOFTWARE}: the Server header ServerTokens makes (ap_get_server_banner)."""
    if cfg is None:
        return server_token()
    got = _BANNERS.get(id(cfg))
    if got is None or got[0] is not cfg:
        got = (cfg, server_token(cfg.mod(core_http.SERVER_TOKENS, "full")))
        _BANNERS[id(cfg)] = got
    return got[1]


def _state(req, filename: str | None) -> engine.State:
    vh = req.vhost
    name, port = _host_port(req)
    query = req.query
    args = query if (query or (req.redirect_count == 0 and "?" in req.unparsed_uri)) else None
    pool = req.notes.get(_POOL)
    if pool is None:
        pool = req.notes[_POOL] = {}
    st = engine.State(
        uri=req.uri, filename=filename, args=args, method=req.method, headers=req.headers,
        the_request=req.request_line, protocol=f"HTTP/{req.version}" if req.version != "0.9"
        else "HTTP/0.9", https=req.https, scheme=req.scheme, server_name=name,
        server_port=port, server_names=(vh.server_name, *vh.server_aliases),
        server_addrs=tuple((a.host, a.port) for a in vh.addrs),
        conf_port=vh.mod(core_http.SERVER_NAME_PORT) or 0, server_admin=vh.server_admin,
        local_ip=req.local_ip, local_port=req.local_port, remote_ip=req.client_ip,
        remote_port=req.client_port, document_root=vh.document_root,
        path_info=req.path_info or "", user=req.user, env=req.env, pool=pool,
        unparsed_uri=req.unparsed_uri, limit_req_line=vh.limit_request_line,
        request_time=req.start, ssl_vars=getattr(req, "ssl_var", None),
        server_software=_banner(req.server))
    _lookups(req, st)
    return st


def _lookups(req, st: engine.State) -> None:
    """-U and -F as sub-requests, as far as the pipeline's hook contract reaches: the URL
    normalised and mapped (Alias, DocumentRoot), then the walk and access checks of
    ``req.allowed``; the translate hooks of a real sub-request are not run."""
    allowed = req.allowed
    if allowed is None:
        return

    def lookup_uri(uri: str) -> int:
        try:
            path, _ = url_path(uri.encode("latin-1", "replace"))
            _root, fname = map_to_root(path, req.vhost.document_root, req.vhost.aliases)
        except PathError as e:
            return e.status
        return 200 if allowed(fname, os.path.isdir(fname), path) else 403

    def lookup_file(path: str) -> tuple[int, str]:
        base = req.uri.rsplit("/", 1)[0] + "/" + os.path.basename(path)
        return (200 if allowed(path, os.path.isdir(path), base) else 403), path

    st.lookup_uri, st.lookup_file = lookup_uri, lookup_file


def add_vary(req, value: str) -> None:
    """Merge names into the response's Vary as Apache sends it (fix_vary: each name once,
    case-insensitively, joined by ',')."""
    old = [v for n, v in req.headers_out if n.lower() == "vary"]
    names: list[str] = []
    seen: set[str] = set()
    for part in ",".join([*old, value]).split(","):
        p = part.strip()
        if p and p.lower() not in seen:
            seen.add(p.lower())
            names.append(p)
    req.headers_out[:] = [(n, v) for n, v in req.headers_out if n.lower() != "vary"]
    req.headers_out.append(("Vary", ",".join(names)))


def _log_errors(req, st: engine.State) -> None:
    for msgid, text in st.errors:
        log.error_log.error("rewrite", msgid, text, client=f"{req.client_ip}:{req.client_port}")


def _after(req, st: engine.State) -> None:
    """Copy back what the rules set besides the decision: cookies, Vary, [T=]/[H=]."""
    if st.err_headers_out:
        req.err_headers_out.extend(st.err_headers_out)
    for name, value in st.headers_out:
        if name.lower() == "vary":
            add_vary(req, value)
    t = st.notes.get("rewrite-forced-mimetype")
    h = st.notes.get("rewrite-forced-handler")
    if t or h:
        old = req.notes.get(_FORCED)
        if old is not None and old[0] == req.redirect_count:
            t, h = t or old[1], h or old[2]
        req.notes[_FORCED] = (req.redirect_count, t, h)
    if st.errors:
        _log_errors(req, st)


_REDIRECT_TEXT = {301: "The document has moved <a href=\"{}\">here</a>.",
                  302: "The document has moved <a href=\"{}\">here</a>.",
                  303: "The answer to your request is located <a href=\"{}\">here</a>.",
                  305: "This resource is only accessible through the proxy\n<br />\nYou will "
                       "need to configure your client to use that proxy.",
                  307: "The document has moved <a href=\"{}\">here</a>.",
                  308: "The document has moved <a href=\"{}\">here</a>."}


def redirect_response(status: int, location: str) -> hooks.Response:
    """What Apache's core sends for a 3xx a rule decided: its canned page, the Location when
    there is one (a status-only rule such as [F,R=301] has none: the link is empty)."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    headers = [("Location", location)] if location else []
    if status == 304:
        return hooks.Response(304, headers, b"", error_page=True)
    loc = location.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;") \
        .replace(">", "&gt;")
    msg = _REDIRECT_TEXT.get(status)
    para = f"<p>{msg.format(loc)}</p>\n" if msg else ""
    body = (f'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" '
            f'"http://www.w3.org/TR/html4/strict.dtd">\n<html><head>\n'
            f"<title>{status} {reason}</title>\n</head><body>\n<h1>{reason}</h1>\n"
            f"{para}</body></html>\n")
    return hooks.Response(status, headers, body.encode("latin-1", "replace"),
                          content_type="text/html; charset=iso-8859-1", error_page=True)


def _answer(req, st: engine.State, d: engine.Decision):
    kind = d.kind
    if kind == "proxy":
        req.filename = d.filename
        req.handler = "proxy-server"
        req.query = st.args or ""
        if d.nocanon:
            req.notes["proxy-nocanon"] = "1"
        return hooks.OK
    if kind == "status":
        if 300 <= d.status < 400:               # [F,R=301] and the like: no Location
            return redirect_response(d.status, "")
        return d.status
    if kind == "redirect":
        return redirect_response(d.status, d.location)
    return None


def translate(req):
    """Server-context rules (hook_uri2file)."""
    vh = req.vhost
    dconf = vh.dir.mod(DIR) if vh.dir is not None and vh.dir.mods else None
    if dconf is None or not dconf.state:
        return None
    conf = server_conf(vh)
    if conf is None:
        return None
    pool = req.notes.get(_POOL)
    if pool is not None and pool.get("rewrite-end"):
        return None
    st = _state(req, None)
    level = trace_level(vh)
    d = engine.translate(st, conf.rules, conf.options, conf.map_table(),
                         _tracer(req, st) if level else None, level,
                         proxy="proxy-server" in hooks.HANDLERS)
    _after(req, st)
    if d.kind == "declined":
        return None
    if d.kind == "file":
        req.filename = d.filename
        req.query = st.args or ""
        return hooks.OK
    if d.kind == "passthrough":
        req.uri = d.uri
        req.query = st.args or ""
        req.filename = ""
        return None
    return _answer(req, st, d)


def fixup(req):
    """Per-directory rules (hook_fixup)."""
    conf = req.conf
    dconf = conf.mod(DIR) if conf is not None and conf.mods else None
    if dconf is None or not dconf.state or dconf.directory is None:
        return None
    srv = server_conf(req.vhost)
    maps = srv.map_table() if srv is not None else {}
    opts = effective_options(conf)
    follow = "followsymlinks" in opts or "symlinksifownermatch" in opts
    st = _state(req, req.filename or None)
    if st.filename and not st.path_info and not st.filename.startswith("proxy:"):
        st.filename, st.path_info = engine.walk_split(st.filename)
    level = trace_level(req.vhost)
    d = engine.fixup(st, dconf.directory, dconf.rules, dconf.options, dconf.baseurl, maps,
                     follow, _tracer(req, st) if level else None, level,
                     proxy="proxy-server" in hooks.HANDLERS)
    _after(req, st)
    if d.kind == "internal":
        req.internal_redirect = d.uri
        vary = [v for n, v in req.headers_out if n.lower() == "vary"]
        if vary:            # "redirect-keeps-vary": the new request answers with this Vary
            req.notes[_VARY] = (req.redirect_count + 1, ",".join(vary))
        return hooks.OK
    if d.kind in ("declined", "ok"):
        return None
    return _answer(req, st, d)


def forced_type(req):
    """[T=type] / [H=handler] of a matched rule (hook_mimetype, a fixup that runs last)."""
    if not req.notes:
        return None
    kept = req.notes.get(_VARY)
    if kept is not None and kept[0] == req.redirect_count:
        del req.notes[_VARY]
        add_vary(req, kept[1])
    got = req.notes.get(_FORCED)
    if got is None or got[0] != req.redirect_count:
        return None
    _, t, h = got
    if t:
        req.content_type = t
        req.charset = None
    if h:
        req.handler = h
    return None


def _no_server_rules(vhost, conf) -> bool:
    d = vhost.dir.mod(DIR) if vhost.dir is not None and vhost.dir.mods else None
    return d is None or not d.state


def _no_dir_rules(vhost, conf) -> bool:
    d = conf.mod(DIR) if conf.mods else None
    return d is None or not d.state or d.directory is None


# forced_type acts on what a rule of the other two left in the request's notes
hooks.INERT.update({translate: _no_server_rules, fixup: _no_dir_rules,
                    forced_type: lambda vhost, conf: (_no_server_rules(vhost, conf)
                                                      and _no_dir_rules(vhost, conf))})


def register() -> None:
    if translate not in hooks.TRANSLATE:
        hooks.TRANSLATE.insert(0, translate)        # APR_HOOK_FIRST: before mod_proxy's
    if fixup not in hooks.FIXUPS:
        hooks.FIXUPS.insert(0, fixup)
    if forced_type not in hooks.FIXUPS:
        hooks.FIXUPS.append(forced_type)
