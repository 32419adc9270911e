import pytest

from httpd_py.devtools.pki import make_pki


@pytest.fixture(scope="session")
def pki_bg(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki-bg"), ("a.test", "b.test"),
                    ocsp_url="http://127.0.0.1:9/")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """One PKI per test module; ms.test is Must-Staple; AIA points nowhere (each test's responder
    is reached through SSLStaplingForceURL)."""
    return make_pki(tmp_path_factory.mktemp("pki"), ("a.test", "b.test", "ms.test"),
                    ocsp_url="http://127.0.0.1:9/", must_staple_names=("ms.test",))
