"""mod_proxy's directives: the frozen values they build and their handlers.

Settings keys (``dirconf.register``):

    srv.proxy.passes      ProxyPass/ProxyPassMatch outside sections: PassRule, main server's
                          first then the vhost's (ProxyPassInherit On, Apache's default)
    dir.proxy.pass        ProxyPass inside <Location>/<LocationMatch>: one PassRule (the last
                          section that matches the URL and has one wins, and is tried first)
    srv.proxy.workers     Worker definitions (a ProxyPass URL with parameters, BalancerMember)
    srv.proxy.balancers   Balancer, by name (a vhost's definition of a name replaces the main's)
    dir.proxy.reverse     ProxyPassReverse: ReverseRule, inherited first
    dir.proxy.cookie_domain / dir.proxy.cookie_path   (internal, public) pairs
    dir.proxy.preserve_host, dir.proxy.add_headers, dir.proxy.error_override
    srv.proxy.via         "off" | "on" | "full" | "block"
    srv.proxy.timeout     ProxyTimeout seconds
    srv.proxy.ssl         SSLProxySettings (SSLProxyEngine, -Verify, -CACertificateFile,
                          -CheckPeerName, -CheckPeerCN)

Workers are named by their URL (scheme and host lower-case) as Apache names them; a request's
worker is the configured one whose name is the longest prefix of the target URL, else the
default reverse worker with default parameters.  A worker defined under a name an existing worker
already covers shares that worker and its parameters are ignored, as Apache's AH01146.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from httpd_py.config import dirconf, values
from httpd_py.modules.proxy.balancer import TABLE
from httpd_py.errors import ConfigError

K_PASSES = dirconf.register("srv.proxy.passes", "concat")
K_PASS_DIR = dirconf.register("dir.proxy.pass", "override")
K_WORKERS = dirconf.register("srv.proxy.workers", "concat")
K_REVERSE = dirconf.register("dir.proxy.reverse", "concat")
K_COOKIE_DOMAIN = dirconf.register("dir.proxy.cookie_domain", "concat")
K_COOKIE_PATH = dirconf.register("dir.proxy.cookie_path", "concat")
K_PRESERVE_HOST = dirconf.register("dir.proxy.preserve_host", "override")
K_ADD_HEADERS = dirconf.register("dir.proxy.add_headers", "override")
K_ERROR_OVERRIDE = dirconf.register("dir.proxy.error_override", "override")
K_VIA = dirconf.register("srv.proxy.via", "override")
K_TIMEOUT = dirconf.register("srv.proxy.timeout", "override")
K_REQUESTS = dirconf.register("srv.proxy.requests", "override")
K_SSL = dirconf.register("srv.proxy.ssl", "override")
K_OWN_PASSES = dirconf.register("srv.proxy.own_passes", "override")   # for ProxyPassInherit Off
K_INHERIT = dirconf.register("srv.proxy.inherit", "override")
K_CONTINUE = dirconf.register("dir.proxy.continue", "override")       # Proxy100Continue
K_BLOCK = dirconf.register("srv.proxy.block", "concat")               # ProxyBlock words


def _merge_balancers(base: tuple, new: tuple) -> tuple:
    names = {b.name for b in new}
    return tuple(b for b in base if b.name not in names) + new


K_BALANCERS = dirconf.register("srv.proxy.balancers", _merge_balancers)

SCHEMES = ("http", "https", "ws", "wss", "balancer")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
STATUS_FLAGS = {"d": "disabled", "s": "stopped", "i": "ignore-errors", "h": "hot-standby",
                "e": "in-error", "n": "drain", "r": "hot-spare", "c": "hcheck-fail"}


@dataclass(frozen=True)
class WorkerParams:
    timeout: float | None = None             # None: ProxyTimeout, else Timeout
    connectiontimeout: float | None = None   # None: the timeout
    retry: float = 60.0
    keepalive: bool = False                  # SO_KEEPALIVE on the backend socket
    disablereuse: bool = False
    max: int | None = None                   # per process (prefork: 1 is what a process uses)
    ttl: float | None = None                 # an idle pooled connection older than this closes
    loadfactor: int = 1
    lbset: int = 0
    route: str = ""
    redirect: str = ""
    status: frozenset = frozenset()          # "disabled", "hot-standby", "in-error", ...
    upgrade: str = ""                        # "websocket", "*" or a protocol name
    ping: float | None = None
    given: tuple = ()                        # the names written, for AH01146-style warnings


@dataclass(frozen=True)
class Worker:
    name: str                    # the URL, scheme and host lower-case, no trailing slash
    scheme: str
    host: str
    port: int
    params: WorkerParams = field(default_factory=WorkerParams)
    slot: int = 0                # its state in balancer.TABLE (shared by all processes)

    @property
    def tls(self) -> bool:
        return self.scheme in ("https", "wss")

    @property
    def hostport(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"


@dataclass(frozen=True)
class Balancer:
    name: str                    # "balancer://name", lower-case
    members: tuple = ()          # Worker, in definition order
    lbmethod: str = "byrequests"
    sticky: tuple = ()           # stickysession names (cookie or URL parameter)
    stickysep: str = "."
    scolonpathdelim: bool = False
    nofailover: bool = False
    maxattempts: int | None = None
    failonstatus: frozenset = frozenset()
    failontimeout: bool = False
    forcerecovery: bool = True


@dataclass(frozen=True)
class PassRule:
    path: str                    # URL-path prefix, or the regex text
    url: str                     # target URL, or "!"
    regex: re.Pattern | None = None
    nocanon: bool = False
    noquery: bool = False
    interpolate: bool = False
    where: str = ""              # file:line, for messages


@dataclass(frozen=True)
class ReverseRule:
    path: str
    url: str
    interpolate: bool = False


@dataclass(frozen=True)
class SSLProxySettings:
    engine: bool = False
    verify: str = "none"         # none | optional | require | optional_no_ca
    ca_file: str | None = None
    check_peer_name: bool | None = None    # None: not set (then SSLProxyCheckPeerCN decides)
    check_peer_cn: bool = True

    @property
    def check_name(self) -> bool:
        """mod_ssl: SSLProxyCheckPeerName when set, else SSLProxyCheckPeerCN (both on by
        default); the check runs whatever SSLProxyVerify says."""
        return self.check_peer_name if self.check_peer_name is not None else self.check_peer_cn


# -- parsing -----------------------------------------------------------------------------------
def split_url(url: str, directive: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of a backend URL; ConfigError as Apache's wording."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError:
        raise ConfigError(f"{directive} Unable to parse URL: {url}") from None
    scheme = u.scheme.lower()
    if scheme not in SCHEMES or not u.hostname:
        if scheme and scheme not in SCHEMES and "://" in url:
            raise ConfigError(f"{directive}: scheme '{scheme}' is not built into httpd-py "
                              f"(http, https, ws, wss, balancer)")
        raise ConfigError(f"{directive} Unable to parse URL: {url}")
    if scheme == "balancer":
        return scheme, u.hostname.lower(), 0, u.path
    return scheme, u.hostname.lower(), port or DEFAULT_PORTS[scheme], u.path


_ORIGIN_REST = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)(.*)\Z", re.S)


def worker_name(url: str) -> str:
    """Apache's worker name: scheme and host lower-cased, the rest as written."""
    m = _ORIGIN_REST.match(url)
    if not m:
        return url
    return m.group(1).lower() + m.group(2)


