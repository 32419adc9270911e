"""The package's import graph, checked against the documented direction (docs/architecture.md).

    python -m httpd_py.devtools.imports            the layers and who imports whom
    python -m httpd_py.devtools.imports --modules  every module's imports
    python -m httpd_py.devtools.imports --check    violations only (exit 1 if any)

Every ``import`` counts, also one inside a function (a lazy import is still a dependency, and a
worker that dropped privileges may be unable to run it), except under ``if TYPE_CHECKING:``.

The direction::

    cli -> server -> {mpm, tls, http, stapling} -> socache -> config
    tls -> stapling (the OCSP callback);  http -> tls (the connection's TLS state)
    modules/ (Apache modules) sit beside http: http and config may import them; they import
    http/hooks.py, config, errors, log, expr
    everything may import config, errors, log, logids (the log-id registry) and the leaf helpers
    expr, metrics, version, and piped (the piped-log process behind log)
    nothing in the server imports devtools (maintainer and test tools); devtools import anything

A violation is an import against that direction, or a cycle between modules.
"""
from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "httpd_py"
ROOT = Path(__file__).resolve().parents[1]

#: http modules that are pure helpers (no connection state): modules may use them
HTTP_LIB = frozenset({"static", "paths", "body", "access", "walk", "protocol", "reqtimeout",
                      "park"})   # park: a module waits while its worker serves others
#: layers importable by everyone
BASE = frozenset({"config", "errors", "log", "logids", "expr", "metrics", "version", "piped"})
#: what each layer may import besides BASE (None: anything)
ALLOWED: dict[str, frozenset[str] | None] = {
    "__main__": frozenset({"cli"}),
    "cli": None,
    "devtools": None,
    "server": frozenset({"mpm", "tls", "http", "http.lib", "stapling", "socache", "modules"}),
    "mpm": frozenset(),
    "tls": frozenset({"stapling", "socache"}),
    "http": frozenset({"tls", "stapling", "socache", "modules", "http.lib"}),
    # the pipeline's pure helpers (no sockets): what Apache's util API is to its modules
    "http.lib": frozenset({"tls", "stapling", "socache", "modules", "http.hooks"}),
    "stapling": frozenset({"socache"}),
    "socache": frozenset(),
    "config": frozenset({"modules"}),
    # Apache's modules: the hooks, the pipeline's pure helpers, and stapling's read side
    # (mod_status shows the staples); never the connection loops
    "modules": frozenset({"http.hooks", "http.lib", "stapling"}),
    "errors": frozenset(),
    "log": frozenset(),
    "logids": frozenset(),
    "expr": frozenset(),
    "metrics": frozenset(),
    "version": frozenset(),
    "piped": frozenset(),
    "__init__": frozenset(),
}
#: the order the layers are printed in (callers first)
ORDER = ("__main__", "cli", "server", "mpm", "tls", "http", "http.hooks", "http.lib", "modules", "stapling",
         "socache", "config", "expr", "metrics", "version", "piped", "log", "logids", "errors",
         "devtools", "__init__")


