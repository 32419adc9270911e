"""httpd-py's version, and the Server header / signature token ServerTokens makes of it."""
from __future__ import annotations

VERSION = "0.1.0"
PRODUCT = "httpd-py"


def server_token(tokens: str = "full") -> str:
    """The Server header for a ServerTokens setting, shaped as Apache's (ap_get_server_banner):
    Prod "httpd-py", Major "httpd-py/0", Minor "httpd-py/0.1", Min "httpd-py/0.1.0", OS and Full
    "httpd-py/0.1.0 (Unix)" (Apache's Full adds module tokens; httpd-py has none to add)."""
    major, minor, _ = VERSION.split(".")
    return {"prod": PRODUCT, "major": f"{PRODUCT}/{major}", "minor": f"{PRODUCT}/{major}.{minor}",
            "min": f"{PRODUCT}/{VERSION}"}.get(tokens, f"{PRODUCT}/{VERSION} (Unix)")
