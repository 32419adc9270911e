"""mod_proxy's request path: the translate hook (ProxyPass) and the ``proxy-server`` handler
(mod_proxy_http, mod_proxy_balancer, mod_proxy_wstunnel / ``upgrade=websocket``).

translate: the rules of the last <Location> that matches the URL and holds a ProxyPass are
tried first, then the server's in config order (main server's, then the vhost's); the first
that matches decides (``!``: not proxied, no later rule is tried).  A match sets
``req.filename = "proxy:" + URL`` (Apache's form: the backend URL followed by the rest of the
decoded path, or of the raw target with ``nocanon``), ``req.handler = "proxy-server"`` and
returns OK.  mod_rewrite's ``[P]`` does the same (the query stays in ``req.query``).

proxy-server: the URL is canonicalised as proxy_http_canon does (path re-encoded unless
``proxy-nocanon`` is in req.notes, ``?query`` added unless ``proxy-noquery``), the worker found
(a balancer chooses a member, failing over to the next on a connect failure), then:

    connect (or reuse a pooled connection) -> head -> [100-continue: wait for the backend's
    interim answer] -> body streamed (Content-Length, or chunked once more than 16 KiB of a
    chunked body is pending) -> response head -> streamed response body

Outcomes as Apache 2.4.71's (observed): connect refused or timed out: 503; no usable balancer
member: 503; no status line within the timeout or the backend closed first: 502 "Proxy Error"
with the reason; an unusable response head (a line over 8190 bytes, too many lines, not HTTP):
502 Bad Gateway; the backend closing mid-body: the client connection is cut (the streamed body
raises, the pipeline closes without the last chunk).  A reused connection that fails before any
response byte is retried once on a new one.

Log ids HP13001-HP13049 (HP13100- is mod_remoteip).
"""
from __future__ import annotations

import re
import select
import time

from httpd_py.http import hooks
from httpd_py.http.park import parkable, wait_readable_any
from httpd_py.log import error_log
from httpd_py.modules.proxy import backend as be
from httpd_py.modules.proxy import conf as C
from httpd_py.modules.proxy import reverse, wire
from httpd_py.modules.proxy.balancer import TABLE, choose, sticky_route

MOD = "proxy"
PREFETCH = 16384            # Apache's MAX_MEM_SPOOL: a chunked body up to this is sent with a length
READ = 65536

_PROXY_PAGE = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">\n'
    "<html><head>\n<title>{status} Proxy Error</title>\n</head><body>\n<h1>Proxy Error</h1>\n"
    "{before}The proxy server could not handle the request<p>Reason: <strong>{reason}</strong>"
    "</p>{after}</body></html>\n")
# apache2's page for an ap_proxyerror: the status's canned text around the error notes
# (observed: tests/interop/modules/proxy/test_proxy_interop.py, test_proxy_hangs.py)
_AROUND = {
    502: ("<p>The proxy server received an invalid\r\nresponse from an upstream server.<br />\r\n",
          "</p>\n"),
    500: ("", "<p />\n"),
    403: ("<p>You don't have permission to access this resource.", "</p>\n"),
}


# -- per-vhost tables, built once per config (the first request of a vhost in each process) ----
_VHOSTS: dict[int, tuple] = {}


def _tables(vhost):
    """(vhost, server rules, location sections with a ProxyPass, balancers by name, workers
    longest name first)."""
    t = _VHOSTS.get(id(vhost))
    if t is not None and t[0] is vhost:
        return t
    mods = dict(vhost.mods)
    # ProxyPassInherit Off: apache2 2.4.71 still applies the main server's rules to the vhost
    # (observed), so does httpd-py; the vhost's own rules are kept apart in K_OWN_PASSES
    rules = mods.get(C.K_PASSES, ())
    locs = tuple(s for s in vhost.sections if s.kind == "location"
                 and s.conf.mod(C.K_PASS_DIR) is not None)
    balancers = {b.name: b for b in mods.get(C.K_BALANCERS, ())}
    workers = tuple(sorted(mods.get(C.K_WORKERS, ()), key=lambda w: -len(w.name)))
    t = (vhost, rules, locs, balancers, workers)
    if len(_VHOSTS) > 256:
        _VHOSTS.clear()
    _VHOSTS[id(vhost)] = t
    return t


