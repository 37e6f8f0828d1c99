"""The protobuf bodies the upstream kubelet writes (its contentType is protobuf by default):
bodies that kube-apiserver 1.35 encoded (its protobuf answers to GETs of objects created from the
JSON beside them) decode to that JSON, and a protobuf POST of a Lease and an Event to pyapiserver
creates what a JSON one would."""
from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request

import pytest

from apiserver_testlib import ADMIN_TOKEN
from kubeapi import protobuf_node

LEASE_PROTOBUF = base64.b64decode(
    "azhzAAofChZjb29yZGluYXRpb24uazhzLmlvL3YxEgVMZWFzZRKfAgqBAgoGbm9kZS1hEgAaB2RlZmF1bHQiACokMGI5"
    "ZDY3YzAtZDMwYi00YTNkLTlkN2YtZTRmZjJlNmY0ZWZjMgM0NjY4AEIICKvP2NgGEACKAbEBCg5rdWJlY3RsLWNyZWF0"
    "ZRIGVXBkYXRlGhZjb29yZGluYXRpb24uazhzLmlvL3YxIggIq8/Y2AYQADIIRmllbGRzVjE6aQpneyJmOnNwZWMiOnsi"
    "Zjpob2xkZXJJZGVudGl0eSI6e30sImY6bGVhc2VEdXJhdGlvblNlY29uZHMiOnt9LCJmOmxlYXNlVHJhbnNpdGlvbnMi"
    "Ont9LCJmOnJlbmV3VGltZSI6e319fUIAEhkKBm5vZGUtYRAoIgsIudDY2AYQgJTvOigAGgAiAA==")
LEASE_JSON = json.loads(
    '{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"node-a","names'
    'pace":"default"},"spec":{"holderIdentity":"node-a","leaseDurationSeconds":40,"renewTime"'
    ':"2026-12-07T03:30:01.123456Z","leaseTransitions":0}}')

EVENT_PROTOBUF = base64.b64decode(
    "azhzAAoLCgJ2MRIFRXZlbnQS/gMK4gIKC25vZGUtYS4xODdmEgAaB2RlZmF1bHQiACokZjMyNmY3ODYtMjUxYi00YzMz"
    "LTkyMDAtOTNkNGNlMGFjMjEwMgM0MDE4AEIICO3M2NgGEACKAY0CCg5rdWJlY3RsLWNyZWF0ZRIGVXBkYXRlGgJ2MSII"
    "CO3M2NgGEAAyCEZpZWxkc1YxOtgBCtUBeyJmOmNvdW50Ijp7fSwiZjpmaXJzdFRpbWVzdGFtcCI6e30sImY6aW52b2x2"
    "ZWRPYmplY3QiOnt9LCJmOmxhc3RUaW1lc3RhbXAiOnt9LCJmOm1lc3NhZ2UiOnt9LCJmOnJlYXNvbiI6e30sImY6cmVw"
    "b3J0aW5nQ29tcG9uZW50Ijp7fSwiZjpyZXBvcnRpbmdJbnN0YW5jZSI6e30sImY6c291cmNlIjp7ImY6Y29tcG9uZW50"
    "Ijp7fSwiZjpob3N0Ijp7fX0sImY6dHlwZSI6e319QgASIAoETm9kZRIAGgZub2RlLWEiBm5vZGUtYSoCdjEyADoAGglO"
    "b2RlUmVhZHkiJE5vZGUgbm9kZS1hIHN0YXR1cyBpcyBub3c6IE5vZGVSZWFkeSoRCgdrdWJlbGV0EgZub2RlLWEyCAi4"
    "0NjYBhAAOggIvdDY2AYQAEACSgZOb3JtYWxSAGIAcgdrdWJlbGV0egZub2RlLWEaACIA")
EVENT_JSON = json.loads(
    '{"kind":"Event","apiVersion":"v1","metadata":{"name":"node-a.187f","namespace":"default"'
    '},"involvedObject":{"kind":"Node","name":"node-a","uid":"node-a","apiVersion":"v1"},"rea'
    'son":"NodeReady","message":"Node node-a status is now: NodeReady","source":{"component":'
    '"kubelet","host":"node-a"},"firstTimestamp":"2026-12-07T03:30:00Z","lastTimestamp":"2026'
    '-12-07T03:30:05Z","count":2,"type":"Normal","eventTime":null,"reportingComponent":"kubel'
    'et","reportingInstance":"node-a"}')

