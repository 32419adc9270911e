"""config/dirconf.py: OptionsSpec (apply/then), merge() field by field, and AuthMerging's
combination of inherited Require trees, both on hand-built DirConfs and on configs loaded from
text (Apache 2.4's core merge_core_dir_configs and mod_authz_core's merge_authz_core_dir_config).
"""
from __future__ import annotations

import pytest

from httpd_py.config import load
from httpd_py.config.dirconf import (
    DEFAULT_OPTIONS, EMPTY, DirConf, OptionsSpec, Section, effective_options, merge,
)
from httpd_py.config.model import UNSET
from httpd_py.errors import ConfigError
from httpd_py.modules.authz_core import Container, Rule, add_rule, parse_require

FS = frozenset
ALL = FS({"execcgi", "includes", "indexes", "followsymlinks"})


# -- helpers ------------------------------------------------------------------------------------
def conf_text(tmp_path, body: str) -> str:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    return (f"Listen 127.0.0.1:18080\nServerRoot {tmp_path}\nDocumentRoot {docs}\n"
            f"ErrorLog {tmp_path}/error.log\n" + body)


def ld(tmp_path, body: str):
    p = tmp_path / "httpd.conf"
    p.write_text(conf_text(tmp_path, body))
    return load(str(p), log_warnings=False)


def err(tmp_path, body: str) -> str:
    with pytest.raises(ConfigError) as e:
        ld(tmp_path, body)
    return e.value.msg


def section_confs(cfg):
    return [s.conf for s in cfg.main.sections]


def merged_chain(cfg):
    """main.dir, then every main-server section in file order."""
    out = cfg.main.dir
    for c in section_confs(cfg):
        out = merge(out, c)
    return out


def rule(text: str) -> Rule:
    words = text.split()[1:]                  # without "Require"
    return parse_require(words, " ".join(words[1:]), None)


def tree(*texts: str) -> Container:
    c = None
    for t in texts:
        c = add_rule(c, rule(t))
    return c


# -- OptionsSpec --------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, inherited, expected", [
    (OptionsSpec(FS({"indexes"})), DEFAULT_OPTIONS, {"indexes"}),               # replace
    (OptionsSpec(FS()), ALL, set()),                                           # None
    (OptionsSpec(ALL), FS(), ALL),                                             # All
    (OptionsSpec(None, FS({"indexes"})), DEFAULT_OPTIONS, {"indexes", "followsymlinks"}),
    (OptionsSpec(None, FS(), FS({"followsymlinks"})), DEFAULT_OPTIONS, set()),
    (OptionsSpec(None, FS({"execcgi"}), FS({"indexes"})), FS({"indexes", "followsymlinks"}),
     {"execcgi", "followsymlinks"}),
    (OptionsSpec(None), FS({"indexes"}), {"indexes"}),                         # no change
    (OptionsSpec(None, FS(), FS({"execcgi"})), FS({"indexes"}), {"indexes"}),  # remove absent
])
def test_options_apply(spec, inherited, expected):
    assert spec.apply(inherited) == expected


@pytest.mark.parametrize("first, later, inherited, expected", [
    # a replacing line after anything wins outright
    (OptionsSpec(None, FS({"indexes"})), OptionsSpec(FS({"execcgi"})), ALL, {"execcgi"}),
    # +/- after a replacing line adjusts it (and no longer depends on what is inherited)
    (OptionsSpec(FS({"indexes"})), OptionsSpec(None, FS({"followsymlinks"})), FS(),
     {"indexes", "followsymlinks"}),
    (OptionsSpec(ALL), OptionsSpec(None, FS(), FS({"indexes"})), FS(), ALL - {"indexes"}),
    # +/- after +/-: accumulate, the later sign wins for the same word
    (OptionsSpec(None, FS({"indexes"})), OptionsSpec(None, FS(), FS({"indexes"})),
     FS({"indexes"}), set()),
    (OptionsSpec(None, FS(), FS({"indexes"})), OptionsSpec(None, FS({"indexes"})), FS(),
     {"indexes"}),
    (OptionsSpec(None, FS({"execcgi"})), OptionsSpec(None, FS({"indexes"})), DEFAULT_OPTIONS,
     {"execcgi", "indexes", "followsymlinks"}),
])
def test_options_then(first, later, inherited, expected):
    combined = first.then(later)
    assert combined.apply(inherited) == expected
    # then() is the same as applying the two lines one after the other
    assert later.apply(first.apply(inherited)) == expected


