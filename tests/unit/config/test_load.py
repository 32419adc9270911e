"""load(): reading (Include, Define, If*), the walk (table, contexts, arguments), the model
(merge, vhost tables, mutex precedence) and check(), each error with its file and line."""
import os

import pytest

from httpd_py.config import check, load
from httpd_py.config.model import CertKeyPair, Location, SocacheSpec
from httpd_py.devtools import pki as pkimod
from httpd_py.errors import ConfigError

BASE = "Listen 127.0.0.1:18080\n"


def write(root, files):
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(root / next(iter(files)))


def ld(tmp_path, text, **kw):
    kw.setdefault("log_warnings", False)
    return load(write(tmp_path, {"httpd.conf": text}), **kw)


def err(tmp_path, text, **kw):
    with pytest.raises(ConfigError) as e:
        ld(tmp_path, text, **kw)
    return e.value.msg, os.path.basename(e.value.file or ""), e.value.line


# -- reading ------------------------------------------------------------------------------------
def test_include_wildcard_sorted_and_relative_to_server_root(tmp_path):
    root = tmp_path
    write(root, {"conf.d/b.conf": "ServerAdmin b\n", "conf.d/a.conf": "ServerAdmin a\n",
                 "conf.d/.hidden.conf": "Bogus\n", "conf.d/sub/c.conf": "ServerAdmin c\n",
                 "conf.d/Z.conf": "ServerAdmin Z\n"})
    cfg = ld(tmp_path, BASE + "Include conf.d/*.conf\n")
    assert cfg.main.server_admin == "b"                     # Z, a, b: byte order, last wins
    assert [f for _, _, f in cfg.includes][1:] == [str(root / "conf.d/Z.conf"),
                                                   str(root / "conf.d/a.conf"),
                                                   str(root / "conf.d/b.conf")]
    cfg = ld(tmp_path, BASE + "Include conf.d/sub/\n")      # a directory: every file in it
    assert cfg.main.server_admin == "c"
    assert cfg.main.where("serveradmin") == Location(str(root / "conf.d/sub/c.conf"), 1)


def test_include_errors(tmp_path):
    assert err(tmp_path, BASE + "Include nomatch*.conf\n") == (
        f"Include/IncludeOptional: No matches for the wildcard 'nomatch*.conf' in "
        f"'{tmp_path}', failing", "httpd.conf", 2)
    msg, f, line = err(tmp_path, BASE + "\nInclude /nonexistent-h1/x.conf\n")
    assert (msg, line) == ("Could not open configuration file /nonexistent-h1/x.conf: "
                           "No such file or directory", 3)
    msg, f, line = err(tmp_path, BASE + "Include /nonexistent-h1/*.conf\n")
    assert msg.startswith("Include/IncludeOptional: Could not open directory /nonexistent-h1")
    ld(tmp_path, BASE + "IncludeOptional nomatch*.conf\nIncludeOptional /nonexistent-h1/x\n")


def test_nul_byte_in_a_path_is_a_located_error(tmp_path):
    assert err(tmp_path, BASE + "Include a\0b\n")[1:] == ("httpd.conf", 2)
    assert err(tmp_path, BASE + "PidFile a\0b\n")[1:] == ("httpd.conf", 2)


def test_error_inside_included_file_has_inner_location(tmp_path):
    write(tmp_path, {"inc/x.conf": "\n\nServerName a b\n"})
    msg, f, line = err(tmp_path, BASE + "Include inc/x.conf\n")
    assert (f, line) == ("x.conf", 3) and msg.startswith("ServerName takes one argument")


def test_include_cycle_and_depth(tmp_path):
    write(tmp_path, {"a.conf": "Include b.conf\n", "b.conf": "\nInclude a.conf\n"})
    msg, f, line = err(tmp_path, BASE + "Include a.conf\n")
    assert msg.startswith("Include cycle:") and (f, line) == ("b.conf", 2)