def _onoff(name: str, v: str) -> bool:
    lv = v.lower()
    if lv in ("on", "off"):
        return lv == "on"
    raise ConfigError(f"{name} must be On|Off")


def _secs(name: str, v: str, minimum: float = 0.0) -> float:
    try:
        t = values.seconds(v, name, units=True)
    except ConfigError:
        raise ConfigError(f"{name} must be at least {int(minimum)} second(s)") from None
    if t < minimum:
        raise ConfigError(f"{name} must be at least {int(minimum)} second(s)")
    return t


_WORKER_KEYS = frozenset({"timeout", "connectiontimeout", "retry", "keepalive", "disablereuse",
                          "enablereuse", "max", "min", "smax", "ttl", "loadfactor", "lbset",
                          "route", "redirect", "status", "upgrade", "ping", "flushpackets",
                          "flushwait", "iobuffersize", "receivebuffersize", "hostname",
                          "secret", "mapping", "responsefieldsize", "acquire"})
_BALANCER_KEYS = frozenset({"lbmethod", "stickysession", "stickysessionsep", "scolonpathdelim",
                            "nofailover", "maxattempts", "timeout", "failonstatus",
                            "failontimeout", "forcerecovery", "growth", "vhost"})


def worker_params(pairs: list[tuple[str, str]], base: WorkerParams | None = None) -> WorkerParams:
    p = base or WorkerParams()
    kw: dict = {}
    for key, v in pairs:
        k = key.lower()
        if k not in _WORKER_KEYS:
            raise ConfigError(f"unknown Worker parameter")
        if k == "timeout":
            kw["timeout"] = _secs("Timeout", v, 1)
        elif k == "connectiontimeout":
            kw["connectiontimeout"] = _secs("Connectiontimeout", v, 0.001)
        elif k == "retry":
            kw["retry"] = _secs("Retry", v, 0)
        elif k == "keepalive":
            kw["keepalive"] = _onoff("KeepAlive", v)
        elif k == "disablereuse":
            kw["disablereuse"] = _onoff("DisableReuse", v)
        elif k == "enablereuse":
            kw["disablereuse"] = not _onoff("EnableReuse", v)
        elif k in ("max", "min", "smax"):
            n = values.integer(v, k, minimum=0)
            if k == "max":
                kw["max"] = n
        elif k == "ttl":
            kw["ttl"] = _secs("TTL", v, 1)
        elif k == "loadfactor":
            try:
                n = float(v)
            except ValueError:
                n = 0
            if not 1 <= n <= 100:
                raise ConfigError("LoadFactor must be a number between 1..100")
            kw["loadfactor"] = int(n)
        elif k == "lbset":
            n = values.integer(v, k, minimum=0)
            if n > 99:
                raise ConfigError("lbset must be between 0 and 99")
            kw["lbset"] = n
        elif k == "route":
            if len(v) > 64:
                raise ConfigError("Route length must be < 64 characters")
            kw["route"] = v
        elif k == "redirect":
            kw["redirect"] = v
        elif k == "status":
            kw["status"] = _status_flags(v, p.status | kw.get("status", frozenset()))
        elif k == "upgrade":
            kw["upgrade"] = v.lower()
        elif k == "ping":
            kw["ping"] = _secs("Ping/Pong timeout", v, 0)
        # flushpackets, flushwait, iobuffersize, ...: accepted; httpd-py streams each read
    kw["given"] = p.given + tuple(k.lower() for k, _ in pairs)
    return replace(p, **kw)


