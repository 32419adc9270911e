"""mod_proxy's lane (``hooks.LANES``): a plain proxied GET served without the phases.

Most requests a reverse proxy sees are one shape: a GET without a body to a ``ProxyPass``
prefix, in a vhost where nothing but mod_proxy acts on it, answered by the backend with a
Content-Length body that arrives with its head.  For those the phases (translate, the walk,
access, fixups, the handler's glue) only confirm what the lane knows from the configuration,
and mod_proxy's general exchange parses what it will pass on unchanged.  The lane does the
same exchange in one pass over bytes:

    route(req)  the first ProxyPass rule that matches (apache's order, as ``translate``): a
                prefix rule to an http(s) worker that ``plan`` allows, else None (the phases);
                the outcome, the backend path and the head's constant parts are kept per URL
                path (``_Way``, at most 1,024 paths)
    serve(req)  a kept backend connection from the pool (None when there is none: the
                phases connect), the request head built as ``_request_headers`` and
                ``wire.request_head`` build it, the answer read; a head the lane parses whole
                (HTTP/1.1, a status from 200, Content-Length and the whole body in the first
                read, no Transfer-Encoding, no obs-fold, no Connection tokens but close and
                keep-alive) becomes the Response the handler would return (a head seen
                before, byte for byte, is not parsed again: a backend repeats its heads
                until its Date changes; at most 256 heads); anything else is
                handed to the handler's own ``_response`` with the bytes read so far, and a
                failure to the handler's own ``_failed``.  The pipeline sends either as it
                sends the handler's.

What keeps the lane exact: ``route`` leaves to the phases the URLs of a rule whose settings it
does not copy (Via, ProxyErrorOverride, ProxyPassReverse and cookie rewriting, ProxyBlock,
balancers, disablereuse, nocanon, "!", a matching ProxyPassMatch), the pipeline refuses a vhost
where another hook may act (``hooks.INERT``) and a URL a <Location> applies to, the request
shapes the lane does not copy go to the phases before anything is sent (another method, a body,
an absolute-form target, a header name sent twice, Upgrade/Expect, Connection naming a header),
and the answers it does not copy (Vary, which the pipeline merges; chunked, 1xx, 204, 304,
HTTP/1.0, a body not read whole, a line the handler would refuse) go on in the handler.
tests/unit/modules/proxy/test_express.py sends the same requests both ways to a recording
backend and compares what the backend received, what the client received and the log lines.
"""
from __future__ import annotations

from httpd_py.http import hooks
from httpd_py.modules.proxy import backend as be
from httpd_py.modules.proxy import conf as C
from httpd_py.modules.proxy import handler as H
from httpd_py.modules.proxy import wire

