"""The httpd-py command line as a user meets it: a real process, its stdout, stderr and exit
code.  Errors are Apache's two lines and exit 1, never a traceback."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from httpd_py.devtools import pki as pkimod

EXE = [sys.executable, "-m", "httpd_py"]


def run(*args, cwd=None, env=None):
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    p = pkimod.make_pki(root / "pki", ("a.test", "b.test"), kinds=("rsa",))
    (root / "logs").mkdir()
    (root / "conf.d").mkdir()
    (root / "conf.d" / "b.conf").write_text(
        "<VirtualHost *:8443>\n    ServerName b.test\n    ServerAlias *.b.test www.b.test\n"
        "    SSLEngine on\n"
        f"    SSLCertificateFile {p.leaf('b.test').cert_file}\n"
        f"    SSLCertificateKeyFile {p.leaf('b.test').key_file}\n</VirtualHost>\n")
    (root / "httpd.conf").write_text(
        "ServerName main.test\nListen 127.0.0.1:8443\nPidFile logs/httpd.pid\n"
        "SSLStaplingCache shmcb:logs/stapling(128000)\nSSLUseStapling on\n"
        "<VirtualHost *:8443>\n    ServerName a.test\n    SSLEngine on\n"
        f"    SSLCertificateFile {p.leaf('a.test').cert_file}\n"
        f"    SSLCertificateKeyFile {p.leaf('a.test').key_file}\n</VirtualHost>\n"
        "Include conf.d/*.conf\n")
    return root, p


def test_t_syntax_ok(site):
    root, _ = site
    # (the site staples with no responder: the preflight is tests/integration/stapling's)
    p = run("-f", str(root / "httpd.conf"), "-t", "-D", "NO_STAPLING_PREFLIGHT")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "Syntax OK\n")


def test_python_m_and_console_script_agree(site):
    root, _ = site
    script = Path(sys.executable).with_name("httpd-py")
    p = subprocess.run([str(script), "-d", str(root), "-f", "httpd.conf", "-t",
                        "-DNO_STAPLING_PREFLIGHT"],
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert (p.returncode, p.stderr) == (0, "Syntax OK\n")


def test_S_output(site):
    root, _ = site
    p = run("-d", str(root), "-f", "httpd.conf", "-S")
    assert p.returncode == 0, p.stderr
    conf = root / "httpd.conf"
    assert p.stdout.splitlines()[:8] == [
        "VirtualHost configuration:",
        "*:8443                 is a NameVirtualHost",
        f"         default server a.test ({conf}:6)",
        f"         port 8443 namevhost a.test ({conf}:6)",
        f"         port 8443 namevhost b.test ({root}/conf.d/b.conf:1)",
        "                 alias www.b.test",          # plain aliases first, as Apache
        "                 wild alias *.b.test",
        f"ServerRoot: \"{root}\"",
    ]
    assert f"PidFile: \"{root}/logs/httpd.pid\"" in p.stdout
    assert "Mutex ssl-stapling-refresh: using_defaults" in p.stdout
    assert "Define: DUMP_VHOSTS" in p.stdout and "Define: DUMP_RUN_CFG" in p.stdout


def test_D_dumps_and_M(site):
    root, _ = site
    p = run("-f", str(root / "httpd.conf"), "-t", "-D", "DUMP_INCLUDES")
    assert p.stdout.splitlines() == ["Included configuration files:",
                                     f"  (*) {root}/httpd.conf",
                                     f"    (12) {root}/conf.d/b.conf"]
    p = run("-f", str(root / "httpd.conf"), "-DDUMP_RUN_CFG", "-t")
    assert p.stdout.startswith(f"ServerRoot: \"{root}\"\n") and "VirtualHost" not in p.stdout
    p = run("-f", str(root / "httpd.conf"), "-M")
    assert p.stdout.startswith("Loaded Modules:\n core_module (static)\n")
    assert " ssl_module (static)" in p.stdout


def test_L_l_v_V_h():
    p = run("-L")
    assert p.returncode == 0
    assert "SSLUseStapling (mod_ssl.c)\n\tStaple OCSP responses in handshakes\n" \
           "\tAllowed in server config, virtual host\n" in p.stdout
    assert "SSLStaplingRefresh (mod_ssl.c) [httpd-py]" in p.stdout
    assert run("-l").stdout.startswith("Compiled in modules:\n  core.c\n")
    assert run("-v").stdout.startswith("Server version: httpd-py/")
    assert "Server MPM:     prefork" in run("-V").stdout
    assert run("-h").stdout.startswith("Usage: httpd-py")


@pytest.mark.parametrize("text,line,msg", [
    ("Listen 80\nFooBar on\n", 2, "Invalid command 'FooBar', perhaps misspelled or defined by "
     "a module not included in the server configuration"),
    ("Listen 80\n<VirtualHost *:80>\n", 2, None),
    ("Listen 80\nTimeout abc\n", 2, "Timeout has wrong format: 'abc'"),
])
def test_syntax_error_format(tmp_path, text, line, msg):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    p = run("-f", str(conf), "-t")
    assert p.returncode == 1 and p.stdout == ""
    first, second = p.stderr.splitlines()[:2]
    assert first == f"AH00526: Syntax error on line {line} of {conf}:"
    if msg:
        assert second.startswith(msg)
    assert "Traceback" not in p.stderr


def test_t_runs_post_config_checks(tmp_path, site):
    _, p = site
    conf = tmp_path / "httpd.conf"
    conf.write_text("Listen 127.0.0.1:8443\n<VirtualHost *:8443>\nSSLEngine on\nSSLUseStapling on\n"
                    f"SSLCertificateFile {p.leaf('a.test').cert_file}\n"
                    f"SSLCertificateKeyFile {p.leaf('a.test').key_file}\n</VirtualHost>\n")
    r = run("-f", str(conf), "-t")
    assert r.returncode == 1
    assert r.stderr.splitlines()[:2] == [
        f"AH00526: Syntax error on line 4 of {conf}:",
        "SSLStapling: no stapling cache available (SSLUseStapling on needs SSLStaplingCache)"]


def test_C_c_and_D(tmp_path):
    conf = tmp_path / "httpd.conf"
    conf.write_text("Listen 127.0.0.1:8080\n<IfDefine FLAG>\nBogus\n</IfDefine>\n")
    assert run("-f", str(conf), "-t", "-D", "FLAG").returncode == 1
    assert run("-f", str(conf), "-t").returncode == 0
    r = run("-f", str(conf), "-t", "-c", "Bogus2")
    assert r.stderr.startswith("AH00526: Syntax error on line 1 of -c/-C directives:")
    r = run("-f", str(conf), "-C", "Define FLAG", "-t")
    assert r.returncode == 1 and f"line 3 of {conf}" in r.stderr


def test_bad_usage_and_missing_file_no_traceback(tmp_path):
    r = run("-Q")
    assert r.returncode == 1 and "illegal option -- Q" in r.stderr and "Usage:" in r.stderr
    r = run("-k", "explode")
    assert r.returncode == 1 and "unknown -k action" in r.stderr
    r = run("-f", str(tmp_path / "missing.conf"), "-t")
    assert r.returncode == 1 and "Could not open configuration file" in r.stderr
    assert "Traceback" not in r.stderr
    d = tmp_path / "dir.conf"
    d.mkdir()
    r = run("-f", str(d), "-t")
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_binary_garbage_config_no_traceback(tmp_path):
    conf = tmp_path / "garbage.conf"
    conf.write_bytes(bytes(range(256)) * 4)
    r = run("-f", str(conf), "-t")
    assert r.returncode == 1 and r.stderr.startswith("AH00526: Syntax error on line ")
    assert "Traceback" not in r.stderr


def test_E_sends_startup_messages_to_a_file(tmp_path):
    conf = tmp_path / "httpd.conf"
    conf.write_text("Listen 127.0.0.1:8080\nServerAdmin ${UNDEFINED_H1_CLI}\nBogus\n")
    log = tmp_path / "startup.log"
    r = run("-f", str(conf), "-t", "-E", str(log))
    assert r.returncode == 1 and r.stderr == ""
    text = log.read_text()
    assert "HP00101: Config variable ${UNDEFINED_H1_CLI} is not defined" in text
    assert f"AH00526: Syntax error on line 3 of {conf}:" in text


def test_stapling_status_subcommand_is_dispatched(tmp_path):
    conf = tmp_path / "httpd.conf"
    conf.write_text("Listen 127.0.0.1:8080\n")
    r = run("stapling-status", "-f", str(conf))
    assert r.returncode == 0 and "stapling is off" in r.stdout, r.stderr
    r = run("stapling-status")
    assert r.returncode == 2 and "usage: httpd-py stapling-status" in r.stderr
    assert "Traceback" not in r.stderr
