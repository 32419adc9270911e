"""mod_reqtimeout's pure part: RequestReadTimeout parsing (texts checked with Debian's
``apache2 -t``, 2.4.71) and per-connection deadlines on a fake clock."""
from __future__ import annotations

import pytest

from httpd_py.errors import ConfigError
from httpd_py.http.reqtimeout import DEFAULT, Deadlines, ReadTimeouts, Stage, parse

P = "RequestReadTimeout: "

GOOD = [
    (["header=10"], ReadTimeouts(header=Stage(10))),
    (["Header=10"], ReadTimeouts(header=Stage(10))),
    (["handshake=5"], ReadTimeouts(handshake=Stage(5))),
    (["body=0"], ReadTimeouts(body=Stage(0))),
    (["header=10-20,MinRate=5"], ReadTimeouts(header=Stage(10, 20, 5))),
    (["HEADER=10-20,MINRATE=5"], ReadTimeouts(header=Stage(10, 20, 5))),
    (["header=10,minrate=5"], ReadTimeouts(header=Stage(10, 0, 5))),
    (["header=0-20,MinRate=500"], ReadTimeouts(header=Stage(0, 20, 500))),
    (["header=10-0,MinRate=5"], ReadTimeouts(header=Stage(10, 0, 5))),
    (["header=0-0,MinRate=5"], ReadTimeouts(header=Stage(0, 0, 5))),
    (["header=+10"], ReadTimeouts(header=Stage(10))),
    (["header=010"], ReadTimeouts(header=Stage(10))),
    (["header= 5"], ReadTimeouts(header=Stage(5))),
    (["header=10,MinRate=+5"], ReadTimeouts(header=Stage(10, 0, 5))),
    (["header=10", "header=20"], ReadTimeouts(header=Stage(20))),
    (["handshake=5-10,MinRate=100", "body=20,MinRate=500"],
     ReadTimeouts(handshake=Stage(5, 10, 100), body=Stage(20, 0, 500))),
    # a long narrowed to a C int, as Apache: wraps to a positive value and is kept
    (["header=99999999999"], ReadTimeouts(header=Stage(99999999999 % 2 ** 32))),
    ([], ReadTimeouts()),
]


@pytest.mark.parametrize("args,want", GOOD, ids=[" ".join(a) or "none" for a, _ in GOOD])
def test_parse_good(args, want):
    assert parse(args) == want