class _Plan:
    """What a proxied request needs that depends only on its vhost, its merged per-directory
    config and its worker (all frozen): worked out at the first request of each combination
    and kept per process, so a request reads fields instead of looking settings up."""
    __slots__ = ("vhost", "conf", "worker", "blocked", "ssl", "timeout", "connect_timeout",
                 "pool_key", "preserve_host", "host_value", "via", "add_headers", "server_name",
                 "reuse", "continue_", "error_override", "rewrites", "hostport")


_PLANS: dict[tuple, _Plan] = {}


def _plan(req, conf, worker) -> _Plan:
    vhost = req.vhost
    key = (id(vhost), id(conf), id(worker))
    p = _PLANS.get(key)
    if p is not None and p.vhost is vhost and p.conf is conf and p.worker is worker:
        return p
    p = _Plan()
    p.vhost, p.conf, p.worker = vhost, conf, worker
    p.blocked = _blocked(req, worker.host)
    p.ssl = vhost.mod(C.K_SSL) or C.SSLProxySettings()
    p.timeout, p.connect_timeout = _timeouts(worker, req)
    p.pool_key = _pool_key(worker, p.ssl)
    mod = conf.mod if conf is not None else (lambda key, default=None: default)
    p.preserve_host = bool(mod(C.K_PRESERVE_HOST, False))
    host, port = worker.host, worker.port
    hn = f"[{host}]" if ":" in host else host
    p.host_value = hn if port == C.DEFAULT_PORTS.get(worker.scheme, 80) else f"{hn}:{port}"
    p.via = vhost.mod(C.K_VIA, "off")
    p.add_headers = mod(C.K_ADD_HEADERS, True)
    p.server_name = vhost.server_name or "localhost"
    p.reuse = not worker.params.disablereuse
    p.continue_ = mod(C.K_CONTINUE, True)
    p.error_override = mod(C.K_ERROR_OVERRIDE, False)
    rewrites = (mod(C.K_REVERSE, ()), mod(C.K_COOKIE_PATH, ()), mod(C.K_COOKIE_DOMAIN, ()))
    p.rewrites = rewrites if any(rewrites) else None
    p.hostport = worker.hostport
    if len(_PLANS) >= 1024:
        _PLANS.clear()
    _PLANS[key] = p
    return p


def alias_match(uri: str, fake: str) -> int:
    """Apache mod_proxy's alias_match: characters of the URI matched by the prefix ``fake``
    (runs of '/' match runs of '/'; the last component must match whole), 0 when it does not
    match."""
    i = j = 0
    nu, nf = len(uri), len(fake)
    while j < nf and i < nu:
        if fake[j] == "/":
            if uri[i] != "/":
                return 0
            while j < nf and fake[j] == "/":
                j += 1
            while i < nu and uri[i] == "/":
                i += 1
        else:
            if uri[i] != fake[j]:
                return 0
            i += 1
            j += 1
    if i == nu and j != nf:
        return 0
    if fake and fake[j - 1] != "/" and i < nu and uri[i] != "/":
        return 0
    return i


def _substitute(template: str, m) -> str:
    """$0..$9 in a ProxyPassMatch URL (ap_pregsub)."""
    out = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and i + 1 < len(template) and template[i + 1] in "$&\\":
            out.append(template[i + 1])
            i += 2
            continue
        if ch == "$" and i + 1 < len(template) and template[i + 1].isdigit():
            g = int(template[i + 1])
            if g <= (m.re.groups if m else 0):
                out.append(m.group(g) or "")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _try_rule(req, rule) -> int | str | None:
    """None: no match; hooks.OK-like "!" for an exclusion; else the proxy URL."""
    nocanon = rule.nocanon
    raw = req.unparsed_uri.split("?", 1)[0] if nocanon else None
    if rule.regex is not None:
        m = rule.regex.search(req.uri)
        if m is None:
            return None
        if rule.url == "!":
            return "!"
        use = req.uri
        if nocanon:
            m2 = rule.regex.search(raw)
            if m2 is not None:
                m, use = m2, raw
            else:
                req.notes.pop("proxy-nocanon", None)
                nocanon = False
        found = _substitute(rule.url, m)
        url = found if found != rule.url else rule.url + use
    else:
        n = alias_match(req.uri, rule.path)
        if not n:
            return None
        if rule.url == "!":
            return "!"
        if nocanon:
            n2 = alias_match(raw, rule.path)
            if n2:
                url = rule.url + raw[n2:]
            else:
                nocanon = False
                url = rule.url + req.uri[n:]
        else:
            url = rule.url + req.uri[n:]
    if nocanon:
        req.notes["proxy-nocanon"] = "1"
    if rule.noquery:
        req.notes["proxy-noquery"] = "1"
    if rule.regex is not None and "$" in rule.url:
        # a ProxyPassMatch URL with substitutions is its own worker, never reused (apache2
        # sends Connection: close for it)
        req.notes["proxy-disablereuse"] = "1"
    return url


