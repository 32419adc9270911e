"""The access phases of a request: mod_access_compat (Order/Allow/Deny), mod_authz_core
(Require) and, when a rule needs a user, authentication (mod_auth_basic + mod_authn_file), in
the order and with the outcomes of Apache's ap_process_request_internal:

    Satisfy All (default): host rules must pass (else 403); then Require without a user:
        granted -> OK; denied -> 403; needs a user -> authenticate (401 + challenge when the
        credentials are missing or wrong), then Require with the user (401/403)
    Satisfy Any: host rules passing is enough; otherwise as above

``check(conf, facts)`` is pure but for the password/group files and DNS (Require host); it
returns an ``Outcome`` the pipeline turns into a response.  ``RequestFacts`` is what the
providers and ap_expr read of a request.
"""
from __future__ import annotations

from typing import NamedTuple

from httpd_py import logids
from httpd_py.config.model import UNSET
# imported here, in the master: workers run as User/Group and may not be able to read the
# Python installation to import anything lazily
from httpd_py.modules import access_compat, auth_basic, authn_file, authz_core
from httpd_py.modules.access_compat import DENY_ALLOW, access_allowed
from httpd_py.modules.authn_file import GENERAL_ERROR, GRANTED, USER_NOT_FOUND

_files: dict[tuple[str, str], object] = {}      # (kind, path) -> PasswordFile | GroupFile


def _file(kind: str, path: str):
    f = _files.get((kind, path))
    if f is None:
        cls = authn_file.PasswordFile if kind == "user" else authn_file.GroupFile
        f = _files[(kind, path)] = cls(path)
    return f


class RequestFacts:
    """One request as Require providers and ap_expr see it."""

    __slots__ = ("method", "remote_ip", "local_ip", "local_port", "user", "headers", "uri",
                 "query", "https", "host", "protocol", "request_line", "filename",
                 "document_root", "server_name", "group_file", "auth_type", "env_vars")

    def __init__(self, *, method: str, remote_ip: str, local_ip: str, local_port: int,
                 headers: dict, uri: str, query: str, https: bool, protocol: str,
                 request_line: str, filename: str = "", document_root: str = "",
                 server_name: str = ""):
        self.method, self.remote_ip, self.local_ip = method, remote_ip, local_ip
        self.local_port, self.headers, self.uri, self.query = local_port, headers, uri, query
        self.https, self.protocol, self.request_line = https, protocol, request_line
        self.filename, self.document_root = filename, document_root
        self.server_name = server_name
        self.host = headers.get("host", "")
        self.user = None
        self.env_vars: dict[str, str] = {}
        self.group_file = None
        self.auth_type = None

    @classmethod
    def of(cls, req) -> "RequestFacts":
        """The facts of a ``hooks.Request``; ``env_vars`` IS ``req.env`` (what SetEnvIf set in
        post_read/header_parser), so ``Require env`` and ``Allow from env=`` see it."""
        vhost = req.vhost
        f = cls(method=req.method, remote_ip=req.client_ip, local_ip=req.local_ip,
                local_port=req.local_port, headers=req.headers, uri=req.uri, query=req.query,
                https=req.https, protocol="HTTP/" + req.version, request_line=req.request_line,
                filename=req.filename,
                document_root=vhost.document_root if vhost is not None else "",
                server_name=vhost.server_name if vhost is not None else "")
        f.env_vars = req.env
        f.user = req.user
        return f

    # authz_core.AuthzRequest
    def env(self, name: str) -> str:
        return self.env_vars.get(name, "")

    def groups_of(self, user: str):
        if not self.group_file:
            return frozenset()
        return _file("group", self.group_file).groups_of(user)

    def expr_context(self):
        return self

    # expr.ExprContext
    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def var(self, name: str) -> str:
        n = name.upper()
        if n.startswith("HTTP_") and n not in ("HTTP_HOST",):
            return self.headers.get(n[5:].lower().replace("_", "-"), "")
        f = _VARS.get(n)
        return f(self) if f is not None else ""


_VARS = {
    "HTTP_HOST": lambda r: r.host,
    "REQUEST_URI": lambda r: r.uri,
    "REQUEST_METHOD": lambda r: r.method,
    "REQUEST_SCHEME": lambda r: "https" if r.https else "http",
    "QUERY_STRING": lambda r: r.query,
    "HTTPS": lambda r: "on" if r.https else "off",
    "REMOTE_ADDR": lambda r: r.remote_ip,
    "REMOTE_USER": lambda r: r.user or "",
    "AUTH_TYPE": lambda r: r.auth_type or "",
    "SERVER_NAME": lambda r: r.server_name or r.host.split(":")[0],
    "SERVER_PORT": lambda r: str(r.local_port),
    "SERVER_ADDR": lambda r: r.local_ip,
    "SERVER_PROTOCOL": lambda r: r.protocol,
    "THE_REQUEST": lambda r: r.request_line,
    "REQUEST_FILENAME": lambda r: r.filename,
    "SCRIPT_FILENAME": lambda r: r.filename,
    "DOCUMENT_ROOT": lambda r: r.document_root,
    "IPV6": lambda r: "on" if ":" in r.remote_ip else "off",
}


class Outcome(NamedTuple):
    status: int                  # 0: allowed
    headers: tuple = ()          # (b"WWW-Authenticate", value) with a 401
    msgid: str = ""
    text: str = ""