@pytest.mark.parametrize("lines, expected", [
    (["Options Indexes"], {"indexes"}),
    (["Options None"], set()),
    (["Options All"], ALL),
    (["Options +Indexes"], {"indexes", "followsymlinks"}),          # over the default
    (["Options -FollowSymLinks"], set()),
    (["Options +Indexes -FollowSymLinks"], {"indexes"}),
    (["Options Indexes FollowSymLinks"], {"indexes", "followsymlinks"}),
    (["Options Indexes", "Options +ExecCGI"], {"indexes", "execcgi"}),
    (["Options +Indexes", "Options ExecCGI"], {"execcgi"}),         # a plain line replaces
    (["Options +Indexes", "Options -Indexes"], {"followsymlinks"}),
    (["Options All", "Options -ExecCGI -Includes"], {"indexes", "followsymlinks"}),
    (["options indexes followsymlinks"], {"indexes", "followsymlinks"}),   # any case
])
def test_options_lines_in_one_section(tmp_path, lines, expected):
    body = "<Directory {d}>\n" + "\n".join(lines) + "\n</Directory>\n"
    cfg = ld(tmp_path, body.format(d=tmp_path / "docs"))
    (c,) = section_confs(cfg)
    assert effective_options(merge(cfg.main.dir, c)) == expected


@pytest.mark.parametrize("outer, inner, expected", [
    ("Options Indexes", "Options +FollowSymLinks", {"indexes", "followsymlinks"}),
    ("Options Indexes FollowSymLinks", "Options -Indexes", {"followsymlinks"}),
    ("Options None", "Options +Indexes", {"indexes"}),
    ("Options All", "Options None", set()),
    ("Options +Indexes", "Options -FollowSymLinks", {"indexes"}),
    ("Options -FollowSymLinks", "Options +ExecCGI", {"execcgi"}),
    ("Options ExecCGI", "", {"execcgi"}),                          # inherited as is
    ("", "Options -FollowSymLinks", set()),
])
def test_options_across_sections(tmp_path, outer, inner, expected):
    d = tmp_path / "docs"
    cfg = ld(tmp_path, f"<Directory {d}>\n{outer}\n</Directory>\n"
                       f"<Directory {d}/a>\n{inner}\n</Directory>\n")
    assert effective_options(merged_chain(cfg)) == expected


def test_options_outside_sections_is_the_server_base(tmp_path):
    cfg = ld(tmp_path, "Options Indexes\n")
    assert effective_options(cfg.main.dir) == {"indexes"}
    assert effective_options(EMPTY) == DEFAULT_OPTIONS


@pytest.mark.parametrize("line, msg", [
    ("Options Indexes +ExecCGI", "Either all Options must start with + or -, or no Option may."),
    ("Options +Indexes ExecCGI", "Either all Options must start with + or -, or no Option may."),
    ("Options Bogus", "Illegal option Bogus"),
])
def test_options_errors(tmp_path, line, msg):
    assert err(tmp_path, f"<Directory {tmp_path}/docs>\n{line}\n</Directory>\n").endswith(msg)


# Apache's set_options (core.c): after a leading All or None, +/- words are allowed
# ("Options All -Indexes" is All without Indexes); None/All must come first, unsigned.
@pytest.mark.parametrize("line, expected", [
    ("Options All -Indexes", ALL - {"indexes"}),
    ("Options None +Indexes", {"indexes"}),
])
def test_options_all_or_none_then_signed_words_as_apache(tmp_path, line, expected):
    cfg = ld(tmp_path, f"<Directory {tmp_path}/docs>\n{line}\n</Directory>\n")
    assert effective_options(merged_chain(cfg)) == expected


@pytest.mark.parametrize("line, msg", [
    ("Options Indexes None", "'Options None' must be the first Option given."),
    ("Options Indexes All", "'Options All' must be the first option given."),
    ("Options +None", "You may not use 'Options +None' or 'Options -None'."),
    ("Options -All", "You may not use 'Options +All' or 'Options -All'."),
])
def test_options_misplaced_all_none_refused_as_apache(tmp_path, line, msg):
    assert msg in err(tmp_path, f"<Directory {tmp_path}/docs>\n{line}\n</Directory>\n")


# -- merge(): field by field ---------------------------------------------------------------------
def test_merge_empty_is_identity():
    c = DirConf(directory_index=("x.html",))
    assert merge(EMPTY, c) is c and merge(c, EMPTY) is c
    assert merge(EMPTY, EMPTY) is EMPTY


