"""One document tree and one config fragment that exercise Apache 2.4's per-directory access
control, run unchanged by Debian's apache2 and by httpd-py.

    site = build_site(base)                         # base: an empty directory, world-readable
    site.main_conf("apache", port)                  # the per-server file: Listen, PidFile, logs,
                                                    # then ``Include site.conf`` (the shared part)

Layout under BASE (every directory 0755, every file 0644: both servers' workers run as
www-data):

    htdocs/            DocumentRoot; one subdirectory per feature (private/, deep/, rx1/, dm/,
                       files/, loc/, cond/, req/, auth/, merge/, compat/, limit/, links/, idx/,
                       ht/, errors/)
    outside/           outside the DocumentRoot: symlink targets (<Directory /> denies it)
    aliased/           ``Alias /alias/`` target with its own <Directory>
    auth/              htpasswd files, one per format (made by Debian's htpasswd), and a group file
    apache/, httpd-py/ each server's ServerRoot (logs/, run/) and main config
    site.conf          the shared fragment (everything but Listen, PidFile, ErrorLog)

The raw client both suites use is here too: ``Row`` (one request: method, target sent untouched,
headers, Host, and the status Apache gives), ``exchange(port, row) -> Answer`` (one short
connection, ``Connection: close``) and ``answers_from(port, rows)`` (every row, four at a time).

``USERS`` holds each user's password and the htpasswd flags that hashed it; ``build_site`` needs
``htpasswd`` (apache2-utils).  As root, one symlink (htdocs/links/owner/other) is given to uid
65534 so that SymLinksIfOwnerMatch refuses it; ``Site.foreign_link`` says whether that happened.
"""
from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.apache import pair_conf
from tests.support.tools import require_tool

# The modules apache2 loads (httpd-py reads the same lines and marks them loaded).  Not loaded on
# purpose: autoindex (a directory without an index is a 403), rewrite, setenvif.
MODULES = ("mpm_prefork", "authz_core", "authz_host", "authz_user", "authz_groupfile",
           "authn_core", "authn_file", "auth_basic", "access_compat", "alias", "dir", "mime")

REALM = "Realm with spaces"

# user -> (password, htpasswd flags, file suffix)
USERS = {
    "alice": ("alice-pw", ("-B", "-C", "4"), "bcrypt"),
    "bob": ("bob-pw", ("-m",), "md5"),
    "carol": ("carol-pw", ("-s",), "sha1"),
    "dave": ("davepass99", ("-d",), "crypt"),        # crypt(3) DES: only 8 characters count
    "erin": ("erin-pw", ("-p",), "plain"),           # plaintext: Apache on Unix never accepts it
    "frank": ("frank-pw", ("-2",), "sha256"),
    "grace": ("grace-pw", ("-5",), "sha512"),
}
GROUPS = {"staff": ("alice", "bob", "dave"), "guests": ("carol",)}
NEVER_SET = "HTTPD_PY_NEVER_SET"
FOREIGN_UID = 65534


@dataclasses.dataclass(frozen=True)
class Site:
    base: Path
    docroot: Path
    outside: Path
    aliased: Path
    auth: Path
    fragment: Path
    foreign_link: bool

    def server_root(self, tag: str) -> Path:
        return self.base / tag

    def main_conf(self, tag: str, port: int) -> str:
        """The main config for server TAG ("apache" or "httpd-py") listening on PORT: its own
        ServerRoot, logs and pid file, the modules, User/Group www-data, then the shared
        fragment."""
        return pair_conf(self.server_root(tag), tag, port, MODULES, self.fragment)

    def pid_file(self, tag: str) -> Path:
        return self.server_root(tag) / "logs" / f"{tag}.pid"


def _rx(path: Path) -> str:
    """PATH as a regex literal (mkdtemp names hold letters, digits, '_' and our '-')."""
    return re.escape(str(path))


