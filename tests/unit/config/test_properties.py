"""Property tests: random text and mutated valid configurations give a ServerConfig or a
ConfigError with a file and line, never another exception."""
import os
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from httpd_py.config import check, load
from httpd_py.errors import ConfigError

VALID = """ServerName main.test
Listen 127.0.0.1:18080
Define NAME v.test
SSLStaplingCache shmcb:logs/st(65536)
SSLUseStapling on
Mutex default ssl-stapling
<IfModule ssl_module>
    SSLProtocol all -TLSv1 -TLSv1.1
</IfModule>
<VirtualHost *:18080>
    ServerName ${NAME}
    ServerAlias *.v.test
    KeepAliveTimeout 3
    SSLStaplingResponderTimeout 4
    <Directory />
        Options -Indexes
        Require all granted
    </Directory>
</VirtualHost>
<IfDefine !NOPE>
    Timeout 20
    Redirect /a http://example.test/b
</IfDefine>
"""

TOKENS = ["<", ">", "</", "\\\n", "\n", "\"", "'", "#", "${", "}", " ", "\t", "\r\n", "*", ":",
          "(", ")", "!", "VirtualHost", "IfDefine", "Directory", "SSLUseStapling",
          "SSLStaplingCache", "shmcb", "on", "off", "abc", "-1", "65536", "Include", "Define",
          "*.conf", "Listen", "80", "\ufeff", "\x00", "é"]

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


def load_text(text: str):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "httpd.conf")
        with open(path, "w", encoding="utf-8", errors="surrogatepass", newline="") as f:
            f.write(text)
        try:
            cfg = load(path, log_warnings=False)
        except ConfigError as e:
            assert e.file is not None and e.line is not None and e.line >= 0, repr(e)
            assert str(e).startswith("AH00526: Syntax error on line ")
            return None
        try:
            check(cfg)
        except ConfigError as e:
            assert e.file is not None and e.line is not None, repr(e)
        return cfg


def test_valid_base_loads():
    cfg = load_text(VALID)
    assert cfg is not None and cfg.vhosts[0].server_name == "v.test"


@SETTINGS
@given(st.text(max_size=400))
def test_random_text(text):
    load_text(text)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_random_token_soup(tokens):
    load_text(" ".join(tokens))


@SETTINGS
@given(st.data())
def test_mutated_valid_config(data):
    text = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["delete", "insert", "replace", "dup_line", "drop_line"]))
        pos = data.draw(st.integers(0, len(text)))
        if op == "delete":
            text = text[:pos] + text[pos + data.draw(st.integers(1, 20)):]
        elif op == "insert":
            text = text[:pos] + data.draw(st.sampled_from(TOKENS)) + text[pos:]
        elif op == "replace":
            text = text[:pos] + data.draw(st.sampled_from(TOKENS)) + text[pos + 1:]
        else:
            lines = text.split("\n")
            i = data.draw(st.integers(0, len(lines) - 1))
            lines[i:i + 1] = [lines[i], lines[i]] if op == "dup_line" else []
            text = "\n".join(lines)
    load_text(text)


from httpd_py.config import directives as _directives  # noqa: E402

# Include is left out: "Include /" would read the whole filesystem.
NAMES = sorted(d.name for d in _directives.TABLE.values() if (d.handler is not None
               or d.read_time or d.is_section) and not d.name.startswith("Include"))
ARGS = st.one_of(st.sampled_from(TOKENS), st.integers(-5, 10 ** 12).map(str),
                 st.sampled_from(["on", "off", "shmcb:x(70000)", "redis:h:1", "*:443", "/",
                                  "a.test", "+StdEnvVars", "all", "TLSv1.3", "default",
                                  "file:/tmp", "http://x/", "5ms", "2mi", "!X", "mod_ssl.c"]))


@st.composite
def directive_lines(draw):
    lines = []
    for _ in range(draw(st.integers(1, 25))):
        name = draw(st.sampled_from(NAMES))
        args = " ".join(draw(st.lists(ARGS, max_size=4)))
        if name.startswith("<"):
            lines += [f"{name} {args}>", *draw(st.lists(st.sampled_from(["Timeout 5", "Bogus",
                                                                         "KeepAlive on"]),
                                                        max_size=2)), f"</{name[1:]}>"]
        else:
            lines.append(f"{name} {args}")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(directive_lines())
def test_random_directives_with_random_arguments(text):
    load_text(text)
