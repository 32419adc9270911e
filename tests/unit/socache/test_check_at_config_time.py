"""socache.check: a provider's own argument checks run at config time (-t and every load of
the server) and name the directive's file:line; the shmcb limits live in one place."""
from __future__ import annotations

import pytest

from httpd_py import cli, socache
from httpd_py.config import load
from httpd_py.config import model
from httpd_py.errors import ConfigError
from httpd_py.socache import shmcb


def conf(tmp_path, cache: str):
    (tmp_path / "logs").mkdir(exist_ok=True)
    p = tmp_path / "httpd.conf"
    p.write_text(f"Listen 127.0.0.1:18443\n# a comment\nSSLStaplingCache {cache}\n")
    return p


def test_geometry_error_is_located_at_the_directive(tmp_path):
    p = conf(tmp_path, "shmcb:logs/st(9000)")
    cfg = load(str(p), server_root=str(tmp_path))
    assert cfg.where("SSLStaplingCache").line == 3
    with pytest.raises(ConfigError) as e:
        socache.check(cfg)
    assert (e.value.file, e.value.line) == (str(p), 3)
    assert e.value.msg == ("SSLStaplingCache: Invalid argument: shmcb size 9000 leaves too few "
                           "index entries per subcache")


def test_cli_t_reports_it_with_apaches_two_lines(tmp_path, capfd):
    p = conf(tmp_path, "shmcb:logs/st(9000)")
    assert cli.main(["-d", str(tmp_path), "-f", str(p), "-t"]) == 1
    err = capfd.readouterr().err
    assert f"AH00526: Syntax error on line 3 of {p}:\nSSLStaplingCache: Invalid argument" in err


@pytest.mark.parametrize("cache", ["shmcb:logs/st(512000)", "shmcb", "dbm:logs/x",
                                   "redis:127.0.0.1:6379", "memcache:127.0.0.1"])
def test_good_providers_pass(tmp_path, cache):
    socache.check(load(str(conf(tmp_path, cache)), server_root=str(tmp_path)))


def test_shmcb_limits_have_one_source():
    assert (shmcb.MIN_SIZE, shmcb.MAX_SIZE, shmcb.DEFAULT_SIZE) == (
        model.SHMCB_MIN_SIZE, model.SHMCB_MAX_SIZE, model.SHMCB_DEFAULT_SIZE)
    assert model.SocacheSpec("shmcb").size == model.SHMCB_DEFAULT_SIZE
