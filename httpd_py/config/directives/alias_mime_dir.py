"""mod_dir, mod_mime (TypesConfig, AddType) and mod_alias rows."""
from __future__ import annotations

import re
from typing import Callable

from httpd_py.config import values
from httpd_py.config.directives.base import (
    ITERATE2, RAW, TAKE1, TAKE12, TAKE123, TAKE2, Directive, path)
from httpd_py.errors import ConfigError

def _directory_index(w, args):
    if not args:        # Apache accepts the bare directive and changes nothing
        return
    w.set("directory_index", tuple(args) if args[0].lower() != "disabled" else ())


def _add_type(w, args):
    mime = args[0].lower()
    w.extend("add_types", tuple((e.lower().lstrip("."), mime) for e in args[1:]))
    from httpd_py.modules import mime as mod_mime      # mod_mime's table (RemoveType order)
    mod_mime.add_type_row(w, args)


def _alias(w, args):
    from httpd_py.config.model import AliasSpec
    section = w.dir_section.lname if w.dir_section is not None else ""
    if section in ("<location", "<locationmatch"):
        if len(args) != 1:
            raise ConfigError("Alias must have one argument when used in a Location")
        raise ConfigError("Alias inside <Location> is not applied by httpd-py yet; refused "
                          "rather than ignored (the URL would serve something else). Use "
                          "'Alias URL-path file-path' outside the section.")
    if section:
        raise ConfigError("Alias cannot occur within directory context")
    if len(args) != 2:
        raise ConfigError("Alias must have two arguments when used globally")
    w.extend("aliases", (AliasSpec(args[0], values.path(args[1], w.server_root)),))


_REDIRECT_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}


def _redirect(status: int | None) -> Callable:
    def h(w, args):
        from httpd_py.config.model import RedirectSpec
        words = list(args)
        code = status
        if code is None:
            first = words[0].lower()
            if first in _REDIRECT_STATUS:
                code = _REDIRECT_STATUS[first]
                words = words[1:]
            elif first.isdigit():
                code = int(first)
                words = words[1:]
                if not 300 <= code <= 599:
                    raise ConfigError(f"Redirect: invalid status '{first}' (300-599)")
            else:
                code = 302
        if not words:
            raise ConfigError(f"{w.name} takes 1-3 arguments, an optional status, then document "
                              "to be redirected and destination URL")
        url_path, target = words[0], (words[1] if len(words) > 1 else None)
        if len(words) > 2:
            raise ConfigError(f"{w.name}: too many arguments")
        if 300 <= code <= 399 and target is None:
            raise ConfigError("URL to redirect to is missing")
        if not 300 <= code <= 399 and target is not None:
            raise ConfigError("Redirect URL not valid for this status")
        if target is not None and not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target) \
                and not target.startswith("/"):
            raise ConfigError("Redirect to non-URL")
        w.extend("redirects", (RedirectSpec(code, url_path, target),))
    return h


def rows() -> list[Directive]:
    MIME, DIR, ALIAS = "mod_mime.c", "mod_dir.c", "mod_alias.c"
    D = Directive
    return [
        # authz_core, dir, mime, alias, log_config
        D("DirectoryIndex", DIR, "A", RAW, "", "Files to try for a directory "
          "request (disabled: none)", _directory_index, field="directory_index",
          value=("index.html",), syntax="disabled|local-url ..."),
        D("TypesConfig", MIME, "SV", TAKE1, "", "The mime.types file",
          field="types_config", parse=path(), value="/etc/mime.types", syntax="file-path"),
        D("AddType", MIME, "A", ITERATE2, "", "Map file extensions to a content type",
          _add_type, field="add_types", value=(), syntax="media-type extension ..."),
        D("Alias", ALIAS, "A", TAKE12, "", "Map a URL path to a filesystem path", _alias,
          field="aliases", value=(), syntax="URL-path file-path|directory-path"),
        D("Redirect", ALIAS, "A", TAKE123, "", "Redirect a URL path to another URL",
          _redirect(None), field="redirects", value=(), syntax="[status] URL-path [URL]"),
        D("RedirectPermanent", ALIAS, "A", TAKE2, "", "Redirect a URL path with 301",
          _redirect(301), field="redirects", syntax="URL-path URL"),
        D("RedirectTemp", ALIAS, "A", TAKE2, "", "Redirect a URL path with 302",
          _redirect(302), field="redirects", syntax="URL-path URL"),
    ]