def translate(req):
    mods = req.vhost.mods
    if not mods:
        return None
    _, rules, locs, _, _ = _tables(req.vhost)
    if not rules and not locs:
        return None
    if not req.uri.startswith("/"):
        return None
    chosen = None
    if locs:
        from httpd_py.http.walk import location_matches
        for sec in locs:
            if location_matches(sec, req.uri):
                chosen = sec.conf.mod(C.K_PASS_DIR)
    for rule in ((chosen, *rules) if chosen is not None else rules):
        got = _try_rule(req, rule)
        if got is None:
            continue
        if got == "!":
            return None
        req.filename = "proxy:" + got
        req.handler = "proxy-server"
        return hooks.OK
    return None


# -- the handler ------------------------------------------------------------------------------
_ORIGIN = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)(.*)\Z", re.S)
_NOT_PATH_OK = re.compile(r"[^A-Za-z0-9~$\-_.+!*'(),;:@&=/]")     # what wire.canon_path encodes


def canonical_target(url: str, req) -> tuple[str, str]:
    """(scheme://host[:port], path?query to send) as proxy_http_canon builds them: the decoded
    path re-encoded (canonenc) unless ``proxy-nocanon``, then the request's query unless
    ``proxy-noquery``."""
    origin, path = canonical_path(url, bool(req.notes.get("proxy-nocanon")))
    # ``noquery`` only shapes mod_proxy_fcgi's SCRIPT_FILENAME: apache2 sends the query on
    query = req.query
    return origin, path + ("?" + query if query else "")


def canonical_path(url: str, nocanon: bool = False) -> tuple[str, str]:
    """(scheme://host[:port], the path to send) of ``canonical_target``, without the query."""
    m = _ORIGIN.match(url)
    origin, rest = (m.group(1), m.group(2)) if m else (url, "")
    if nocanon:
        path = rest.split("?", 1)[0]
    elif _NOT_PATH_OK.search(rest) is None:
        path = rest                     # nothing canon_path would encode
    else:
        path = wire.canon_path(rest)
    if not path.startswith("/"):
        path = "/" + path
    return origin, path


def _timeouts(worker, req) -> tuple[float, float]:
    t = worker.params.timeout
    if t is None:
        t = req.vhost.mod(C.K_TIMEOUT) or float(req.vhost.timeout or 60)
    ct = worker.params.connectiontimeout or t
    return t, ct


def _match_worker(name: str, workers: tuple):
    """The first configured worker (longest name first) whose name is a prefix of ``name``."""
    for w in workers:
        wn = w.name
        if name.startswith(wn) and (len(name) == len(wn) or name[len(wn)] in "/?"):
            return w
    return None


def _find_worker(url: str, workers: tuple):
    w = _match_worker(C.worker_name(url), workers)
    if w is not None:
        return w
    scheme, host, port, _ = C.split_url(url, "proxy")
    return C.Worker(f"{scheme}://{host}:{port}", scheme, host, port, slot=-1)


def _proxy_error(reason: str, status: int = 502) -> hooks.Response:
    before, after = _AROUND.get(status, ("<p>", "</p>\n"))
    body = _PROXY_PAGE.format(status=status, before=before, after=after, reason=reason)
    # ap_proxyerror's status line: "NNN Proxy Error"
    return hooks.Response(status, [], body.encode(), content_type="text/html; charset=iso-8859-1",
                          error_page=True, reason="Proxy Error")


def _client(req) -> str:
    return f"{req.client_ip}:{req.client_port}"


_HOP_REQUEST = wire.HOP_BY_HOP_REQUEST | {"host"}


