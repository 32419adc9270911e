"""Config edges of issue 13, each against apache2 -t / -S on the same file: what Apache prints
is what httpd-py prints (messages whole, locations, exit status)."""
from __future__ import annotations

import os
import sys
import re

import pytest

from httpd_py import cli
from tests.support.apache import SYNTAX_ERROR_AT, minimal_conf, run_apache
from tests.support.tools import require_tool

BASE = ("mpm_prefork", "authz_core")


def _known_sorted(text: str) -> str:
    """Apache lists the known socache names in hash order (it varies run to run): sort them."""
    return re.sub(r"\(known names: ([^)]*)\)",
                  lambda m: "(known names: " + ",".join(sorted(filter(None, m.group(1).split(","))))
                  + ")", text)


def both(tmp_path, capfd, extra: str, modules=BASE, args=("-t",), files: dict | None = None):
    """Run apache2 and httpd-py on one config; (apache rc, apache text, our rc, our text)."""
    require_tool("apache2")
    (tmp_path / "logs").mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    conf = tmp_path / "httpd.conf"
    conf.write_text(minimal_conf(tmp_path, modules, extra=extra))
    a = run_apache(tmp_path, conf, *args)
    capfd.readouterr()
    rc = cli.main(["-d", str(tmp_path), "-f", str(conf), *args])
    out, err = capfd.readouterr()
    return a.returncode, a.stdout + a.stderr, rc, out + err


def error_text(text: str) -> str:
    """The error's message lines (after the last 'Syntax error on line' header)."""
    lines = [l for l in text.splitlines() if not l.startswith("AH00558")]
    for i in range(len(lines) - 1, -1, -1):
        if SYNTAX_ERROR_AT.search(lines[i]):
            return _known_sorted("\n".join(lines[i + 1:]).strip())
    return _known_sorted("\n".join(lines).strip())


# -- socache and Mutex providers of modules that are not loaded --------------------------------

SOCACHE_CASES = [
    # (modules loaded besides BASE, directive line)
    (("ssl", "socache_shmcb", "socache_dbm", "socache_redis"), "SSLStaplingCache memcache:127.0.0.1:1"),
    (("ssl", "socache_shmcb"), "SSLSessionCache memcache:127.0.0.1"),
    (("ssl", "socache_dbm"), "SSLStaplingCache shmcb:logs/st(128000)"),
    (("ssl", "socache_dbm"), "SSLStaplingCache default"),
    (("ssl", "socache_shmcb"), "SSLStaplingCache SHMCB:logs/st(128000)"),
    (("ssl", "socache_shmcb"), "SSLStaplingCache none"),
    (("ssl", "socache_shmcb", "socache_memcache"), "SSLStaplingCache memcache:127.0.0.1:1"),
    (("ssl", "socache_shmcb"), "SSLStaplingCache default"),
]


@pytest.mark.parametrize("mods,line", SOCACHE_CASES)
def test_socache_provider_of_a_module_not_loaded(tmp_path, capfd, mods, line):
    a_rc, a_out, o_rc, o_out = both(tmp_path, capfd, line + "\n", BASE + mods)
    assert (o_rc != 0) == (a_rc != 0), (a_out, o_out)
    if a_rc:
        assert error_text(o_out) == error_text(a_out)
        assert SYNTAX_ERROR_AT.findall(o_out)[-1] == SYNTAX_ERROR_AT.findall(a_out)[-1]


MUTEX_CASES = [
    ((), "Mutex default rewrite-map"),
    (("rewrite",), "Mutex default rewrite-map"),
    ((), "Mutex default authdigest-client"),
    (("auth_digest",), "Mutex default authdigest-client"),
    (("auth_digest",), "Mutex default authdigest-opaque"),       # no module registers it
    (("socache_shmcb",), "Mutex default shmcb-socache"),
    (("ssl",), "Mutex file:logs ssl-stapling ssl-cache"),
    ((), "Mutex default cache-socache"),
    ((), "Mutex default mpm-accept watchdog-callback"),
]


