"""Read phase: files -> a tree of directive nodes, as Apache's ``ap_build_config`` builds it.

Apache reads the configuration in two passes, and errors surface in that order:

1. **Read** (this module): each logical line has ``${VAR}`` substituted (Define, then the
   environment; an undefined name stays as written, with Apache's AH00111-style warning) and is
   split into a name and arguments.  Commands Apache runs *while reading* run here:
   ``Include``/``IncludeOptional`` (splice the files' trees in), ``Define``/``UnDefine``,
   ``ServerRoot``, ``DefaultRuntimeDir``, ``LoadModule``/``LoadFile`` and the conditional sections ``<IfDefine>``,
   ``<IfModule>``, ``<IfFile>``, ``<IfDirective>``, ``<IfSection>``, ``<IfVersion>``.  A false
   conditional's body is skipped without being parsed (only section nesting is tracked, as
   ``ap_soak_end_container`` does).  Other sections become nodes with children; their open and
   close tags must match.
   Apache checks no context for these read-time commands (``LoadModule`` or ``ServerRoot`` inside
   ``<VirtualHost>`` pass ``apache2 -t``), and neither does httpd-py.
2. **Walk** (``build.py``): every remaining node is checked against the directive table.

A node's location is its file and the number of the last physical line of its logical line.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Callable

from httpd_py.config import modules
from httpd_py.config.parser import Line, first_word, read_file, split_args
from httpd_py.errors import ConfigError

MAX_INCLUDE_DEPTH = 128
MAX_NESTING = 200                  # sections inside sections (Apache is bounded by its C stack)
APACHE_VERSION = (2, 4, 71)        # what <IfVersion> compares against (the httpd we mirror)


@dataclass(slots=True)
class Node:
    """A directive (children None) or a section (``<Name`` with children) and where it was read."""
    name: str                       # as written, sections keep their '<' ("<VirtualHost")
    args: str                       # rest of the line after ${VAR} substitution
    file: str
    line: int
    children: list["Node"] | None = None

    @property
    def lname(self) -> str:
        return self.name.lower()


@dataclass
class ReadState:
    server_root: str
    defines: dict[str, str]                       # Define / -D (value "" when none given)
    loaded: set[str]                              # module ids: "ssl_module"
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    warnings: list[str] = field(default_factory=list)
    includes: list[tuple[int, int, str]] = field(default_factory=list)  # (depth, line, file)
    load_modules: list[tuple[str, str]] = field(default_factory=list)  # (module id, path)
    server_root_location: tuple[str, int] | None = None
    runtime_dir: str | None = None                # DefaultRuntimeDir (Apache runs it while reading)
    # set by the caller: does this directive / section name exist for a loaded module?
    directive_known: Callable[[str], bool] = lambda name: False


_VAR = re.compile(r"\$\{([^}]*)\}")


class _Source:
    """The logical lines of one file, consumed in order."""

    def __init__(self, lines: list[Line]):
        self.lines = lines
        self.pos = 0

    def next(self) -> Line | None:
        if self.pos >= len(self.lines):
            return None
        ln = self.lines[self.pos]
        self.pos += 1
        return ln


class Reader:
    def __init__(self, state: ReadState):
        self.st = state
        self.stack: list[str] = []          # files being read (cycle detection)
        self.nesting = 0                    # open conditional sections being read

    # -- variables -------------------------------------------------------------------------------
    def resolve(self, text: str, where: Line) -> str:
        if "${" not in text:
            return text

        def sub(m: re.Match) -> str:
            name = m.group(1)
            if name in self.st.defines:
                return self.st.defines[name]
            if name in self.st.environ:
                return self.st.environ[name]
            self.st.warnings.append(f"Config variable ${{{name}}} is not defined "
                                    f"(line {where.line} of {where.file})")
            return m.group(0)
        return _VAR.sub(sub, text)

    # -- files -----------------------------------------------------------------------------------
    def read_top(self, path: str) -> list[Node]:
        self.st.includes.append((0, 0, path))
        return self.read_path(path, parents=())

    def read_path(self, path: str, parents: tuple[Node, ...]) -> list[Node]:
        real = os.path.realpath(path)
        if real in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(real):], real])
            raise ConfigError(f"Include cycle: {chain}")
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            raise ConfigError(f"Exceeded the maximum include directory nesting level of "
                              f"{MAX_INCLUDE_DEPTH}. You have probably a recursion somewhere.")
        self.stack.append(real)
        try:
            src = _Source(read_file(path))
            nodes, _closed = self.build(src, parents, end=None)
            return nodes
        finally:
            self.stack.pop()

    # -- building --------------------------------------------------------------------------------
    def build(self, src: _Source, parents: tuple[Node, ...], end: str | None
              ) -> tuple[list[Node], bool]:
        """Build nodes until end of file, or (``end`` given) the raw line ``</end>``.

        Returns the top-level nodes and whether the ``end`` line was seen.
        """
        top: list[Node] = []
        open_sections: list[Node] = []
        end_line = f"</{end.lower()}>" if end else None
        while True:
            ln = src.next()
            if ln is None:
                break
            if end_line is not None and not open_sections and ln.text.lower() == end_line:
                return top, True
            text = self.resolve(ln.text, ln)
            word, rest = first_word(text)
            if not word:
                continue
            container = open_sections[-1].children if open_sections else top
            if word.startswith("</"):
                self._close(word, ln, open_sections)
                continue
            if word.endswith(">"):
                word = word[:-1]
            if word.startswith("<") and not rest:
                rest = ">"
            lname = word.lower()
            handler = _READ_TIME.get(lname)
            if handler is not None:
                here = (*parents, *open_sections)
                node = Node(word, rest, ln.file, ln.line)
                try:
                    container.extend(handler(self, node, src, here))
                except ConfigError as e:
                    raise e.located(ln.file, ln.line) from None
                except (ValueError, OSError) as e:    # e.g. a NUL byte in a path
                    raise ConfigError(f"{word}: {e}", ln.file, ln.line) from None
                continue
            if word.startswith("<"):
                if len(open_sections) + self.nesting >= MAX_NESTING:
                    raise ConfigError(f"sections nested more than {MAX_NESTING} levels deep",
                                      ln.file, ln.line)
                node = Node(word, rest, ln.file, ln.line, [])
                container.append(node)
                open_sections.append(node)
            else:
                container.append(Node(word, rest, ln.file, ln.line))
        if open_sections and end is None:
            # A true conditional's body that hits the end of the file ends silently, sections
            # opened in it included (ap_build_cont_config): Apache accepts that.  Otherwise
            # Apache lists every unclosed section, innermost first, and reports the outermost.
            msg = "\n".join(f"{s.file}:{s.line}: {s.name}> was not closed."
                            for s in reversed(open_sections))
            outer = open_sections[0]
            raise ConfigError(msg, outer.file, outer.line)
        return top, False

    @staticmethod
    def _close(word: str, ln: Line, open_sections: list[Node]) -> None:
        if not open_sections:
            raise ConfigError(f"{word} without matching <{word[2:]} section", ln.file, ln.line)
        name = word[2:-1]             # Apache drops the last character (normally '>')
        cur = open_sections[-1]
        if name.lower() != cur.name[1:].lower():
            raise ConfigError(f"Expected </{cur.name[1:]}> but saw </{name}>", ln.file, ln.line)
        open_sections.pop()

    def soak(self, src: _Source, section: str, depth: int = 0) -> None:
        """Skip a false conditional's body, tracking only nested sections (no ${VAR}, no checks)."""
        if depth + self.nesting >= MAX_NESTING:
            raise ConfigError(f"sections nested more than {MAX_NESTING} levels deep")
        while True:
            ln = src.next()
            if ln is None:
                raise ConfigError(f"Expected </{section[1:]}> before end of configuration")
            word, rest = first_word(ln.text)
            if not word.startswith("<"):
                continue
            if word.startswith("</"):
                name = word[2:-1]
                if name.lower() != section[1:].lower():
                    raise ConfigError(f"Expected </{section[1:]}> but saw </{name}>")
                return
            if not rest and word.endswith(">"):
                word = word[:-1]
            self.soak(src, word, depth + 1)