def _request_headers(req, plan: _Plan) -> tuple[str, list]:
    # one line per name, values merged with ", " as Apache's headers_in table holds them, minus
    # Host (sent first), the hop-by-hop ones and the ones Connection names (wire's rules)
    merged: dict[str, list] = {}
    if req.raw_headers:
        for n, v in req.raw_headers:
            n = n.decode("latin-1")
            ln = n.lower()
            m = merged.get(ln)
            if m is None:
                merged[ln] = [n, v.decode("latin-1")]
            else:
                m[1] += ", " + v.decode("latin-1")
    else:
        for n, v in req.headers.items():
            ln = n.lower()
            m = merged.get(ln)
            if m is None:
                merged[ln] = [n, v]
            else:
                m[1] += ", " + v
    drop = _HOP_REQUEST
    conn = merged.get("connection")
    if conn is not None:
        drop = drop | wire.connection_tokens(conn[1])
    lines = [(m[0], m[1]) for ln, m in merged.items() if ln not in drop]
    client_host = _client_host(req)
    host_value = client_host if plan.preserve_host and client_host else plan.host_value
    via = plan.via
    if via == "block":
        lines = [(n, v) for n, v in lines if n.lower() != "via"]
    elif via in ("on", "full"):
        _merge(lines, "Via", _via_value(req, via))
    if plan.add_headers:
        if "x-forwarded-for" in merged or "x-forwarded-host" in merged or \
                "x-forwarded-server" in merged:
            _merge(lines, "X-Forwarded-For", req.client_ip)
            if client_host:
                _merge(lines, "X-Forwarded-Host", client_host)
            _merge(lines, "X-Forwarded-Server", plan.server_name)
        else:           # none of the three came from the client: appended in this order
            lines.append(("X-Forwarded-For", req.client_ip))
            if client_host:
                lines.append(("X-Forwarded-Host", client_host))
            lines.append(("X-Forwarded-Server", plan.server_name))
    return host_value, lines


_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


def _client_host(req) -> str | None:
    """The Host the client asked for: an absolute-form target's authority replaces the Host
    header, as Apache's request reading does (RFC 9112 3.2.2)."""
    m = _ABSOLUTE.match(req.unparsed_uri or "")
    if m and m.group(1):
        return m.group(1).rpartition("@")[2]
    return req.headers.get("host")


def _merge(lines: list, name: str, value: str) -> None:
    ln = name.lower()
    for i, (n, v) in enumerate(lines):
        if n.lower() == ln:
            lines[i] = (n, f"{v}, {value}")
            return
    lines.append((name, value))


def _via_value(req, via: str) -> str:
    """"1.1 name[:port]" with the Host header's name and port (as apache2 2.4.71 writes it:
    no port when the Host header has none)."""
    name = req.hostname or req.vhost.server_name or "localhost"
    default = 443 if req.https else 80
    port = default
    host = req.headers.get("host", "")
    if host and not host.startswith("[") and ":" in host:
        p = host.rsplit(":", 1)[1]
        if p.isdigit():
            port = int(p)
    portstr = "" if port == default else f":{port}"
    ver = req.version if req.version in ("1.0", "1.1") else "1.1"
    v = f"{ver} {name}{portstr}"
    return v + " (httpd-py)" if via == "full" else v


class _Attempt(Exception):
    """This worker failed before anything reached the client: try another member."""

    def __init__(self, status, why: str):
        super().__init__(why)
        self.status = status


def handle(req):
    url = req.filename[len("proxy:"):]
    vhost = req.vhost
    _, _, _, balancers, workers = _tables(vhost)
    conf = req.conf if req.conf is not None else vhost.dir
    worker = _match_worker(C.worker_name(url), workers)
    if worker is not None and worker.scheme != "balancer":
        # a configured worker's name (scheme://authority, checked when the config was read)
        # starts the URL: split_url could not refuse it, nor name another worker
        try:
            return _proxy_once(req, url, worker, conf)
        except _Attempt as a:
            return a.status
    try:
        scheme, host, _, _ = C.split_url(url, "proxy")
    except Exception:
        error_log.error(MOD, "HP13020", f"cannot proxy to {url!r}: not a URL httpd-py "
                        "proxies to", client=_client(req))
        return 500
    if scheme == "balancer":
        return _balanced(req, url, balancers.get(f"balancer://{host}"), conf)
    worker = _find_worker(url, workers)
    try:
        return _proxy_once(req, url, worker, conf)
    except _Attempt as a:
        return a.status


