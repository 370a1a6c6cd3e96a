"""Readiness predicates and fail-fast reasons, on objects shaped like the API's."""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._kube import wait as w


def deployment(replicas=2, generation=2, observed=2, updated=2, available=2, total=2, conditions=(), uid="d1",
               revision="3"):
    return {"kind": "Deployment",
            "metadata": {"name": "web", "generation": generation, "uid": uid,
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available,
                       "replicas": total, "conditions": list(conditions)}}


def pod(name, waiting=None, labels=None, phase="Pending", owner=None):
    status = {"phase": phase, "containerStatuses": [{"name": "app", "restartCount": 4,
                                                     "state": {"waiting": waiting} if waiting else {"running": {}}}]}
    meta = {"name": name, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"uid": owner}]
    return {"metadata": meta, "status": status}


def test_deployment_states():
    assert w.readiness(deployment())[0] == w.READY
    assert w.readiness(deployment(observed=1)) == (w.PENDING, "waiting for the deployment controller to see the "
                                                              "new generation")
    assert w.readiness(deployment(updated=1)) == (w.PENDING, "1 of 2 replicas updated")
    assert w.readiness(deployment(total=3)) == (w.PENDING, "1 old replicas still terminating")
    assert w.readiness(deployment(available=1)) == (w.PENDING, "1 of 2 updated replicas available")


def test_progress_deadline_fails_with_the_controllers_message():
    state, reason = w.readiness(deployment(available=0, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "web-1" has timed out progressing.'}]))
    assert state == w.FAILED and reason.startswith("ProgressDeadlineExceeded: ReplicaSet")


def test_job_complete_and_failed():
    job = {"kind": "Job", "spec": {"completions": 1}, "status": {"conditions": []}}
    assert w.readiness(job)[0] == w.PENDING
    job["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                    "message": "Job has reached the specified backoff limit"}]
    assert w.readiness(job) == (w.FAILED, "Job failed: BackoffLimitExceeded: Job has reached the specified backoff "
                                          "limit")
    job["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert w.readiness(job)[0] == w.READY


def test_pod_failures_are_named():
    crash = pod("web-a", {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"})
    assert w.pod_failure(crash) == "container app CrashLoopBackOff: back-off 10s restarting failed container"
    assert w.pod_failure(pod("web-b", {"reason": "ContainerCreating"})) is None
    assert w.readiness(dict(crash, kind="Pod"))[0] == w.FAILED
    assert "restarts=4" in w.pod_summary(crash)


def test_a_pod_that_is_not_ready_says_which_conditions_are_false_even_without_a_reason():
    """A pod marked NotReady by the node lifecycle controller carries no reason; the summary still names it."""
    stalled = {"metadata": {"name": "web-x"}, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "True"},
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/4 nodes are available"}]}}
    assert w.pod_summary(stalled) == ("pod web-x Running: Ready=False, "
                                      "PodScheduled=False(Unschedulable: 0/4 nodes are available)")


def test_only_pods_of_the_newest_revision_count_for_a_deployment():
    replicasets = [
        {"metadata": {"labels": {"pod-template-hash": "new"}, "ownerReferences": [{"uid": "d1"}],
                      "annotations": {"deployment.kubernetes.io/revision": "3"}}},
        {"metadata": {"labels": {"pod-template-hash": "old"}, "ownerReferences": [{"uid": "d1"}],
                      "annotations": {"deployment.kubernetes.io/revision": "2"}}},
    ]
    pods = [pod("old-crashing", {"reason": "CrashLoopBackOff"}, {"app": "web", "pod-template-hash": "old"}),
            pod("new", None, {"app": "web", "pod-template-hash": "new"})]
    assert [p["metadata"]["name"] for p in w.current_pods(deployment(), pods, replicasets)] == ["new"]


def test_selector_matching():
    assert w.selector_matches({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"})
    assert not w.selector_matches({"matchLabels": {"a": "1"}}, {"a": "2"})
    assert w.selector_matches({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"})
    assert not w.selector_matches({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {})
    assert not w.selector_matches({}, {"a": "1"})  # an empty selector selects nothing here


def test_kinds_without_readiness_are_ready():
    assert w.readiness({"kind": "ConfigMap"}) == (w.READY, "")


class CopiesHub(w.WaitHub):
    """A hub whose watched copies are given by the test (no API server)."""

    def __init__(self, copies):
        super().__init__(client=None)
        self.copies = copies

    def _collection(self, path):
        return self.copies


def test_a_watched_copy_older_than_the_applied_generation_is_not_judged():
    # The watch may still hold the copy from before this run's apply: fully rolled out, but of the old spec.
    resource = type("Resource", (), {"kind": "Deployment", "group_version": "apps/v1", "name": "deployments",
                                     "namespaced": True})()
    hub = CopiesHub({"web": deployment(generation=1, observed=1)})
    target = w.Target(key="k", label="Deployment shop/web", resource=resource, namespace="shop", name="web",
                      min_generation=2)
    hub._round([target])
    assert not target.done.is_set()
    assert target.reason == "waiting for the watch to show the applied generation"
    hub.copies = {"web": deployment(generation=2, observed=2)}
    hub._round([target])
    assert target.done.is_set() and target.state == w.READY
