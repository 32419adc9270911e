"""Every log id httpd-py uses, once: a named constant per id with its error-log module, what it
means, Apache's AH number where it mirrors one, and the functions that use it.

    from httpd_py import logids
    error_log.error("http", logids.HTTP_UNEXPECTED, f"unexpected {name} while serving: {e}")

A ``LogId`` is a ``str`` (``"HP03001"``), so it goes wherever an id string goes: a log call, an
f-string, a comparison with a literal in a test.  An id never changes meaning once shipped
(operators grep for it, tests assert on it): one id, one message; a message that means
something else takes a new id, and an id no longer logged moves to ``RETIRED`` (never reused).

To add a log line: pick the next free id in your module's range (``RANGES``; a new module
adds a row), add a constant below with the module it is logged under, a one-line meaning and
the ``file:function`` sites that use it, log with the constant, and regenerate the page:
``python -m httpd_py.logids > docs/log-ids.md``.  tests/unit/test_logids.py checks that every
id is unique, in a range, documented and used, that every id the package uses is registered,
and that each id is used only at the sites its entry lists, under its module
(``python -m httpd_py.devtools.logsites --check`` says what differs).
"""
from __future__ import annotations

import re
import sys

_ID = re.compile(r"HP\d{5}")
_AH = re.compile(r"AH\d{5}")


class LogId(str):
    """A log id: the id string itself, plus ``module`` (the ``[module:level]`` of its lines),
    ``meaning``, ``ah`` (Apache's id, or ""), ``sites`` and ``name`` (the constant's name)."""

    def __new__(cls, ident: str, module: str, meaning: str, *, ah: str = "",
                sites: tuple[str, ...] = ()) -> "LogId":
        if not _ID.fullmatch(ident):
            raise ValueError(f"log id {ident!r} is not HP and five digits")
        if ah and not _AH.fullmatch(ah):
            raise ValueError(f"{ident}: Apache id {ah!r} is not AH and five digits")
        self = super().__new__(cls, ident)
        self.__dict__.update(module=module, meaning=meaning, ah=ah, sites=tuple(sites), name="")
        return self

    def __setattr__(self, key, value):
        raise AttributeError("a LogId is immutable")

    def __reduce__(self):
        return (by_id, (str(self),))

    module: str
    meaning: str
    ah: str
    sites: tuple[str, ...]
    name: str


#: who owns which ids: (first, last, error-log module, what)
RANGES = (
    ("HP00001", "HP00999", "core", "configuration and start-up"),
    ("HP01000", "HP01999", "mpm_prefork", "the master, its workers and helpers"),
    ("HP02000", "HP02999", "ssl", "TLS handshakes, SNI, contexts"),
    ("HP03000", "HP03999", "http", "the request pipeline (0304x access and authentication, "
                                   "HP03049 ssl, HP03050 reqtimeout, HP03060 core)"),
    ("HP04000", "HP04799", "ssl", "OCSP stapling: certificates, cache, on-demand refresh"),
    ("HP04800", "HP04899", "ssl", "OCSP stapling: the background stapler"),
    ("HP05000", "HP05999", "socache", "shared object caches, the global mutex, the fleet lock"),
    ("HP06000", "HP06999", "status", "status pages (mod_status, stapling-status, metrics)"),
    ("HP07000", "HP07099", "ssl", "OCSP stapling preflight (-t and start-up)"),
    ("HP07100", "HP07199", "core", "piped logs"),
    ("HP07200", "HP07299", "core", "syslog and ErrorLogFormat"),
    ("HP08000", "HP08009", "headers", "mod_headers"),
    ("HP08010", "HP08099", "setenvif", "mod_setenvif"),
    ("HP09000", "HP09999", "autoindex", "mod_autoindex"),
    ("HP10000", "HP10999", "negotiation", "mod_negotiation"),
    ("HP11000", "HP11999", "ssl", "OCSP stapling: warm-up before fork"),
    ("HP12000", "HP12999", "rewrite", "mod_rewrite"),
    ("HP13000", "HP13099", "proxy", "mod_proxy and its balancer"),
    ("HP13100", "HP13199", "remoteip", "mod_remoteip"),
    ("HP14000", "HP14999", "ssl", "TLS contexts: session tickets, contexts shared by vhosts"),
)

# ---- HP00001-HP00999 core: configuration and start-up -------------------------------------------
CONFIG_WARNING = LogId("HP00101", "core",
                       "a warning found while reading the configuration (an undefined ${VAR}, a "
                       "directive Apache warns about)",
                       sites=("config/__init__.py:load",))
CONFIG_CHECK_WARNING = LogId("HP00102", "core",
                             "a post-config check's warning (config.check): on -t and at every "
                             "start or restart",
                             sites=("cli.py:_run", "server.py:make_load_app.load_app"))
CORE_IGNORED_DIRECTIVES = LogId("HP00901", "core",
                                "the directives accepted but not implemented, one grouped line at "
                                "start-up and on -t",
                                sites=("cli.py:_run", "server.py:ServerApp.before_fork"))
CORE_HAND_OVER_FAILED = LogId("HP00903", "core",
                              "a runtime file (lock, cache, staple store) could not be given to "
                              "User/Group",
                              sites=("server.py:ServerApp.before_fork",))

# ---- HP01000-HP01999 mpm_prefork: the master, its workers and helpers ---------------------------
MPM_RESUMING = LogId("HP01001", "mpm_prefork",
                     "configured -- resuming normal operations (each start and restart)",
                     ah="AH00163",
                     sites=("mpm/master.py:Master.serve", "mpm/master.py:Master._switch_generation",
                            "mpm/master.py:Master.serve_single"))
MPM_SHUTDOWN = LogId("HP01002", "mpm_prefork", "caught SIGTERM (or SIGINT), shutting down",
                     ah="AH00169", sites=("mpm/master.py:Master._loop",))
MPM_RESTART = LogId("HP01003", "mpm_prefork", "SIGHUP received: restarting",
                    ah="AH00173", sites=("mpm/master.py:Master._loop",))
MPM_GRACEFUL_RESTART = LogId("HP01004", "mpm_prefork", "graceful restart requested (SIGUSR1)",
                             ah="AH00171", sites=("mpm/master.py:Master._loop",))
MPM_GRACEFUL_STOP = LogId("HP01005", "mpm_prefork", "caught SIGWINCH, shutting down gracefully",
                          ah="AH00170", sites=("mpm/master.py:Master._loop",))
MPM_RESTART_FAILED = LogId("HP01006", "mpm_prefork",
                           "a restart failed (config, bind or before_fork): the old generation "
                           "keeps serving",
                           sites=("mpm/master.py:Master._finish_restart",))
