"""Address-based and name-based virtual hosts, with their TLS Contexts, built before fork.

Layout::

    Sites
      contexts_by_vhost: {id(VHost): SSL.Context}   the Context of each SSL vhost (and of the main
                                                    server when it has SSLEngine on), built once:
                                                    its own, or a shared one (below)
      identities: {id(VHost): pointers}             the certificates and keys of each vhost on a
                                                    shared Context (tls.context.Identity)
      ocsp_by_vhost: {id(VHost): callback}          the OCSP callbacks of those vhosts
      ocsp_shared: {id(VHost): shared(conn, vhost)}  the same, for the stapling service's callbacks
      sni_entries: {id(VHost): row}                 all the callbacks read of a vhost they switch
                                                    to, one tuple each (``sni_rows``)
      site_for(local_ip, port) -> Site              memoised; Sites are cheap views
    Site (one address:port as Apache sees it)
      vhosts: candidate vhosts in config order; vhosts[0] is the address's default
      ssl:    the default vhost's SSLEngine
      context: the default vhost's Context; every Connection on this address is created with
               it, and its servername callback switches to the SNI-named vhost's Context

Selection is ``config/vhosts.py``'s (the one ``ServerConfig.select_vhost`` uses too): a Site is
the address group Apache 2.4 picks for the connection's IP and port (exact IP:port, IP:*, *:port,
*:*, else the main server alone), and ``select`` matches the SNI or Host name in that group
(ServerName, then ServerAlias; first vhost that matches, in config order); no match means the
first candidate.

The servername callback is installed on every vhost Context (a vhost may be the default of one
address and a name-based vhost of another), reads the per-connection ``TLSState`` from
``conn.get_app_data()`` and never raises.

Shared Contexts.  A vhost that is no address's default and whose settings are those of other
such vhosts but for its certificates (same chain, same RSA key size) gets a Context shared with
them, without a certificate; the servername callback switches the connection to it and puts the
vhost's own certificates and keys on the connection.  Its OCSP callback dispatches on the
vhost the SNI named.  One Context per vhost cost ~20 KB in the master and, in every worker, a
copy of the ~4 pages of it that a handshake writes to (references taken on the SSL_CTX, its
CERT, certificates and keys): measured at 1,000 vhosts (``scripts/bench_scale.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib   # SSL_CTX_set1_sigalgs_list, SSL_use_*: no public API

from httpd_py import logids
from httpd_py.config import vhosts as vhost_selection
from httpd_py.config.model import ServerConfig, VHost
from httpd_py.log import error_log
from httpd_py.tls.context import (Identity, build_context, build_shared_context, load_identity,
                                  shared_key, use_identity)

_NAME_MEMO = 1024


def vhost_matches_name(vhost: VHost, name: str) -> bool:
    """ServerName, a plain ServerAlias or a wildcard one, case-insensitively (``config/vhosts``)."""
    return vhost_selection.name_matches(vhost, name)


@dataclass
class TLSState:
    """Per-connection TLS facts the servername callback records for the HTTP layer."""
    site: "Site"
    servername: str | None = None          # SNI as sent (lower-case), None when absent
    sni_vhost: VHost | None = None         # the vhost the SNI name selected (None: no match)
    unknown_strict: bool = False           # SNI named no vhost and the default is strict
    sni_entry: tuple | None = None         # Sites.sni_entries' row of the vhost switched to


@dataclass(eq=False)
class Site:
    ip: str                                 # the group's IP, "*" for a wildcard or the main server
    port: int
    group: vhost_selection.Group
    context: SSL.Context | None
    sites: "Sites" = field(repr=False)
    _names: dict = field(default_factory=dict, repr=False)   # select() memo: name -> vhost/None
    _sni_names: dict = field(default_factory=dict, repr=False)   # select_sni()'s

    @property
    def vhosts(self) -> tuple[VHost, ...]:
        """Candidate vhosts in config order; ``vhosts[0]`` is the address's default."""
        return self.group.vhosts

    @property
    def default(self) -> VHost:
        return self.group.vhosts[0]

    @property
    def ssl(self) -> bool:
        return self.default.ssl.engine

    def select(self, name: str | None) -> VHost | None:
        """The vhost that a Host name names among this address's vhosts, or None."""
        return self._memoised(self._names, self.group.match, name)

    def select_sni(self, name: str | None) -> VHost | None:
        """The vhost that an SNI name names (ServerName/ServerAlias only), or None."""
        return self._memoised(self._sni_names, self.group.match_names, name)

    @staticmethod
    def _memoised(memo: dict, match: Callable[[str], VHost | None], name: str | None) -> VHost | None:
        if not name:
            return None
        try:
            return memo[name]
        except KeyError:
            pass
        found = match(name)
        if len(memo) >= _NAME_MEMO:      # bounded: names come from clients (SNI, Host)
            memo.clear()
        memo[name] = found
        return found

    def select_or_default(self, name: str | None) -> VHost:
        return self.select(name) or self.default

    def context_of(self, vhost: VHost) -> SSL.Context | None:
        return self.sites.contexts_by_vhost.get(id(vhost))