@pytest.mark.parametrize("mods,line", MUTEX_CASES)
def test_mutex_type_of_a_module_not_loaded(tmp_path, capfd, mods, line):
    a_rc, a_out, o_rc, o_out = both(tmp_path, capfd, line + "\n", BASE + mods)
    assert (o_rc != 0) == (a_rc != 0), (a_out, o_out)
    if a_rc:
        assert error_text(o_out) == error_text(a_out)


# -- an error inside nested Includes: the chain, outermost first --------------------------------

INCLUDE_CASES = {
    "missing": ("Include conf.d/site.conf\n", {"conf.d/site.conf": "# c\nInclude nope.conf\n"}),
    "deeper": ("Include conf.d/site.conf\n", {"conf.d/site.conf": "# c\nInclude conf.d/d.conf\n",
                                              "conf.d/d.conf": "\n\nInclude nope2.conf\n"}),
    "section": ("Include conf.d/site.conf\n",
                {"conf.d/site.conf": "<VirtualHost *:80>\n</Directory>\n"}),
    "in-ifmodule": ("<IfModule mpm_prefork_module>\nInclude conf.d/*.conf\n</IfModule>\n",
                    {"conf.d/a.conf": "# ok\n", "conf.d/b.conf": "# c\nInclude nope.conf\n"}),
    "walk-phase": ("Include conf.d/site.conf\n", {"conf.d/site.conf": "# c\nBogusDirective x\n"}),
}


@pytest.mark.parametrize("name", sorted(INCLUDE_CASES))
def test_nested_include_error_names_the_chain_outermost_first(tmp_path, capfd, name):
    extra, files = INCLUDE_CASES[name]
    a_rc, a_out, o_rc, o_out = both(tmp_path, capfd, extra, files=files)
    assert a_rc == 1 and o_rc == 1
    assert o_out.strip() == a_out.strip().replace("apache2: ", "httpd-py: ", 1)


# -- -S: names as written, plain aliases before wildcard ones ------------------------------------

NAMES_CONF = """<VirtualHost *:18080>
ServerName WWW.Example.COM
ServerAlias *.Foo.test Bar.TEST ${UNDEFINED} [ab].example.com www.example.org ?.x.test
ServerAlias Zed.test
</VirtualHost>
<VirtualHost *:18080>
ServerName ${NOPE}.test:8080
ServerAlias b.test *.B.test
</VirtualHost>
<VirtualHost 127.0.0.1:18081>
ServerName Single.Example
</VirtualHost>
"""


def test_dash_S_prints_names_as_written_and_aliases_in_apaches_order(tmp_path, capfd):
    from tests.support.apache import vhost_lines
    a_rc, a_out, o_rc, o_out = both(tmp_path, capfd, NAMES_CONF, args=("-S",))
    assert a_rc == 0 and o_rc == 0
    assert vhost_lines(o_out) == vhost_lines(a_out)
    assert "alias ${UNDEFINED}" in o_out and "namevhost WWW.Example.COM" in o_out


# -- -V: HTTPD_ROOT is the ServerRoot this command line gets ------------------------------------

def _v_lines(text: str) -> dict[str, str]:
    return dict(re.findall(r'^ -D (HTTPD_ROOT|SERVER_CONFIG_FILE|DEFAULT_ERRORLOG)="([^"]*)"$', text, re.M))


def _server_root_of_S(text: str) -> str:
    return re.search(r'^ServerRoot: "([^"]*)"$', text, re.M).group(1)


