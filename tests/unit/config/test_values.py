"""The shared strict value parsers: every bad value is a ConfigError, never 0 or a traceback."""
import os

import pytest

from httpd_py.config import values
from httpd_py.config.model import SocacheSpec
from httpd_py.errors import ConfigError


@pytest.mark.parametrize("text,expected", [("0", 0), ("42", 42), ("+7", 7)])
def test_integer_ok(text, expected):
    assert values.integer(text, "X") == expected


@pytest.mark.parametrize("text", ["abc", "", "10x", "1.5", " 1", "0x10", "-1", "１２"])
def test_integer_bad(text):
    with pytest.raises(ConfigError) as e:
        values.integer(text, "Timeout")
    assert "Timeout" in e.value.msg


def test_integer_bounds():
    assert values.integer("-1", "X", minimum=-1) == -1
    with pytest.raises(ConfigError, match="<= 10"):
        values.integer("11", "X", maximum=10)


@pytest.mark.parametrize("text,expected", [("on", True), ("ON", True), ("Off", False)])
def test_flag(text, expected):
    assert values.flag(text, "KeepAlive") is expected


@pytest.mark.parametrize("text", ["yes", "1", "", "onn"])
def test_flag_bad(text):
    with pytest.raises(ConfigError, match="^SSLUseStapling must be On or Off$"):
        values.flag(text, "SSLUseStapling")


def test_seconds():
    assert values.seconds("5", "X") == 5
    assert values.seconds("0.5", "X", fraction=True) == 0.5
    for bad in ("abc", "-1", "5s"):
        with pytest.raises(ConfigError):
            values.seconds(bad, "X")


def test_path_relative_to_server_root():
    assert values.path("logs/x", "/srv/root") == "/srv/root/logs/x"
    assert values.path("/abs/../y", "/srv") == "/y"


@pytest.mark.parametrize("args,expected", [
    (["80"], ("", 80, "")),
    (["127.0.0.1:8443", "https"], ("127.0.0.1", 8443, "https")),
    (["[::1]:443"], ("::1", 443, "")),
    (["*:80"], ("", 80, "")),
])
def test_listen(args, expected):
    assert values.listen(args) == expected


@pytest.mark.parametrize("arg,msg", [("abc", "Port must be specified"),
                                     ("70000", "Invalid address or port"),
                                     ("1.2.3.4:x", "Invalid address or port"),
                                     ("[::1", "missing ']'")])
def test_listen_bad(arg, msg):
    with pytest.raises(ConfigError, match=msg):
        values.listen([arg])


def test_vhost_addr():
    assert values.vhost_addr("*:443") == ("*", 443)
    assert values.vhost_addr("_default_:*") == ("_default_", None)
    assert values.vhost_addr("[::1]:8443") == ("::1", 8443)
    assert values.vhost_addr("a.test") == ("a.test", None)
    with pytest.raises(ConfigError):
        values.vhost_addr("*:99999")


def test_protocols():
    assert values.protocols(["all", "-TLSv1", "-TLSv1.1"]) == {"TLSv1.2", "TLSv1.3"}
    assert values.protocols(["TLSv1.3"]) == {"TLSv1.3"}
    assert values.protocols(["-all", "+TLSv1.2"]) == {"TLSv1.2"}
    assert values.protocols(["SSLv3"]) == frozenset()     # accepted, OpenSSL 3 cannot speak it
    with pytest.raises(ConfigError, match="Illegal protocol 'TLSv9'"):
        values.protocols(["TLSv9"])


def test_socache_shmcb():
    s = values.socache("shmcb:logs/st(128000)", "SSLStaplingCache", "/srv")
    assert s == SocacheSpec(provider="shmcb", raw="shmcb:logs/st(128000)", path="/srv/logs/st",
                            size=128000)
    assert values.socache("shmcb", "X", "/srv") == SocacheSpec(provider="shmcb", raw="shmcb")
    assert values.socache("default:/x", "X", "/").path == "/x"


@pytest.mark.parametrize("arg,msg", [
    ("shmcb:/x(1000)", "size has to be >= 8192 bytes"),
    ("shmcb:/x(abc)", "cache size not numerical"),
    ("shmcb:/x(12k)", "cache size not numerical"),
    ("shmcb:/x(100000", "no closing parenthesis"),
    ("shmcb:/x100000)", "no opening parenthesis"),
    ("shmcb:/x(5000000000)", "size has to be < 4294967295"),
    ("none", "'none' stapling cache not supported"),
    ("foo:bar", "'foo' stapling cache not supported .*mod_socache_foo"),
    ("redis:", "needs a list of servers"),
    ("redis:h:0", "Invalid redis port"),
    ("memcache:a:1,,b", "empty server name"),
])
def test_socache_errors(arg, msg):
    with pytest.raises(ConfigError, match=msg) as e:
        values.socache(arg, "SSLStaplingCache", "/srv")
    assert e.value.msg.startswith("SSLStaplingCache: ")


def test_socache_servers():
    s = values.socache("redis:127.0.0.1,[::1]:7000,cache.test:6380", "X", "/")
    assert s.servers == (("127.0.0.1", 6379), ("::1", 7000), ("cache.test", 6380))
    assert values.socache("memcache:m1", "X", "/").servers == (("m1", 11211),)
    assert values.socache("dbm:st", "X", "/srv").path == "/srv/st"


def test_mutex(tmp_path):
    specs = values.mutex([f"file:{tmp_path}", "ssl-stapling", "ssl-stapling-refresh", "OmitPID"],
                         "/", "/run")
    assert [(s.name, s.mechanism, s.directory, s.omit_pid) for s in specs] == [
        ("ssl-stapling", "file", str(tmp_path), True),
        ("ssl-stapling-refresh", "file", str(tmp_path), True)]
    assert values.mutex(["default"], "/", "/run")[0].name == "default"
    assert values.mutex(["sysvsem", "mpm-accept"], "/", "/run")[0].mechanism == "default"


@pytest.mark.parametrize("args,msg", [
    ([], "requires at least a mechanism"),
    (["foo"], "Invalid Mutex argument foo"),
    (["file:/nonexistent-dir-h1"], "Invalid Mutex directory in argument file:/nonexistent-dir-h1"),
    (["none", "ssl-stapling"], "None is not allowed for mutex type ssl-stapling"),
    (["default", "no-such-mutex"], "Mutex type no-such-mutex is not valid"),
    (["sysvsem:/tmp"], "Invalid Mutex argument"),
])
def test_mutex_errors(args, msg):
    with pytest.raises(ConfigError, match=msg):
        values.mutex(args, "/", "/run")
