"""Generate ``docs/directives.md`` from the directive table.

    python -m httpd_py.config.docs > docs/directives.md

A test fails when the committed file differs from what this prints.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from httpd_py.config import directives, modules

PACKAGE = Path(directives.__file__).resolve().parent.parent.parent     # httpd_py/


DIFFERENCES = """## Deliberate differences from Apache httpd 2.4

`tests/interop/config/test_corpus.py` runs `apache2 -t` and `httpd-py -t` over the same corpus
(same verdict, same file and line); the cases marked *stricter* or *lenient* there are these.

- **Strict values.** Numbers, seconds, sizes and flags go through shared strict parsers: `Timeout
  abc` or `StartServers abc` is an error with the line, where Apache's `atoi` reads 0.
  `SSLStaplingResponderTimeout 0` is refused (Apache would make every fetch fail).
  `SSLStaplingForceURL` and `SSLOCSPProxyURL` must be http:// or https:// URLs.
- **`-t` runs the post-config checks** Apache only runs at start-up: certificate and key readable
  and matching, `SSLUseStapling on` without `SSLStaplingCache` (AH01958's wording, with the
  `SSLUseStapling` line), an SSL server without a certificate, no `Listen`.
- **Modules.** The modules httpd-py implements are built in: `<IfModule ssl_module>` is true
  without `LoadModule`.  `<IfModule ssl>` (the short name) also matches, which Apache 2.4.71 does
  not.  `LoadModule` of any module Apache ships marks it loaded without opening the file (a
  missing file is fine; a directory is refused, as Apache refuses it).  Directives of the other
  modules Apache ships are accepted (with Apache's context rules and argument counts) and listed
  as ignored, whether or not their module is loaded.
- **Start-up checks that are warnings here.** An `ErrorLog` whose directory is missing (Apache
  refuses to start, AH02291); certificates that are expired, not yet valid, or name none of the
  server's names (Apache's AH01909).
- **Reading.** A UTF-8 byte-order mark at the start of a file is skipped (Apache reads it as part
  of the first word).  An `Include` cycle is reported at the `Include` that closes the loop (the
  same place Apache reports after recursing 128 levels).  `User`/`Group` names that do not
  exist are errors with their line (Apache exits with AH00543/AH00544 and no line).
- **Scope.** `<Directory>`, `<DirectoryMatch>`, `<Files>`, `<FilesMatch>`, `<Location>`,
  `<LocationMatch>`, `<If>`/`<ElseIf>`/`<Else>`, `<Limit>`/`<LimitExcept>` and `.htaccess`
  files are applied as Apache applies them (see docs/architecture.md, "The request path").
  `<VirtualHost>` addresses given as host names are not resolved (no DNS at load time).
- **Fail closed.** Directives that are not built and would change who may see what are refused
  at start-up and by `-t`, with the file and line: `RewriteRule`, `ProxyPass`,
  `ProxyPassMatch`, `ProxyRemote*`, `ProxyRequests On`, `AllowMethods`, `RemoteIPHeader`,
  `SSLRequire`, `SSLVerifyClient` other than `none`, `SetHandler`/`AddHandler` of a handler
  that would run the file (server-status, server-info, type-map and the like are accepted),
  `Require` providers not built (ldap, dbm, dbd, file-owner, ...),
  `AuthType` other than Basic/None, `AuthBasicProvider` other than file, `Redirect*` and
  one-argument `Alias` inside a section (applied per server only so far).
  The other accepted directives are one grouped HP00901 line at start-up and on `-t`
  (`Options MultiViews` among them: without negotiation a request gets 404 where Apache might
  pick a variant, never more than Apache serves; and per-server directives written inside a
  section, e.g. `LogLevel` in a `<Directory>`, which apply per server only).
- **`.ht*` names** are never served, even where a config grants them.