def _status_flags(v: str, current: frozenset) -> frozenset:
    cur = set(current)
    sign = "+"
    for ch in v:
        if ch in "+-":
            sign = ch
            continue
        flag = STATUS_FLAGS.get(ch.lower())
        if flag is None:
            raise ConfigError("Unknown status parameter option")
        (cur.add if sign == "+" else cur.discard)(flag)
    return frozenset(cur)


def balancer_params(b: Balancer, pairs: list[tuple[str, str]]) -> Balancer:
    kw: dict = {}
    for key, v in pairs:
        k = key.lower()
        if k not in _BALANCER_KEYS:
            raise ConfigError("unknown Balancer parameter")
        if k == "lbmethod":
            if v.lower() != "byrequests":
                raise ConfigError(f"unknown lbmethod '{v}' (httpd-py builds byrequests)")
            kw["lbmethod"] = "byrequests"
        elif k == "stickysession":
            if len(v) > 64:
                raise ConfigError("stickysession length must be < 64 characters")
            kw["sticky"] = tuple(s for s in v.split("|") if s)
        elif k == "stickysessionsep":
            if len(v) != 1:
                raise ConfigError("stickysessionsep must be a single character or Off")
            kw["stickysep"] = v
        elif k == "scolonpathdelim":
            kw["scolonpathdelim"] = _onoff("scolonpathdelim", v)
        elif k == "nofailover":
            kw["nofailover"] = _onoff("failover", v)
        elif k == "maxattempts":
            kw["maxattempts"] = values.integer(v, k, minimum=0)
        elif k == "failonstatus":
            codes = set()
            for c in re.split(r"[ ,]+", v.strip()):
                if not c.isdigit() or not 100 <= int(c) <= 599:
                    raise ConfigError("failonstatus must be one or more HTTP response codes")
                codes.add(int(c))
            kw["failonstatus"] = frozenset(codes)
        elif k == "failontimeout":
            kw["failontimeout"] = _onoff("failontimeout", v)
        elif k == "forcerecovery":
            kw["forcerecovery"] = _onoff("forcerecovery", v)
        # timeout, growth, vhost: accepted
    return replace(b, **kw)