@pytest.mark.parametrize("field, base, new, expected", [
    # plain fields: the later section wins, UNSET inherits
    ("directory_index", ("a.html",), ("b.html",), ("b.html",)),
    ("directory_index", ("a.html",), UNSET, ("a.html",)),
    ("directory_index", UNSET, (), ()),                          # disabled is a value
    ("limit_request_body", 10, 20, 20),
    ("limit_request_body", 10, UNSET, 10),
    ("auth_type", "basic", "none", "none"),
    ("auth_name", "r1", UNSET, "r1"),
    ("auth_user_file", UNSET, "/p", "/p"),
    ("satisfy", "any", "all", "all"),
    ("satisfy", "any", UNSET, "any"),
    ("authz_forbidden_on_fail", True, False, False),
    ("authz_forbidden_on_fail", True, UNSET, True),
    # lists that append: the earlier entries first (a later one for the same key wins on lookup)
    ("error_documents", ((404, "/a"),), ((404, "/b"), (500, "/c")),
     ((404, "/a"), (404, "/b"), (500, "/c"))),
    ("error_documents", ((404, "/a"),), UNSET, ((404, "/a"),)),
    ("add_types", ((".x", "text/x"),), ((".y", "text/y"),), ((".x", "text/x"), (".y", "text/y"))),
    ("add_types", UNSET, ((".y", "text/y"),), ((".y", "text/y"),)),
    # mod_access_compat: Order/Allow/Deny lines accumulate
    ("order", ((None, "deny,allow"),), ((None, "allow,deny"),),
     ((None, "deny,allow"), (None, "allow,deny"))),
    ("allows", ("A",), ("B",), ("A", "B")),
    ("denies", ("A",), UNSET, ("A",)),
])
def test_merge_field(field, base, new, expected):
    other = "auth_group_file"              # something else set, so neither side is EMPTY
    b = DirConf(**({field: base} if base is not UNSET else {}), **{other: "/b"})
    n = DirConf(**({field: new} if new is not UNSET else {}), **{other: "/n"})
    got = merge(b, n)
    assert got.auth_group_file == "/n"
    assert getattr(got, field) == expected


def test_merge_nested_files_and_ifs_concatenate():
    f1 = Section("files", "a", DirConf(auth_name="1"))
    f2 = Section("files", "b", DirConf(auth_name="2"))
    i1 = Section("if", "true", EMPTY, chain=((None, DirConf(auth_name="i1")),))
    base = DirConf(files=(f1,), ifs=(i1,))
    new = DirConf(files=(f2,))
    got = merge(base, new)
    assert got.files == (f1, f2) and got.ifs == (i1,)
    assert merge(new, base).files == (f2, f1)


def test_merge_does_not_mutate_and_is_associative_on_plain_fields():
    a = DirConf(directory_index=("a",), error_documents=((404, "/a"),))
    b = DirConf(auth_name="b", error_documents=((403, "/b"),))
    c = DirConf(directory_index=("c",), error_documents=((500, "/c"),))
    left, right = merge(merge(a, b), c), merge(a, merge(b, c))
    assert left == right
    assert a.error_documents == ((404, "/a"),)
    assert left.directory_index == ("c",) and left.auth_name == "b"


def test_access_compat_fields_from_config(tmp_path):
    d = tmp_path / "docs"
    cfg = ld(tmp_path, f"<Directory {d}>\nOrder Allow,Deny\nAllow from 10.0.0.1\n"
                       f"Satisfy Any\n</Directory>\n"
                       f"<Directory {d}/a>\nDeny from 10.0.0.2\nOrder Deny,Allow\n"
                       f"</Directory>\n")
    m = merged_chain(cfg)
    assert [o for _, o in m.order] == ["allow,deny", "deny,allow"]
    assert len(m.allows) == 1 and len(m.denies) == 1
    assert m.satisfy == "any"


def test_error_document_and_add_type_from_config(tmp_path):
    d = tmp_path / "docs"
    cfg = ld(tmp_path, f"<Directory {d}>\nErrorDocument 404 /a.html\nAddType text/x .x\n"
                       f"</Directory>\n<Directory {d}/a>\nErrorDocument 404 /b.html\n"
                       f"AddType text/y .y\n</Directory>\n")
    m = merged_chain(cfg)
    eds = [e for e in m.error_documents if e[0] == 404]
    assert len(eds) == 2 and "/b.html" in str(eds[-1])
    assert len(m.add_types) >= 2


