"""Apache-format dumps of a loaded configuration: ``-S`` (DUMP_VHOSTS, DUMP_RUN_CFG),
``-D DUMP_INCLUDES``, ``-M`` (DUMP_MODULES), ``-L``, ``-l``.

Formats follow Apache 2.4's vhost.c / core.c / util_mutex.c / mod_unixd.c output, so scripts
that parse ``apachectl -S`` keep working.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import struct
from functools import lru_cache

from httpd_py.config import directives, modules
from httpd_py.config.model import ServerConfig, VHost

IPHASH_TABLE_SIZE = 256


@lru_cache(maxsize=1)
def local_host_name() -> str:
    """Apache's ap_get_local_host: the FQDN of this host, else its address (AH00558)."""
    try:
        name = socket.gethostname()
        info = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
        addr = info[0][4][0]
        try:
            host = socket.getnameinfo((addr, 0), socket.NI_NAMEREQD)[0]
        except OSError:
            host = name
        return host if "." in host else addr
    except OSError:
        return "127.0.0.1"


def _display_name(v: VHost, cfg: ServerConfig) -> str:
    """ServerName as written (Apache keeps its case), else the main server's, else the host's."""
    return v.server_name_text or cfg.main.server_name_text or local_host_name()


def _hash_addr(host: str) -> int:
    """vhost.c's bucket for an address: the last four bytes, read as a little-endian int."""
    try:
        packed = ipaddress.ip_address(host).packed
    except ValueError:
        return 0
    key = struct.unpack("<I", packed[-4:])[0]
    key ^= key >> 16
    return ((key >> 8) ^ key) % IPHASH_TABLE_SIZE


def _addr_text(host: str, port: int | None) -> str:
    h = "*" if host in ("*", "_default_") else (f"[{host}]" if ":" in host else host)
    return f"{h}:{port if port else '*'}"


def dump_vhosts(cfg: ServerConfig) -> str:
    out = ["VirtualHost configuration:"]
    # Group as Apache does: "*" and "_default_" are the same wildcard.
    groups: dict[tuple[str, int | None], list[int]] = {}
    for g in cfg.vhost_groups:
        key = ("*" if g.host in ("*", "_default_") else g.host, g.port)
        lst = groups.setdefault(key, [])
        lst.extend(i for i in g.vhosts if i not in lst)
    specific = [(k, v) for k, v in groups.items() if k[0] != "*"]
    wild = [(k, v) for k, v in groups.items() if k[0] == "*"]
    specific.sort(key=lambda kv: _hash_addr(kv[0][0]))       # stable: file order in a bucket
    for (host, port), idx in (*specific, *wild):
        addr = _addr_text(host, port)
        if len(idx) == 1:
            v = cfg.vhosts[idx[0]]
            out.append(f"{addr:<22} {_display_name(v, cfg)} ({v.location.file}:{v.location.line})")
            continue
        out.append(f"{addr:<22} is a NameVirtualHost")
        first = cfg.vhosts[idx[0]]
        out.append(f"{'':8} default server {_display_name(first, cfg)} "
                   f"({first.location.file}:{first.location.line})")
        for i in idx:
            v = cfg.vhosts[i]
            out.append(f"{'':8} port {port or 0} namevhost {_display_name(v, cfg)} "
                       f"({v.location.file}:{v.location.line})")
            # as Apache keeps them: plain aliases, then wildcard ones, each in file order
            plain = [a for a in v.server_alias_texts if not any(c in a for c in "*?")]
            wild = [a for a in v.server_alias_texts if any(c in a for c in "*?")]
            out.extend(f"{'':16} alias {a}" for a in plain)
            out.extend(f"{'':16} wild alias {a}" for a in wild)
    return "\n".join(out) + "\n"


def _mutex_line(m) -> str:
    if m.using_defaults and m.name == "default":
        # No Mutex line: Apache shows the built-in default with DefaultRuntimeDir.
        return f"Mutex default: dir=\"{m.directory.rstrip('/')}/\" mechanism=default "
    if m.using_defaults:
        return f"Mutex {m.name}: using_defaults"
    if m.mechanism == "none":
        return f"Mutex {m.name}: none"
    mech = {"file": "fcntl"}.get(m.mechanism, m.mechanism)
    return (f"Mutex {m.name}: dir=\"{m.directory}\" mechanism={mech} "
            f"{'[OmitPid]' if m.omit_pid else ''}")


def _id_line(kind: str, name: str | None) -> str:
    import grp
    import pwd
    if name is None:
        uid = os.getuid() if kind == "User" else os.getgid()
        try:
            name = (pwd.getpwuid(uid).pw_name if kind == "User" else grp.getgrgid(uid).gr_name)
        except KeyError:
            name = f"#{uid}"
        return f"{kind}: name=\"{name}\" id={uid} not_used"
    if name.startswith("#"):
        return f"{kind}: name=\"{name}\" id={name[1:]}"
    try:
        num = pwd.getpwnam(name).pw_uid if kind == "User" else grp.getgrnam(name).gr_gid
    except KeyError:
        num = -1
    return f"{kind}: name=\"{name}\" id={num}"


def dump_run_cfg(cfg: ServerConfig) -> str:
    out = [f"ServerRoot: \"{cfg.server_root}\"",
           f"Main DocumentRoot: \"{cfg.main.document_root}\"",
           f"Main ErrorLog: \"{cfg.main.error_log}\""]
    out += [_mutex_line(m) for m in cfg.mutexes]
    out.append(f"PidFile: \"{cfg.pid_file}\"")
    for name, value in cfg.define_values:
        out.append(f"Define: {name}={value}" if value else f"Define: {name}")
    out.append(_id_line("User", cfg.user))
    out.append(_id_line("Group", cfg.group))
    return "\n".join(out) + "\n"


def dump_includes(cfg: ServerConfig) -> str:
    out = ["Included configuration files:"]
    for depth, line, f in cfg.includes:
        if depth == 0:
            out.append(f"  (*) {f}")
        else:
            out.append(f"{'  ' * (depth + 1)}({line}) {f}")
    return "\n".join(out) + "\n"


def dump_certs(cfg: ServerConfig) -> str:
    """-t -D DUMP_CERTS: every SSLCertificateFile in use, once, in configuration order."""
    seen: dict[str, None] = {}
    for v in cfg.all_vhosts():
        if v.ssl.engine:
            for pair in v.ssl.certificates:
                seen.setdefault(pair.cert_file)
    return "Server certificates:\n" + "".join(f"  {c}\n" for c in seen)


def dump_modules(cfg: ServerConfig) -> str:
    static = modules.static_ids()
    out = ["Loaded Modules:"]
    out += [f" {m} (static)" for m in static]
    out += [f" {m} (shared)" for m in cfg.loaded_modules if m not in static]
    return "\n".join(out) + "\n"


def compiled_modules() -> str:
    return "Compiled in modules:\n" + "".join(
        f"  {modules.source_name(m)}\n" for m in modules.static_ids())


def list_directives() -> str:
    """-L: every directive httpd-py implements, with its module, doc and contexts."""
    out = []
    for d in directives.implemented_rows():
        out.append(f"{d.name}{'>' if d.is_section else ''} ({d.module})"
                   f"{' [httpd-py]' if d.ext else ''}")
        out.append(f"\t{d.doc}")
        out.append(f"\tAllowed in {directives.WHERE_TEXT[d.where]}"
                   f"{'' if d.used else ' (accepted; no effect in httpd-py)'}")
    return "\n".join(out) + "\n"
