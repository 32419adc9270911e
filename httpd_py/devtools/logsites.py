"""Where the package uses each log id: the checker behind tests/unit/test_logids.py.

    python -m httpd_py.devtools.logsites            every id's uses (file:function:line, module)
    python -m httpd_py.devtools.logsites --check    differences from the registry only (exit 1)

A *use* is a reference to an id in code (not in a docstring or comment): a literal
(``"HP03001"``, ``f"HP01019: ..."``), a registry constant (``logids.HTTP_UNEXPECTED``, or the
name imported from ``httpd_py.logids``), or a module-level alias of either (``HP_X = "HP04001"``
defines an alias; each load of ``HP_X`` is a use).  A use's *site* is ``file:function``
(``mpm/master.py:Master._loop``; ``<module>`` outside functions): every site of an id is listed
in its registry entry (``sites=``), so using an id somewhere new is a decision a reviewer sees.
Where the id is an argument of a log call (``error_log.warn(module, id, ...)``,
``error_log.log(module, level, id, ...)``, ``format_line(module, level, id, ...)``), the
``module`` argument is resolved when it is a literal or a module-level constant.

A *mention* is any ``HPddddd`` in the source text outside the registry, comments and
docstrings included, except the bounds of a range (``HP04800-HP04899``, ``HP13100-``).
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "httpd_py"
ROOT = Path(__file__).resolve().parents[1]
REGISTRY = "httpd_py.logids"
ID_RE = re.compile(r"HP\d{5}")
#: an id alone, or a line's id prefix (f"HP01019: ...")
_LITERAL = re.compile(r"^HP\d{5}$|^HP\d{5}:")
_RANGE = re.compile(r"HP\d{5}-(?:HP\d{5})?")
_LEVEL_CALLS = {"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}


@dataclass(frozen=True)
class Use:
    ident: str
    file: str             # relative to httpd_py/: "mpm/master.py"
    function: str         # qualified name, "<module>" at module level
    line: int
    module: str | None    # the log call's module argument, when it could be resolved

    @property
    def site(self) -> str:
        return f"{self.file}:{self.function}"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _registry_names() -> dict[str, str]:
    from httpd_py import logids
    return {name: str(v) for name, v in vars(logids).items() if isinstance(v, logids.LogId)}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                out.add(id(body[0].value))
    return out


class _Scan:
    def __init__(self, root: Path):
        self.root = root
        files = source_files(root)
        self.trees = {p: ast.parse(p.read_text(), str(p)) for p in files}
        self.registry = _registry_names()
        # module-level names: id aliases and plain strings (for the module argument)
        self.aliases: dict[tuple[str, str], str] = {}
        self.strings: dict[tuple[str, str], str] = {}
        for _ in range(2):             # twice: an alias of an alias in another module
            for p, tree in self.trees.items():
                self._module_names(module_name(p, root), tree)

    # -- module level: aliases (not uses) and string constants -----------------------------
    def _module_names(self, mod: str, tree: ast.Module) -> None:
        names, mods = self._imports(mod, tree)
        for node in tree.body:
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                pairs = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = list(zip(target.elts, node.value.elts))
                for t, v in pairs:
                    if not isinstance(t, ast.Name):
                        continue
                    ident = self._resolve(v, names, mods, mod)
                    if ident:
                        self.aliases[(mod, t.id)] = ident
                    elif isinstance(v, ast.Constant) and isinstance(v.value, str):
                        self.strings[(mod, t.id)] = v.value

    def _imports(self, mod: str, tree: ast.Module) -> tuple[dict[str, str], dict[str, str]]:
        """names bound to ids (or strings, as "str:..."), and names bound to our modules"""
        names: dict[str, str] = {}
        mods: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split(".")[0] == PACKAGE:
                for a in node.names:
                    local = a.asname or a.name
                    if node.module == REGISTRY and a.name in self.registry:
                        names[local] = self.registry[a.name]
                    elif (node.module, a.name) in self.aliases:
                        names[local] = self.aliases[(node.module, a.name)]
                    elif (node.module, a.name) in self.strings:
                        names[local] = "str:" + self.strings[(node.module, a.name)]
                    else:
                        mods[local] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == PACKAGE:
                        mods[a.asname or a.name] = a.name
        for (m, n), ident in self.aliases.items():
            if m == mod:
                names[n] = ident
        for (m, n), s in self.strings.items():
            if m == mod and n not in names:
                names[n] = "str:" + s
        return names, mods

    def _resolve(self, node: ast.AST, names: dict[str, str], mods: dict[str, str],
                 mod: str) -> str | None:
        """The id an expression names (a literal, a registry constant, an alias), else None."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and re.fullmatch(r"HP\d{5}", node.value):
            return node.value
        if isinstance(node, ast.Name):
            v = names.get(node.id)
            return v if v and not v.startswith("str:") else None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = mods.get(node.value.id)
            if target == REGISTRY:
                return self.registry.get(node.attr)
            if target:
                return self.aliases.get((target, node.attr))
        return None

    def _alias_definition(self, node: ast.Assign, names, mods, mod: str) -> bool:
        """``NAME = <id>`` or ``A, B = <id>, <id>`` at module level."""
        if not all(isinstance(t, (ast.Name, ast.Tuple)) for t in node.targets):
            return False
        values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
        return bool(values) and all(self._resolve(v, names, mods, mod) for v in values)

    def _string(self, node: ast.AST, names: dict[str, str]) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name) and names.get(node.id, "").startswith("str:"):
            return names[node.id][4:]
        return None

    # -- uses ------------------------------------------------------------------------------
    def uses(self) -> list[Use]:
        out: list[Use] = []
        for p, tree in self.trees.items():
            if module_name(p, self.root) != REGISTRY:   # the registry defines ids, uses none
                out.extend(self._uses_in(p, tree))
        return out

    def _uses_in(self, path: Path, tree: ast.Module) -> list[Use]:
        mod = module_name(path, self.root)
        rel = str(path.relative_to(self.root))
        names, mods = self._imports(mod, tree)
        docstrings = _docstring_nodes(tree)
        parent: dict[int, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parent[id(child)] = node
        out: list[Use] = []

        def log_module(node: ast.AST) -> str | None:
            call = parent.get(id(node))
            if not isinstance(call, ast.Call):
                return None
            fn = getattr(call.func, "attr", None) or getattr(call.func, "id", None)
            pos = 1 if fn in _LEVEL_CALLS else 2 if fn in ("log", "format_line") else None
            if pos is None or len(call.args) <= pos or call.args[pos] is not node:
                return None
            return self._string(call.args[0], names)

        def visit(node: ast.AST, qual: str, top: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if id(child) in docstrings:
                    continue
                if top and isinstance(child, ast.Assign) and self._alias_definition(child, names,
                                                                                  mods, mod):
                    continue                   # an alias definition, not a use
                q = qual
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    q = f"{qual}.{child.name}" if qual else child.name
                ident = self._resolve(child, names, mods, mod)
                if ident is None and isinstance(child, ast.Constant) \
                        and isinstance(child.value, str):
                    m = _LITERAL.match(child.value)
                    ident = m.group(0)[:7] if m else None
                if ident is not None:
                    out.append(Use(ident, rel, qual or "<module>", child.lineno, log_module(child)))
                    continue
                visit(child, q, False)

        visit(tree, "", True)
        return out


def uses(root: Path = ROOT) -> list[Use]:
    """Every use of a log id in the package, in file and line order."""
    return _Scan(root).uses()


def mentions(root: Path = ROOT) -> dict[str, list[str]]:
    """Every id in the source text (comments and docstrings too), range bounds left out:
    id -> ["file:line", ...]."""
    out: dict[str, list[str]] = defaultdict(list)
    for p in source_files(root):
        if module_name(p, root) == REGISTRY:
            continue
        for n, line in enumerate(p.read_text().splitlines(), 1):
            for m in ID_RE.finditer(_RANGE.sub(" ", line)):
                out[m.group(0)].append(f"{p.relative_to(root)}:{n}")
    return dict(out)


def sites_by_id(found: list[Use]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for u in found:
        if u.site not in out[u.ident]:
            out[u.ident].append(u.site)
    return dict(out)


def differences(found: list[Use] | None = None) -> list[str]:
    """What differs between the code and the registry, one sentence each."""
    from httpd_py import logids
    found = uses() if found is None else found
    sites = sites_by_id(found)
    problems = []
    for ident, where in sorted(sites.items()):
        entry = logids.ALL.get(ident)
        if entry is None:
            why = ("a retired id is used again: ids never change meaning, take a new one"
                   if ident in logids.RETIRED else "not in httpd_py/logids.py")
            problems.append(f"{ident}: {why} (used at {', '.join(where)})")
            continue
        extra = [s for s in where if s not in entry.sites]
        gone = [s for s in entry.sites if s not in where]
        if extra:
            problems.append(f"{ident} ({entry.name}) is used at {', '.join(extra)}, which its "
                            f"entry does not list: if that line says what the entry means, add "
                            f"the site to its sites=; if it says something else, register a new id")
        if gone:
            problems.append(f"{ident} ({entry.name}) lists {', '.join(gone)} where it is no longer "
                            f"used: remove the site")
    for u in found:
        entry = logids.ALL.get(u.ident)
        if entry is not None and u.module is not None and u.module != entry.module:
            problems.append(f"{u.ident} ({entry.name}) is logged as module {u.module!r} at "
                            f"{u.file}:{u.line}; its entry says {entry.module!r}")
    for ident, entry in sorted(logids.ALL.items()):
        if ident not in sites:
            problems.append(f"{ident} ({entry.name}) is registered but used nowhere: retire it "
                            f"(RETIRED) or use it")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m httpd_py.devtools.logsites",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="differences from the registry only")
    o = ap.parse_args(argv)
    found = uses()
    if not o.check:
        by_id: dict[str, list[Use]] = defaultdict(list)
        for u in found:
            by_id[u.ident].append(u)
        for ident in sorted(by_id):
            print(ident)
            for u in by_id[ident]:
                print(f"    {u.file}:{u.line} {u.function}"
                      + (f" [{u.module}]" if u.module else ""))
    problems = differences(found)
    for p in problems:
        print(p, file=sys.stderr if not o.check else sys.stdout)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