MPM_HALT = LogId("HP01007", "mpm_prefork",
                 "a worker of the current generation failed to boot (exit status 3): the server "
                 "halts",
                 sites=("mpm/master.py:Master._loop",))
MPM_MAX_REQUEST_WORKERS = LogId("HP01008", "mpm_prefork",
                                "server reached MaxRequestWorkers while spare workers were short",
                                ah="AH00161", sites=("mpm/master.py:Master._maintain",))
MPM_SPAWNING = LogId("HP01009", "mpm_prefork", "server seems busy: spawning more workers",
                     ah="AH00162", sites=("mpm/master.py:Master._maintain",))
MPM_CHILD_EXITED = LogId("HP01010", "mpm_prefork",
                         "a worker exited unexpectedly (a signal or an exit status)",
                         ah="AH00052", sites=("mpm/master.py:Master._reap",))
MPM_HELPER_FAILED = LogId("HP01011", "mpm_prefork",
                          "a helper process failed or exited (restarted with backoff); its "
                          "traceback at debug",
                          sites=("mpm/helpers.py:HelperSupervisor._run_child",
                                 "mpm/helpers.py:HelperSupervisor.reaped"))
MPM_CONNECTION_CRASHED = LogId("HP01012", "mpm_prefork",
                               "an unhandled exception opening or serving a connection; its "
                               "traceback at debug",
                               sites=("mpm/worker.py:Worker._accept_some",
                                      "mpm/worker.py:Worker._serve_waiting",
                                      "mpm/worker.py:Worker._serve"))
MPM_BIND_FAILED = LogId("HP01013", "mpm_prefork",
                        "could not bind to a Listen address (the text of a start-up error)",
                        ah="AH00072", sites=("mpm/listeners.py:_bind",))
MPM_CHILDREN_STUCK = LogId("HP01014", "mpm_prefork",
                           "children did not exit when stopped (SIGKILL sent, then given up)",
                           ah="AH00047", sites=("mpm/master.py:Master._reclaim",))
MPM_MAX_CONNECTIONS = LogId("HP01015", "mpm_prefork",
                            "MaxConnectionsPerChild reached: the worker exits",
                            sites=("mpm/worker.py:Worker._loop",
                                   "mpm/worker.py:Worker._loop_events"))
MPM_SERVER_LIMIT_CHANGED = LogId("HP01017", "mpm_prefork",
                                 "ServerLimit changed at a restart: ignored",
                                 ah="AH00179", sites=("mpm/master.py:Master._commit_generation",))
MPM_DEFAULT_USER = LogId("HP01018", "mpm_prefork",
                         "no User configured: workers run as nobody/nogroup",
                         sites=("mpm/master.py:Master._commit_generation",))
MPM_UNKNOWN_USER = LogId("HP01019", "mpm_prefork",
                         "an unknown User or Group, or a User without a group (the text of a "
                         "start-up error)",
                         ah="AH00543", sites=("mpm/privileges.py:resolve",))
MPM_BOOT_FAILED = LogId("HP01020", "mpm_prefork",
                        "why a worker (or the -X process) failed to boot; its traceback at debug",
                        sites=("mpm/master.py:Master.serve_single", "mpm/worker.py:Worker.boot"))
MPM_ACCEPT_FAILED = LogId("HP01021", "mpm_prefork", "accept() failed (descriptors exhausted, ...)",
                          sites=("mpm/worker.py:Worker._loop", "mpm/worker.py:Worker._accept_some"))
MPM_WORKER_CRASHED = LogId("HP01022", "mpm_prefork",
                           "a worker crashed outside a connection; its traceback at debug",
                           sites=("mpm/worker.py:run_in_child",))
MPM_BEFORE_FORK_TRACEBACK = LogId("HP01023", "mpm_prefork",
                                  "the traceback of a failed before_fork (the start-up error says "
                                  "why)",
                                  sites=("mpm/master.py:Master._prepare_generation",))
MPM_FORK_FAILED = LogId("HP01024", "mpm_prefork", "fork failed (a worker or a helper)",
                        ah="AH00159",
                        sites=("mpm/helpers.py:HelperSupervisor.start",
                               "mpm/master.py:Master._spawn_worker"))
MPM_APP_SHUTDOWN_FAILED = LogId("HP01025", "mpm_prefork",
                                "shutting a generation down (App.shutdown) failed",
                                sites=("mpm/master.py:Master._abandon_load",
                                       "mpm/master.py:Master._switch_generation",
                                       "mpm/master.py:Master._stop_all"))
MPM_PIDFILE_FAILED = LogId("HP01026", "mpm_prefork",
                           "the PidFile could not be rewritten at a restart",
                           sites=("mpm/master.py:Master._switch_generation",))
MPM_WINCH_IGNORED = LogId("HP01027", "mpm_prefork",
                          "a SIGWINCH from the terminal (a resize) ignored",
                          sites=("mpm/master.py:Master._collect_winch",))
MPM_LOAD_DONE = LogId("HP01028", "mpm_prefork",
                      "a restart's configuration load ended: how long it took, how many forks "
                      "meanwhile",
                      sites=("mpm/master.py:Master._finish_restart",))
MPM_QUEUE_PRESSURE = LogId("HP01029", "mpm_prefork",
                           "every worker busy while connections wait in the accept queue: the "
                           "oldest requests",
                           ah="AH00161", sites=("mpm/master.py:Master._check_pressure",))
MPM_QUEUE_PRESSURE_OVER = LogId("HP01030", "mpm_prefork",
                                "no connection queued for 10 s: how long the pressure lasted, the "
                                "peak queue",
                                sites=("mpm/master.py:Master._check_pressure",))
MPM_HELPERS_UNLISTED = LogId("HP01031", "mpm_prefork",
                             "App.helpers() raised: the generation runs without helpers",
                             sites=("mpm/master.py:Master._start_generation_processes",))
MPM_SETUID_FAILED = LogId("HP01032", "mpm_prefork",
                          "a worker cannot switch to User/Group: it fails to boot",
                          ah="AH02162", sites=("mpm/worker.py:Worker.boot",))
MPM_FORK_DEFERRED = LogId("HP01033", "mpm_prefork",
                          "a fork put off while a restart loads (another thread is in OpenSSL or "
                          "the resolver)",
                          sites=("mpm/master.py:Master._fork",))
MPM_RESTART_QUEUED = LogId("HP01034", "mpm_prefork",
                           "a restart asked while another one loads: it follows that one",
                           sites=("mpm/master.py:Master._restart",))
