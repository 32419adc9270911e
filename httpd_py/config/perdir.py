"""Handlers and table rows of the per-directory directives httpd-py applies: core's Options,
AllowOverride, AllowOverrideList, AccessFileName; mod_authz_core (Require, AuthMerging,
AuthzSendForbiddenOnFailure); mod_authn_core (AuthType, AuthName); mod_auth_basic
(AuthBasicProvider, AuthBasicAuthoritative); mod_authn_file (AuthUserFile); mod_authz_groupfile
(AuthGroupFile); mod_access_compat (Order, Allow, Deny, Satisfy).

Each handler writes its value with ``w.set`` into the current target (a section's own
settings, or the server's per-directory defaults); ``build`` turns them into ``DirConf``s.
Rows carry ``override``: the AllowOverride class that lets the directive appear in .htaccess
("" = never).
"""
from __future__ import annotations

import re

from httpd_py.config import dirconf, values
from httpd_py.errors import ConfigError


def options(w, args):
    """Options as Apache's core parses it: a first word without +/- (or All/None first) makes
    the line a replacement; +/- words adjust; All and None only first and unsigned."""
    base: set | None = None
    add: set = set()
    remove: set = set()
    merge = all_none = False
    for i, a in enumerate(args):
        first = i == 0
        action = a[:1] if a[:1] in ("+", "-") else ""
        word = a[1:] if action else a
        if action:
            if not merge and not all_none and not first:
                raise ConfigError("Either all Options must start with + or -, or no Option may.")
            merge = True
        elif first:
            base = set()
        elif merge:
            raise ConfigError("Either all Options must start with + or -, or no Option may.")
        lw = word.lower()
        if lw in ("none", "all"):
            shown = "None" if lw == "none" else "All"
            if action:
                raise ConfigError(f"You may not use 'Options +{shown}' or 'Options -{shown}'.")
            if not first:
                raise ConfigError(f"'Options {shown}' must be the first "
                                  f"{'Option' if lw == 'none' else 'option'} given.")
            all_none = True
        items = dirconf.OPTION_WORDS.get(lw)
        if items is None:
            raise ConfigError(f"Illegal option {word}")
        allowed = getattr(w, "allowed_options", None)
        if allowed is not None and items and not set(items) <= allowed:
            raise ConfigError(f"Option {word} not allowed here")
        if action == "-":
            remove |= set(items)
            add -= set(items)
            if base is not None:
                base -= set(items)
        elif action == "+":
            add |= set(items)
            remove -= set(items)
            if base is not None:
                base |= set(items)
        else:
            base = (base or set()) | set(items)
    spec = dirconf.OptionsSpec(frozenset(base) if base is not None else None,
                               frozenset(add), frozenset(remove))
    prev = w.own("options")
    spec = prev.then(spec) if prev else spec
    w.set("options", spec)
    if w.dir_section is None:       # the server's own Options: the VHost fields too
        final = spec.apply(dirconf.DEFAULT_OPTIONS)
        w.set("options_follow_symlinks", "followsymlinks" in final)
        w.set("options_symlinks_if_owner_match", "symlinksifownermatch" in final)


def _useless_outside_directory(w) -> bool:
    """AllowOverride(List) in <Location>/<Files>/<If>: Apache warns (AH00114) and it does
    nothing."""
    sec = w.dir_section.lname if w.dir_section is not None else ""
    if sec in ("<directory", "<directorymatch"):
        return False
    w.warnings.append(f"Useless use of {w.name} in line {w.loc.line} of {w.loc.file}.")
    return True


def allow_override(w, args):
    useless = _useless_outside_directory(w)
    classes: set[str] = set()
    opts = None
    for a in args:
        base, _, rest = a.partition("=")
        b = base.lower()
        if b == "none":
            classes = set()
        elif b == "all":
            classes |= set(dirconf.OVERRIDE_CLASSES)
        elif b == "nonfatal":
            continue
        elif b in dirconf.OVERRIDE_CLASSES:
            classes.add(b)
            if b == "options" and rest:
                words = set()
                for o in rest.split(","):
                    items = dirconf.OPTION_WORDS.get(o.lower())
                    if items is None:
                        raise ConfigError(f"Illegal option {o}")
                    words |= set(items)
                opts = frozenset(words)
        else:
            raise ConfigError(f"Illegal override option {a}")
    if not useless:
        w.set("allow_override", dirconf.Overrides(frozenset(classes), opts))