BAD = [
    ("header=abc", P + "header=abc: Value 'abc' not numerical"),
    ("header=10-5,MinRate=500", P + "header=10-5,MinRate=500: Maximum timeout must be larger "
     "than initial timeout"),
    ("header=10-10,MinRate=500", P + "header=10-10,MinRate=500: Maximum timeout must be larger "
     "than initial timeout"),
    ("header=10-20", P + "header=10-20: Must set MinRate option if using timeout range"),
    ("header=-1", P + "header=-1: Must set MinRate option if using timeout range"),
    ("header=abc-5", P + "header=abc-5: Must set MinRate option if using timeout range"),
    ("header=-1,MinRate=5", P + "header=-1,MinRate=5: Value '' not numerical"),
    ("header=-5-10,MinRate=5", P + "header=-5-10,MinRate=5: Cannot parse '-10'"),
    ("header=10--5,MinRate=5", P + "header=10--5,MinRate=5: Value must be non-negative"),
    ("foo=10", P + "foo=10: Unknown RequestReadTimeout parameter"),
    ("=10", P + "=10: Unknown RequestReadTimeout parameter"),
    ("header", "Invalid RequestReadTimeout parameter. Parameter must be in the form 'key=value'"),
    ("", "Invalid RequestReadTimeout parameter. Parameter must be in the form 'key=value'"),
    ("header=10,MinRate=0", P + "header=10,MinRate=0: Minimum data rate must be larger than 0"),
    ("header=10,MinRate=00", P + "header=10,MinRate=00: Minimum data rate must be larger than 0"),
    ("header=10-20,MinRate=-0", P + "header=10-20,MinRate=-0: Minimum data rate must be "
     "larger than 0"),
    ("header=abc,MinRate=0", P + "header=abc,MinRate=0: Minimum data rate must be larger than 0"),
    ("header=10,MinRate=abc", P + "header=10,MinRate=abc: Value 'abc' not numerical"),
    ("header=10,MinRate=-5", P + "header=10,MinRate=-5: Value must be non-negative"),
    ("header=10,MinRate=1.5", P + "header=10,MinRate=1.5: Cannot parse '.5'"),
    ("header=10,MinRate=5,MinRate=6", P + "header=10,MinRate=5,MinRate=6: Cannot parse "
     "',MinRate=6'"),
    ("header=5,MinRate=5-6", P + "header=5,MinRate=5-6: Cannot parse '-6'"),
    ("header=10,Foo=3", P + "header=10,Foo=3: Cannot parse ',Foo=3'"),
    ("header=10,", P + "header=10,: Cannot parse ','"),
    ("header=10, MinRate=5", P + "header=10, MinRate=5: Cannot parse ', MinRate=5'"),
    ("header=10,MinRate", P + "header=10,MinRate: Cannot parse ',MinRate'"),
    ("header=10,MinRate=", P + "header=10,MinRate=: Value '' not numerical"),
    ("header=10-x,MinRate=5", P + "header=10-x,MinRate=5: Value 'x' not numerical"),
    ("header=10-,MinRate=5", P + "header=10-,MinRate=5: Value '' not numerical"),
    ("header=10-20-30,MinRate=5", P + "header=10-20-30,MinRate=5: Cannot parse '-30'"),
    ("header=10-20x,MinRate=5", P + "header=10-20x,MinRate=5: Cannot parse 'x'"),
    ("header=", P + "header=: Value '' not numerical"),
    ("header=1x", P + "header=1x: Cannot parse 'x'"),
    ("header=1.5", P + "header=1.5: Cannot parse '.5'"),
    ("header=0x10", P + "header=0x10: Cannot parse 'x10'"),
    ("header=10=5", P + "header=10=5: Cannot parse '=5'"),
    ("header=5 ", P + "header=5 : Cannot parse ' '"),
    ("header=9223372036854775807", P + "header=9223372036854775807: Value must be non-negative"),
    ("header=9999999999999999999999", P + "header=9999999999999999999999: Value must be "
     "non-negative"),
    ("header=10,MinRate=2147483648", P + "header=10,MinRate=2147483648: Value must be "
     "non-negative"),
    ("header=10,MinRate=4294967296", P + "header=10,MinRate=4294967296: Minimum data rate must "
     "be larger than 0"),
]


@pytest.mark.parametrize("arg,msg", BAD, ids=[a or "empty" for a, _ in BAD])
def test_parse_bad(arg, msg):
    with pytest.raises(ConfigError) as e:
        parse([arg])
    assert str(e.value.args[0]) == msg


def test_first_bad_word_stops():
    with pytest.raises(ConfigError, match="header=abc: Value 'abc'"):
        parse(["header=10,MinRate=5", "header=abc"])


def test_merge_per_stage_and_defaults():
    main = parse(["header=5-10,MinRate=100", "body=7"])
    vhost = parse(["body=3"]).over(main)
    assert vhost == ReadTimeouts(header=Stage(5, 10, 100), body=Stage(3))
    assert ReadTimeouts(body=Stage(3)).resolved() == ReadTimeouts(Stage(0), Stage(20, 40, 500),
                                                                  Stage(3))
    assert str(DEFAULT) == "handshake=0 header=20-40,MinRate=500 body=20,MinRate=500"


