"""Table columns of the workload kinds (apps, batch, policy), as kube's printers.go prints
them for `kubectl get`; priority-1 columns appear with -o wide."""
from __future__ import annotations

from typing import Callable

from kubeapi import timefmt
from kubeapi.label_selector import format_selector

from .columns import AGE, NAME, NONE, age, column, created, human_duration, meta

_WIDE = [column("Containers", priority=1, description="Names of each container in the template."),
         column("Images", priority=1, description="Images referenced by each container in the "
                "template.")]
_SELECTOR = column("Selector", priority=1, description="A label query over pods that should "
                   "match the replica count.")


def _spec(o: dict) -> dict:
    return o.get("spec") or {}


def _status(o: dict) -> dict:
    return o.get("status") or {}


def _containers(template: object) -> list[str]:
    pod = (template or {}).get("spec") if isinstance(template, dict) else None
    containers = (pod or {}).get("containers") or []
    return [",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers)]


def _deployment(o: dict) -> list:
    spec, st = _spec(o), _status(o)
    return [meta(o).get("name"), f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), created(o),
            *_containers(spec.get("template")), format_selector(spec.get("selector"))]


def _replicaset(o: dict) -> list:
    spec, st = _spec(o), _status(o)
    return [meta(o).get("name"), spec.get("replicas", 0), st.get("replicas", 0),
            st.get("readyReplicas", 0), created(o), *_containers(spec.get("template")),
            format_selector(spec.get("selector"))]


def _daemonset(o: dict) -> list:
    spec, st = _spec(o), _status(o)
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return [meta(o).get("name"), st.get("desiredNumberScheduled", 0),
            st.get("currentNumberScheduled", 0), st.get("numberReady", 0),
            st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or NONE,
            created(o), *_containers(spec.get("template")),
            format_selector(spec.get("selector"))]


def _statefulset(o: dict) -> list:
    spec, st = _spec(o), _status(o)
    return [meta(o).get("name"), f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            created(o), *_containers(spec.get("template"))]


def _controller_revision(o: dict) -> list:
    ref = next((r for r in meta(o).get("ownerReferences") or [] if r.get("controller")), None)
    owner = NONE
    if ref:
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        kind = str(ref.get("kind", "")).lower()
        owner = f"{kind}.{group}/{ref.get('name')}" if group else f"{kind}/{ref.get('name')}"
    return [meta(o).get("name"), owner, o.get("revision", 0), created(o)]


def _has_condition(st: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in st.get("conditions") or [])


def _job_status(o: dict) -> str:
    st = _status(o)
    for kind, word in (("Complete", "Complete"), ("Failed", "Failed")):
        if _has_condition(st, kind):
            return word
    if meta(o).get("deletionTimestamp"):
        return "Terminating"
    for kind in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _has_condition(st, kind):
            return kind
    return "Running"


def _job(o: dict) -> list:
    spec, st = _spec(o), _status(o)
    succeeded = st.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    duration = ""
    if st.get("startTime"):
        end = timefmt.parse(st["completionTime"]) if st.get("completionTime") else None
        start = timefmt.parse(st["startTime"])
        duration = human_duration((end - start) if end is not None
                                  else timefmt.parse(timefmt.rfc3339()) - start)
    return [meta(o).get("name"), _job_status(o), completions, duration, created(o),
            *_containers(spec.get("template")), format_selector(spec.get("selector"))]


def _cronjob(o: dict) -> list:
    spec, st = _spec(o), _status(o)
    suspend = spec.get("suspend")
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return [meta(o).get("name"), spec.get("schedule", ""), spec.get("timeZone") or NONE,
            "<unset>" if suspend is None else str(bool(suspend)).capitalize(),
            len(st.get("active") or []),
            age(st["lastScheduleTime"]) if st.get("lastScheduleTime") else NONE, created(o),
            *_containers(job_spec.get("template")), format_selector(job_spec.get("selector"))]