def _balanced(req, url: str, balancer, conf):
    if balancer is None or not balancer.members:
        error_log.error(MOD, "HP13006", f"no balancer {url} is defined", client=_client(req))
        return 503
    rest = url[len("balancer://"):]
    rest = rest[rest.find("/"):] if "/" in rest else ""
    route = sticky_route(balancer, req.headers.get("cookie"), req.uri, req.query) \
        if balancer.sticky else None
    tried: set = set()
    attempts = balancer.maxattempts if balancer.maxattempts is not None \
        else len(balancer.members) - 1
    status = 503
    for _ in range(attempts + 1):
        member = choose(balancer, TABLE, time.time(), route, frozenset(tried))
        if member is None:
            break
        tried.add(member.name)
        try:
            return _proxy_once(req, member.name + rest, member, conf, balancer=balancer)
        except _Attempt as a:
            status = a.status
            if balancer.nofailover and route is not None:
                break
            route = None
    if status == 503:
        error_log.error(MOD, "HP13007", f"all workers of {balancer.name} are in error state",
                        client=_client(req))
    return status


def _connect(req, plan: _Plan, balancer):
    worker, ssl_settings, t = plan.worker, plan.ssl, plan.timeout
    if worker.tls and not ssl_settings.engine:
        error_log.error(MOD, "HP13011", f"SSL Proxy requested for {worker.name} but not "
                        "enabled [Hint: SSLProxyEngine]", client=_client(req))
        raise _Attempt(500, "SSLProxyEngine off")
    conn = be.POOL.get(worker, plan.pool_key)
    if conn is not None:
        conn.settimeout(t)
        return conn
    sni = (req.hostname or None) if plan.preserve_host else None
    try:
        conn = be.connect(worker, plan.connect_timeout, t, ssl_settings, sni)
        conn.key = plan.pool_key
        return be.POOL.lend(conn)
    except be.TLSFailed as e:
        error_log.error(MOD, "HP13008", f"{worker.scheme}: {e}", client=_client(req))
        raise _Attempt(_proxy_error("Error during SSL Handshake with remote server", 500),
                       str(e)) from None
    except be.ConnectFailed as e:
        error_log.error(MOD, "HP13001", f"{worker.scheme}: {e}", client=_client(req))
        error_log.error(MOD, "HP13002", f"{worker.scheme.upper()}: failed to make connection "
                        f"to backend: {worker.host}", client=_client(req))
        if balancer is not None:
            # a member in error is skipped by every process for its retry window (AH00959);
            # Apache 2.4.71 keeps trying a plain ProxyPass worker on every request
            TABLE.set_error(worker.slot, time.time())
        raise _Attempt(503, str(e)) from None


def _blocked(req, host: str) -> bool:
    words = req.vhost.mod(C.K_BLOCK)
    return bool(words) and any(w == "*" or w in host for w in words)


def _proxy_once(req, url: str, worker, conf, balancer=None):
    """One try against one worker.  Raises _Attempt when the failure happened before anything
    was sent to the client (the balancer may try another member)."""
    plan = _plan(req, conf, worker)
    if plan.blocked:
        error_log.info(MOD, "HP13012", f"connect to remote machine {worker.host} blocked "
                       "(ProxyBlock)", client=_client(req))
        return _proxy_error("Connect to remote machine blocked", 403)
    origin, target = canonical_target(url, req)
    upgrade = _wants_upgrade(req, worker)
    host_value, headers = _request_headers(req, plan)
    body = req.body
    framing = None
    first = b""
    if body is not None:
        if body.length is not None:
            framing = ("length", body.length)
        elif not req.headers.get("expect", "").lower() == "100-continue":
            first, ended = _prefetch(body)
            framing = ("length", len(first)) if ended else ("chunked", 0)
        else:
            framing = ("chunked", 0)
    elif req.method in ("POST", "PUT", "PATCH") and "content-length" in req.headers:
        framing = ("length", 0)
    if upgrade:
        headers = [*headers, ("Upgrade", req.headers.get("upgrade", "websocket"))]
    keep = plan.reuse and not upgrade and not req.notes.get("proxy-disablereuse")
    head = wire.request_head(req.method, target, host_value, headers, framing, keep)
    if upgrade:
        head = head.replace(b"\r\nConnection: close\r\n", b"\r\nConnection: Upgrade\r\n", 1)
    expecting = body is not None and req.headers.get("expect", "").lower() == "100-continue"
    if expecting and not plan.continue_:
        # Proxy100Continue Off: the body is read here (the client gets its 100 from us) and
        # the backend is not asked
        expecting = False
        head = wire.request_head(req.method, target, host_value,
                                 [(n, v) for n, v in headers if n.lower() != "expect"],
                                 framing, keep)
    for attempt in range(2):
        conn = _connect(req, plan, balancer)
        reused = conn.reused
        sending = False
        try:
            conn.sendall(head)
            rh = None
            if expecting:
                rh = _read_head(conn, req.method, interim_ok=True)
                if rh.status != 100:
                    body = None         # answered without the body: the pipeline drains it
            if body is not None:
                sending = True
                _send_body(conn, body, framing, first)
                sending = False
            if rh is None or rh.status == 100:
                rh = _read_head(conn, req.method, pending=rh.leftover if rh else b"")
        except (be.Closed, be.ReadTimeout, wire.BadResponse, _BodyFailed) as e:
            if isinstance(e, be.Closed) and reused and attempt == 0 and not first and \
                    (body is None or not _started(body)):
                conn.close()
                continue            # a kept connection the backend had closed: once more
            return _failed(req, conn, e, worker, balancer, sending)
        break
    else:
        return _proxy_error("Error reading from remote server")
    if balancer is not None and rh.status in balancer.failonstatus:
        TABLE.set_error(worker.slot, time.time())
    if balancer is not None and TABLE.error_time(worker.slot):
        TABLE.clear_error(worker.slot)
    if rh.status == 101 and upgrade:
        return _tunnel(req, conn, rh, worker)
    if plan.error_override and rh.status >= 400:
        conn.close()
        return rh.status
    return _response(req, conn, rh, plan, keep)


