"""One accepted connection: TLS handshake (when the address is SSL), then HTTP/1.1.

``ConnectionHandler(cfg, sites)`` is built in the master (it opens every CustomLog then, before
privileges drop, and reads each vhost's TypesConfig); ``handler(sock, client_addr,
listener_addr, slot)`` serves one connection in a worker and never raises (an unexpected
exception is logged as HP03001 and the connection closed).

Sockets stay blocking; Timeout and KeepAliveTimeout are kernel timeouts (SO_RCVTIMEO /
SO_SNDTIMEO), because ``socket.settimeout()`` makes the descriptor non-blocking and pyOpenSSL
then fails handshakes with WantReadError.  A kernel timeout surfaces as WantRead/WantWrite from
pyOpenSSL or EAGAIN from the socket: both mean "timed out".  The idle wait between keep-alive
requests is a poll() bounded by KeepAliveTimeout (cheaper than switching SO_RCVTIMEO twice per
request).  Request heads are parsed by ``http.protocol`` (our own sans-I/O parser: h11 cost
about half of a small-file request's CPU).  A request body (``http.body``) is read and
discarded just before the response (``_read_body``), as Apache discards it; the connection is
kept after a whole body and closed, with a short lingering close so the answer is not lost to
a RST, after a body error.

Per request: parse head -> choose vhost -> Redirect -> Alias/DocumentRoot mapping
(``http.paths``) -> open and check the file (containment checked on the opened descriptor) ->
conditionals and Range (``http.static``) -> one ``sendall`` of head and body for files up to
256 KiB, 256 KiB chunks above -> access-log lines (``http.accesslog``).

Connection-level settings (Timeout, KeepAliveTimeout, the limits) come from the address's
default vhost, as in Apache before the Host header is known; request-level ones (DocumentRoot,
Alias, Redirect, ErrorDocument, MIME, CustomLog, KeepAlive, MaxKeepAliveRequests) from the vhost
the request selects.

Vhost selection on TLS addresses (Apache 2.4's mod_ssl rules):

* SNI chose the handshake's vhost; a Host header naming a vhost with a different SSL setup gets
  421 Misdirected Request (HP02004);
* SNI but no Host header (HTTP/1.0) gets 400 (HP02007);
* a client without SNI gets the Host header's vhost, except that SSLStrictSNIVHostCheck on in
  that vhost (or in the address's default vhost) answers 403 (HP02005) when the address has
  name-based vhosts (more than one).
* an SNI name no vhost matches keeps the address's default vhost (Apache sends a warning alert;
  pyOpenSSL's servername callback cannot choose the return code).

Log ids (module "http" unless noted): HP03001 unexpected exception, HP03002 request line too
long (414), HP03003 header field too long / too many fields (400), HP03004 malformed request
(400), HP03005 timeout reading a request, HP03006 Expect other than 100-continue (417),
HP03007 request body refused (413, 400), HP03010 file does not exist (404), HP03011 directory
without index (403), HP03012 access refused by path rules (403), HP03013 ErrorDocument failed,
HP03014 client went away while sending, HP03020 TypesConfig missing; ssl: HP02001 handshake
failed (plain HTTP on a TLS port also gets Apache's readable 400), HP02002 handshake timed out,
HP02004 421, HP02005 strict SNI 403, HP02006 SNI callback failure, HP02007 SNI without Host
(400), HP02010 context built.
"""
from __future__ import annotations

import dataclasses
import gc
import http
import os
import select
import socket
import stat
import time
from dataclasses import dataclass
from typing import NamedTuple

from OpenSSL import SSL

from httpd_py.config.dirconf import effective_options
from httpd_py.config.model import UNSET, ServerConfig, VHost
from httpd_py.http import access, park
from httpd_py.http.access import RequestFacts
from httpd_py.http.reqtimeout import Deadlines, ReadTimeouts
from httpd_py.http.walk import SectionWalker
from httpd_py.http.waiting import WaitingMixin
from httpd_py.http.streams import (_CLOSE, _EOF, _IPPROTO_TCP, _LINGER, _NEXT, _TCP_NODELAY,
                                   _WILDCARD_BINDS, TLS_READ,
                                   PlainStream, StreamClosed, StreamTimeout, TLSStream,
                                   _linger, _plain_http_on_tls_port, _ssl_err, _state,
                                   _where_raised, set_kernel_timeout)
from httpd_py.errors import StartupError
from httpd_py.http.accesslog import LOG_FORMATS, AccessLogs, RequestRecord, new_record
from httpd_py.http.body import BodyReader, Framing, request_framing
from httpd_py.http.protocol import (HeadFault, Limits, ProtocolError, RequestHead, parse_head,
                                    response_head)
from httpd_py.http.paths import (OpenFiles, PathError, find_redirect, map_to_root, quote_path,
                                 resolve_file, url_path)
from httpd_py.http.static import (UNSATISFIABLE, MimeTypes, evaluate_conditionals, http_date,
                                  if_range_allows, make_etag, parse_range)
from httpd_py.http import hooks
from httpd_py.http.hooks import OK, TAKEN, FileBody, Request, Response
from httpd_py import logids as L
from httpd_py.log import error_log
from httpd_py.modules import core_http
from httpd_py.modules import core_http as core_keys
from httpd_py import metrics
from httpd_py.tls.handshake import HandshakeFailure
from httpd_py.tls.handshake import classify as classify_handshake
from httpd_py.tls.sites import Site, Sites, TLSState
from httpd_py.version import server_token

KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
                 "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK"}
SMALL_FILE = 256 * 1024
CHUNK = 256 * 1024
_CONDITIONAL = frozenset(("if-match", "if-unmodified-since", "if-none-match", "if-modified-since"))
# statuses after which Apache closes the connection (ap_status_drops_connection)
DROPS_CONNECTION = frozenset((400, 408, 411, 413, 414, 417, 500, 501, 503))
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# The built-in error pages' text between the heading and the signature: apache2 2.4's canned
# strings (http_protocol.c's get_canned_error_string), as it sends them -- line breaks, the
# "<br />" before a closing </p>, 413's missing <p> and 502's CRLFs included (compared with
# apache2's pages for every status in tests/interop/http/test_error_pages.py).  {method},
# {loc}, {admin}: the request's method, the Location, ServerAdmin (escaped).
_CANNED = {
    301: "<p>The document has moved <a href=\"{loc}\">here</a>.</p>\n",
    302: "<p>The document has moved <a href=\"{loc}\">here</a>.</p>\n",
    303: "<p>The answer to your request is located <a href=\"{loc}\">here</a>.</p>\n",
    307: "<p>The document has moved <a href=\"{loc}\">here</a>.</p>\n",
    308: "<p>The document has moved <a href=\"{loc}\">here</a>.</p>\n",
    400: "<p>Your browser sent a request that this server could not understand.<br />\n</p>\n",
    401: "<p>This server could not verify that you\nare authorized to access the document\n"
         "requested.  Either you supplied the wrong\ncredentials (e.g., bad password), or your\n"
         "browser doesn't understand how to supply\nthe credentials required.</p>\n",
    403: "<p>You don't have permission to access this resource.</p>\n",
    404: "<p>The requested URL was not found on this server.</p>\n",
    405: "<p>The requested method {method} is not allowed for this URL.</p>\n",
    406: "<p>An appropriate representation of the requested resource could not be found on "
         "this server.</p>\n",
    408: "<p>Server timeout waiting for the HTTP request from the client.</p>\n",
    410: "<p>The requested resource is no longer available on this server and there is no "
         "forwarding address.\nPlease remove all references to this resource.</p>\n",
    411: "<p>A request of the requested method {method} requires a valid Content-length.<br />"
         "\n</p>\n",
    412: "<p>The precondition on the request for this URL evaluated to false.</p>\n",
    413: "The requested resource does not allow request data with {method} requests, or the "
         "amount of data provided in\nthe request exceeds the capacity limit.\n",
    414: "<p>The requested URL's length exceeds the capacity\nlimit for this server.<br />\n"
         "</p>\n",
    415: "<p>The supplied request data is not in a format\nacceptable for processing by this "
         "resource.</p>\n",
    416: "<p>None of the range-specifier values in the Range\nrequest-header field overlap the "
         "current extent\nof the selected resource.</p>\n",
    417: "<p>No expectation was seen, the Expect request-header \nfield was not presented by "
         "the client.\n</p><p>Only the 100-continue expectation is supported.</p>\n",
    421: "<p>The client needs a new connection for this\nrequest as the requested host name "
         "does not match\nthe Server Name Indication (SNI) in use for this\nconnection.</p>\n",
    422: "<p>The server understands the media type of the\nrequest entity, but was unable to "
         "process the\ncontained instructions.</p>\n",
    423: "<p>The requested resource is currently locked.\nThe lock must be released or proper "
         "identification\ngiven before the method can be applied.</p>\n",
    424: "<p>The method could not be performed on the resource\nbecause the requested action "
         "depended on another\naction and that other action failed.</p>\n",
    426: "<p>The requested resource can only be retrieved\nusing SSL.  The server is willing "
         "to upgrade the current\nconnection to SSL, but your client doesn't support it.\n"
         "Either upgrade your client, or try requesting the page\nusing https://\n",
    428: "<p>The request is required to be conditional.</p>\n",
    429: "<p>The user has sent too many requests\nin a given amount of time.</p>\n",
    431: "<p>The server refused this request because\nthe request header fields are too "
         "large.</p>\n",
    451: "<p>Access to this URL has been denied for legal reasons.<br />\n</p>\n",
    501: "<p>{method} not supported for current URL.<br />\n</p>\n",
    502: "<p>The proxy server received an invalid\r\nresponse from an upstream server.<br />"
         "\r\n</p>\n",
    503: "<p>The server is temporarily unable to service your\nrequest due to maintenance "
         "downtime or capacity\nproblems. Please try again later.</p>\n",
    504: "<p>The gateway did not receive a timely response\nfrom the upstream server or "
         "application.</p>\n",
    506: "<p>A variant for the requested resource\n<pre>\n\n</pre>\nis itself a negotiable "
         "resource. This indicates a configuration error.</p>\n",
    507: "<p>The method could not be performed on the resource\nbecause the server is unable "
         "to store the\nrepresentation needed to successfully complete the\nrequest.  There is "
         "insufficient free space left in\nyour storage allocation.</p>\n",
    508: "<p>The server terminated an operation because\nit encountered an infinite loop."
         "</p>\n",
    510: "<p>A mandatory extension policy in the request is not\naccepted by the server for "
         "this resource.</p>\n",
    511: "<p>The client needs to authenticate to gain\nnetwork access.</p>\n",
}
_CANNED[407] = _CANNED[401]
# 500, and every status without a text of its own (402, 409, 505, ...)
_INTERNAL = ("<p>The server encountered an internal error or\nmisconfiguration and was unable "
             "to complete\nyour request.</p>\n<p>Please contact the server administrator at \n "
             "{admin} to inform them of the time this error occurred,\n and the actions you "
             "performed just before this error.</p>\n<p>More information about this error may "
             "be available\nin the server error log.</p>\n")


_REASONS = {int(st): st.phrase for st in http.HTTPStatus}
_STATUS_LINES = {st: b"HTTP/1.1 %d %s\r\n" % (st, p.encode("latin-1")) for st, p in _REASONS.items()}


