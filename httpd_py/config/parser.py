"""httpd.conf text -> logical lines with their file and line, and Apache's word splitting.

Reading follows Apache's ``ap_cfg_getline`` + ``ap_getword_conf``:

* A backslash directly before the newline (``\\`` + [CR]LF) joins the next physical line, with that
  line's leading blanks, inside quotes too.  A comment line ending in ``\\`` swallows the next
  line, as in Apache.  A logical line carries the number of its LAST physical line (Apache counts
  lines as it reads them and reports that number).
* Leading and trailing blanks are trimmed; blank lines and lines starting with ``#`` are dropped.
* A UTF-8 byte-order mark at the start of a file is skipped; CRLF and CR-less files both work.
* Words: bare words end at whitespace; a word *starting* with ``"`` or ``'`` runs to the matching
  quote (or the end of the line), and inside it only ``\\<quote>`` and ``\\\\`` are escapes.  A
  backslash outside quotes is literal.

The lark grammar (``grammar.lark``, LALR with the contextual lexer) classifies lines; ``Line``
values keep the text for the reader, which substitutes ``${VAR}`` before splitting words, as
Apache does.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lark import Lark

from httpd_py.errors import ConfigError

_GRAMMAR = Path(__file__).with_name("grammar.lark")

# Apache's apr_isspace: the C locale's isspace.
_SPACE = " \t\n\v\f\r"


@dataclass(frozen=True, slots=True)
class Line:
    """One logical configuration line: its kind, its trimmed text, where it was read."""
    kind: str          # "directive", "open" (``<Section``), "close" (``</Section``)
    text: str
    file: str
    line: int


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(_GRAMMAR.read_text(), parser="lalr", lexer="contextual",
                maybe_placeholders=False)


def join_continuations(text: str) -> str:
    """Apache's line continuation, keeping line numbers.

    The backslash-newline pairs of a logical line are removed, and as many newlines are emitted
    BEFORE the joined line, so the joined line sits on its last physical line's number.
    """
    if "\\\n" not in text:
        return text
    out: list[str] = []
    pending = 0
    for phys in text.split("\n"):
        if phys.endswith("\\"):
            out.append(phys[:-1])
            pending += 1
            continue
        if pending:
            # Move the joined text onto the last physical line: newlines first.
            joined = "".join(out[len(out) - pending:]) + phys
            del out[len(out) - pending:]
            out.extend([""] * pending)
            out.append(joined)
            pending = 0
        else:
            out.append(phys)
    if pending:  # a continuation at end of file: Apache keeps what it has
        joined = "".join(out[len(out) - pending:])
        del out[len(out) - pending:]
        out.extend([""] * (pending - 1))
        out.append(joined)
    return "\n".join(out)


def normalise(text: str) -> str:
    """BOM, CRLF and the continuation pre-pass."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return join_continuations(text)


def parse_text(text: str, file: str) -> list[Line]:
    """Classify the logical lines of one file (comments and blank lines dropped)."""
    text = normalise(text)
    if not text.endswith("\n"):
        text += "\n"
    tree = _lark().parse(text)
    lines: list[Line] = []
    append = lines.append
    for item in tree.children:
        kind = item.data
        if kind == "comment":
            continue
        tok = item.children[0]
        append(Line(kind, tok.value.rstrip(_SPACE), file, tok.line))
    return lines


def read_file(path: str) -> list[Line]:
    """Read and classify one configuration file; unreadable files raise ConfigError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise ConfigError(f"Could not open configuration file {path}: Is a directory") from None
    except OSError as e:
        raise ConfigError(f"Could not open configuration file {path}: "
                          f"{os.strerror(e.errno) if e.errno else e}") from None
    # Apache reads bytes; undecodable bytes are kept (surrogateescape) rather than refused.
    return parse_text(data.decode("utf-8", "surrogateescape"), path)


# ap_getword_conf: one quoted or bare word, then any whitespace.
_WORD = re.compile(
    r"""[ \t\n\v\f\r]*(?:"((?:[^"\\]|\\.|\\$)*)"?|'((?:[^'\\]|\\.|\\$)*)'?|([^ \t\n\v\f\r]+))""",
    re.S)
_DQ_ESC = re.compile(r'\\([\\"])')
_SQ_ESC = re.compile(r"\\([\\'])")


def split_args(text: str) -> list[str]:
    """Split a line (or the rest of one) into words as ap_getword_conf does."""
    words: list[str] = []
    pos, end = 0, len(text)
    while pos < end:
        m = _WORD.match(text, pos)
        if m is None or m.end() == pos:
            break
        dq, sq, bare = m.groups()
        if bare is not None:
            words.append(bare)
        elif dq is not None:
            words.append(_DQ_ESC.sub(r"\1", dq) if "\\" in dq else dq)
        elif sq is not None:
            words.append(_SQ_ESC.sub(r"\1", sq) if "\\" in sq else sq)
        else:  # only whitespace left
            break
        pos = m.end()
    return words


def first_word(text: str) -> tuple[str, str]:
    """The first word (as ap_getword_conf reads it) and the rest of the line, left-trimmed."""
    m = _WORD.match(text)
    if m is None:
        return "", ""
    dq, sq, bare = m.groups()
    if bare is not None:
        word = bare
    elif dq is not None:
        word = _DQ_ESC.sub(r"\1", dq)
    elif sq is not None:
        word = _SQ_ESC.sub(r"\1", sq)
    else:
        return "", ""
    return word, text[m.end():].lstrip(_SPACE)