def fragment(docroot: Path, outside: Path, aliased: Path, auth: Path) -> str:
    D, A, AL = docroot, auth, aliased
    basic = (f'AuthType Basic\n    AuthName "{REALM}"\n    AuthBasicProvider file\n')
    return f"""\
# ---- shared by apache2 and httpd-py: tests/interop/site/sitetree.py ----
TypesConfig /etc/mime.types
HostnameLookups Off
DocumentRoot "{D}"
DirectoryIndex index.html
ErrorDocument 403 /errors/403.html

# Debian's deny-by-default shape
<Directory />
    Options FollowSymLinks
    AllowOverride None
    Require all denied
</Directory>
<Directory "{D}">
    Options FollowSymLinks
    AllowOverride None
    Require all granted
</Directory>
<FilesMatch "^\\.ht">
    Require all denied
</FilesMatch>

# a server-level <If>
<If "%{{HTTP_HOST}} == 'evil.test'">
    Require all denied
</If>

<Directory "{D}/private">
    Require all denied
</Directory>
<Location "/private/loc-open">
    Require all granted
</Location>

# ---- <Directory> at several depths: shortest first, the later of two equal ones wins ----
<Directory "{D}/deep">
    Require all denied
</Directory>
<Directory "{D}/deep/a/b/c">
    Require all granted
</Directory>
<Directory "{D}/deep/a">
    Require all granted
</Directory>
<Directory "{D}/deep/a/b">
    Require all denied
</Directory>
<Directory "{D}/deep/a/r2">
    Require all granted
</Directory>
<DirectoryMatch "^{_rx(D)}/deep/a/r[0-9]*/">
    Require all denied
</DirectoryMatch>
<Directory "{D}/twice">
    Require all denied
</Directory>
<Directory "{D}/twice">
    Require all granted
</Directory>
<Directory "{D}/twice2">
    Require all granted
</Directory>
<Directory "{D}/twice2">
    Require all denied
</Directory>

# ---- regex sections ----
<Directory ~ "^{_rx(D)}/rx[0-9]+/">
    Require all denied
</Directory>
<Directory ~ "/rxend[0-9]$">
    Require all denied
</Directory>
<DirectoryMatch "^{_rx(D)}/dm/(?<sect>[a-z]+)/">
    Require expr "%{{env:MATCH_SECT}} == 'open'"
</DirectoryMatch>

# ---- <Files>, <FilesMatch>, nested and overridden by <Location> ----
<Directory "{D}/files">
    <Files "*.secret">
        Require all denied
    </Files>
</Directory>
<Directory "{D}/files/nested">
    <Files "x.txt">
        Require all denied
    </Files>
</Directory>
<FilesMatch "\\.(bak|old)$">
    Require all denied
</FilesMatch>
<Files "forbidden.txt">
    Require all denied
</Files>
<Location "/files/loc-open.secret">
    Require all granted
</Location>

# ---- <Location>, <LocationMatch> ----
<Location "/loc/denied">
    Require all denied
</Location>
<LocationMatch "^/loc/m[0-9]+/">
    Require all denied
</LocationMatch>
<LocationMatch "^/loc/(?<lname>[a-z]+)-x/">
    Require expr "%{{env:MATCH_LNAME}} == 'good'"
</LocationMatch>

# ---- <If>/<ElseIf>/<Else> ----
<Directory "{D}/cond">
    <If "%{{QUERY_STRING}} =~ /(^|&)deny(=|&|$)/">
        Require all denied
    </If>
    <ElseIf "req('X-Test') in {{'block', 'deny'}}">
        Require all denied
    </ElseIf>
    <ElseIf "%{{REQUEST_URI}} -strmatch '/cond/stop*'">
        Require all denied
    </ElseIf>
    <ElseIf "!(%{{REMOTE_ADDR}} -ipmatch '127.0.0.0/8') || %{{HTTP_HOST}} == 'blocked.test'">
        Require all denied
    </ElseIf>
    <Else>
        Require all granted
    </Else>
</Directory>
<Location "/cond/loc">
    Require all granted
</Location>
<Directory "{D}/cond2">
    Require all denied
    <If "%{{REMOTE_ADDR}} -ipmatch '127.0.0.1/32' && req('X-Test') == 'open'">
        Require all granted
    </If>
</Directory>

# ---- every Require form ----
<Directory "{D}/req/granted">
    Require all granted
</Directory>
<Directory "{D}/req/denied">
    Require all denied
</Directory>
<Directory "{D}/req/ip-cidr">
    Require ip 127.0.0.0/8
</Directory>
<Directory "{D}/req/ip-cidr-other">
    Require ip 10.0.0.0/8
</Directory>
<Directory "{D}/req/ip-partial">
    Require ip 127.0
</Directory>
<Directory "{D}/req/ip-partial-other">
    Require ip 192.168
</Directory>
<Directory "{D}/req/ip-mask">
    Require ip 127.0.0.0/255.0.0.0
</Directory>
<Directory "{D}/req/ip-list">
    Require ip 10.1.2.3 127.0.0.1
</Directory>
<Directory "{D}/req/ip6">
    Require ip ::1
</Directory>
<Directory "{D}/req/local">
    Require local
</Directory>
<Directory "{D}/req/not-local">
    <RequireAll>
        Require all granted
        Require not local
    </RequireAll>
</Directory>
<Directory "{D}/req/host">
    Require host localhost
</Directory>
<Directory "{D}/req/host-other">
    Require host example.invalid
</Directory>
<Directory "{D}/req/env">
    Require env {NEVER_SET}
</Directory>
<Directory "{D}/req/not-env">
    <RequireAll>
        Require all granted
        Require not env {NEVER_SET}
    </RequireAll>
</Directory>
<Directory "{D}/req/method">
    Require method GET HEAD
</Directory>
<Directory "{D}/req/expr">
    Require expr "%{{QUERY_STRING}} == 'key=1'"
</Directory>
<Directory "{D}/req/expr-in">
    Require expr "%{{HTTP_HOST}} in {{'localhost', 'a.test'}} && !(req('X-Test') -strmatch 'no*')"
</Directory>
<Directory "{D}/req/multi">
    Require ip 10.0.0.0/8
    Require local
</Directory>
<Directory "{D}/req/all">
    <RequireAll>
        Require ip 127.0.0.1
        Require method GET
        Require not ip 10.0.0.0/8
    </RequireAll>
</Directory>
<Directory "{D}/req/all-deny">
    <RequireAll>
        Require ip 127.0.0.1
        Require not ip 127.0.0.0/8
    </RequireAll>
</Directory>
<Directory "{D}/req/any">
    <RequireAny>
        Require ip 10.0.0.1
        Require method POST
    </RequireAny>
</Directory>
<Directory "{D}/req/none">
    <RequireAll>
        Require all granted
        <RequireNone>
            Require ip 10.0.0.0/8
            Require method DELETE
        </RequireNone>
    </RequireAll>
</Directory>
<Directory "{D}/req/none-alone">
    <RequireAll>
        Require method GET POST
        <RequireNone>
            Require ip 10.0.0.0/8
            Require ip 127.0.0.1
        </RequireNone>
    </RequireAll>
</Directory>
<Directory "{D}/req/nested">
    <RequireAny>
        <RequireAll>
            Require method GET
            Require expr "%{{QUERY_STRING}} == 'k=1'"
        </RequireAll>
        <RequireAll>
            Require ip 127.0.0.1
            Require expr "req('X-Test') == 'yes'"
            <RequireNone>
                Require method PUT
            </RequireNone>
        </RequireAll>
    </RequireAny>
</Directory>

# ---- Basic auth, one password file per htpasswd format ----
<Directory "{D}/auth">
    {basic}    AuthUserFile "{A}/users-bcrypt"
    Require valid-user
</Directory>
""" + "".join(f"""<Directory "{D}/auth/{suffix}">
    AuthUserFile "{A}/users-{suffix}"
</Directory>
""" for _, _, suffix in USERS.values()) + f"""\
<Directory "{D}/auth/user">
    AuthUserFile "{A}/users-all"
    Require user bob carol
</Directory>
<Directory "{D}/auth/group">
    AuthUserFile "{A}/users-all"
    AuthGroupFile "{A}/groups"
    Require group staff
</Directory>
<Directory "{D}/auth/expr-user">
    AuthUserFile "{A}/users-all"
    Require expr "%{{REMOTE_USER}} == 'bob'"
</Directory>
<Directory "{D}/auth/other-realm">
    AuthName "Other realm"
</Directory>

# ---- AuthMerging across nested sections ----
<Directory "{D}/merge">
    {basic}    AuthUserFile "{A}/users-all"
    Require valid-user
</Directory>
<Directory "{D}/merge/or">
    AuthMerging Or
    Require ip 127.0.0.1
</Directory>
<Directory "{D}/merge/and">
    AuthMerging And
    Require user alice
</Directory>
<Directory "{D}/merge/and/or">
    AuthMerging Or
    Require ip 10.0.0.0/8
</Directory>
<Directory "{D}/merge/and-ip">
    AuthMerging And
    Require ip 10.0.0.0/8
</Directory>
<Directory "{D}/merge/off">
    AuthMerging Off
    Require ip 127.0.0.1
</Directory>
<Directory "{D}/merge/inherit">
    AuthName "Inherited"
</Directory>

# ---- mod_access_compat ----
<Directory "{D}/compat/deny-all">
    Order deny,allow
    Deny from all
</Directory>
<Directory "{D}/compat/allow-local">
    Order deny,allow
    Deny from all
    Allow from 127.0.0.1
</Directory>
<Directory "{D}/compat/deny-local">
    Order allow,deny
    Allow from all
    Deny from 127.0.0.0/8
</Directory>
<Directory "{D}/compat/allow-other">
    Order allow,deny
    Allow from 10.0.0.0/8
</Directory>
<Directory "{D}/compat/allow-partial">
    Order allow,deny
    Allow from 127
</Directory>
<Directory "{D}/compat/allow-env">
    Order deny,allow
    Deny from all
    Allow from env={NEVER_SET}
</Directory>
<Directory "{D}/compat/any-auth">
    Order deny,allow
    Deny from all
    Allow from 127.0.0.1
    {basic}    AuthUserFile "{A}/users-all"
    Require valid-user
    Satisfy Any
</Directory>
<Directory "{D}/compat/any-auth-deny">
    Order deny,allow
    Deny from all
    {basic}    AuthUserFile "{A}/users-all"
    Require valid-user
    Satisfy Any
</Directory>
<Directory "{D}/compat/all-auth">
    Order deny,allow
    Deny from all
    Allow from 127.0.0.1
    {basic}    AuthUserFile "{A}/users-all"
    Require valid-user
    Satisfy All
</Directory>
<Directory "{D}/compat/all-auth-deny">
    Order deny,allow
    Deny from all
    {basic}    AuthUserFile "{A}/users-all"
    Require valid-user
    Satisfy All
</Directory>

# ---- <Limit>, <LimitExcept> ----
<Directory "{D}/limit/post">
    <Limit POST>
        Require all denied
    </Limit>
</Directory>
<Directory "{D}/limit/except">
    <LimitExcept GET HEAD>
        Require all denied
    </LimitExcept>
</Directory>
<Directory "{D}/limit/auth">
    {basic}    AuthUserFile "{A}/users-all"
    <LimitExcept GET HEAD>
        Require valid-user
    </LimitExcept>
</Directory>
<Directory "{D}/limit/mixed">
    Require all granted
    <Limit POST>
        Require all denied
    </Limit>
</Directory>

# ---- Options: symlinks, Indexes ----
<Directory "{D}/links/nofollow">
    Options -FollowSymLinks
</Directory>
<Directory "{D}/links/follow">
    Options +FollowSymLinks
</Directory>
<Directory "{D}/links/owner">
    Options -FollowSymLinks +SymLinksIfOwnerMatch
</Directory>
<Directory "{D}/links/none">
    Options None
</Directory>
<Directory "{D}/idx/on">
    Options +Indexes
</Directory>
<Directory "{D}/idx/off">
    Options -Indexes
</Directory>

# ---- AllowOverride and .htaccess ----
<Directory "{D}/ht">
    AllowOverride All
</Directory>
<Directory "{D}/ht/none">
    AllowOverride None
</Directory>
<Directory "{D}/ht/none-bad">
    AllowOverride None
</Directory>
<Directory "{D}/ht/auth">
    AllowOverride AuthConfig
</Directory>
<Directory "{D}/ht/auth-bad">
    AllowOverride AuthConfig
</Directory>
<Directory "{D}/ht/limit">
    AllowOverride Limit
</Directory>
<Directory "{D}/ht/limit-bad">
    AllowOverride Limit
</Directory>
<Directory "{D}/ht/opts">
    AllowOverride Options=FollowSymLinks
</Directory>
<Directory "{D}/ht/opts-bad">
    AllowOverride Options=FollowSymLinks
</Directory>

# ---- Alias to a directory outside the DocumentRoot ----
Alias /alias/ "{AL}/"
<Directory "{AL}">
    Require all granted
</Directory>
<Directory "{AL}/denied">
    Require all denied
</Directory>
"""


