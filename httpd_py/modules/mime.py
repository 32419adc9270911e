"""mod_mime: what a file is, from its name (Apache 2.4's mod_mime.c, by behaviour).

Directives (per directory, AllowOverride FileInfo): AddType (a core row in
``config/directives.py`` that also feeds this module), AddCharset, AddEncoding, AddLanguage,
AddHandler, AddOutputFilter, AddInputFilter (accepted: no input filters are built), their
``Remove*`` twins, DefaultLanguage, MultiviewsMatch, ModMimeUsePathInfo, and core's ForceType.

Data layout: one per-directory value, ``dir.mime.conf`` -> ``MimeDir``::

    MimeDir.exts       ((ext, ExtInfo), ...)   extension (lower-case, no dot) -> what the
                                               Add* lines said; ExtInfo.type == "" is a RemoveType
                                               (it also hides the TypesConfig answer)
    MimeDir.removes    ((ext, field), ...)     Remove{Charset,Encoding,Handler,Language,...}Filter
                                               lines not yet applied: they apply when the
                                               section is merged over another (Apache's
                                               merge_mime_dir_configs), to inherited and own
                                               entries alike
    default_language, multimatch, use_path_info

The merge is Apache's: entries of the later section overlay the inherited ones field by field,
then its removals clear fields.  Because Apache's section walk merges the sections with each
other before merging the result onto the server's defaults (and this merge is not associative),
a merged value keeps the server's defaults apart (``MimeDir.server``) and combines them last
(``MimeDir.effective``).  ``resolve(name, MimeDir, types)`` is the pure type checker
(find_ct): the base name (leading dots kept) is skipped, then every extension, in order, may set
the type (AddType, else TypesConfig), charset, languages (all of them, in order), encodings
(joined by ", "), handler and output filters; the content type is then rebuilt with its
parameters and ``; charset=`` as Apache does.  Unrecognised extensions make the exception list
mod_negotiation reads (MultiviewsMatch).

The TypesConfig map is Apache's one global table: the main server's TypesConfig (a vhost's
is ignored, as by mod_mime's post_config), read once per process and path.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from httpd_py.config.dirconf import register
from httpd_py.errors import ConfigError
from httpd_py.http import hooks

MULTIMATCH_ANY, MULTIMATCH_NEGOTIATED, MULTIMATCH_HANDLERS, MULTIMATCH_FILTERS = 1, 2, 4, 8

FIELDS = ("type", "encoding", "language", "handler", "charset", "in_filters", "out_filters")
DIR_MAGIC_TYPE = "httpd/unix-directory"


@dataclass(frozen=True)
class ExtInfo:
    """What the Add* lines say about one extension (None: nothing)."""
    type: str | None = None
    encoding: str | None = None
    language: str | None = None
    handler: str | None = None
    charset: str | None = None
    in_filters: str | None = None
    out_filters: str | None = None

    def overlay(self, new: "ExtInfo") -> "ExtInfo":
        """Apache's overlay_extension_mappings: every field the later entry sets wins."""
        return ExtInfo(*(n if n is not None else b
                         for b, n in zip(_astuple(self), _astuple(new))))

    def without(self, name: str) -> "ExtInfo":
        d = dict(zip(FIELDS, _astuple(self)))
        d[name] = None
        return ExtInfo(**d)


def _astuple(e: ExtInfo) -> tuple:
    return (e.type, e.encoding, e.language, e.handler, e.charset, e.in_filters, e.out_filters)


