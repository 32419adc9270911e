"""Generate ``docs/directives.md`` from the directive table.

    python -m httpd_py.config.docs > docs/directives.md

A test fails when the committed file differs from what this prints.
"""
from __future__ import annotations

import sys

from httpd_py.config import directives, modules


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    rows = directives.implemented_rows()
    out = [
        "# Directives",
        "",
        "Generated from the directive table (`httpd_py/config/directives.py`) by",
        "`python -m httpd_py.config.docs > docs/directives.md`; a test fails when this file is stale.",
        "",
        "Context: **S** server config only (not in `<VirtualHost>`), **SV** server config and",
        "`<VirtualHost>`, **A** anywhere (also `<Directory>`-like sections), **D** only inside",
        "`<Directory>`-like sections.  *Read* directives run while the files are read (as in Apache).",
        "Rows marked *accepted* are validated like Apache but have no effect in httpd-py; they are",
        "listed once at start-up as ignored.  **httpd-py only** rows are extensions.",
        "",
        "Directives of the other modules Apache ships (" +
        f"{sum(1 for d in directives.TABLE.values() if d.module not in modules.IMPLEMENTED and not d.ext and d.module != 'mod_version.c')}"
        " names, e.g. mod_rewrite, mod_headers) are accepted and ignored, with Apache's context",
        "rules; any other name is an error (\"Invalid command ...\").",
        "",
    ]
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
            doc = d.doc + (" (" + ", ".join(notes) + ")" if notes else "")
            out.append(f"| {name} | {_cell(syntax)} | {d.where} | {_cell(d.default)} | "
                       f"{_cell(doc)} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