# .htaccess contents by directory (relative to the DocumentRoot)
HTACCESS = {
    ".": "Require all denied\nNotADirective\n",                  # AllowOverride None: ignored
    "ht/none": "Require all denied\n",                           # ignored
    "ht/none-bad": "This is not a directive\n",                  # ignored
    "ht/all": "Require all denied\n",
    "ht/all/open": "Require all granted\n",                      # deeper .htaccess wins
    "ht/syntax": "NotADirective on\n",                           # 500
    "ht/syntax-section": "<Files x.txt>\nRequire all denied\n",  # unclosed section: 500
    "ht/files": '<Files "x.txt">\n    Require all denied\n</Files>\n',
    "ht/limit-sect": "<Limit POST>\n    Require all denied\n</Limit>\n",
    "ht/auth": None,                                             # filled in by build_site
    "ht/auth-bad": "Options -FollowSymLinks\n",                  # Options under AuthConfig: 500
    "ht/limit": "Order deny,allow\nDeny from all\n",
    "ht/limit-bad": "Require all denied\n",                      # Require is AuthConfig: 500
    "ht/opts": "Options -FollowSymLinks\n",
    "ht/opts-bad": "Options +Indexes\n",                         # only FollowSymLinks allowed: 500
}

FILES = [
    "index.html", "hello.txt", "errors/403.html", ".htpasswd", "public/a.txt", "public/.htfoo",
    "public/x.ht", "public/forbidden.txt",
    "private/x", "private/secret.txt", "private/sub/y.txt", "private/loc-open/f.txt",
    "deep/f.txt", "deep/a/f.txt", "deep/a/b/f.txt", "deep/a/b/c/f.txt", "deep/a/b/c/d/f.txt",
    "deep/a/r/f.txt", "deep/a/r2/f.txt", "twice/f.txt", "twice2/f.txt",
    "rx1/f.txt", "rx22/f.txt", "rxa/f.txt", "rxend1/index.html", "rxend1/f.txt",
    "dm/open/f.txt", "dm/shut/f.txt", "dm/Open9/f.txt",
    "files/a.secret", "files/x.txt", "files/a.bak", "files/a.old", "files/a.bak.txt",
    "files/loc-open.secret", "files/nested/x.txt", "files/nested/y.txt", "files/sub/b.secret",
    "loc/denied/x", "loc/denied-not/x", "loc/m1/x", "loc/mx/x", "loc/good-x/f.txt",
    "loc/bad-x/f.txt", "loc/open/x",
    "cond/x.txt", "cond/stop.txt", "cond/stopper/y.txt", "cond/loc/f.txt", "cond2/f.txt",
    "auth/f.txt", "auth/user/f.txt", "auth/group/f.txt", "auth/expr-user/f.txt",
    "auth/other-realm/f.txt",
    "merge/f.txt", "merge/or/f.txt", "merge/and/f.txt", "merge/and/or/f.txt",
    "merge/and-ip/f.txt", "merge/off/f.txt", "merge/inherit/f.txt",
    "compat/deny-all/f.txt", "compat/allow-local/f.txt", "compat/deny-local/f.txt",
    "compat/allow-other/f.txt", "compat/allow-partial/f.txt", "compat/allow-env/f.txt",
    "compat/any-auth/f.txt", "compat/any-auth-deny/f.txt", "compat/all-auth/f.txt",
    "compat/all-auth-deny/f.txt",
    "limit/post/f.txt", "limit/except/f.txt", "limit/auth/f.txt", "limit/mixed/f.txt",
    "links/real.txt", "links/nofollow/real.txt", "links/follow/real.txt",
    "links/owner/real.txt", "links/none/real.txt",
    "idx/on/file.txt", "idx/off/file.txt", "idx/has/index.html",
    "ht/none/f.txt", "ht/none-bad/f.txt", "ht/all/f.txt", "ht/all/sub/f.txt",
    "ht/all/open/f.txt", "ht/all/named/htaccess", "ht/all/named/f.txt", "ht/syntax/f.txt",
    "ht/syntax-section/f.txt", "ht/files/x.txt", "ht/files/y.txt", "ht/limit-sect/f.txt",
    "ht/auth/f.txt", "ht/auth-bad/f.txt", "ht/limit/f.txt", "ht/limit-bad/f.txt",
    "ht/opts/real.txt", "ht/opts-bad/f.txt",
] + [f"req/{d}/f.txt" for d in (
    "granted", "denied", "ip-cidr", "ip-cidr-other", "ip-partial", "ip-partial-other", "ip-mask",
    "ip-list", "ip6", "local", "not-local", "host", "host-other", "env", "not-env", "method",
    "expr", "expr-in", "multi", "all", "all-deny", "any", "none", "none-alone", "nested")] + [
    f"auth/{suffix}/f.txt" for _, _, suffix in USERS.values()]