NODE_PROTOBUF = base64.b64decode(
    "azhzAAoKCgJ2MRIETm9kZRLvBwqGBAoGbm9kZS1hEgAaACIAKiQ0M2U0NGU1My04NGQzLTQyOGUtYTU2NC0yNzQyMmRj"
    "OTU0MWQyAzQwNTgAQggI/szY2AYQAFogChZrdWJlcm5ldGVzLmlvL2hvc3RuYW1lEgZub2RlLWFaGQoQa3ViZXJuZXRl"
    "cy5pby9vcxIFbGludXhiPgo2dm9sdW1lcy5rdWJlcm5ldGVzLmlvL2NvbnRyb2xsZXItbWFuYWdlZC1hdHRhY2gtZGV0"
    "YWNoEgR0cnVligHAAgoOa3ViZWN0bC1jcmVhdGUSBlVwZGF0ZRoCdjEiCAj+zNjYBhAAMghGaWVsZHNWMTqLAgqIAnsi"
    "ZjptZXRhZGF0YSI6eyJmOmFubm90YXRpb25zIjp7Ii4iOnt9LCJmOnZvbHVtZXMua3ViZXJuZXRlcy5pby9jb250cm9s"
    "bGVyLW1hbmFnZWQtYXR0YWNoLWRldGFjaCI6e319LCJmOmxhYmVscyI6eyIuIjp7fSwiZjprdWJlcm5ldGVzLmlvL2hv"
    "c3RuYW1lIjp7fSwiZjprdWJlcm5ldGVzLmlvL29zIjp7fX19LCJmOnNwZWMiOnsiZjpwb2RDSURSIjp7fSwiZjpwb2RD"
    "SURScyI6eyIuIjp7fSwidjpcIjE5OC4xOC45LjAvMjRcIiI6e319LCJmOnRhaW50cyI6e319fUIAElIKDTE5OC4xOC45"
    "LjAvMjQSABoAIAAqLAocbm9kZS5rdWJlcm5ldGVzLmlvL25vdC1yZWFkeRIAGgpOb1NjaGVkdWxlOg0xOTguMTguOS4w"
    "LzI0Go8DCgoKA2NwdRIDCgEyChUKBm1lbW9yeRILCgk0MDI2NTMyS2kKDQoEcG9kcxIFCgMxMTASCgoDY3B1EgMKATIS"
    "FQoGbWVtb3J5EgsKCTM5MjQxMzJLaRINCgRwb2RzEgUKAzExMBoAIlgKBVJlYWR5EgVGYWxzZRoICLjQ2NgGEAAiCAj8"
    "z9jYBhAAKg9LdWJlbGV0Tm90UmVhZHkyI2NvbnRhaW5lciBydW50aW1lIG5ldHdvcmsgbm90IHJlYWR5KhgKCkludGVy"
    "bmFsSVASCjE5OC4xOC45LjEqEgoISG9zdG5hbWUSBm5vZGUtYTIFCgMIilA6YwoBbRIBcxoBYiIFNi4xLjAqHkRlYmlh"
    "biBHTlUvTGludXggMTIgKGJvb2t3b3JtKTITcHljb250YWluZXI6Ly8wLjEuMDoHdjEuMzUuMEIASgVsaW51eFIFYW1k"
    "NjRaAwiACEIlCh5kb2NrZXIuaW8vbGlicmFyeS9idXN5Ym94OjEuMzYQxo2EAmIICgASBAgAEABqAggBGgAiAA==")
NODE_JSON = json.loads(
    '{"kind":"Node","apiVersion":"v1","metadata":{"name":"node-a","labels":{"kubernetes.io/ho'
    'stname":"node-a","kubernetes.io/os":"linux"},"annotations":{"volumes.kubernetes.io/contr'
    'oller-managed-attach-detach":"true"}},"spec":{"podCIDR":"198.18.9.0/24","podCIDRs":["198'
    '.18.9.0/24"],"taints":[{"key":"node.kubernetes.io/not-ready","effect":"NoSchedule"}]},"s'
    'tatus":{"capacity":{"cpu":"2","memory":"4026532Ki","pods":"110"},"allocatable":{"cpu":"2'
    '","memory":"3924132Ki","pods":"110"},"conditions":[{"type":"Ready","status":"False","las'
    'tHeartbeatTime":"2026-12-07T03:30:00Z","lastTransitionTime":"2026-12-07T03:29:00Z","reas'
    'on":"KubeletNotReady","message":"container runtime network not ready"}],"addresses":[{"t'
    'ype":"InternalIP","address":"198.18.9.1"},{"type":"Hostname","address":"node-a"}],"daemo'
    'nEndpoints":{"kubeletEndpoint":{"Port":10250}},"nodeInfo":{"machineID":"m","systemUUID":'
    '"s","bootID":"b","kernelVersion":"6.1.0","osImage":"Debian GNU/Linux 12 (bookworm)","con'
    'tainerRuntimeVersion":"pycontainer://0.1.0","kubeletVersion":"v1.35.0","kubeProxyVersion'
    '":"","operatingSystem":"linux","architecture":"amd64","swap":{"capacity":1024}},"images"'
    ':[{"names":["docker.io/library/busybox:1.36"],"sizeBytes":4261574}],"runtimeHandlers":[{'
    '"name":"","features":{"recursiveReadOnlyMounts":false,"userNamespaces":false}}],"feature'
    's":{"supplementalGroupsPolicy":true}}}')


SERVER_FIELDS = ("uid", "resourceVersion")


@pytest.mark.parametrize("body, expected", [(LEASE_PROTOBUF, LEASE_JSON),
                                            (EVENT_PROTOBUF, EVENT_JSON),
                                            (NODE_PROTOBUF, NODE_JSON)],
                         ids=["Lease", "Event", "Node"])
def test_kube_encoded_bodies_decode_to_kubes_json(body, expected):
    decoded = protobuf_node.decode(body)
    for field in SERVER_FIELDS:
        decoded["metadata"].pop(field)
    assert decoded == expected


def _post(server, path: str, body: bytes) -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=f"{server.data_dir}/pki/ca.crt")
    request = urllib.request.Request(server.url + path, data=body, method="POST", headers={
        "Authorization": f"Bearer {ADMIN_TOKEN}",
        "Content-Type": "application/vnd.kubernetes.protobuf"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("path, body, expected", [
    ("/apis/coordination.k8s.io/v1/namespaces/default/leases", LEASE_PROTOBUF, LEASE_JSON),
    ("/api/v1/namespaces/default/events", EVENT_PROTOBUF, EVENT_JSON)], ids=["Lease", "Event"])
def test_a_protobuf_post_creates_the_object(server, path, body, expected):
    code, created = _post(server, path, body)
    assert code == 201, created
    try:
        for key, value in expected.items():
            if key != "metadata":
                assert created[key] == value, key
        assert created["metadata"]["name"] == expected["metadata"]["name"]
    finally:
        server.kubectl("delete", "--raw", f"{path}/{expected['metadata']['name']}", check=False)