def reason(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def error_body(status: int, location: str | None = None, method: str = "GET",
               signature: str = "", variants: str = "", admin: str = "") -> bytes:
    """The built-in error page (apache2's), ``variants`` (a 300/406 list) after the text."""
    if variants and status in (300, 406):
        text = (_CANNED[406] if status == 406 else "") + variants
    else:
        text = _CANNED.get(status) or (_INTERNAL if status >= 400 else "")
        if "{" in text:
            text = text.format(method=_html_escape(method), admin=_html_escape(
                admin or "[no address given]"), loc=(location or "").replace(
                "&", "&amp;").replace('"', "&quot;").replace("<", "&lt;"))
    r = reason(status)
    return (f'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" '
            f'"http://www.w3.org/TR/html4/strict.dtd">\n<html><head>\n'
            f"<title>{status} {r}</title>\n</head><body>\n<h1>{r}</h1>\n" + text
            + (f"<hr>\n{signature}" if signature else "") + "</body></html>\n").encode()


















@dataclass
class VHostRuntime:
    """Per-vhost things prepared once in the master."""
    vhost: VHost
    mime: MimeTypes
    root_real: str
    error_docs: dict[int, str]
    logs: list
    real_roots: dict[str, str]          # root as map_to_root returns it -> its realpath
    walker: SectionWalker | None = None  # this vhost's section walk (merges cached per worker)
    lane: object = None                 # its lane (hooks.LANES), None: none; _LANE_UNKNOWN until
                                        # its first GET in this process
    lane_wire: bool = False             # its output hooks leave a lane's responses as they are
    observers: tuple = ()               # then the ones of them that must still see each one
    post_read: list | None = None       # the post_read hooks that may act in it (hooks.INERT),
                                        # worked out at its first request in the process


class ConnectionHandler(WaitingMixin):
    def __init__(self, cfg: ServerConfig, sites: Sites):
        self.cfg = cfg
        self.sites = sites
        self.access_logs = AccessLogs()
        self._runtimes: dict[int, VHostRuntime] = {}
        mime_cache: dict[tuple, MimeTypes] = {}
        for v in cfg.all_vhosts():
            key = (v.types_config, v.add_types)
            mime = mime_cache.get(key)
            if mime is None:
                mime = mime_cache[key] = MimeTypes(v.types_config, v.add_types)
                if v.types_config and not os.path.exists(v.types_config):
                    error_log.warn("http", L.HTTP_TYPES_CONFIG_MISSING, f"TypesConfig {v.types_config} not found: "
                                   "files are served without Content-Type")
            logs = []
            for ref in v.custom_logs:
                fmt = self._resolve_format(ref.format)
                try:
                    render = self.access_logs.renderer(fmt, getattr(ref, "condition", None))
                except ValueError as e:
                    raise StartupError(f"CustomLog {ref.path}: {e}") from None
                try:
                    fd = self.access_logs.open(ref.path)
                except OSError as e:
                    raise StartupError(f"CustomLog: cannot open {ref.path}: {e.strerror}") from None
                logs.append((fd, render))
            root_real = os.path.realpath(v.document_root) if v.document_root else ""
            real_roots = {(a.target.rstrip("/") or "/"): os.path.realpath(a.target) for a in v.aliases}
            if v.document_root:
                real_roots[v.document_root.rstrip("/") or "/"] = root_real
            self._runtimes[id(v)] = VHostRuntime(v, mime, root_real, dict(v.error_documents), logs,
                                                 real_roots, SectionWalker(v, cfg), _LANE_UNKNOWN)
        self._date_cache = (0, b"")
        self._server_token = server_token(cfg.mod(core_keys.SERVER_TOKENS, "full"))
        self._server_header = self._server_token.encode()
        self._response_started = False
        self._tls_conn = None               # the current connection's SSL.Connection, if TLS
        self._limits: dict[int, Limits] = {}
        self._keepalive_hdr: dict[tuple[int, int], bytes] = {}
        self._wire_tails: dict[tuple, bytes] = {}     # _wire_head's Keep-Alive/Connection lines
        self._url_memo: dict[bytes, tuple] = {}
        self._open_files = OpenFiles()      # filled per worker (after fork), see http.paths
        self._typed_runtimes: dict = {}      # per-directory AddType -> runtime with its MimeTypes
        self._verdicts: dict = {}            # id(merged conf) -> (conf, access verdict or None)
        self._read_timeouts: dict = {}       # id(vhost) -> resolved RequestReadTimeout
        self._deadlines: Deadlines | None = None   # this connection's (mod_reqtimeout loaded)
        self._loaded = {m.removesuffix("_module") for m in cfg.loaded_modules}
        self._pending: _PendingBody | None = None   # the current request's unread body
        self._body_limit = 0                # LimitRequestBody for it (0: unlimited)
        self._body_failed = False           # reading it failed: close after the response
        self._body_reader = None            # the body's decoder once a handler started reading
        self._force_close = False           # Content-Length with Transfer-Encoding, Expect
        self._body_timeout = 0
        # the event loop serves each request in a greenlet it can park (http.park): while a
        # backend answers (mod_proxy) or a slow client cannot take more of the response
        self.may_park = park.AVAILABLE

    def request_state(self) -> tuple:
        """What the handler keeps between one request's phases, saved by the event loop
        when it parks the request (another is served meanwhile) and put back when it resumes."""
        return (self._tls_conn, self._deadlines, self._force_close, self._pending,
                self._body_timeout, self._body_failed, self._body_limit, self._response_started,
                self._body_reader)

    def set_request_state(self, state: tuple) -> None:
        (self._tls_conn, self._deadlines, self._force_close, self._pending, self._body_timeout,
         self._body_failed, self._body_limit, self._response_started,
         self._body_reader) = state

    def _resolve_format(self, fmt: str) -> str:
        """A CustomLog format: a format string, a LogFormat nickname, or "" (TransferLog)."""
        nicks = dict(self.cfg.log_formats)
        if fmt == "":
            return nicks.get("%default", LOG_FORMATS["common"])
        if "%" in fmt:
            return fmt
        if fmt in nicks:
            return nicks[fmt]
        if fmt in LOG_FORMATS:
            return LOG_FORMATS[fmt]
        raise StartupError(f"CustomLog: unknown LogFormat nickname {fmt!r}")

    def child_init(self) -> None:
        """In each worker after fork.  Access-log descriptors are O_APPEND and shareable.

        ``gc.freeze()``: everything built before fork (config, contexts, modules) goes to the
        collector's permanent generation, so the cyclic GC never walks it again in this worker
        (a full collection would touch, and copy on write, the whole inherited heap).
        """
        gc.freeze()

    def close(self) -> None:
        self.access_logs.close()
        self._open_files.close()

    def runtime(self, vhost: VHost) -> VHostRuntime:
        return self._runtimes[id(vhost)]

    # --- entry point ------------------------------------------------------------------------
    def __call__(self, sock: socket.socket, client_addr, listener_addr, slot=None) -> None:
        client = f"{client_addr[0]}:{client_addr[1]}" if client_addr else "-"
        stream = None
        try:
            stream = self._serve(sock, client_addr, listener_addr, slot, client)
        except Exception as e:  # never let an exception escape into the worker loop
            error_log.error("http", L.HTTP_UNEXPECTED, f"unexpected {type(e).__name__} while serving: {e} "
                            f"({_where_raised(e)})", client=client)
        finally:
            if slot is not None:
                _state(slot, "closing")
            if stream is not None:
                stream.close()
            try:
                sock.close()
            except OSError:
                pass
            self._tls_conn = None
            if slot is not None:
                _state(slot, "idle")

    # --- the connection ---------------------------------------------------------------------
    def _serve(self, sock, client_addr, listener_addr, slot, client):
        if isinstance(listener_addr, tuple) and listener_addr[0] not in _WILDCARD_BINDS:
            local = listener_addr       # bound to one address: the socket's local address (no syscall)
        else:
            try:
                local = sock.getsockname()
            except OSError:
                local = getattr(listener_addr, "addr", listener_addr)
        if not sock.getblocking():
            sock.setblocking(True)
        site = self.sites.site_for(local[0], local[1])
        default = site.default
        set_kernel_timeout(sock, default.timeout)
        try:
            sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
        except OSError:
            pass
        if slot is not None:
            _state(slot, "reading")
        tls_state = None
        ssl_info = (None, None)
        self._tls_conn = None
        dl = self._deadlines = self._new_deadlines(default)
        if site.ssl:
            if site.context is None:
                raise RuntimeError(f"SSL address {local} has no TLS context")
            conn = SSL.Connection(site.context, sock)
            tls_state = TLSState(site)
            conn.set_app_data(tls_state)
            conn.set_accept_state()
            try:
                if dl is not None and dl.limits("handshake").enabled:
                    if not _handshake_with_deadline(conn, sock, dl, default.timeout):
                        error_log.info("reqtimeout", L.REQTIMEOUT_EXPIRED, "Request handshake read timeout",
                                       client=client)
                        return None
                else:
                    conn.do_handshake()
            except (SSL.WantReadError, SSL.WantWriteError):
                metrics.handshake_failed()
                error_log.info("ssl", L.SSL_HANDSHAKE_TIMEOUT, "TLS handshake timed out", client=client)
                return None
            except (SSL.Error, OSError) as e:
                metrics.handshake_failed()
                why = _ssl_err(e)
                error_log.info("ssl", L.SSL_HANDSHAKE_FAILED, f"TLS handshake failed: {why}", client=client)
                if classify_handshake(e) is HandshakeFailure.PLAIN_HTTP:
                    # Apache answers plain HTTP on an SSL port with a readable 400
                    _plain_http_on_tls_port(sock, site)
                return None
            metrics.handshake(conn)
            try:            # ACK the client's Finished now (no ticket carries it: Nagle clients)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass
            stream = TLSStream(conn, sock)
            self._tls_conn = conn       # protocol and cipher are read only for an access log
        else:
            stream = PlainStream(sock)
        if dl is not None:
            dl.start("header", time.monotonic())
        how = self._http_loop(sock, stream, site, tls_state, ssl_info, client_addr, local, slot, client)
        if how == _EOF:
            return stream
        stream.close()
        if how == _LINGER:
            _linger(sock)
        return None

    def _http_loop(self, sock, stream, site: Site, tls_state, ssl_info, client_addr, local,
                   slot, client) -> int:
        """Serve requests until the connection ends: _EOF (the client closed), _CLOSE (we close,
        nothing unread) or _LINGER (we close and the client may have sent bytes we did not read)."""
        d = site.default
        limits = self._limits.get(id(d))
        if limits is None:
            po = d.http_protocol_options
            limits = self._limits[id(d)] = Limits(d.limit_request_line, d.limit_request_field_size,
                                                  d.limit_request_fields, po[0] == "Strict",
                                                  po[1] == "RegisteredMethods", po[2] == "Allow0.9")
        buf = bytearray()
        served = 0
        poller = None
        keep_alive_ms = max(0, int(d.keep_alive_timeout * 1000))
        read_size = TLS_READ if isinstance(stream, TLSStream) else 65536
        while True:
            # ---- read one request head (pipelined bytes may already be in buf)
            start = time.time() if buf else None
            waited = False
            idle_polled = False         # the keep-alive wait just saw the socket readable
            while True:
                if buf:
                    try:
                        parsed = parse_head(buf, limits)
                    except ProtocolError as e:
                        msgid = {414: L.HTTP_REQUEST_LINE_TOO_LONG}.get(e.status, L.HTTP_HEADER_TOO_LARGE if e.kind is HeadFault.LIMIT else L.HTTP_BAD_REQUEST)
                        self._early_error(stream, d, e.status, client, msgid, e.reason)
                        return _LINGER
                    if parsed is not None:
                        break
                    if waited and slot is not None:
                        _state(slot, "reading")     # the head did not come in one read
                        waited = False
                elif served and not stream.pending():
                    # idle between requests: wait KeepAliveTimeout with poll (SO_RCVTIMEO keeps
                    # Timeout for the reads themselves, saving two setsockopt per request)
                    if slot is not None:
                        try:
                            slot.set_state("keepalive")
                        except Exception:
                            pass
                    if poller is None:
                        poller = select.poll()
                        poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
                    # first slice inline (the next request usually comes within it)
                    if not poller.poll(min(500, keep_alive_ms)) and not _wait_readable(
                            poller, keep_alive_ms - min(500, keep_alive_ms), slot):
                        return _CLOSE
                    waited = idle_polled = True
                dl = self._deadlines
                if dl is not None and not idle_polled and not stream.pending():
                    # mod_reqtimeout: wait no longer than the header stage allows
                    if poller is None:
                        poller = select.poll()
                        poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
                    if not _poll_deadline(poller, dl, d.timeout):
                        return self._header_timeout(stream, d, buf, client)
                try:
                    data = stream.recv(read_size)
                except StreamTimeout:
                    if buf:
                        error_log.info("http", L.HTTP_READ_TIMEOUT, "timeout reading the request", client=client)
                        self._early_error(stream, d, 408, client, None, None)
                        return _LINGER
                    return _CLOSE
                if not data:
                    return _EOF
                if start is None:
                    start = time.time()
                if dl is not None:
                    now = time.monotonic()
                    if dl.stage is None:        # the first byte after a keep-alive wait
                        dl.start("header", now)
                    dl.received(len(data), now)
                    if dl.expired(now):
                        buf += data
                        return self._header_timeout(stream, d, buf, client)
                idle_polled = False
                buf += data
            head, consumed = parsed
            del buf[:consumed]
            served += 1
            how = self._one_request(stream, sock, site, tls_state, ssl_info, client_addr, local,
                                    slot, client, head, buf, limits, read_size, served, start)
            if how != _NEXT:
                return how

    def _one_request(self, stream, sock, site: Site, tls_state, ssl_info, client_addr, local,
                     slot, client, head, buf: bytearray, limits, read_size: int, served: int,
                     start) -> int:
        """Serve one parsed request head (its body read from ``buf`` and the stream): _NEXT
        when the connection stays open for another request, else _CLOSE or _LINGER."""
        d = site.default
        if self._deadlines is not None:
            if head.body:
                self._deadlines.start("body", time.monotonic())
            else:
                self._deadlines.stop()
        # ---- the body's framing; the body itself is read just before the response
        try:
            framing = request_framing(head) if head.body else None
        except ProtocolError as e:
            self._early_error(stream, d, e.status, client, L.HTTP_BAD_REQUEST, e.reason)
            return _LINGER
        self._force_close = framing is not None and framing.close
        expecting = False
        expect = head.headers.get("expect")
        if expect is not None and head.version != "0.9":
            if expect.strip().lower() != "100-continue":
                self._early_error(stream, d, 417, client, L.HTTP_EXPECT_FAILED,
                                  f"unsupported Expect: {expect}")
                return _LINGER
            expecting = head.version == "1.1"
            if framing is None or not framing.has_body:
                self._force_close = True     # as Apache: no 100 was sent, close after
        if framing is not None and framing.has_body:
            self._pending = _PendingBody(framing, expecting, buf, stream, limits, read_size,
                                         sock)
            self._body_timeout = d.timeout
        else:
            self._pending = None
        self._body_failed = False
        self._body_reader = None
        self._body_limit = d.limit_request_body
        if slot is not None:
            try:
                slot.set_state("writing")
            except Exception:
                pass
        self._response_started = False
        try:
            keep = self._handle_request(stream, head, site, tls_state, ssl_info, client_addr,
                                        local, slot, client, served, start)
        except Exception as e:
            error_log.error("http", L.HTTP_UNEXPECTED, f"unexpected {type(e).__name__} serving "
                            f"{head.request_line!r}: {e} ({_where_raised(e)})", client=client)
            if not self._response_started:
                self._early_error(stream, d, 500, client, None, None)
            return _LINGER
        finally:
            error_log.leave()           # the request's vhost scope (log.ErrorLog.enter) ends
        if self._deadlines is not None:
            self._deadlines.stop()
        if self._pending is not None or self._body_failed:
            return _LINGER               # the body was not (fully) read
        if not keep:
            # Apache lingers on every close; we do when unread bytes could turn our close
            # into a RST that destroys the response in flight (pipelined requests).
            return _LINGER if buf else _CLOSE
        return _NEXT

    def _new_deadlines(self, vhost: VHost) -> Deadlines | None:
        """This connection's mod_reqtimeout deadlines (None: the module is not loaded)."""
        if "reqtimeout" not in self._loaded:
            return None
        t = self._read_timeouts.get(id(vhost))
        if t is None:
            t = self._read_timeouts[id(vhost)] = (vhost.request_read_timeout
                                                  or ReadTimeouts()).resolved()
        return Deadlines(t)

    def _header_timeout(self, stream, d: VHost, buf: bytearray, client: str) -> int:
        """The header stage ran out: 408 once the request line is complete, else a silent
        close (as mod_reqtimeout); logged as Apache's AH01382."""
        error_log.info("reqtimeout", L.REQTIMEOUT_EXPIRED, "Request header read timeout", client=client)
        if b"\n" in buf.lstrip(b"\r\n"):
            self._early_error(stream, d, 408, client, None, None)
            return _LINGER
        return _CLOSE

    def _early_error(self, stream, d: VHost, status: int, client: str, msgid: str | None,
                     text: str | None) -> None:
        """An error before a request head was parsed: written by hand, then the connection closes."""
        if msgid:
            error_log.info("http", msgid, text or "", client=client)
        body = error_body(status, admin=d.server_admin)
        head = (f"HTTP/1.1 {status} {reason(status)}\r\nDate: {http_date(time.time())}\r\n"
                f"Server: {self._server_token}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
                f"Content-Type: text/html; charset=iso-8859-1\r\n\r\n").encode()
        try:
            stream.sendall(head + body)
        except (StreamTimeout, StreamClosed):
            pass

    def _read_body(self, rec) -> int:
        """Read (and discard) the pending request body before a response: 0 when it was read
        whole (bytes after it stay in the connection buffer), else the status that replaces
        the response (413 over LimitRequestBody, 400 bad chunking, 408 timeout), after which
        the connection closes.  ``Expect: 100-continue`` gets its 100 here, when the body is
        going to be read (not when a Content-Length over the limit refuses it first)."""
        p, self._pending = self._pending, None
        try:
            # a handler that read part of the body (a proxy whose backend failed mid-upload)
            # leaves its decoder: the rest is counted from where it stopped
            reader = self._body_reader
            if reader is None:
                reader = BodyReader(p.framing, self._body_limit, p.limits)
                if p.expecting:
                    p.stream.sendall(CONTINUE)
            buf = p.buf
            data = bytes(buf)
            buf.clear()
            dl = self._deadlines
            poller = None
            while True:
                if data:
                    _, done = reader.feed(data)
                    if done:
                        buf += reader.leftover
                        if dl is not None:
                            dl.stop()
                        return 0
                if dl is not None and not p.stream.pending():
                    if poller is None:
                        poller = select.poll()
                        poller.register(p.sock.fileno(), select.POLLIN | select.POLLPRI)
                    if not _poll_deadline(poller, dl, self._body_timeout, p.sock.fileno()):
                        raise _BodyDeadline()
                data = p.stream.recv(p.read_size)
                if not data:
                    self._body_failed = True
                    return 400
                if dl is not None:
                    now = time.monotonic()
                    dl.received(len(data), now)
                    if dl.expired(now):
                        raise _BodyDeadline()
        except ProtocolError as e:
            error_log.info("http", L.HTTP_BODY_REFUSED, f"request body refused ({e.status}): {e.reason}",
                           client=rec.remote_ip)
            status = e.status
        except StreamTimeout:
            error_log.info("http", L.HTTP_READ_TIMEOUT, "timeout reading the request body",
                           client=rec.remote_ip)
            status = 408
        except _BodyDeadline:
            error_log.info("reqtimeout", L.REQTIMEOUT_EXPIRED, "Request body read timeout",
                           client=rec.remote_ip)
            status = 408
        except StreamClosed:
            status = 400
        self._body_failed = True
        return status

    def _date(self) -> bytes:
        now = int(time.time())
        if self._date_cache[0] != now:
            self._date_cache = (now, http_date(now).encode())
        return self._date_cache[1]

    # --- one request ------------------------------------------------------------------------
    def _handle_request(self, stream, req: RequestHead, site: Site, tls_state, ssl_info,
                        client_addr, local, slot, client, served: int, start: float) -> bool:
        method = req.method
        target = req.target
        headers = req.headers
        line = req.request_line
        if slot is not None:
            try:
                slot.record_request(line)
            except Exception:
                pass
        host = headers.get("host", "")
        rec = new_record(client_addr[0] if client_addr else "-",
                         client_addr[1] if client_addr else 0, str(local[0]), int(local[1]),
                         line, method, req.protocol or "HTTP/" + req.version, start, headers,
                         host, ssl_info[0] if ssl_info else None,
                         ssl_info[1] if ssl_info else None, served, req.version == "1.0",
                         req.size)
        hostname = _hostname(host)
        vhost = site.select(hostname) if hostname else None
        # Vhost selection, with mod_ssl's SNI rules.
        if tls_state is not None:
            if tls_state.servername is not None:
                if not hostname:
                    error_log.error("ssl", L.SSL_SNI_WITHOUT_HOST, f"Hostname {tls_state.servername!r} provided via "
                                    "SNI, but no hostname provided in HTTP request: 400", client=client)
                    return self._respond_error(stream, tls_state.sni_vhost or site.default, rec, 400,
                                               close=True, client=client)
                sni_v = tls_state.sni_vhost or site.default
                req_v = vhost or site.default
                if hostname and req_v is not sni_v and req_v.ssl != sni_v.ssl:
                    error_log.error("ssl", L.SSL_MISDIRECTED, f"Host {hostname!r} names another vhost than "
                                    f"SNI {tls_state.servername!r}: 421", client=client)
                    return self._respond_error(stream, sni_v, rec, 421, close=False, client=client)
                vhost = req_v
            else:
                vhost = vhost or site.default
                if len(site.vhosts) > 1 and (vhost.ssl.strict_sni or site.default.ssl.strict_sni):
                    error_log.error("ssl", L.SSL_STRICT_SNI, "no SNI from the client and "
                                    "SSLStrictSNIVHostCheck is on: 403", client=client)
                    return self._respond_error(stream, vhost, rec, 403, close=False, client=client)
        else:
            vhost = vhost or site.default
        rec.server_name = vhost.server_name
        rt = self._runtimes[id(vhost)]

        if vhost.limit_request_body != self._body_limit:
            self._body_limit = vhost.limit_request_body
        keep_alive = (vhost.keep_alive and req.keep_alive and not self._force_close and
                      req.version != "0.9" and
                      (slot is None or not _stopping(slot)) and
                      (vhost.max_keep_alive_requests <= 0 or served < vhost.max_keep_alive_requests))
        if method not in KNOWN_METHODS:
            return self._respond_error(stream, vhost, rec, 501, close=not keep_alive, client=client)
        if method == "CONNECT" and not target.startswith(b"/"):
            # an authority-form target: no mod_proxy_connect, the default handler's 405
            return self._respond_error(stream, vhost, rec, 405, close=not keep_alive,
                                       client=client, extra=[(b"Allow", _allow(vhost).encode())])
        memo = self._url_memo            # url_path is pure: memoise it per request target
        parsed = memo.get(target)
        if parsed is None:
            try:
                parsed = url_path(target)
            except PathError as e:
                parsed = e
            if len(memo) >= 1024:
                memo.clear()
            memo[target] = parsed
        if isinstance(parsed, PathError):
            e = parsed
            error_log.info("http", L.HTTP_PATH_FORBIDDEN if e.status == 403 else L.HTTP_BAD_REQUEST if e.status == 400 else L.HTTP_NOT_FOUND,
                           f"{e.reason}: {target.decode('latin-1')}", client=client)
            return self._respond_error(stream, vhost, rec, e.status, close=not keep_alive, client=client)
        path, query = parsed
        rec.url_path, rec.query = path, query.decode("latin-1")
        ca = client_addr or ("-", 0)
        r = Request(method, path, rec.query, headers, req.version, line, ca[0], ca[1],
                    rec.local_ip, rec.local_port, tls_state is not None, vhost,
                    hostname=hostname, unparsed_uri=target.decode("latin-1"), start=start,
                    server=self.cfg, scheme="https" if site.ssl else "http",
                    raw_headers=req.raw_headers)
        rec.env = r.env
        if self._pending is not None:
            r.body = _BodyStream(self, rec)
        r.take_over = lambda: self._take_over(stream)
        c = _Ctx(stream, site, rt, rec, keep_alive, served, client, host)
        r.allowed = lambda fname, is_dir, uri: self._per_dir(c.rt, r, fname, is_dir, uri,
                                                              client)[1] is None
        r.lookup_uri = lambda uri: self._lookup_uri(c, r, uri)
        try:
            return self._pipeline(c, r)
        finally:
            # the closures above hold r: without this the request's objects (~17) would wait
            # for the cyclic collector instead of being freed here, and every request would
            # touch fresh memory
            r.allowed = r.lookup_uri = r.take_over = None

    # --- the phases ---------------------------------------------------------------------------
    def _pipeline(self, c: "_Ctx", r: Request) -> bool:
        """post_read -> (translate -> map -> walk -> access -> fixups -> handler), again for
        each internal redirect a hook asks for (bounded by LimitInternalRecursion)."""
        post_read = c.rt.post_read
        if post_read is None:
            post_read = self._post_read(c.rt)
        if post_read:
            d = hooks.run(post_read, r)
            if r.client_ip != c.rec.remote_ip:          # mod_remoteip: logs see it too (%a)
                c.rec.remote_ip = r.client_ip
            if d is not None:
                return self._decision(c, r, d)
        if r.method == "GET" and r.body is None:
            lane = c.rt.lane
            if lane is _LANE_UNKNOWN:
                lane = self._lane(c.rt)
            if lane is not None:
                got = self._express(c, r, lane)
                if got is not None:
                    return got
        limit = r.vhost.mod(core_keys.LIMIT_RECURSION, (10, 10))[0]
        while True:
            got = self._serve_uri(c, r)
            if got is not _REDIRECT:
                return got
            if r.redirect_count >= limit:
                error_log.error("core", L.CORE_REDIRECT_LIMIT, f"Request exceeded the limit of {limit} "
                                "internal redirects due to probable configuration error. Use "
                                "'LimitInternalRecursion' to increase the limit if necessary.",
                                client=c.client)
                r.internal_redirect = None
                return self._error(c, r, 500)
            nr = self._redirected(c, r)
            if not isinstance(nr, Request):
                return nr
            r = nr
            if post_read:                   # as Apache runs post_read_request again
                d = hooks.run(post_read, r)
                if d is not None:
                    return self._decision(c, r, d)

    def _post_read(self, rt: VHostRuntime) -> list:
        """The vhost's post_read hooks less those that say (hooks.INERT) they do nothing in it."""
        vhost, base = rt.vhost, rt.walker.base
        rt.post_read = [h for h in hooks.POST_READ if not _inert(h, vhost, base)]
        return rt.post_read

    def _lane(self, rt: VHostRuntime):
        """The vhost's lane (hooks.LANES), or None: only when a request no section applies to
        gets a config with no <If>, no SetHandler, no SSLRequireSSL and access granted whatever
        the request, and every translate/header_parser/fixups hook the lane does not replace
        says (hooks.INERT) it does nothing with that config.  Once per vhost and process."""
        lane = None
        vhost, base = rt.vhost, rt.walker.base
        if hooks.LANES and not base.ifs and base.require_ssl is not True and \
                (not base.mods or base.mod(core_keys.HANDLER) in (None, "none")):
            verdict = access.static_verdict(base)
            if verdict is not None and verdict.status == 0:
                phases = (*hooks.TRANSLATE, *hooks.HEADER_PARSER, *hooks.FIXUPS)
                for make in hooks.LANES:
                    got = make(vhost, base)
                    if got is not None and all(
                            h in got.replaces or _inert(h, vhost, base) for h in phases):
                        lane = got
                        break
        rt.lane = lane
        rt.lane_wire = lane is not None and all(
            h in hooks.OBSERVERS or _inert(h, vhost, base) for _, h in hooks.OUTPUT)
        rt.observers = tuple(h for _, h in hooks.OUTPUT if h in hooks.OBSERVERS)
        return lane

    def _express(self, c: "_Ctx", r: Request, lane):
        """``r`` through its vhost's lane when the lane takes it and no <Location> applies to
        its URL (the walk would give it the config the lane was checked against); None: the
        phases run as if the lane had not looked."""
        plan = lane.route(r)
        if plan is None:
            return None
        walker = c.rt.walker
        if not walker.locations or walker.lookup(r.filename, False, r.uri).conf is walker.base:
            r.conf = walker.base
            d = lane.serve(r, plan)
            if d is not None:
                return self._decision(c, r, d)
        r.filename, r.handler, r.conf = "", None, None
        return None

    def _redirected(self, c: "_Ctx", r: Request):
        """The request an internal redirect makes (Apache's internal_internal_redirect): the
        new URI, the environment with REDIRECT_ names, REDIRECT_URL and REDIRECT_STATUS."""
        new = r.internal_redirect or "/"
        r.internal_redirect = None
        p, qmark, q = new.partition("?")
        try:
            path, _ = url_path(p.encode("latin-1", "replace"))
        except PathError as e:
            return self._error(c, r, e.status)
        env = {"REDIRECT_" + k: v for k, v in r.env.items()}
        env["REDIRECT_URL"] = r.uri
        env["REDIRECT_STATUS"] = "200"
        if r.query:
            env["REDIRECT_QUERY_STRING"] = r.query
        nr = dataclasses.replace(r, uri=path, query=q if qmark else "", filename="",
                                 path_info="", is_dir=False, conf=None, env=env,
                                 notes=dict(r.notes), handler=None, content_type=None,
                                 content_language=(), content_encoding=None, charset=None,
                                 headers_out=[], err_headers_out=list(r.err_headers_out),
                                 internal_redirect=None, redirect_count=r.redirect_count + 1)
        c.rec.env = nr.env
        return nr

    def _serve_uri(self, c: "_Ctx", r: Request):
        client = c.client
        mapped = False
        if hooks.TRANSLATE:
            d = hooks.run_first(hooks.TRANSLATE, r)
            if d is not None:
                if r.internal_redirect is not None:
                    return _REDIRECT
                if isinstance(d, int) and d == OK:
                    mapped = True
                else:
                    return self._decision(c, r, d)
        if r.method == "TRACE":         # core's map_to_storage hook: before any access check
            return self._trace(c, r)
        if mapped:
            root, fpath = "/", r.filename
        else:
            d = self._alias_redirects(c, r)
            if d is not None:
                return d
            try:
                root, fpath = self._map(r)
            except PathError as e:
                error_log.info("http", L.HTTP_NOT_FOUND, f"{e.reason}: {r.uri}", client=client)
                return self._error(c, r, e.status)
            r.filename = fpath
        if fpath.startswith("proxy:"):
            wpath, is_dir, st = fpath, False, None
        else:
            wpath, is_dir, st = _locate(fpath)
        r.is_dir = is_dir
        conf, denied = self._per_dir(c.rt, r, wpath, is_dir, r.uri, client, main=True)
        r.conf = conf
        if conf.limit_request_body is not UNSET:
            self._body_limit = conf.limit_request_body
        if denied is not None:
            return self._deny(c, r, denied, conf)
        if hooks.TYPE_CHECKER and not is_dir and not fpath.startswith("proxy:"):
            self._type_check(c, r, fpath, conf)
        if hooks.FIXUPS:
            d = hooks.run(hooks.FIXUPS, r)
            if r.internal_redirect is not None:
                return _REDIRECT
            if d is not None:
                return self._decision(c, r, d)
        sethandler = conf.mod(core_keys.HANDLER)   # SetHandler wins over AddHandler (core)
        name = sethandler if sethandler and sethandler != "none" else r.handler
        if name and name != "none":
            h = hooks.HANDLERS.get(name)
            if h is None:
                # a SetHandler of a page httpd-py does not build: nothing is served
                return self._error(c, r, 404)
            d = h(r)
            if d == TAKEN:
                self._force_close = True
                return False
            if r.internal_redirect is not None:
                return _REDIRECT
            return self._decision(c, r, d)
        return self._default_handler(c, r, root, fpath, is_dir, conf, st)

    def _lookup_uri(self, c: "_Ctx", r: Request, uri: str) -> "SubRequest":
        """A sub-request for URI (ap_sub_req_lookup_uri): Alias/DocumentRoot, the walk and the
        access checks, and the file's type; nothing is sent."""
        p, _, _ = uri.partition("?")
        try:
            path, _ = url_path(p.encode("utf-8", "surrogateescape"))
            sub = dataclasses.replace(r, uri=path, env=dict(r.env), content_type=None,
                                      content_encoding=None, content_language=(), charset=None,
                                      handler=None)
            _, fpath = self._map(sub)
        except PathError as e:
            return SubRequest(e.status, "", False, None, None)
        wpath, is_dir, _ = _locate(fpath)
        conf, denied = self._per_dir(c.rt, sub, wpath, is_dir, path, c.client)
        if denied is not None:
            return SubRequest(denied.status, fpath, False, None, None)
        if not os.path.isfile(fpath):           # no handler runs: 200 as Apache's lookup
            return SubRequest(200, fpath, False, None, None)
        sub.conf = conf
        self._type_check(c, sub, fpath, conf)
        return SubRequest(200, fpath, True, sub.content_type, sub.content_encoding)

    def _map(self, r: Request) -> tuple[str, str]:
        """Alias, AliasMatch, then DocumentRoot (mod_alias's translate, then core's)."""
        v = r.vhost
        am = v.mod(core_keys.ALIAS_MATCH) if v.mods else None
        if am:
            for spec in am:
                m = spec.regex.search(r.uri)
                if m is not None:
                    target = core_http.substitute(spec.target, m)
                    return "/", target
        return map_to_root(r.uri, v.document_root, v.aliases)

    def _alias_redirects(self, c: "_Ctx", r: Request):
        """Redirect* and RedirectMatch (mod_alias): an absolute Location, as Apache builds it
        from a URL-path target."""
        v = r.vhost
        loc = status = None
        if v.redirects:
            redir = find_redirect(r.uri, r.query.encode("latin-1"), v.redirects)
            if redir is not None:
                status, loc = redir.status, redir.location
        if status is None and v.mods:
            rm = v.mod(core_keys.REDIRECT_MATCH)
            for spec in rm or ():
                m = spec.regex.search(r.uri)
                if m is None:
                    continue
                status = spec.status
                if spec.target is not None and status != 410:
                    loc = core_http.substitute(spec.target, m)
                    if r.query and "?" not in loc:
                        loc += "?" + r.query
                break
        if status is None:
            return None
        extra = []
        if loc:
            if loc.startswith("/"):
                loc = self._self_url(c, r, loc)
            extra = [("Location", loc)]
        return self._error(c, r, status, extra=extra, location=loc)

    def _self_url(self, c: "_Ctx", r: Request, path: str) -> str:
        """An absolute URL on this server (ap_construct_url): the Host header's name unless
        UseCanonicalName On, the port when it is not the scheme's default."""
        conf = r.conf if r.conf is not None else r.vhost.dir
        canonical = conf.mod(core_keys.CANONICAL_NAME, "off") if conf is not None else "off"
        if canonical != "on" and not c.host:
            return self._absolute(c.site, r.vhost, "", path)
        name, port = self._name_port(c, r.vhost, canonical)
        default = 443 if c.site.ssl else 80
        return f"{'https' if c.site.ssl else 'http'}://{name}{'' if port == default else f':{port}'}{path}"

    def _type_check(self, c: "_Ctx", r: Request, path: str, conf) -> None:
        rt = c.rt
        if conf.add_types is not UNSET and conf.add_types != r.vhost.add_types:
            rt = self._with_types(rt, conf.add_types)
        r.content_type = rt.mime.lookup(path)
        saved = r.filename
        r.filename = path
        for h in hooks.TYPE_CHECKER:
            h(r)
        r.filename = saved if saved else path

    def _trace(self, c: "_Ctx", r: Request) -> bool:
        """TRACE as Apache's core: echoed as message/http (TraceEnable On, the default), 405
        when Off, a body refused (413) unless extended.  Before access checks, as Apache."""
        how = r.vhost.mod(core_keys.TRACE_ENABLE, "on")
        if how == "off":
            error_log.error("http", L.HTTP_TRACE_DENIED, "TRACE denied by server configuration",
                            client=c.client)
            return self._error(c, r, 405, extra=[("Allow", "")])
        if r.body is not None and how != "extended":
            error_log.error("http", L.HTTP_TRACE_BODY, "TRACE with a request body is not allowed",
                            client=c.client)
            return self._error(c, r, 413)
        lines = [r.request_line]
        for n, v in r.raw_headers:
            lines.append(f"{n.decode('latin-1')}: {v.decode('latin-1')}")
        body = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        if how == "extended" and r.body is not None:
            body += r.body.read_all()
        return self._finish(c, r, Response(200, [], body, content_type="message/http"))

    def _default_handler(self, c: "_Ctx", r: Request, root: str, fpath: str, is_dir: bool,
                         conf, st: os.stat_result | None = None) -> bool:
        """Apache's default handler: OPTIONS answered, GET/HEAD/POST get the file (a directory:
        its DirectoryIndex, a listing, or 403/404), every other method 405."""
        method, client, vhost, rt = r.method, c.client, r.vhost, c.rt
        if fpath.startswith("proxy:"):
            return self._error(c, r, 404)
        if method == "OPTIONS":
            return self._finish(c, r, Response(200, [("Allow", _allow(r.vhost))], b""))
        if method not in ("GET", "HEAD", "POST"):
            return self._error(c, r, 405, extra=[("Allow", _allow(r.vhost))])
        opts = effective_options(conf)
        follow, owner = "followsymlinks" in opts, "symlinksifownermatch" in opts
        path = r.uri
        try:
            if is_dir:
                if not path.endswith("/"):
                    loc = self._self_url(c, r, quote_path(path + "/")) + ("?" + r.query if r.query else "")
                    return self._error(c, r, 301, extra=[("Location", loc)], location=loc)
                res = resolve_file(fpath, root, follow_symlinks=follow, if_owner_match=owner,
                                   root_real="/")
                index = conf.directory_index if conf.directory_index is not UNSET else vhost.directory_index
                failed = None
                for name in index:
                    cand = os.path.join(fpath, name)
                    if hooks.TRANSLATE:
                        cand = self._index_translate(r, path + name, cand)
                        if cand is None:
                            continue
                    cconf, cdenied = self._per_dir(rt, r, cand, False, path + name, client)
                    if cdenied is not None:
                        if cdenied.status == 401 and len(index) == 1:
                            return self._deny(c, r, cdenied, cconf)
                        failed = (cdenied, cconf)
                        continue
                    copts = effective_options(cconf)
                    try:
                        cres = resolve_file(cand, root, follow_symlinks="followsymlinks" in copts,
                                            if_owner_match="symlinksifownermatch" in copts,
                                            root_real="/", open_file=True,
                                            open_files=self._open_files)
                    except PathError:
                        continue
                    if not cres.is_dir:
                        res, conf = cres, cconf
                        r.conf, r.filename, r.is_dir = cconf, cres.path, False
                        c.rec.url_path = path + name    # %U: the index's URI, as Apache
                        if hooks.TYPE_CHECKER:
                            self._type_check(c, r, cres.path, cconf)
                        break
                else:
                    if failed is not None:
                        return self._deny(c, r, failed[0], failed[1])
                    if "autoindex" in self._loaded and method == "POST":
                        # mod_autoindex declines all but GET; the default handler: 404
                        error_log.error("http", L.HTTP_DIRECTORY_REFUSED, f"Attempt to serve directory: "
                                        f"{res.path}/", client=client)
                        return self._error(c, r, 404)
                    if "autoindex" in self._loaded:
                        if "indexes" in opts and hooks.DIRECTORY_LISTING:
                            for h in hooks.DIRECTORY_LISTING:
                                d = h(r, res.path)
                                if d is not None:
                                    return self._decision(c, r, d)
                        error_log.error("http", L.HTTP_DIRECTORY_REFUSED, f"Cannot serve directory {res.path}/: No "
                                        f"matching DirectoryIndex found, and server-generated directory "
                                        f"index forbidden by Options directive", client=client)
                        return self._error(c, r, 403)
                    error_log.error("http", L.HTTP_DIRECTORY_REFUSED, f"Attempt to serve directory: {res.path}/",
                                    client=client)
                    return self._error(c, r, 404)
            else:
                try:
                    # st: the walk's stat of fpath (_locate), this request's, reused
                    res = resolve_file(fpath, root, follow_symlinks=follow, if_owner_match=owner,
                                       root_real="/", open_file=True, open_files=self._open_files,
                                       st0=st)
                except PathError as e:
                    if e.status != 404 or not hooks.NEGOTIATE or "multiviews" not in opts:
                        raise
                    got = self._negotiate(c, r, root, fpath)
                    if got is None:
                        raise
                    if not isinstance(got, tuple):
                        return got
                    res, conf = got
        except PathError as e:
            if e.status == 404:
                error_log.info("http", L.HTTP_NOT_FOUND, f"File does not exist: {fpath}", client=client)
            else:
                error_log.error("http", L.HTTP_PATH_FORBIDDEN, f"{e.reason}: {fpath}", client=client)
            return self._error(c, r, e.status)
        if r.content_type is None and not hooks.TYPE_CHECKER:
            rt2 = rt
            if conf.add_types is not UNSET and conf.add_types != vhost.add_types:
                rt2 = self._with_types(rt, conf.add_types)
            r.content_type = rt2.mime.lookup(res.path)
        elif r.content_type is None and is_dir:
            r.content_type = c.rt.mime.lookup(res.path)
        return self._serve_file(c, r, res, conf)

    def _index_translate(self, r: Request, uri: str, cand: str) -> str | None:
        """A DirectoryIndex name as mod_dir looks it up, a sub-request: the translate hooks
        (mod_rewrite's server rules) may map it elsewhere; one that answers itself (a redirect,
        a status) makes the candidate fail (None)."""
        sub = dataclasses.replace(r, uri=uri, filename="", env=dict(r.env),
                                  notes=dict(r.notes), internal_redirect=None, handler=None)
        d = hooks.run_first(hooks.TRANSLATE, sub)
        if d is None:
            if sub.uri == uri:
                return cand
            try:
                return self._map(sub)[1]
            except PathError:
                return None
        if isinstance(d, int) and d == OK and sub.filename and sub.internal_redirect is None \
                and not sub.filename.startswith("proxy:"):
            return sub.filename
        return None

    def _negotiate(self, c: "_Ctx", r: Request, root: str, fpath: str):
        """mod_negotiation's MultiViews: a hook picks a variant of a missing file; it is walked
        and access-checked like the file.  None: no variant (404 stands); a bool: answered."""
        directory, _, name = fpath.rpartition("/")
        for h in hooks.NEGOTIATE:
            got = h(r, directory or "/", name)
            if got is None:
                continue
            if not isinstance(got, str):
                return self._decision(c, r, got)
            vconf, vdenied = self._per_dir(c.rt, r, got, False, r.uri, c.client)
            if vdenied is not None:
                return self._deny(c, r, vdenied, vconf)
            vopts = effective_options(vconf)
            res = resolve_file(got, root, follow_symlinks="followsymlinks" in vopts,
                               if_owner_match="symlinksifownermatch" in vopts, root_real="/",
                               open_file=True, open_files=self._open_files)
            r.conf, r.filename = vconf, res.path
            self._type_check(c, r, res.path, vconf)
            return res, vconf
        return None

    # --- per-directory configuration and access ---------------------------------------------
    def _facts(self, r: Request, filename: str) -> RequestFacts:
        return RequestFacts(method=r.method, remote_ip=r.client_ip if r.client_ip != "-" else "",
                            local_ip=r.local_ip, local_port=r.local_port,
                            headers=r.headers, uri=r.uri, query=r.query,
                            https=r.https, protocol="HTTP/" + r.version,
                            request_line=r.request_line, filename=filename,
                            document_root=r.vhost.document_root,
                            server_name=r.vhost.server_name)

    def _per_dir(self, rt: VHostRuntime, r: Request, filename: str, is_dir: bool, uri: str,
                 client: str, main: bool = False):
        """(merged per-directory config, None when access is allowed or the Outcome).  For the
        request itself (``main``) the header_parser hooks run between the walk and access."""
        walked = rt.walker.lookup(filename, is_dir, uri)
        if walked.error is not None:
            error_log.alert("http", L.HTTP_HTACCESS_FAILED, str(walked.error), client=client)
            return walked.conf, access.Outcome(500)
        conf = walked.conf
        facts = None
        if conf.ifs or walked.env or r.env:
            facts = self._facts(r, filename)
            facts.env_vars = {**dict(walked.env), **r.env} if r.env else dict(walked.env)
            if conf.ifs:
                conf = rt.walker.apply_ifs(conf, facts)
        if main and hooks.HEADER_PARSER:
            r.conf = conf
            if walked.env:
                for k, v in walked.env:
                    r.env.setdefault(k, v)
            d = hooks.run(hooks.HEADER_PARSER, r)
            if isinstance(d, int) and d >= 100:
                return conf, access.Outcome(d)
            if r.env:
                if facts is None:
                    facts = self._facts(r, filename)
                facts.env_vars = {**dict(walked.env), **r.env}
        if conf.require_ssl is True and not r.https:
            error_log.error("ssl", L.SSL_REQUIRE_SSL, f"access to {filename} failed, reason: SSL "
                            f"connection required", client=client)
            return conf, access.Outcome(403)
        memo = self._verdicts.get(id(conf))
        if memo is None or memo[0] is not conf:
            memo = (conf, access.static_verdict(conf))
            if len(self._verdicts) >= 4096:
                self._verdicts.clear()
            self._verdicts[id(conf)] = memo
        out = memo[1]
        if out is None:             # depends on the request: run the access phase
            out = access.check(conf, facts or self._facts(r, filename),
                               r.headers.get("authorization"))
        if out.status == 0:
            return conf, None
        if out.msgid:
            (error_log.info if out.status == 401 and out.msgid == L.ACCESS_NO_CREDENTIALS else error_log.error)(
                "http", out.msgid, out.text or f"client denied by server configuration: "
                f"{filename}", client=client)
        return conf, out

    def _deny(self, c: "_Ctx", r: Request, out, conf) -> bool:
        return self._error(c, r, out.status, conf=conf,
                           extra=[(n.decode("latin-1") if isinstance(n, bytes) else n,
                                   v.decode("latin-1") if isinstance(v, bytes) else v)
                                  for n, v in out.headers])

    def _decision(self, c: "_Ctx", r: Request, d) -> bool:
        """Send what a hook decided: a Response, or an HTTP status (its error page)."""
        if isinstance(d, Response):
            if d.body is None:          # "the pipeline's own page for this status"
                return self._error(c, r, d.status, extra=list(d.headers),
                                   location=d.header("Location"))
            return self._finish(c, r, d)
        if isinstance(d, int) and not isinstance(d, bool) and d >= 100:
            return self._error(c, r, d)
        raise RuntimeError(f"a hook returned {d!r} (expected None, OK, a status or a Response)")

    def _with_types(self, rt: VHostRuntime, add_types: tuple) -> VHostRuntime:
        key = (id(rt), add_types)
        got = self._typed_runtimes.get(key)
        if got is None:
            got = dataclasses.replace(rt, mime=MimeTypes(rt.vhost.types_config, add_types))
            if len(self._typed_runtimes) < 256:
                self._typed_runtimes[key] = got
        return got

    def _absolute(self, site: Site, vhost: VHost, host: str, path: str) -> str:
        scheme = "https" if site.ssl else "http"
        if not host:
            host = vhost.server_name or site.ip
            default_port = 443 if site.ssl else 80
            if site.port != default_port:
                host = f"{host}:{site.port}"
        return f"{scheme}://{host}{path}"

    def _serve_file(self, c: "_Ctx", r: Request, res, conf) -> bool:
        fd, st, path = res.fd, res.st, res.path
        method, headers = r.method, r.headers
        try:
            size = st.st_size
            mtime = min(st.st_mtime, time.time())
            spec = conf.mod(core_keys.FILE_ETAG) if conf.mods else None
            if isinstance(spec, tuple):         # +/- words, or () (no setting)
                spec = core_http.resolve_etag(spec)
            if spec is None or spec == _DEFAULT_ETAG:
                etag = make_etag(size, st.st_mtime_ns)
            else:
                etag = _etag(spec, st)
            validators = [("Last-Modified", http_date(mtime))]
            if etag is not None:
                validators.append(("ETag", etag))
            cond = (evaluate_conditionals(method, headers, etag or "", mtime)
                    if not headers.keys().isdisjoint(_CONDITIONAL) else None)
            if cond == 304:
                return self._finish(c, r, Response(304, validators, b""))
            if cond == 412:
                return self._error(c, r, 412)
            hdrs = validators
            hdrs.append(("Accept-Ranges", "bytes"))
            ctype = r.content_type
            if ctype:
                if r.charset and "charset=" not in ctype.lower():
                    ctype = f"{ctype}; charset={r.charset}"
                hdrs.append(("Content-Type", self._default_charset(r, ctype)))
            if r.content_language:
                hdrs.append(("Content-Language", ",".join(r.content_language)))   # as Apache
            if r.content_encoding:
                hdrs.append(("Content-Encoding", r.content_encoding))
            status, first, length = 200, 0, size
            rng = parse_range(headers["range"], size) if method == "GET" and "range" in headers else None
            if rng is not None and if_range_allows(headers.get("if-range"), etag or "", mtime):
                if rng == UNSATISFIABLE:
                    return self._error(c, r, 416, extra=[("Content-Range", f"bytes */{size}")])
                first, last = rng
                status, length = 206, last - first + 1
                hdrs.append(("Content-Range", f"bytes {first}-{last}/{size}"))
            return self._finish(c, r, Response(status, hdrs, FileBody(fd, first, length, path)))
        finally:
            if not res.kept:
                os.close(fd)

    def _default_charset(self, r: Request, ctype: str) -> str:
        """AddDefaultCharset: text/plain and text/html without a charset get one."""
        conf = r.conf
        if conf is None or not conf.mods:
            return ctype
        cs = conf.mod(core_keys.DEFAULT_CHARSET)
        if cs and "charset=" not in ctype.lower():
            base = ctype.split(";", 1)[0].strip().lower()
            if base in ("text/plain", "text/html"):
                return f"{ctype}; charset={cs}"
        return ctype

    def _finish(self, c: "_Ctx", r: Request | None, resp: Response) -> bool:
        """Send a response: the request's headers_out/err_headers_out, the output hooks
        (mod_deflate, mod_headers), then head and body (bytes, a file, or a stream)."""
        status = resp.status
        if r is not None:
            es = r.notes.get("_error_status") if r.notes else None
            if es is not None and status == 200:        # an ErrorDocument's own response
                resp.status = status = es
            if r.err_headers_out:
                resp.headers = [*resp.headers, *r.err_headers_out]
                resp.wire = None
            if r.headers_out and status < 400 and not resp.error_page:
                resp.headers = [*resp.headers, *r.headers_out]
                resp.wire = None
            if hooks.OUTPUT:
                if resp.wire is not None and c.rt.lane_wire:
                    # a lane's answer: the other output hooks leave it as it is (hooks.INERT)
                    for h in c.rt.observers:
                        resp = h(r, resp)
                else:
                    resp.wire = None            # an output hook may change it
                    resp = hooks.filter_output(r, resp)
                status = resp.status
        body = resp.body
        if resp.wire is not None and type(body) is bytes and c.rec.method != "HEAD" and \
                status >= 200 and status != 204 and status != 304:
            # a lane's answer: bytes headers already checked and serialised (hooks "Lanes"),
            # and a lane vhost's output hooks leave responses as they are
            return self._send(c.stream, c.rt, c.rec, status, resp.headers, body,
                              c.keep_alive and status not in DROPS_CONNECTION
                              and not self._force_close, c.served, wire=resp.wire)
        hdrs = []                       # one pass: bytes, and which names need a look
        vary = has_type = False
        for n, v in resp.headers:
            if isinstance(n, str):
                n = n.encode("latin-1")
            if isinstance(v, str):
                v = v.encode("latin-1")
            ln = len(n)
            if ln == 4 or ln == 12:
                low = n.lower()
                if low == b"vary":
                    vary = True
                elif low == b"content-type":
                    has_type = True
            hdrs.append((n, v))
        if vary:
            hdrs = _fixup_vary(hdrs)
        if resp.content_type is not None and not has_type:
            hdrs.append((b"Content-Type", resp.content_type.encode("latin-1")))
        keep = c.keep_alive and status not in DROPS_CONNECTION and not self._force_close
        body = resp.body
        head_only = c.rec.method == "HEAD"
        no_length = status == 304 or status == 204 or status < 200
        if isinstance(body, FileBody):
            if head_only or no_length:
                if not no_length:
                    hdrs.append((b"Content-Length", b"%d" % body.length))
                return self._send(c.stream, c.rt, c.rec, status, hdrs, b"", keep, c.served,
                                  no_length=True)
            if body.length <= SMALL_FILE:
                return self._send(c.stream, c.rt, c.rec, status, hdrs,
                                  os.pread(body.fd, body.length, body.offset), keep, c.served)
            return self._send_large(c.stream, c.rt, c.rec, status, hdrs, body.fd, body.offset,
                                    body.length, keep, c.served, c.client)
        if isinstance(body, (bytes, bytearray, memoryview)):
            if no_length:
                return self._send(c.stream, c.rt, c.rec, status, hdrs, b"", keep, c.served,
                                  no_length=True)
            if head_only:
                if not resp.error_page and not any(n.lower() == b"content-length" for n, _ in hdrs):
                    hdrs.append((b"Content-Length", b"%d" % len(body)))
                return self._send(c.stream, c.rt, c.rec, status, hdrs, b"", keep, c.served,
                                  no_length=True)
            return self._send(c.stream, c.rt, c.rec, status, hdrs, bytes(body), keep, c.served,
                              reason_phrase=resp.reason)
        return self._send_stream(c, status, hdrs, body, keep, head_only or no_length)

    def _send_stream(self, c: "_Ctx", status: int, hdrs: list, body, keep: bool,
                     no_body: bool) -> bool:
        """A streamed body (an iterator of bytes): chunked to HTTP/1.1 clients unless the
        handler gave a Content-Length; to HTTP/1.0 clients the connection's end ends it."""
        rec = c.rec
        if self._pending is not None:
            failed = self._read_body(rec)
            if failed:
                _close_iter(body)
                return self._send(c.stream, c.rt, rec, failed, [(b"Content-Type", b"text/html; charset=iso-8859-1")],
                                  error_body(failed, method=rec.method), False, c.served)
        has_length = any(n.lower() == b"content-length" for n, _ in hdrs)
        chunked = not has_length and not no_body and rec.protocol == "HTTP/1.1"
        if not has_length and not chunked and not no_body:
            keep = False
        out = self._response_headers(c.rt, rec, hdrs, keep, c.served)
        if chunked:
            out.append((b"Transfer-Encoding", b"chunked"))
        head = response_head(status, reason(status), out)
        rec.head_bytes = len(head)
        self._response_started = True
        sent, ok = 0, True
        try:
            c.stream.sendall(head)
            if no_body:
                _close_iter(body)
            else:
                for piece in body:
                    if not piece:
                        continue
                    c.stream.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    sent += len(piece)
                if chunked:
                    c.stream.sendall(b"0\r\n\r\n")
        except (StreamTimeout, StreamClosed) as e:
            error_log.info("http", L.HTTP_CLIENT_GONE, f"client went away after {sent} bytes: {e}",
                           client=c.client)
            _close_iter(body)
            ok = False
        except Exception as e:         # the producer failed mid-body: the client must see it
            error_log.error("http", L.HTTP_BODY_FAILED, f"response body failed after {sent} bytes: "
                            f"{type(e).__name__}: {e}", client=c.client)
            _close_iter(body)
            ok = False
        rec.status, rec.bytes_sent, rec.keepalive = status, sent, keep and ok
        if c.rt.logs:
            self._log(c.rt, rec, out)
        return ok and keep

    def _take_over(self, stream):
        """A handler takes the connection (protocol upgrade): the stream, with the bytes
        already read after the request head put back in front."""
        self._force_close = True
        self._response_started = True
        block = getattr(stream, "block", None)
        if block is not None:
            block()                 # the handler gets a blocking stream, as on the blocking path
        return stream

    def _response_headers(self, rt: VHostRuntime, rec, hdrs, keep_alive: bool, served: int) -> list:
        now = int(time.time())
        if self._date_cache[0] != now:
            self._date_cache = (now, http_date(now).encode())
        out = [(b"Date", self._date_cache[1]), (b"Server", self._server_header)]
        if hdrs and hdrs[0][0] in _ORIGIN_HEAD:     # a proxied response's own Server / Date
            names = {n.lower() for n, _ in hdrs}
            out = [(n, v) for n, v in out if n.lower() not in names]
        out.extend(hdrs)
        out.extend(self._connection_fields(rt, rec, keep_alive, served))
        return out

    def _connection_fields(self, rt: VHostRuntime, rec, keep_alive: bool, served: int) -> list:
        """Keep-Alive (and Connection for HTTP/1.0), or Connection: close."""
        v = rt.vhost
        out = []
        if keep_alive:
            remaining = v.max_keep_alive_requests - served if v.max_keep_alive_requests > 0 else 100
            key = (id(v), remaining)
            ka = self._keepalive_hdr.get(key)
            if ka is None:
                ka = b"timeout=%s, max=%d" % (_num(v.keep_alive_timeout).encode(), remaining)
                if len(self._keepalive_hdr) < 4096:
                    self._keepalive_hdr[key] = ka
            out.append((b"Keep-Alive", ka))
            if rec.http10:
                out.append((b"Connection", b"Keep-Alive"))
        else:
            out.append((b"Connection", b"close"))
        return out

    def _wire_head(self, rt: VHostRuntime, rec, status: int, wire: tuple, length: int,
                   keep_alive: bool, served: int) -> bytes:
        """The head ``response_head(status, ..., _response_headers(...) + Content-Length)``
        makes, from a lane's serialised lines (``Response.wire``)."""
        has, lines = wire
        first = _STATUS_LINES.get(status)
        if first is None:
            first = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "Unknown").encode("latin-1"))
        if has != 3:                    # ours where the backend sent none (_response_headers)
            first += (b"" if has & 1 else b"Date: %s\r\n" % self._date()) + \
                (b"" if has & 2 else b"Server: %s\r\n" % self._server_header)
        v = rt.vhost
        key = (id(v), keep_alive, rec.http10,
               v.max_keep_alive_requests - served if v.max_keep_alive_requests > 0 else 100)
        tail = self._wire_tails.get(key)
        if tail is None:
            tail = b"".join(b"%s: %s\r\n" % nv
                            for nv in self._connection_fields(rt, rec, keep_alive, served))
            if len(self._wire_tails) < 4096:
                self._wire_tails[key] = tail
        return b"%s%s%sContent-Length: %d\r\n\r\n" % (first, lines, tail, length)

    def _send(self, stream, rt: VHostRuntime, rec, status: int, hdrs, body: bytes,
              keep_alive: bool, served: int, no_length: bool = False,
              reason_phrase: str | None = None, wire: tuple | None = None) -> bool:
        if self._pending is not None:
            failed = self._read_body(rec)
            if failed:
                status, keep_alive, no_length, reason_phrase = failed, False, False, None
                hdrs = [(b"Content-Type", b"text/html; charset=iso-8859-1")]
                body = error_body(failed, method=rec.method)
        if rec.protocol == "HTTP/0.9":
            # HTTP/0.9: the body alone, then close (Apache's Allow0.9)
            self._response_started = True
            try:
                stream.sendall(body)
            except (StreamTimeout, StreamClosed):
                pass
            rec.status, rec.bytes_sent, rec.keepalive = status, len(body), False
            if rt.logs:
                self._log(rt, rec, [])
            return False
        if wire is None:
            out = self._response_headers(rt, rec, hdrs, keep_alive, served)
            if not no_length:
                out.append((b"Content-Length", b"%d" % len(body)))
            data = response_head(status, reason_phrase or _REASONS.get(status, "Unknown"), out)
        else:
            out = None
            data = self._wire_head(rt, rec, status, wire, len(body), keep_alive, served)
        rec.head_bytes = len(data)
        self._response_started = True
        if body and rec.method != "HEAD":
            data += body
        ok = True
        try:
            stream.sendall(data)
        except (StreamTimeout, StreamClosed):
            ok = False
        rec.status = status
        rec.bytes_sent = len(body) if (ok and rec.method != "HEAD") else 0
        rec.keepalive = keep_alive
        if rt.logs:
            if out is None:
                out = self._response_headers(rt, rec, hdrs, keep_alive, served)
                out.append((b"Content-Length", b"%d" % len(body)))
            self._log(rt, rec, out)
        return ok and keep_alive

    def _send_large(self, stream, rt, rec, status, hdrs, fd, first, length, keep_alive, served,
                    client) -> bool:
        if self._pending is not None or rec.protocol == "HTTP/0.9":
            failed = self._read_body(rec) if self._pending is not None else 0
            if failed or rec.protocol == "HTTP/0.9":
                return self._send(stream, rt, rec, status, hdrs,
                                  b"" if failed else os.pread(fd, length, first), keep_alive, served)
        out = self._response_headers(rt, rec, hdrs, keep_alive, served)
        out.append((b"Content-Length", b"%d" % length))
        sent = 0
        ok = True
        try:
            head = response_head(status, reason(status), out)
            rec.head_bytes = len(head)
            self._response_started = True
            stream.sendall(head)
            off = first
            while sent < length:
                chunk = os.pread(fd, min(CHUNK, length - sent), off)
                if not chunk:
                    raise StreamClosed("file shrank while being sent")
                stream.sendall(chunk)
                sent += len(chunk)
                off += len(chunk)
        except (StreamTimeout, StreamClosed) as e:
            error_log.info("http", L.HTTP_CLIENT_GONE, f"client went away after {sent} of {length} bytes: {e}",
                           client=client)
            ok = False
        rec.status, rec.bytes_sent, rec.keepalive = status, sent, keep_alive
        self._log(rt, rec, out)
        return ok and keep_alive

    def _error_page(self, rt: VHostRuntime, status: int, location: str | None, conf, method: str,
                    client: str, signature: str = "", variants: str = ""):
        """(status, headers, body, content type) of an error response: ErrorDocument (local
        file, external URL -> 302, or text) or the built-in page with the ServerSignature."""
        hdrs: list = []
        body = error_body(status, location, method=method, signature=signature,
                          variants=variants, admin=rt.vhost.server_admin) if status != 304 else b""
        ctype = "text/html; charset=iso-8859-1"
        docs = rt.error_docs
        if conf is not None and conf.error_documents is not UNSET:
            docs = dict(conf.error_documents)
        doc = docs.get(status) if status >= 400 else None
        if doc:
            if doc.startswith(("http://", "https://")):
                status = 302
                hdrs = [("Location", doc)]
                body = error_body(302, doc, signature=signature)
            elif doc.startswith("/"):
                got = self._error_document(rt, doc, client)
                if got is not None:
                    body, ctype = got[0], got[1].decode("latin-1")
            else:
                body = (doc[1:] if doc.startswith('"') else doc).encode("utf-8", "replace")
                ctype = "text/html"
        return status, hdrs, body, ctype

    def _signature(self, c: "_Ctx", r: Request | None, vhost: VHost, conf) -> str:
        """ServerSignature's footer line (core's ap_psignature), "" when Off."""
        base = conf if conf is not None else vhost.dir
        how = base.mod(core_keys.SERVER_SIGNATURE, "off") if base is not None and base.mods else "off"
        if how == "off":
            return ""
        name, port = self._name_port(c, vhost, base.mod(core_keys.CANONICAL_NAME, "off"))
        who = _html_escape(name)
        if how == "email" and vhost.server_admin:
            who = f'<a href="mailto:{_html_escape(vhost.server_admin)}">{who}</a>'
        return f"<address>{self._server_token} Server at {who} Port {port}</address>\n"

    def _name_port(self, c: "_Ctx", vhost: VHost, canonical: str) -> tuple[str, int]:
        """The server name and port for self-referential URLs (ap_get_server_name_for_url /
        ap_get_server_port): the Host header's (port: its own, else the scheme's default) with
        UseCanonicalName Off, ServerName's with On."""
        default = 443 if c.site is not None and c.site.ssl else 80
        if canonical != "on" and c.host:
            host = c.host
            if host.startswith("["):
                name, _, rest = host[1:].partition("]")
                name = f"[{name}]"
                port = rest[1:] if rest.startswith(":") else ""
            else:
                name, _, port = host.partition(":")
            return name, int(port) if port.isdigit() else default
        name = vhost.server_name or (c.site.ip if c.site is not None else "localhost")
        return name, vhost.mod(core_keys.SERVER_NAME_PORT) or default

    def _error(self, c: "_Ctx", r: Request, status: int, *, conf=None, extra=(),
               location: str | None = None) -> bool:
        """An error (or redirect) response for a request in the pipeline: the error page, the
        request's err_headers_out, the output hooks."""
        conf = conf if conf is not None else r.conf
        if status >= 400 and "_error_status" not in r.notes:
            doc = self._local_error_document(c.rt, conf, status)
            if doc is not None:
                got = self._error_redirect(c, r, status, doc, extra)
                if got is not None:
                    return got
        sig = self._signature(c, r, r.vhost, conf)
        variants = r.notes.get("variant-list", "") if status in (300, 406) and r.notes else ""
        status, hdrs, body, ctype = self._error_page(c.rt if r.vhost is c.rt.vhost else
                                                     self.runtime(r.vhost), status, location,
                                                     conf, r.method, c.client, sig, variants)
        return self._finish(c, r, Response(status, hdrs or list(extra), body, content_type=ctype,
                                           error_page=True))

    def _local_error_document(self, rt: VHostRuntime, conf, status: int) -> str | None:
        docs = rt.error_docs
        if conf is not None and conf.error_documents is not UNSET:
            docs = dict(conf.error_documents)
        doc = docs.get(status)
        return doc if doc and doc.startswith("/") else None

    def _error_redirect(self, c: "_Ctx", r: Request, status: int, doc: str, extra):
        """ErrorDocument with a local URL, as Apache serves it: an internal redirect to it
        (REDIRECT_STATUS, REDIRECT_URL, ..., method GET unless HEAD) whose response keeps the
        error's status.  None when the document cannot be served (the built-in page then)."""
        sub = self._lookup_uri(c, r, doc)
        if sub.status != 200 or not sub.is_file:
            error_log.warn("http", L.HTTP_ERROR_DOCUMENT_FAILED, f"ErrorDocument {doc} cannot be served "
                           f"({sub.status})", client=c.client)
            return None
        r.internal_redirect = doc
        nr = self._redirected(c, r)
        if not isinstance(nr, Request):
            return nr
        nr.env["REDIRECT_STATUS"] = str(status)
        nr.notes["_error_status"] = status
        if nr.method not in ("GET", "HEAD"):
            nr.method = "GET"
        nr.err_headers_out = [*nr.err_headers_out,
                              *((n.decode("latin-1") if isinstance(n, bytes) else n,
                                 v.decode("latin-1") if isinstance(v, bytes) else v)
                                for n, v in extra if (n.lower() if isinstance(n, str)
                                                      else n.decode("latin-1").lower())
                                != "content-type")]
        got = self._serve_uri(c, nr)
        if got is _REDIRECT:                    # the document's own rules redirected it
            return self._error(c, nr, 500)
        return got

    def _respond_error(self, stream, vhost: VHost, rec, status: int, *, close: bool, client: str,
                       extra=(), location: str | None = None, conf=None) -> bool:
        """An error before the request has entered the pipeline (no hooks run)."""
        rt = self.runtime(vhost)
        if status in DROPS_CONNECTION:
            close = True
        sig = ""
        if vhost.dir is not None and vhost.dir.mods:
            c = _Ctx(stream, None, rt, rec, not close, rec.requests_on_connection, client,
                     rec.host_header)
            try:
                c.site = self.sites.site_for(rec.local_ip, rec.local_port)
                sig = self._signature(c, None, vhost, conf)
            except Exception:
                sig = ""
        status, hdrs, body, ctype = self._error_page(rt, status, location, conf, rec.method,
                                                     client, sig)
        out = list(extra) if not hdrs else []
        out += [(n.encode("latin-1", "replace"), v.encode("latin-1", "replace")) for n, v in hdrs]
        out.append((b"Content-Type", ctype.encode("latin-1")))
        if rec.method == "HEAD":            # Apache sends no Content-Length for these
            return self._send(stream, rt, rec, status, out, b"", not close, rec.requests_on_connection,
                              no_length=True) and not close
        return self._send(stream, rt, rec, status, out, body, not close,
                          rec.requests_on_connection) and not close

    def _error_document(self, rt: VHostRuntime, doc: str, client: str):
        v = rt.vhost
        try:
            path, _ = url_path(doc.encode("utf-8"))
            root, fpath = map_to_root(path, v.document_root, v.aliases)
            res = resolve_file(fpath, root, follow_symlinks=v.options_follow_symlinks,
                               if_owner_match=v.options_symlinks_if_owner_match)
            if res.is_dir or res.st.st_size > 1024 * 1024:
                raise PathError(403, "not a small file")
            with open(res.path, "rb") as f:
                body = f.read()
            ctype = rt.mime.lookup(res.path) or "text/html"
            return body, ctype.encode("latin-1")
        except (PathError, OSError) as e:
            error_log.warn("http", L.HTTP_ERROR_DOCUMENT_FAILED, f"ErrorDocument {doc} cannot be served: {e}", client=client)
            return None

    def _log(self, rt: VHostRuntime, rec: RequestRecord, out_headers) -> None:
        if not rt.logs:
            return
        conn = self._tls_conn
        if conn is not None and rec.ssl_protocol is None:
            try:
                rec.ssl_protocol, rec.ssl_cipher = conn.get_protocol_version_name(), conn.get_cipher_name()
            except (SSL.Error, ValueError):
                pass
        rec.duration = time.time() - rec.start
        rec.response_headers = {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in out_headers}
        for fd, render in rt.logs:
            try:
                AccessLogs.write(fd, render(rec))
            except Exception as e:
                error_log.error("http", L.HTTP_ACCESS_LOG_FAILED, f"access log line failed: {e}")