""".splitlines()


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _row_files() -> dict[str, str]:
    """Directive name -> the file of the package that holds its row."""
    from httpd_py.config.directives import (alias_mime_dir, core, log_config, mod_ssl, mpm,
                                            socache, stapling)
    files = {}
    for m in (core, mpm, alias_mime_dir, log_config, socache, mod_ssl, stapling):
        for r in m.rows():
            files[r.name] = str(Path(m.__file__).resolve().relative_to(PACKAGE.parent))
    return files


def _readers() -> dict[str, list[str]]:
    """Attribute name -> the modules (dotted, without httpd_py.) that read ``.name``: a grep of
    the package, the directive rows themselves left out."""
    rows_dir = Path(directives.__file__).resolve().parent
    found: dict[str, set[str]] = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        if p.parent == rows_dir or "devtools" in p.parts:
            continue
        mod = ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
        mod = mod.removesuffix(".__init__")
        for name in set(re.findall(r"\.([a-z_][a-z0-9_]*)\b(?!\s*[(.])", p.read_text())):
            found.setdefault(name, set()).add(mod)
    return {k: sorted(v) for k, v in found.items()}


def life_table() -> list[str]:
    """Directive -> row file -> model field -> the modules that read the field."""
    readers = _readers()
    files = _row_files()
    out = ["## Where each directive goes", "",
           "Each typed row names the model field it fills (`server.` fields are `ServerConfig`'s,",
           "the others a `VHost`'s) and states its default once; `config/build.py` fills the model",
           "from the rows.  *Read by* is a grep of the package for the field's name (a name as",
           "common as `timeout` also finds unrelated reads; a chained or called use is left out).",
           "", "| Directive | Row file | Model field | Read by |", "|---|---|---|---|"]
    rows = [d for d in directives.TABLE.values() if d.field]
    for d in sorted(rows, key=lambda r: r.name.lower()):
        attr = d.field.rsplit(".", 1)[-1]
        mods = [m for m in readers.get(attr, []) if m not in ("config.model", "config.build")]
        out.append(f"| `{d.name}` | {files.get(d.name, '?')} | `{d.field}` | "
                   f"{', '.join(mods) or '(config only)'} |")
    out.append("")
    return out


def render() -> str:
    rows = directives.implemented_rows()
    out = [
        "# Directives",
        "",
        "Generated from the directive table (`httpd_py/config/directives/`) by",
        "`python -m httpd_py.config.docs > docs/directives.md`; a test fails when this file is stale.",
        "",
        "Context: **S** server config only (not in `<VirtualHost>`), **SV** server config and",
        "`<VirtualHost>`, **A** anywhere (also `<Directory>`-like sections), **D** only inside",
        "`<Directory>`-like sections.  *Read* directives run while the files are read (as in Apache).",
        "Rows without a mark are applied as Apache applies them.  Rows marked *accepted* are",
        "validated like Apache but have no effect in httpd-py; they are summed up in one line at",
        "start-up and on `-t`.  **httpd-py only** rows are extensions.  *.htaccess: X* names the",
        "AllowOverride class that lets a `.htaccess` file use the directive.",
        "",
        "Directives of the other modules Apache ships (" +
        f"{sum(1 for d in directives.TABLE.values() if d.module not in modules.IMPLEMENTED and not d.ext and d.module != 'mod_version.c')}"
        " names, e.g. mod_rewrite, mod_headers) are accepted and ignored, with Apache's context",
        "rules; any other name is an error (\"Invalid command ...\").",
        "",
    ]
    out += DIFFERENCES
    out += life_table()
    by_module: dict[str, list] = {}
    for d in rows:
        by_module.setdefault(d.module, []).append(d)
    for module in sorted(by_module):
        out += [f"## {module}", "", "| Directive | Arguments | Context | Default | Description |",
                "|---|---|---|---|---|"]
        for d in sorted(by_module[module], key=lambda r: r.name.lstrip("<").lower()):
            name = f"`{d.name}{'>' if d.is_section else ''}`"
            syntax = d.syntax or directives.ARG_SYNTAX[d.args]
            notes = []
            if d.ext:
                notes.append("**httpd-py only**")
            if d.read_time:
                notes.append("*read*")
            if not d.used:
                notes.append("*accepted*")
            if d.override:
                notes.append("*.htaccess: " + ("any class" if d.override == "any"
                                               else d.override.capitalize()) + "*")
            doc = d.doc + (" (" + ", ".join(notes) + ")" if notes else "")
            out.append(f"| {name} | {_cell(syntax)} | {d.where} | {_cell(d.default)} | "
                       f"{_cell(doc)} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