# -- read-time commands ----------------------------------------------------------------------------
def section_text(node: Node) -> str:
    """A section line's arguments, up to its closing '>' (which must be there)."""
    args = node.args
    end = args.rfind(">")
    if end < 0:
        raise ConfigError(f"{node.name}> directive missing closing '>'")
    return args[:end]


def _section_arg(node: Node) -> str:
    text = section_text(node)
    if not split_args(text):
        raise ConfigError(f"{node.name}> directive requires additional arguments")
    return text


def _conditional(test: Callable[[Reader, str], bool]):
    def handler(r: Reader, node: Node, src: _Source, parents: tuple[Node, ...]) -> list[Node]:
        arg = _section_arg(node).strip()
        negate = arg.startswith("!")
        if negate:
            arg = arg[1:]
        words = split_args(arg)
        if test(r, " ".join(words) if node.lname == "<ifversion" else (words[0] if words else "")) \
                != negate:
            if r.nesting + len(parents) >= MAX_NESTING:
                raise ConfigError(f"sections nested more than {MAX_NESTING} levels deep")
            r.nesting += 1
            try:
                nodes, _closed = r.build(src, parents, end=node.name[1:])
            finally:
                r.nesting -= 1
            return nodes
        r.soak(src, node.name)
        return []
    return handler


