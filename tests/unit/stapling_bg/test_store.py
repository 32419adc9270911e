"""store: atomic one-file-per-certificate records that survive a reopen; bad files are reported."""
from __future__ import annotations

import os
import stat

import pytest

from httpd_py.config.model import ServerConfig, VHost
from httpd_py.errors import StaplingError
from httpd_py.stapling.store import Record, StapleStore, default_dir

KEY = bytes(range(20))


def full_record(**kw):
    base = dict(key=KEY, der=b"\x30\x03\x0a\x01\x00", fetched_at=1.5, this_update=1.0,
                next_update=99.0, cert_status="good", subject="CN=a.test", serial="0A1B",
                responder="http://127.0.0.1:1/", last_attempt=2.0, last_error="timeout",
                failures=2, next_refresh=50.0, requests=7)
    base.update(kw)
    return Record(**base)


def test_round_trip_through_a_new_store_object(tmp_path):
    s = StapleStore(str(tmp_path / "staples"))
    s.ensure()
    rec = full_record()
    s.save(rec)
    again = StapleStore(str(tmp_path / "staples")).load(KEY)
    assert again == rec
    assert list(s.keys()) == [KEY]


def test_modes_and_no_temporary_files_left(tmp_path):
    s = StapleStore(str(tmp_path / "staples"))
    s.ensure()
    s.save(full_record())
    s.save(full_record(requests=8))
    assert stat.S_IMODE(os.stat(s.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(s.path(KEY)).st_mode) == 0o600
    assert os.listdir(s.directory) == [KEY.hex() + ".json"]
    assert s.load(KEY).requests == 8


def test_missing_record_is_none_and_empty_dir_has_no_keys(tmp_path):
    s = StapleStore(str(tmp_path / "nothing"))
    assert s.load(KEY) is None
    assert list(s.keys()) == []


def test_record_without_response(tmp_path):
    s = StapleStore(str(tmp_path))
    s.save(Record(key=KEY, last_error="connect", failures=1))
    rec = s.load(KEY)
    assert rec.der is None and rec.failures == 1 and rec.last_error == "connect"


@pytest.mark.parametrize("content, why", [
    (b"", "malformed"),
    (b"{not json", "malformed"),
    (b"[]", "version"),
    (b'{"version": 2}', "version"),
    (b'{"version": 1}', "malformed"),
    (b'{"version": 1, "key": "zz", "der": null}', "malformed"),
    (b'{"version": 1, "key": "00", "der": null}', "20 bytes"),
    (b'{"version": 1, "key": "' + KEY.hex().encode() + b'", "der": "!!!"}', "malformed"),
    (b'{"version": 1, "key": "' + KEY.hex().encode() + b'", "der": null, "requests": -1}', "count"),
    (b'{"version": 1, "key": "' + KEY.hex().encode() + b'", "der": null, "next_update": "x"}', "number"),
    (b"\xff\xfe\x00garbage", "cannot read"),
])
def test_corrupt_files_raise_value_error_with_reason_and_are_kept(tmp_path, content, why):
    s = StapleStore(str(tmp_path))
    p = tmp_path / (KEY.hex() + ".json")
    p.write_bytes(content)
    with pytest.raises(ValueError, match=why):
        s.load(KEY)
    assert p.read_bytes() == content          # never deleted: no data loss


def test_record_of_another_certificate_is_refused(tmp_path):
    s = StapleStore(str(tmp_path))
    other = bytes(20)
    (tmp_path / (KEY.hex() + ".json")).write_text(full_record(key=other).to_json())
    with pytest.raises(ValueError, match="another certificate"):
        s.load(KEY)


def test_keys_ignores_foreign_files(tmp_path):
    s = StapleStore(str(tmp_path))
    s.save(full_record())
    (tmp_path / "README").write_text("x")
    (tmp_path / ("zz" * 20 + ".json")).write_text("{}")
    (tmp_path / f".{KEY.hex()}.123.tmp").write_text("partial")
    assert list(s.keys()) == [KEY]


def test_ensure_reports_an_impossible_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StaplingError, match="cannot create staple store"):
        StapleStore(str(tmp_path / "file" / "sub")).ensure()


def test_default_dir():
    cfg = ServerConfig(config_file="/c", server_root="/r", main=VHost(), vhosts=(), listens=(),
                       default_runtime_dir="/run/x")
    assert default_dir(cfg) == "/run/x/ssl-staples"
    import dataclasses
    assert default_dir(dataclasses.replace(cfg, stapling_store_dir="/var/st")) == "/var/st"
    assert default_dir(dataclasses.replace(cfg, default_runtime_dir="")) is None


def test_crash_between_temp_write_and_rename_keeps_the_old_record(tmp_path):
    """A temporary file left by a killed writer never shadows the last complete record."""
    s = StapleStore(str(tmp_path))
    s.save(full_record(requests=1))
    (tmp_path / f".{KEY.hex()}.999.tmp").write_bytes(b'{"version": 1, "ke')
    assert s.load(KEY).requests == 1