def split_params(words: list[str], directive: str) -> tuple[list[tuple[str, str]], set]:
    """key=value pairs, and the bare flags (nocanon, interpolate, noquery)."""
    pairs, flags = [], set()
    for w in words:
        lw = w.lower()
        if lw in ("nocanon", "interpolate", "noquery"):
            flags.add(lw)
            continue
        k, sep, v = w.partition("=")
        if not sep or not k:
            raise ConfigError(f"Invalid {directive} parameter. Parameter must be in the form "
                              f"'key=value'.")
        pairs.append((k, v))
    return pairs, flags


# -- building into the walk --------------------------------------------------------------------
# Workers and balancers belong to the server even when a <Location>'s ProxyPass defines them:
# they are written to the server's own settings directly (w.set inside a section would keep
# per-directory keys only).
def _srv_own(w, key: str) -> tuple:
    return w.cur.settings.get(key, ())


def _srv_all(w, key: str) -> tuple:
    own = _srv_own(w, key)
    return own if w.cur is w.main else (*w.main.settings.get(key, ()), *own)


def _srv_set(w, key: str, value) -> None:
    w.cur.settings[key] = value
    w.cur.locs.setdefault(w.name.lower(), w.loc)


def define_worker(w, url: str, pairs: list[tuple[str, str]]) -> Worker:
    """Define (or share) the worker for URL with these parameters in the current server."""
    scheme, host, port, _ = split_url(url, w.name)
    name = worker_name(url).rstrip("/")
    for existing in _srv_all(w, K_WORKERS):
        if name.startswith(existing.name) and (len(name) == len(existing.name)
                                               or name[len(existing.name)] in "/?"):
            if pairs:
                w.warnings.append(f"{w.name}: parameters {' '.join(k for k, _ in pairs)} for "
                                  f"worker '{name}' ignored: it shares worker "
                                  f"'{existing.name}' ({w.loc.file}:{w.loc.line})")
            return existing
    wk = Worker(name, scheme, host, port, worker_params(pairs), TABLE.slot_for(name))
    _srv_set(w, K_WORKERS, (*_srv_own(w, K_WORKERS), wk))
    return wk


def _balancer(w, name: str) -> Balancer:
    for b in reversed(_srv_all(w, K_BALANCERS)):
        if b.name == name:
            return b
    return Balancer(name)


def _put_balancer(w, b: Balancer) -> None:
    cur = tuple(x for x in _srv_own(w, K_BALANCERS) if x.name != b.name)
    _srv_set(w, K_BALANCERS, (*cur, b))