def test_define_and_variables(tmp_path):
    os.environ["H1_TEST_ENV"] = "from-env"
    try:
        cfg = ld(tmp_path, BASE + 'Define NAME "a.test"\nServerName ${NAME}\n'
                 'ServerAdmin ${H1_TEST_ENV}\nAlias /x /srv/${UNDEFINED_H1}\n')
    finally:
        del os.environ["H1_TEST_ENV"]
    assert cfg.main.server_name == "a.test" and cfg.main.server_admin == "from-env"
    assert cfg.main.aliases[0].target == "/srv/${UNDEFINED_H1}"
    assert any("Config variable ${UNDEFINED_H1} is not defined" in w for w in cfg.warnings)
    assert ("NAME", "a.test") in cfg.define_values


def test_variable_with_spaces_splits_into_words(tmp_path):
    # Apache substitutes before splitting: "b c" becomes two arguments.
    assert err(tmp_path, BASE + 'Define A "b c"\nServerAdmin ${A}\n')[2] == 3


def test_define_errors(tmp_path):
    assert err(tmp_path, BASE + "Define\n")[2] == 2
    assert err(tmp_path, BASE + "Define A:B x\n")[0] == "Variable name must not contain ':'"


def test_ifdefine_command_line_and_undefine(tmp_path):
    text = (BASE + "<IfDefine SSL>\nServerAdmin ssl\n</IfDefine>\n<IfDefine !SSL>\n"
            "ServerAdmin plain\n</IfDefine>\n")
    assert ld(tmp_path, text, defines=("SSL",)).main.server_admin == "ssl"
    assert ld(tmp_path, text).main.server_admin == "plain"
    text = BASE + "Define X\nUnDefine X\n<IfDefine X>\nServerAdmin x\n</IfDefine>\n"
    assert ld(tmp_path, text).main.server_admin == ""


def test_false_section_body_is_not_parsed(tmp_path):
    ld(tmp_path, BASE + "<IfDefine NOPE>\nBogus \"unterminated\n<Foo>\n</Foo>\n</IfDefine>\n")
    # ... but nesting is tracked, and a wrong close is reported at the <IfDefine> line.
    assert err(tmp_path, BASE + "<IfDefine NOPE>\n<Directory />\n</IfDefine>\n") == (
        "Expected </Directory> but saw </IfDefine>", "httpd.conf", 2)
    assert err(tmp_path, BASE + "<IfDefine NOPE>\nX\n") == (
        "Expected </IfDefine> before end of configuration", "httpd.conf", 2)


@pytest.mark.parametrize("name", ["ssl_module", "mod_ssl.c", "ssl", "SSL_MODULE"])
def test_ifmodule_names(tmp_path, name):
    cfg = ld(tmp_path, BASE + f"<IfModule {name}>\nServerAdmin yes\n</IfModule>\n"
             "<IfModule rewrite_module>\nServerAdmin rewrite\n</IfModule>\n")
    assert cfg.main.server_admin == "yes"


def test_loadmodule_marks_loaded(tmp_path):
    cfg = ld(tmp_path, BASE + "LoadModule speling_module /nonexistent/mod_speling.so\n"
             "<IfModule mod_speling.c>\nCheckSpelling on\nServerAdmin r\n</IfModule>\n")
    assert cfg.main.server_admin == "r" and "speling_module" in cfg.loaded_modules
    assert ("CheckSpelling", Location(cfg.config_file, 4)) in cfg.ignored_directives
    msg = err(tmp_path, BASE + "LoadModule foo_module /nonexistent/mod_foo.so\n")[0]
    assert msg.startswith("Cannot load /nonexistent/mod_foo.so into server")


def test_iffile_ifdirective_ifsection_ifversion(tmp_path):
    (tmp_path / "exists").write_text("")
    cfg = ld(tmp_path, BASE +
             "<IfFile exists>\nServerAdmin f\n</IfFile>\n"
             "<IfFile !nope>\nServerName n.test\n</IfFile>\n"
             "<IfDirective SSLUseStapling>\nTimeout 7\n</IfDirective>\n"
             "<IfDirective RewriteEngine>\nTimeout 8\n</IfDirective>\n"
             "<IfSection VirtualHost>\nKeepAlive off\n</IfSection>\n"
             "<IfVersion >= 2.4>\nMaxKeepAliveRequests 7\n</IfVersion>\n")
    m = cfg.main
    assert (m.server_admin, m.server_name, m.timeout, m.keep_alive,
            m.max_keep_alive_requests) == ("f", "n.test", 7, False, 7)


