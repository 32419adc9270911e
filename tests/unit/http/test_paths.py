"""URL path mapping: decoding, dot segments, Redirect/Alias, symlink and containment rules."""
from __future__ import annotations

import os

import pytest

from httpd_py.config.model import AliasSpec, RedirectSpec
from httpd_py.http.paths import (OpenFiles, PathError, find_redirect, map_to_root, normalize,
                                 percent_decode, resolve_file, split_target, url_path)


@pytest.mark.parametrize("target,path,query", [
    (b"/", "/", b""),
    (b"/a/b.html?x=1&y", "/a/b.html", b"x=1&y"),
    (b"//a///b", "/a/b", b""),
    (b"/a/./b/../c", "/a/c", b""),
    (b"/a/b/..", "/a/", b""),
    (b"/a/b/.", "/a/b/", b""),
    (b"/a/", "/a/", b""),
    (b"/%7Euser/x%20y", "/~user/x y", b""),
    (b"http://example.com/a/b?q", "/a/b", b"q"),
    (b"/a#frag", "/a", b""),
    (b"/caf%C3%A9", "/caf\u00e9", b""),
])
def test_url_path_normalises(target, path, query):
    assert url_path(target) == (path, query)


@pytest.mark.parametrize("target,status", [
    (b"/..", 400), (b"/../etc/passwd", 400), (b"/a/../../etc/passwd", 400),
    (b"/%2e%2e/etc/passwd", 400), (b"/%2E%2E/%2e%2E/etc/passwd", 400),
    (b"/a/%2e%2e/%2e%2e/x", 400),
    (b"/..%2fetc%2fpasswd", 404), (b"/a%2F..%2F..%2Fetc", 404),
    (b"/%00", 404), (b"/index.html%00.txt", 404),
    (b"/..%5c..%5cetc%5cpasswd", 404), (b"/a\\..\\..\\etc\\passwd", 404), (b"/..\\x", 404),
    (b"/%zz", 400), (b"/%4", 400), (b"/%", 400),
    (b"relative", 400), (b"*", 400),
])
def test_url_path_refuses(target, status):
    with pytest.raises(PathError) as ei:
        url_path(target)
    assert ei.value.status == status


def test_double_encoding_stays_literal():
    # %252e%252e decodes once to "%2e%2e", a harmless literal segment name
    assert url_path(b"/%252e%252e/etc/passwd") == ("/%2e%2e/etc/passwd", b"")


def test_non_utf8_bytes_round_trip_to_file_names():
    p = normalize(percent_decode(b"/%ff%fe"))
    assert os.fsencode(p) == b"/\xff\xfe"


def test_split_target_absolute_without_path():
    assert split_target(b"http://h") == (b"/", b"")


REDIRECTS = (RedirectSpec(301, "/old", "http://new.example/new"),
             RedirectSpec(410, "/gone", None),
             RedirectSpec(302, "/", "https://x.example/"))


@pytest.mark.parametrize("path,query,expect", [
    ("/old", b"", (301, "http://new.example/new")),
    ("/old/a/b", b"q=1", (301, "http://new.example/new/a/b?q=1")),
    ("/gone/x", b"", (410, None)),
    ("/oldish", b"", (302, "https://x.example/oldish")),
])
def test_redirects_match_whole_segments_in_order(path, query, expect):
    r = find_redirect(path, query, REDIRECTS)
    assert (r.status, r.location) == expect


def test_redirect_rest_is_percent_encoded():
    # a decoded %0d%0a must never reach a Location header as CR LF
    path, query = url_path(b"/old/a%0d%0aSet-Cookie:%20x/%C3%A9")
    r = find_redirect(path, query, REDIRECTS)
    assert r.location == "http://new.example/new/a%0D%0ASet-Cookie:%20x/%C3%A9"


def test_no_redirect():
    assert find_redirect("/x", b"", REDIRECTS[:2]) is None


