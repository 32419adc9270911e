"""-S vhost lines, httpd-py beside apache2, on configurations with every shape Apache prints:
name-based groups with aliases and wildcard aliases, IP-specific and IPv6 addresses (ordered
by Apache's address hash), _default_, a vhost read through Include, a vhost without ServerName."""
import pytest

from httpd_py import cli
from tests.support.apache import load_modules, minimal_conf, run_apache, vhost_lines
from tests.support.tools import require_tool

CONFIGS = {
    "mixed": """
Include inc/*.conf
Listen 127.0.0.1:18443
<VirtualHost *:18080>
ServerName a.test
ServerAlias www.a.test *.a.test
</VirtualHost>
<VirtualHost *:18080>
ServerName c.test
</VirtualHost>
<VirtualHost 127.0.0.1:18443 [::1]:18443>
</VirtualHost>
<VirtualHost _default_:*>
ServerName d.test
</VirtualHost>
<VirtualHost 10.1.2.3:80 192.168.7.9:80 127.0.0.2:80>
ServerName ips.test
</VirtualHost>
<VirtualHost 10.1.2.3:80>
ServerName ips2.test
</VirtualHost>
""",
    "single": "<VirtualHost *:18080>\nServerName only.test\nServerAlias alias.test\n</VirtualHost>\n",
    "none": "",
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_vhost_lines_match_apache(tmp_path, name, capfd):
    require_tool("apache2")
    (tmp_path / "inc").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "inc" / "b.conf").write_text("<VirtualHost *:443>\nServerName b.test\n"
                                             "</VirtualHost>\n")
    conf = tmp_path / "httpd.conf"
    conf.write_text(minimal_conf(tmp_path, extra=CONFIGS[name]))
    a = run_apache(tmp_path, conf, "-S")
    assert a.returncode == 0, a.stderr
    assert cli.main(["-d", str(tmp_path), "-f", str(conf), "-S"]) == 0
    ours = capfd.readouterr().out
    assert vhost_lines(ours) == vhost_lines(a.stdout)


def test_run_cfg_matches_apache(tmp_path, capfd):
    """-D DUMP_RUN_CFG: the same lines (Apache prints mutexes in hash order: compared as sets)."""
    require_tool("apache2")
    (tmp_path / "logs").mkdir()
    (tmp_path / "locks").mkdir()
    conf = tmp_path / "httpd.conf"
    conf.write_text(f"ServerRoot {tmp_path}\n"
                    + load_modules("mpm_prefork", "ssl", "socache_shmcb") + "\n"
                    f"ServerName localhost\nErrorLog {tmp_path}/logs/e.log\n"
                    f"DocumentRoot {tmp_path}\nPidFile logs/httpd.pid\n"
                    f"Mutex file:{tmp_path}/logs default\n"
                    f"Mutex flock:{tmp_path}/locks ssl-stapling OmitPID\n"
                    f"Mutex fcntl:locks mpm-accept\nDefine WITH_VALUE v1\nDefine BARE\n"
                    "User nobody\nGroup nogroup\nListen 127.0.0.1:18080\n")
    args = ("-t", "-D", "DUMP_RUN_CFG")
    a = run_apache(tmp_path, conf, *args)
    assert a.returncode == 0, a.stderr
    assert cli.main(["-d", str(tmp_path), "-f", str(conf), *args]) == 0
    ours = capfd.readouterr().out
    assert sorted(ours.splitlines()) == sorted(a.stdout.splitlines())
