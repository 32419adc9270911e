"""LogFormat compilation and rendering."""
from __future__ import annotations

import os
import re

import pytest

from httpd_py.http.accesslog import AccessLogs, RequestRecord, compile_format, escape

COMMON = '%h %l %u %t "%r" %>s %b'
COMBINED = COMMON + ' "%{Referer}i" "%{User-Agent}i"'


def rec(**kw):
    base = dict(remote_ip="192.0.2.1", request_line="GET /a?b HTTP/1.1", status=200, bytes_sent=45,
                start=1_700_000_000.0, duration=0.0123, method="GET", url_path="/a", query="b",
                request_headers={"user-agent": "curl/8", "host": "a.test:8443"},
                response_headers={"content-type": "text/html"}, server_name="a.test",
                ssl_protocol="TLSv1.3", ssl_cipher="TLS_AES_256_GCM_SHA384", local_port=8443)
    base.update(kw)
    return RequestRecord(**base)


def test_common_and_combined():
    line = compile_format(COMMON)(rec())
    assert re.fullmatch(r'192\.0\.2\.1 - - \[\d\d/Nov/2023:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /a\?b HTTP/1\.1" 200 45', line)
    line = compile_format(COMBINED)(rec())
    assert line.endswith('200 45 "-" "curl/8"')


@pytest.mark.parametrize("fmt,expect", [
    ("%b", "-"), ("%B", "0"),
    ("%D", "12300"), ("%T", "0"),
    ("%{SSL_PROTOCOL}x %{SSL_CIPHER}x", "TLSv1.3 TLS_AES_256_GCM_SHA384"),
    ("%{Content-Type}o", "text/html"),
    ("%{X-Missing}i", "-"),
    ("%v %V %p", "a.test a.test 8443"),
    ("%m %U%q %H", "GET /a?b HTTP/1.1"),
    ("%s %>s %400,501{User-Agent}i %!200s", "200 200 curl/8 200"),
    ("100%% %{sec}t", "100% 1700000000"),
    ("%k %X", "0 -"),
])
def test_codes(fmt, expect):
    assert compile_format(fmt)(rec(bytes_sent=0 if "%b" in fmt or "%B" in fmt else 45)) == expect


def test_client_strings_are_escaped():
    r = rec(request_line='GET /"x\\\x01\u00e9 HTTP/1.1', request_headers={"user-agent": 'a"b\nc'})
    assert compile_format('"%r" "%{User-Agent}i"')(r) == '"GET /\\"x\\\\\\x01\\xc3\\xa9 HTTP/1.1" "a\\"b\\nc"'
    assert escape("plain") == "plain"


@pytest.mark.parametrize("fmt", ["%Z", "%{x", "abc %", "%{Foo}Q"])
def test_unknown_codes_are_errors(fmt):
    with pytest.raises(ValueError):
        compile_format(fmt)


def test_files_opened_once_and_appended(tmp_path):
    logs = AccessLogs()
    p = str(tmp_path / "logs" / "access.log")
    fd = logs.open(p)
    assert logs.open(p) == fd
    AccessLogs.write(fd, "one")
    AccessLogs.write(fd, "two")
    logs.close()
    assert open(p).read() == "one\ntwo\n"


def test_piped_log(tmp_path):
    import os
    from httpd_py import piped
    out = tmp_path / "piped.log"
    logs = AccessLogs()
    target = f"|$cat > {out}"          # "|$": through /bin/sh; "|" alone runs the program itself
    fd = logs.open(target)
    pid = piped.programs()[target]
    AccessLogs.write(fd, "via pipe")
    logs.close()                       # our handle closed...
    piped.maintain()                   # ...none left: the pipe closes, cat reads EOF and exits
    assert target not in piped.programs()
    os.waitpid(pid, 0)
    assert out.read_text() == "via pipe\n"


def test_head_and_request_sizes():
    assert compile_format("%I %O")(rec(request_bytes=80, head_bytes=200, bytes_sent=45)) == "80 245"


def test_custom_log_nicknames_and_errors(tmp_path):
    from httpd_py.config.model import LogFormatRef, ServerConfig, VHost
    from httpd_py.errors import StartupError
    from httpd_py.http.connection import ConnectionHandler
    from httpd_py.tls.sites import build_sites

    def handler(fmt, log_formats=()):
        v = VHost(server_name="a", document_root=str(tmp_path),
                  custom_logs=(LogFormatRef(str(tmp_path / "access.log"), fmt),))
        cfg = ServerConfig(config_file="x", server_root=str(tmp_path), main=v, vhosts=(), listens=(),
                           log_formats=log_formats)
        return ConnectionHandler(cfg, build_sites(cfg))
    h = handler("mine", (("mine", "%h %>s"),))
    assert h.runtime(h.cfg.main).logs
    h.close()
    handler("combined").close()                 # Debian's nickname, not defined: built in
    handler("").close()                         # TransferLog: the default format
    with pytest.raises(StartupError, match="unknown LogFormat nickname"):
        handler("nosuch")
    with pytest.raises(StartupError, match="unrecognized format code"):
        handler("%h %Z")


def test_new_record_sets_each_field_by_name_as_keywords_would():
    """new_record passes every field by position: a field added or moved in RequestRecord
    must be added or moved there too."""
    from httpd_py.http.accesslog import RequestRecord, new_record
    headers = {"host": "h"}
    got = new_record("192.0.2.1", 4000, "127.0.0.1", 443, "GET / HTTP/1.1", "GET", "HTTP/1.1",
                     5.0, headers, "h", "TLSv1.3", "AES", 7, False, 42)
    want = RequestRecord(remote_ip="192.0.2.1", remote_port=4000, local_ip="127.0.0.1",
                         local_port=443, request_line="GET / HTTP/1.1", method="GET",
                         protocol="HTTP/1.1", start=5.0, request_headers=headers,
                         host_header="h", ssl_protocol="TLSv1.3", ssl_cipher="AES",
                         requests_on_connection=7, http10=False, request_bytes=42)
    assert got == want
    assert got.response_headers is not want.response_headers and got.env == {}