@dataclass(frozen=True)
class MimeDir:
    """One section's (or a merged) mod_mime configuration; see the module docstring.

    ``is_server``: written outside any section (a server's defaults).  ``server``: in a
    value the section walk merged, the server's defaults it started from; the value's own
    fields are then the sections merged together.  Apache's walk merges the sections of a walk
    with each other first and the result onto the server's defaults, and mod_mime's merge is
    not associative (a RemoveLanguage in a subdirectory clears the parent section's entry,
    which then no longer hides the server's), so both parts are kept and combined last
    (``effective``)."""
    exts: tuple = ()
    removes: tuple = ()
    default_language: str | None = None
    multimatch: int | None = None
    use_path_info: int = 2                # 2: unset (off); 0 off; 1 on
    is_server: bool = False
    server: "MimeDir | None" = None
    table: dict = field(default_factory=dict, compare=False, hash=False, repr=False)
    memo: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def make(cls, exts: dict, removes: tuple = (), default_language: str | None = None,
             multimatch: int | None = None, use_path_info: int = 2, is_server: bool = False,
             server: "MimeDir | None" = None) -> "MimeDir":
        return cls(tuple(sorted(exts.items())), removes, default_language, multimatch,
                   use_path_info, is_server, server, dict(exts))

    def chain(self) -> "MimeDir":
        """This value without its server part."""
        return MimeDir.make(self.table, self.removes, self.default_language, self.multimatch,
                            self.use_path_info) if self.server is not None else self

    def effective(self) -> "MimeDir":
        """The configuration a request gets: the sections' merge over the server's defaults
        (pending removals applied either way)."""
        got = self.memo.get("effective")
        if got is None:
            if self.server is not None:
                got = plain_merge(self.server, self.chain())
            elif self.removes:
                got = MimeDir.make(_apply_removes(dict(self.table), self.removes), (),
                                   self.default_language, self.multimatch, self.use_path_info)
            else:
                got = self
            self.memo["effective"] = got
        return got

    def final_table(self) -> dict:
        return self.effective().table


def _apply_removes(table: dict, removes: tuple) -> dict:
    for ext, name in removes:
        info = table.get(ext)
        if info is not None and getattr(info, name) is not None:
            table[ext] = info.without(name)
    return table


def plain_merge(base: MimeDir, new: MimeDir) -> MimeDir:
    """merge_mime_dir_configs: ``new`` over ``base`` (entries overlaid field by field, then
    ``new``'s removals applied to the result)."""
    table = dict(base.table)
    for ext, info in new.table.items():
        old = table.get(ext)
        table[ext] = old.overlay(info) if old is not None else info
    if new.removes:
        _apply_removes(table, new.removes)
    return MimeDir.make(
        table, (),
        new.default_language if new.default_language is not None else base.default_language,
        new.multimatch if new.multimatch is not None else base.multimatch,
        new.use_path_info if not new.use_path_info & 2 else base.use_path_info,
        base.is_server and new.is_server)


def merge(base: MimeDir, new: MimeDir) -> MimeDir:
    """The per-directory merge rule (dirconf.register): server defaults over server defaults
    (a vhost's over the main server's) merge plainly; a section over the server's defaults
    starts a chain that remembers them; a section over a chain extends the chain."""
    if new.is_server:
        return plain_merge(base, new)
    if base.is_server:
        return dataclasses.replace(new, server=base, memo={})
    if base.server is not None:
        return dataclasses.replace(plain_merge(base.chain(), new), server=base.server)
    return plain_merge(base, new)


KEY = register("dir.mime.conf", merge)
FORCE_TYPE = register("dir.mime.force_type")          # core's ForceType ("none": unset)


# -- directive handlers ----------------------------------------------------------------------
def _own(w) -> MimeDir:
    got = w.own(KEY)
    return got if got is not None else MimeDir()


def _store(w, md: MimeDir, table: dict | None = None, **changes) -> None:
    kw = dict(removes=md.removes, default_language=md.default_language,
              multimatch=md.multimatch, use_path_info=md.use_path_info)
    kw.update(changes)
    server = w.dir_section is None and getattr(w, "htaccess", None) is None
    w.set(KEY, MimeDir.make(md.table if table is None else table, is_server=server, **kw))


def add_info(w, name: str, value: str, exts: list[str]) -> None:
    """AddType/AddCharset/...: ``value`` (lower-cased, as Apache) for each extension."""
    md = _own(w)
    table = dict(md.table)
    value = value.lower()
    for e in exts:
        key = e.lower()
        if key.startswith("."):
            key = key[1:]
        info = table.get(key, ExtInfo())
        d = dict(zip(FIELDS, _astuple(info)))
        d[name] = value
        table[key] = ExtInfo(**d)
    _store(w, md, table)