def _ifdefine(r: Reader, name: str) -> bool:
    return name in r.st.defines


def _ifmodule(r: Reader, name: str) -> bool:
    return modules.is_loaded(name, r.st.loaded)


def _iffile(r: Reader, name: str) -> bool:
    p = name if os.path.isabs(name) else os.path.join(r.st.server_root, name)
    return os.path.exists(p)


def _ifdirective(r: Reader, name: str) -> bool:
    return r.st.directive_known(name.lower())


def _ifsection(r: Reader, name: str) -> bool:
    return r.st.directive_known("<" + name.lower())


def _ifversion(r: Reader, text: str) -> bool:
    words = text.split()
    op, ver = ("=", words[0]) if len(words) == 1 else (words[0], words[-1])
    if op in ("~",) or (ver.startswith("/") and ver.endswith("/")):
        pattern = ver.strip("/")
        return re.search(pattern, ".".join(map(str, APACHE_VERSION))) is not None
    parts = ver.split(".")
    if not all(p.isdigit() for p in parts) or not parts or len(parts) > 3:
        raise ConfigError(f"<IfVersion> directive: invalid version '{ver}'")
    want = tuple(int(p) for p in parts)
    have = APACHE_VERSION[:len(want)]
    ops = {"=": have == want, "==": have == want, ">": have > want, ">=": have >= want,
           "<": have < want, "<=": have <= want}
    if op not in ops:
        raise ConfigError(f"<IfVersion> directive: invalid operator '{op}'")
    return ops[op]


def _words(node: Node) -> list[str]:
    return split_args(node.args)


def _include(optional: bool):
    def handler(r: Reader, node: Node, src: _Source, parents: tuple[Node, ...]) -> list[Node]:
        words = _words(node)
        if len(words) != 1:
            raise ConfigError(f"{node.name} takes one argument, Name(s) of the config file(s) "
                              f"to be included; {'silently ' if optional else ''}"
                              f"{'ignored' if optional else 'fails'} if the file does not exist "
                              f"or a pattern does not match")
        pattern = words[0]
        if "\0" in pattern:
            raise ConfigError(f"Could not open configuration file {pattern!r}: invalid path")
        if not os.path.isabs(pattern):
            pattern = os.path.join(r.st.server_root, pattern)
        files = expand_include(pattern, optional)
        depth = len(r.stack)
        nodes: list[Node] = []
        for f in files:
            r.st.includes.append((depth, node.line, f))
            try:
                nodes.extend(r.read_path(f, parents))
            except ConfigError as e:
                if e.file is None:
                    raise
                raise e.within(node.file, node.line) from None   # Apache's chain, outermost first
        return nodes
    return handler


def _has_wildcard(s: str) -> bool:
    return any(c in s for c in "*?[")


def expand_include(pattern: str, optional: bool) -> list[str]:
    """The files an Include names, in Apache's order (byte-wise sorted, directories recursed)."""
    pattern = os.path.normpath(pattern) if not pattern.endswith("/") else pattern
    if not _has_wildcard(pattern):
        if os.path.isdir(pattern):
            return _dir_files(pattern)
        if optional and not os.path.exists(pattern):
            return []
        return [pattern]
    parts = pattern.split("/")
    # Find the first component with a wildcard; everything before it is a plain directory.
    i = next(k for k, p in enumerate(parts) if _has_wildcard(p))
    base = "/".join(parts[:i]) or "/"
    pat, rest = parts[i], parts[i + 1:]
    try:
        entries = sorted(os.listdir(base))
    except OSError as e:
        if optional:
            return []
        raise ConfigError(f"Include/IncludeOptional: Could not open directory {base}: "
                          f"{os.strerror(e.errno or 0)}") from None
    matches = [e for e in entries
               if fnmatch.fnmatchcase(e, pat) and (not e.startswith(".") or pat.startswith("."))]
    out: list[str] = []
    if rest:
        for m in matches:
            full = os.path.join(base, m)
            if os.path.isdir(full):
                out.extend(expand_include(os.path.join(full, *rest), optional))
        if not out and not optional and not matches:
            raise ConfigError(f"Include/IncludeOptional: No matches for the wildcard '{pat}' in "
                              f"'{base}', failing")
        return out
    for m in matches:
        full = os.path.join(base, m)
        if os.path.isdir(full):
            out.extend(_dir_files(full))
        else:
            out.append(full)
    if not matches and not optional:
        raise ConfigError(f"Include/IncludeOptional: No matches for the wildcard '{pat}' in "
                          f"'{base}', failing")
    return out


