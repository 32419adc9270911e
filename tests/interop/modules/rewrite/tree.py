"""One document tree and one config that exercise mod_rewrite, run by Debian's apache2 and by
httpd-py (tests/interop/modules/rewrite).

    build(base)                     # the tree under BASE (world-readable: workers are www-data)
    main_conf(base, tag, port)      # ServerRoot BASE/TAG, logs, Listen, then the shared part

Layout under BASE::

    htdocs/            DocumentRoot: every file's body names it ("file new/a.txt"), so a
                       response shows which file was served
      new/             targets of the server rules
      app/             a front controller (index.php) behind server-context rules
      dir/             <Directory> rules (no RewriteBase: a relative [R] shows the file path)
      based/           <Directory> rules with RewriteBase /based/
      ht/              .htaccess rules (AllowOverride FileInfo)
      fc/, wp/         front controllers in .htaccess (Laravel- and WordPress-shaped)
      loop/, end/      .htaccess rules that loop (LimitInternalRecursion) / stop with END
      nofollow/        .htaccess rules under Options -FollowSymLinks (403)
      inh/, inh/sub/   per-directory RewriteOptions Inherit
    aliased/           ``Alias /aliased`` target ([PT] reaches it, a plain rule does not)
    maps/              txt: and rnd: map files
    apache/, httpd-py/ each server's ServerRoot (logs/) and main config

Virtual hosts on the one port: a.test (most rules), b.test (http -> https as real configs write
it), c.test (www. -> bare host), d.test (no mod_rewrite lines: the main server's rules are not
inherited), e.test (RewriteOptions Inherit), f.test (InheritBefore), g.test (RewriteEngine Off),
t.test (LogLevel rewrite:trace8).
"""
from __future__ import annotations

import os
from pathlib import Path

from tests.support.apache import load_modules

MODULES = ("mpm_prefork", "authz_core", "authz_host", "alias", "dir", "mime", "rewrite", "proxy",
           "proxy_http")
PAST = 1_600_000_000

FILES = ("index.html", "a.txt", "hello.txt", "new/a.txt", "new/b.txt", "new/q.txt",
         "new/main.txt", "new/mobile.txt", "new/desktop.txt", "new/env-yes.txt",
         "new/env-no.txt", "new/skipped.txt", "new/chained.txt", "new/unchained.txt",
         "new/default.txt", "new/mapped.txt", "new/one.txt", "new/x_y_z.txt", "new/ge.txt",
         "new/lt.txt", "new/eq.txt", "new/int.txt", "new/yes.txt", "new/no.txt",
         "new/id-42.txt", "new/file.txt", "new/dir.txt", "new/none.txt", "new/size.txt",
         "new/link.txt", "new/exec.txt", "new/ip.txt", "new/expr.txt", "new/ends.txt",
         "new/inherited.txt", "new/own.txt", "new/after.txt", "new/with space.txt",
         "new/UPPER.TXT", "new/lower.txt", "new/upper.txt", "new/q.html", "new/dpi.txt", "new/t.txt",
         "app/index.php", "app/real.txt",
         "dir/a.txt", "dir/b.txt", "dir/target.txt", "dir/c.txt", "dir/sub/x.txt",
         "based/a.txt", "based/b.txt", "based/target.txt",
         "ht/a.txt", "ht/b.txt", "ht/c.txt", "ht/target.txt", "ht/sub/x.txt", "ht/dpi.txt",
         "fc/index.php", "fc/real.txt", "fc/sub/real.txt", "wp/index.php", "wp/real.txt",
         "loop/a.txt", "end/a.txt", "end/x/a.txt", "nofollow/a.txt", "nofollow/b.txt",
         "inh/a.txt", "inh/b.txt", "inh/sub/a.txt", "inh/sub/b.txt", "inh/sub/c.txt",
         "empty/.keep")


