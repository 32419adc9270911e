"""The ``httpd-py`` command line, shaped like Apache's ``httpd``.

    httpd-py [-D name] [-d directory] [-f file] [-C "directive"] [-c "directive"]
             [-k start|restart|graceful|graceful-stop|stop] [-v] [-V] [-h] [-l] [-L] [-t] [-T]
             [-S] [-X] [-M] [-e level] [-E file]
    httpd-py stapling-status -f file [--json]
    httpd-py ocsp check CERT [--issuer FILE] [--url URL] [--timeout S] [--json]

Errors print Apache's ``AH00526: Syntax error on line N of FILE:`` and the message on stderr and
exit 1; nothing ever prints a traceback (an unexpected exception becomes one line, exit 1).
``-t`` also runs the post-config checks Apache only runs at start-up, and the stapling
preflight (``stapling/preflight.py``; ``-D NO_STAPLING_PREFLIGHT`` skips it).
"""
from __future__ import annotations

import os
import platform
import sys
from typing import Callable

from httpd_py import log as _log, logids
from httpd_py.errors import ConfigError, HttpdError

PROG = "httpd-py"
from httpd_py.version import VERSION  # noqa: E402  (one place)
APACHE_COMPAT = "2.4.71"
DEFAULT_ROOT = "/etc/httpd-py"
DEFAULT_CONF = "httpd.conf"
ACTIONS = ("start", "restart", "graceful", "graceful-stop", "stop")
DUMPS = ("DUMP_VHOSTS", "DUMP_RUN_CFG", "DUMP_INCLUDES", "DUMP_MODULES")

USAGE = f"""Usage: {PROG} [-D name] [-d directory] [-f file]
                [-C "directive"] [-c "directive"]
                [-k start|restart|graceful|graceful-stop|stop]
                [-v] [-V] [-h] [-l] [-L] [-t] [-T] [-S] [-X]
Options:
  -D name            : define a name for use in <IfDefine name> directives
  -d directory       : specify an alternate initial ServerRoot
  -f file            : specify an alternate ServerConfigFile
  -C "directive"     : process directive before reading config files
  -c "directive"     : process directive after reading config files
  -e level           : show startup errors of level (see LogLevel)
  -E file            : log startup errors to file
  -v                 : show version number
  -V                 : show compile settings
  -h                 : list available command line options (this page)
  -l                 : list compiled in modules
  -L                 : list available configuration directives
  -t -D DUMP_VHOSTS  : show parsed vhost settings
  -t -D DUMP_RUN_CFG : show parsed run settings
  -S                 : a synonym for -t -D DUMP_VHOSTS -D DUMP_RUN_CFG
  -t -D DUMP_MODULES : show all loaded modules
  -M                 : a synonym for -t -D DUMP_MODULES
  -t -D DUMP_INCLUDES: show all included configuration files
  -t -D DUMP_CERTS   : show the server certificates
  -t                 : run syntax check for config files (and the post-config checks,
                       and the stapling preflight unless -D NO_STAPLING_PREFLIGHT)
  -T                 : start without DocumentRoot(s) check
  -X                 : debug mode (only one worker, do not detach)
  {PROG} stapling-status -f file [--json] : OCSP staple state of every certificate
  {PROG} ocsp check CERT [--issuer F] [--url U] : ask CERT's OCSP responder (exit 0/1/2)
"""


class UsageError(Exception):
    pass


class Options:
    def __init__(self) -> None:
        self.defines: list[str] = []
        self.server_root: str | None = None
        self.config_file: str | None = None
        self.pre: list[str] = []
        self.post: list[str] = []
        self.action: str | None = None
        self.flags: set[str] = set()
        self.error_file: str | None = None
        self.log_level: str | None = None


_WITH_ARG = set("DdfCckeE")
_FLAGS = set("vVhlLtTSXM")


