"""Debian's stock /etc/apache2 tree, copied and with ssl + default-ssl enabled as a2enmod/a2ensite
would do: ``httpd-py -t`` says Syntax OK, and ``httpd-py -S`` prints the same vhost lines as
``apache2 -S`` on the same tree and environment (from the copy's envvars, with the run, lock and
log directories pointed into the temporary copy).  /etc/apache2 itself is only read."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from httpd_py.devtools import pki
from tests.support.apache import SYNTAX_ERROR_AT, run_apache, vhost_lines
from tests.support.tools import require_tool

SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    require_tool("apache2")
    if not os.path.isdir("/etc/apache2"):
        require_tool("/etc/apache2 (Debian's apache2 package)")
    base = tmp_path_factory.mktemp("debian")
    conf = base / "apache2"
    shutil.copytree("/etc/apache2", conf, symlinks=True)
    for name in ("ssl.load", "ssl.conf", "socache_shmcb.load"):
        link = conf / "mods-enabled" / name
        if not link.exists():
            link.symlink_to(f"../mods-available/{name}")
    site = conf / "sites-enabled" / "default-ssl.conf"
    if not site.exists():
        site.symlink_to("../sites-available/default-ssl.conf")
    if not (os.path.exists(SNAKEOIL_CERT) and os.path.exists(SNAKEOIL_KEY)):
        leaf = pki.make_pki(base / "pki", ("localhost",), kinds=("rsa",)).leaf("localhost")
        ssl_site = conf / "sites-available" / "default-ssl.conf"
        text = ssl_site.read_text().replace(SNAKEOIL_CERT, str(leaf.cert_file)) \
            .replace(SNAKEOIL_KEY, str(leaf.key_file))
        ssl_site.write_text(text)
    for d in ("run", "lock", "log"):
        (base / d).mkdir()
    script = (f"export APACHE_CONFDIR={conf}; . {conf}/envvars; "
              f"export APACHE_RUN_DIR={base}/run APACHE_LOCK_DIR={base}/lock "
              f"APACHE_LOG_DIR={base}/log APACHE_PID_FILE={base}/run/apache2.pid; env -0")
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True,
                         env={"PATH": os.environ["PATH"]}).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return conf, env


def run(cmd, env):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


def ours(conf: Path, *args: str):
    return [sys.executable, "-m", "httpd_py", "-d", str(conf), "-f", str(conf / "apache2.conf"),
            *args]


def theirs(conf: Path, *args: str, env):
    return run_apache(conf, conf / "apache2.conf", *args, env=env, timeout=60)


def included_files(conf: Path, env) -> list[str]:
    """The files the tree reads, as httpd-py's -D DUMP_INCLUDES lists them."""
    listing = run(ours(conf, "-t", "-D", "DUMP_INCLUDES"), env).stdout
    return [l.split(") ", 1)[1] for l in listing.splitlines() if l.startswith("  ")]


def fresh_copy(conf: Path, work: Path) -> Path:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(conf, work, symlinks=True)
    return work


def rewrite(target: Path, lines: list[str]) -> None:
    target.unlink()                       # a symlink into mods-available: replace, not follow
    target.write_text("\n".join(lines) + "\n")


def judged_alike(work: Path, env, where) -> int:
    """apache2 -t and httpd-py -t on the copy at WORK: the same verdict, and the same file and
    line for an error.  Returns Apache's exit code."""
    e = dict(env, APACHE_CONFDIR=str(work))
    a = theirs(work, "-t", env=e)
    o = run(ours(work, "-t"), e)
    assert (a.returncode == 0) == (o.returncode == 0), (where, a.stderr, o.stderr)
    assert SYNTAX_ERROR_AT.findall(a.stdout + a.stderr)[-1:] == \
        SYNTAX_ERROR_AT.findall(o.stderr)[-1:], (where, a.stderr, o.stderr)
    return a.returncode


def test_syntax_ok(tree):
    conf, env = tree
    p = run(ours(conf, "-t"), env)
    assert p.returncode == 0 and "Syntax OK" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_vhost_lines_match_apache(tree):
    conf, env = tree
    a = theirs(conf, "-S", env=env)
    assert a.returncode == 0, a.stderr
    o = run(ours(conf, "-S"), env)
    assert o.returncode == 0, o.stderr
    assert vhost_lines(o.stdout) == vhost_lines(a.stdout)
    assert any(":443" in line for line in vhost_lines(o.stdout))
    run_cfg = {l.split(":", 1)[0]: l for l in o.stdout.splitlines() if l.startswith(
        ("ServerRoot:", "Main DocumentRoot:", "Main ErrorLog:", "PidFile:", "User:", "Group:"))}
    for line in a.stdout.splitlines():
        key = line.split(":", 1)[0]
        if key in run_cfg:
            assert run_cfg[key] == line