def fragment(base: Path) -> str:
    """The shared config (@PORT@ stands for the server's port)."""
    D = base / "htdocs"
    M = base / "maps"
    return f"""\
# ---- shared by apache2 and httpd-py: tests/interop/modules/rewrite/tree.py ----
TypesConfig /etc/mime.types
HostnameLookups Off
DocumentRoot "{D}"
DirectoryIndex index.html
Alias /aliased "{base}/aliased"
LimitInternalRecursion 5

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
<Directory "{base}/aliased">
    Require all granted
</Directory>
<Directory "{D}/ht">
    AllowOverride FileInfo
</Directory>
<Directory "{D}/fc">
    AllowOverride FileInfo
</Directory>
<Directory "{D}/wp">
    AllowOverride FileInfo
</Directory>
<Directory "{D}/loop">
    AllowOverride FileInfo
</Directory>
<Directory "{D}/end">
    AllowOverride FileInfo
</Directory>
<Directory "{D}/px">
    AllowOverride FileInfo
</Directory>
<Directory "{D}/nofollow">
    Options -FollowSymLinks
    AllowOverride FileInfo
</Directory>

<Directory "{D}/dir">
    RewriteEngine On
    RewriteRule ^a\\.txt$ b.txt [L]
    RewriteRule ^abs$ /new/a.txt [L]
    RewriteRule ^red$ target.txt [R=301,L]
    RewriteRule ^redabs$ /dir/target.txt [R,L]
    RewriteRule ^same$ same [L]
    RewriteRule ^gone$ - [G]
    RewriteRule ^sub/(.*)$ c.txt?from=$1 [L]
    RewriteRule ^missing/(.*)$ /new/$1 [L]
</Directory>
<Directory "{D}/based">
    RewriteEngine On
    RewriteBase /based/
    RewriteRule ^a\\.txt$ b.txt [L]
    RewriteRule ^red$ target.txt [R=301,L]
    RewriteRule ^up$ ../new/a.txt [L]
</Directory>
<Directory "{D}/inh">
    RewriteEngine On
    RewriteRule ^a\\.txt$ b.txt [L]
    RewriteRule ^c\\.txt$ b.txt [L]
</Directory>
<Directory "{D}/inh/sub">
    RewriteOptions Inherit
    RewriteRule ^b\\.txt$ a.txt [L]
</Directory>

# ---- the main server: not inherited by vhosts without RewriteOptions Inherit ----
RewriteEngine On
RewriteMap mainmap "txt:{M}/map.txt"
RewriteRule ^/mainrule$ /new/main.txt [L]
RewriteRule ^/mainorder$ /new/main.txt [L]
RewriteRule ^/mainmap/(.*)$ /new/${{mainmap:$1|default}}.txt [L]

<VirtualHost *:@PORT@>
    ServerName a.test
    ServerAlias alias.a.test
    ServerAdmin admin@a.test
    RewriteEngine On
    RewriteMap txtmap "txt:{M}/map.txt"
    RewriteMap rndmap "rnd:{M}/rnd.txt"
    RewriteMap upper int:toupper
    RewriteMap lower int:tolower
    RewriteMap esc int:escape
    RewriteMap unesc int:unescape

    # redirects
    RewriteRule ^/old/(.*)$ /new/$1 [R=301,L]
    RewriteRule ^/temp/(.*)$ /new/$1 [R,L]
    RewriteRule ^/seeother$ /new/a.txt [R=seeother,L]
    RewriteRule ^/perm$ /new/a.txt [R=permanent,L]
    RewriteRule ^/r307$ /new/a.txt [R=307,L]
    RewriteRule ^/r308$ /new/a.txt [R=308,L]
    RewriteRule ^/abs$ http://elsewhere.test/x [L]
    RewriteRule ^/abs301$ https://elsewhere.test/x?y=1 [R=301,L]
    RewriteRule ^/self$ http://a.test:@PORT@/new/a.txt [L]
    RewriteRule ^/selfalias$ http://alias.a.test:@PORT@/new/b.txt [L]
    RewriteRule ^/selfport$ http://a.test:1/new/a.txt [L]
    RewriteRule ^/rel-r$ new/a.txt [R,L]
    RewriteRule ^/ne$ /new/a\\%20b [R,NE,L]
    RewriteRule ^/notne$ /new/a\\%20b [R,L]
    RewriteRule ^/condref$ /new/a%20b [R,NE,L]
    RewriteRule ^/esc/(.*)$ /new/$1 [R,L]
    RewriteRule ^/b/(.*)$ /new/b.txt?x=$1 [B,R,L]
    RewriteRule ^/bnp/(.*)$ /new/b.txt?x=$1 [B,BNP,R,L]
    RewriteRule ^/bchars/(.*)$ /new/b.txt?x=$1 [B=&,R,L]
    RewriteRule ^/qmark/(.*)$ /new/$1 [L]
    RewriteRule ^/qmark3f/(.*)$ /new/$1 [UnsafeAllow3F,L]
    # [P]: to the echo backend (conftest)
    RewriteRule ^/proxied/(.*)$ http://127.0.0.1:@BACKEND@/echo/$1 [P]
    RewriteRule ^/proxied-ne/(.*)$ http://127.0.0.1:@BACKEND@/echo/$1 [P,NE]
    RewriteRule ^/proxied-q/(.*)$ http://127.0.0.1:@BACKEND@/echo/$1?added=1 [P,QSA]
    # status flags
    RewriteRule ^/forbidden - [F]
    RewriteRule ^/gone - [G]
    RewriteRule ^/r404 - [R=404]
    RewriteRule ^/r500 - [R=500]
    RewriteRule ^/forbidden-nc - [F,NC]
    # local results
    RewriteRule ^/internal$ /new/a.txt [L]
    RewriteRule ^/nc/(.*)$ /new/$1 [NC,L]
    RewriteRule ^/abspath$ "{D}/new/b.txt" [L]
    RewriteRule ^/outside$ "{base}/maps/map.txt" [L]
    RewriteRule ^/missing$ /new/nothing.txt [L]
    RewriteRule ^/slashes$ //new/a.txt [L]
    RewriteRule ^/dir-target$ /new [L]
    RewriteRule ^/pt$ /aliased/f.txt [PT,L]
    RewriteRule ^/nopt$ /aliased/f.txt [L]
    RewriteRule ^/typed$ /new/t.txt [T=application/x-rewritten,L]
    # query strings
    RewriteRule ^/qsa$ /new/q.txt?added=1 [QSA,R,L]
    RewriteRule ^/qsa-empty$ /new/q.txt [QSA,R,L]
    RewriteRule ^/qsd$ /new/q.txt [QSD,R,L]
    RewriteRule ^/qsd-new$ /new/q.txt?n=1 [QSD,R,L]
    RewriteRule ^/qsl$ /new/q.txt?a?b=1 [QSL,R,L]
    RewriteRule ^/qfirst$ /new/q.txt?a?b=1 [R,L]
    RewriteRule ^/qkeep$ /new/q.txt [R,L]
    RewriteRule ^/qdrop$ /new/q.txt? [R,L]
    RewriteRule ^/qnew$ /new/q.txt?n=1 [R,L]
    RewriteRule ^/qsa-trail$ /new/q.txt? [QSA,R,L]
    RewriteRule ^/qspace$ /new/q.txt?a=%{{HTTP:X-Q}} [L]
    # S, C, N, END, L order
    RewriteRule ^/skip$ - [S=1]
    RewriteRule ^/skip$ /new/skipped.txt [L]
    RewriteRule ^/skip$ /new/a.txt [L]
    RewriteRule ^/chain/(.*)$ - [C]
    RewriteRule ^/chain/x$ /new/chained.txt [L]
    RewriteRule ^/chain/ /new/unchained.txt [L]
    RewriteRule ^/nochain/(.*)$ - [C]
    RewriteRule ^/nochainx$ /new/chained.txt [L]
    RewriteRule ^/nochain /new/unchained.txt [L]
    RewriteRule ^/n/(.*)-(.*)$ /n/$1_$2 [N]
    RewriteRule ^/n/(.*)$ /new/$1.txt [L]
    RewriteRule ^/nloop(.*)$ /nloop$1x [N=10]
    RewriteRule ^/last$ /new/a.txt [L]
    RewriteRule ^/new/a\\.txt$ /new/b.txt
    RewriteRule ^/nolast$ /new/a.txt
    RewriteRule ^/nolast-b$ /new/a.txt
    RewriteRule ^/new/a\\.txt$ /new/one.txt [L]
    # env, cookies
    RewriteRule ^/env$ - [E=RW_FOO:bar]
    RewriteCond %{{ENV:RW_FOO}} =bar
    RewriteRule ^/env$ /new/env-yes.txt [L]
    RewriteRule ^/env$ /new/env-no.txt [L]
    RewriteRule ^/envunset$ - [E=RW_X:1,E=!RW_X]
    RewriteCond %{{ENV:RW_X}} ^$
    RewriteRule ^/envunset$ /new/env-yes.txt [L]
    RewriteRule ^/cookie$ /new/a.txt [CO=tst:val:.a.test,L]
    RewriteRule ^/cookie2$ /new/a.txt [CO=tst:v2:.a.test:0:/sub:secure:httponly,CO=two:2:a.test,L]
    RewriteRule ^/cookie3$ /new/a.txt [CO=;tst;v:3;a.test;0;/;1;1;Lax,L]
    # maps
    RewriteRule ^/map/txt/(.*)$ /new/${{txtmap:$1|default}}.txt [L]
    RewriteRule ^/map/rnd/(.*)$ /new/${{rndmap:$1}}.txt [L]
    RewriteRule ^/map/upper/(.*)$ /x/${{upper:$1}} [R,L]
    RewriteRule ^/map/lower/(.*)$ /new/${{lower:$1}} [L]
    RewriteRule ^/map/esc/(.*)$ /x/${{esc:$1}} [R,NE,L]
    RewriteRule ^/map/unesc$ /x/${{unesc:%{{QUERY_STRING}}}}? [R,NE,L]
    RewriteRule ^/map/nomap/(.*)$ /new/${{nosuch:$1|default}}.txt [L]
    RewriteRule ^/map/nested/(.*)$ /new/${{txtmap:${{lower:$1}}|default}}.txt [L]
    RewriteRule ^/map/main/(.*)$ /new/${{mainmap:$1|none}}.txt [L]
    # conditions
    RewriteCond %{{HTTP_USER_AGENT}} ^Mobile
    RewriteRule ^/ua$ /new/mobile.txt [L]
    RewriteRule ^/ua$ /new/desktop.txt [L]
    RewriteCond %{{HTTP:X-Flag}} ^on$ [NC]
    RewriteRule ^/hdr$ /new/yes.txt [L]
    RewriteRule ^/hdr$ /new/no.txt [L]
    RewriteCond %{{HTTP:X-A}} =1 [OR]
    RewriteCond %{{HTTP:X-B}} =1
    RewriteRule ^/or$ /new/yes.txt [L]
    RewriteRule ^/or$ /new/no.txt [L]
    RewriteCond %{{QUERY_STRING}} ^id=([0-9]+)$
    RewriteRule ^/cap$ /new/id-%1.txt? [L]
    RewriteCond %{{QUERY_STRING}} ^v=(.*)$
    RewriteCond %1 >m
    RewriteRule ^/gt$ /new/ge.txt? [L]
    RewriteCond %{{QUERY_STRING}} ^v=(.*)$
    RewriteCond %1 <=m
    RewriteRule ^/le$ /new/lt.txt? [L]
    RewriteCond %{{QUERY_STRING}} =""
    RewriteRule ^/emptyq$ /new/eq.txt [L]
    RewriteCond %{{QUERY_STRING}} =abc [NC]
    RewriteRule ^/eqnc$ /new/eq.txt? [L]
    RewriteCond %{{QUERY_STRING}} >=B [NC]
    RewriteRule ^/genc$ /new/ge.txt? [L]
    RewriteCond %{{QUERY_STRING}} ^n=(-?[0-9]*)
    RewriteCond %1 -gt10
    RewriteRule ^/int$ /new/int.txt? [L]
    RewriteCond %{{QUERY_STRING}} ^n=(-?[0-9]*)
    RewriteCond %1 -ne5
    RewriteRule ^/intne$ /new/int.txt? [L]
    RewriteCond %{{QUERY_STRING}} ^n=(-?[0-9]*)
    RewriteCond %1 "-le 5"
    RewriteRule ^/intle$ /new/int.txt? [L]
    RewriteCond %{{DOCUMENT_ROOT}}/new/%{{QUERY_STRING}} -f
    RewriteRule ^/isfile$ /new/file.txt? [L]
    RewriteCond %{{DOCUMENT_ROOT}}/%{{QUERY_STRING}} -d
    RewriteRule ^/isdir$ /new/dir.txt? [L]
    RewriteCond %{{DOCUMENT_ROOT}}/%{{QUERY_STRING}} -s
    RewriteRule ^/issize$ /new/size.txt? [L]
    RewriteCond %{{DOCUMENT_ROOT}}/%{{QUERY_STRING}} -l
    RewriteRule ^/islink$ /new/link.txt? [L]
    RewriteCond %{{DOCUMENT_ROOT}}/%{{QUERY_STRING}} -x
    RewriteRule ^/isexec$ /new/exec.txt? [L]
    RewriteCond %{{DOCUMENT_ROOT}}/new/%{{QUERY_STRING}} -F
    RewriteRule ^/isF$ /new/file.txt? [L]
    RewriteCond /new/%{{QUERY_STRING}} -U
    RewriteRule ^/isU$ /new/file.txt? [L]
    RewriteCond expr "-R '127.0.0.0/8'"
    RewriteRule ^/ip$ /new/ip.txt [L]
    RewriteCond %{{REMOTE_ADDR}} -ipmatch127.0.0.1
    RewriteRule ^/ipmatch$ /new/yes.txt [L]
    RewriteRule ^/ipmatch$ /new/no.txt [L]
    RewriteCond expr "%{{QUERY_STRING}} =~ /^e=yes/"
    RewriteRule ^/expr$ /new/expr.txt? [L]
    RewriteCond %{{REQUEST_METHOD}} =POST
    RewriteRule ^/method$ /new/yes.txt [L]
    RewriteRule ^/method$ /new/no.txt [L]
    RewriteCond %{{REQUEST_URI}} ^/requri/(.*)
    RewriteRule ^ /new/%1 [L]
    RewriteCond %{{THE_REQUEST}} \\?secret [NC]
    RewriteRule ^/therequest - [F]
    RewriteCond %{{API_VERSION}} ^20120211:
    RewriteCond %{{TIME_YEAR}} ^20[0-9][0-9]$
    RewriteCond %{{TIME}} ^20[0-9]{{12}}$
    RewriteCond %{{TIME_MON}}%{{TIME_DAY}}%{{TIME_HOUR}}%{{TIME_MIN}}%{{TIME_SEC}} ^[0-9]{{10}}$
    RewriteCond %{{TIME_WDAY}} ^[0-6]$
    RewriteCond %{{REMOTE_PORT}} -gt0
    RewriteRule ^/vars$ /new/yes.txt [L]
    RewriteRule ^/vars$ /new/no.txt [L]
    RewriteRule ^/echo1$ /x?port=%{{SERVER_PORT}}&name=%{{SERVER_NAME}}&https=%{{HTTPS}}&scheme=%{{REQUEST_SCHEME}}&addr=%{{SERVER_ADDR}}&raddr=%{{REMOTE_ADDR}}&proto=%{{SERVER_PROTOCOL}}&sub=%{{IS_SUBREQ}}&v6=%{{IPV6}}&rhost=%{{REMOTE_HOST}}&conn=%{{CONN_REMOTE_ADDR}} [R,L]
    RewriteRule ^/echo2(.*)$ /x?fn=%{{REQUEST_FILENAME}}&sfn=%{{SCRIPT_FILENAME}}&pi=%{{PATH_INFO}}&uri=%{{REQUEST_URI}}&qs=%{{QUERY_STRING}}&req=%{{THE_REQUEST}}&m=%{{REQUEST_METHOD}} [R,L]
    RewriteRule ^/echo3$ /x?surl=%{{ENV:SCRIPT_URL}}&suri=%{{ENV:SCRIPT_URI}}&dr=%{{DOCUMENT_ROOT}}&cdr=%{{CONTEXT_DOCUMENT_ROOT}}&cp=%{{CONTEXT_PREFIX}}&admin=%{{SERVER_ADMIN}}&user=%{{REMOTE_USER}}&suser=%{{SCRIPT_USER}}&ident=%{{REMOTE_IDENT}}&auth=%{{AUTH_TYPE}}&unknown=%{{NO_SUCH_VAR}}&x=%{{HTTP:X-Echo}}&ssl=%{{SSL:SSL_PROTOCOL}}&hh=%{{HTTP_HOST}}&short=%{{ABC}} [R,L]
    RewriteRule ^/echo4$ /x?ua=%{{HTTP_USER_AGENT}}&ref=%{{HTTP_REFERER}}&ck=%{{HTTP_COOKIE}}&fw=%{{HTTP_FORWARDED}}&acc=%{{HTTP_ACCEPT}}&pc=%{{HTTP_PROXY_CONNECTION}}&xf=%{{HTTP_X_FORWARDED_FOR}} [R,L]
    RewriteCond %{{HTTP_HOST}} ^(.*)$
    RewriteRule ^/hostecho$ /x/%1 [R,L]
    RewriteCond %{{HTTP_REFERER}} !^$
    RewriteCond %{{HTTP_REFERER}} !^http://a\\.test/ [NC]
    RewriteRule \\.txt$ - [F]
    RewriteCond %{{HTTP_COOKIE}} (^|;\\s*)lang=([a-z]+)
    RewriteRule ^/lang$ /x/%2 [R,L]
    RewriteCond %{{HTTP_ACCEPT}} image/webp
    RewriteRule ^/accept$ /new/yes.txt [L]
    RewriteRule ^/vary$ /new/yes.txt [L]
    RewriteCond %{{HTTP:X-V}} ^1$
    RewriteRule ^/vary2$ /new/yes.txt [L]
    RewriteCond %{{HTTP:X-V}} ^1$
    RewriteCond %{{HTTP:X-W}} ^1$
    RewriteCond %{{HTTP:x-v}} ^1$
    RewriteRule ^/vary3$ /new/yes.txt [L]
    RewriteCond %{{HTTP:X-V}} ^1$
    RewriteRule ^/ht/vary$ - [E=RW_HV:1]
    RewriteCond %{{HTTP:X-V}} ^1$ [NV]
    RewriteRule ^/novary$ /new/yes.txt [L]
    # a front controller at server level
    RewriteCond %{{DOCUMENT_ROOT}}%{{REQUEST_URI}} !-f
    RewriteCond %{{DOCUMENT_ROOT}}%{{REQUEST_URI}} !-d
    RewriteRule ^/app/ /app/index.php [L]
    # END in server context
    RewriteRule ^/endrule$ /new/a.txt [END]
    RewriteRule ^/new/a\\.txt$ /new/b.txt [L]
    RewriteRule ^/dotdot$ /new/../../maps/map.txt [L]
    RewriteRule ^/!neg - [F]
    RewriteCond %{{REQUEST_URI}} ^/negate
    RewriteRule !\\.txt$ /new/none.txt [L]
</VirtualHost>

<VirtualHost *:@PORT@>
    ServerName b.test
    RewriteEngine On
    RewriteCond %{{HTTPS}} off
    RewriteRule ^ https://%{{HTTP_HOST}}%{{REQUEST_URI}} [R=301,L]
</VirtualHost>

<VirtualHost *:@PORT@>
    ServerName c.test
    ServerAlias www.c.test
    RewriteEngine On
    RewriteCond %{{HTTP_HOST}} ^www\\.(.+)$ [NC]
    RewriteRule ^(.*)$ http://%1$1 [R=301,L]
</VirtualHost>

<VirtualHost *:@PORT@>
    ServerName d.test
</VirtualHost>

<VirtualHost *:@PORT@>
    ServerName e.test
    RewriteOptions Inherit
    RewriteRule ^/mainorder$ /new/own.txt [L]
    RewriteRule ^/own$ /new/own.txt [L]
</VirtualHost>

<VirtualHost *:@PORT@>
    ServerName f.test
    RewriteOptions InheritBefore
    RewriteRule ^/mainorder$ /new/own.txt [L]
</VirtualHost>

<VirtualHost *:@PORT@>
    ServerName g.test
    RewriteEngine Off
    RewriteRule ^/mainrule$ /new/own.txt [L]
</VirtualHost>

<VirtualHost *:@PORT@>
    ServerName h.test:@PORT@
    RewriteEngine On
    RewriteRule ^/self$ http://h.test:@PORT@/new/a.txt [L]
    RewriteRule ^/selfdefault$ http://h.test/new/a.txt [L]
</VirtualHost>

<VirtualHost *:@PORT@>
    ServerName t.test
    LogLevel warn rewrite:trace8
    RewriteEngine On
    RewriteRule ^/traced/(.*)$ /new/$1 [L]
</VirtualHost>
"""


