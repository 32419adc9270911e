import pytest

from httpd_py.devtools.pki import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """AIA points nowhere: each test's responder is reached through SSLStaplingForceURL."""
    return make_pki(tmp_path_factory.mktemp("pki-fleet"), ("a.test",), ocsp_url="http://127.0.0.1:9/")