MPM_LOAD_ABANDONED = LogId("HP01035", "mpm_prefork",
                           "a restart's configuration load did not end in time: the server stops "
                           "without it",
                           sites=("mpm/master.py:Master._abandon_load",))
MPM_USER_ROOT = LogId("HP01036", "mpm_prefork",
                      "User root: workers keep root privileges (Apache refuses it)",
                      sites=("mpm/master.py:Master._commit_generation",))

# ---- HP02000-HP02999 ssl: TLS handshakes, SNI, contexts -----------------------------------------
SSL_HANDSHAKE_FAILED = LogId("HP02001", "ssl",
                             "a TLS handshake failed (plain HTTP on a TLS port also gets a "
                             "readable 400)",
                             sites=("http/connection.py:ConnectionHandler._serve",
                                    "http/waiting.py:WaitingMixin._step_handshake"))
SSL_HANDSHAKE_TIMEOUT = LogId("HP02002", "ssl", "a TLS handshake timed out",
                              sites=("http/connection.py:ConnectionHandler._serve",
                                     "http/waiting.py:WaitingMixin.expire"))
SSL_MISDIRECTED = LogId("HP02004", "ssl", "Host names another vhost than the SNI name: 421",
                        ah="AH02032",
    sites=("http/connection.py:ConnectionHandler._handle_request",))
SSL_STRICT_SNI = LogId("HP02005", "ssl", "no SNI from the client under SSLStrictSNIVHostCheck: 403",
                       ah="AH02033",
    sites=("http/connection.py:ConnectionHandler._handle_request",))
SSL_SNI_CALLBACK_FAILED = LogId("HP02006", "ssl",
                                "the SNI callback raised (the handshake goes on with the default "
                                "context)",
                                sites=("tls/sites.py:_servername_callback",))
SSL_SNI_WITHOUT_HOST = LogId("HP02007", "ssl", "SNI given but no Host header (HTTP/1.0): 400",
                             ah="AH02031",
    sites=("http/connection.py:ConnectionHandler._handle_request",))
SSL_CONTEXT_BUILT = LogId("HP02010", "ssl",
                          "a vhost's TLS context built (with or without the OCSP callback)",
                          sites=("tls/sites.py:build_sites",))
SSL_WARM_UP_SKIPPED = LogId("HP02011", "ssl", "a TLS warm-up handshake skipped",
                            sites=("tls/sites.py:warm_up",))

# ---- HP03000-HP03999 http -----------------------------------------------------------------------
HTTP_UNEXPECTED = LogId("HP03001", "http",
                        "an unexpected exception while waiting for or serving a request (the "
                        "connection closes)",
                        sites=("http/connection.py:ConnectionHandler.__call__",
                               "http/connection.py:ConnectionHandler._one_request",
                               "http/waiting.py:WaitingMixin.step",
                               "http/waiting.py:WaitingMixin.serve_ready"))
HTTP_ACCESS_LOG_FAILED = LogId("HP03016", "http", "an access-log line could not be written",
                               sites=("http/connection.py:ConnectionHandler._log",))
HTTP_REQUEST_LINE_TOO_LONG = LogId("HP03002", "http", "the request line is too long: 414",
                                   sites=("http/connection.py:ConnectionHandler._http_loop",
                                          "http/waiting.py:WaitingMixin._step_head"))
HTTP_HEADER_TOO_LARGE = LogId("HP03003", "http", "a header field too long, or too many fields: 400",
                              sites=("http/connection.py:ConnectionHandler._http_loop",
                                     "http/waiting.py:WaitingMixin._step_head"))
HTTP_BAD_REQUEST = LogId("HP03004", "http", "a malformed request: 400",
                         sites=("http/connection.py:ConnectionHandler._http_loop",
                                "http/connection.py:ConnectionHandler._one_request",
                                "http/connection.py:ConnectionHandler._handle_request",
                                "http/waiting.py:WaitingMixin._step_head"))
HTTP_READ_TIMEOUT = LogId("HP03005", "http", "Timeout passed reading a request or its body: 408",
                          sites=("http/connection.py:ConnectionHandler._http_loop",
                                 "http/connection.py:ConnectionHandler._read_body",
                                 "http/waiting.py:WaitingMixin.expire"))
HTTP_EXPECT_FAILED = LogId("HP03006", "http", "an Expect other than 100-continue: 417",
                           sites=("http/connection.py:ConnectionHandler._one_request",))
HTTP_BODY_REFUSED = LogId("HP03007", "http", "a request body refused (413, 400)",
                          sites=("http/connection.py:ConnectionHandler._read_body",))
HTTP_NOT_FOUND = LogId("HP03010", "http", "the file does not exist: 404",
                       ah="AH00128",
                       sites=("http/connection.py:ConnectionHandler._handle_request",
                              "http/connection.py:ConnectionHandler._serve_uri",
                              "http/connection.py:ConnectionHandler._default_handler"))
HTTP_DIRECTORY_REFUSED = LogId("HP03011", "http",
                               "a directory without a DirectoryIndex file and no listing allowed: "
                               "403",
                               ah="AH01276",
    sites=("http/connection.py:ConnectionHandler._default_handler",))
HTTP_PATH_FORBIDDEN = LogId("HP03012", "http",
                            "the path rules refuse the file (symbolic links, permissions): 403",
                            sites=("http/connection.py:ConnectionHandler._handle_request",
                                   "http/connection.py:ConnectionHandler._default_handler"))
HTTP_ERROR_DOCUMENT_FAILED = LogId("HP03013", "http",
                                   "an ErrorDocument cannot be served (the default error page is "
                                   "sent)",
                                   sites=("http/connection.py:ConnectionHandler._error_redirect",
                                          "http/connection.py:ConnectionHandler._error_document"))
HTTP_CLIENT_GONE = LogId("HP03014", "http", "the client went away while the response was sent",
                         sites=("http/connection.py:ConnectionHandler._send_stream",
                                "http/connection.py:ConnectionHandler._send_large"))
HTTP_BODY_FAILED = LogId("HP03015", "http",
                         "producing a response body failed after its head was sent (the connection "
                         "closes)",
                         sites=("http/connection.py:ConnectionHandler._send_stream",))
HTTP_TYPES_CONFIG_MISSING = LogId("HP03020", "http",
                                  "the TypesConfig file is missing: files are served without "
                                  "Content-Type",
                                  sites=("http/connection.py:ConnectionHandler.__init__",))
HTTP_HTACCESS_FAILED = LogId("HP03030", "http", "an .htaccess file is unreadable or wrong: 500",
                             ah="AH00529", sites=("http/connection.py:ConnectionHandler._per_dir",))