def test_section_errors(tmp_path):
    assert err(tmp_path, BASE + "<VirtualHost *:80>\nServerName a\n") == (
        f"{tmp_path}/httpd.conf:2: <VirtualHost> was not closed.", "httpd.conf", 2)
    assert err(tmp_path, BASE + "</VirtualHost>\n") == (
        "</VirtualHost> without matching <VirtualHost> section", "httpd.conf", 2)
    assert err(tmp_path, BASE + "<VirtualHost *:80>\n</Directory>\n") == (
        "Expected </VirtualHost> but saw </Directory>", "httpd.conf", 3)
    assert err(tmp_path, BASE + "<VirtualHost *:80\n</VirtualHost>\n") == (
        "<VirtualHost> directive missing closing '>'", "httpd.conf", 2)
    assert err(tmp_path, BASE + "<IfDefine>\n</IfDefine>\n")[0] == \
        "<IfDefine> directive requires additional arguments"


def test_case_insensitive_names_and_close_tags(tmp_path):
    cfg = ld(tmp_path, BASE + "<virtualhost *:80>\nservername A.Test\n</VIRTUALHOST>\n")
    assert cfg.vhosts[0].server_name == "a.test"


def test_read_errors_come_before_walk_errors(tmp_path):
    # Like Apache: the whole tree is read (Include, If*) before any directive is checked.
    assert err(tmp_path, BASE + "Bogus\nInclude /nonexistent-h1/x.conf\n")[2] == 3


# -- the walk -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,msg,line", [
    ("Foo bar\n", "Invalid command 'Foo', perhaps misspelled or defined by a module not "
     "included in the server configuration", 2),
    ("<Foo>\n</Foo>\n", "Invalid command '<Foo', perhaps misspelled or defined by a module "
     "not included in the server configuration", 2),
    ("<VirtualHost *:80>\nSSLStaplingCache shmcb\n</VirtualHost>\n",
     "SSLStaplingCache cannot occur within <VirtualHost> section", 3),
    ("<Directory />\nSSLUseStapling on\n</Directory>\n",
     "SSLUseStapling not allowed in <Directory> context", 3),
    ("<Location />\nListen 80\n</Location>\n", "Listen not allowed in <Location> context", 3),
    ("<VirtualHost *:80>\n<VirtualHost *:81>\n</VirtualHost>\n</VirtualHost>\n",
     "<VirtualHost> cannot occur within <VirtualHost> section", 3),
    ("<Directory />\n<Directory /x>\n</Directory>\n</Directory>\n",
     "<Directory not allowed in <Directory> context", 3),
    ("Require all granted\n", "Require not allowed here", 2),
    ("AuthMerging Or\n", "AuthMerging not allowed here", 2),
    ("SSLUseStapling yes\n", "SSLUseStapling must be On or Off", 2),
    ("KeepAlive maybe\n", "KeepAlive must be On or Off", 2),
    ("Timeout abc\n", "Timeout has wrong format: 'abc'", 2),
    ("MaxRequestWorkers 10x\n", "MaxRequestWorkers: '10x' is not a whole number", 2),
    ("SSLStaplingResponseTimeSkew -1\n", "SSLStaplingResponseTimeSkew: invalid argument", 2),
    ("SSLStaplingStandardCacheTimeout abc\n", "SSLStaplingStandardCacheTimeout: invalid "
     "argument 'abc'", 2),
    ("SSLStaplingCache shmcb:/x(1000)\n", "SSLStaplingCache: Invalid argument: size has to be "
     ">= 8192 bytes", 2),
    ("Listen 127.0.0.1:18080\n", "Cannot define multiple Listeners on the same IP:port", 2),
    ("Listen abc\n", "Port must be specified", 2),
    ("ServerAlias a\n", "ServerAlias only used in <VirtualHost>", 2),
    ("Mutex none ssl-stapling-refresh\n", "None is not allowed for mutex type "
     "ssl-stapling-refresh", 2),
    ("SSLProtocol TLSv1.2 TLSv9\n", "SSLProtocol: Illegal protocol 'TLSv9'", 2),
    ("SSLStaplingRefresh sometimes\n", "SSLStaplingRefresh: 'sometimes' must be one of "
     "background, on-demand", 2),
    ("SSLStaplingMustStaple never\n", "SSLStaplingMustStaple: 'never' must be one of warn, "
     "strict", 2),
    ("SSLStaplingForceURL ftp://x/\n", "SSLStaplingForceURL: 'ftp://x/' is not an http:// "
     "or https:// URL", 2),
    ("User no-such-user-h1\n", "bad user name no-such-user-h1", 2),
    ("SSLCertificateFile /nonexistent-h1.pem\n", "SSLCertificateFile: file "
     "'/nonexistent-h1.pem' does not exist or is empty", 2),
    ("SSLLog /x\n", "SSLLog directive is no longer supported - use ErrorLog.", 2),
    ("Port 80\n", "Port was replaced with Listen in Apache 2.0", 2),
    ("ServerTokens Bogus\n", "ServerTokens takes 1 argument", 2),
    ("<VirtualHost *:80>\nServerTokens Prod\n</VirtualHost>\n",
     "ServerTokens cannot occur within <VirtualHost> section", 3),
    ("<VirtualHost *:99999>\n</VirtualHost>\n", "The address or port is invalid: '*:99999'", 2),
    ("Options FollowSymLinks +Indexes\n", "Either all Options must start with + or -, or no "
     "Option may.", 2),
    ("Require all granted\n", "Require not allowed here", 2),
])
def test_walk_errors(tmp_path, text, msg, line):
    got = err(tmp_path, BASE + text)
    assert got[0].startswith(msg) and got[1:] == ("httpd.conf", line), got