class _PendingBody(NamedTuple):
    """A request body not read yet: read by ``_read_body`` just before the response."""
    framing: Framing
    expecting: bool                     # Expect: 100-continue on HTTP/1.1
    buf: bytearray                      # the connection buffer (the body's first bytes)
    stream: object
    limits: Limits
    read_size: int
    sock: socket.socket


class SubRequest(NamedTuple):
    """What ``Request.lookup_uri`` answers (a sub-request's outcome)."""
    status: int
    filename: str
    is_file: bool
    content_type: str | None
    content_encoding: str | None


class _Ctx:
    """One request's sending state (what every response of the request needs)."""
    __slots__ = ("stream", "site", "rt", "rec", "keep_alive", "served", "client", "host")

    def __init__(self, stream, site, rt, rec, keep_alive, served, client, host):
        self.stream, self.site, self.rt, self.rec = stream, site, rt, rec
        self.keep_alive, self.served, self.client, self.host = keep_alive, served, client, host


_REDIRECT = object()        # _serve_uri: a hook asked for an internal redirect
_LANE_UNKNOWN = object()    # VHostRuntime.lane before the vhost's first GET in the process
# a handler that passes on another server's Server / Date puts them first (mod_proxy does)
_ORIGIN_HEAD = frozenset((b"Server", b"Date", b"server", b"date"))
_DEFAULT_ETAG = core_http.FileETagSpec()