HTACCESS = {
    "ht": """RewriteEngine On
RewriteRule ^a\\.txt$ b.txt [L]
RewriteRule ^red$ target.txt [R=302,L]
RewriteRule ^sub/(.*)$ /new/$1 [L]
RewriteRule ^query$ c.txt?x=1 [L]
RewriteRule ^forbid$ - [F]
RewriteRule ^dpi/(.*)$ dpi.txt [DPI,L]
RewriteRule ^typed$ a.txt [T=application/x-ht,L]
RewriteRule ^env$ c.txt [E=HT_E:1,L]
RewriteRule ^abs$ http://elsewhere.test/from-ht [R=301,L]
RewriteRule ^nc$ c.txt [NC,L]
RewriteCond %{HTTP:X-Ht} ^1$
RewriteRule ^vary$ c.txt [L]
RewriteRule ^echo(.*)$ http://a.test/x?fn=%{REQUEST_FILENAME}&pi=%{PATH_INFO}&uri=%{REQUEST_URI}&su=%{SCRIPT_USER}&sg=%{SCRIPT_GROUP}&m=$1 [R,L]
""",
    "fc": """RewriteEngine On
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule ^ index.php [L]
""",
    "wp": """# BEGIN WordPress
<IfModule mod_rewrite.c>
RewriteEngine On
RewriteBase /wp/
RewriteRule ^index\\.php$ - [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule . /wp/index.php [L]
</IfModule>
# END WordPress
""",
    "loop": """RewriteEngine On
RewriteRule ^(.*)$ x/$1 [L]
""",
    "end": """RewriteEngine On
RewriteRule ^(.*)$ x/$1 [END]
""",
    "nofollow": """RewriteEngine On
RewriteRule ^a\\.txt$ b.txt [L]
""",
}