def test_argument_counts_use_the_table(tmp_path):
    msg, _, _ = err(tmp_path, BASE + "ServerName a b\n")
    assert msg.startswith("ServerName takes one argument, ")
    assert err(tmp_path, BASE + "ServerName\n")[0].startswith("ServerName takes one argument")
    assert err(tmp_path, BASE + "SSLRequireSSL x\n")[0] == "SSLRequireSSL not allowed here"
    # Apache ignores words after SSLRequireSSL.
    ld(tmp_path, BASE + "<Directory />\nSSLRequireSSL x\n</Directory>\n")
    assert err(tmp_path, BASE + "AddType text/x\n")[0].startswith(
        "AddType requires at least two arguments")


def test_ignored_directives_recorded_with_location(tmp_path):
    cfg = ld(tmp_path, BASE + "HostnameLookups Double\n<Directory />\nAllowOverride None\n"
             "Require all granted\nEnableSendfile On\n</Directory>\n<IfModule nothing>\n"
             "</IfModule>\n")
    names = [(n, l.line) for n, l in cfg.ignored_directives]
    # AllowOverride and Require are applied; only what has no effect is listed
    assert names == [("HostnameLookups", 2), ("EnableSendfile", 6)]


def test_pre_and_post_directives(tmp_path):
    cfg = ld(tmp_path, BASE + "ServerAdmin file\nTimeout 9\n",
             pre_directives=("ServerAdmin pre", "Timeout 3"), post_directives=("Timeout 4",))
    assert (cfg.main.server_admin, cfg.main.timeout) == ("file", 4)
    with pytest.raises(ConfigError) as e:
        ld(tmp_path, BASE, post_directives=("Bogus",))
    assert e.value.file == "-c/-C directives" and e.value.line == 1


def test_server_root_directive_and_relative_paths(tmp_path):
    (tmp_path / "root").mkdir()
    cfg = ld(tmp_path, BASE + f"ServerRoot {tmp_path}/root\nPidFile run/x.pid\nErrorLog "
             "logs/err\nDocumentRoot htdocs\n", check_document_root=False)     # -T
    assert cfg.server_root == f"{tmp_path}/root"
    assert cfg.pid_file == f"{tmp_path}/root/run/x.pid"
    assert cfg.main.error_log == f"{tmp_path}/root/logs/err"
    assert cfg.main.document_root == f"{tmp_path}/root/htdocs"
    assert err(tmp_path, BASE + "ServerRoot /nonexistent-h1\n")[0] == \
        "ServerRoot must be a valid directory"
    # Apache runs ServerRoot while reading and checks no context for it: so do we.
    assert ld(tmp_path, BASE + "<VirtualHost *:80>\nServerRoot /\n</VirtualHost>\n"
              ).server_root == "/"