def parse_args(argv: list[str]) -> Options:
    """Apache-style getopt: ``-tS``, ``-DNAME`` and ``-D NAME`` all work."""
    o = Options()
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if not a.startswith("-") or a == "-":
            raise UsageError(f"unexpected argument '{a}'")
        j = 1
        while j < len(a):
            c = a[j]
            j += 1
            if c in _FLAGS:
                o.flags.add(c)
                continue
            if c not in _WITH_ARG:
                raise UsageError(f"illegal option -- {c}")
            if j < len(a):
                val = a[j:]
            elif i < len(argv):
                val = argv[i]
                i += 1
            else:
                raise UsageError(f"option requires an argument -- {c}")
            j = len(a)
            if c == "D":
                o.defines.append(val)
            elif c == "d":
                o.server_root = val
            elif c == "f":
                o.config_file = val
            elif c == "C":
                o.pre.append(val)
            elif c == "c":
                o.post.append(val)
            elif c == "k":
                if val not in ACTIONS:
                    raise UsageError(f"unknown -k action '{val}'")
                o.action = val
            elif c == "e":
                o.log_level = val.lower()
            elif c == "E":
                o.error_file = val
    return o


def _paths(o: Options) -> tuple[str, str | None]:
    """(config file, server root or None) as Apache resolves -f and -d."""
    root = o.server_root
    conf = o.config_file
    if conf is None:
        base = root or DEFAULT_ROOT
        return os.path.join(base, DEFAULT_CONF), root or DEFAULT_ROOT
    if not os.path.isabs(conf):
        if root is not None and not os.path.exists(conf):
            conf = os.path.join(root, conf)
        conf = os.path.abspath(conf)
    return conf, root


def make_loader(o: Options) -> Callable:
    from httpd_py.config import load
    conf, root = _paths(o)
    defines = tuple(o.defines)
    pre, post = tuple(o.pre), tuple(o.post)
    check_docroot = "T" not in o.flags

    def load_config():
        return load(conf, server_root=root, defines=defines, pre_directives=pre,
                    post_directives=post, check_document_root=check_docroot)
    return load_config


def version_text() -> str:
    return (f"Server version: {PROG}/{VERSION} (Apache/{APACHE_COMPAT} compatible)\n"
            f"Server built:   Python {platform.python_version()}\n")


def compile_settings(o: Options | None = None) -> str:
    """``-V``.  HTTPD_ROOT and SERVER_CONFIG_FILE say what this command line would use: the
    ServerRoot a configuration without a ``ServerRoot`` line gets (``-d``, else the directory of
    the ``-f`` file, else /etc/httpd-py) and the configuration file.  (Apache prints its compiled
    default, which is also its default ServerRoot whatever ``-f`` says; httpd-py's default
    follows ``-f``, so it prints that.)"""
    conf, root = _paths(o or Options())
    root = os.path.abspath(root or os.path.dirname(conf))
    # Apache prints SERVER_CONFIG_FILE relative to HTTPD_ROOT when it lies there
    shown_conf = os.path.relpath(conf, root) if conf.startswith(root.rstrip("/") + "/") else conf
    try:
        import OpenSSL
        ossl = OpenSSL.SSL.SSLeay_version(OpenSSL.SSL.SSLEAY_VERSION).decode()
        pyossl = OpenSSL.__version__
    except Exception:  # noqa: BLE001 - version reporting must never fail
        ossl, pyossl = "unknown", "unknown"
    import lark
    return (version_text() +
            f"Server loaded:  {ossl}, pyOpenSSL {pyossl}, lark {lark.__version__}\n"
            f"Architecture:   {platform.architecture()[0]}\n"
            f"Server MPM:     prefork\n"
            f"  threaded:     no\n"
            f"    forked:     yes (variable process count)\n"
            f"Server compiled with....\n"
            f" -D HTTPD_ROOT=\"{root}\"\n"
            f" -D DEFAULT_PIDLOG=\"logs/httpd.pid\"\n"
            f" -D DEFAULT_ERRORLOG=\"logs/error_log\"\n"
            f" -D AP_TYPES_CONFIG_FILE=\"/etc/mime.types\"\n"
            f" -D SERVER_CONFIG_FILE=\"{shown_conf}\"\n")


