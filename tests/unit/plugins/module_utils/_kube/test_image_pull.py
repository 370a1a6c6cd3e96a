"""Pull failures decided on evidence: those that heal are waited on, those that cannot fail at once."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._kube import image_pull as p
from ansible_collections.slipway.platform.plugins.module_utils._kube import wait as w

SECRET = [{"name": "slipway-registry"}]
# messages as the kubelet (1.36, containerd 1.6) writes them into the container's waiting state
UNAUTHORIZED = ('Back-off pulling image "127.0.0.1:5001/backend@sha256:ab": ErrImagePull: failed to pull and unpack '
                'image: failed to resolve reference: pulling from host 127.0.0.1:5001 failed with status code '
                '[manifests sha256:ab]: 401 Unauthorized')
MISSING = ('failed to pull and unpack image "127.0.0.1:5001/x/never-pushed:t": failed to resolve reference '
           '"127.0.0.1:5001/x/never-pushed:t": 127.0.0.1:5001/x/never-pushed:t: not found')
REFUSED = ('failed to pull and unpack image: failed to resolve reference: failed to do request: Head '
           '"http://127.0.0.1:5001/v2/backend/manifests/sha256:ab": dial tcp 127.0.0.1:5001: connect: '
           'connection refused')


@pytest.mark.parametrize("message", [
    UNAUTHORIZED,
    REFUSED,
    "pulling from host 127.0.0.1:5001 failed with status code [manifests x]: 503 Service Unavailable",
    "failed with status code [manifests x]: 429 Too Many Requests",
    "dial tcp 127.0.0.1:5001: i/o timeout",
    "read tcp 127.0.0.1:40000->127.0.0.1:5001: read: connection reset by peer",
])
def test_what_can_heal_is_waited_on_when_the_pod_has_a_pull_secret(message):
    for reason in ("ErrImagePull", "ImagePullBackOff"):
        assert p.classify(reason, message, SECRET)[0] == p.HEALS


@pytest.mark.parametrize(("message", "says"), [
    (MISSING, "no such image or tag"),
    ("failed to pull: manifest unknown: manifest unknown", "no such image or tag"),
    ('couldn\'t parse image reference "Bad:Ref": invalid reference format', "invalid"),
    ("no match for platform in manifest: not found", "platform"),
    ("failed to unpack image on snapshotter: no match for platform in manifest sha256:ab", "platform"),
])
def test_what_cannot_heal_fails_at_once(message, says):
    verdict, meaning = p.classify("ErrImagePull", message, SECRET)
    assert verdict == p.FINAL and says in meaning


def test_a_refused_pull_without_any_pull_secret_cannot_heal_and_says_how_to_fix_it():
    verdict, meaning = p.classify("ImagePullBackOff", UNAUTHORIZED, [])
    assert verdict == p.FINAL and "no image pull secret" in meaning and "imagePullSecrets" in meaning
    assert p.classify("ImagePullBackOff", UNAUTHORIZED, SECRET)[0] == p.HEALS


def test_other_waiting_reasons_are_not_pull_failures():
    assert p.classify("CrashLoopBackOff", "back-off 10s", SECRET) == (None, "")
    assert p.classify("ContainerCreating", "", SECRET) == (None, "")
    assert p.classify("ImagePullBackOff", 'Back-off pulling image "x"', SECRET)[0] == p.UNKNOWN


def pod(reason, message, secrets=None):
    return {"metadata": {"name": "web-1"}, "spec": {"imagePullSecrets": SECRET if secrets is None else secrets},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "app", "state": {"waiting": {"reason": reason, "message": message}}}]}}


def test_the_waiter_keeps_a_healing_pull_pending_and_fails_a_final_one_with_its_meaning():
    failure, healing = w.pod_verdict(pod("ImagePullBackOff", UNAUTHORIZED))
    assert failure is None and healing.startswith("container app ImagePullBackOff: ") and "401" in healing
    assert w.readiness(dict(pod("ImagePullBackOff", UNAUTHORIZED), kind="Pod"))[0] == w.PENDING

    failure, healing = w.pod_verdict(pod("ErrImagePull", MISSING))
    assert healing is None and failure.endswith("(the registry has no such image or tag: build and push it, or fix "
                                                "the reference)")
    assert w.readiness(dict(pod("ErrImagePull", MISSING), kind="Pod"))[0] == w.FAILED


def test_a_back_off_with_no_evidence_fails_as_before_and_a_first_unexplained_error_waits():
    assert w.pod_failure(pod("ImagePullBackOff", 'Back-off pulling image "x"')) == \
        'container app ImagePullBackOff: Back-off pulling image "x"'
    assert w.pod_verdict(pod("ErrImagePull", "something new")) == (None, None)