def build(base: Path) -> None:
    d = base / "htdocs"
    for rel in FILES:
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"file {rel}\n" if not rel.endswith(".keep") else "")
    (d / "new" / "exec.sh").write_text("#!/bin/sh\n")
    os.symlink("a.txt", d / "new" / "alink")
    (d / "new" / "emptyfile").write_text("")
    for name, text in HTACCESS.items():
        (d / name / ".htaccess").write_text(text)
    (base / "aliased").mkdir()
    (base / "aliased" / "f.txt").write_text("file aliased/f.txt\n")
    (base / "maps").mkdir()
    (base / "maps" / "map.txt").write_text(
        "# a comment\n"
        "key mapped\n"
        "one one   # a trailing comment word\n"
        " indented skipped\n"
        "novalue\n"
        "key second-ignored\n"
        "UPPER mapped\n")
    (base / "maps" / "rnd.txt").write_text("pick one\nmulti one|one\n")
    for root, dirs, fnames in os.walk(base):
        os.chmod(root, 0o755)
        for f in fnames:
            p = os.path.join(root, f)
            if os.path.islink(p):
                continue
            os.chmod(p, 0o755 if f.endswith(".sh") else 0o644)
            os.utime(p, (PAST, PAST))


def main_conf(base: Path, tag: str, port: int, backend: int = 9) -> str:
    """TAG's main config on PORT; BACKEND is the echo backend's port (the [P] rules)."""
    (base / "htdocs" / "px").mkdir(exist_ok=True)
    (base / "htdocs" / "px" / ".htaccess").write_text(
        "RewriteEngine On\n"
        f"RewriteRule ^(.*)$ http://127.0.0.1:{backend}/px/$1 [P]\n")
    os.chmod(base / "htdocs" / "px", 0o755)
    os.chmod(base / "htdocs" / "px" / ".htaccess", 0o644)
    root = base / tag
    (root / "logs").mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    os.chmod(root / "logs", 0o777)
    (root / "site.conf").write_text(fragment(base).replace("@PORT@", str(port))
                                    .replace("@BACKEND@", str(backend)))
    return (f'ServerRoot "{root}"\n' + load_modules(*MODULES) + "\n"
            f'ServerName localhost\nErrorLog "{root}/logs/error.log"\nLogLevel warn\n'
            f'PidFile "{root}/logs/{tag}.pid"\nDefaultRuntimeDir "{root}/logs"\n'
            f"Mutex file:{root}/logs default\nListen 127.0.0.1:{port}\n"
            "User www-data\nGroup www-data\nStartServers 2\nMinSpareServers 1\n"
            "MaxSpareServers 4\n"
            f'Include "{root}/site.conf"\n')
