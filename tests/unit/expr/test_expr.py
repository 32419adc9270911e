"""ap_expr subset: parse once, evaluate per request, ConfigError for everything unsupported."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings, strategies as st

from httpd_py.errors import ConfigError
from httpd_py.expr import Condition, parse_condition


class Ctx:
    """A fake request: variables, headers (case-insensitive) and request environment."""

    def __init__(self, var=None, header=None, env=None):
        self.vars = {"REMOTE_ADDR": "192.0.2.10", "HTTP_HOST": "example.com",
                     "REQUEST_URI": "/docs/index.html", "REQUEST_METHOD": "GET", "HTTPS": "on",
                     "QUERY_STRING": "a=1&forcetext", "TIME_HOUR": "10", **(var or {})}
        self.headers = {k.lower(): v for k, v in (header or {}).items()}
        self.envs = dict(env or {})

    def var(self, name):
        return self.vars.get(name, "")

    def header(self, name):
        return self.headers.get(name.lower(), "")

    def env(self, name):
        return self.envs.get(name, "")


V4 = {"REMOTE_ADDR": "10.1.2.3"}
V6 = {"REMOTE_ADDR": "2001:db8::5"}
MAPPED = {"REMOTE_ADDR": "::ffff:10.1.2.3"}

# (expression, variables, headers, environment, expected)
TRUE_FALSE = [
    # literals, !, &&, ||, parentheses and precedence
    ("true", {}, {}, {}, True),
    ("false", {}, {}, {}, False),
    ("!false", {}, {}, {}, True),
    ("not true", {}, {}, {}, False),
    ("!true && false", {}, {}, {}, False),           # ! binds tighter than &&
    ("!(true && false)", {}, {}, {}, True),
    ("true || false && false", {}, {}, {}, True),    # && binds tighter than ||
    ("(true || false) && false", {}, {}, {}, False),
    ("false || !false && true", {}, {}, {}, True),
    ("true and false or true", {}, {}, {}, True),
    ("! %{HTTP_HOST} == 'other'", {}, {}, {}, True),  # ! negates the whole comparison
    ("!!true", {}, {}, {}, True),
    ("false || false || false || true", {}, {}, {}, True),
    ("true && true && true && false", {}, {}, {}, False),
    # string comparisons
    ("%{HTTP_HOST} == 'example.com'", {}, {}, {}, True),
    ("%{HTTP_HOST} = \"example.com\"", {}, {}, {}, True),
    ("%{HTTP_HOST} != 'example.com'", {}, {}, {}, False),
    ("'abc' < 'abd'", {}, {}, {}, True),
    ("'abc' <= 'abc'", {}, {}, {}, True),
    ("'b' > 'abc'", {}, {}, {}, True),
    ("'10' >= '9'", {}, {}, {}, False),              # string order, not numbers
    ("%{http_host} == 'example.com'", {}, {}, {}, True),  # variable names ignore case
    # interpolation, escapes, concatenation, numbers
    ("'host=%{HTTP_HOST}' == 'host=example.com'", {}, {}, {}, True),
    ("\"%{REQUEST_METHOD} %{REQUEST_URI}\" == 'GET /docs/index.html'", {}, {}, {}, True),
    ("'a' . 'b' . %{REQUEST_METHOD} == 'abGET'", {}, {}, {}, True),
    ("'tab\\there' == \"tab\there\"", {}, {}, {}, True),
    ("'\\101' == 'A'", {}, {}, {}, True),
    ("'q\\'q' == \"q'q\"", {}, {}, {}, True),
    ("'50%' == \"50%\" && '$x}' == \"$x}\"", {}, {}, {}, True),
    ("%{HTTP_REFERER} == ''", {}, {}, {}, True),     # unset is ""
    ("%{REMOTE_USER} == 'alice'", {"REMOTE_USER": "alice"}, {}, {}, True),
    ("007 == '007'", {}, {}, {}, True),
    ("-5 -lt 0", {}, {}, {}, True),
    # integer comparisons (atoi semantics, as Apache)
    ("%{TIME_HOUR} -gt 9 && %{TIME_HOUR} -lt 17", {}, {}, {}, True),
    ("10 -eq 010", {}, {}, {}, True),
    ("10 eq 11", {}, {}, {}, False),
    ("10 -ne 11 && 10 ne 11", {}, {}, {}, True),
    ("3 -le 3 && 3 le 4 && 4 -ge 4 && 5 ge 4 && 1 lt 2 && 2 gt 1", {}, {}, {}, True),
    ("'abc' -eq 0", {}, {}, {}, True),               # non-number reads as 0
    ("req('X-Count') -lt 5", {}, {}, {}, True),      # absent header is "" -> 0
    ("' 12abc' -eq 12", {}, {}, {}, True),
    ("'99999999999999999999' -eq '9223372036854775807'", {}, {}, {}, True),  # saturates
    # regular expressions
    ("%{QUERY_STRING} =~ /forcetext/", {}, {}, {}, True),
    ("%{QUERY_STRING} !~ /forcetext/", {}, {}, {}, False),
    ("%{REQUEST_URI} =~ m#^/docs/.*\\.html$#", {}, {}, {}, True),
    ("%{HTTP_HOST} =~ /EXAMPLE/i", {}, {}, {}, True),
    ("%{HTTP_HOST} =~ /EXAMPLE/", {}, {}, {}, False),
    ("%{HTTP_HOST} =~ m,^example,", {}, {}, {}, True),
    ("%{HTTP_HOST} =~ /^(www\\.)?([^.]+)\\.com$/ && $2 == 'example' && $1 == ''", {}, {}, {}, True),
    ("%{HTTP_HOST} =~ /^(x)/ || $0 == ''", {}, {}, {}, True),   # failed match clears $N
    ("'abc' =~ /^[[:alpha:]]+$/ && !('ab1' =~ /^[[:alpha:]]+$/)", {}, {}, {}, True),
    ("'x1' =~ /(?<n>\\d)/ && $1 == '1'", {}, {}, {}, True),
    ("'é' =~ /^\\w$/", {}, {}, {}, False),           # \w is ASCII, as PCRE without UCP
    ("'a\\n' =~ /a\\Z/ && !('a\\n' =~ /a\\z/)", {}, {}, {}, True),
    # in {...}
    ("%{HTTP:X-example-header} in { 'foo', 'bar', 'baz' }", {}, {"X-Example-Header": "bar"}, {}, True),
    ("%{REQUEST_METHOD} -in {'POST', 'PUT'}", {}, {}, {}, False),
    ("'GET' in {%{REQUEST_METHOD}}", {}, {}, {}, True),
    # functions
    ("req('User-Agent') == 'curl/8'", {}, {"user-agent": "curl/8"}, {}, True),
    ("http('user-agent') == 'curl/8' && req_novary('USER-AGENT') == 'curl/8'", {}, {"User-Agent": "curl/8"}, {}, True),
    ("%{req:Accept} == 'text/html' && %{HTTP:accept} == 'text/html'", {}, {"Accept": "text/html"}, {}, True),
    ("env('flag') == 'on' && reqenv('flag') == 'on' && %{ENV:flag} == 'on'", {}, {}, {"flag": "on"}, True),
    ("reqenv('REDIRECT_FOO') == ''", {}, {}, {}, True),
    ("osenv('EXPR_TEST_OSENV') == 'from-os' && env('EXPR_TEST_OSENV') == 'from-os'", {}, {}, {}, True),
    ("tolower('AbC') == 'abc' && toupper('AbC') == 'ABC' && TOLOWER('X') == 'x'", {}, {}, {}, True),
    ("toupper('é') == 'é'", {}, {}, {}, True),     # ASCII only
    ("escape('a b/c?d') == 'a%20b/c%3fd'", {}, {}, {}, True),
    ("unescape('a%20b%2Fc') == 'a b%2Fc'", {}, {}, {}, True),
    ("unescape('bad%zz') == '' && unescape('nul%00') == ''", {}, {}, {}, True),
    ("base64('foo') == 'Zm9v' && unbase64('Zm9v') == 'foo' && unbase64('Zm9vYg!!') == 'foob'", {}, {}, {}, True),
    ("md5('foo') == 'acbd18db4cc2f85cedef654fccc4a4d8'", {}, {}, {}, True),
    ("sha1('foo') == '0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33'", {}, {}, {}, True),
    ("%{md5:foo} == md5('foo')", {}, {}, {}, True),
    ("tolower(req('X-Mode')) == 'debug'", {}, {"X-Mode": "DeBuG"}, {}, True),
    # unary operators
    ("-n %{HTTP_HOST} && -z %{HTTP_REFERER}", {}, {}, {}, True),
    ("-z ''", {}, {}, {}, True),
    ("-T 'yes' && -T '1' && -T 'offx'", {}, {}, {}, True),
    ("-T '' || -T '0' || -T 'OFF' || -T 'False' || -T 'no'", {}, {}, {}, False),
    ("-R '192.0.2.0/24'", {}, {}, {}, True),
    ("-R '198.51.100.0/24'", {}, {}, {}, False),
    # -ipmatch, -strmatch, -strcmatch, -fnmatch
    ("%{REMOTE_ADDR} -ipmatch '10.0.0.0/8'", V4, {}, {}, True),
    ("%{REMOTE_ADDR} -ipmatch '10.1.2.3'", V4, {}, {}, True),
    ("%{REMOTE_ADDR} -ipmatch '10.1'", V4, {}, {}, True),              # partial address
    ("%{REMOTE_ADDR} -ipmatch '10.2.0.0/255.255.0.0'", V4, {}, {}, False),
    ("%{REMOTE_ADDR} -IPMATCH '10.0.0.0/8'", MAPPED, {}, {}, True),    # IPv4-mapped IPv6
    ("%{REMOTE_ADDR} -ipmatch '2001:db8::/32'", V6, {}, {}, True),
    ("%{REMOTE_ADDR} -ipmatch '10.0.0.0/8'", V6, {}, {}, False),
    ("'not-an-ip' -ipmatch '10.0.0.0/8'", {}, {}, {}, False),
    ("%{REQUEST_URI} -strmatch '/docs/*.html'", {}, {}, {}, True),
    ("%{REQUEST_URI} -strmatch '/DOCS/*'", {}, {}, {}, False),
    ("%{REQUEST_URI} -strcmatch '/DOCS/*'", {}, {}, {}, True),
    ("'a/b/c' -strmatch 'a*c' && !('a/b/c' -fnmatch 'a*c')", {}, {}, {}, True),
    ("'a/b/c' -fnmatch 'a/*/c' && 'file7.txt' -fnmatch 'file[0-9].tx?'", {}, {}, {}, True),
    ("'x' -strmatch '[!a-m]' && 'x*' -strmatch 'x\\\\*' && !('xy' -strmatch 'x\\\\*')", {}, {}, {}, True),
    ("'abc' -strmatch %{HTTP:X-Pattern}", {}, {"X-Pattern": "a?c"}, {}, True),  # runtime pattern
]
@pytest.fixture(autouse=True)
def _osenv(monkeypatch):
    monkeypatch.setenv("EXPR_TEST_OSENV", "from-os")


@pytest.mark.parametrize("text, var, header, env, expected", TRUE_FALSE,
                         ids=[r[0] for r in TRUE_FALSE])
def test_evaluates(text, var, header, env, expected):
    cond = parse_condition(text)
    assert cond.evaluate(Ctx(var, header, env)) is expected


def test_table_sizes():
    assert len(TRUE_FALSE) >= 60
    assert len(INVALID) >= 20


# (expression, a fragment the ConfigError message must contain)
INVALID = [
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("foo('x') == 'a'", "unknown function 'foo'"),
    ("%{foo:x} == 'a'", "unknown function 'foo'"),
    ("resp('Content-Type') == 'x'", "unsupported function 'resp'"),
    ("file('/etc/passwd') == 'x'", "unsupported function 'file'"),
    ("-A '/x'", "unsupported operator -A (needs subrequests)"),
    ("-U '/x'", "unsupported operator -U (needs subrequests)"),
    ("-F '/x'", "unsupported operator -F (needs subrequests)"),
    ("-q 'x'", "unknown unary operator '-q'"),
    ("'a' -foo 'b'", "unknown binary operator '-foo'"),
    ("'a' -EQ 'b'", "unknown binary operator '-EQ'"),            # -eq is case-sensitive
    ("%{NO_SUCH_VAR} == 'x'", "unknown variable '%{NO_SUCH_VAR}'"),
    ("%{HTTP_X_CUSTOM} == 'x'", "unknown variable '%{HTTP_X_CUSTOM}'"),  # use req('X-Custom')
    ("%{} == 'x'", "invalid character in variable name '}'"),
    ("%{HTTP_HOST == 'x'", "invalid character in variable name ' '"),
    ("%{ENV:} == 'x'", "empty argument"),
    ("'abc == 'x'", "unterminated string"),
    ("'a' == 'b' 'c'", "syntax error: expected end of expression"),
    ("'it''s' == 'its'", "expected a comparison operator"),   # two words side by side
    ("'abc", "unterminated string"),
    ("'abc\ndef' == 'x'", "unterminated string"),
    ("'\\18' == 'x'", "bad escape sequence"),
    ("'\\777' == 'x'", "out of bound"),
    ("%{HTTP_HOST} =~ /(/", "cannot compile regular expression"),
    ("%{HTTP_HOST} =~ /[[:nosuch:]]/", "unsupported POSIX class"),
    ("%{HTTP_HOST} =~ /a\\Qb\\E/", "cannot compile regular expression"),
    ("%{HTTP_HOST} =~ /abc", "unterminated regular expression"),
    ("%{HTTP_HOST} =~ 'abc'", "expected a regular expression"),
    ("%{HTTP_HOST} ==", "found end of expression"),
    ("%{HTTP_HOST}", "expected a comparison operator"),
    ("%{HTTP_HOST} == 'a' &&", "expected a condition"),
    ("(true", "expected ')'"),
    ("true)", "expected end of expression"),
    ("true == 'x'", "expected end of expression"),
    ("foo == 'x'", "expected '(' after function name 'foo'"),
    ("%{REMOTE_ADDR} -ipmatch %{HTTP_HOST}", "constant quoted string"),
    ("%{REMOTE_ADDR} -ipmatch 'not-a-subnet'", "cannot parse subnet"),
    ("%{REMOTE_ADDR} -ipmatch '10.0.0.0/33'", "cannot parse subnet"),
    ("-R 'x.y'", "cannot parse subnet"),
    ("%{HTTP_HOST} in {}", "expected a string"),
    ("%{HTTP_HOST} in PeerExtList('x')", "unsupported list function 'PeerExtList'"),
    ("'a' & 'b'", "syntax error near '&'"),
    ("'a' == 'b' # comment", "syntax error near '#'"),
    ("!" * 100 + "true", "nested more than"),
    ("(" * 100 + "true" + ")" * 100, "nested more than"),
]


@pytest.mark.parametrize("text, fragment", INVALID, ids=[r[0][:40] for r in INVALID])
def test_rejects(text, fragment):
    with pytest.raises(ConfigError) as info:
        parse_condition(text)
    assert fragment in info.value.msg
    assert info.value.file is None and info.value.line is None


def test_file_tests(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    full = tmp_path / "full"
    full.write_bytes(b"x")
    os.chmod(full, 0o755)
    link = tmp_path / "link"
    link.symlink_to(full)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    ctx = Ctx({"REQUEST_FILENAME": str(full), "DOCUMENT_ROOT": str(d)})
    cases = {
        f"-d '{d}'": True, f"-d '{full}'": False,
        f"-e '{empty}' && -e '{d}' && -e '{link}'": True, f"-e '{dangling}'": False,
        f"-f '{full}' && -f '{link}'": True, f"-f '{d}'": False,
        f"-s '{full}'": True, f"-s '{empty}'": False,
        f"-L '{link}' && -h '{dangling}'": True, f"-L '{full}'": False,
        f"-x '{full}'": True, f"-x '{empty}'": False,
        "-f %{REQUEST_FILENAME} && -d %{DOCUMENT_ROOT}": True,
        "-f '%{REQUEST_FILENAME}.gz'": False,
        "-e 'a\\0b'": False,                          # NUL in a path is just "no such file"
    }
    for text, expected in cases.items():
        assert parse_condition(text).evaluate(ctx) is expected, text


def test_condition_value_object():
    a = parse_condition("%{HTTP_HOST} == 'a'")
    b = parse_condition("%{HTTP_HOST} == 'a'")
    assert isinstance(a, Condition) and a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.text == "%{HTTP_HOST} == 'a'"
    with pytest.raises(AttributeError):
        a.text = "x"


@pytest.mark.parametrize("text, expected", [
    ("%{REMOTE_USER} == 'alice'", True),
    ("'x%{remote_user}' == 'xalice'", True),
    ("tolower(%{REMOTE_USER}) -in {'alice'}", True),
    ("%{HTTP_HOST} == 'alice'", False),
    ("-n %{REMOTE_USER}", True),
])
def test_uses_user(text, expected):
    assert parse_condition(text).uses_user is expected


def test_backrefs_do_not_leak_between_evaluations():
    cond = parse_condition("%{HTTP_HOST} =~ /^(a)/ || $1 == ''")
    assert cond.evaluate(Ctx({"HTTP_HOST": "abc"}))
    assert cond.evaluate(Ctx({"HTTP_HOST": "xyz"}))


def test_short_circuit():
    calls = []

    class Counting(Ctx):
        def header(self, name):
            calls.append(name)
            return ""

    assert parse_condition("true || req('A') == ''").evaluate(Counting())
    assert not parse_condition("false && req('B') == ''").evaluate(Counting())
    assert calls == []


def test_many_terms_do_not_recurse():
    text = " || ".join(["%{HTTP_HOST} == 'nope'"] * 3000 + ["true"])
    assert parse_condition(text).evaluate(Ctx())


# -- properties

ALPHABET = st.sampled_from(list("%{}()'\"/\\!&|=<>~.-,$ mi0189aezTRdfxAHTP_:#\n\t") +
                           ["%{HTTP_HOST}", "%{REMOTE_USER}", "req(", "md5(", " -ipmatch ",
                            " -strmatch ", " -fnmatch ", " =~ ", " in {", "true", "false",
                            " && ", " || ", "'10.0.0.0/8'", "[[:alpha:]]", "-eq ", "$1"])
EXPRESSIONS = st.lists(ALPHABET, max_size=12).map("".join) | st.text(max_size=30)
REQUEST_TEXT = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=20)


@settings(max_examples=400, deadline=None)
@given(text=EXPRESSIONS, host=REQUEST_TEXT, user=REQUEST_TEXT, header=REQUEST_TEXT)
def test_parse_raises_only_config_error_and_evaluate_never_raises(text, host, user, header):
    try:
        cond = parse_condition(text)
    except ConfigError:
        return
    ctx = Ctx({"HTTP_HOST": host, "REMOTE_USER": user, "REMOTE_ADDR": header},
              {"a": header, "x": header}, {"a": header})
    assert cond.evaluate(ctx) in (True, False)


@settings(max_examples=200, deadline=None)
@given(value=REQUEST_TEXT, pattern=REQUEST_TEXT)
def test_runtime_patterns_never_raise(value, pattern):
    ctx = Ctx({"HTTP_HOST": value}, {"P": pattern})
    for op in ("-strmatch", "-strcmatch", "-fnmatch"):
        assert parse_condition(f"%{{HTTP_HOST}} {op} req('P')").evaluate(ctx) in (True, False)
    for fn in ("unescape", "unbase64", "escape", "base64", "md5", "sha1", "tolower"):
        assert parse_condition(f"{fn}(%{{HTTP_HOST}}) == ''").evaluate(ctx) in (True, False)
    assert parse_condition("%{HTTP_HOST} -eq req('P')").evaluate(ctx) in (True, False)