def _failed(req, conn, e: Exception, worker, balancer, sending: bool):
    """The answer when a try failed before the response head was whole (``conn`` is closed):
    502 "Error reading from remote server" when the backend closed or did not answer within
    the timeout, apache2's 504 when it stopped taking the request body, 502 Bad Gateway for a
    head that cannot be used, the body's own status when the client's body failed."""
    conn.close()
    if isinstance(e, _BodyFailed):
        return e.status
    if isinstance(e, wire.BadResponse):
        error_log.error(MOD, "HP13005", f"bad response from {worker.hostport}: {e}",
                        client=_client(req))
        return 502
    if isinstance(e, be.ReadTimeout) and sending:
        # the backend took no more of the body within the timeout: apache2's 504
        error_log.error(MOD, "HP13013", f"pass request body failed to "
                        f"{worker.hostport}: {e}", client=_client(req))
        return 504
    error_log.error(MOD, "HP13003", f"error reading status line from remote server "
                    f"{worker.hostport}: {e}", client=_client(req))
    if isinstance(e, be.ReadTimeout) and balancer is not None and balancer.failontimeout:
        TABLE.set_error(worker.slot, time.time())
    return _proxy_error("Error reading from remote server")


def _go_on(req, conn, plan: _Plan, pending: bytes):
    """The rest of a GET's exchange (express.py's lane, once the first bytes of the answer
    are read and are not what it parses itself): as ``_proxy_once`` goes on after sending.
    None when the kept connection turns out closed (the phases try again on a new one)."""
    try:
        rh = _read_head(conn, req.method, pending=pending)
    except be.Closed:
        conn.close()
        return None
    except (be.ReadTimeout, wire.BadResponse) as e:
        return _failed(req, conn, e, plan.worker, None, False)
    return _response(req, conn, rh, plan, True)


class _BodyFailed(Exception):
    def __init__(self, status: int):
        self.status = status


def _started(body) -> bool:
    return getattr(body, "_reader", None) is not None


def _prefetch(body) -> tuple[bytes, bool]:
    buf = bytearray()
    try:
        while len(buf) < PREFETCH:
            d = body.read(PREFETCH - len(buf))
            if not d:
                return bytes(buf), True
            buf += d
    except Exception as e:
        raise _BodyFailed(_body_status(e)) from None
    return bytes(buf), False


def _body_status(e: Exception) -> int:
    st = getattr(e, "status", None)
    if isinstance(st, int):
        return st
    return 408 if isinstance(e, TimeoutError) else 400


def _send_body(conn, body, framing, first: bytes) -> None:
    chunked = framing is not None and framing[0] == "chunked"
    if first:
        conn.sendall(wire.chunk(first) if chunked else first)
    while True:
        try:
            d = body.read(READ)
        except Exception as e:
            raise _BodyFailed(_body_status(e)) from None
        if not d:
            break
        conn.sendall(wire.chunk(d) if chunked else d)
    if chunked:
        conn.sendall(wire.LAST_CHUNK)