# symlink (relative to the DocumentRoot) -> target (absolute path built from BASE by build_site)
LINK_TARGETS = {
    "links/nofollow/to-file": "{D}/links/real.txt",
    "links/nofollow/to-dir": "{O}",
    "links/follow/to-file": "{D}/links/real.txt",
    "links/follow/rel": "../real.txt",
    "links/follow/to-out": "{O}",
    "links/follow/to-out-file": "{O}/out.txt",
    "links/follow/to-private": "{D}/private",
    "links/owner/same": "{D}/links/owner/real.txt",
    "links/owner/other": "{D}/links/owner/real.txt",           # lchown to FOREIGN_UID as root
    "links/none/to-file": "{D}/links/real.txt",
    "ht/opts/link.txt": "{D}/ht/opts/real.txt",
}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_htpasswd(auth: Path) -> None:
    htpasswd = require_tool("htpasswd")
    lines = []
    for user, (password, flags, suffix) in USERS.items():
        out = subprocess.run([htpasswd, "-nb", *flags, user, password], capture_output=True,
                             text=True, timeout=60, check=True).stdout.strip()
        assert out.startswith(f"{user}:"), out
        (auth / f"users-{suffix}").write_text(out + "\n")
        lines.append(out)
    (auth / "users-all").write_text("\n".join(lines) + "\n")
    (auth / "groups").write_text("".join(f"{g}: {' '.join(us)}\n" for g, us in GROUPS.items()))


