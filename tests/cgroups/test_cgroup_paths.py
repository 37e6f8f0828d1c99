"""OCI linux.cgroupsPath forms (no root needed)."""
import pytest

import cgroups


def test_no_path_is_the_id_under_our_parent():
    assert cgroups.resolve_path(None, "web") == "/pycontainer/web"
    assert cgroups.resolve_path("", "web") == "/pycontainer/web"


def test_relative_path_goes_under_our_parent():
    assert cgroups.resolve_path("pods/web", "x") == "/pycontainer/pods/web"
    assert cgroups.resolve_path("pods//web/", "x") == "/pycontainer/pods/web"


def test_parent_is_configurable():
    assert cgroups.resolve_path(None, "web", parent="pykubelet") == "/pykubelet/web"
    assert cgroups.resolve_path("a", "web", parent="ci/run1") == "/ci/run1/a"


def test_absolute_path_is_kept_as_given():
    assert cgroups.resolve_path("/mine/web", "x") == "/mine/web"
    assert cgroups.resolve_path("//mine//web/", "x") == "/mine/web"


@pytest.mark.parametrize("path", ["/a/../b", "../b", "a/./b", "/.."])
def test_dot_components_are_refused(path):
    with pytest.raises(cgroups.CgroupError, match=r"^linux.cgroupsPath: must not contain '\.\.?'"):
        cgroups.resolve_path(path, "x")


def test_root_cgroup_is_refused():
    with pytest.raises(cgroups.CgroupError, match="must not be the root cgroup"):
        cgroups.resolve_path("/", "x")


@pytest.mark.parametrize("bad_id", ["", "a/b", "..", "."])
def test_bad_container_id_is_refused(bad_id):
    with pytest.raises(cgroups.CgroupError, match="container id"):
        cgroups.resolve_path(None, bad_id)


def test_bad_parent_is_refused():
    with pytest.raises(cgroups.CgroupError, match="cgroup parent"):
        cgroups.resolve_path(None, "x", parent="/abs")
    with pytest.raises(cgroups.CgroupError, match="cgroup parent"):
        cgroups.resolve_path(None, "x", parent="a/../b")


def test_systemd_form_says_the_driver_is_unavailable():
    # This machine's PID 1 is not systemd (see the brief); the message says so.
    with pytest.raises(cgroups.SystemdUnavailable,
                       match=r"^systemd cgroup driver not available: systemd is not PID 1$"):
        cgroups.resolve_path("system.slice:pycontainer:web", "web")
    with pytest.raises(cgroups.SystemdUnavailable):
        cgroups.resolve_path(None, "web", systemd=True)
    assert issubclass(cgroups.SystemdUnavailable, cgroups.CgroupError)
    assert issubclass(cgroups.CgroupError, ValueError)


@pytest.mark.parametrize("path", ["pycontainer/web", "/", "/a/../b", "/a//b", "/a/", ""])
def test_open_cgroup_refuses_a_path_resolve_path_would_not_give(path):
    with pytest.raises(cgroups.CgroupError, match="cgroup path"):
        cgroups.open_cgroup(path)