ACCESS_NO_USER_FILE = LogId("HP03039", "http", "AuthType Basic without AuthUserFile: 500",
                            ah="AH01619", sites=("http/access.py:check",))
ACCESS_DENIED = LogId("HP03040", "http", "client denied by server configuration: 403",
                      ah="AH01630", sites=("http/access.py:static_verdict", "http/access.py:check"))
ACCESS_AUTHTYPE_WITHOUT_REQUIRE = LogId("HP03041", "http",
                                        "AuthType configured with no corresponding authorization "
                                        "directives: 500",
                                        ah="AH01627", sites=("http/access.py:check",))
ACCESS_NO_AUTHENTICATION = LogId("HP03042", "http",
                                 "a Require needs a user but no authentication is configured: 500",
                                 ah="AH00027", sites=("http/access.py:check",))
ACCESS_NEED_AUTHNAME = LogId("HP03043", "http", "AuthType Basic without AuthName: 500",
                             ah="AH01615", sites=("http/access.py:check",))
ACCESS_NO_CREDENTIALS = LogId("HP03044", "http",
                              "no credentials, or another scheme than Basic: 401 (logged at info)",
                              ah="AH01614",
                              sites=("http/access.py:check",
                                     "http/connection.py:ConnectionHandler._per_dir"))
ACCESS_PASSWORD_FILE_UNREADABLE = LogId("HP03045", "http", "the AuthUserFile cannot be opened: 500",
                                        ah="AH01620", sites=("http/access.py:check",))
ACCESS_AUTHENTICATION_FAILED = LogId("HP03046", "http", "user not found or password mismatch: 401",
                                     ah="AH01617", sites=("http/access.py:check",))
ACCESS_AUTHORIZATION_FAILED = LogId("HP03047", "http",
                                    "an authenticated user the Require lines do not admit: 401 or "
                                    "403",
                                    ah="AH01631", sites=("http/access.py:check",))
ACCESS_AUTHORIZATION_ERROR = LogId("HP03048", "http", "an authorization provider failed: 500",
                                   sites=("http/access.py:check",))
SSL_REQUIRE_SSL = LogId("HP03049", "ssl", "SSLRequireSSL on a plain connection: 403",
                        ah="AH02219", sites=("http/connection.py:ConnectionHandler._per_dir",))
REQTIMEOUT_EXPIRED = LogId("HP03050", "reqtimeout",
                           "RequestReadTimeout passed reading the handshake, the head or the body",
                           ah="AH01382",
                           sites=("http/connection.py:ConnectionHandler._serve",
                                  "http/connection.py:ConnectionHandler._header_timeout",
                                  "http/connection.py:ConnectionHandler._read_body",
                                  "http/waiting.py:WaitingMixin.expire"))
CORE_REDIRECT_LIMIT = LogId("HP03060", "core",
                            "more internal redirects than LimitInternalRecursion: 500",
                            ah="AH00124", sites=("http/connection.py:ConnectionHandler._pipeline",))
HTTP_TRACE_DENIED = LogId("HP03061", "http", "TRACE denied by TraceEnable off: 405",
                          sites=("http/connection.py:ConnectionHandler._trace",))
HTTP_TRACE_BODY = LogId("HP03062", "http", "TRACE with a request body: 413",
                        sites=("http/connection.py:ConnectionHandler._trace",))

# ---- HP04000-HP04799 ssl: OCSP stapling: certificates, cache, on-demand refresh -----------------
STAPLING_NO_URL = LogId("HP04001", "ssl",
                        "a certificate has no AIA OCSP URL and there is no SSLStaplingForceURL: "
                        "not stapled",
                        ah="AH02218", sites=("stapling/certinfo.py:_log_no_url",))
STAPLING_NO_ISSUER = LogId("HP04002", "ssl",
                           "a certificate's issuer is not in the chain, the CA file or the CA path",
                           ah="AH02217", sites=("stapling/certinfo.py:collect",))
STAPLING_CERT_UNREADABLE = LogId("HP04003", "ssl",
                                 "a certificate or chain file is unreadable or not PEM",
                                 sites=("stapling/certinfo.py:collect",))
STAPLING_CERT_CONFIGURED = LogId("HP04004", "ssl",
                                 "a certificate configured for stapling (its responder)",
                                 sites=("stapling/certinfo.py:collect",))
STAPLING_CACHE_INIT_FAILED = LogId("HP04005", "ssl",
                                   "the stapling cache (or its local tier) cannot be initialised: "
                                   "the server exits",
                                   ah="AH01872",
    sites=("stapling/service.py:StaplingService.init",))
STAPLING_MUTEX_FAILED = LogId("HP04007", "ssl", "a stapling mutex cannot be created",
                              ah="AH01959", sites=("stapling/service.py:StaplingService.init",))
STAPLING_READY = LogId("HP04008", "ssl",
                       "stapling ready: how many certificates, the cache, the refresh mode",
                       ah="AH01960", sites=("stapling/service.py:StaplingService.init",))
STAPLING_STAPLER_NOT_STARTED = LogId("HP04009", "ssl",
                                     "the background stapler could not start: responses are "
                                     "refreshed on demand",
                                     sites=("stapling/service.py:StaplingService.init",))
STAPLING_CACHE_HIT = LogId("HP04010", "ssl", "a cached response found",
                           ah="AH01933", sites=("stapling/service.py:StaplingService.staple_for",))
STAPLING_NOT_CONFIGURED = LogId("HP04011", "ssl",
                                "stapling not supported for the selected certificate",
                                ah="AH01926",
    sites=("stapling/callback.py:ocsp_callback_for.ocsp_status_callback",))
STAPLING_CACHE_MISS = LogId("HP04012", "ssl", "no cached response",
                            ah="AH01930", sites=("stapling/service.py:StaplingService.staple_for",))
STAPLING_CACHE_STALE = LogId("HP04013", "ssl", "the cached response is no longer valid: renewing",
                             ah="AH01937", sites=("stapling/service.py:StaplingService.decide",))
STAPLING_CACHE_CORRUPT = LogId("HP04014", "ssl",
                               "a cache lookup failed or its record is unusable: a miss",
                               ah="AH01932",
                               sites=("stapling/service.py:StaplingService._retrieve",
                                      "stapling/service.py:StaplingService._decode"))
STAPLING_QUERYING = LogId("HP04020", "ssl", "querying the responder",
                          ah="AH01938", sites=("stapling/refresh.py:refresh",))
STAPLING_FETCHED = LogId("HP04021", "ssl", "a response fetched (method, size, time, verdict)",
                         ah="AH01942", sites=("stapling/service.py:StaplingService._log_attempt",))