def build_site(base: Path) -> Site:
    """Build the tree and the fragment under BASE (which must exist); returns the Site."""
    base = Path(base)
    D, O, AL, A = base / "htdocs", base / "outside", base / "aliased", base / "auth"
    for d in (D, O, AL, A):
        d.mkdir()
    for rel in FILES:
        _write(D / rel, f"{rel}\n")
    _write(O / "out.txt", "outside\n")
    _write(AL / "a.txt", "aliased\n")
    _write(AL / "denied" / "x", "aliased denied\n")
    for rel, text in HTACCESS.items():
        if text is None:
            text = (f'AuthType Basic\nAuthName "{REALM}"\nAuthUserFile "{A}/users-all"\n'
                    "Require valid-user\n")
        _write(D / rel / ".htaccess", text)
    for rel, target in LINK_TARGETS.items():
        (D / rel).symlink_to(target.format(D=D, O=O))
    foreign = False
    if os.geteuid() == 0:
        os.lchown(D / "links/owner/other", FOREIGN_UID, FOREIGN_UID)
        foreign = True
    make_htpasswd(A)
    for server in ("apache", "httpd-py"):
        for sub in ("logs", "run"):
            (base / server / sub).mkdir(parents=True)
    frag = base / "site.conf"
    frag.write_text(fragment(D, O, AL, A))
    for dirpath, dirnames, filenames in os.walk(base):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, 0o644)
    return Site(base=base, docroot=D, outside=O, aliased=AL, auth=A, fragment=frag,
                foreign_link=foreign)