def _run(argv: list[str]) -> int:
    if argv and argv[0] == "stapling-status":
        from httpd_py.stapling import status
        return int(status.main(argv[1:]) or 0)
    if argv and argv[0] == "ocsp":
        from httpd_py.stapling import preflight
        return int(preflight.ocsp_main(argv[1:]) or 0)
    try:
        o = parse_args(argv)
    except UsageError as e:
        sys.stderr.write(f"{PROG}: {e}\n{USAGE}")
        return 1
    if o.error_file:
        fd = os.open(o.error_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    if o.log_level:
        from httpd_py.log import LEVEL_RANK, configure
        if o.log_level not in LEVEL_RANK:
            sys.stderr.write(f"{PROG}: -e: unknown level '{o.log_level}'\n{USAGE}")
            return 1
        configure(None, o.log_level)
    f = o.flags
    if "h" in f:
        sys.stdout.write(USAGE)
        return 0
    if "v" in f:
        sys.stdout.write(version_text())
        return 0
    if "V" in f:
        sys.stdout.write(compile_settings(o))
        return 0
    from httpd_py.config import dump
    if "l" in f:
        sys.stdout.write(dump.compiled_modules())
        return 0
    if "L" in f:
        sys.stdout.write(dump.list_directives())
        return 0
    if "S" in f:
        o.defines += ["DUMP_VHOSTS", "DUMP_RUN_CFG"]
        f.add("t")
    if "M" in f:
        o.defines.append("DUMP_MODULES")
        f.add("t")
    dumps = [d for d in DUMPS if d in o.defines]
    load_config = make_loader(o)
    if "t" in f:
        cfg = load_config()
        if dumps:
            out = []
            if "DUMP_VHOSTS" in dumps:
                out.append(dump.dump_vhosts(cfg))
            if "DUMP_RUN_CFG" in dumps:
                out.append(dump.dump_run_cfg(cfg))
            if "DUMP_MODULES" in dumps:
                out.append(dump.dump_modules(cfg))
            if "DUMP_INCLUDES" in dumps:
                out.append(dump.dump_includes(cfg))
            sys.stdout.write("".join(out))
            return 0
        from httpd_py.config import check, ignored_summary
        for w in check(cfg):
            _log.error_log.warn("core", logids.CONFIG_CHECK_WARNING, w)
        from httpd_py import socache
        socache.check(cfg)          # what only a provider judges, at the directive's line
        summary = ignored_summary(cfg)
        if summary:
            _log.error_log.warn("core", logids.CORE_IGNORED_DIRECTIVES, summary)
        if "DUMP_CERTS" in o.defines:
            sys.stdout.write(dump.dump_certs(cfg))
        from httpd_py.stapling import preflight
        if preflight.wanted(cfg, o.defines) and preflight.run(cfg):
            return 1            # Must-Staple strict without a usable response: HP07002
        sys.stderr.write("Syntax OK\n")
        return 0
    action = o.action or "start"
    foreground = "X" in f or "FOREGROUND" in o.defines or "NO_DETACH" in o.defines
    from httpd_py import server   # lazy: -t/-S must not depend on the server
    return int(server.run(load_config, action, foreground=foreground,
                          single_process="X" in f) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _run(argv)
    except ConfigError as e:
        # Located: Apache's two lines.  Not located (the main file is unreadable): one line
        # with the program name, as Apache prints it.
        # Inside Includes (read phase): one line, the Include chain first, as Apache.
        sys.stderr.write(f"{e}\n" if e.file is not None and not e.chain else f"{PROG}: {e}\n")
        return 1
    except HttpdError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # noqa: BLE001 - the CLI never shows a traceback
        sys.stderr.write(f"{PROG}: internal error: {type(e).__name__}: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
