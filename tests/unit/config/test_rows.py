"""Typed directive rows: a row names the model field it fills, its parser and its default; the
table is the one place a default is stated (issue 13)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from httpd_py.config import directives, load, model, values
from httpd_py.config.directives import base
from httpd_py.errors import ConfigError

# Model fields whose dataclass default is a placeholder for objects built by hand (tests): a
# loaded config always gets the row's value (ServerRoot-relative ones resolved at load).
PLACEHOLDERS = {"document_root", "error_log", "server.pid_file", "server.default_runtime_dir"}


def typed_rows():
    return [r for r in directives.TABLE.values() if r.field]


def test_every_field_names_a_model_field():
    assert len(typed_rows()) >= 45
    for r in typed_rows():
        assert isinstance(directives.model_field(r.field), dataclasses.Field), r.name


def test_an_unknown_field_fails_when_the_row_is_built():
    with pytest.raises(directives.UnknownField, match="no field 'stapling_timout'"):
        directives.Directive("X", "mod_ssl.c", "SV", directives.TAKE1, "", "x",
                             field="ssl.stapling_timout", parse=base.seconds())
    with pytest.raises(directives.UnknownField):
        directives.Directive("X", "core.c", "S", directives.TAKE1, "", "x",
                             field="server.prefork.nope", parse=base.integer())
    with pytest.raises(ValueError, match="need field="):
        directives.Directive("X", "core.c", "S", directives.TAKE1, "", "x", value=1)


def test_an_unknown_field_fails_the_import(tmp_path):
    """A misspelled field in a row file stops the table's build (at `import
    httpd_py.config.directives`): stapling.py with one field misspelled, its rows built."""
    code = ("import httpd_py.config.directives.stapling as s, inspect\n"
            "src = inspect.getsource(s).replace('ssl.stapling.enabled', 'ssl.stapling.enabld')\n"
            "ns = {'__name__': 'x'}\n"
            "exec(compile(src, 'stapling.py', 'exec'), ns)\n"
            "ns['rows']()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "UnknownField" in r.stderr and "enabld" in r.stderr


def test_each_field_default_is_stated_once_and_the_model_agrees():
    owners: dict[str, str] = {}
    for r in typed_rows():
        if r.value is directives.NO_DEFAULT:
            continue
        assert r.field not in owners, (r.name, owners.get(r.field))
        owners[r.field] = r.name
        if r.field in PLACEHOLDERS:
            continue
        f = directives.model_field(r.field)
        have = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert have == r.value, (r.name, r.field, have, r.value)


def test_docs_default_text_comes_from_the_value():
    t = directives.TABLE
    assert t["keepalive"].default == "On" and t["sslusestapling"].default == "Off"
    assert t["timeout"].default == "60" and t["errorlog"].default == "logs/error_log"
    assert t["sslprotocol"].default == "TLSv1.2 TLSv1.3"
    assert t["maxclients"].default == t["maxrequestworkers"].default == "256"
    assert t["sslstaplingresponsemaxage"].default == "-1 (no limit)"     # described, value None


def test_a_load_takes_its_defaults_from_the_rows(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "httpd.conf").write_text(f"ServerRoot {tmp_path}\nListen 127.0.0.1:8080\n")
    cfg = load(str(tmp_path / "httpd.conf"))
    per_server, server_wide = directives.field_defaults(str(tmp_path))
    assert cfg.pid_file == server_wide["pid_file"] == str(tmp_path / "logs" / "httpd.pid")
    assert cfg.main.error_log == per_server["error_log"] == str(tmp_path / "logs" / "error_log")
    assert cfg.main.document_root == per_server["document_root"]
    assert cfg.prefork.listen_backlog == server_wide["prefork.listen_backlog"]
    assert cfg.main.ssl.stapling.responder_timeout == per_server["ssl.stapling.responder_timeout"]
    assert cfg.redis_timeout == server_wide["redis_timeout"]
    assert cfg.default_runtime_dir == str(tmp_path / "logs")


def test_derived_handlers_write_the_field(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "httpd.conf").write_text(
        f"ServerRoot {tmp_path}\nListen 127.0.0.1:8080\nSSLStaplingResponderTimeout 3\n"
        "SSLStaplingRefresh On-Demand\nStartServers 2\nGracefulShutdownTimeout 7\n"
        "KeepAliveTimeout 250ms\nTimeout 1ms\n")
    cfg = load(str(tmp_path / "httpd.conf"))
    assert cfg.main.ssl.stapling.responder_timeout == 3.0
    assert cfg.main.ssl.stapling.refresh == "on-demand"
    assert cfg.prefork.start_servers == 2 and cfg.prefork.graceful_shutdown_timeout == 7
    assert cfg.main.keep_alive_timeout == 0.25 and cfg.main.timeout == 1


@pytest.mark.parametrize("text,kw,want", [
    ("5", {}, 5), ("+5", {}, 5), ("0.5", {"fraction": True}, 0.5), ("5", {"units": True}, 5.0),
    ("250ms", {"units": True}, 0.25), ("2mi", {"units": True}, 120.0),
    ("1H", {"units": True}, 3600.0)])
def test_the_one_seconds_parser(text, kw, want):
    assert values.seconds(text, "X", **kw) == want


@pytest.mark.parametrize("text,kw,msg", [
    ("abc", {}, "X: invalid argument 'abc' (a whole number of seconds)"),
    ("-1", {}, "X: invalid argument '-1' (must be >= 0)"),
    ("5s", {}, "X: invalid argument '5s'"),
    ("1.5", {"units": True}, "X has wrong format: '1.5'"),
    ("0", {"minimum": 1}, "X: invalid argument '0' (must be >= 1)")])
def test_the_one_seconds_parser_refuses(text, kw, msg):
    with pytest.raises(ConfigError) as e:
        values.seconds(text, "X", **kw)
    assert str(e.value).startswith(msg)


def test_model_field_walks_nested_dataclasses():
    assert directives.model_field("ssl.stapling.enabled").name == "enabled"
    assert directives.model_field("server.prefork.server_limit").name == "server_limit"
    assert directives.setting_key("server.prefork.server_limit") == (True, "prefork.server_limit")
    assert directives.setting_key("ssl.engine") == (False, "ssl.engine")
    assert model.StaplingConfig().enabled is False