def _etag(spec, st) -> str | None:
    """FileETag's components (core.c's ap_make_etag, hex, dash-joined), None for FileETag None."""
    parts = []
    if spec.inode:
        parts.append(f"{st.st_ino:x}")
    if spec.size:
        parts.append(f"{st.st_size:x}")
    if spec.mtime:
        parts.append(f"{st.st_mtime_ns // 1000:x}")
    return f'"{"-".join(parts)}"' if parts else None


def _fixup_vary(hdrs: list) -> list:
    """One Vary field, each name once (the first spelling), joined by "," (Apache's
    fixup_vary in the header filter)."""
    names, seen, first = [], set(), None
    out = []
    for i, (n, v) in enumerate(hdrs):
        if n.lower() == b"vary":
            if first is None:
                first = len(out)
                out.append(None)
            for tok in v.split(b","):
                tok = tok.strip()
                if tok and tok.lower() not in seen:
                    seen.add(tok.lower())
                    names.append(tok)
        else:
            out.append((n, v))
    out[first] = (b"Vary", b",".join(names))
    return out


def _allow(vhost: VHost) -> str:
    """The Allow header of the default handler (Apache's: TRACE while TraceEnable is not Off)."""
    return "HEAD,GET,POST,OPTIONS" + (",TRACE" if vhost.mod(core_keys.TRACE_ENABLE, "on") != "off"
                                      else "")


