"""prefork.c and mod_unixd.c: Listen, the worker counts, User and Group."""
from __future__ import annotations

from httpd_py.config import values
from httpd_py.config.directives.base import TAKE1, TAKE12, Directive, integer, Parser, seconds
from httpd_py.errors import ConfigError

def _listen(w, args):
    host, port, proto = values.listen(args)
    for other in w.g.get("listens", []):
        if other.host == host and other.port == port:
            raise ConfigError("Cannot define multiple Listeners on the same IP:port")
    from httpd_py.config.model import ListenSpec
    w.g.setdefault("listens", []).append(ListenSpec(host, port, proto, w.loc))


def _user_group(key: str) -> Parser:
    """User/Group: the name must exist (Apache resolves it at config time: "bad user name")."""
    def fn(w, name: str) -> str:
        import grp
        import pwd
        if not name.startswith("#"):
            try:
                (pwd.getpwnam if key == "user" else grp.getgrnam)(name)
            except KeyError:
                raise ConfigError(f"bad {key} name {name}") from None
        elif not name[1:].isdigit():
            raise ConfigError(f"bad {key} id {name}")
        return name
    return Parser("text", fn)


def rows() -> list[Directive]:
    UX, PF, C = "mod_unixd.c", "prefork.c", "core.c"
    D = Directive
    return [
        D("Listen", PF, "S", TAKE12, "", "An address and port to accept connections on",
          _listen, field="server.listens", syntax="[addr:]port [protocol]"),
        D("ListenBacklog", PF, "S", TAKE1, "", "Length of the pending-connection queue",
          field="server.prefork.listen_backlog", parse=integer(1), value=511, syntax="backlog"),
        D("User", UX, "S", TAKE1, "(unchanged)", "User the workers run as",
          field="server.user", parse=_user_group("user"), value=None, syntax="unix-userid"),
        D("Group", UX, "S", TAKE1, "(unchanged)", "Group the workers run as",
          field="server.group", parse=_user_group("group"), value=None, syntax="unix-group"),
        # prefork ("Old name" rows fill the same field: its default is stated once)
        D("StartServers", PF, "S", TAKE1, "", "Worker processes started at start-up",
          field="server.prefork.start_servers", parse=integer(), value=5, syntax="number"),
        D("MinSpareServers", PF, "S", TAKE1, "", "Least number of idle workers",
          field="server.prefork.min_spare_servers", parse=integer(), value=5, syntax="number"),
        D("MaxSpareServers", PF, "S", TAKE1, "", "Most idle workers",
          field="server.prefork.max_spare_servers", parse=integer(), value=10, syntax="number"),
        D("MaxRequestWorkers", PF, "S", TAKE1, "", "Most workers (simultaneous connections)",
          field="server.prefork.max_request_workers", parse=integer(), value=256,
          syntax="number"),
        D("MaxClients", PF, "S", TAKE1, "", "Old name of MaxRequestWorkers",
          field="server.prefork.max_request_workers", parse=integer(), syntax="number"),
        D("ServerLimit", PF, "S", TAKE1, "", "Upper bound for MaxRequestWorkers",
          field="server.prefork.server_limit", parse=integer(), value=256, syntax="number"),
        D("MaxConnectionsPerChild", C, "S", TAKE1, "", "Connections a worker serves before it "
          "exits (0: no limit)", field="server.prefork.max_connections_per_child",
          parse=integer(), value=0, syntax="number"),
        D("MaxRequestsPerChild", C, "S", TAKE1, "", "Old name of MaxConnectionsPerChild",
          field="server.prefork.max_connections_per_child", parse=integer(), syntax="number"),
        D("GracefulShutdownTimeout", PF, "S", TAKE1, "", "Seconds a graceful stop waits for "
          "workers (0: forever)", field="server.prefork.graceful_shutdown_timeout",
          parse=seconds(), value=0, syntax="seconds"),
    ]
