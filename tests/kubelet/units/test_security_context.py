"""securityContext as the runtime config gets it: capabilities, the passwd gid rule,
noNewPrivileges, the runAsNonRoot check."""
import pytest

from cri.api import Image
from cri.container_spec import DEFAULT_CAPS, _passwd_gid, capabilities
from kubelet.pods import Pod
from kubelet.sync import security_context


def test_capabilities_as_containerd_makes_them():
    assert capabilities([], [], False) == DEFAULT_CAPS
    assert capabilities(["NET_BIND_SERVICE"], ["ALL"], False) == ["CAP_NET_BIND_SERVICE"]
    caps = capabilities(["net_admin"], ["CAP_KILL"], False)
    assert "CAP_NET_ADMIN" in caps and "CAP_KILL" not in caps
    assert "CAP_SYS_ADMIN" in capabilities(["ALL"], [], False)
    assert set(capabilities([], ["ALL"], True)) >= set(DEFAULT_CAPS)   # privileged: all held


def test_run_as_user_takes_the_group_of_its_passwd_entry_else_zero():
    passwd = "root:x:0:0::/:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"
    assert _passwd_gid(passwd, 1000) == 1001
    assert _passwd_gid(passwd, 4242) == 0
    assert _passwd_gid(None, 1000) == 0


def test_no_new_privileges_only_when_escalation_is_refused():
    assert security_context.no_new_privileges({"allowPrivilegeEscalation": False})
    assert not security_context.no_new_privileges({})
    assert not security_context.no_new_privileges(
        {"allowPrivilegeEscalation": False, "privileged": True})
    assert not security_context.no_new_privileges(
        {"allowPrivilegeEscalation": False, "capabilities": {"add": ["SYS_ADMIN"]}})


@pytest.mark.parametrize("image, run_as_user, message", [
    (Image("i", [], [], 0, uid=0), None, "image will run as root"),
    (Image("i", [], [], 0, uid=None, username="app"), None, r"non-numeric user \(app\)"),
    (Image("i", [], [], 0, uid=1000), 0, "runAsUser breaks non-root policy"),
])
def test_run_as_non_root_refusals(image, run_as_user, message):
    sc = {"runAsNonRoot": True}
    if run_as_user is not None:
        sc["runAsUser"] = run_as_user
    pod = Pod({"metadata": {"name": "p", "namespace": "n", "uid": "u"},
               "spec": {"securityContext": sc}})
    with pytest.raises(security_context.NonRootError, match=message):
        security_context.verify_run_as_non_root(pod, {"name": "c"}, image)
    security_context.verify_run_as_non_root(pod, {"name": "c", "securityContext": {
        "runAsUser": 1000}}, image)