def _html_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _close_iter(it) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


class _BodyStream:
    """``Request.body``: the request body for a handler that reads it (a proxy), decoded from
    its framing, under LimitRequestBody and mod_reqtimeout's body stage.  What it does not
    read is discarded before the response, as before."""

    def __init__(self, handler: "ConnectionHandler", rec):
        self._h, self._rec = handler, rec
        self._reader = None
        self._out = bytearray()
        self.done = False
        p = handler._pending
        self.expecting_continue = bool(p and p.expecting)
        self.length = p.framing.length if p is not None and p.framing.kind != "chunked" else None

    def read(self, n: int = 65536) -> bytes:
        """Up to n bytes of the body; b"" at its end.  Raises ProtocolError (413, 400) or
        TimeoutError (408) when the body cannot be read."""
        if not self._out and not self.done:
            self._fill()
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def read_all(self) -> bytes:
        parts = []
        while True:
            d = self.read(1 << 20)
            if not d:
                return b"".join(parts)
            parts.append(d)

    def _fill(self) -> None:
        h = self._h
        p = h._pending
        if p is None:
            self.done = True
            return
        if self._reader is None:
            self._reader = h._body_reader = BodyReader(p.framing, h._body_limit, p.limits)
            if p.expecting:
                p.stream.sendall(CONTINUE)
            if p.buf:
                data = bytes(p.buf)
                p.buf.clear()
                if self._take(data, p):
                    return
                if self._out:
                    return
        while not self._out and not self.done:
            try:
                data = p.stream.recv(p.read_size)
            except StreamTimeout:
                h._body_failed = True
                h._pending = None
                raise TimeoutError("timeout reading the request body") from None
            if not data:
                h._body_failed = True
                h._pending = None
                raise ProtocolError(400, "the client closed the connection inside the body")
            self._take(data, p)

    def _take(self, data: bytes, p) -> bool:
        try:
            out, done = self._reader.feed(data)
        except ProtocolError:
            self._h._body_failed = True
            self._h._pending = None
            raise
        self._out += out
        if done:
            p.buf.extend(self._reader.leftover)     # (the NamedTuple keeps its buffer)
            self._h._pending = None
            self.done = True
        return done