def _section_path(w) -> tuple[str, str] | None:
    """(kind, pattern) of the enclosing <Location*> section, None outside sections; other
    sections refuse ProxyPass as Apache does."""
    sec = w.dir_section
    if sec is None:
        return None
    from httpd_py.config.parser import split_args
    from httpd_py.config.reader import section_text
    kind = sec.lname
    if kind not in ("<location", "<locationmatch"):
        raise ConfigError(f"{w.name} cannot occur within <{sec.name.lstrip('<')}> section")
    words = split_args(section_text(sec))
    if kind == "<location" and words and words[0] == "~":
        return ("<locationmatch", words[1] if len(words) > 1 else "")
    return (kind, words[0] if words else "")


# ProxyPass (not ProxyPassMatch) inside <LocationMatch> takes the section's pattern as a literal
# prefix, as apache2 2.4.71 does (so "<LocationMatch ^/x/> ProxyPass URL" never matches a URL);
# ProxyPassMatch there uses it as the regex.


def _section_words(w) -> str:
    from httpd_py.config.reader import section_text
    return section_text(w.dir_section).strip().strip('"')


def _regex(pattern: str) -> re.Pattern:
    try:
        return re.compile(re.sub(r"\(\?<(?![=!])", "(?P<", pattern))
    except re.error:
        raise ConfigError("Regular expression could not be compiled.") from None


def proxy_pass(match: bool):
    def h(w, args):
        if w.htaccess is not None:
            raise ConfigError(f"{w.name} not allowed here")
        section = _section_path(w)
        words = list(args)
        if section is not None:
            kind, pattern = section
            if not words or (words[0] != "!" and "://" not in words[0] and len(words) > 1
                             and words[0].startswith("/")):
                raise ConfigError(f"{w.name} can not have a path when defined in a location")
            path, url, rest = pattern, words[0], words[1:]
            is_regex = match
        else:
            if len(words) < 2:
                raise ConfigError(f"{w.name} needs a path when not defined in a location")
            path, url, rest = words[0], words[1], words[2:]
            is_regex = match
        pairs, flags = split_params(rest, w.name)
        rx = _regex(path) if is_regex else None
        if url != "!":
            scheme, host, _, _ = split_url(url, w.name)
            if scheme == "balancer":
                if pairs:
                    bname = f"balancer://{host}"
                    _put_balancer(w, balancer_params(_balancer(w, bname), pairs))
            else:
                try:
                    define_worker(w, url if not is_regex else _regex_worker_url(url), pairs)
                except ConfigError as e:
                    raise ConfigError(f"{w.name} {e}" if not str(e).startswith(w.name)
                                      else str(e)) from None
        elif pairs:
            raise ConfigError(f"{w.name}: '!' takes no parameters")
        rule = PassRule(path, url, rx, "nocanon" in flags, "noquery" in flags,
                        "interpolate" in flags, f"{w.loc.file}:{w.loc.line}")
        if section is not None:
            w.set(K_PASS_DIR, rule)
        else:
            w.set(K_PASSES, (*w.own(K_PASSES, ()), rule))
            w.set(K_OWN_PASSES, (*w.own(K_OWN_PASSES, ()), rule))
    return h


def _regex_worker_url(url: str) -> str:
    """A ProxyPassMatch URL's worker: the URL up to its first '$' substitution."""
    return url.split("$", 1)[0]


def proxy_pass_reverse(w, args):
    section = _section_path(w) if w.dir_section is not None else None
    words = list(args)
    interpolate = bool(words) and words[-1].lower() == "interpolate"
    if interpolate:
        words = words[:-1]
    if section is not None:
        if len(words) != 1:
            raise ConfigError("ProxyPassReverse can not have a path when defined in a location")
        path, url = section[1], words[0]
    else:
        if len(words) != 2:
            raise ConfigError("ProxyPassReverse needs a path when not defined in a location")
        path, url = words
    w.extend(K_REVERSE, (ReverseRule(path, url, interpolate),))