def _dir_files(d: str) -> list[str]:
    out: list[str] = []
    try:
        entries = sorted(os.listdir(d))
    except OSError as e:
        raise ConfigError(f"Could not open config directory {d}: "
                          f"{os.strerror(e.errno or 0)}") from None
    for e in entries:
        full = os.path.join(d, e)
        out.extend(_dir_files(full) if os.path.isdir(full) else [full])
    return out


def _define(r: Reader, node: Node, src: _Source, parents: tuple[Node, ...]) -> list[Node]:
    words = _words(node)
    if not 1 <= len(words) <= 2:
        raise ConfigError("Define takes 1-2 arguments, Define a variable, optionally to a value")
    if ":" in words[0]:
        raise ConfigError("Variable name must not contain ':'")
    r.st.defines[words[0]] = words[1] if len(words) == 2 else ""
    return []


def _undefine(r: Reader, node: Node, src: _Source, parents: tuple[Node, ...]) -> list[Node]:
    words = _words(node)
    if len(words) != 1:
        raise ConfigError("UnDefine takes one argument, Undefine the existence of a variable")
    if ":" in words[0]:
        raise ConfigError("Variable name must not contain ':'")
    r.st.defines.pop(words[0], None)
    return []


def _server_root(r: Reader, node: Node, src: _Source, parents: tuple[Node, ...]) -> list[Node]:
    words = _words(node)
    if len(words) != 1:
        raise ConfigError("ServerRoot takes one argument, Common directory of server-related "
                          "files (logs, confs, etc.)")
    p = os.path.normpath(words[0] if os.path.isabs(words[0])
                         else os.path.join(r.st.server_root, words[0]))
    if not os.path.isdir(p):
        raise ConfigError(f"ServerRoot must be a valid directory")
    r.st.server_root = p
    r.st.server_root_location = (node.file, node.line)
    return []


def _load_module(r: Reader, node: Node, src: _Source, parents: tuple[Node, ...]) -> list[Node]:
    words = _words(node)
    if len(words) != 2:
        raise ConfigError("LoadModule takes two arguments, a module name and the name of a "
                          "shared object file to load it from")
    module_id, so = words
    so_abs = so if os.path.isabs(so) else os.path.join(r.st.server_root, so)
    if os.path.isdir(so_abs):       # a missing file is fine (httpd-py loads nothing); a directory is not
        raise ConfigError(f"Cannot load {so} into server: {so_abs}: cannot read file data: "
                          f"Is a directory")
    if not modules.known_module(module_id):
        so_path = so if os.path.isabs(so) else os.path.join(r.st.server_root, so)
        if not os.path.exists(so_path):
            raise ConfigError(f"Cannot load {so} into server: {so_path}: cannot open shared "
                              f"object file: No such file or directory")
        r.st.warnings.append(f"LoadModule {module_id}: httpd-py does not implement this "
                             f"third-party module; its directives are unknown "
                             f"(line {node.line} of {node.file})")
    r.st.loaded.add(module_id)
    r.st.load_modules.append((module_id, so))
    return []


def _default_runtime_dir(r: Reader, node: Node, src: _Source, parents: tuple[Node, ...]
                         ) -> list[Node]:
    words = _words(node)
    if len(words) != 1:
        raise ConfigError("DefaultRuntimeDir takes one argument, Common directory for run-time "
                          "files (shared memory, locks, etc.)")
    p = os.path.normpath(words[0] if os.path.isabs(words[0])
                         else os.path.join(r.st.server_root, words[0]))
    if not os.path.isdir(p):
        # Apache's words, then which directory was tried and against which ServerRoot
        raise ConfigError(f"DefaultRuntimeDir must be a valid directory, absolute or relative to "
                          f"ServerRoot ({p} is not a directory; ServerRoot {r.st.server_root})")
    r.st.runtime_dir = p
    return []


def _load_file(r: Reader, node: Node, src: _Source, parents: tuple[Node, ...]) -> list[Node]:
    if not _words(node):
        raise ConfigError("LoadFile requires at least one argument, shared object file or "
                          "library to load into the server at runtime")
    return []


_READ_TIME: dict[str, Callable] = {
    "include": _include(False),
    "includeoptional": _include(True),
    "define": _define,
    "undefine": _undefine,
    "serverroot": _server_root,
    "defaultruntimedir": _default_runtime_dir,
    "loadmodule": _load_module,
    "loadfile": _load_file,
    "<ifdefine": _conditional(_ifdefine),
    "<ifmodule": _conditional(_ifmodule),
    "<iffile": _conditional(_iffile),
    "<ifdirective": _conditional(_ifdirective),
    "<ifsection": _conditional(_ifsection),
    "<ifversion": _conditional(_ifversion),
}
READ_TIME_NAMES = frozenset(_READ_TIME)