# -- the model ----------------------------------------------------------------------------------
def test_vhost_merge_field_by_field(tmp_path):
    cfg = ld(tmp_path, BASE + "ServerName main.test\nTimeout 30\nSSLUseStapling on\n"
             "SSLStaplingResponderTimeout 5\nAlias /m /srv/m\nAddType text/x .m\n"
             "<VirtualHost *:18080>\nServerName v.test\nTimeout 10\nSSLUseStapling off\n"
             "Alias /v /srv/v\nAddType text/y .v\n</VirtualHost>\n"
             "<VirtualHost *:18080>\nServerAlias other.test\n</VirtualHost>\n")
    v1, v2 = cfg.vhosts
    assert (v1.server_name, v1.timeout, v1.ssl.stapling.enabled,
            v1.ssl.stapling.responder_timeout) == ("v.test", 10, False, 5.0)
    assert (v2.server_name, v2.timeout, v2.ssl.stapling.enabled) == ("main.test", 30, True)
    assert [a.url_path for a in v1.aliases] == ["/v", "/m"]
    assert v1.add_types == (("m", "text/x"), ("v", "text/y"))
    assert v2.server_aliases == ("other.test",) and cfg.main.server_aliases == ()
    assert v2.where("sslusestapling").line == 4 and v1.where("sslusestapling").line == 11
    assert cfg.main.ssl.stapling.standard_cache_timeout == 3600          # defaults filled


def test_vhost_groups_and_selection(tmp_path):
    cfg = ld(tmp_path, BASE + "<VirtualHost *:18080>\nServerName a.test\n</VirtualHost>\n"
             "<VirtualHost *:18080>\nServerName b.test\nServerAlias *.b.test\n</VirtualHost>\n"
             "<VirtualHost 127.0.0.1:18080>\nServerName ip.test\n</VirtualHost>\n"
             "<VirtualHost _default_:*>\nServerName any.test\n</VirtualHost>\n")
    assert [(g.host, g.port, g.vhosts) for g in cfg.vhost_groups] == [
        ("*", 18080, (0, 1)), ("127.0.0.1", 18080, (2,)), ("*", None, (3,))]
    pick = cfg.select_vhost
    assert pick("127.0.0.2", 18080, "x.b.test").server_name == "b.test"
    assert pick("127.0.0.2", 18080, "nope").server_name == "a.test"
    assert pick("127.0.0.1", 18080, "b.test").server_name == "ip.test"
    assert pick("127.0.0.1", 9999, None).server_name == "any.test"


def test_stapling_and_extension_directives(tmp_path):
    cfg = ld(tmp_path, BASE + "SSLStaplingCache shmcb:logs/st(65536)\nSSLStaplingStoreDir "
             "staples\nSSLStaplingRefresh on-demand\nSSLStaplingRenewWindow 600\n"
             "SSLStaplingMustStaple strict\nSSLStaplingResponseMaxAge 900\n"
             "SSLStaplingReturnResponderErrors off\nSSLStaplingFakeTryLater off\n"
             "SSLStaplingForceURL http://127.0.0.1:8888/\nSSLOCSPProxyURL http://p:3128/\n"
             "RedisTimeout 500ms\nRedisConnPoolTTL 2mi\nMemcacheConnTTL 30\n")
    s = cfg.main.ssl.stapling
    assert cfg.stapling_cache == SocacheSpec("shmcb", "shmcb:logs/st(65536)",
                                             f"{tmp_path}/logs/st", 65536)
    assert cfg.stapling_store_dir == f"{tmp_path}/staples"
    assert (s.refresh, s.renew_window, s.must_staple, s.response_max_age) == \
        ("on-demand", 600, "strict", 900)
    assert (s.return_responder_errors, s.fake_try_later, s.force_url, s.proxy_url) == \
        (False, False, "http://127.0.0.1:8888/", "http://p:3128/")
    assert (cfg.redis_timeout, cfg.redis_conn_pool_ttl, cfg.memcache_conn_ttl) == (0.5, 120, 30)


def test_mutex_precedence(tmp_path):
    d = tmp_path / "locks"
    d.mkdir()
    cfg = ld(tmp_path, BASE + f"Mutex fcntl:{d} default\nMutex flock:{tmp_path} ssl-stapling\n"
             f"DefaultRuntimeDir {tmp_path}\n")
    assert cfg.mutex("ssl-stapling").mechanism == "flock"
    r = cfg.mutex("ssl-stapling-refresh")
    assert (r.mechanism, r.directory, r.using_defaults) == ("fcntl", str(d), True)
    cfg = ld(tmp_path, BASE + f"DefaultRuntimeDir {d}\n")
    assert cfg.mutex("ssl-stapling").directory == str(d)