STAPLING_RESPONDER_ERROR = LogId("HP04022", "ssl",
                                 "the responder is unreachable, answered an HTTP error, or sent no "
                                 "OCSP response",
                                 ah="AH01941",
    sites=("stapling/service.py:StaplingService._log_attempt",))
STAPLING_DEADLINE = LogId("HP04023", "ssl", "no answer within SSLStaplingResponderTimeout",
                          ah="AH01941", sites=("stapling/service.py:StaplingService._log_attempt",))
STAPLING_REFUSED = LogId("HP04024", "ssl", "a response refused (not stapled): why",
                         ah="AH01943", sites=("stapling/service.py:StaplingService._log_attempt",))
STAPLING_RESPONDER_STATUS = LogId("HP04025", "ssl",
                                  "the responder answered a non-successful status",
                                  ah="AH01944",
    sites=("stapling/service.py:StaplingService._log_attempt",))
STAPLING_CERT_STATUS = LogId("HP04026", "ssl", "the response says revoked or unknown",
                             ah="AH02969",
    sites=("stapling/service.py:StaplingService._log_attempt",))
STAPLING_STORE_FAILED = LogId("HP04028", "ssl",
                              "the stapling cache refused a store, or the response is too big to "
                              "cache (AH01928)",
                              ah="AH01929", sites=("stapling/service.py:StaplingService.store",))
STAPLING_STORED = LogId("HP04029", "ssl", "a response cached (valid or error, for how long)",
                        sites=("stapling/service.py:StaplingService.store",))
STAPLING_REFRESHED_MEANWHILE = LogId("HP04030", "ssl",
                                     "another process refreshed the response while this one waited "
                                     "for the lock",
                                     ah="AH03237",
    sites=("stapling/service.py:StaplingService.staple_for",))
STAPLING_LOCK_TIMEOUT = LogId("HP04031", "ssl",
                              "the refresh mutex was not taken in time: no staple this time",
                              ah="AH01948",
    sites=("stapling/service.py:StaplingService.staple_for",))
STAPLING_FAKE_TRYLATER = LogId("HP04032", "ssl",
                               "no answer from any responder: a synthesized tryLater cached "
                               "(SSLStaplingFakeTryLater)",
                               sites=("stapling/service.py:StaplingService.refresh",))
STAPLING_NO_RESPONSE = LogId("HP04033", "ssl", "no suitable response available",
                             ah="AH01957", sites=("stapling/service.py:StaplingService.refresh",))
STAPLING_SENDING = LogId("HP04034", "ssl", "stapling a response in the handshake",
                         ah="AH01956",
    sites=("stapling/callback.py:ocsp_callback_for.ocsp_status_callback",))
STAPLING_CALLBACK_ERROR = LogId("HP04035", "ssl",
                                "an internal error in the status callback: no staple, the "
                                "handshake goes on",
    sites=("stapling/callback.py:ocsp_callback_for.ocsp_status_callback",))
STAPLING_NO_URL_AT_REFRESH = LogId("HP04036", "ssl",
                                   "no responder URL for this certificate at refresh: nothing to "
                                   "fetch",
                                   ah="AH02621",
    sites=("stapling/service.py:StaplingService.staple_for",))
STAPLING_LOCAL_TIER = LogId("HP04037", "ssl",
                            "a local shmcb tier in front of the network stapling cache",
                            sites=("stapling/service.py:StaplingService.init",))
STAPLING_SHARED_STORE_FAILED = LogId("HP04038", "ssl",
                                     "a response cached locally only: the shared (network) cache "
                                     "refused it",
                                     sites=("stapling/service.py:StaplingService.store",))

# ---- HP04800-HP04899 ssl: OCSP stapling: the background stapler ---------------------------------
STAPLER_STARTED = LogId("HP04800", "ssl", "the background stapler started (how many certificates)",
                        sites=("stapling/stapler.py:Stapler.run",))
STAPLER_PREFETCHED = LogId("HP04801", "ssl",
                           "the prefetch before fork ended: how many certificates have a valid "
                           "staple",
                           sites=("stapling/stapler.py:Stapler.prefetch",))
STAPLER_FETCHED = LogId("HP04802", "ssl",
                        "a response fetched (its status, nextUpdate, the next refresh)",
                        sites=("stapling/stapler.py:Stapler._fetch_and_store",))
STAPLER_REFRESH_FAILED = LogId("HP04803", "ssl",
                               "a refresh failed; the last good response is still stapled",
                               sites=("stapling/stapler.py:Stapler._fetch_and_store",))
STAPLER_NO_VALID_RESPONSE = LogId("HP04804", "ssl",
                                  "a refresh failed and no valid response is left",
                                  sites=("stapling/stapler.py:Stapler._fetch_and_store",))
STAPLER_ADOPTED = LogId("HP04805", "ssl",
                        "a response another server or process fetched adopted from the cache",
                        sites=("stapling/stapler.py:Stapler._adopted",))
STAPLER_REVOKED = LogId("HP04806", "ssl", "the responder says revoked; that answer is stapled",
                        sites=("stapling/stapler.py:Stapler._fetch_and_store",))
STAPLER_RECORD_IGNORED = LogId("HP04807", "ssl", "a record of the staple store ignored or not used",
                               sites=("stapling/stapler.py:Stapler._load_one",))
STAPLER_RECORD_LOADED = LogId("HP04808", "ssl", "a response loaded from the staple store",
                              sites=("stapling/stapler.py:Stapler._load_one",))
STAPLER_STORE_UNUSABLE = LogId("HP04809", "ssl",
                               "the staple store is unusable: staples will not survive restarts",
                               sites=("stapling/stapler.py:Stapler.load",))
STAPLER_MUST_STAPLE_MISSING = LogId("HP04810", "ssl",
                                    "a Must-Staple certificate has no valid response",
                                    sites=("stapling/stapler.py:Stapler.check_must_staple",))
STAPLER_MUST_STAPLE_OK = LogId("HP04811", "ssl", "a Must-Staple certificate has a valid staple",
                               sites=("stapling/stapler.py:Stapler.run",))
STAPLER_BUSY_ELSEWHERE = LogId("HP04812", "ssl",
                               "a refresh is under way elsewhere: looking again later",
                               sites=("stapling/stapler.py:Stapler.refresh_one",))
STAPLER_INTERNAL_ERROR = LogId("HP04813", "ssl", "an internal error refreshing a certificate",
                               sites=("stapling/stapler.py:Stapler.run_pass.one",))
STAPLER_SAVE_FAILED = LogId("HP04814", "ssl", "a staple record cannot be saved in the store",
                            sites=("stapling/stapler.py:Stapler._save",))