def _read_head(conn, method: str, interim_ok: bool = False,
               pending: bytes = b"") -> wire.ResponseHead:
    """The next response head; interim 1xx heads (not 101) are skipped unless ``interim_ok``
    (the 100 Continue a forwarded Expect waits for).  ``pending``: bytes already read."""
    while True:
        rh = wire.ResponseHead()
        if pending:
            rh.feed(pending)
            pending = b""
        while not rh.done:
            data = conn.recv(READ)
            if not data:
                raise be.Closed("the backend closed the connection before a response")
            rh.feed(data)
        if 100 <= rh.status < 200 and rh.status != 101:
            if interim_ok:
                return rh
            pending = rh.leftover
            continue
        return rh


_DATE_SERVER = {"date": "Date", "server": "Server"}


def _response(req, conn, rh, plan: _Plan, keep: bool):
    worker = plan.worker
    try:
        kind, length = rh.body_framing(req.method)
    except wire.BadResponse as e:
        conn.close()
        error_log.error(MOD, "HP13005", f"bad response from {worker.hostport}: {e}",
                        client=_client(req))
        return 502
    idx = rh.index()
    # a length body already read whole leaves as bytes, head and body in one write; the
    # pipeline gives it its Content-Length (the same number)
    whole = kind == "length" and len(rh.leftover) >= length
    # hop-by-hop headers, the ones Connection names, Content-Length beside Transfer-Encoding
    # (wire.pass_response_headers' rules); Date and Server: the backend's, first (the pipeline
    # then leaves its own out, as Apache)
    drop = wire.HOP_BY_HOP_RESPONSE
    if "connection" in idx:
        drop = drop | wire.connection_tokens(idx["connection"])
    if whole or "transfer-encoding" in idx:
        drop = drop | {"content-length"}
    origin: list = []
    rest: list = []
    for n, v in rh.headers:
        ln = n.lower()
        if ln in drop:
            continue
        cap = _DATE_SERVER.get(ln)
        if cap is not None:
            origin.append((n.capitalize(), v))
        else:
            rest.append((n, v))
    headers = origin + rest if origin else rest
    if plan.rewrites is not None:
        rules, paths, domains = plan.rewrites
        _, _, _, balancers, _ = _tables(req.vhost)
        base = reverse.base_url("https" if req.https else "http", req.headers.get("host"),
                                req.vhost.server_name or req.local_ip)
        headers = reverse.rewrite_headers(headers, rules, paths, domains, balancers, base)
    via = plan.via
    if via in ("on", "full"):
        _merge(headers, "Via", _via_value(req, via))
    elif via == "block":
        headers = [(n, v) for n, v in headers if n.lower() != "via"]
    reusable = keep and rh.keep_alive and kind in ("none", "length", "chunked")
    if kind == "chunked":
        # as apache2, the head leaves with the first body data: when the backend's first read
        # already ends a chunked body, the response gets a Content-Length (the content-length
        # filter saw it whole), else it streams on from that data
        from httpd_py.http.body import CHUNKED, BodyReader, Framing
        reader = BodyReader(Framing(CHUNKED))
        data, got = rh.leftover, bytearray()
        try:
            while True:
                if data:
                    out, fin = reader.feed(data)
                    got += out
                    if fin:
                        _release(conn, worker, reusable and not reader.leftover)
                        return hooks.Response(rh.status, headers, bytes(got))
                    if got:
                        break
                data = conn.recv(READ)
                if not data:
                    raise be.Closed("the backend closed inside a chunked body")
        except Exception as e:
            conn.close()
            error_log.error(MOD, "HP13004", f"error reading response from {worker.hostport}: "
                            f"{e}", client=_client(req))
            return _proxy_error("Error reading from remote server")
        return hooks.Response(rh.status, headers, _stream(req, conn, rh, worker, kind, length,
                                                          reusable, reader, bytes(got)))
    if kind == "none":
        _release(conn, worker, reusable and not rh.leftover)
        return hooks.Response(rh.status, headers, b"")
    if whole:
        left = rh.leftover
        _release(conn, worker, reusable and len(left) == length)
        return hooks.Response(rh.status, headers, left if len(left) == length else left[:length])
    return hooks.Response(rh.status, headers, _stream(req, conn, rh, worker, kind, length,
                                                      reusable))


def _pool_key(worker, ssl_settings) -> str:
    """Kept connections are shared by the requests that would open the same one: a TLS
    connection verified under one vhost's SSLProxy* settings is not another vhost's."""
    return worker.name if not worker.tls else f"{worker.name} {ssl_settings!r}"


