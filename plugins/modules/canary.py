#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: canary
short_description: Canary or A/B delivery of one system beside its stable release, then promote or abort
version_added: 0.1.0
description:
  - Runs a new version of one system beside the stable one without any in-cluster controller.
  - "O(action=start): for every Deployment of the system that runs one of the changed O(images), a copy named
    C(<name>-canary) runs the new image(s) with the pod label C(slipway.io/track=canary). Its pods keep every label
    of the stable pods, so the stable Service's selector sends them their share of the traffic. The split is
    replica-proportional: the stable Deployment keeps its replicas and the canary gets
    C(round(stable * weight / (100 - weight))) (at least one), so C(canary / (stable + canary)) is closest to
    O(weight) percent. Run it again to change the weight or the image."
  - "With O(route), the split is by a Gateway API HTTPRoute (C(gateway.networking.k8s.io/v1)) instead: the canary
    pods leave the stable Services (the values of those Services' selector labels get C(-canary), for example
    C(app=web-canary)), a canary Service C(<service>-canary) with the same ports selects them, and every rule of the
    route that sends to a stable Service sends O(weight) percent to the canary Service (stable C(100 - weight),
    canary C(weight); a rule split between several backends keeps their proportions). With O(route.header), each
    such rule is followed by a copy that also requires that header and sends only to the canary. The canary still
    gets replicas in proportion to O(weight). The route is written once the canary is ready. The rules as they were
    are kept on the route (annotation C(slipway.io/canary)), so a re-weight starts from them."
  - "O(action=promote): the stable Deployment(s) roll out to the canary's images (the whole system is delivered
    again from its stored release with those images), then the canary goes once the system is ready. A routed
    canary's route gets its rules back exactly as before the start (100% to the stable Service, which now runs the
    new version) before the canary Service goes."
  - "O(action=progress): the canary is started at each weight of O(steps) in turn (10 then 50 by default); after
    each, the system's metric gates (C(health:) entries with a C(query), from its current release) are sampled
    with C(${track}=canary) from O(prometheus_url). While they pass it goes on, and after the last step it is
    promoted (100%). At the first failing gate, or a step that does not become ready, the canary is aborted, so the
    stable release keeps all the traffic, and the task fails with the step and the samples. The abort or promote
    journal entry carries every step's samples. A system without a metric gate is refused."
  - "O(action=abort): the canary goes; nothing else changes. A routed canary's route gets its rules back exactly as
    before the start, before the canary Service goes."
  - The canary is tracked as a system of its own, C(<system>-canary), so each step takes the context's Lease,
    is dry-run on the server before any write, waits for readiness (fail-fast) and is a journal entry whose
    C(action) says what it was. A whole-context M(slipway.platform.rollback) to a release without the canary
    removes it.
  - A route is checked before anything is written; a context that does not serve HTTPRoute, a route that does not
    exist or one that sends nothing to the system's stable Service fails with what to do.
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
  - slipway.platform.release_run
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Every object that would change is sent as a server-side dry-run (the HTTPRoute too); nothing is written, not
        even the lock or the journal.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: full
    details:
      - Shows only the fields that change, per object; for the HTTPRoute, its rules and annotations.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details:
      - Starting the same canary with the same weight (and route) again changes nothing and records nothing.