def add_type_row(w, args: list[str]) -> None:
    """AddType's effect on this module (called by core's AddType row handler)."""
    add_info(w, "type", args[0], args[1:])


def _add(name: str):
    def h(w, args):
        if name == "handler":
            _check_handler(w, args[0])
        elif name == "out_filters":
            _note_filters(w, args[0])
        elif name == "in_filters":
            w.ignored.append((w.name, w.loc))
        add_info(w, name, args[0], args[1:])
    return h


def _remove(name: str):
    def h(w, args):
        if name == "type":          # RemoveType: an empty type, which also hides TypesConfig's
            add_info(w, "type", "", args)
            return
        md = _own(w)
        extra = tuple((a.lower()[1:] if a.startswith(".") else a.lower(), name) for a in args)
        _store(w, md, removes=md.removes + extra)
    return h


def _check_handler(w, name: str) -> None:
    """AddHandler: a handler some module registered, or one whose absence serves nothing
    different (listed as without effect); anything else would serve the files it should run
    as they are: refused."""
    from httpd_py.modules.core_http import DEFAULT_HANDLERS, HARMLESS_UNBUILT
    lname = name.lower()
    if lname in hooks.HANDLERS or lname in DEFAULT_HANDLERS:
        return
    if lname in HARMLESS_UNBUILT:
        w.ignored.append((f"AddHandler {name}", w.loc))
        return
    raise ConfigError(f"AddHandler: handler '{name}' is not built into httpd-py: the files it "
                      f"should run would be served as they are; refused rather than ignored. "
                      f"Remove it, or put it in <IfModule> of a module that is not loaded")


def _note_filters(w, spec: str) -> None:
    """Filters other than DEFLATE are not built: listed as without effect."""
    for name in spec.split(";"):
        if name and name.upper() != "DEFLATE":
            w.ignored.append((f"{w.name} {name}", w.loc))


def _default_language(w, args):
    md = _own(w)
    _store(w, md, default_language=args[0])


_MULTIMATCH_WORDS = {"any": MULTIMATCH_ANY, "negotiatedonly": MULTIMATCH_NEGOTIATED,
                     "filters": MULTIMATCH_FILTERS, "handlers": MULTIMATCH_HANDLERS}


def _multiviews_match(w, args):
    sec = w.dir_section.lname if w.dir_section is not None else ""
    if sec in ("<location", "<locationmatch"):
        raise ConfigError(f"MultiviewsMatch cannot occur within {w.dir_section.name}> section")
    md = _own(w)
    mm = md.multimatch or 0
    for a in args:
        bit = _MULTIMATCH_WORDS.get(a.lower())
        if bit is None:
            raise ConfigError(f"Unrecognized option '{a}'")
        if bit == MULTIMATCH_ANY and mm & ~MULTIMATCH_ANY:
            raise ConfigError("Any is incompatible with NegotiatedOnly, Filters and Handlers")
        if bit == MULTIMATCH_NEGOTIATED and mm & ~MULTIMATCH_NEGOTIATED:
            raise ConfigError("NegotiatedOnly is incompatible with Any, Filters and Handlers")
        if bit == MULTIMATCH_FILTERS and mm & (MULTIMATCH_NEGOTIATED | MULTIMATCH_ANY):
            raise ConfigError("Filters is incompatible with Any and NegotiatedOnly")
        if bit == MULTIMATCH_HANDLERS and mm & (MULTIMATCH_NEGOTIATED | MULTIMATCH_ANY):
            raise ConfigError("Handlers is incompatible with Any and NegotiatedOnly")
        mm |= bit
    _store(w, md, multimatch=mm)


def _use_path_info(w, args):
    from httpd_py.config import values
    md = _own(w)
    _store(w, md, use_path_info=1 if values.flag(args[0], w.name) else 0)


def _force_type(w, args):
    w.set(FORCE_TYPE, args[0].lower())


