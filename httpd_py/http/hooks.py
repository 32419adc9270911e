"""The request phases modules hook into (Apache's hook points), and what a hook is given.

A module (``httpd_py/modules/<name>.py``) registers functions here at import time; the pipeline
in ``http/connection.py`` runs them in Apache's order and never names a module.  Each phase gets
the ``Request`` (Apache's request_rec: what was asked, what the phases decided so far) and
returns a decision:

* ``None`` (Apache's DECLINED): the next hook runs;
* an ``int`` HTTP status: the pipeline answers with that status (its error page, ErrorDocument,
  ``err_headers_out``), as a hook returning HTTP_FORBIDDEN does in Apache;
* a ``Response``: the pipeline sends it (redirects, generated pages).

Phases, in order:

``post_read(req)``      after the head is read and the vhost chosen, before translation (Apache's
                        post_read_request: mod_setenvif's server-level rules, mod_remoteip)
``translate(req)``      URL -> filename, before Alias/DocumentRoot (mod_rewrite's server-level
                        rules, mod_proxy's ProxyPass).  A hook that maps the URL itself sets
                        ``req.filename`` (and ``req.handler`` for e.g. "proxy-server") and
                        returns ``OK``; Alias/DocumentRoot then do not run.
``header_parser(req)``  after the section walk (``req.conf`` merged), before access (mod_setenvif's
                        per-directory rules, mod_headers' ``RequestHeader ... early``)
``type_checker(req)``   after the walk, for a file: sets ``req.content_type``, ``content_language``,
                        ``content_encoding``, ``charset`` and ``handler`` (AddHandler) from the
                        file name (mod_mime); the core's TypesConfig/AddType answer is already in
                        ``req.content_type`` when hooks run
``negotiate(req, directory, name)``  the file does not exist and Options MultiViews is on (or a
                        hook wants a say): return the variant's full path (it is then walked and
                        access-checked like the file itself) or None (mod_negotiation)
``fixups(req)``         after access, before the handler (mod_env, mod_headers' RequestHeader,
                        mod_rewrite's per-directory rules, mod_mime's type checker results are
                        already in ``req.content_type``)
``handler``             ``HANDLERS[name](req)`` for ``req.handler`` (SetHandler / AddHandler /
                        a translate hook), else the default handler (the static file); the
                        directory handler without an index asks ``DIRECTORY_LISTING`` hooks
``output(req, resp)``   every response, error pages included, in registration order with
                        ``OUTPUT_ORDER`` (mod_deflate's filter, then mod_headers' ``Header``);
                        returns the (possibly new) ``Response``

``INTERNAL_REDIRECT``: a hook may set ``req.internal_redirect = "/new/uri?query"`` and return
``OK``: the pipeline restarts translation with that URI (bounded by LimitInternalRecursion),
as ap_internal_redirect does.

Lanes (``LANES``, ``INERT``): a module may offer a short path for the requests of a vhost it
alone acts on (mod_proxy: a plain proxied GET).  ``LANES`` holds ``lane_for(vhost, conf)``
factories: ``conf`` is the merged per-directory config a request gets when no section matches
it; the factory returns an object with ``replaces`` (the hooks the lane does the work of),
``route(req) -> plan or None`` (None: not the lane's; else ``req.filename`` and
``req.handler`` are set as its translate hook sets them) and ``serve(req, plan) -> decision or
None`` (None: nothing the client would see was done, the phases run).  A lane's requests are
GETs without a body that its module maps to no file (no type_checker or negotiation runs).
The pipeline uses a lane for a vhost only when every other translate, header_parser and
fixups hook is in ``INERT`` and its test ``(vhost, conf) -> bool`` says it does nothing to such
a request, no section applies to the URL, and access is granted without looking at the
request.  post_read hooks run as usual.  An output hook's ``INERT`` test says it leaves such a
request's response as it is; when every output hook says so (or is in ``OBSERVERS``: it only
counts responses), the pipeline sends a lane's pre-serialised head (``Response.wire``) and
runs only the observers on its responses, else all of them as for any response.  A hook without an ``INERT`` entry
keeps every vhost off the lane (the safe default).  A post_read hook's ``INERT`` test says it
does nothing to any request of the vhost: the pipeline then does not call it for that vhost.

Nothing here does I/O; the connection loop does.  The request body, when a handler needs it,
is read through ``req.body`` (an object with ``read(n) -> bytes`` returning b"" at the end, and
``expecting_continue``), so a proxy can stream it; a handler that takes the connection over
(WebSockets) asks ``req.take_over()`` for the raw stream and returns ``TAKEN``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

OK = 0                      # a hook did its work (translate/handler: stop asking the others)
TAKEN = -1                  # a handler took the connection over (it is closed after)


@dataclass
class FileBody:
    """A response body still in a file: ``length`` bytes from ``offset`` of ``fd`` (the pipeline
    closes the descriptor when it owns it)."""
    fd: int
    offset: int
    length: int
    path: str = ""


@dataclass(eq=False, slots=True)
class Response:
    """What a handler or hook answers.  ``headers``: (name, value) as str, in order, without
    Date/Server/Connection/Keep-Alive/Content-Length (the pipeline adds those).  ``body``: bytes,
    a ``FileBody``, or an iterator of bytes (streamed: sent chunked to HTTP/1.1 clients unless a
    Content-Length header is given), or None: the pipeline's own page for ``status`` (the
    error/redirect page with ErrorDocument and ServerSignature; a Location header is used
    for the redirect text)."""
    status: int
    headers: list = field(default_factory=list)
    body: Any = b""
    content_type: str | None = None      # set Content-Type from this when not in headers
    error_page: bool = False             # an error document (ErrorDocument / built-in page)
    reason: str | None = None            # the status line's phrase, when not the standard one
    # a lane's (see "Lanes"): (1 if ``headers`` hold a Date, | 2 if a Server, ``headers``
    # serialised "Name: value\r\n" each), so the pipeline need not serialise them again;
    # dropped when anything adds to the headers
    wire: tuple | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for n, v in self.headers:
            if n.lower() == lname:
                return v
        return default

    def set_header(self, name: str, value: str) -> None:
        lname = name.lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != lname]
        self.headers.append((name, value))

    def remove_header(self, name: str) -> None:
        lname = name.lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != lname]


@dataclass(eq=False, slots=True, weakref_slot=True)
class Request:
    """One request as the phases see it (Apache's request_rec).  Strings are str (latin-1 for
    bytes that came off the wire).  Slotted: made for every request (a third cheaper), and a
    module cannot hang an undeclared attribute on it."""
    method: str
    uri: str                              # decoded, normalised path (r->uri)
    query: str                            # the raw query string without "?" (r->args)
    headers: dict                         # request headers, lower-case names (r->headers_in)
    version: str                          # "1.1", "1.0", "0.9"
    request_line: str
    client_ip: str
    client_port: int
    local_ip: str
    local_port: int
    https: bool
    vhost: Any                            # config.model.VHost
    hostname: str = ""                    # the Host header's name, lower-case, no port
    unparsed_uri: str = ""                # the request target as sent
    filename: str = ""                    # r->filename after translation
    path_info: str = ""
    is_dir: bool = False
    conf: Any = None                      # config.dirconf.DirConf, merged for filename/uri
    env: dict = field(default_factory=dict)          # r->subprocess_env
    notes: dict = field(default_factory=dict)        # r->notes (between modules)
    handler: str | None = None            # SetHandler / AddHandler / a translate hook's choice
    content_type: str | None = None       # mod_mime's decision for the file
    content_language: tuple = ()
    content_encoding: str | None = None
    charset: str | None = None
    headers_out: list = field(default_factory=list)      # added to a successful response
    err_headers_out: list = field(default_factory=list)  # added to every response
    internal_redirect: str | None = None
    redirect_count: int = 0
    user: str | None = None               # set by authentication
    body: Any = None                      # the request body reader (see module docstring)
    take_over: Callable | None = None     # () -> raw stream, for protocol upgrades
    start: float = 0.0                    # time the request began (time.time())
    server: Any = None                    # the ServerConfig
    scheme: str = "http"
    raw_headers: list = field(default_factory=list)  # [(name, value)] bytes, as received
    # ``allowed(filename, is_dir, uri) -> bool``: would a subrequest for that file pass the
    # section walk and access checks (mod_autoindex lists only what it may serve)
    allowed: Callable | None = None
    # ``lookup_uri(uri) -> SubRequest(status, filename, is_file, content_type, content_encoding)``
    # (Apache's ap_sub_req_lookup_uri: mapped, walked and access-checked; nothing sent)
    lookup_uri: Callable | None = None
    # ``lookup_dirent(filename, uri, is_dir) -> sub-request`` for mod_autoindex's listing (not
    # set by the pipeline: autoindex walks each entry itself when it is None)
    lookup_dirent: Callable | None = None

    @property
    def server_name(self) -> str:
        return self.vhost.server_name if self.vhost is not None else ""


Hook = Callable[[Request], Any]
OutputHook = Callable[[Request, Response], Response]

POST_READ: list[Hook] = []
TRANSLATE: list[Hook] = []
HEADER_PARSER: list[Hook] = []
TYPE_CHECKER: list[Hook] = []
NEGOTIATE: list[Callable[[Request, str, str], Any]] = []
FIXUPS: list[Hook] = []
HANDLERS: dict[str, Hook] = {}
DIRECTORY_LISTING: list[Callable[[Request, str], Any]] = []
OUTPUT: list[tuple[int, OutputHook]] = []       # (order, hook): lower runs first

#: hook -> (vhost, conf) -> True when the hook does nothing for a request of that vhost whose
#: merged per-directory config is ``conf`` (see "Lanes" above)
INERT: dict[Callable, Callable[[Any, Any], bool]] = {}
#: output hooks that never change a response (they count it): they see a lane's responses
#: even where the others are skipped (see "Lanes" above)
OBSERVERS: set = set()
#: lane_for(vhost, conf) -> a lane or None (see "Lanes" above)
LANES: list[Callable[[Any, Any], Any]] = []

#: mod_deflate's content filter runs before mod_headers' Header (so Header sees Content-Encoding)
ORDER_CONTENT, ORDER_HEADERS, ORDER_LAST = 10, 50, 90


def add_output(hook: OutputHook, order: int = ORDER_HEADERS) -> None:
    OUTPUT.append((order, hook))
    OUTPUT.sort(key=lambda t: t[0])


def run(hooks: Iterable[Hook], req: Request) -> Any:
    """Run a phase: the first decision other than None wins (RUN_FIRST), except that OK from
    post_read/header_parser/fixups hooks lets the others run too (RUN_ALL)."""
    for h in hooks:
        got = h(req)
        if got is not None and got != OK:
            return got
    return None


def run_first(hooks: Iterable[Hook], req: Request) -> Any:
    """translate: the first hook that answers (OK included) ends the phase."""
    for h in hooks:
        got = h(req)
        if got is not None:
            return got
    return None


def filter_output(req: Request, resp: Response) -> Response:
    for _, h in OUTPUT:
        resp = h(req, resp)
    return resp


def iter_file(fb: FileBody, chunk: int = 256 * 1024) -> Iterator[bytes]:
    import os
    off, left = fb.offset, fb.length
    while left > 0:
        data = os.pread(fb.fd, min(chunk, left), off)
        if not data:
            return
        off += len(data)
        left -= len(data)
        yield data