class _BodyDeadline(Exception):
    """mod_reqtimeout's body stage ran out."""


def _locate(path: str) -> tuple[str, bool, os.stat_result | None]:
    """(the path the section walk uses, is it a directory, the path's stat when it is the path
    itself): the path itself, or -- when a file stands where a directory was expected (extra
    path info) -- that file, as Apache's directory walk stops there."""
    try:
        st = os.stat(path)
        return path, stat.S_ISDIR(st.st_mode), st
    except NotADirectoryError:
        p = path.rstrip("/")
        while "/" in p:
            p = p.rpartition("/")[0]
            try:
                st = os.stat(p)
            except OSError:
                continue
            return (p, False, None) if stat.S_ISREG(st.st_mode) else (path, False, None)
        return path, False, None
    except (OSError, ValueError):
        return path, False, None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _inert(hook, vhost, base) -> bool:
    """The hook says (hooks.INERT) it does nothing in ``vhost`` with config ``base``; a hook
    without a test may act."""
    test = hooks.INERT.get(hook)
    return test is not None and test(vhost, base)


def _hostname(host: str) -> str:
    """The Host header's name: lower-case, no port, no trailing dot (memoised: a server sees
    the same few Host values)."""
    got = _HOSTNAMES.get(host)
    if got is None:
        name = host.strip().lower()
        got = name.split("]", 1)[0] + "]" if name.startswith("[") else \
            name.split(":", 1)[0].rstrip(".")
        if len(_HOSTNAMES) >= 1024:
            _HOSTNAMES.clear()
        _HOSTNAMES[host] = got
    return got