def test_dash_V_says_the_server_root_httpd_py_uses(tmp_path, capfd, monkeypatch):
    require_tool("apache2")
    a = run_apache(tmp_path, tmp_path / "none.conf", "-V")
    apache = _v_lines(a.stdout)
    assert set(apache) == {"HTTPD_ROOT", "SERVER_CONFIG_FILE", "DEFAULT_ERRORLOG"}
    # a config without ServerRoot, named three ways: -f absolute, -f relative to the cwd, -d + -f
    (tmp_path / "conf" / "logs").mkdir(parents=True)
    conf = tmp_path / "conf" / "site.conf"
    conf.write_text("Listen 127.0.0.1:18080\nErrorLog logs/error.log\nPidFile logs/pid\n")
    monkeypatch.chdir(tmp_path)
    for argv in (["-f", str(conf)], ["-f", "conf/site.conf"], ["-d", str(tmp_path / "conf"), "-f", "site.conf"]):
        capfd.readouterr()
        assert cli.main([*argv, "-V"]) == 0
        ours = _v_lines(capfd.readouterr().out)
        assert set(ours) == set(apache)                     # the same keys, Apache's format
        assert cli.main([*argv, "-S"]) == 0
        assert ours["HTTPD_ROOT"] == _server_root_of_S(capfd.readouterr().out) == str(tmp_path / "conf")
        assert os.path.join(ours["HTTPD_ROOT"], ours["SERVER_CONFIG_FILE"]) == str(conf)
    assert cli.main(["-V"]) == 0
    assert _v_lines(capfd.readouterr().out)["HTTPD_ROOT"] == cli.DEFAULT_ROOT


# -- DefaultRuntimeDir that is not a directory: Apache's words, then what was tried -------------

def test_default_runtime_dir_error_names_the_server_root(tmp_path, capfd):
    a_rc, a_out, o_rc, o_out = both(tmp_path, capfd, "DefaultRuntimeDir no/such/dir\n")
    assert a_rc == 1 and o_rc == 1
    apache_msg = a_out.strip().split(": ", 2)[-1].split("\n")[-1]
    assert apache_msg.endswith("DefaultRuntimeDir must be a valid directory, absolute or "
                               "relative to ServerRoot")
    # the same words, then (an improvement, docs/interop.md) the directory and the ServerRoot
    assert (f"DefaultRuntimeDir must be a valid directory, absolute or relative to ServerRoot "
            f"({tmp_path}/no/such/dir is not a directory; ServerRoot {tmp_path})") in o_out
    assert SYNTAX_ERROR_AT.findall(o_out)[-1] == SYNTAX_ERROR_AT.findall(a_out)[-1]


# -- -X (and -DFOREGROUND) while a server runs: "already running", status 0, as Apache ----------

def test_dash_X_while_the_server_runs(tmp_path):
    import subprocess
    from tests.support.apache import apache_env, apache_serving
    from tests.support.tools import free_port, port_accepting, wait_until
    require_tool("apache2")
    port = free_port()
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "httpd.conf"
    conf.write_text(minimal_conf(tmp_path, BASE, listen=f"127.0.0.1:{port}"))
    pid_file = tmp_path / "logs" / "pid"
    runs = {}
    with apache_serving(conf, tmp_path, port, pid_file):
        for flag in ("-X", "-DFOREGROUND"):
            r = run_apache(tmp_path, conf, flag, env=apache_env(APACHE_RUN_DIR=str(tmp_path),
                                                                APACHE_LOCK_DIR=str(tmp_path),
                                                                APACHE_LOG_DIR=str(tmp_path)))
            runs["apache", flag] = (r.returncode, r.stdout.strip(), pid_file.read_text().strip())
    ours = [sys.executable, "-m", "httpd_py", "-d", str(tmp_path), "-f", str(conf)]
    assert subprocess.run([*ours, "-k", "start"], capture_output=True, timeout=60).returncode == 0
    try:
        for flag in ("-X", "-DFOREGROUND"):
            r = subprocess.run([*ours, flag], capture_output=True, text=True, timeout=60)
            runs["ours", flag] = (r.returncode, r.stdout.strip(), pid_file.read_text().strip())
    finally:
        subprocess.run([*ours, "-k", "stop"], capture_output=True, timeout=60)
        wait_until(lambda: not port_accepting(port), 30, what="httpd-py stopped")
    for (who, flag), (rc, out, pid) in runs.items():
        name = "httpd" if who == "apache" else "httpd-py"
        assert (rc, out) == (0, f"{name} (pid {pid}) already running"), (who, flag, out)