class Sites:
    """Every address's vhosts and every SSL Context, built in the master before fork."""

    def __init__(self, cfg: ServerConfig, contexts_by_vhost: dict[int, SSL.Context],
                 identities: dict[int, Identity] | None = None,
                 ocsp_by_vhost: dict[int, Callable] | None = None,
                 index: vhost_selection.VHostIndex | None = None):
        self.cfg = cfg
        self.contexts_by_vhost = contexts_by_vhost
        self.identities = identities or {}     # also keeps the pointers' owners alive
        self.ocsp_by_vhost = ocsp_by_vhost or {}
        # vhosts on a shared Context whose callback is the stapling service's shared one
        # (``callback.ocsp_callback_for``): called as ``shared(conn, vhost)``
        self.ocsp_shared: dict[int, Callable] = {}
        # what the servername callback needs of a vhost it switches to, in one row per vhost
        # (``sni_rows``): (Context, shared OCSP callback or None, X509 *, EVP_PKEY *, ...)
        self.sni_entries: dict[int, tuple] = {}
        self.index = index or vhost_selection.VHostIndex(cfg.vhosts, cfg.main)
        self._memo: dict[tuple[int, int], Site] = {}
        self._raw: dict[tuple[str, int], Site] = {}

    def contexts(self) -> list[SSL.Context]:
        """Every distinct Context: the vhosts' own first, then the shared ones."""
        return [ctx for ctx, _ in self.warm_up_targets()]

    def warm_up_targets(self) -> list[tuple[SSL.Context, Identity | None]]:
        """Every distinct Context with what a handshake on it needs: None for a vhost's own
        Context (it holds the certificates), a member's Identity for a shared one."""
        own, shared, seen = [], [], set()
        for vid, ctx in self.contexts_by_vhost.items():
            if id(ctx) not in seen:
                seen.add(id(ctx))
                identity = self.identities.get(vid)
                (own if identity is None else shared).append((ctx, identity))
        return own + shared

    def vhosts(self) -> tuple[VHost, ...]:
        return self.cfg.all_vhosts()

    def site_for(self, local_ip: str, port: int) -> Site:
        # memoised on the address as the socket reports it (no ipaddress parsing per connection)
        site = self._raw.get((local_ip, port))
        if site is None:
            group = self.index.group_or_main(local_ip, port)
            site = self._memo.get((id(group), port))
            if site is None:
                site = self._memo[(id(group), port)] = Site(
                    group.host, port, group, self.contexts_by_vhost.get(id(group.vhosts[0])), self)
            if len(self._raw) < 4096:
                self._raw[(local_ip, port)] = site
        return site


def _servername_callback(conn: SSL.Connection) -> None:
    try:
        state = conn.get_app_data()
        if not isinstance(state, TLSState):
            return
        raw = conn.get_servername()
        if not raw:
            return
        name = raw.decode("ascii", "replace").lower().rstrip(".")
        state.servername = name
        site = state.site
        vhost = site.select_sni(name)
        state.sni_vhost = vhost
        if vhost is None:
            if site.default.ssl.strict_sni:
                state.unknown_strict = True
            return
        if vhost is not site.default:
            entry = site.sites.sni_entries.get(id(vhost))
            if entry is not None:
                state.sni_entry = entry
                conn.set_context(entry[0])
                if len(entry) > 2 and not _use_pointers(conn._ssl, entry):
                    error_log.error("ssl", logids.SSL_SHARED_CONTEXT_REFUSED,
                                    f"SNI: OpenSSL refused the certificate "
                                    f"of {vhost.server_name} on its shared context")
    except Exception as e:  # a raising callback would abort the handshake with a traceback
        error_log.error("ssl", logids.SSL_SNI_CALLBACK_FAILED,
                        f"SNI callback failed: {type(e).__name__}: {e}")