def cookie_rule(key: str):
    def h(w, args):
        words = list(args)
        if words and words[-1].lower() == "interpolate":
            words = words[:-1]
        if len(words) != 2:
            raise ConfigError(f"{w.name} takes two arguments")
        w.extend(key, ((words[0], words[1]),))
    return h


def flag_key(key: str):
    def h(w, args):
        w.set(key, values.flag(args[0], w.name))
    return h


def proxy_via(w, args):
    v = args[0].lower()
    if v not in ("on", "off", "full", "block"):
        raise ConfigError("ProxyVia must be one of: off | on | full | block")
    w.set(K_VIA, v)


def proxy_timeout(w, args):
    w.set(K_TIMEOUT, _secs("Proxy Timeout", args[0], 1))


def proxy_requests(w, args):
    on = values.flag(args[0], w.name)
    if on:
        raise ConfigError("ProxyRequests On: forward proxying is not built into httpd-py; "
                          "refused rather than ignored (an open proxy is not what the config "
                          "asks)")
    w.set(K_REQUESTS, False)


def balancer_member(w, args):
    words = list(args)
    bname = getattr(w, "proxy_section", None)
    in_section = w.dir_section is not None and bname is None
    if words and words[0].lower().startswith("balancer://"):
        if in_section:
            raise ConfigError("BalancerMember can not have a balancer name when defined in a "
                              "location")
        bname, words = worker_name(words[0]).rstrip("/"), words[1:]
    elif in_section:
        # Apache takes the section's path as the balancer name
        raise ConfigError(f"BalancerMember Bad syntax for a balancer name "
                          f"({_section_words(w)})")
    if not bname or not bname.startswith("balancer://"):
        raise ConfigError("BalancerMember must define balancer name when outside <Proxy > "
                          "section")
    if not words:
        raise ConfigError("BalancerMember must define remote proxy server")
    url, rest = words[0], words[1:]
    pairs, flags = split_params(rest, w.name)
    if flags:
        raise ConfigError(f"BalancerMember: unknown parameter {sorted(flags)[0]}")
    scheme, host, port, _ = split_url(url, "BalancerMember")
    if scheme == "balancer":
        raise ConfigError("BalancerMember: a balancer cannot be a member of another")
    try:
        params = worker_params(pairs)
    except ConfigError as e:
        raise ConfigError(f"BalancerMember {e}") from None
    mname = worker_name(url).rstrip("/")
    member = Worker(mname, scheme, host, port, params, TABLE.slot_for(f"{bname} {mname}"))
    b = _balancer(w, bname)
    _put_balancer(w, replace(b, members=(*b.members, member)))


def proxy_set(w, args):
    words = list(args)
    name = getattr(w, "proxy_section", None)
    if words and "://" in words[0]:
        name, words = worker_name(words[0]).rstrip("/"), words[1:]
    if not name:
        raise ConfigError("ProxySet needs a URL when not defined in a <Proxy> section")
    pairs, _ = split_params(words, w.name)
    if name.startswith("balancer://"):
        bpairs = [(k, v) for k, v in pairs if k.lower() in _BALANCER_KEYS]
        wpairs = [(k, v) for k, v in pairs if k.lower() not in _BALANCER_KEYS]
        if wpairs:
            raise ConfigError("unknown Balancer parameter")
        if getattr(w, "proxy_section", None) is None and \
                not any(b.name == name for b in _srv_all(w, K_BALANCERS)):
            raise ConfigError(f"ProxySet can not find '{name}' Balancer.")
        _put_balancer(w, balancer_params(_balancer(w, name), bpairs))
    else:
        workers = _srv_own(w, K_WORKERS)
        for i, wk in enumerate(workers):
            if name.startswith(wk.name) and (len(name) == len(wk.name)
                                             or name[len(wk.name)] in "/?"):
                new = replace(wk, params=worker_params(pairs, wk.params))
                _srv_set(w, K_WORKERS, (*workers[:i], new, *workers[i + 1:]))
                return
        if getattr(w, "proxy_section", None) is None:
            raise ConfigError(f"ProxySet can not find '{name}' Worker.")
        define_worker(w, name, pairs)


