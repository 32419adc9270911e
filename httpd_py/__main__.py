"""``python -m httpd_py``: the same command line as ``httpd-py``."""
import sys

from httpd_py.cli import main

sys.exit(main())