STAPLER_STOPPING = LogId("HP04815", "ssl", "the background stapler stops",
                         sites=("stapling/stapler.py:Stapler.run",))
STAPLER_REFUSING = LogId("HP04816", "ssl",
                         "a Must-Staple certificate without a valid staple: handshakes asking for "
                         "one are refused",
                         sites=("stapling/stapler.py:Stapler.refuse",))
STAPLER_RESEEDED = LogId("HP04817", "ssl",
                         "a response missing from the stapling cache stored again",
                         sites=("stapling/stapler.py:Stapler.reseed",))
STAPLER_NO_FLEET_LOCK = LogId("HP04818", "ssl",
                              "no fleet-wide refresh lock: each server refreshes on its own",
                              sites=("stapling/stapler.py:make_fleet_lock",))
STAPLER_RECORD_PRUNED = LogId("HP04819", "ssl",
                              "a staple record removed (certificate no longer configured, response "
                              "expired)",
                              sites=("stapling/stapler.py:Stapler._prune",))
STAPLER_FLEET_UNREACHABLE = LogId("HP04820", "ssl",
                                  "the fleet-wide refresh lock is unreachable: this server "
                                  "refreshes on its own",
                                  sites=("stapling/stapler.py:Stapler._fleet_reached",))
STAPLER_FLEET_BACK = LogId("HP04821", "ssl", "the fleet-wide refresh lock is reachable again",
                           sites=("stapling/stapler.py:Stapler._fleet_reached",))

# ---- HP05000-HP05999 socache: shared object caches, the global mutex, the fleet lock ------------
SHMCB_OVERSIZED = LogId("HP05001", "socache", "shmcb: an entry larger than a subcache refused",
                        sites=("socache/shmcb.py:ShmcbCache._store",))
SHMCB_REBUILT = LogId("HP05002", "socache",
                      "shmcb: a foreign or corrupt file header, or another geometry: the file "
                      "rebuilt",
                      sites=("socache/shmcb.py:ShmcbCache._open_file",))
SHMCB_SUBCACHE_RESET = LogId("HP05003", "socache",
                             "shmcb: a subcache left mid-write (a writer died) or damaged: cleared",
                             sites=("socache/shmcb.py:ShmcbCache._open_file",
                                    "socache/shmcb.py:ShmcbCache._damaged",
                                    "socache/shmcb.py:ShmcbCache._repair"))
SHMCB_BAD_ENTRY = LogId("HP05004", "socache", "shmcb: an entry failed its checksum: dropped",
                        sites=("socache/shmcb.py:ShmcbCache._retrieve",))
SHMCB_OPEN_FAILED = LogId("HP05005", "socache",
                          "shmcb: the file cannot be created, opened or mapped",
                          sites=("socache/shmcb.py:ShmcbCache._open_file",))
SHMCB_BAD_KEY = LogId("HP05006", "socache", "shmcb: an empty key refused",
                      sites=("socache/shmcb.py:ShmcbCache._store",))
DBM_REBUILT = LogId("HP05007", "socache", "dbm: the file is not a usable database: rebuilt",
                    sites=("socache/dbm.py:DbmCache.init",))
DBM_ERROR = LogId("HP05008", "socache",
                  "dbm: open, read or write failed, or an entry is too big: a miss",
                  sites=("socache/dbm.py:DbmCache.init", "socache/dbm.py:DbmCache._failed",
                         "socache/dbm.py:DbmCache.store"))
REDIS_ERROR = LogId("HP05010", "socache", "redis: server down, timeout or protocol error: a miss",
                    sites=("socache/redis.py:RedisCache",))
REDIS_OVERSIZED = LogId("HP05011", "socache", "redis: an entry over max_entry_size refused",
                        sites=("socache/redis.py:RedisCache.store",))
MEMCACHE_ERROR = LogId("HP05020", "socache",
                       "memcache: server down, timeout or server error: a miss",
                       sites=("socache/memcache.py:MemcacheCache",))
MEMCACHE_OVERSIZED = LogId("HP05021", "socache",
                           "memcache: an entry over max_entry_size, or a key too long or empty, "
                           "refused",
                           sites=("socache/memcache.py:MemcacheCache._mkey",
                                  "socache/memcache.py:MemcacheCache.store"))
MUTEX_LOCK_FAILED = LogId("HP05030", "socache",
                          "mutex: the lock or unlock system call failed (hold yields False)",
                          sites=("socache/mutex.py:GlobalMutex.hold",
                                 "socache/mutex.py:GlobalMutex.acquire",
                                 "socache/mutex.py:GlobalMutex.release"))
MUTEX_CREATE_FAILED = LogId("HP05031", "socache",
                            "mutex: the lock file cannot be created or opened",
                            sites=("socache/mutex.py:GlobalMutex._open",))
FLEET_LOCK_UNREACHABLE = LogId("HP05040", "socache",
                               "fleet lock: its server is unreachable (hold yields False)",
                               sites=("socache/fleetlock.py:FleetLock.acquire",))
FLEET_LOCK_RELEASE_FAILED = LogId("HP05041", "socache",
                                  "fleet lock: release failed, or the lock had expired (TTL) "
                                  "before it",
                                  sites=("socache/fleetlock.py:FleetLock._release",))

# ---- HP06000-HP06999 status: status pages (mod_status, stapling-status, metrics) ----------------
STATUS_PAGE_FAILED = LogId("HP06001", "status",
                           "a status page (server-status, stapling-status, metrics) failed: 500",
                           sites=("modules/status.py:server_status",
                                  "modules/status.py:stapling_status",
                                  "modules/status.py:prometheus"))
STATUS_STAPLING_FAILED = LogId("HP06002", "status",
                               "the stapling part of a status page failed (the rest is shown)",
                               sites=("modules/status.py:stapling_report",))

# ---- HP07000-HP07099 ssl: OCSP stapling preflight (-t and start-up) -----------------------------
PREFLIGHT_PROBLEM = LogId("HP07001", "ssl",
                          "stapling preflight: a problem with a certificate's OCSP setup",
                          sites=("stapling/preflight.py:run",))
PREFLIGHT_STRICT = LogId("HP07002", "ssl",
                         "stapling preflight: a problem under SSLStaplingMustStaple strict (the "
                         "start fails)",
                         sites=("stapling/preflight.py:run",))
PREFLIGHT_GOOD = LogId("HP07003", "ssl", "stapling preflight: a certificate checked good",
                       sites=("stapling/preflight.py:run",))