# request header names the lane leaves out (Host is sent first, by the lane) or does not copy
# (a header named "Close" would go when Connection says close: not copied)
_DROP = frozenset(n.encode() for n in wire.HOP_BY_HOP_REQUEST | {"host", "close"})
_REFUSE = frozenset((b"upgrade", b"expect", b"content-length", b"transfer-encoding", b"close"))
_PLAIN_CONNECTION = frozenset(("close", "keep-alive"))
_XF = (b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-server")
_XF_NAMES = {b"x-forwarded-for": b"X-Forwarded-For", b"x-forwarded-host": b"X-Forwarded-Host",
             b"x-forwarded-server": b"X-Forwarded-Server"}
_HOP_RESPONSE = frozenset(n.encode() for n in wire.HOP_BY_HOP_RESPONSE)
_WS = wire._WS.encode()       # what the handler's parser strips around names and values
_MAX_LINE = 8190                # the handler's ResponseHead limits (field_size, fields)
_MAX_LINES = 100


class _Way:
    """What a lane request to one URL path needs that depends on nothing else: worked out at
    the path's first request (``Lane.route``) and kept."""
    __slots__ = ("plan", "filename", "path", "host", "server", "server_line")

    def __init__(self, plan, filename: str):
        self.plan, self.filename = plan, filename
        self.path = H.canonical_path(filename[6:])[1].encode("latin-1", "replace")
        self.host = plan.host_value.encode("latin-1", "replace")
        self.server = plan.server_name.encode("latin-1", "replace")
        self.server_line = b"X-Forwarded-Server: " + self.server


class Lane:
    __slots__ = ("vhost", "conf", "rules", "plans", "ways", "served")

    replaces = (H.translate,)

    def __init__(self, vhost, conf, rules: tuple):
        self.vhost, self.conf, self.rules = vhost, conf, rules
        self.plans: dict = {}           # rule -> its plan, or None: not the lane's
        self.ways: dict = {}            # URL path -> its _Way, or None: not the lane's
        self.served = 0                 # requests it answered itself (tests, debugging)

    def route(self, req):
        """The way of the ProxyPass prefix rule that decides ``req`` (``req.filename`` and
        ``req.handler`` set as ``translate`` sets them), or None: the phases decide."""
        if not req.unparsed_uri.startswith("/"):
            return None
        uri = req.uri
        ways = self.ways
        way = ways.get(uri)
        if way is None:
            if uri in ways:
                return None
            way = self._route(req)
            if len(ways) >= 1024:
                ways.clear()
            ways[uri] = way
            if way is None:
                return None
        req.filename = way.filename
        req.handler = "proxy-server"
        return way

    def _route(self, req):
        uri = req.uri
        if not uri.startswith("/"):
            return None
        for rule in self.rules:
            if rule.regex is not None:
                if rule.regex.search(uri) is not None:
                    return None                 # a ProxyPassMatch (or its "!") decides: phases
                continue
            n = H.alias_match(uri, rule.path)
            if not n:
                continue
            if rule.url == "!" or rule.nocanon:
                return None
            plan = self.plans.get(rule)
            if plan is None:
                if rule in self.plans:
                    return None
                plan = self.plans[rule] = self._plan(req, rule)
                if plan is None:
                    return None
            return _Way(plan, "proxy:" + rule.url + uri[n:])
        return None

    def _plan(self, req, rule):
        worker = H._match_worker(C.worker_name(rule.url), H._tables(self.vhost)[4])
        if worker is None or worker.scheme not in ("http", "https"):
            return None
        plan = H._plan(req, self.conf, worker)
        if (plan.blocked or plan.via != "off" or plan.error_override or plan.rewrites is not None
                or not plan.reuse or (worker.tls and not plan.ssl.engine)):
            return None
        return plan

    def serve(self, req, way):
        """The handler's answer to ``req`` (a Response or a status), or None: nothing was sent
        to a backend, or a kept connection was found closed (the phases try again)."""
        plan = way.plan
        raw = req.raw_headers
        if not raw:
            return None
        lines = []
        xf = None
        seen = set()
        for n, v in raw:
            ln = n.lower()
            if ln in seen:
                return None                     # merged by the handler: not copied here
            seen.add(ln)
            if ln in _DROP:
                if ln in _REFUSE:
                    return None
                if ln == b"connection" and not \
                        wire.connection_tokens(v.decode("latin-1")) <= _PLAIN_CONNECTION:
                    return None
                continue
            if ln in _XF:
                if xf is None:
                    xf = {}
                xf[ln] = len(lines)
            lines.append(b"%s: %s" % (n, v))
        host = req.headers.get("host")
        host_b = host.encode("latin-1", "replace") if host else b""
        if plan.add_headers:
            ip = req.client_ip.encode("latin-1", "replace")
            if xf is None:                      # none came from the client: appended
                lines.append(b"X-Forwarded-For: " + ip)
                if host:
                    lines.append(b"X-Forwarded-Host: " + host_b)
                lines.append(way.server_line)
            else:                               # merged into the client's, as _merge
                for low, value in ((b"x-forwarded-for", ip),
                                   (b"x-forwarded-host", host_b if host else None),
                                   (b"x-forwarded-server", way.server)):
                    if value is None:
                        continue
                    at = xf.get(low)
                    if at is None:
                        lines.append(b"%s: %s" % (_XF_NAMES[low], value))
                    else:
                        lines[at] += b", " + value
        query = req.query
        head = b"GET %s%s HTTP/1.1\r\nHost: %s\r\n%s%sConnection: Keep-Alive\r\n\r\n" % (
            way.path, b"?" + query.encode("latin-1", "replace") if query else b"",
            host_b if plan.preserve_host and host else way.host, b"\r\n".join(lines),
            b"\r\n" if lines else b"")
        worker = plan.worker
        conn = be.POOL.get(worker, plan.pool_key)
        if conn is None:
            return None                         # the phases connect (and report a failure)
        if conn.timeout != plan.timeout:
            conn.settimeout(plan.timeout)
        try:
            conn.sendall(head)
            data = conn.recv(H.READ)
            if not data:
                raise be.Closed("the backend closed the connection before a response")
        except be.Closed:
            conn.close()        # a kept connection the backend had closed: the phases try
            return None         # again on a new one, as the handler's retry does
        except be.ReadTimeout as e:
            return H._failed(req, conn, e, worker, None, False)
        got = _answer(data)
        if got is None:                         # not a head the lane parses whole: the handler's
            return H._go_on(req, conn, plan, data)
        status, headers, serialised, body, reusable = got
        if reusable:
            be.POOL.put(worker, conn, conn.key)
        else:
            conn.close()
        self.served += 1
        return hooks.Response(status, headers, body, wire=serialised)


def _answer(data: bytes):
    """(status, headers to pass on, ``Response.wire`` for them, body, connection reusable) of
    a response whose head and Content-Length body are all in ``data``, as the handler's
    ResponseHead and _response make them; None when the handler must read it."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = data[:end]
    got = _HEADS.get(head)
    if got is None:
        got = _head(head)
        if got is None:
            return None
        if len(head) <= _HEAD_MEMO_SIZE:
            if len(_HEADS) >= _HEAD_MEMO:
                _HEADS.clear()
            _HEADS[head] = got
    status, headers, serialised, length, reusable = got
    if len(data) - end - 4 != length:
        return None
    return status, list(headers), serialised, data[end + 4:], reusable


# whole heads already parsed (a backend serving the same thing repeats its head byte for byte
# until its Date changes): at most _HEAD_MEMO of at most _HEAD_MEMO_SIZE bytes
_HEADS: dict[bytes, tuple] = {}
_HEAD_MEMO, _HEAD_MEMO_SIZE = 256, 2048


def _head(head: bytes):
    """_answer's (status, headers, wire, Content-Length, reusable) for a response head."""
    if head[:9] != b"HTTP/1.1 ":
        return None
    lines = head.split(b"\r\n")
    if len(lines) > _MAX_LINES + 1 or head.count(b"\n") != len(lines) - 1:
        return None                             # bare LF ends lines for the handler
    first = lines[0]
    code = first[9:12]
    if not code.isdigit() or (len(first) > 12 and first[12:13] != b" ") or code < b"200" \
            or code == b"204" or code == b"304" or len(first) > _MAX_LINE:
        return None
    origin = []
    rest = []
    wire_origin = []
    wire_rest = []
    has = 0
    length = None
    reusable = True
    memo = _MEMO
    for line in lines[1:]:
        got = memo.get(line)
        if got is None:
            got = _line(line)
            if got is None:
                return None
            if len(line) <= _MEMO_LINE and len(memo) < _MEMO_LINES:
                memo[line] = got
        kind, item, wire = got
        if kind is _PASS:
            rest.append(item)
            wire_rest.append(wire)
        elif kind is _LENGTH:
            if length is not None:
                return None
            length = item
        elif kind is _DROPPED:
            pass
        elif kind is _CLOSE:
            reusable = False
        else:                                   # Date (1) or Server (2): first, as _response
            if has & kind:
                return None                     # twice: the handler's
            has |= kind
            origin.append(item)
            wire_origin.append(wire)
    if length is None:
        return None
    if origin:
        return (int(code), tuple(origin + rest), (has, b"".join(wire_origin + wire_rest)),
                length, reusable)
    return int(code), tuple(rest), (0, b"".join(wire_rest)), length, reusable


# what one response header line does (``_line``), memoised by its bytes as the handler's
# parser memoises its lines: a backend repeats all but Date on every response
_PASS, _LENGTH, _DROPPED, _CLOSE = "pass", "length", "dropped", "close"
_MEMO: dict[bytes, tuple] = {}
_MEMO_LINES, _MEMO_LINE = 512, 1024


def _line(line: bytes):
    """(what, (name, value) passed on, its serialised line) for one response header line,
    None when the lane does not copy what the handler does with it (the handler reads it)."""
    colon = line.find(b":")
    if colon <= 0 or len(line) > _MAX_LINE or line[0] in b" \t" or b"\r" in line:
        return None
    name = line[:colon]
    if name != name.strip(_WS):
        return None
    low = name.lower()
    value = line[colon + 1:].strip(_WS)
    if low in _HOP_RESPONSE:
        if low == b"transfer-encoding":
            return None
        if low == b"connection":
            tokens = wire.connection_tokens(value.decode("latin-1"))
            if not tokens <= _PLAIN_CONNECTION:
                return None
            if "close" in tokens:
                return (_CLOSE, None, None)
        return (_DROPPED, None, None)
    if low == b"content-length":
        return (_LENGTH, int(value), None) if value.isdigit() else None
    if low == b"vary":
        return None             # the pipeline merges Vary tokens (fixup_vary): not copied
    if low == b"date" or low == b"server":
        name = name.capitalize()
        return (1 if low == b"date" else 2, (name, value), b"%s: %s\r\n" % (name, value))
    return (_PASS, (name, value), b"%s: %s\r\n" % (name, value))


def lane_for(vhost, conf):
    """``hooks.LANES``: the lane of a vhost with ProxyPass rules (None without)."""
    if not vhost.mods:
        return None
    rules = H._tables(vhost)[1]
    return Lane(vhost, conf, rules) if rules else None


hooks.LANES.append(lane_for)