def rows():
    from httpd_py.config.directives.base import ITERATE, ITERATE2, TAKE1, FLAG, Directive as D
    M, C = "mod_mime.c", "core.c"
    rem = "extension [extension] ..."
    return [
        D("AddCharset", M, "A", ITERATE2, "", "Map file extensions to a charset (the "
          "Content-Type's charset parameter)", _add("charset"), syntax="charset " + rem,
          override="fileinfo"),
        D("AddEncoding", M, "A", ITERATE2, "", "Map file extensions to a content encoding "
          "(Content-Encoding)", _add("encoding"), syntax="encoding " + rem, override="fileinfo"),
        D("AddHandler", M, "A", ITERATE2, "", "Map file extensions to a handler (only handlers "
          "httpd-py builds, e.g. type-map)", _add("handler"), syntax="handler-name " + rem,
          override="fileinfo"),
        D("AddInputFilter", M, "A", ITERATE2, "", "Input filters by extension (accepted; no "
          "input filters are built)", _add("in_filters"), syntax="filter[;filter...] " + rem,
          override="fileinfo"),
        D("AddLanguage", M, "A", ITERATE2, "", "Map file extensions to a language "
          "(Content-Language, negotiation)", _add("language"), syntax="language-tag " + rem,
          override="fileinfo"),
        D("AddOutputFilter", M, "A", ITERATE2, "", "Output filters by extension (DEFLATE)",
          _add("out_filters"), syntax="filter[;filter...] " + rem, override="fileinfo"),
        D("DefaultLanguage", M, "A", TAKE1, "", "Language of files whose extensions name none",
          _default_language, syntax="language-tag", override="fileinfo"),
        D("MultiviewsMatch", M, "A", ITERATE, "NegotiatedOnly", "Which extensions MultiViews "
          "may pass over: NegotiatedOnly, Handlers, Filters or Any", _multiviews_match,
          syntax="Any|NegotiatedOnly|Filters|Handlers ...", override="fileinfo"),
        D("ModMimeUsePathInfo", M, "D", FLAG, "Off", "Also read extensions from the path info",
          _use_path_info),
        D("RemoveCharset", M, "A", ITERATE, "", "Forget AddCharset for extensions",
          _remove("charset"), syntax=rem, override="fileinfo"),
        D("RemoveEncoding", M, "A", ITERATE, "", "Forget AddEncoding for extensions",
          _remove("encoding"), syntax=rem, override="fileinfo"),
        D("RemoveHandler", M, "A", ITERATE, "", "Forget AddHandler for extensions",
          _remove("handler"), syntax=rem, override="fileinfo"),
        D("RemoveInputFilter", M, "A", ITERATE, "", "Forget AddInputFilter for extensions",
          _remove("in_filters"), syntax=rem, override="fileinfo"),
        D("RemoveLanguage", M, "A", ITERATE, "", "Forget AddLanguage for extensions",
          _remove("language"), syntax=rem, override="fileinfo"),
        D("RemoveOutputFilter", M, "A", ITERATE, "", "Forget AddOutputFilter for extensions",
          _remove("out_filters"), syntax=rem, override="fileinfo"),
        D("RemoveType", M, "A", ITERATE, "", "Forget AddType (and TypesConfig) for extensions",
          _remove("type"), syntax=rem, override="fileinfo"),
        D("ForceType", C, "A", TAKE1, "", "Serve every file here with this media type (None: "
          "undo an inherited one)", _force_type, syntax="media-type|None", override="fileinfo"),
    ]


# -- TypesConfig -----------------------------------------------------------------------------
_TYPES: dict[str, dict[str, str]] = {}


def types_map(path: str) -> dict[str, str]:
    """Extension -> media type from a mime.types file (lines starting with '#' skipped; every
    word after the type is an extension, lower-cased; a later line wins).  Read once per
    process and path; an unreadable file is an empty map (the core logs it)."""
    got = _TYPES.get(path)
    if got is None:
        got = {}
        try:
            with open(path, encoding="latin-1") as f:
                for line in f:
                    if line.startswith("#"):
                        continue
                    words = line.split()
                    for ext in words[1:]:
                        got[ext.lower()] = words[0]
        except OSError:
            pass
        _TYPES[path] = got
    return got


types_map("/etc/mime.types")       # the usual file: read in the master, shared after fork