ALLOWED = Outcome(0)


def _static(item) -> bool:
    if isinstance(item, authz_core.Rule):
        return item.provider == "all" and item.methods is None
    return all(_static(i) for i in item.items)


class _NoRequest:
    method, remote_ip, local_ip, user, env_vars = "GET", "", "", None, {}


def static_verdict(conf) -> Outcome | None:
    """The access decision when it cannot depend on the request (no access configuration, or
    only ``Require all`` rules without method limits): computed once per merged conf.  None:
    the request decides (``check``)."""
    if conf.satisfy is not UNSET or conf.order is not UNSET or conf.allows is not UNSET \
            or conf.denies is not UNSET or conf.auth_type not in (UNSET, "none"):
        return None
    tree = conf.authz if conf.authz is not UNSET else None
    if tree is None:
        return ALLOWED
    if not _static(tree):
        return None
    r = authz_core.check(tree, _NoRequest, auth_type=None, after_authn=False)
    if r == authz_core.OK:
        return ALLOWED
    return Outcome(403, (), logids.ACCESS_DENIED, "")    # the caller adds the path to the line


def _order_for(conf, method: str) -> str:
    order = DENY_ALLOW
    if conf.order is not UNSET:
        for methods, o in conf.order:
            if methods is None or methods.applies(method):
                order = o
    return order


def _host_rules_pass(conf, facts: RequestFacts) -> bool:
    if conf.order is UNSET and conf.allows is UNSET and conf.denies is UNSET:
        return True
    return access_allowed(_order_for(conf, facts.method),
                          conf.allows if conf.allows is not UNSET else (),
                          conf.denies if conf.denies is not UNSET else (),
                          facts.method, facts.remote_ip, facts.env_vars)


def check(conf, facts: RequestFacts, authorization: str | None) -> Outcome:
    """The access decision for a request with merged per-directory ``conf``."""
    satisfy_any = conf.satisfy == "any"
    hosts_ok = _host_rules_pass(conf, facts)
    if satisfy_any and hosts_ok:
        return ALLOWED
    if not hosts_ok and not satisfy_any:
        return Outcome(403, (), logids.ACCESS_DENIED, f"client denied by server configuration: "
                       f"{facts.filename or facts.uri}")
    tree = conf.authz if conf.authz is not UNSET else None
    auth_type = conf.auth_type if conf.auth_type not in (UNSET, "none") else None
    facts.group_file = conf.auth_group_file if conf.auth_group_file is not UNSET else None
    forbidden = conf.authz_forbidden_on_fail is True
    r = authz_core.check(tree, facts, auth_type=auth_type, after_authn=False,
                         forbidden_on_fail=forbidden)
    if r == authz_core.OK:
        return ALLOWED
    if r == 500:
        return Outcome(500, (), logids.ACCESS_AUTHTYPE_WITHOUT_REQUIRE, "AuthType configured with "
                       "no corresponding authorization directives")
    if r == 403:
        return Outcome(403, (), logids.ACCESS_DENIED, f"client denied by server configuration: "
                       f"{facts.filename or facts.uri}")
    # a user is needed: authenticate
    if auth_type is None:
        return Outcome(500, (), logids.ACCESS_NO_AUTHENTICATION, f"No authentication done but "
                       f"request not allowed without authentication for {facts.uri}. "
                       f"Authentication not configured?")
    realm = conf.auth_name if conf.auth_name is not UNSET else None
    if realm is None:
        return Outcome(500, (), logids.ACCESS_NEED_AUTHNAME, f"need AuthName: {facts.uri}")
    challenge = ((b"WWW-Authenticate", auth_basic.challenge(realm)),)
    creds = auth_basic.parse_authorization(authorization)
    if creds is None:
        return Outcome(401, challenge, logids.ACCESS_NO_CREDENTIALS,
                       "no credentials" if not authorization else "client used wrong "
                       "authentication scheme")
    user, password = creds
    path = conf.auth_user_file if conf.auth_user_file is not UNSET else None
    if path is None:
        return Outcome(500, (), logids.ACCESS_NO_USER_FILE,
                       "AuthUserFile not specified in the configuration")
    verdict = _file("user", path).check(user, password)
    if verdict == GENERAL_ERROR:
        return Outcome(500, (), logids.ACCESS_PASSWORD_FILE_UNREADABLE,
                       f"could not open password file: {path}")
    if verdict != GRANTED:
        why = (f"user {user} not found" if verdict == USER_NOT_FOUND
               else f"user {user}: authentication failure")
        return Outcome(401, challenge, logids.ACCESS_AUTHENTICATION_FAILED, f"{why}: {facts.uri}")
    facts.user, facts.auth_type = user, "Basic"
    r = authz_core.check(tree, facts, auth_type=auth_type, after_authn=True,
                         forbidden_on_fail=forbidden)
    if r == authz_core.OK:
        return ALLOWED
    if r == 401:
        return Outcome(401, challenge, logids.ACCESS_AUTHORIZATION_FAILED,
                       f"user {user}: authorization failure for \"{facts.uri}\"")
    if r == 403:
        return Outcome(403, (), logids.ACCESS_AUTHORIZATION_FAILED,
                       f"user {user}: authorization failure for \"{facts.uri}\"")
    return Outcome(500, (), logids.ACCESS_AUTHORIZATION_ERROR,
                   f"authorization error for {facts.uri}")