def _release(conn, worker, reusable: bool) -> None:
    if reusable:
        be.POOL.put(worker, conn, conn.key)
    else:
        conn.close()


def _stream(req, conn, rh, worker, kind: str, length: int, reusable: bool, reader=None,
            first: bytes = b""):
    """The response body, read and yielded piece by piece (never whole).  A chunked body may
    arrive with its decoder (``reader``) already fed and its first data (``first``)."""
    done = False
    sent = 0
    try:
        pending = rh.leftover
        if kind == "length":
            left = length
            if pending:
                take = pending[:left]
                left -= len(take)
                sent += len(take)
                yield take
            while left > 0:
                data = conn.recv(min(READ, left))
                if not data:
                    raise be.Closed(f"the backend closed after {length - left} of {length} "
                                    "bytes")
                left -= len(data)
                sent += len(data)
                yield data
        elif kind == "chunked":
            if first:
                sent += len(first)
                yield first
            data = b""
            while True:
                if data:
                    try:
                        out, fin = reader.feed(data)
                    except Exception as e:
                        raise be.Closed(f"bad chunked body from the backend: {e}") from None
                    if out:
                        sent += len(out)
                        yield out
                    if fin:
                        break
                data = conn.recv(READ)
                if not data:
                    raise be.Closed("the backend closed inside a chunked body")
        else:
            if pending:
                sent += len(pending)
                yield pending
            while True:
                data = conn.recv(READ)
                if not data:
                    break
                sent += len(data)
                yield data
        done = True
    except be.BackendError as e:
        error_log.error(MOD, "HP13004", f"error reading response from {worker.hostport} "
                        f"after {sent} bytes: {e}", client=_client(req))
        raise
    finally:
        _release(conn, worker, done and reusable)


# -- WebSockets (mod_proxy_wstunnel, upgrade=websocket) ------------------------------------------
def _wants_upgrade(req, worker) -> bool:
    up = req.headers.get("upgrade")
    if not up:
        return False
    if "upgrade" not in wire.connection_tokens(req.headers.get("connection")):
        return False
    if worker.scheme in ("ws", "wss"):
        return up.lower() == "websocket"
    want = worker.params.upgrade
    return bool(want) and (want == "*" or want == up.lower())


def _tunnel(req, conn, rh, worker):
    """101 from the backend: the head goes to the client, then bytes both ways until one side
    closes or nothing moves for the worker's timeout."""
    stream = req.take_over()
    head = [f"HTTP/1.1 101 {rh.reason or 'Switching Protocols'}"]
    for n, v in rh.headers:
        if n.lower() in ("date", "server"):
            continue
        head.append(f"{n}: {v}")
    client_sock = getattr(stream, "sock", None) or getattr(stream, "conn", None)
    t, _ = _timeouts(worker, req)
    try:
        stream.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if rh.leftover:
            stream.sendall(rh.leftover)
        _relay(stream, client_sock, conn, t)
    except Exception as e:       # either side gone: the tunnel ends
        error_log.debug(MOD, "HP13009", f"websocket tunnel to {worker.hostport} ended: "
                        f"{type(e).__name__}", client=_client(req))
    finally:
        conn.close()
    return hooks.TAKEN


def _relay(stream, client_sock, conn, timeout: float) -> None:
    """Bytes both ways.  Under the worker's event loop the tunnel parks while neither side
    sends (http.park: the worker serves its other connections); else it polls both."""
    cfd, bfd = client_sock.fileno(), conn.fileno()
    poller = None
    if not parkable():
        poller = select.poll()
        poller.register(cfd, select.POLLIN)
        poller.register(bfd, select.POLLIN)
    while True:
        if not stream.pending() and not conn.pending():
            if poller is None:
                got = wait_readable_any((cfd, bfd), timeout, conn)
                if got is False:
                    return              # idle past the timeout
                fds = {got}
            else:
                events = poller.poll(timeout * 1000)
                if not events:
                    return              # idle past the timeout
                fds = {fd for fd, _ in events}
        else:
            fds = {cfd} if stream.pending() else {bfd}
        if cfd in fds:
            data = stream.recv(READ)
            if not data:
                return
            conn.sendall(data)
        if bfd in fds:
            data = conn.recv(READ)
            if not data:
                return
            stream.sendall(data)


hooks.TRANSLATE.append(translate)
hooks.HANDLERS["proxy-server"] = handle