def _shared_ocsp_callback(conn: SSL.Connection, data=None) -> bytes:
    """The OCSP callback of a shared Context: the one of the vhost the SNI named."""
    state = conn.get_app_data()
    if not isinstance(state, TLSState) or state.sni_vhost is None:
        return b""
    vhost = state.sni_vhost
    entry = state.sni_entry
    if entry is not None and entry[1] is not None:
        return entry[1](conn, vhost)     # the stapling service's one callback
    cb = state.site.sites.ocsp_by_vhost.get(id(vhost))
    return b"" if cb is None else cb(conn, data)


def build_sites(cfg: ServerConfig, ocsp_callback_for: Callable[[VHost], Callable | None] | None = None,
                *, share: bool = True) -> Sites:
    """Build every SSL vhost's Context (main server included when SSLEngine is on).

    ``ocsp_callback_for(vhost)`` returns a pyOpenSSL OCSP server callback ``(conn, data) ->
    bytes`` for that vhost's Context, or None for no stapling.  ``share=False``: a Context of
    its own for every vhost.  Raises ``StartupError``.
    """
    contexts: dict[int, SSL.Context] = {}
    identities: dict[int, Identity] = {}
    ocsp_by_vhost: dict[int, Callable] = {}
    ocsp_shared: dict[int, Callable] = {}
    shared: dict[tuple, SSL.Context] = {}
    index = vhost_selection.VHostIndex(cfg.vhosts, cfg.main)
    # an address's default vhost keeps a Context of its own: connections start on it
    defaults = {id(g.vhosts[0]) for g in index.groups.values()} | {id(cfg.main)}
    for v in cfg.all_vhosts():
        if not v.ssl.engine or id(v) in contexts:
            continue
        ocsp_cb = ocsp_callback_for(v) if ocsp_callback_for is not None else None
        identity = None if id(v) in defaults or not share else load_identity(v.ssl)
        key = None if identity is None else shared_key(v.ssl, identity)
        if key is not None:
            ctx = shared.get(key)
            if ctx is None:
                ctx = shared[key] = build_shared_context(
                    v.ssl, identity, v, ocsp_callback=_shared_ocsp_callback,
                    servername_callback=_servername_callback)
            contexts[id(v)] = ctx
            identities[id(v)] = identity
            if ocsp_cb is not None:
                shared_cb = getattr(ocsp_cb, "shared", None)
                if shared_cb is not None:
                    ocsp_shared[id(v)] = shared_cb
                else:
                    ocsp_by_vhost[id(v)] = ocsp_cb
            continue
        contexts[id(v)] = build_context(v.ssl, v, ocsp_callback=ocsp_cb,
                                        servername_callback=_servername_callback)
        error_log.debug("ssl", logids.SSL_CONTEXT_BUILT,
                        f"TLS context built for {v.server_name or 'main server'}"
                        f"{' with OCSP callback' if ocsp_cb else ''}")
    if shared:
        error_log.debug("ssl", logids.SSL_SHARED_CONTEXTS,
                        f"{len(identities)} name-based vhosts share "
                        f"{len(shared)} TLS context(s)")
    sites = Sites(cfg, contexts, identities, ocsp_by_vhost, index)
    sites.ocsp_shared = ocsp_shared
    sites.sni_entries = sni_rows(contexts, identities, ocsp_shared)
    return sites


def sni_rows(contexts: dict[int, SSL.Context], identities: dict[int, Identity],
             ocsp_shared: dict[int, Callable]) -> dict[int, tuple]:
    """One tuple per vhost with everything the servername and OCSP callbacks read of it:
    (Context, shared OCSP callback or None, then an X509 * and an EVP_PKEY * per certificate).

    Made in one pass after everything else, so that the rows, their keys and their pointer
    objects lie together in memory: a worker inherits them copy-on-write, and CPython writes
    a reference count to each object a handshake reads.  Reading the Context, the Identity,
    its tuples and pointer objects (each made while that vhost's files were parsed, far from
    the others') copied ~1 page per vhost into every worker that served it."""
    rows: dict[int, tuple] = {}
    for vid, ctx in contexts.items():
        identity = identities.get(vid)
        pointers: list = []
        if identity is not None:
            for cert, key in identity.pointers:
                # fresh (non-owning) pointer objects, next to the row; Identity owns the X509
                pointers += (_ffi.cast("X509 *", cert), _ffi.cast("EVP_PKEY *", key))
        rows[vid + 0] = (ctx, ocsp_shared.get(vid), *pointers)    # + 0: a key made here too
    return rows