def proxy_section(w, node) -> None:
    """``<Proxy URL>`` (needs the walker to call a section row's handler, see the module
    docstring): for a balancer:// URL its BalancerMember and ProxySet lines define the
    balancer; ``Require all granted`` is accepted; anything else inside is refused (httpd-py
    does not apply per-<Proxy> access rules yet, and ignoring one could grant more)."""
    from httpd_py.config.parser import split_args
    from httpd_py.config.reader import section_text
    words = split_args(section_text(node))
    if not words:
        raise ConfigError("<Proxy> directive requires additional arguments")
    url = words[0]
    name = worker_name(url).rstrip("/") if "://" in url else url
    outer = getattr(w, "proxy_section", None)
    w.proxy_section = name
    try:
        for child in node.children or []:
            lname = child.name.lower()
            args = split_args(child.args)
            try:
                if lname == "balancermember":
                    w.name = "BalancerMember"
                    balancer_member(w, args)
                elif lname == "proxyset":
                    w.name = "ProxySet"
                    proxy_set(w, args)
                elif lname == "require" and [a.lower() for a in args] == ["all", "granted"]:
                    pass
                else:
                    raise ConfigError(f"{child.name} inside <Proxy> is not applied by httpd-py "
                                      f"yet; refused rather than ignored")
            except ConfigError as e:
                raise e.located(child.file, child.line) from None
    finally:
        w.proxy_section = outer


def _ssl(w) -> SSLProxySettings:
    return w.get(K_SSL) or SSLProxySettings()


def ssl_engine(w, args):
    w.set(K_SSL, replace(_ssl(w), engine=values.flag(args[0], w.name)))


def ssl_verify(w, args):
    v = values.choice(args[0], w.name, ("none", "optional", "require", "optional_no_ca"))
    w.set(K_SSL, replace(_ssl(w), verify=v.lower()))


def ssl_ca_file(w, args):
    import os
    p = values.path(args[0], w.server_root)
    if not os.path.isfile(p) or os.path.getsize(p) == 0:
        raise ConfigError(f"SSLProxyCACertificateFile: file '{p}' does not exist or is empty")
    w.set(K_SSL, replace(_ssl(w), ca_file=p))


def ssl_check_name(w, args):
    w.set(K_SSL, replace(_ssl(w), check_peer_name=values.flag(args[0], w.name)))


def ssl_check_cn(w, args):
    w.set(K_SSL, replace(_ssl(w), check_peer_cn=values.flag(args[0], w.name)))


def proxy_block(w, args):
    """ProxyBlock: backend hosts (a word contained in the host name, case-insensitive, or "*")
    to which nothing is proxied: 403.  Apache also compares the addresses the words resolve
    to at start-up; httpd-py matches the names only."""
    w.extend(K_BLOCK, tuple(a.lower() for a in args))


def interpolate_env(w, args):
    if values.flag(args[0], w.name):
        raise ConfigError("ProxyPassInterpolateEnv On: ${VAR} interpolation in proxy URLs is "
                          "not built into httpd-py; refused rather than proxying to the "
                          "literal text")


def proxy_match_section(w, node) -> None:
    """``<ProxyMatch regex>``: only ``Require all granted`` is accepted inside (httpd-py does
    not apply per-<ProxyMatch> access rules yet; ignoring one could grant more)."""
    from httpd_py.config.parser import split_args
    from httpd_py.config.reader import section_text
    words = split_args(section_text(node))
    if not words:
        raise ConfigError("<ProxyMatch> directive requires additional arguments")
    _regex(words[0])
    for child in node.children or []:
        args = split_args(child.args)
        if child.name.lower() == "require" and [a.lower() for a in args] == ["all", "granted"]:
            continue
        raise ConfigError(f"{child.name} inside <ProxyMatch> is not applied by httpd-py yet; "
                          f"refused rather than ignored").located(child.file, child.line)