def _types_for(req) -> dict[str, str]:
    server = req.server
    v = server.main if server is not None else req.vhost
    return types_map(v.types_config if v is not None else "/etc/mime.types")


# -- the type checker ------------------------------------------------------------------------
@dataclass(frozen=True)
class MimeResult:
    """What find_ct decided for a name."""
    content_type: str | None
    languages: tuple = ()
    encoding: str | None = None
    charset: str | None = None
    handler: str | None = None
    out_filters: tuple = ()
    exceptions: tuple | None = None       # None: nothing recognised (no note for negotiation)
    found_type: bool = False


def resolve(name: str, md: MimeDir | None, types: dict[str, str],
            current_type: str | None = None) -> MimeResult:
    """find_ct over the last path segment ``name``.  ``current_type`` is the type already set
    (Apache's r->content_type before mod_mime runs: normally None)."""
    if md is not None:
        md = md.effective()
        memo = md.memo.get("resolve")
        if memo is None:
            memo = md.memo["resolve"] = {}
        key = (name.rsplit("/", 1)[-1], id(types), current_type)
        got = memo.get(key)
        if got is not None and got[0] is types:
            return got[1]
        if len(memo) >= 2048:
            memo.clear()
        got = _resolve(name, md, types, current_type)
        memo[key] = (types, got)
        return got
    return _resolve(name, None, types, current_type)


def _resolve(name: str, md: MimeDir | None, types: dict[str, str],
             current_type: str | None) -> MimeResult:
    table = md.table if md is not None else {}
    multimatch = (md.multimatch or 0) if md is not None else 0
    fn = name.rsplit("/", 1)[-1]
    i = 0
    while i < len(fn) and fn[i] == ".":
        i += 1
    dot = fn.find(".", i)
    if dot >= 0:
        exceptions = [fn[:dot]]
        rest = fn[dot + 1:]
    else:
        exceptions = [fn]
        rest = ""
    ctype = current_type
    charset = None
    languages: list[str] = []
    encoding = None
    handler = None
    filters: list[str] = []
    found_metadata = found_type = False
    if rest:
        for ext in rest.split("."):
            if not ext:
                continue
            found = False
            lext = ext.lower()
            info = table.get(lext)
            if info is None or info.type is None:
                t = types.get(lext)
                if t is not None:
                    ctype, found, found_type = t, True, True
            if info is not None:
                if info.type:
                    ctype, found, found_type = info.type, True, True
                if info.charset is not None:
                    charset, found = info.charset, True
                if info.language is not None:
                    languages.append(info.language)
                    found = True
                if info.encoding is not None:
                    encoding = info.encoding if encoding is None else f"{encoding}, {info.encoding}"
                    found = True
                if info.handler is not None:
                    handler = info.handler
                    if multimatch & MULTIMATCH_HANDLERS:
                        found = True
                if info.in_filters is not None and multimatch & MULTIMATCH_FILTERS:
                    found = True
                if info.out_filters is not None:
                    filters.extend(f for f in info.out_filters.split(";") if f)
                    if multimatch & MULTIMATCH_FILTERS:
                        found = True
            if found or multimatch & MULTIMATCH_ANY:
                found_metadata = True
            else:
                exceptions.append(ext)
    if ctype:
        ctype = rebuild_type(ctype, charset)
    if not languages and md is not None and md.default_language is not None:
        languages.append(md.default_language)
    return MimeResult(ctype, tuple(languages), encoding, charset, handler, tuple(filters),
                      tuple(exceptions) if found_metadata else None, found_type)


_TSPECIAL = frozenset('()<>@,;:\\"/[]?=')


def _is_token(c: str) -> bool:
    return "!" <= c <= "~" and c not in _TSPECIAL