def _pdb(o: dict) -> list:
    spec = _spec(o)
    return [meta(o).get("name"),
            "N/A" if spec.get("minAvailable") is None else str(spec["minAvailable"]),
            "N/A" if spec.get("maxUnavailable") is None else str(spec["maxUnavailable"]),
            _status(o).get("disruptionsAllowed", 0), created(o)]


WORKLOAD_TABLES: dict[str, tuple[list[dict], Callable[[dict], list]]] = {
    "deployments": ([NAME, column("Ready", description="Number of the pod with ready state"),
                     column("Up-to-date", description="Total number of non-terminated pods "
                            "targeted by this deployment that have the desired template spec."),
                     column("Available", description="Total number of available pods (ready for "
                            "at least minReadySeconds) targeted by this deployment."),
                     AGE, *_WIDE, _SELECTOR], _deployment),
    "replicasets": ([NAME, column("Desired", "integer", description="Replicas is the number of "
                                  "desired replicas."),
                     column("Current", "integer", description="Replicas is the most recently "
                            "observed number of replicas."),
                     column("Ready", "integer", description="The number of ready replicas for "
                            "this replica set."), AGE, *_WIDE, _SELECTOR], _replicaset),
    "daemonsets": ([NAME, column("Desired", "integer", description="The total number of nodes "
                                 "that should be running the daemon pod."),
                    column("Current", "integer", description="The number of nodes that are "
                           "running at least 1 daemon pod and are supposed to run the daemon "
                           "pod."),
                    column("Ready", "integer", description="The number of nodes that should be "
                           "running the daemon pod and have one or more of the daemon pod "
                           "running and ready."),
                    column("Up-to-date", "integer", description="The total number of nodes that "
                           "are running updated daemon pod"),
                    column("Available", "integer", description="The number of nodes that should "
                           "be running the daemon pod and have one or more of the daemon pod "
                           "running and available."),
                    column("Node Selector", description="NodeSelector is a selector which must "
                           "be true for the pod to fit on a node."),
                    AGE, *_WIDE, _SELECTOR], _daemonset),
    "statefulsets": ([NAME, column("Ready", description="Number of the pod with ready state"),
                      AGE, *_WIDE], _statefulset),
    "controllerrevisions": ([NAME, column("Controller", description="Controller of the "
                                          "object"),
                             column("Revision", "integer", description="Revision indicates the "
                                    "revision of the state represented by Data."), AGE],
                            _controller_revision),
    "jobs": ([NAME, column("Status", description="Status of the job."),
              column("Completions", description="The number of pods which reached phase "
                     "Succeeded."),
              column("Duration", description="Time required to complete the job."), AGE, *_WIDE,
              _SELECTOR], _job),
    "cronjobs": ([NAME, column("Schedule", description="The schedule in Cron format, see "
                               "https://en.wikipedia.org/wiki/Cron."),
                  column("Timezone", description="The time zone name for the given schedule, "
                         "see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
                  column("Suspend", "boolean", description="This flag tells the controller to "
                         "suspend subsequent executions, it does not apply to already started "
                         "executions.  Defaults to false."),
                  column("Active", "integer", description="A list of pointers to currently "
                         "running jobs."),
                  column("Last Schedule", description="Information when was the last time the "
                         "job was successfully scheduled."), AGE, *_WIDE, _SELECTOR], _cronjob),
    "poddisruptionbudgets": ([NAME, column("Min Available", description="The minimum number of "
                                           "pods that must be available simultaneously.  This "
                                           "can be either an integer or a string specifying a "
                                           "percentage, e.g. \"28%\"."),
                              column("Max Unavailable", description="The maximum number of pods "
                                     "that may be unavailable simultaneously.  This can be "
                                     "either an integer or a string specifying a percentage, "
                                     "e.g. \"28%\"."),
                              column("Allowed Disruptions", "integer", description="current "
                                     "number of allowed disruptions"), AGE], _pdb),
}