@dataclass(frozen=True)
class Edge:
    src: str          # importing module, dotted (httpd_py.stapling.service)
    dst: str          # imported module
    line: int
    lazy: bool        # inside a function


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    """``httpd_py.stapling.service`` -> ``stapling``; ``httpd_py.http.hooks`` -> ``http.hooks``
    only where a rule names it; ``httpd_py`` itself -> ``__init__``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    if ".".join(parts[1:3]) == "http.hooks":
        return "http.hooks"
    if parts[1] == "http" and len(parts) > 2 and parts[2] in HTTP_LIB:
        return "http.lib"
    return parts[1]


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _known(name: str, modules: set[str]) -> str | None:
    """The longest known module ``name`` starts with (``httpd_py.x.y.func`` -> ``httpd_py.x.y``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def edges_of(path: Path, modules: set[str]) -> list[Edge]:
    src = module_name(path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    out: list[Edge] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for sub in child.orelse:
                    visit(sub, lazy)
                continue
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split(".")[0] == PACKAGE:
                        dst = _known(a.name, modules)
                        if dst:
                            out.append(Edge(src, dst, child.lineno, lazy))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = src.split(".") if is_pkg else src.split(".")[:-1]
                    base = base[:len(base) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                if mod.split(".")[0] != PACKAGE:
                    continue
                for a in child.names:       # "from httpd_py.x import y": y may be a module
                    dst = _known(f"{mod}.{a.name}", modules) or _known(mod, modules)
                    if dst:
                        out.append(Edge(src, dst, child.lineno, lazy))
            visit(child, inner)

    visit(tree, False)
    return [e for e in out if e.dst != src]


def graph(root: Path = ROOT) -> tuple[set[str], list[Edge]]:
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    modules = {module_name(p) for p in files}
    edges = [e for p in files for e in edges_of(p, modules)]
    return modules, edges


def allowed(src: str, dst: str) -> bool:
    a, b = layer(src), layer(dst)
    if a == b or (a == "http.hooks" and b == "http") or (a == "http" and b == "http.hooks"):
        return True
    a_rules = ALLOWED.get("http" if a == "http.hooks" else a, frozenset())
    if a_rules is None:
        return True
    if b == "devtools":
        return False
    if b in BASE or b in a_rules:
        return True
    return b == "http.hooks" and ("http" in a_rules or "http.hooks" in a_rules)


def cycles(modules: set[str], edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    succ: dict[str, set[str]] = {m: set() for m in modules}
    for e in edges:
        succ[e.src].add(e.dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        work = [(v, iter(sorted(succ[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(succ[w]))))
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))

    for m in sorted(modules):
        if m not in index:
            strong(m)
    return sorted(found)


def violations(modules: set[str] | None = None, edges: list[Edge] | None = None) -> list[str]:
    """Each import against the direction (``src -> dst``, once per pair) and each cycle
    (``cycle: a <-> b ...``), sorted; the line numbers are in ``render``."""
    if modules is None or edges is None:
        modules, edges = graph()
    out = sorted({f"{e.src} -> {e.dst}" for e in edges if not allowed(e.src, e.dst)})
    out += [f"cycle: {' <-> '.join(c)}" for c in cycles(modules, edges)]
    return out


def _where(v: str, edges: list[Edge]) -> str:
    if v.startswith("cycle: "):
        return ""
    src, _, dst = v.partition(" -> ")
    found = sorted({(e.line, e.lazy) for e in edges if e.src == src and e.dst == dst})
    return " (line " + ", ".join(f"{ln}{' lazy' if lazy else ''}" for ln, lazy in found) + \
        f"): {layer(src)} may not import {layer(dst)}"


def render(modules: set[str], edges: list[Edge], per_module: bool = False) -> str:
    lines = []
    if per_module:
        by_src: dict[str, set[str]] = {}
        for e in edges:
            by_src.setdefault(e.src, set()).add(e.dst + (" (lazy)" if e.lazy else ""))
        for m in sorted(modules):
            lines.append(m)
            lines.extend(f"    -> {d}" for d in sorted(by_src.get(m, ())))
        return "\n".join(lines) + "\n"
    layers: dict[str, dict[str, int]] = {}
    for e in edges:
        a, b = layer(e.src), layer(e.dst)
        if a != b:
            layers.setdefault(a, {}).setdefault(b, 0)
            layers[a][b] += 1
    names = sorted({layer(m) for m in modules},
                   key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
    lines.append("layer -> layers it imports (number of imports)")
    for a in names:
        targets = layers.get(a, {})
        shown = ", ".join(f"{b} ({n})" for b, n in sorted(
            targets.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER)))
        lines.append(f"  {a:<11} -> {shown or '-'}")
    bad = violations(modules, edges)
    lines.append("")
    lines.append(f"violations: {len(bad)}")
    lines.extend(f"  {v}{_where(v, edges)}" for v in bad)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m httpd_py.devtools.imports",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", action="store_true", help="every module's imports")
    ap.add_argument("--check", action="store_true", help="violations only; exit 1 if any")
    a = ap.parse_args(argv)
    modules, edges = graph()
    if a.check:
        bad = violations(modules, edges)
        sys.stdout.write("".join(f"{v}\n" for v in bad))
        return 1 if bad else 0
    sys.stdout.write(render(modules, edges, per_module=a.modules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