def allow_override_list(w, args):
    if _useless_outside_directory(w):
        return
    names = () if (len(args) == 1 and args[0].lower() == "none") else tuple(a.lower() for a in args)
    w.set("allow_override_list", names)


def access_file_name(w, args):
    if not args:
        raise ConfigError("AccessFileName requires at least one argument")
    w.set("access_file_name", tuple(args))


_EXPR = re.compile(r"\s*(?:not\s+)?expr\s+(.*)\Z", re.I | re.S)


def require(w, args):
    from httpd_py.config.values import unquote_expr
    from httpd_py.modules.authz_core import add_rule, parse_require
    raw = ""
    m = _EXPR.match(getattr(w, "raw_args", "") or "")
    if m:
        raw = unquote_expr(m.group(1))
    rule = parse_require(list(args), raw, w.limit)
    w.set("authz", add_rule(w.own("authz"), rule))
    if rule.provider == "env":
        for v in rule.args:
            w.env_uses.append((v, "Require env", w.loc))


def auth_merging(w, args):
    v = args[0].lower()
    if v not in ("off", "and", "or"):
        raise ConfigError("AuthMerging must be one of: Off | And | Or")
    w.set("auth_merging", v)


def forbidden_on_fail(w, args):
    w.set("authz_forbidden_on_fail", values.flag(args[0], w.name))


def auth_type(w, args):
    v = args[0].lower()
    if v not in ("basic", "none"):
        raise ConfigError(f"AuthType {args[0]}: only Basic (and None) authentication is built "
                          f"into httpd-py (refused rather than ignored)")
    w.set("auth_type", v)


def auth_name(w, args):
    w.set("auth_name", args[0])


def auth_basic_provider(w, args):
    for a in args:
        if a.lower() != "file":
            raise ConfigError(f"Unknown Authn provider: {a} (httpd-py builds only 'file')")
    w.set("auth_basic_provider", tuple(a.lower() for a in args))


def auth_basic_authoritative(w, args):
    values.flag(args[0], w.name)


def auth_user_file(w, args):
    w.set("auth_user_file", values.path(args[0], w.server_root))


def auth_group_file(w, args):
    w.set("auth_group_file", values.path(args[0], w.server_root))


def order(w, args):
    from httpd_py.modules.access_compat import parse_order
    w.set("order", (*(w.own("order") or ()), (w.limit, parse_order(args[0]))))


def _allow_deny(key: str):
    def h(w, args):
        from httpd_py.modules.access_compat import parse_allow_deny
        rule = parse_allow_deny(list(args))
        if w.limit is not None:
            rule = rule.with_methods(w.limit.names, excluded=w.limit.invert)
        w.set(key, (*(w.own(key) or ()), rule))
        for a in args[1:]:
            if a.lower().startswith("env="):
                w.env_uses.append((a[4:].lstrip("!"), w.name + " from env=", w.loc))
    return h


allow = _allow_deny("allows")
deny = _allow_deny("denies")


def satisfy(w, args):
    from httpd_py.modules.access_compat import parse_satisfy
    w.set("satisfy", parse_satisfy(args[0]))


