"""mod_rewrite: RewriteEngine, RewriteOptions, RewriteBase, RewriteCond, RewriteRule,
RewriteMap (issue 12).

    engine.py   rules and conditions parsed once; applied to a request (pure but for the file
                tests and map files): expansion, flags, the server and per-directory entry points
    maps.py     txt:, rnd:, int: maps (prg:, dbm:, dbd: refused)
    rows.py     the directive rows, the per-server / per-directory values and their merges
    hooks.py    TRANSLATE (server rules), FIXUPS (per-directory rules, then [T=]/[H=])
"""
from httpd_py.modules.rewrite import hooks as _hooks
from httpd_py.modules.rewrite.rows import rows

_hooks.register()

__all__ = ["rows"]
