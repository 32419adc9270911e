"""Frozen, typed configuration: what every other layer reads.

The parser turns httpd.conf text into these objects; nothing else in the server looks at config
text.  A ``VHost`` is the main server's settings merged field by field with the vhost's own (as
Apache's per-server merge does), so consumers never merge.  ``UNSET`` marks a field a
``<VirtualHost>`` did not set, during the merge only: every field of a finished ``ServerConfig``
holds a real value (a default where nothing set it).

Contract for the rest of the code (mpm, tls, http, stapling, socache): read these fields, never
mutate (all frozen), never re-parse.  Adding a field is fine; renaming one means updating every
user.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class _Unset:
    _instance: "_Unset | None" = None

    def __new__(cls) -> "_Unset":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Location:
    """Where a directive or section was read: for -S output and post-config errors."""
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


#: shmcb segment sizes: Apache's default and its limits (the config parser and the provider
#: read them from here)
SHMCB_DEFAULT_SIZE = 512000
SHMCB_MIN_SIZE = 8192
SHMCB_MAX_SIZE = 2 ** 32 - 1            # Apache: "size has to be < UINT_MAX"


@dataclass(frozen=True)
class SocacheSpec:
    """A parsed socache argument (SSLStaplingCache, SSLSessionCache).

    provider: "shmcb", "redis", "memcache", "dbm" or "none".
    path: shmcb/dbm file (absolute, resolved against ServerRoot), or None for anonymous shm.
    size: shmcb bytes (default 512000).
    servers: redis/memcache (host, port) pairs, in order.
    raw: the argument as written, for messages and -S.
    """
    provider: str
    raw: str = ""
    path: str | None = None
    size: int = SHMCB_DEFAULT_SIZE
    servers: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class MutexSpec:
    """Effective setting for one named mutex (after Mutex-directive precedence).

    mechanism: "default", "file", "fcntl", "flock" (portalocker-backed) or "none".
    directory: absolute directory for the lock file (DefaultRuntimeDir when not given).
    Lock file: ``<directory>/<name>.<ppid>`` unless omit_pid.
    """
    name: str
    mechanism: str = "default"
    directory: str = ""
    omit_pid: bool = False
    using_defaults: bool = True


@dataclass(frozen=True)
class ListenSpec:
    """One ``Listen [addr:]port [protocol]``; host "" means every address (IPv4 and IPv6)."""
    host: str
    port: int
    protocol: str = ""          # "https", "http" or "" (Apache: https for 443, http otherwise)
    location: Location | None = None


@dataclass(frozen=True)
class VHostAddr:
    """One address of ``<VirtualHost addr:port ...>``; host "*" or "_default_" matches any."""
    host: str
    port: int | None            # None: "*" port (any)


@dataclass(frozen=True)
class CertKeyPair:
    """One SSLCertificateFile with its SSLCertificateKeyFile (None: key in the cert file)."""
    cert_file: str
    key_file: str | None = None


@dataclass(frozen=True)
class StaplingConfig:
    """The stapling directives of one vhost, merged.  Defaults are Apache 2.4's.

    ``enabled`` is SSLUseStapling.  Times are seconds.  ``response_max_age`` None: no limit.
    ``refresh``: "background" (default, httpd-py) or "on-demand" (Apache's model).
    ``renew_window``: seconds before nextUpdate to refresh, or None for "half the
    thisUpdate..nextUpdate span" (SSLStaplingRenewWindow).
    ``must_staple``: "warn" (default) or "strict" (SSLStaplingMustStaple).
    """
    enabled: bool = False
    standard_cache_timeout: int = 3600
    error_cache_timeout: int = 600
    response_time_skew: int = 300
    response_max_age: int | None = None
    responder_timeout: float = 10.0
    return_responder_errors: bool = True
    fake_try_later: bool = True
    force_url: str | None = None
    proxy_url: str | None = None          # SSLOCSPProxyURL
    refresh: str = "background"
    renew_window: int | None = None
    must_staple: str = "warn"


@dataclass(frozen=True)
class SSLConfig:
    """mod_ssl settings of one vhost, merged with the main server's."""
    engine: bool = False
    certificates: tuple[CertKeyPair, ...] = ()
    chain_file: str | None = None               # SSLCertificateChainFile
    ca_file: str | None = None                  # SSLCACertificateFile
    ca_path: str | None = None                  # SSLCACertificatePath
    # SSLProtocol resolved to a set of names from {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}.
    # Default: TLS 1.2 and 1.3 (httpd-py refuses older ones unless asked).
    protocols: frozenset[str] = frozenset({"TLSv1.2", "TLSv1.3"})
    cipher_suite: str | None = None             # SSLCipherSuite [SSL] spec (TLS <= 1.2)
    tls13_cipher_suites: str | None = None      # SSLCipherSuite TLSv1.3 spec
    honor_cipher_order: bool = False
    session_tickets: bool = True
    strict_sni: bool = False                    # SSLStrictSNIVHostCheck
    openssl_conf_cmds: tuple[tuple[str, str], ...] = ()   # SSLOpenSSLConfCmd name value
    session_cache: SocacheSpec | None = None    # SSLSessionCache (accepted; tickets do the work)
    session_cache_timeout: int = 300
    stapling: StaplingConfig = field(default_factory=StaplingConfig)


@dataclass(frozen=True)
class AliasSpec:
    """Alias URL-path target (also ScriptAlias-free: static only)."""
    url_path: str
    target: str


@dataclass(frozen=True)
class RedirectSpec:
    """Redirect [status] URL-path URL; status is 301, 302 (temp, default), 303, 410 (gone)."""
    status: int
    url_path: str
    target: str | None


@dataclass(frozen=True)
class LogFormatRef:
    """A CustomLog: the file (absolute, or "|program") and the resolved format string."""
    path: str
    format: str


@dataclass(frozen=True)
class VHost:
    """One virtual host (or the main server), fully merged.

    ``addrs`` is empty for the main server.  ``names`` are ServerName then ServerAlias values,
    lower-cased; wildcards (``*.example.com``) are kept as written.
    """
    location: Location | None = None
    addrs: tuple[VHostAddr, ...] = ()
    server_name: str = ""
    server_aliases: tuple[str, ...] = ()
    # the same names as written (case kept, ${UNDEFINED} kept), for -S, which prints them so
    server_name_text: str = ""
    server_alias_texts: tuple[str, ...] = ()
    server_admin: str = ""
    document_root: str = ""
    directory_index: tuple[str, ...] = ("index.html",)
    error_log: str = ""
    log_level: str = "warn"
    module_log_levels: tuple[tuple[str, str], ...] = ()
    custom_logs: tuple[LogFormatRef, ...] = ()
    error_documents: tuple[tuple[int, str], ...] = ()
    aliases: tuple[AliasSpec, ...] = ()
    redirects: tuple[RedirectSpec, ...] = ()
    add_types: tuple[tuple[str, str], ...] = ()        # (extension without dot, lower-case; mime type)
    types_config: str = "/etc/mime.types"
    options_follow_symlinks: bool = True                 # Options FollowSymLinks (Apache default: on)
    options_symlinks_if_owner_match: bool = False
    timeout: int = 60
    keep_alive: bool = True
    max_keep_alive_requests: int = 100
    keep_alive_timeout: float = 5.0
    limit_request_line: int = 8190
    limit_request_field_size: int = 8190
    limit_request_fields: int = 100
    limit_request_body: int = 0
    http_protocol_options: tuple = ("Strict", "LenientMethods", "Allow0.9")
    ssl: SSLConfig = field(default_factory=SSLConfig)
    # Per-directory configuration (config/dirconf.py): the server's own defaults (directives
    # outside any section, the main server's merged under a vhost's), its <Directory*> and
    # <Location*> sections (the main server's first, then the vhost's, in file order), and
    # the names .htaccess files have.
    dir: Any = None
    sections: tuple = ()
    access_file_name: tuple[str, ...] = (".htaccess",)
    # RequestReadTimeout (http/reqtimeout.ReadTimeouts); None: no line (the module's defaults
    # apply when reqtimeout_module is loaded)
    request_read_timeout: Any = None
    # Where each directive that shaped this vhost was read (lower-case name -> Location); list
    # directives add "name#i" per entry (e.g. "sslcertificatefile#0").  Inherited from the main
    # server where the vhost did not set the directive itself.  For post-config errors.
    locations: tuple[tuple[str, Location], ...] = ()
    # per-server settings of httpd_py/modules/* ("srv.<module>.<name>", value), sorted by key;
    # see dirconf.register
    mods: tuple = ()

    def mod(self, key: str, default: Any = None) -> Any:
        """A module's per-server value for this vhost (``default`` when not set)."""
        for k, v in self.mods:
            if k == key:
                return v
        return default

    def where(self, directive: str) -> Location | None:
        """Location of the line that set ``directive`` (case-insensitive) for this vhost."""
        key = directive.lower()
        for name, loc in self.locations:
            if name == key:
                return loc
        return None

    def matches_name(self, host: str) -> bool:
        """Does ``host`` (SNI or Host header, no port) match ServerName or a ServerAlias?
        Apache's rules, in ``config/vhosts.py``."""
        from httpd_py.config.vhosts import name_matches
        return name_matches(self, host)


@dataclass(frozen=True)
class VHostGroup:
    """The name-based vhosts sharing one ``<VirtualHost>`` address, in file order.

    host: "*" (any address), "_default_" or an IP; port None means any port.  The first vhost
    (``vhosts[0]``, an index into ``ServerConfig.vhosts``) is the group's default server.
    """
    host: str
    port: int | None
    vhosts: tuple[int, ...]


@dataclass(frozen=True)
class PreforkConfig:
    """prefork MPM settings, after Apache's clamps."""
    start_servers: int = 5
    min_spare_servers: int = 5
    max_spare_servers: int = 10
    max_request_workers: int = 256
    server_limit: int = 256
    max_connections_per_child: int = 0
    graceful_shutdown_timeout: int = 0
    listen_backlog: int = 511


@dataclass(frozen=True)
class ServerConfig:
    """Everything one configuration load produced."""
    config_file: str
    server_root: str
    main: VHost
    vhosts: tuple[VHost, ...]
    listens: tuple[ListenSpec, ...]
    prefork: PreforkConfig = field(default_factory=PreforkConfig)
    pid_file: str = "logs/httpd.pid"             # absolute after load
    user: str | None = None
    group: str | None = None
    default_runtime_dir: str = ""
    mutexes: tuple[MutexSpec, ...] = ()          # one per known mutex name, effective settings
    stapling_cache: SocacheSpec | None = None    # SSLStaplingCache (server-wide only)
    stapling_store_dir: str | None = None        # SSLStaplingStoreDir: persistent staples (httpd-py)
    redis_timeout: float = 5.0
    redis_conn_pool_ttl: float = 15.0
    memcache_conn_ttl: float = 15.0
    defines: tuple[str, ...] = ()
    loaded_modules: tuple[str, ...] = ()
    ignored_directives: tuple[tuple[str, Location], ...] = ()   # accepted, not implemented
    log_formats: tuple[tuple[str, str], ...] = ()               # LogFormat nickname -> format
    vhost_groups: tuple[VHostGroup, ...] = ()                   # name-based tables per addr:port
    warnings: tuple[str, ...] = ()                              # non-fatal findings of the load
    includes: tuple[tuple[int, int, str], ...] = ()             # (depth, Include line, file) read
    define_values: tuple[tuple[str, str], ...] = ()             # Define NAME value ("" if none)
    mods: tuple = ()                     # server-wide module settings ("glob.<module>.<name>", value)
    # where each server-wide directive was read (lower-case name -> Location), for errors found
    # after the walk (socache.check: a provider's own argument checks)
    locations: tuple[tuple[str, Location], ...] = ()

    def mod(self, key: str, default: Any = None) -> Any:
        """A module's server-wide value (``default`` when not set)."""
        for k, v in self.mods:
            if k == key:
                return v
        return default

    def where(self, directive: str) -> Location | None:
        """Location of the line that set the server-wide ``directive`` (case-insensitive)."""
        key = directive.lower()
        for name, loc in self.locations:
            if name == key:
                return loc
        return None

    def mutex(self, name: str) -> MutexSpec:
        """Effective settings of mutex ``name`` (a default spec if none was configured)."""
        for m in self.mutexes:
            if m.name == name:
                return m
        for m in self.mutexes:
            if m.name == "default":
                return dataclasses.replace(m, name=name)
        return MutexSpec(name=name, directory=self.default_runtime_dir)

    def select_vhost(self, local_ip: str, local_port: int, host: str | None) -> VHost:
        """The vhost Apache would pick for a connection to local_ip:local_port and a name
        (SNI or Host, None when absent): the same selection the server makes, from
        ``config/vhosts.py`` (groups from each vhost's addresses, built once per config)."""
        index = self.__dict__.get("_vhost_index")
        if index is None:
            from httpd_py.config.vhosts import VHostIndex
            index = VHostIndex(self.vhosts, self.main)
            object.__setattr__(self, "_vhost_index", index)     # a cache, not a field
        return index.select(local_ip, local_port, host)

    def _groups_from_addrs(self) -> tuple[VHostGroup, ...]:
        """vhost_groups computed from each vhost's addrs (``config/vhosts.py``'s grouping)."""
        from httpd_py.config.vhosts import build_groups
        return tuple(VHostGroup(h, p, tuple(ix)) for (h, p), ix in build_groups(self.vhosts).items())

    def all_vhosts(self) -> tuple[VHost, ...]:
        """The main server followed by every <VirtualHost>."""
        return (self.main, *self.vhosts)
