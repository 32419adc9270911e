"""Run one fuzz target under atheris (libFuzzer), with httpd_py instrumented for coverage.

    .venv/bin/python -m tests.fuzz.run TARGET [libFuzzer flags] [CORPUS_DIR ...]

Without a corpus directory the target's seed corpus (tests/fuzz/corpus/TARGET) is used read-only
through a scratch directory, so a run never writes into the repository; new interesting inputs
land in the scratch directory and are discarded.  libFuzzer prints ``Done N runs in S second(s)``
at the end; a crash (an exception the target lets through) or a hang (``-timeout``) stops the run
with a non-zero exit and writes the input to ``-artifact_prefix`` (default: the current directory).
"""
from __future__ import annotations

import shutil
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["httpd_py"]):
    from tests.fuzz import targets


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in targets.TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.run {{{'|'.join(targets.TARGETS)}}} [libFuzzer flags]")
    name = argv[1]
    flags = argv[2:]
    if not any(not f.startswith("-") for f in flags):
        scratch = tempfile.mkdtemp(prefix=f"httpd-py-fuzz-{name}-")
        for p in targets.seeds(name):
            shutil.copy(p, scratch)
        flags.append(scratch)
    target = targets.TARGETS[name]
    # warm the lazily built fixtures (lark grammar, the OCSP certificates, the conf root) so
    # the first input is not mistaken for a hang
    try:
        target(b"")
    except Exception:
        pass
    atheris.Setup([argv[0]] + flags, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
