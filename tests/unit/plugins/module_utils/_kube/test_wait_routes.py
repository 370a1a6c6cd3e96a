"""HTTPRoute readiness: a delivery waits for its gateways to accept a route and fails on their refusal."""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._kube import wait as w

GATEWAY = {"name": "slipway", "namespace": "slipway-gateway"}


def route(parents=(GATEWAY,), reported=(), generation=2):
    return {"kind": "HTTPRoute", "metadata": {"name": "frontend", "namespace": "shop", "generation": generation},
            "spec": {"parentRefs": list(parents)}, "status": {"parents": list(reported)}}


def parent_status(ref=None, observed=2, **conditions):
    """The status one gateway (``GATEWAY`` by default) wrote; ``conditions``: type -> status, or type ->
    (status, reason, message)."""
    ref = ref or GATEWAY
    found = []
    for kind, said in conditions.items():
        status, reason, message = said if isinstance(said, tuple) else (said, kind, "")
        found.append({"type": kind, "status": status, "reason": reason, "message": message,
                      "observedGeneration": observed})
    return {"parentRef": dict(ref, group="gateway.networking.k8s.io", kind="Gateway"),
            "controllerName": "traefik.io/gateway-controller", "conditions": found}


def test_route_is_waited_on_like_a_rollout():
    assert "HTTPRoute" in w.WAITED_KINDS


def test_accepted_and_resolved_by_the_gateway_is_ready():
    state, reason = w.readiness(route(reported=[parent_status(Accepted="True", ResolvedRefs="True")]))
    assert (state, reason) == (w.READY, "accepted by its gateways")


def test_no_status_yet_is_pending_and_says_which_gateway():
    state, reason = w.readiness(route())
    assert state == w.PENDING
    assert reason == ("Gateway slipway-gateway/slipway: Accepted not reported yet; "
                      "Gateway slipway-gateway/slipway: ResolvedRefs not reported yet")


def test_status_of_an_older_generation_is_not_trusted():
    stale = parent_status(observed=1, Accepted="True", ResolvedRefs=("False", "BackendNotFound", "gone"))
    assert w.readiness(route(reported=[stale]))[0] == w.PENDING


def test_missing_backend_fails_with_the_gateways_reason():
    refused = parent_status(Accepted="True",
                            ResolvedRefs=("False", "BackendNotFound", "backend shop/missing not found"))
    state, reason = w.readiness(route(reported=[refused]))
    assert state == w.FAILED
    assert reason == ("Gateway slipway-gateway/slipway refused the route: ResolvedRefs=False BackendNotFound: "
                      "backend shop/missing not found")


def test_a_service_whose_endpointslices_are_not_there_yet_is_waited_for_not_refused():
    """Traefik says BackendNotFound for a Service it found without EndpointSlices: right after the Service is made
    the endpointslice controller has not made them yet (seen on the lab cluster); it reports again once they exist."""
    starting = parent_status(Accepted="True", ResolvedRefs=(
        "False", "BackendNotFound", "Cannot load HTTPBackendRef shop/frontend: endpointslices not found"))
    state, reason = w.readiness(route(reported=[starting]))
    assert state == w.PENDING and "EndpointSlices are on their way" in reason
    resolved = parent_status(Accepted="True", ResolvedRefs="True")
    assert w.readiness(route(reported=[resolved]))[0] == w.READY


def test_not_accepted_fails_even_while_refs_are_unknown():
    refused = parent_status(Accepted=("False", "NotAllowedByListeners", "no listener allows shop"))
    state, reason = w.readiness(route(reported=[refused]))
    assert state == w.FAILED and "Accepted=False NotAllowedByListeners: no listener allows shop" in reason


def test_pending_acceptance_with_unknown_status_keeps_waiting():
    unknown = parent_status(Accepted=("Unknown", "Pending", "waiting for the controller"), ResolvedRefs="True")
    assert w.readiness(route(reported=[unknown]))[0] == w.PENDING


def test_every_named_gateway_must_accept():
    other = {"name": "internal", "namespace": "slipway-gateway", "sectionName": "http"}
    state, reason = w.readiness(route(parents=[GATEWAY, other],
                                      reported=[parent_status(Accepted="True", ResolvedRefs="True")]))
    assert state == w.PENDING
    assert reason.startswith("Gateway slipway-gateway/internal listener http: Accepted not reported yet")


def test_status_of_another_listener_does_not_count():
    listener = dict(GATEWAY, sectionName="https")
    reported = [parent_status(ref=GATEWAY, Accepted="True", ResolvedRefs="True")]
    assert w.readiness(route(parents=[listener], reported=reported))[0] == w.PENDING


def test_parent_namespace_defaults_to_the_routes():
    local = {"name": "shop-gateway"}
    reported = [parent_status(ref={"name": "shop-gateway", "namespace": "shop"}, Accepted="True",
                              ResolvedRefs="True")]
    assert w.readiness(route(parents=[local], reported=reported))[0] == w.READY


def test_route_without_parents_is_served_by_no_gateway_and_not_waited_for():
    assert w.readiness(route(parents=())) == (w.READY, "names no gateway (parentRefs)")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def unclaimed_verdicts(reported, seconds_later):
    clock = Clock()
    hub = w.WaitHub(client=None, clock=clock)
    target = w.Target(key="k", label="HTTPRoute shop/frontend", resource=None, namespace="shop", name="frontend")
    first = hub._unclaimed(target, route(reported=reported), "waiting")
    clock.now += seconds_later
    return first, hub._unclaimed(target, route(reported=reported), "waiting")


def test_a_route_no_gateway_reports_on_is_not_waited_for_after_a_grace():
    first, later = unclaimed_verdicts((), w.ROUTE_UNCLAIMED)
    assert first == (w.PENDING, "waiting")
    assert later[0] == w.READY and "nothing here implements its parentRefs" in later[1]


def test_a_route_its_gateway_reports_on_is_waited_for_however_long():
    reported = [parent_status(Accepted=("Unknown", "Pending", "later"))]
    assert unclaimed_verdicts(reported, w.ROUTE_UNCLAIMED * 100) == ((w.PENDING, "waiting"), (w.PENDING, "waiting"))