def test_alias_then_document_root(tmp_path):
    aliases = (AliasSpec("/icons/", "/usr/share/icons/"), AliasSpec("/static", "/srv/static"))
    assert map_to_root("/icons/a.png", "/var/www", aliases) == ("/usr/share/icons", "/usr/share/icons/a.png")
    assert map_to_root("/static", "/var/www", aliases) == ("/srv/static", "/srv/static")
    assert map_to_root("/staticx/a", "/var/www", aliases) == ("/var/www", "/var/www/staticx/a")
    assert map_to_root("/a/b", "/var/www/", ()) == ("/var/www", "/var/www/a/b")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("i")
    (root / "sub" / "f.txt").write_text("f")
    (root / ".htaccess").write_text("secret")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    os.symlink(outside / "secret.txt", root / "out-link")
    os.symlink(outside, root / "out-dir")
    os.symlink(root / "sub" / "f.txt", root / "in-link")
    os.mkfifo(root / "fifo")
    return root


def _status(fn):
    with pytest.raises(PathError) as ei:
        fn()
    return ei.value.status


def test_resolve_regular_file_and_dir(tree):
    r = resolve_file(str(tree / "sub" / "f.txt"), str(tree))
    assert not r.is_dir and r.path == str(tree / "sub" / "f.txt")
    assert resolve_file(str(tree / "sub"), str(tree)).is_dir


def test_resolve_missing_is_404(tree):
    assert _status(lambda: resolve_file(str(tree / "nope"), str(tree))) == 404
    assert _status(lambda: resolve_file(str(tree / "index.html" / "x"), str(tree))) == 404


def test_symlink_inside_tree_followed_with_followsymlinks(tree):
    assert resolve_file(str(tree / "in-link"), str(tree)).path == str(tree / "sub" / "f.txt")


@pytest.mark.parametrize("name", ["out-link", "out-dir/secret.txt"])
def test_symlink_out_of_tree_always_refused(tree, name):
    for follow, owner in ((True, False), (False, False), (True, True)):
        assert _status(lambda: resolve_file(str(tree / name), str(tree), follow_symlinks=follow,
                                            if_owner_match=owner)) == 403


def test_followsymlinks_off_refuses_every_symlink(tree):
    assert _status(lambda: resolve_file(str(tree / "in-link"), str(tree), follow_symlinks=False)) == 403


def test_symlinks_if_owner_match(tree):
    # same owner: followed
    assert resolve_file(str(tree / "in-link"), str(tree), follow_symlinks=False, if_owner_match=True)
    if os.geteuid() != 0:
        return
    os.chown(tree / "sub" / "f.txt", 65534, 65534)   # target now owned by nobody, link by root
    assert _status(lambda: resolve_file(str(tree / "in-link"), str(tree), follow_symlinks=False,
                                        if_owner_match=True)) == 403


def test_ht_files_and_special_files_refused(tree):
    assert _status(lambda: resolve_file(str(tree / ".htaccess"), str(tree))) == 403
    assert _status(lambda: resolve_file(str(tree / "fifo"), str(tree))) == 403


# --- OpenFiles: descriptors kept across requests (real files, real descriptors) ---------------

def _kept(tree, name, files, **kw):
    return resolve_file(str(tree / name), str(tree), open_file=True, open_files=files, **kw)


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_kept_descriptor_is_reused_for_the_same_file(tree):
    files = OpenFiles()
    first = _kept(tree, "sub/f.txt", files)
    second = _kept(tree, "sub/f.txt", files)
    assert first.kept and second.kept and second.fd == first.fd and len(files) == 1
    assert os.pread(second.fd, 10, 0) == b"f" and second.st.st_size == 1
    files.close()
    assert not _fd_open(first.fd)


def test_in_place_change_is_seen_and_replacement_gets_a_fresh_descriptor(tree):
    files = OpenFiles()
    path = tree / "sub" / "f.txt"
    first = _kept(tree, "sub/f.txt", files)
    path.write_text("longer")                                  # same inode: new size, new bytes
    again = _kept(tree, "sub/f.txt", files)
    assert again.fd == first.fd and again.st.st_size == 6 and os.pread(again.fd, 10, 0) == b"longer"
    new = tree / "sub" / "new.tmp"
    new.write_text("replaced")
    os.replace(new, path)                                      # editor-style replacement
    third = _kept(tree, "sub/f.txt", files)
    # a new inode behind a fresh descriptor (the number itself may be reused)
    assert third.st.st_ino != first.st.st_ino and os.pread(third.fd, 20, 0) == b"replaced"
    assert len(files) == 1
    files.close()


