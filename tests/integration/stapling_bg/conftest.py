import pytest

from httpd_py.devtools.pki import make_pki


@pytest.fixture(scope="session")
def pki_bg(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki-bg"), ("a.test", "b.test"),
                    ocsp_url="http://127.0.0.1:9/")
