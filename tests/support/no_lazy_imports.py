"""Run httpd-py so that a module import after the process gave up root fails, as it does where
the Python installation is unreadable by ``User`` (a pyenv under /root, mode 0700), whatever the
machine: ``python tests/support/no_lazy_imports.py REPORT httpd-py-args...``.

A finder first on ``sys.meta_path`` refuses every module not yet imported once the effective
uid is not 0 (modules built into the interpreter excepted: nothing is read for them), appends
``pid name`` to REPORT (a file the test created world-writable) and raises ImportError, which
the server then handles however it handles that import failing (a worker that fails to boot
halts the server; a handshake gets no staple; a request a 500).  The test asserts REPORT empty.
"""
from __future__ import annotations

import os
import sys


class _AfterDrop:
    def __init__(self, report: str):
        self.report = report

    def find_spec(self, name, path=None, target=None):
        if os.geteuid() == 0 or name in sys.modules or name in sys.builtin_module_names:
            return None
        try:
            with open(self.report, "a") as f:
                f.write(f"{os.getpid()} {name}\n")
        except OSError:
            pass
        raise ImportError(f"lazy import of {name} after dropping privileges (uid {os.geteuid()})")


def main() -> int:
    report, args = sys.argv[1], sys.argv[2:]
    sys.meta_path.insert(0, _AfterDrop(report))
    from httpd_py.cli import main as httpd_main
    return httpd_main(args)


if __name__ == "__main__":
    sys.exit(main())