def test_kept_file_moved_out_of_the_root_behind_a_symlink_is_refused(tree):
    files = OpenFiles()
    path = tree / "sub" / "f.txt"
    _kept(tree, "sub/f.txt", files)
    outside = tree.parent / "outside" / "moved.txt"
    os.rename(path, outside)                                   # the same inode leaves the tree
    os.symlink(outside, path)                                  # and the old name points at it
    assert _status(lambda: _kept(tree, "sub/f.txt", files)) == 403
    assert len(files) == 0
    files.close()


def test_unlinked_inside_name_with_a_hard_link_outside_is_refused(tree):
    files = OpenFiles()
    path = tree / "sub" / "f.txt"
    _kept(tree, "sub/f.txt", files)
    outside = tree.parent / "outside" / "hard.txt"
    os.link(path, outside)                                     # a second name, outside
    os.unlink(path)                                            # the inside name is gone
    os.symlink(outside, path)                                  # the path now reaches the outside name
    assert _status(lambda: _kept(tree, "sub/f.txt", files)) == 403
    files.close()


def test_symlink_options_still_checked_on_a_hit(tree):
    files = OpenFiles()
    _kept(tree, "sub/f.txt", files)
    os.unlink(tree / "sub" / "f.txt")
    os.symlink(tree / "index.html", tree / "sub" / "f.txt")
    assert _status(lambda: _kept(tree, "sub/f.txt", files, follow_symlinks=False)) == 403
    files.close()


def test_open_files_bounded_oldest_closed(tree):
    files = OpenFiles(size=2)
    for i in range(3):
        (tree / f"n{i}.txt").write_text(str(i))
    fds = [_kept(tree, f"n{i}.txt", files).fd for i in range(3)]
    assert len(files) == 2
    assert not _fd_open(fds[0]) and _fd_open(fds[1]) and _fd_open(fds[2])
    files.close()


def test_directories_are_never_kept(tree):
    files = OpenFiles()
    r = resolve_file(str(tree / "sub"), str(tree), open_file=True, open_files=files)
    assert r.is_dir and r.fd is None and not r.kept and len(files) == 0


def _counting_readlink(monkeypatch) -> list:
    calls = []
    real = os.readlink

    def readlink(p, *a, **kw):
        calls.append(p)
        return real(p, *a, **kw)
    monkeypatch.setattr(os, "readlink", readlink)
    return calls


def test_kept_hit_under_root_slash_skips_readlink_until_the_inode_changes(tree, monkeypatch):
    files = OpenFiles()
    path = str(tree / "sub" / "f.txt")
    first = resolve_file(path, "/", root_real="/", open_file=True, open_files=files)
    calls = _counting_readlink(monkeypatch)
    again = resolve_file(path, "/", root_real="/", open_file=True, open_files=files)
    assert again.fd == first.fd and again.path == first.path and calls == []
    os.link(path, tree / "sub" / "other.txt")          # the inode changed: checked once more
    resolve_file(path, "/", root_real="/", open_file=True, open_files=files)
    assert len(calls) == 1
    resolve_file(path, "/", root_real="/", open_file=True, open_files=files)
    assert len(calls) == 1                             # and kept again with its new ctime
    files.close()


def test_kept_hit_under_root_slash_still_refuses_a_ht_name_reached_by_a_link_trick(tree):
    files = OpenFiles()
    path = tree / "sub" / "f.txt"
    resolve_file(str(path), "/", root_real="/", open_file=True, open_files=files)
    os.link(path, tree / "sub" / ".htsecret")          # the same inode under a .ht name
    os.unlink(path)                                    # the kept descriptor's name is gone
    os.symlink(tree / "sub" / ".htsecret", path)       # the old name reaches the .ht one
    assert _status(lambda: resolve_file(str(path), "/", root_real="/", open_file=True,
                                        open_files=files)) == 403
    files.close()