options:
  system:
    description: The system whose canary this is; it must be in the context's current release.
    type: str
    required: true
  action:
    description: Start (or re-weight) the canary, promote it to stable, or abort it.
    type: str
    choices: [start, promote, abort, progress]
    default: start
  images:
    description:
      - Image name (as in the system's C(slipway.yml)) to the canary's full reference, preferably by digest.
      - Required for O(action=start) and O(action=progress).
    type: dict
  weight:
    description:
      - Percent of the traffic the canary should get, 1 to 99. Without O(route), of the pods behind the stable
        Service (the replica split gives the closest weight it can); with O(route), exactly, by route weights.
      - With O(route.header), 0 sends only the requests carrying the header to the canary.
      - Required for O(action=start).
    type: int
  steps:
    description:
      - O(action=progress) only; the rising weights the canary goes through before it is promoted.
    type: list
    elements: int
    default: [10, 50]
  route:
    description:
      - Split the traffic by a Gateway API HTTPRoute instead of by replicas (O(action=start) only; O(action=promote)
        and O(action=abort) use the route the canary was started with, recorded in the journal).
      - The route must exist and send traffic to a Service of the system whose selector picks the Deployment that
        gets the canary; it may be one of the system's own manifests or belong to someone else.
      - The context must serve C(gateway.networking.k8s.io/v1) HTTPRoute and have a gateway that implements it (the
        local stack runs Traefik, Gateway C(slipway-gateway/slipway); see docs/gateway.md).
      - The identity needs C(get), C(update) and C(patch) on C(httproutes.gateway.networking.k8s.io) in the route's
        namespace.
      - A running canary keeps the way it was started; to switch between the replica split and a route, or to
        another route, abort it first.
    type: dict
    suboptions:
      name:
        description: The HTTPRoute's name.
        type: str
        required: true
      namespace:
        description:
          - The HTTPRoute's namespace; the system's namespace by default.
          - A route in another namespace (a shared gateway namespace) names the stable Service with C(namespace) on
            its backendRef; the canary's backendRef gets the same namespace, so a ReferenceGrant that lists Services
            by name must also list C(<service>-canary).
        type: str
      header:
        description: Requests carrying this header with exactly this value always go to the canary.
        type: dict
        suboptions:
          name:
            description: The HTTP header name, for example C(X-Canary).
            type: str
            required: true
          value:
            description: The header value that selects the canary.
            type: str
            required: true
      gateway:
        description:
          - The context's Gateway (its C(slipway_gateway)); a route that does not name it in its C(parentRefs) is
            refused before anything is written, since no request through that gateway would follow the canary.
        type: dict
        suboptions:
          name:
            description: The Gateway's name.
            type: str
            required: true
          namespace:
            description: The Gateway's namespace.
            type: str
            required: true
  reason:
    description: Why, recorded in the journal entry.
    type: str
  wait:
    description: Wait for the canary (start) or the promoted system (promote) to be ready.
    type: bool
    default: true
notes:
  - A later M(slipway.platform.deliver) of the system rolls the stable Deployment to whatever it renders; promote
    records the canary's images in the journal, so update the context's image tags to keep them.
  - Edits to a routed canary's HTTPRoute rules made while it runs are undone by promote and abort (they put back the
    rules saved at the start). A delivery of a system that owns the route leaves its rules to the canary meanwhile
    (reported in C(conflicts_respected)); after promote or abort the rules are the delivery's again.
  - A whole-context M(slipway.platform.rollback) to a release without the canary removes the canary Service but does
    not rewrite the route; abort a routed canary before such a rollback.
seealso:
  - module: slipway.platform.deliver
  - module: slipway.platform.rollback
"""

EXAMPLES = r"""
- name: Send 10% of the backend's traffic to a new image
  slipway.platform.canary:
    context: local
    system: backend
    images:
      backend: "127.0.0.1:5001/backend@sha256:0a1b2c..."
    weight: 10
    kubeconfig: "{{ lookup('ansible.builtin.env', 'SLIPWAY_DEPLOYER_KUBECONFIG') }}"

- name: Send 5% of the shop route's traffic, and every request with X-Canary=always, to a new backend
  slipway.platform.canary:
    context: local
    system: backend
    images:
      backend: "127.0.0.1:5001/backend@sha256:0a1b2c..."
    weight: 5
    route:
      name: shop
      header:
        name: X-Canary
        value: always
    kubeconfig: "{{ lookup('ansible.builtin.env', 'SLIPWAY_DEPLOYER_KUBECONFIG') }}"

- name: Make the canary the stable version
  slipway.platform.canary:
    context: local
    system: backend
    action: promote
    reason: "error rate flat for an hour"
    kubeconfig: "{{ lookup('ansible.builtin.env', 'SLIPWAY_DEPLOYER_KUBECONFIG') }}"