def test_dump_includes_matches_apache(tree):
    conf, env = tree
    o = run(ours(conf, "-t", "-D", "DUMP_INCLUDES"), env)
    assert o.returncode == 0, o.stderr
    a = theirs(conf, "-t", "-D", "DUMP_INCLUDES", env=env)
    listed = [l for l in a.stdout.splitlines() if l.startswith("  ")]
    assert listed and [l for l in o.stdout.splitlines() if l.startswith("  ")] == listed
    assert f"  (*) {conf}/apache2.conf" in o.stdout
    assert f"{conf}/sites-enabled/default-ssl.conf" in o.stdout
    assert f"{conf}/mods-enabled/ssl.conf" in o.stdout


def test_dump_certs_matches_apache(tree):
    conf, env = tree
    a = theirs(conf, "-t", "-D", "DUMP_CERTS", env=env)
    o = run(ours(conf, "-t", "-D", "DUMP_CERTS"), env)
    assert a.returncode == 0 and o.returncode == 0, o.stderr
    assert "Syntax OK" in o.stderr
    cut = lambda text: text[text.index("Server certificates:"):].splitlines()[:2]  # noqa: E731
    assert cut(o.stdout) == cut(a.stdout)


def test_every_debian_module_and_conf_enabled(tree, tmp_path):
    """The same tree with every shipped module (one MPM, mod_cgid for mod_cgi) and every
    conf-available file enabled: both accept it, and -S agrees."""
    conf, env = tree
    big = tmp_path / "apache2"
    shutil.copytree(conf, big, symlinks=True)
    for load in sorted((big / "mods-available").glob("*.load")):
        name = load.stem
        if name.startswith("mpm_") or name.startswith("php") or name == "cgi":
            continue
        for ext in (".load", ".conf"):
            src, dst = big / "mods-available" / (name + ext), big / "mods-enabled" / (name + ext)
            if src.exists() and not dst.exists():
                dst.symlink_to(f"../mods-available/{name}{ext}")
    for c in sorted((big / "conf-available").glob("*.conf")):
        dst = big / "conf-enabled" / c.name
        if not dst.exists():
            dst.symlink_to(f"../conf-available/{c.name}")
    env = dict(env, APACHE_CONFDIR=str(big))
    a = theirs(big, "-t", env=env)
    assert a.returncode == 0, a.stderr
    o = run(ours(big, "-t"), env)
    assert o.returncode == 0 and "Syntax OK" in o.stderr, o.stderr
    a = theirs(big, "-S", env=env)
    o = run(ours(big, "-S"), env)
    assert vhost_lines(o.stdout) == vhost_lines(a.stdout)


@pytest.mark.parametrize("bad,count", [
    ("BogusDirectiveH1 here", 30),
    pytest.param("</Location>", 8, marks=pytest.mark.slow),
    pytest.param("<Location /h1>", 8, marks=pytest.mark.slow),
    pytest.param("Define", 8, marks=pytest.mark.slow),
    pytest.param("SSLUseStapling maybe", 8, marks=pytest.mark.slow),
])
def test_a_bad_line_anywhere_in_the_tree_is_found_where_apache_finds_it(tree, tmp_path, bad,
                                                                        count):
    """An unknown directive inserted at 30 seeded-random places of the files the tree includes
    (some inside <IfModule>/<IfDefine> sections that are false): the same verdict, file and line
    as apache2 -t."""
    import random
    conf, env = tree
    included = included_files(conf, env)
    rng = random.Random(f"20261126{bad}")
    errors = 0
    for _ in range(count):
        work = fresh_copy(conf, tmp_path / "t")
        target = work / Path(rng.choice(included)).relative_to(conf)
        lines = target.read_text().splitlines()
        k = rng.randint(0, len(lines))
        lines.insert(k, bad)
        rewrite(target, lines)
        errors += judged_alike(work, env, (target, k + 1)) != 0
    assert errors >= count // 4, errors     # many insertions land in live configuration


@pytest.mark.slow
def test_mutated_debian_lines_are_judged_like_apache(tree, tmp_path):
    """25 seeded line mutations (delete, duplicate, swap with the next, truncate) of the files
    the tree includes (LoadModule lines left alone: httpd-py never opens the .so): the same
    verdict, file and line as apache2 -t."""
    import random
    conf, env = tree
    included = [f for f in included_files(conf, env) if not f.endswith(".load")]
    rng = random.Random(11)
    for _ in range(25):
        work = fresh_copy(conf, tmp_path / "m")
        target = work / Path(rng.choice(included)).relative_to(conf)
        lines = target.read_text().splitlines()
        k = rng.randrange(len(lines))
        op = rng.choice(["delete", "duplicate", "swap", "truncate"])
        if op == "delete":
            del lines[k]
        elif op == "duplicate":
            lines.insert(k, lines[k])
        elif op == "swap" and k + 1 < len(lines):
            lines[k], lines[k + 1] = lines[k + 1], lines[k]
        elif op == "truncate":
            lines[k] = lines[k][:rng.randrange(len(lines[k]) + 1)]
        rewrite(target, lines)
        judged_alike(work, env, (op, target, k + 1))