PREFLIGHT_SKIPPED = LogId("HP07004", "ssl",
                          "stapling preflight skipped (-D SKIP_STAPLING_PREFLIGHT)",
                          sites=("stapling/preflight.py:wanted",))

# ---- HP07100-HP07199 core: piped logs -----------------------------------------------------------
PIPED_EXITED = LogId("HP07101", "core", "a piped log program exited: restarting it",
                     ah="AH00106", sites=("piped.py:reaped",))
PIPED_RESTARTED = LogId("HP07102", "core", "a piped log program restarted",
                        sites=("piped.py:maintain",))
PIPED_RESTART_FAILED = LogId("HP07103", "core", "a piped log program cannot be started again",
                             ah="AH00104", sites=("piped.py:maintain",))

# ---- HP08000-HP08009 headers: mod_headers -------------------------------------------------------
HEADERS_CONDITION_FAILED = LogId("HP08001", "headers",
                                 "Header/RequestHeader: an expr= condition failed at request time "
                                 "(the action runs)",
                                 ah="AH01501", sites=("modules/headers.py:_applies",))
HEADERS_VALUE_FAILED = LogId("HP08002", "headers",
                             "Header/RequestHeader: an expr= value failed (the value is empty)",
                             ah="AH02557", sites=("modules/headers.py:_value",))

# ---- HP08010-HP08099 setenvif: mod_setenvif -----------------------------------------------------
SETENVIF_EXPR_FAILED = LogId("HP08010", "setenvif",
                             "SetEnvIfExpr failed at request time (nothing is set)",
                             sites=("modules/setenvif.py:run_rules",))

# ---- HP09000-HP09999 autoindex: mod_autoindex ---------------------------------------------------
AUTOINDEX_UNREADABLE = LogId("HP09001", "autoindex",
                             "a directory cannot be opened for its listing: 403",
                             ah="AH01275", sites=("modules/autoindex.py:listing",))

# ---- HP10000-HP10999 negotiation: mod_negotiation -----------------------------------------------
NEGOTIATION_NO_VARIANT = LogId("HP10001", "negotiation", "no acceptable variant: 406",
                               ah="AH00690", sites=("modules/negotiation.py:do_negotiation",))
NEGOTIATION_MAP_WARNING = LogId("HP10002", "negotiation",
                                "a type map entry has a bad Content-Length or no end tag (the "
                                "entry is used as it is)",
                                ah="AH00684", sites=("modules/negotiation.py:_log",))
NEGOTIATION_DIRECTORY_UNREADABLE = LogId("HP10003", "negotiation",
                                         "MultiViews cannot read the directory",
                                         ah="AH00686",
    sites=("modules/negotiation.py:read_types_multi",))
NEGOTIATION_NONE_NEGOTIABLE = LogId("HP10004", "negotiation",
                                    "files match the request but none could be negotiated",
                                    ah="AH00687",
    sites=("modules/negotiation.py:read_types_multi",))
NEGOTIATION_MAP_SYNTAX = LogId("HP10005", "negotiation", "a type map has a syntax error: 500",
                               ah="AH00681", sites=("modules/negotiation.py:_negotiate_map",))
NEGOTIATION_MAP_UNREADABLE = LogId("HP10006", "negotiation", "a type map file cannot be opened",
                                   ah="AH00683", sites=("modules/negotiation.py:_negotiate_map",))

# ---- HP11000-HP11999 ssl: OCSP stapling: warm-up before fork ------------------------------------
STAPLING_WARM_UP_INCOMPLETE = LogId("HP11001", "ssl",
                                    "the responder client's warm-up did not complete",
                                    sites=("stapling/service.py:StaplingService.init",))
STAPLING_MEMO_WARM_UP = LogId("HP11002", "ssl", "a cached response could not be judged at warm-up",
                              sites=("stapling/service.py:StaplingService.warm_memo",))

# ---- HP12000-HP12999 rewrite: mod_rewrite -------------------------------------------------------
REWRITE_UNSAFE_3F = LogId("HP12010", "rewrite",
                          "a rewritten URL with %3f without UnsafeAllow3F: 403",
                          ah="AH10508", sites=("modules/rewrite/engine.py:apply_rule",))
REWRITE_URI_TOO_LONG = LogId("HP12011", "rewrite",
                             "a RewriteRule's result exceeded the maximum length: 500",
                             sites=("modules/rewrite/engine.py:apply_list",))
REWRITE_TOO_MANY_ROUNDS = LogId("HP12012", "rewrite",
                                "a RewriteRule exceeded the maximum number of rounds ([N]): 500",
                                ah="AH02596", sites=("modules/rewrite/engine.py:apply_list",))
REWRITE_CONTROL_CHARACTERS = LogId("HP12013", "rewrite",
                                   "a rewritten query string or proxy URL contains control "
                                   "characters or spaces: 403",
                                   ah="AH10410",
                                   sites=("modules/rewrite/engine.py:_proxy_decision",
                                          "modules/rewrite/engine.py:translate",
                                          "modules/rewrite/engine.py:fixup"))
REWRITE_NO_PROXY = LogId("HP12014", "rewrite", "[P] without mod_proxy: 403",
                         ah="AH00669", sites=("modules/rewrite/engine.py:_proxy_decision",))
REWRITE_CANNOT_MAP = LogId("HP12015", "rewrite",
                           "a rewritten request cannot be mapped to a file: 403",
                           sites=("modules/rewrite/engine.py:translate",))
REWRITE_SYMLINKS_OFF = LogId("HP12016", "rewrite",
                             "per-directory RewriteRule with FollowSymLinks and "
                             "SymLinksIfOwnerMatch both off: 403",
                             ah="AH00670", sites=("modules/rewrite/engine.py:fixup",))
REWRITE_MAP_UNREADABLE = LogId("HP12020", "rewrite", "a txt: RewriteMap file cannot be accessed",
                               ah="AH00661", sites=("modules/rewrite/maps.py:_entries",))
REWRITE_MAP_OPEN_FAILED = LogId("HP12021", "rewrite", "a txt: RewriteMap file cannot be opened",
                                ah="AH00655", sites=("modules/rewrite/maps.py:_entries",))
REWRITE_TRACE = LogId("HP12100", "rewrite", "a mod_rewrite trace line (LogLevel rewrite:trace1..8)",
                      sites=("modules/rewrite/hooks.py:_tracer.emit",))

# ---- HP13000-HP13099 proxy: mod_proxy and its balancer ------------------------------------------
PROXY_CONNECT_ERROR = LogId("HP13001", "proxy", "the backend connection failed: the reason",
                            ah="AH00957", sites=("modules/proxy/handler.py:_connect",))