def rows(D, ITERATE, TAKE1, FLAG, RAW):
    C, AZ, AN, AB, AF, AG, AC = ("core.c", "mod_authz_core.c", "mod_authn_core.c",
                                 "mod_auth_basic.c", "mod_authn_file.c",
                                 "mod_authz_groupfile.c", "mod_access_compat.c")
    return [
        D("Options", C, "A", RAW, "FollowSymLinks", "Directory features: FollowSymLinks, "
          "SymLinksIfOwnerMatch, Indexes, MultiViews applied; ExecCGI/Includes accepted (nothing "
          "runs them)", options, syntax="[+|-]option ...", override="options"),
        D("AllowOverride", C, "D", ITERATE, "None", "Which directive classes .htaccess files "
          "may use (only in <Directory>)", allow_override,
          syntax="All|None|directive-type[=option,...] ..."),
        D("AllowOverrideList", C, "D", ITERATE, "None", "Single directives .htaccess files "
          "may use", allow_override_list, syntax="None|directive ..."),
        D("AccessFileName", C, "SV", RAW, ".htaccess", "Names of the per-directory config "
          "files", access_file_name, syntax="filename ..."),
        D("Require", AZ, "D", RAW, "", "Authorization rule: all, env, method, expr, ip, host, "
          "forward-dns, local, user, valid-user, group (other providers refused)", require,
          syntax="[not] provider args ...", override="authconfig"),
        D("<RequireAll", AZ, "D", RAW, "", "Container: no rule inside may fail and one must "
          "pass", override="authconfig"),
        D("<RequireAny", AZ, "D", RAW, "", "Container: one rule inside must pass",
          override="authconfig"),
        D("<RequireNone", AZ, "D", RAW, "", "Container: no rule inside may pass",
          override="authconfig"),
        D("AuthMerging", AZ, "D", TAKE1, "Off", "How a section's Require rules combine with "
          "the ones it inherits", auth_merging, syntax="Off|And|Or", override="authconfig"),
        D("AuthzSendForbiddenOnFailure", AZ, "D", FLAG, "Off", "403 instead of 401 when an "
          "authenticated user is not authorized", forbidden_on_fail, override="authconfig"),
        D("AuthType", AN, "D", TAKE1, "", "Authentication scheme (Basic, None)", auth_type,
          syntax="None|Basic", override="authconfig"),
        D("AuthName", AN, "D", TAKE1, "", "The realm shown in the password prompt", auth_name,
          syntax="realm", override="authconfig"),
        D("AuthBasicProvider", AB, "D", ITERATE, "file", "Where Basic credentials are checked "
          "(file)", auth_basic_provider, syntax="file", override="authconfig"),
        D("AuthBasicAuthoritative", AB, "D", FLAG, "On", "Accepted (one provider: no fall "
          "through)", auth_basic_authoritative, override="authconfig"),
        D("AuthUserFile", AF, "D", TAKE1, "", "The htpasswd file (bcrypt, APR1-MD5, SHA1, "
          "crypt)", auth_user_file, syntax="file-path", override="authconfig"),
        D("AuthGroupFile", AG, "D", TAKE1, "", "The group file for Require group",
          auth_group_file, syntax="file-path", override="authconfig"),
        D("Order", AC, "D", TAKE1, "Deny,Allow", "Order of Allow and Deny (mod_access_compat)",
          order, syntax="Allow,Deny|Deny,Allow|Mutual-failure", override="limit"),
        D("Allow", AC, "D", ITERATE, "", "Hosts allowed (mod_access_compat)", allow,
          syntax="from all|host|ip|env=[!]var ...", override="limit"),
        D("Deny", AC, "D", ITERATE, "", "Hosts denied (mod_access_compat)", deny,
          syntax="from all|host|ip|env=[!]var ...", override="limit"),
        D("Satisfy", AC, "D", TAKE1, "All", "Host rules and Require both (All) or either (Any)",
          satisfy, syntax="Any|All", override="authconfig"),
    ]


# -- fail closed ------------------------------------------------------------------------------
# Directives httpd-py does not implement whose absence would change who may see what (or serve
# a script's source as a file): refused at start-up with file:line instead of being ignored.
_HARMLESS_HANDLERS = frozenset({"server-status", "server-info", "ldap-status",
                                "balancer-manager", "type-map", "default-handler", "none"})


def _handler_words(args: list[str], first: int) -> str | None:
    bad = [a for a in args[:first + 1][-1:] if a.lower() not in _HARMLESS_HANDLERS]
    return (f"handler '{bad[0]}' is not built into httpd-py: the files it should run would "
            f"be served as they are") if bad else None


def _flag_on(name: str):
    return lambda args: (f"{name} On is not built into httpd-py"
                         if args and args[0].lower() == "on" else None)


FAIL_CLOSED = {
    "proxyremote": lambda a: "mod_proxy is not built into httpd-py yet",
    "proxyremotematch": lambda a: "mod_proxy is not built into httpd-py yet",
    "proxyexpressenable": _flag_on("ProxyExpressEnable"),
    "allowmethods": lambda a: ("mod_allowmethods is not built into httpd-py"
                               if [x for x in a if x.lower() != "reset"] else None),
    "remoteipproxyprotocol": lambda a: "mod_remoteip is not built into httpd-py",
    "sslrequire": lambda a: "SSLRequire is not built into httpd-py (use Require expr)",
    "sslverifyclient": lambda a: (None if a and a[0].lower() == "none" else
                                  "client certificates are not requested by httpd-py yet"),
    "addhandler": lambda a: _handler_words(a, 0),
}


def fail_closed(name: str, args: list[str]) -> str | None:
    """Why a directive that is accepted but not implemented must be refused, or None."""
    check = FAIL_CLOSED.get(name.lower())
    return check(args) if check is not None else None
