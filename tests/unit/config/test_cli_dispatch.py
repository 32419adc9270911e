"""How the CLI hands -k/-X/-DFOREGROUND to httpd_py.server.run, and that the load_config it
passes re-reads the file with the same options each time (what a restart needs).  The server
module is replaced by a recorder here; the real server's processes are tested by its owner."""
import sys
import types

import pytest

from httpd_py import cli
from httpd_py.config.model import ServerConfig
from httpd_py.errors import ConfigError


@pytest.fixture
def recorder(monkeypatch):
    calls = []
    fake = types.ModuleType("httpd_py.server")

    def run(load_config, action, *, foreground, single_process):
        calls.append((load_config, action, foreground, single_process))
        return 0
    fake.run = run
    monkeypatch.setitem(sys.modules, "httpd_py.server", fake)
    import httpd_py
    monkeypatch.setattr(httpd_py, "server", fake, raising=False)
    return calls


@pytest.mark.parametrize("args,action,foreground,single", [
    ([], "start", False, False),
    (["-k", "start"], "start", False, False),
    (["-k", "graceful"], "graceful", False, False),
    (["-k", "graceful-stop"], "graceful-stop", False, False),
    (["-k", "stop"], "stop", False, False),
    (["-k", "restart"], "restart", False, False),
    (["-DFOREGROUND"], "start", True, False),
    (["-D", "FOREGROUND", "-k", "start"], "start", True, False),
    (["-X"], "start", True, True),
])
def test_actions(tmp_path, recorder, args, action, foreground, single):
    conf = tmp_path / "httpd.conf"
    conf.write_text("Listen 127.0.0.1:18080\nServerAdmin one\n")
    assert cli.main(["-f", str(conf), *args]) == 0
    load_config, got_action, got_fg, got_single = recorder[0]
    assert (got_action, got_fg, got_single) == (action, foreground, single)
    cfg = load_config()
    assert isinstance(cfg, ServerConfig) and cfg.main.server_admin == "one"
    conf.write_text("Listen 127.0.0.1:18080\nServerAdmin two\n")
    assert load_config().main.server_admin == "two"            # re-read on every call
    conf.write_text("Listen 127.0.0.1:18080\nBogus\n")
    with pytest.raises(ConfigError):
        load_config()


def test_config_error_from_server_run_is_printed(tmp_path, monkeypatch, capsys):
    fake = types.ModuleType("httpd_py.server")

    def run(load_config, action, *, foreground, single_process):
        return load_config() and 0
    fake.run = run
    monkeypatch.setitem(sys.modules, "httpd_py.server", fake)
    import httpd_py
    monkeypatch.setattr(httpd_py, "server", fake, raising=False)
    conf = tmp_path / "httpd.conf"
    conf.write_text("Listen 80\nBogus\n")
    assert cli.main(["-f", str(conf), "-k", "start"]) == 1
    assert capsys.readouterr().err.startswith(f"AH00526: Syntax error on line 2 of {conf}:\n")
