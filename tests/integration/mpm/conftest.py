"""Fixtures of the prefork integration tests."""
import pytest

from tests.integration.mpm.harness import EchoServer


@pytest.fixture
def make_server(tmp_path):
    """``make_server(**spec)`` starts an EchoServer in its own directory; all stop at the end."""
    servers: list[EchoServer] = []

    def make(**spec) -> EchoServer:
        d = tmp_path / f"s{len(servers)}"
        d.mkdir()
        srv = EchoServer(d, **spec)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()
