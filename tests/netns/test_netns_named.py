"""Named network namespaces and entering them without moving the caller's thread."""
import os
import threading

import pytest

from netns import enter, links, named, rtnl

pytestmark = pytest.mark.root


def _thread_netns() -> int:
    return os.stat(f"/proc/self/task/{threading.get_native_id()}/ns/net").st_ino


def test_create_list_delete(namespaces):
    path = namespaces.new("alpha")
    assert path == os.path.join(namespaces.dir, "alpha")
    assert named.list_names(namespaces.dir) == ["alpha"]
    assert os.stat(path).st_ino != _thread_netns()
    # A fresh namespace has only a loopback, down.
    with rtnl.open_in(path) as sock:
        assert [(l.name, l.up) for l in links.list_links(sock)] == [("lo", False)]
    assert named.delete("alpha", namespaces.dir) is True
    assert named.list_names(namespaces.dir) == []
    assert named.delete("alpha", namespaces.dir) is False


def test_create_twice_fails_and_keeps_the_first(namespaces):
    path = namespaces.new("beta")
    inode = os.stat(path).st_ino
    with pytest.raises(FileExistsError):
        named.create("beta", namespaces.dir)
    assert os.stat(path).st_ino == inode


@pytest.mark.parametrize("bad", ["", "..", "a/b"])
def test_bad_names_are_refused(namespaces, bad):
    with pytest.raises(ValueError, match="invalid netns name"):
        named.create(bad, namespaces.dir)


def test_run_in_netns_never_moves_the_caller(namespaces):
    path = namespaces.new()
    before = _thread_netns()
    inside = enter.run_in_netns(path, _thread_netns)
    assert inside == os.stat(path).st_ino != before
    with pytest.raises(ZeroDivisionError):
        enter.run_in_netns(path, lambda: 1 / 0)
    assert _thread_netns() == before


def test_concurrent_entries_each_see_their_own_namespace(namespaces):
    paths = [namespaces.new() for _ in range(4)]
    seen = {}

    def work(p):
        seen[p] = enter.run_in_netns(p, _thread_netns)

    threads = [threading.Thread(target=work, args=(p,)) for p in paths * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "threads entering namespaces: not done in 60 s"
    assert seen == {p: os.stat(p).st_ino for p in paths}


def test_missing_namespace_raises_file_not_found(namespaces):
    with pytest.raises(FileNotFoundError):
        enter.run_in_netns(os.path.join(namespaces.dir, "nope"), lambda: None)
