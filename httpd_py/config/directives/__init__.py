"""The directive table: one row per directive, and the handlers that fill the model.

One file per directive group (base.py: the row type, shapes and handler builders; core.py,
mpm.py, alias_mime_dir.py, log_config.py, socache.py, mod_ssl.py, stapling.py; the Apache
modules httpd-py implements keep their rows in ``httpd_py/modules/``); this file assembles the
table.

A row says where a directive may appear (``where``), how many arguments it takes (``args``, checked
by the walker before the handler runs, with Apache's messages), its default, its handler and a
one-line doc.  ``httpd-py -L``, ``docs/directives.md`` and the usage text in errors all come from
these rows.

``where``: "S" main server only (Apache's GLOBAL_ONLY: "cannot occur within <VirtualHost>
section"), "SV" main server and <VirtualHost>, "A" anywhere (also inside <Directory>-like
sections), "D" only inside <Directory>-like sections ("not allowed here" outside them).

Handlers receive the walk context ``w`` and the split arguments.  They raise ``ConfigError(msg)``
with no location; the walker adds it.  ``w.set(key, value)`` records a per-server setting (the
main server or the current <VirtualHost>; inside <Directory>-like sections values are validated
but not applied, see build.py); ``w.glob(key, value)`` records a server-wide one.

Typed rows (``field=``, ``parse=``, ``value=``; base.py) name the model field they fill, its
parser and its default: the handler is derived for the simple cases, an unknown field fails the
import, and ``field_defaults()`` is where build.py gets every default from.

Rows whose ``used`` is False are validated but have no effect in httpd-py; like the directives
of Apache modules httpd-py does not implement (rows built from ``apache_directives.tsv``), they
are listed in ``ServerConfig.ignored_directives`` and logged once at start-up.
"""
from __future__ import annotations

from httpd_py.config import modules
from httpd_py.config.directives.base import (  # noqa: F401 (the package's API)
    ARG_SYNTAX, FLAG, ITERATE, ITERATE2, NOARGS, RAW, TAKE1, TAKE2, TAKE3, TAKE12, TAKE13, TAKE23,
    TAKE123, WHERE_TEXT, NO_DEFAULT, Directive, FromServerRoot, Parser, UnknownField,
    model_field, setting_key)
from httpd_py.config.directives import (alias_mime_dir, core, log_config, mod_ssl, mpm, socache,
                                        stapling)
from httpd_py.config.directives.log_config import ConditionalLogRef  # noqa: F401


def _rows() -> list[Directive]:
    """The rows of this package (and of config/perdir.py), in -L order."""
    rows = core.rows() + mpm.rows() + alias_mime_dir.rows() + log_config.rows() + socache.rows()
    from httpd_py.config import perdir
    rows += perdir.rows(Directive, ITERATE, TAKE1, FLAG, RAW)
    rows += _ssl_rows()
    return rows


def _ssl_rows() -> list[Directive]:
    """mod_ssl's rows in -L order: engine and certificates first, the others by name, then the
    httpd-py extensions."""
    own = mod_ssl.rows()
    head, rest = own[:6], own[6:] + stapling.rows()
    return (head + sorted((r for r in rest if not r.ext), key=lambda r: r.name.lower())
            + [r for r in rest if r.ext])


# Argument counts apache2 accepts (probed, in apache_directives.tsv) -> the shape that checks them.
_SHAPES = {(1, 1): TAKE1, (2, 2): TAKE2, (1, 2): TAKE12, (3, 3): TAKE3, (2, 3): TAKE23,
           (1, 3): TAKE123, (1, None): ITERATE, (2, None): ITERATE2, (0, None): RAW}


def _ignored_rows(known: set[str]) -> list[Directive]:
    rows = []
    for lname, (name, src, ctx) in modules.apache_directives().items():
        if lname in known:
            continue
        where = {"SV": "SV", "D": "D"}.get(ctx, "A")
        shape = _SHAPES.get(modules.apache_arg_counts(lname) or (0, None), RAW)
        rows.append(Directive(name, src, where, shape, "", f"Apache {src[:-2]} directive: "
                              f"accepted and ignored by httpd-py", used=False))
    return rows