PROXY_CONNECT_FAILED = LogId("HP13002", "proxy", "failed to make connection to backend: 503",
                             ah="AH01114", sites=("modules/proxy/handler.py:_connect",))
PROXY_STATUS_LINE = LogId("HP13003", "proxy", "error reading the status line from the backend: 502",
                          ah="AH01102", sites=("modules/proxy/handler.py:_failed",))
PROXY_READ_FAILED = LogId("HP13004", "proxy", "error reading the response body from the backend",
                          sites=("modules/proxy/handler.py:_response",
                                 "modules/proxy/handler.py:_stream"))
PROXY_BAD_RESPONSE = LogId("HP13005", "proxy", "a malformed response head from the backend: 502",
                           sites=("modules/proxy/handler.py:_failed",
                                  "modules/proxy/handler.py:_response"))
PROXY_NO_BALANCER = LogId("HP13006", "proxy", "the request names a balancer that is not defined: 503",
                          sites=("modules/proxy/handler.py:_balanced",))
PROXY_NO_WORKER = LogId("HP13007", "proxy", "all workers of a balancer are in error state: 503",
                        ah="AH01170", sites=("modules/proxy/handler.py:_balanced",))
PROXY_TLS_FAILED = LogId("HP13008", "proxy", "the TLS handshake with an https backend failed: 500",
                         sites=("modules/proxy/handler.py:_connect",))
PROXY_TUNNEL_ENDED = LogId("HP13009", "proxy", "a WebSocket/Upgrade tunnel ended",
                           sites=("modules/proxy/handler.py:_tunnel",))
PROXY_SSL_NOT_ENABLED = LogId("HP13011", "proxy", "an https backend without SSLProxyEngine on: 500",
                              ah="AH01961", sites=("modules/proxy/handler.py:_connect",))
PROXY_BLOCKED = LogId("HP13012", "proxy", "ProxyBlock refuses the backend host: 403",
                      ah="AH00916", sites=("modules/proxy/handler.py:_proxy_once",))
PROXY_BODY_TIMEOUT = LogId("HP13013", "proxy",
                           "the backend took no more of the request body within the timeout: 504",
                           sites=("modules/proxy/handler.py:_failed",))
PROXY_UNSUPPORTED_URL = LogId("HP13020", "proxy",
                              "the proxy target is not a URL httpd-py proxies to: 500",
                              ah="AH01144", sites=("modules/proxy/handler.py:handle",))

# ---- HP13100-HP13199 remoteip: mod_remoteip -----------------------------------------------------
REMOTEIP_UNPARSABLE = LogId("HP13101", "remoteip",
                            "a RemoteIPHeader value cannot be parsed as a client IP",
                            ah="AH01568", sites=("modules/remoteip.py:resolve",))
REMOTEIP_NOT_TRUSTED = LogId("HP13102", "remoteip",
                             "a RemoteIPHeader value is a private IP or nonsensical: ignored",
                             ah="AH01569", sites=("modules/remoteip.py:resolve",))
REMOTEIP_USING = LogId("HP13103", "remoteip",
                       "the client IP taken from RemoteIPHeader, and by which proxies",
                       sites=("modules/remoteip.py:post_read",))

# ---- HP14000-HP14999 ssl: TLS contexts: session tickets, contexts shared by vhosts --------------
SSL_TICKETS_UNCONTROLLED = LogId("HP14001", "ssl",
                                 "SSL_CTX_set_num_tickets not found: TLS 1.3 sends OpenSSL's "
                                 "default tickets",
                                 sites=("tls/context.py:_finished",))
SSL_SHARED_CONTEXT_REFUSED = LogId("HP14002", "ssl",
                                   "SNI: OpenSSL refused a vhost's certificate on the TLS context "
                                   "it shares",
                                   sites=("tls/sites.py:_servername_callback",))
SSL_SHARED_CONTEXTS = LogId("HP14003", "ssl",
                            "how many name-based vhosts share how many TLS contexts",
                            sites=("tls/sites.py:build_sites",))

#: ids no longer logged: never used again (an id never changes meaning once shipped)
RETIRED: dict[str, str] = {
    "HP00902": "a post-config check's warning at start-up: now HP00102, as on -t",
    "HP04006": "SSLUseStapling without SSLStaplingCache at start-up: checked once at config time "
               "(AH01958)",
}


def _collect() -> dict[str, LogId]:
    out: dict[str, LogId] = {}
    for name, value in list(globals().items()):
        if isinstance(value, LogId):
            if value in out:
                raise ValueError(f"log id {value} registered twice: {out[value].name} and {name}")
            value.__dict__["name"] = name
            out[str(value)] = value
    return dict(sorted(out.items()))


#: id -> its entry
ALL: dict[str, LogId] = _collect()


def by_id(ident: str) -> LogId:
    """The registered entry of an id string (KeyError when none)."""
    return ALL[ident]


def range_of(ident: str) -> tuple[str, str, str, str] | None:
    for r in RANGES:
        if r[0] <= ident <= r[1]:
            return r
    return None


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """docs/log-ids.md."""
    out = [
        "# Log ids\n\n",
        "Generated from `httpd_py/logids.py` by `python -m httpd_py.logids > docs/log-ids.md`; "
        "a test fails when this page is stale.\n\n",
        "Every error-log line carries an id: `[ssl:error] [pid 123] HP04022: ...`.  An id names "
        "one message and never changes meaning: grep the logs for it, assert on it in tests.  "
        "*Apache* is the AH id of the message an id mirrors.  *Used in* lists the functions that "
        "use the id (`python -m httpd_py.devtools.logsites` gives the lines).\n\n",
        "## Ranges\n\n| Ids | Module | What |\n|---|---|---|\n",
    ]
    for first, last, module, what in RANGES:
        out.append(f"| {first}-{last} | {module} | {_cell(what)} |\n")
    for first, last, module, what in RANGES:
        ids = [v for k, v in ALL.items() if first <= k <= last]
        if not ids:
            continue
        out.append(f"\n## {first}-{last}: {_cell(what)}\n\n"
                   "| Id | Name | Module | Meaning | Apache | Used in |\n"
                   "|---|---|---|---|---|---|\n")
        for v in ids:
            where = "<br>".join(f"`{s}`" for s in v.sites)
            out.append(f"| {v} | `{v.name}` | {v.module} | {_cell(v.meaning)} | {v.ah} | "
                       f"{where} |\n")
    out.append("\n## Retired\n\nNo longer logged; never used again.\n\n| Id | Was |\n|---|---|\n")
    for k, was in sorted(RETIRED.items()):
        out.append(f"| {k} | {_cell(was)} |\n")
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
