"""Bad lines of mod_mime, mod_negotiation, mod_deflate and mod_filter directives: ``apache2 -t``
and httpd-py's loader refuse the same lines, at the same line number, with the same message.
A wrong argument count is compared up to the usage text Apache appends (its help string; the
directive rows carry httpd-py's own, as every row does).  Lines apache2 accepts are loaded by
both without complaint (``GOOD_LINES``)."""
from __future__ import annotations

import re

import pytest

from httpd_py.config import load
from httpd_py.errors import ConfigError
from tests.support.apache import minimal_conf, run_apache

MODULES = ("mpm_prefork", "authz_core", "mime", "negotiation", "deflate", "filter")

BAD_LINES = [
    "MultiviewsMatch Any Handlers",
    "MultiviewsMatch Handlers Any",
    "MultiviewsMatch NegotiatedOnly Filters",
    "MultiviewsMatch Filters NegotiatedOnly",
    "MultiviewsMatch Sometimes",
    "<Location /x>\nMultiviewsMatch Any\n</Location>",
    "ModMimeUsePathInfo On",
    "ModMimeUsePathInfo",
    "DefaultLanguage",
    "AddLanguage fr",
    "RemoveType",
    "ForceLanguagePriority None Prefer",
    "ForceLanguagePriority Fallback None",
    "ForceLanguagePriority Sometimes",
    "CacheNegotiatedDocs maybe",
    "<Directory />\nCacheNegotiatedDocs On\n</Directory>",
    "LanguagePriority",
    "DeflateCompressionLevel 0",
    "DeflateCompressionLevel 10",
    "DeflateCompressionLevel x",
    "DeflateWindowSize 16",
    "DeflateMemLevel 0",
    "DeflateBufferSize 0",
    "DeflateAlterETag Sometimes",
    "DeflateFilterNote bogus name",
    "<Directory />\nDeflateCompressionLevel 5\n</Directory>",
    "AddOutputFilterByType DEFLATE",
    "SetOutputFilter",
    "ForceType",
]

GOOD_LINES = [
    "MultiviewsMatch Handlers Filters", "MultiviewsMatch Any", "ForceLanguagePriority Prefer "
    "Fallback", "LanguagePriority en fr de", "DeflateCompressionLevel 9",
    "DeflateWindowSize 15", "DeflateMemLevel 1", "DeflateBufferSize 4096",
    "DeflateAlterETag remove", "DeflateFilterNote Ratio r", "AddCharset UTF-8 .utf8 utf-8",
    "RemoveCharset .utf8", "<Directory />\nModMimeUsePathInfo On\n</Directory>",
    "AddOutputFilterByType DEFLATE text/html text/plain", "SetOutputFilter DEFLATE",
    "ForceType none", "AddHandler type-map .var", "CacheNegotiatedDocs On",
]


def _conf(tmp_path, line: str):
    (tmp_path / "logs").mkdir(exist_ok=True)
    conf = tmp_path / "c.conf"
    conf.write_text(minimal_conf(tmp_path, MODULES, listen="127.0.0.1:1", extra=line + "\n"))
    return conf


@pytest.mark.parametrize("line", BAD_LINES)
def test_config_errors_as_apache2(tmp_path, line):
    conf = _conf(tmp_path, line)
    got = run_apache(tmp_path, conf, "-t")
    assert got.returncode != 0, got.stderr
    apache_lines = got.stderr.strip().splitlines()
    with pytest.raises(ConfigError) as e:
        load(str(conf), log_warnings=False)
    assert e.value.line == int(re.search(r"line (\d+)", apache_lines[0]).group(1))
    theirs, ours = apache_lines[1], e.value.msg
    if re.match(r"\w+ (takes|requires) ", theirs) and ", " in theirs:
        theirs, ours = theirs.split(", ", 1)[0], ours.split(", ", 1)[0]
    assert ours == theirs


@pytest.mark.parametrize("line", GOOD_LINES)
def test_lines_apache2_accepts_load(tmp_path, line):
    conf = _conf(tmp_path, line)
    got = run_apache(tmp_path, conf, "-t")
    assert got.returncode == 0, got.stderr
    load(str(conf), log_warnings=False)