def _use_pointers(ssl, entry: tuple) -> bool:
    """``use_identity`` over an ``sni_rows`` row: its certificates and keys on the connection."""
    for i in range(2, len(entry), 2):
        if _lib.SSL_use_certificate(ssl, entry[i]) != 1 or _lib.SSL_use_PrivateKey(ssl, entry[i + 1]) != 1:
            return False
    return True


_WARM_UP_CLIENTS = (      # (max protocol, TLS 1.2 cipher list, signature algorithms, key type)
    (None, None, b"ECDSA+SHA256:ECDSA+SHA384", "EC"),
    (None, None, b"rsa_pss_rsae_sha256:rsa_pss_rsae_sha384", "RSA"),
    (SSL.TLS1_2_VERSION, b"ECDHE-ECDSA-AES128-GCM-SHA256", None, "EC"),
    (SSL.TLS1_2_VERSION, b"ECDHE-RSA-AES128-GCM-SHA256", None, "RSA"),
)

#: at most this many Contexts take part in a warm-up
WARM_UP_CONTEXTS = 8


def memory_handshake(server_ctx: SSL.Context, client_ctx: SSL.Context, status_request: bool,
                     identity: Identity | None = None) -> bool:
    """One TLS handshake between two Contexts through memory BIOs (no socket); True when done.
    ``identity``: the certificates to use on a shared Context."""
    server = SSL.Connection(server_ctx, None)
    if identity is not None and not use_identity(server, identity.pointers):
        return False
    server.set_accept_state()
    client = SSL.Connection(client_ctx, None)
    if status_request:
        client.request_ocsp()
    client.set_connect_state()
    for _ in range(20):                         # a handshake is 2-3 flights; bounded regardless
        done = 0
        for conn in (client, server):
            try:
                conn.do_handshake()
                done += 1
            except SSL.WantReadError:
                pass
        for src, dst in ((client, server), (server, client)):
            try:
                data = src.bio_read(65536)
            except SSL.WantReadError:
                continue
            dst.bio_write(data)
        if done == 2:
            return True
    return False


def warm_up(sites: Sites, *, status_request: bool, limit: int = WARM_UP_CONTEXTS) -> int:
    """An in-memory handshake per client kind and key type, in the master before fork and in
    each worker before its first accept, so that a worker's first real handshake costs what
    later ones do (OpenSSL's algorithm fetches, Python's specialised bytecode, the pages the
    handshake code writes).

    The code paths are the same for every Context, so only as many Contexts take part as it
    takes to run each kind once (TLS 1.3 with an ECDSA and with an RSA certificate, chosen by
    the client's signature algorithms; TLS 1.2 ECDSA and RSA suites), at most ``limit`` of them: warming every Context cost 3 handshakes per vhost (3.8 s in the
    master and again in each worker with 1,000 vhosts) and, in a worker, wrote to every
    Context's pages (+33 MB private memory per worker, copied from the master, before the
    first client).

    ``status_request`` makes the warm-up client ask for a staple, which runs the OCSP callback:
    only do that when the callback merely reads the cache (background stapling), never when it
    could fetch.  Never raises; returns how many handshakes completed.
    """
    done = 0
    left = set(range(len(_WARM_UP_CLIENTS)))    # client kinds not run to the end yet
    for n, (ctx, identity) in enumerate(sites.warm_up_targets()):
        if n >= limit or not left:
            break
        for kind in sorted(left):
            max_proto, ciphers, sigalgs, _key = _WARM_UP_CLIENTS[kind]
            try:
                cctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
                cctx.set_verify(SSL.VERIFY_NONE)
                if max_proto is not None:
                    cctx.set_max_proto_version(max_proto)
                    cctx.set_cipher_list(ciphers)
                if sigalgs is not None and _lib.SSL_CTX_set1_sigalgs_list(cctx._context, sigalgs) != 1:
                    continue
                if status_request:
                    cctx.set_ocsp_client_callback(lambda conn, der, data: True)
                if memory_handshake(ctx, cctx, status_request, identity):
                    done += 1
                    left.discard(kind)
            except Exception as e:  # a key type the context lacks, a protocol it refuses
                error_log.debug("ssl", logids.SSL_WARM_UP_SKIPPED,
                                f"TLS warm-up handshake skipped: {type(e).__name__}")
    return done