def analyze_ct(s: str) -> tuple[str, str, list] | None:
    """mod_mime's analyze_ct: (type, subtype, [(attribute, value), ...]) or None when Apache
    cannot read it (then the type is left as it was)."""
    n = len(s)
    cp = 0
    while cp < n and s[cp].isspace():
        cp += 1
    if cp >= n:
        return None
    start = cp
    cp += 1
    while cp < n and s[cp] != "/" and not s[cp].isspace() and s[cp] != ";":
        cp += 1
    if cp >= n or s[cp] == ";":
        return None
    while cp < n and s[cp].isspace():
        cp += 1
    if cp >= n or s[cp] != "/":
        return None
    ctype = s[start:cp]                       # trailing blanks kept, as Apache's type_len
    cp += 1
    while cp < n and s[cp].isspace():
        cp += 1
    if cp >= n:
        return None
    start = cp
    cp += 1
    while cp < n and not s[cp].isspace() and s[cp] != ";":
        cp += 1
    subtype = s[start:cp]
    while cp < n and s[cp].isspace():
        cp += 1
    params: list = []
    if cp >= n:
        return ctype, subtype, params
    cp += 1                                   # the ';' (or whatever stood there)
    while cp < n and s[cp] in " \t\n":
        cp += 1
    if cp >= n:
        return None
    mp = cp
    attribute = None
    quoted = False
    while cp < n:
        c = s[cp]
        if attribute is None:
            if _is_token(c) or c in " \t\n":
                cp += 1
                continue
            if c == "=":
                attribute = s[mp:cp].strip()
                if not attribute:
                    return None
                cp += 1
                while cp < n and s[cp] in " \t\n":
                    cp += 1
                if cp >= n:
                    return None
                mp = cp
                continue
            return None
        if mp == cp:
            quoted = s[cp] == '"'
            if quoted:
                cp += 1
        if quoted:
            while quoted and cp < n:
                c = s[cp]
                if c.isascii() and c not in '"\\\n':
                    cp += 1
                elif c == "\\" and cp + 1 < n and s[cp + 1].isascii():
                    cp += 2
                elif c == '"':
                    cp += 1
                    while cp < n and s[cp] in " \t\n":
                        cp += 1
                    if cp < n and s[cp] != ";":
                        return None
                    quoted = False
                else:
                    return None
        else:
            while True:
                if cp < n and _is_token(s[cp]):
                    cp += 1
                elif cp >= n or s[cp] == ";":
                    break
                else:
                    return None
        value = s[mp:cp].strip()
        if not value:
            return None
        params.append((attribute, value))
        attribute = None
        quoted = False
        if cp >= n:
            break
        cp += 1
        mp = cp
    return ctype, subtype, params


@functools.lru_cache(maxsize=1024)
def rebuild_type(ctype: str, charset: str | None) -> str:
    """The content type as mod_mime leaves it: "type/subtype" then each parameter as
    "; attr=value", the first charset parameter replaced by AddCharset's, or one appended."""
    got = analyze_ct(ctype)
    if got is None:
        return ctype
    t, st, params = got
    out = f"{t}/{st}"
    override = False
    for attr, val in params:
        if charset is not None and attr == "charset":
            if not override:
                out += f"; charset={charset}"
                override = True
        else:
            out += f"; {attr}={val}"
    if charset is not None and not override:
        out += f"; charset={charset}"
    return out


def type_checker(req: hooks.Request) -> Any:
    """hooks.TYPE_CHECKER: the file's type, languages, encoding, charset, handler and output
    filters (notes["mime.filters"]) as mod_mime sets them, then core's ForceType."""
    if req.notes:                   # a previous pass (an internal redirect) set its own
        req.notes.pop("mime.filters", None)
    conf = req.conf
    if conf is None or not conf.mods:
        return None
    md = conf.mod(KEY)
    force = conf.mod(FORCE_TYPE)
    if md is None and force is None:
        return None                 # no mod_mime directive here: the core's answer stands
    if md is not None:
        name = req.filename
        if md.effective().use_path_info == 1 and req.path_info:
            name += req.path_info
        got = resolve(name, md, _types_for(req))
        req.content_type = got.content_type
        req.content_language = got.languages
        req.content_encoding = got.encoding
        req.charset = got.charset
        if got.handler is not None and got.handler in hooks.HANDLERS:
            req.handler = got.handler
        if got.out_filters:
            req.notes["mime.filters"] = got.out_filters
    if force is not None and force != "none":
        req.content_type = force
    return None


hooks.TYPE_CHECKER.append(type_checker)