# -- deadlines on a fake clock: (config, steps, checks) --------------------------------------------
# steps: ("start", stage, now) | ("recv", nbytes, now) | ("stop",)
# checks after the steps: deadline, and expired/read_timeout at given times
T0 = 1000.0
DEADLINES = [
    ("header default: 20 s from start", None, [("start", "header", T0)], T0 + 20),
    ("header: 500 bytes give 1 s", None, [("start", "header", T0), ("recv", 500, T0 + 1)],
     T0 + 21),
    ("header: extension from the deadline, not from now", None,
     [("start", "header", T0), ("recv", 1000, T0 + 19.5)], T0 + 22),
    ("header: capped at 40", None, [("start", "header", T0), ("recv", 10 ** 6, T0 + 1)], T0 + 40),
    ("header: several reads add up, then the cap", None,
     [("start", "header", T0)] + [("recv", 5000, T0 + i) for i in range(1, 4)], T0 + 40),
    ("header: 1 byte is 2000 us at 500/s", None, [("start", "header", T0), ("recv", 1, T0)],
     T0 + 20.002),
    ("body default: no cap", None, [("start", "body", T0), ("recv", 500 * 100, T0 + 1)],
     T0 + 120),
    ("handshake default: disabled", None, [("start", "handshake", T0)], None),
    ("disabled stage ignores bytes", ["header=0"], [("start", "header", T0), ("recv", 999, T0)],
     None),
    ("no MinRate: bytes change nothing", ["header=10"],
     [("start", "header", T0), ("recv", 10 ** 6, T0 + 1)], T0 + 10),
    ("MinRate without max: unbounded", ["header=10,MinRate=1"],
     [("start", "header", T0), ("recv", 1000, T0 + 1)], T0 + 1010),
    ("rate factor is whole microseconds (3/s -> 333333 us)", ["header=10,MinRate=3"],
     [("start", "header", T0), ("recv", 3, T0)], T0 + 10.999999),
    ("rate above 1e6/s extends nothing", ["header=10-20,MinRate=2000000"],
     [("start", "header", T0), ("recv", 10 ** 6, T0)], T0 + 10),
    ("stage switch: header then body restarts the clock", ["header=5", "body=7"],
     [("start", "header", T0), ("start", "body", T0 + 3)], T0 + 10),
    ("stage switch: body's own cap, not header's", ["header=5-6,MinRate=1",
                                                    "body=7-100,MinRate=1"],
     [("start", "header", T0), ("recv", 50, T0), ("start", "body", T0 + 1),
      ("recv", 50, T0 + 1)], T0 + 58),
    ("stop: no deadline (keep-alive wait)", None, [("start", "header", T0), ("stop",)], None),
    ("keep-alive: header starts on the first byte", None,
     [("start", "header", T0), ("stop",), ("start", "header", T0 + 4), ("recv", 500, T0 + 4)],
     T0 + 25),
    ("handshake enabled", ["handshake=5"], [("start", "handshake", T0)], T0 + 5),
]


def _run(cfg, steps) -> Deadlines:
    d = Deadlines(parse(cfg) if cfg is not None else None)
    for step in steps:
        if step[0] == "start":
            d.start(step[1], step[2])
        elif step[0] == "recv":
            d.received(step[1], step[2])
        else:
            d.stop()
    return d


@pytest.mark.parametrize("name,cfg,steps,want", DEADLINES, ids=[r[0] for r in DEADLINES])
def test_deadline(name, cfg, steps, want):
    d = _run(cfg, steps)
    got = d.deadline()
    if want is None:
        assert got is None
        assert not d.expired(T0 + 10 ** 6)
        assert d.read_timeout(T0 + 10 ** 6) is None
    else:
        assert got == pytest.approx(want, abs=1e-6)
        assert not d.expired(want - 0.001)
        assert d.expired(want + 0.001)


READS = [
    # (now - T0, read_timeout) for header=20-40,MinRate=500 started at T0
    (0.0, 20.0),
    (15.5, 4.5),
    (19.2, 1.0),         # less than a second left: Apache still waits one second
    (19.999, 1.0),
    (20.0, 0.0),         # expired: do not read
    (25.0, 0.0),
]


@pytest.mark.parametrize("offset,want", READS, ids=[str(r[0]) for r in READS])
def test_read_timeout(offset, want):
    d = Deadlines()
    d.start("header", T0)
    assert d.read_timeout(T0 + offset) == pytest.approx(want)


def test_late_bytes_extend_before_the_check():
    # a client 0.5 s late with 1000 bytes (2 s of credit) survives, as in Apache
    d = Deadlines()
    d.start("header", T0)
    now = T0 + 20.5
    d.received(1000, now)
    assert not d.expired(now)
    assert d.deadline() == pytest.approx(T0 + 22)


def test_slowloris_trickle_is_cut():
    # one byte every 2 s: 2 ms of credit each, cut on the first read after 20.02 s
    d = Deadlines()
    d.start("header", T0)
    now = T0
    while not d.expired(now):
        d.received(1, now)
        now += 2
        assert now < T0 + 40
    assert now == T0 + 22