# ---- the raw client both suites use ----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Row:
    """One request of a corpus; ``id`` is its pytest id."""
    id: str
    target: str
    apache: int                         # what Apache 2.4 answers
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    host: str = "localhost"
    needs_root: bool = False

    def raw(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.method in ("POST", "PUT"):
            lines.append("Content-Length: 0")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int | None                  # None: no parsable answer
    www_authenticate: tuple[str, ...]
    note: str = ""

    def __str__(self) -> str:
        if self.status is None:
            return f"no answer ({self.note})"
        auth = " | ".join(self.www_authenticate)
        return f"{self.status} WWW-Authenticate: {auth}" if auth else f"{self.status}"


def exchange(port: int, row: Row, timeout: float = 10.0) -> Answer:
    """Send ROW's raw request on a new connection to 127.0.0.1:PORT; read the whole answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(row.raw())
            data = b""
            while len(data) < 1 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        return Answer(None, (), f"{type(e).__name__}: {e}")
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return Answer(None, (), f"status line {lines[0]!r}")
    auth = tuple(v.strip() for k, _, v in (l.partition(":") for l in lines[1:])
                 if k.strip().lower() == "www-authenticate")
    return Answer(int(parts[1]), auth)


def answers_from(port: int, rows: list[Row]) -> dict[str, Answer]:
    """Every row sent to PORT (four connections at a time): row id -> Answer."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([r.id for r in rows], pool.map(lambda r: exchange(port, r), rows)))