def test_prefork_clamps_warn(tmp_path):
    cfg = ld(tmp_path, BASE + "ServerLimit 10\nMaxRequestWorkers 50\nMinSpareServers 0\n"
             "MaxSpareServers 0\nStartServers 3\n")
    p = cfg.prefork
    assert (p.server_limit, p.max_request_workers, p.min_spare_servers, p.max_spare_servers,
            p.start_servers) == (10, 10, 1, 2, 3)
    assert any("MaxRequestWorkers of 50 exceeds ServerLimit" in w for w in cfg.warnings)


def test_model_is_frozen(tmp_path):
    cfg = ld(tmp_path, BASE)
    with pytest.raises(Exception):
        cfg.main.timeout = 1  # type: ignore[misc]


# -- check() ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return pkimod.make_pki(tmp_path_factory.mktemp("pki"), ("a.test",))


def ssl_conf(pki, extra_main="", extra_vhost="", key_kind="rsa"):
    leaf = pki.leaf("a.test")
    return (BASE + extra_main + "<VirtualHost *:18080>\nServerName a.test\nSSLEngine on\n"
            f"SSLCertificateFile {leaf.cert_file}\n"
            f"SSLCertificateKeyFile {pki.leaf('a.test', key_kind).key_file}\n"
            + extra_vhost + "</VirtualHost>\n")


def test_check_ok(tmp_path, pki):
    (tmp_path / "logs").mkdir()
    cfg = ld(tmp_path, ssl_conf(pki, "SSLStaplingCache shmcb\nSSLUseStapling on\n"))
    assert check(cfg) == []
    v = cfg.vhosts[0]
    assert v.ssl.certificates == (CertKeyPair(str(pki.leaf("a.test").cert_file),
                                              str(pki.leaf("a.test").key_file)),)


def test_check_warns_on_name_mismatch_and_expiry(tmp_path, pki):
    import datetime as dt
    (tmp_path / "logs").mkdir()
    cfg = ld(tmp_path, ssl_conf(pki).replace("ServerName a.test", "ServerName other.test"))
    assert any("does NOT include an ID which matches the server name other.test" in w
               for w in check(cfg))
    old = pkimod.make_leaf(pki, "old.test", now=dt.datetime.now(dt.timezone.utc)
                           - dt.timedelta(days=800))
    text = ssl_conf(pki).replace(str(pki.leaf("a.test").cert_file), str(old.cert_file)) \
        .replace(str(pki.leaf("a.test").key_file), str(old.key_file)) \
        .replace("ServerName a.test", "ServerName old.test")
    warnings = check(ld(tmp_path, text))
    assert any("expired on" in w for w in warnings), warnings
    assert not any("does NOT include" in w for w in warnings)


def test_check_stapling_without_cache_points_at_sslusestapling(tmp_path, pki):
    cfg = ld(tmp_path, ssl_conf(pki, "\nSSLUseStapling on\n"))
    with pytest.raises(ConfigError) as e:
        check(cfg)
    assert e.value.msg.startswith("SSLStapling: no stapling cache available")
    assert (e.value.file, e.value.line) == (cfg.config_file, 3)


def test_check_key_mismatch_points_at_key_line(tmp_path, pki):
    cfg = ld(tmp_path, ssl_conf(pki, key_kind="ec"))
    with pytest.raises(ConfigError) as e:
        check(cfg)
    assert "do not match" in e.value.msg and e.value.line == 6


def test_check_ssl_vhost_without_certificate(tmp_path):
    cfg = ld(tmp_path, BASE + "<VirtualHost *:18080>\nSSLEngine on\n</VirtualHost>\n")
    with pytest.raises(ConfigError) as e:
        check(cfg)
    assert "has no certificate configured" in e.value.msg and e.value.line == 3