# AllowOverride classes of rows defined without one (Apache's req_override of each directive).
_OVERRIDES = {
    "errordocument": "fileinfo", "addtype": "fileinfo", "redirect": "fileinfo",
    "redirectpermanent": "fileinfo", "redirecttemp": "fileinfo", "redirectmatch": "fileinfo",
    "directoryindex": "indexes", "limitrequestbody": "any", "<files": "any",
    "<filesmatch": "any", "<if": "any", "<elseif": "any", "<else": "any", "<limit": "any",
    "<limitexcept": "any", "setenvif": "fileinfo", "setenvifnocase": "fileinfo",
    "browsermatch": "fileinfo", "browsermatchnocase": "fileinfo", "setenvifexpr": "fileinfo",
}


def module_rows() -> list[Directive]:
    """The rows of every module file in ``httpd_py/modules/`` that defines ``rows()``: each
    such file holds its module's directives, per-directory settings and hooks (STYLE.md).
    Importing it registers its merge rules (dirconf.register) and its request hooks
    (http/hooks.py).  Its rows' ``module`` (e.g. "mod_headers.c") counts as implemented."""
    import importlib
    import pkgutil
    import httpd_py.modules as pkg
    rows: list[Directive] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"httpd_py.modules.{info.name}")
        fn = getattr(mod, "rows", None)
        if callable(fn):
            rows.extend(fn())
    return rows


def build_table() -> dict[str, Directive]:
    import dataclasses
    rows = _rows()
    table = {r.name.lower(): r for r in rows}
    extra = module_rows()
    for r in extra:
        if r.name.lower() in table:
            raise AssertionError(f"directive {r.name} has two rows")
        table[r.name.lower()] = r
    modules.IMPLEMENTED = modules.IMPLEMENTED | {r.module for r in extra}
    for r in _ignored_rows(set(table)):
        table[r.name.lower()] = r
    for lname, cls in _OVERRIDES.items():
        if lname in table and not table[lname].override:
            table[lname] = dataclasses.replace(table[lname], override=cls)
    # A field's default is stated by one row; the others filling it (old names) show it too.
    owner: dict[str, Directive] = {}
    for r in table.values():
        if r.field and r.value is not NO_DEFAULT:
            if r.field in owner:
                raise AssertionError(f"field {r.field}: default stated by {owner[r.field].name} "
                                     f"and {r.name}")
            owner[r.field] = r
    for lname, r in table.items():
        if r.field and r.value is NO_DEFAULT and r.field in owner and not r.default:
            table[lname] = dataclasses.replace(r, default=owner[r.field].default)
    return table


TABLE: dict[str, Directive] = build_table()


def lookup(name: str) -> Directive | None:
    return TABLE.get(name.lower())


def field_defaults(server_root: str) -> tuple[dict[str, object], dict[str, object]]:
    """The rows' default values: (per-server settings, server-wide settings), keyed as the walk
    records them ("ssl.stapling.enabled"; "pid_file", "prefork.start_servers"), ServerRoot-
    relative ones resolved.  build.py fills the model from these; nothing restates them."""
    per_server: dict[str, object] = {}
    server_wide: dict[str, object] = {}
    for r in TABLE.values():
        if not r.field or r.value is NO_DEFAULT:
            continue
        v = r.value.resolve(server_root) if isinstance(r.value, FromServerRoot) else r.value
        glob, key = setting_key(r.field)
        (server_wide if glob else per_server)[key] = v
    return per_server, server_wide


def implemented_rows() -> list[Directive]:
    """The rows httpd-py implements (for -L and the docs), in table order."""
    return [r for r in TABLE.values() if r.module in modules.IMPLEMENTED
            or r.module == "mod_version.c" or r.ext]