- name: Promote a new backend through 10% and 50% while its error-rate gate holds, else abort it
  slipway.platform.canary:
    context: local
    system: backend
    action: progress
    images:
      backend: "127.0.0.1:5001/backend@sha256:0a1b2c..."
    steps: [10, 50]
    prometheus_url: http://10.77.0.1:9090
    kubeconfig: "{{ lookup('ansible.builtin.env', 'SLIPWAY_DEPLOYER_KUBECONFIG') }}"

- name: Give up on the canary
  slipway.platform.canary:
    context: local
    system: backend
    action: abort
    kubeconfig: "{{ lookup('ansible.builtin.env', 'SLIPWAY_DEPLOYER_KUBECONFIG') }}"
"""

RETURN = r"""
canary:
  description:
    - The canary step and, for O(action=start), the split per Deployment (C(services) are the Services that send
      traffic to the canary's pods; the stable one for a replica split, the canary Service with a route).
    - "C(steps), with O(action=progress) only: one row per step, C(weight), C(passed) and C(gates) (each metric
      gate's report with its C(query) and C(samples))."
    - C(route) is the route and what was asked of it on a routed start (C(services) maps each stable Service to its
      canary Service), C(restored=true) on a routed promote or abort, and null without a route.
  returned: always
  type: dict
  sample:
    system: backend
    action: start
    canary_system: backend-canary
    split:
      - {deployment: backend, canary: backend-canary, stable_replicas: 9, canary_replicas: 1, weight: 10.0,
         services: [backend-canary]}
    route: {name: shop, namespace: shop, weight: 10, header: {name: X-Canary, value: always},
            services: {backend: backend-canary}}
revision:
  description: The journal revision this step recorded, or the current one when nothing changed.
  returned: always
  type: int
recorded:
  description: Whether a new journal entry was recorded.
  returned: always
  type: bool
objects:
  description: Objects created or updated (or predicted to be), with the changed field paths; a routed step's
    HTTPRoute among them.
  returned: always
  type: list
  elements: dict
pruned:
  description: Objects deleted (or that would be), the canary's Deployments (and canary Services) on promote and
    abort.
  returned: always
  type: list
  elements: str
systems:
  description: One row per system delivered in this step.
  returned: always
  type: list
  elements: dict
writes:
  description: Mutating API requests made (zero in check mode).
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.run_args import (  # noqa: E402
    RELEASE_RUN_SPEC,
    release_client,
    release_options,
)


def main():
    argument_spec = dict(
        RELEASE_RUN_SPEC,
        system=dict(type="str", required=True),
        action=dict(type="str", choices=["start", "promote", "abort", "progress"], default="start"),
        steps=dict(type="list", elements="int", default=[10, 50]),
        images=dict(type="dict"),
        weight=dict(type="int"),
        route=dict(type="dict", options=dict(
            name=dict(type="str", required=True),
            namespace=dict(type="str"),
            header=dict(type="dict", options=dict(
                name=dict(type="str", required=True),
                value=dict(type="str", required=True),
            )),
            gateway=dict(type="dict", options=dict(
                name=dict(type="str", required=True),
                namespace=dict(type="str", required=True),
            )),
        )),
        reason=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("action", "start", ("images", "weight")), ("action", "progress", ("images",))])
    params = module.params
    try:
        from ansible_collections.slipway.platform.plugins.module_utils._release.canary import canary

        from ansible_collections.slipway.platform.plugins.module_utils._release.canary_steps import progress

        options = release_options(params, module.check_mode, module._diff)
        with release_client(params) as client:
            if params["action"] == "progress":
                result = progress(client, options, params["system"], params["images"], steps=params["steps"],
                                  route=params["route"], reason=params["reason"])
            else:
                result = canary(client, options, params["system"], params["action"], images=params["images"],
                                weight=params["weight"], reason=params["reason"], route=params["route"])
    except ImportError as exc:
        module.fail_json(msg=f"slipway.platform.canary could not load its libraries (urllib3 is required): {exc}")
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