_HOSTNAMES: dict[str, str] = {}




def _stopping(slot) -> bool:
    """True when the worker was asked to stop (graceful restart): finish, no more keep-alive."""
    if slot is None:
        return False
    try:
        return bool(slot.stopping())
    except Exception:
        return False


def _poll_deadline(poller, dl: Deadlines, timeout: float, fd: int | None = None) -> bool:
    """Wait until the socket is readable, at most Timeout and what the stage has left (with
    Apache's 1 s floor per read); False when the stage's deadline passed with nothing to read.
    ``fd``: the socket's descriptor, when the request may park on it instead of holding its
    worker in the poll (a slow request body, under the event loop)."""
    while True:
        now = time.monotonic()
        left = dl.read_timeout(now)
        wait = timeout if left is None else min(timeout, left)
        got = None if fd is None else park.wait_client(fd, max(0.0, wait), True)
        if got is None:
            fd = None
            got = bool(poller.poll(max(0, int(wait * 1000))))
        if got:
            return True
        if dl.expired(time.monotonic()) or left is None or wait >= timeout:
            return False


def _handshake_with_deadline(conn, sock: socket.socket, dl: Deadlines, timeout: float) -> bool:
    """The TLS handshake, non-blocking, within mod_reqtimeout's handshake stage (and Timeout per
    wait): False when the stage ran out (the caller closes silently, as Apache)."""
    dl.start("handshake", time.monotonic())
    poller = select.poll()
    sock.setblocking(False)
    try:
        while True:
            try:
                conn.do_handshake()
                return True
            except SSL.WantReadError:
                poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
            except SSL.WantWriteError:
                poller.register(sock.fileno(), select.POLLOUT)
            ready = _poll_deadline(poller, dl, timeout)
            poller.unregister(sock.fileno())
            if not ready:
                return False
    finally:
        sock.setblocking(True)
        dl.stop()


def _wait_readable(poller, timeout_ms: int, slot) -> bool:
    """Wait for the next request's bytes up to KeepAliveTimeout; give up early when the worker
    is stopping.  Polls in slices of at most 500 ms so a graceful stop is seen promptly."""
    if _stopping(slot):
        return False
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if poller.poll(min(500, max(1, int(left * 1000)))):
            return True
        if _stopping(slot):
            return False