# -- AuthMerging ---------------------------------------------------------------------------------
A, B = tree("Require all denied"), tree("Require ip 10.0.0.1")


@pytest.mark.parametrize("base, new, expected", [
    # Off (or not given): a section with Require lines replaces what it inherits
    (DirConf(authz=A), DirConf(authz=B), B),
    (DirConf(authz=A), DirConf(authz=B, auth_merging="off"), B),
    # not given and no Require lines: inherits
    (DirConf(authz=A), DirConf(auth_name="x"), A),
    (DirConf(authz=A), DirConf(authz_forbidden_on_fail=True), A),
    # Off with no Require lines: Apache copies the new (empty) authz config: nothing applies
    (DirConf(authz=A), DirConf(auth_merging="off"), UNSET),
    # And/Or with Require on both sides: a merged container, inherited rules first
    (DirConf(authz=A), DirConf(authz=B, auth_merging="and"),
     Container("and", False, (A, B), merged=True)),
    (DirConf(authz=A), DirConf(authz=B, auth_merging="or"),
     Container("or", False, (A, B), merged=True)),
    # And/Or with one side empty: that side's tree
    (DirConf(authz=A), DirConf(auth_merging="and"), A),
    (DirConf(auth_name="x"), DirConf(authz=B, auth_merging="or"), B),
    (EMPTY, DirConf(authz=B, auth_merging="and"), B),
    (DirConf(auth_name="x"), DirConf(auth_merging="or"), UNSET),
])
def test_auth_merging_table(base, new, expected):
    got = merge(base, new)
    assert got.authz == expected
    if isinstance(expected, Container) and expected.merged:
        assert got.authz.merged is True and got.authz.items[0] is A and got.authz.items[1] is B


def test_auth_merging_three_levels_nests():
    c = tree("Require method GET")
    m = merge(merge(DirConf(authz=A), DirConf(authz=B, auth_merging="or")),
              DirConf(authz=c, auth_merging="and"))
    inner = Container("or", False, (A, B), merged=True)
    assert m.authz == Container("and", False, (inner, c), merged=True)


def test_auth_merging_inherited_setting_does_not_carry_to_children():
    """AuthMerging is per section: a child with its own Require and no AuthMerging replaces."""
    m = merge(merge(DirConf(authz=A), DirConf(authz=B, auth_merging="and")), DirConf(authz=A))
    assert m.authz == A


@pytest.mark.parametrize("inner, expected_op", [
    ("AuthMerging And\nRequire ip 10.0.0.1", "and"),
    ("AuthMerging Or\nRequire ip 10.0.0.1", "or"),
    ("AuthMerging Off\nRequire ip 10.0.0.1", None),
    ("Require ip 10.0.0.1", None),
])
def test_auth_merging_from_config(tmp_path, inner, expected_op):
    d = tmp_path / "docs"
    cfg = ld(tmp_path, f"<Directory {d}>\nRequire all denied\n</Directory>\n"
                       f"<Directory {d}/a>\n{inner}\n</Directory>\n")
    outer_c, inner_c = section_confs(cfg)
    m = merged_chain(cfg)
    if expected_op is None:
        assert m.authz == inner_c.authz and not m.authz.merged
    else:
        assert m.authz == Container(expected_op, False, (outer_c.authz, inner_c.authz),
                                    merged=True)


def test_auth_merging_bad_value(tmp_path):
    assert "AuthMerging must be one of: Off | And | Or" in err(
        tmp_path, f"<Directory {tmp_path}/docs>\nAuthMerging Maybe\n</Directory>\n")


def test_vhost_dir_is_main_dir_merged_with_vhost_own(tmp_path):
    cfg = ld(tmp_path, "Options Indexes\nDirectoryIndex main.html\n<VirtualHost *:18080>\n"
                       "ServerName v\nOptions +ExecCGI\n</VirtualHost>\n")
    (v,) = cfg.vhosts
    assert effective_options(v.dir) == {"indexes", "execcgi"}
    assert v.dir.directory_index == ("main.html",)


def test_auth_name_outside_sections_not_allowed(tmp_path):
    # OR_AUTHCFG directives are not allowed at server level (Apache: "not allowed here")
    assert "AuthName not allowed here" in err(tmp_path, "AuthName main\n")