def test_check_garbage_certificate(tmp_path, pki):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    cfg = ld(tmp_path, BASE + f"<VirtualHost *:18080>\nSSLEngine on\nSSLCertificateFile {bad}\n"
             "</VirtualHost>\n")
    with pytest.raises(ConfigError) as e:
        check(cfg)
    assert "holds no PEM certificate" in e.value.msg and e.value.line == 4


def test_document_root_must_exist_unless_T(tmp_path):
    assert err(tmp_path, BASE + "DocumentRoot /nonexistent-h1\n") == (
        "DocumentRoot '/nonexistent-h1' is not a directory, or is not readable", "httpd.conf", 2)
    assert ld(tmp_path, BASE + "DocumentRoot /nonexistent-h1\n", check_document_root=False
              ).main.document_root == "/nonexistent-h1"


def test_check_warns_about_missing_error_log_directory(tmp_path):
    cfg = ld(tmp_path, BASE + "ErrorLog /nonexistent-h1/error.log\n")
    assert any("Cannot access directory '/nonexistent-h1/' for main error log" in w
               for w in check(cfg))


def test_check_listen_consistency(tmp_path):
    with pytest.raises(ConfigError, match="no Listen directive"):
        check(ld(tmp_path, "ServerName a\n"))
    cfg = ld(tmp_path, BASE + "<VirtualHost *:9443>\n</VirtualHost>\n")
    assert any("uses port 9443, which no Listen directive opens" in w for w in check(cfg))


def test_include_depth_limit(tmp_path):
    for i in range(130):
        (tmp_path / f"d{i}.conf").write_text(f"Include d{i + 1}.conf\n")
    (tmp_path / "d130.conf").write_text("ServerAdmin deep\n")
    msg, f, line = err(tmp_path, BASE + "Include d0.conf\n")
    assert msg.startswith("Exceeded the maximum include directory nesting level of 128")
    assert line == 1


def test_deep_nesting_is_an_error_not_a_crash(tmp_path):
    for kind in ("IfDefine !NOPE", "IfDefine NOPE", "Files x"):
        name = kind.split()[0]
        text = BASE + f"<{kind}>\n" * 1000 + f"</{name}>\n" * 1000
        msg, f, line = err(tmp_path, text)
        assert "nested more than 200 levels" in msg and f == "httpd.conf", (kind, msg)
    ld(tmp_path, BASE + "<IfDefine !NOPE>\n" * 150 + "</IfDefine>\n" * 150)


@pytest.mark.parametrize("args", ["", "abc", "-1", "0", "a b c d", "on off", "99999999999",
                                  "/nonexistent-h1/x", "http://", "1.5", "'' ''", "\"unclosed"])
def test_every_directive_with_odd_arguments_gives_config_or_located_error(tmp_path, args):
    from httpd_py.config import directives
    for d in directives.TABLE.values():
        if d.is_section or d.handler is None:        # rows without a handler only count args
            continue
        name = d.name
        for ctx in ("{}\n", "<VirtualHost *:1>\n{}\n</VirtualHost>\n",
                    "<Directory />\n{}\n</Directory>\n"):
            text = BASE + ctx.format(f"{name} {args}")
            try:
                ld(tmp_path, text)
            except ConfigError as e:
                assert e.file and e.line, (name, args)


def test_flag_reads_the_first_word_like_apache(tmp_path):
    # Apache's FLAG takes the first word and ignores the rest; no word: "must be On or Off".
    assert ld(tmp_path, BASE + "SSLUseStapling on off\n").main.ssl.stapling.enabled
    assert err(tmp_path, BASE + "SSLUseStapling\n")[0] == "SSLUseStapling must be On or Off"


@pytest.mark.parametrize("text,msg", [
    ("KeepAliveTimeout 1.5\n", "KeepAliveTimeout has wrong format"),
    ("RedisTimeout 2h\n", "RedisTimeout can only be 0 or up to one hour."),
    ("SSLCryptoDevice abc\n", "SSLCryptoDevice: Invalid argument"),
    ("SSLOCSPEnable on off\n", "SSLOCSPEnable: Invalid argument 'off'"),
    ("SSLOpenSSLConfCmd on off\n", "'on': invalid OpenSSL configuration command"),
    ("SSLProxyCipherSuite on off\n", "protocol 'on' not supported"),
])
def test_values_apache_refuses(tmp_path, text, msg):
    assert err(tmp_path, BASE + text)[0].startswith(msg)
