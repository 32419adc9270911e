"""Line reading and word splitting, as Apache's ap_cfg_getline + ap_getword_conf do them."""
import pytest

from httpd_py.config.parser import first_word, join_continuations, parse_text, split_args


def lines(text):
    return [(l.kind, l.text, l.line) for l in parse_text(text, "t.conf")]


@pytest.mark.parametrize("text,words", [
    ("ServerName a.test", ["ServerName", "a.test"]),
    ('Header set X "a \\"quoted\\" value"', ["Header", "set", "X", 'a "quoted" value']),
    ("X 'single \\'q\\''", ["X", "single 'q'"]),
    (r"X C:\path\x", ["X", r"C:\path\x"]),                 # backslash outside quotes is literal
    (r'X "a\\b" "c\d"', ["X", r"a\b", r"c\d"]),            # only \\ and \" are escapes in quotes
    ('X "unterminated rest of line', ["X", "unterminated rest of line"]),
    ("X a#b # c", ["X", "a#b", "#", "c"]),                   # '#' mid-line is an argument
    ('X abc"def ghi"', ["X", 'abc"def', 'ghi"']),            # a quote only opens at word start
    ("X\t\ta \x0b b", ["X", "a", "b"]),
    ('X "" \'\'', ["X", "", ""]),
    ("", []),
    ("   ", []),
])
def test_split_args(text, words):
    assert split_args(text) == words


def test_first_word_keeps_rest():
    assert first_word('<If "%{HTTP_HOST} == \'a>b\'">') == ("<If", '"%{HTTP_HOST} == \'a>b\'">')


def test_comments_blank_lines_and_indentation():
    text = "# comment\n\n   # indented comment\n  Listen 80  \n\t\n<VirtualHost *:80>\n</VirtualHost>\n"
    assert lines(text) == [("directive", "Listen 80", 4), ("open", "<VirtualHost *:80>", 6),
                           ("close", "</VirtualHost>", 7)]


def test_continuation_reports_last_physical_line():
    text = "A 1\nServerAdmin a \\\n  b\\\n c\nB 2\n"
    assert lines(text) == [("directive", "A 1", 1), ("directive", "ServerAdmin a   b c", 4),
                           ("directive", "B 2", 5)]


def test_continuation_inside_quotes():
    assert split_args(join_continuations('SSLCipherSuite "AES128 \\\n    AES256"').strip()) == \
        ["SSLCipherSuite", "AES128     AES256"]


def test_comment_continuation_swallows_next_line():
    assert lines("# note \\\nListen 8443\nListen 80\n") == [("directive", "Listen 80", 3)]


def test_continuation_at_end_of_file():
    # Apache continues only on backslash + newline; a final backslash without one stays.
    assert lines("A b\\") == [("directive", "A b\\", 1)]
    assert lines("A b\\\n") == [("directive", "A b", 2)]


def test_crlf_bom_and_no_final_newline():
    assert lines("\ufeffListen 80\r\nServerName a\r\nB") == [
        ("directive", "Listen 80", 1), ("directive", "ServerName a", 2), ("directive", "B", 3)]


def test_very_long_line():
    long = "x" * 200_000
    assert lines(f"ServerAdmin {long}\n") == [("directive", f"ServerAdmin {long}", 1)]


def test_hash_mid_line_is_not_a_comment():
    assert lines("RewriteRule ^/a#b$ /c [NE]\n") == [("directive", "RewriteRule ^/a#b$ /c [NE]", 1)]


def test_whole_file_feed_equals_line_by_line():
    text = "A 1\n# c\n<S x>\n  B \"q r\"\n</S>\nC \\\n d\n"
    whole = lines(text)
    physical = text.split("\n")
    joined = "\n".join(physical)
    assert lines(joined) == whole
