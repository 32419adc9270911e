"""-S vhost lines, httpd-py beside apache2, on configurations with every shape Apache prints:
name-based groups with aliases and wildcard aliases, IP-specific and IPv6 addresses (ordered
by Apache's address hash), _default_, a vhost read through Include, a vhost without ServerName."""
import os
import subprocess

import pytest

from httpd_py import cli
from tests.support.tools import require_tool

MODS = "/usr/lib/apache2/modules"

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


def vhost_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("VirtualHost configuration:")
    end = next(i for i, l in enumerate(lines) if l.startswith("ServerRoot:"))
    return lines[start:end]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_vhost_lines_match_apache(tmp_path, name, capfd):
    apache = require_tool("apache2")
    (tmp_path / "inc").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "inc" / "b.conf").write_text("<VirtualHost *:443>\nServerName b.test\n"
                                             "</VirtualHost>\n")
    conf = tmp_path / "httpd.conf"
    conf.write_text(f"ServerRoot {tmp_path}\n"
                    f"LoadModule mpm_prefork_module {MODS}/mod_mpm_prefork.so\n"
                    f"ServerName localhost\nErrorLog {tmp_path}/logs/e.log\n"
                    f"PidFile {tmp_path}/logs/pid\nMutex file:{tmp_path}/logs default\n"
                    "Listen 127.0.0.1:18080\n" + CONFIGS[name])
    a = subprocess.run([apache, "-d", str(tmp_path), "-f", str(conf), "-S"], capture_output=True,
                       text=True, timeout=30, env={"PATH": os.environ.get("PATH", "")})
    assert a.returncode == 0, a.stderr
    assert cli.main(["-d", str(tmp_path), "-f", str(conf), "-S"]) == 0
    ours = capfd.readouterr().out
    assert vhost_lines(ours) == vhost_lines(a.stdout)


def test_run_cfg_matches_apache(tmp_path, capfd):
    """-D DUMP_RUN_CFG: the same lines (Apache prints mutexes in hash order: compared as sets)."""
    apache = require_tool("apache2")
    (tmp_path / "logs").mkdir()
    (tmp_path / "locks").mkdir()
    conf = tmp_path / "httpd.conf"
    conf.write_text(f"ServerRoot {tmp_path}\n"
                    f"LoadModule mpm_prefork_module {MODS}/mod_mpm_prefork.so\n"
                    f"LoadModule ssl_module {MODS}/mod_ssl.so\n"
                    f"LoadModule socache_shmcb_module {MODS}/mod_socache_shmcb.so\n"
                    f"ServerName localhost\nErrorLog {tmp_path}/logs/e.log\n"
                    f"DocumentRoot {tmp_path}\nPidFile logs/httpd.pid\n"
                    f"Mutex file:{tmp_path}/logs default\n"
                    f"Mutex flock:{tmp_path}/locks ssl-stapling OmitPID\n"
                    f"Mutex fcntl:locks mpm-accept\nDefine WITH_VALUE v1\nDefine BARE\n"
                    "User nobody\nGroup nogroup\nListen 127.0.0.1:18080\n")
    args = ["-d", str(tmp_path), "-f", str(conf), "-t", "-D", "DUMP_RUN_CFG"]
    a = subprocess.run([apache, *args], capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ.get("PATH", "")})
    assert a.returncode == 0, a.stderr
    assert cli.main(args) == 0
    ours = capfd.readouterr().out
    assert sorted(ours.splitlines()) == sorted(a.stdout.splitlines())
