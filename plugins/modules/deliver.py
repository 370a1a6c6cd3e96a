#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deliver
short_description: Deliver a set of systems to a context through the Kubernetes API, idempotently and recorded
version_added: 0.1.0
description:
  - Makes one context run exactly the given systems at exactly the given versions, or fails clearly.
  - "The flow: lock the context (a C(coordination.k8s.io) Lease) -> validate every rendered object locally and
    with a server-side dry-run -> apply namespaces and CRDs first, then systems in dependency order (independent
    systems in parallel) with server-side apply under the field manager C(slipway) -> prune what an earlier
    release of the same system created and the new one no longer declares -> wait for every workload in
    parallel, failing fast with the reason -> record the release in the journal (one ConfigMap per release in
    C(slipway-system))."
  - The action plugin of the same name runs on the controller. It reads each system's C(slipway.yml) under
    O(ecosystem_root), renders its C(deploy/*.j2) templates with the task's variables plus C(system),
    C(images), C(context) and C(values). With a C(local) connection (every Slipway inventory) it then runs the
    delivery in the controller's own process, the same code as the module without a module process around it;
    on any other connection it hands the rendered documents to the module as O(rendered) on the task's host.
  - An object Slipway applied carries the labels C(app.kubernetes.io/managed-by=slipway),
    C(slipway.io/system) and C(slipway.io/context), and the annotation C(slipway.io/digest), a keyed HMAC of
    the applied manifest. Only objects with those labels are ever pruned.
  - A delivery that would change nothing makes no write at all (not even the lock) and records no revision.
  - After a system's workloads are ready, the health gates its C(slipway.yml) declares under C(health) are checked
    - an HTTP GET through the API server's service proxy (C(path), C(port) of the Service, optional C(service),
    C(namespace), C(scheme), C(expect_status), C(body_contains)) or a C(command) (argv) run on the host running the
    delivery; each takes C(attempts), C(delay), C(timeout). A failing gate fails the system like a rollout that does
    not become ready. Gates run only for systems the delivery changes or whose last recorded result was not a
    success (see C(docs/architecture.md)).
  - Systems leave a context only when asked (O(retire), O(retire_absent)); their objects are deleted after every
    delivered system is ready, and the release no longer lists them.
  - With O(network_policy=enforce) each system's C(slipway.yml) C(network) flows become NetworkPolicies among its
    own objects (a namespace default-deny plus exactly the declared flows), delivered, pruned, recorded and rolled
    back like the rest; see C(docs/security.md).
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
  - slipway.platform.release_run
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The same predicate as a real run decides, and every object that may change is sent as a server-side
        dry-run, so the prediction is the server's own. Nothing is written, not even the lock or the journal.
      - Objects in a namespace, or of a kind, that the same delivery creates cannot be dry-run before it exists;
        they are predicted as C(create).
      - Fields added by hand that the manifests do not declare (see O(reclaim_managers)) are predicted as removed
        from the dry-run's field ownership; the diff shows them going away.
      - Health gates are not run in check mode; each system's row says C(health.state=not run).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: full
    details:
      - Shows only the fields that change, per object. Secret values are replaced by a keyed hash of each value,
        so a changed secret still shows (and counts) as changed without revealing it.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details:
      - An object is left alone when the desired object (stringData folded into data) is contained in the live
        one and its digest annotation matches; fields the server defaults never count as a change.
      - Redelivering the same release returns C(changed=false), makes zero writes and records no revision.
      - A delivery that corrected drift (hand edits reclaimed or removed) leaves none behind, so the next one is
        C(ok).
options:
  systems:
    description: Names of the systems to deliver; each is a folder under O(ecosystem_root) with a C(slipway.yml).
    type: list
    elements: str
    required: true
  ecosystem_root:
    description: Folder holding one folder per system. Read on the controller by the action plugin.
    type: path
  images:
    description:
      - Image name to full reference, as written by the build step (C(reports/images-<context>.json)),
        preferably by digest (C(registry/name@sha256:...)).
      - An image missing here is referenced as C(<registry>/<name>:<tag>) with the tag from O(system_tags), else
        C(latest).
    type: dict
    default: {}
  system_tags:
    description: System name to the image tag (or C(sha256:...) digest) of its images, when O(images) lacks them.
    type: dict
    default: {}
  registry:
    description: The registry prefixed to image names that O(images) does not give.
    type: str
  values:
    description: System name to the values its templates see as C(values).
    type: dict
    default: {}
  rendered:
    description:
      - The rendered systems. Filled by the action plugin from O(ecosystem_root); give it only to deliver
        documents rendered elsewhere.
      - "Each item: C(name), C(namespace), C(depends_on), C(images), C(git_sha) and C(documents), a list of
        C({file, index, content}) where C(content) is one parsed YAML document (null for an empty one)."
    type: list
    elements: dict
  secret_data:
    description:
      - The values (C(data), C(stringData)) of the Secrets in O(rendered), keyed C(<system>/<file>/<index>/<item>).
        The action plugin moves them here so that they are never logged with the module's arguments and are
        masked wherever they might surface.
    type: dict
    default: {}
  wait:
    description:
      - Wait for every workload (Deployments, StatefulSets, DaemonSets, Jobs, Pods) to be ready.
      - With C(wait=false) health gates are not run.
    type: bool
    default: true
  prune:
    description: Delete objects an earlier release of a delivered system created that it no longer declares.
    type: bool
    default: true
  force_conflicts:
    description:
      - Take every conflicting field from its other owner.
      - When false, fields owned by a controller (for example C(spec.replicas) owned by an autoscaler) are left to
        it and reported as C(conflicts_respected); fields changed by hand (managers in O(reclaim_managers)) are
        taken back and reported as drift.
      - It does not remove fields the manifests leave out; see O(reclaim_managers) for those added by hand.
    type: bool
    default: false
  reclaim_managers:
    description:
      - Field manager name prefixes whose edits count as hand edits to correct.
      - A field the manifests declare that such a manager changed is taken back (C(conflicts_reclaimed)).
      - A field the manifests do not declare that such a manager added, and that no controller or other manager
        also owns, is removed (C(hand_edits_removed)) when the manager is a person by the table in
        C(docs/architecture.md) (C(kubectl-set), C(kubectl-patch), C(kubectl-label), C(kubectl-annotate),
        C(kubectl-edit), C(kubectl-client-side-apply), C(kubectl-replace), C(kubectl), C(k9s), C(Mozilla),
        C(OpenLens); not C(kubectl-scale), C(kubectl-rollout) or C(kubectl-create)). Both are reported as drift
        and recorded in the journal (C(drift_corrected)).
      - An empty list corrects no hand edit.
    type: list
    elements: str
    default: [kubectl, k9s, Mozilla, OpenLens]
  progress_file:
    description:
      - A file to which one line is appended per step while the delivery runs; the action plugin sets it and shows
        the lines as they come when the module runs on a remote host.
    type: path
  on_failure:
    description:
      - What a delivery that fails after it started writing (a rollout that does not become ready, or a health
        gate that fails) does.
      - C(fail) leaves the context as the failed delivery left it (recorded with outcome C(failed)).
      - C(rollback) then rolls the delivered systems back to the previous good release with
        M(slipway.platform.rollback) (recorded as a release of its own) and fails with both stories in C(msg) and
        RV(rollback).
      - C(auto) is C(rollback) when the run is a CI job (Jenkins, TeamCity, GitLab, GitHub Actions, or C(CI) set;
        see C(docs/ci.md)) and C(fail) otherwise; the playbooks use it by default. The controller's environment
        decides, also when the module runs on another host.
      - Failures before the first write (validation, dry-run, lock) never roll back; nothing was changed.
    type: str
    choices: [fail, rollback, auto]
    default: fail
  retire:
    description:
      - Systems to take out of the context. Every object Slipway applied for them is deleted (they are pruned like
        objects a system no longer declares), after every system of O(systems) is ready; the release recorded no
        longer lists them. Nothing is deleted if the delivery fails first.
      - A system that is not in the context's current release is ignored, so retiring twice changes nothing.
      - A system O(systems) delivers cannot be retired, nor one that a delivered system depends on, nor a canary
        routed through an HTTPRoute (promote or abort it with M(slipway.platform.canary) first).
      - A rollback to a release that still had the system brings it back.
    type: list
    elements: str
    default: []
  retire_absent:
    description:
      - Retire every system recorded in the context's current release that O(systems) does not list, so the context
        ends up running exactly O(systems). Use it when O(systems) is the context's whole list.
      - When false, such systems keep running as recorded and are listed in RV(not_delivered).
    type: bool
    default: false
  network_policy:
    description:
      - What the systems' C(network) flows (in their C(slipway.yml)) become. Read by the action plugin.
      - C(off) delivers no NetworkPolicy (C(network) is still validated).
      - C(audit) changes nothing in the cluster and lists, in the progress and RV(network_policy) (C(would_block)), the
        flows C(enforce) would block.
      - C(enforce) adds to each delivered system a default-deny of ingress and egress for its namespace
        (C(slipway-default-deny-<system>)) and its ingress and egress policies (C(slipway-<system>-ingress),
        C(slipway-<system>-egress)); its pods are labelled C(slipway.io/system=<system>), which rolls each
        workload once when enforce is first turned on. A system reaches the systems it C(depends_on) on the ports
        each admits it on, and DNS.
    type: str
    choices: ["off", audit, enforce]
    default: "off"
  network_peers:
    description:
      - Where the named peers of C(network) flows are in this cluster. Read by the action plugin.
      - C(kube_api_cidrs) (list) the API server's addresses as pods reach them, required when a flow names
        C(kube-api); C(dns_namespace) (default C(kube-system)) and C(dns_pod_labels) (default
        C(k8s-app=kube-dns)) select the cluster DNS pods that C(dns) means.
    type: dict
    default: {}
  showroom:
    description:
      - Deliver as a showroom (see C(docs/showrooms.md) and M(slipway.platform.showroom)) - every system in the
        showroom's namespaces, C(<namespace>-<name>), instead of its own. C(name) (required) is the showroom, a DNS
        label of at most 30 characters; C(namespaces) the ecosystem's own namespaces (the action plugin fills it
        from the systems' C(slipway.yml)).
      - Templates see the showroom's namespaces as C(system.namespace) and C(namespaces.<system>); an object that
        names one of the ecosystem's namespaces is moved too, and one that names any other namespace is refused
        before anything is written.
      - "C(route) ({system, port, hostname, gateway: {name, namespace}}) adds an HTTPRoute C(slipway-showroom) for
        C(hostname) to that system's Service, among its objects."
      - C(branch), C(base), C(base_revision), C(url), C(requested_by), C(ttl) are recorded with the release (its
        C(showroom) field), which M(slipway.platform.showroom_info) lists.
      - Give O(context) C(showroom-<name>) and O(journal_namespace) C(slipway-showrooms), as C(playbooks/showroom.yml)
        does.
    type: dict
notes:
  - Runs on the controller (or wherever the API is reachable); the connection options say how to reach it.
  - Secrets belong in C(Secret) objects; their values never enter the output, the journal or annotations.
    Other objects are shown in diffs as they are.
  - An immutable field change (for example a Job template or a Deployment selector) fails the dry-run with the
    field named; nothing is written. Delete the object, or rename it, and deliver again.
  - With a C(local) connection, a system whose inputs did not change since the latest release (its manifest files,
    C(slipway.yml), images, values, the variables its templates name) is not rendered again; the objects that release
    stored are compared with the live ones instead, so hand edits are still undone. Templates that call C(lookup),
    C(query) or C(now), read C(vars) or C(hostvars), include other templates or use random filters are always
    rendered.
seealso:
  - module: slipway.platform.release_info
"""

EXAMPLES = r"""
- name: Deliver the shop to the local context
  slipway.platform.deliver:
    context: local
    systems: [backend, worker, frontend]
    ecosystem_root: "{{ playbook_dir }}/../examples/shop"
    registry: 127.0.0.1:5001
    images: "{{ lookup('ansible.builtin.file', 'reports/images-local.json') | from_json }}"
    api_url: https://127.0.0.1:6443
    ca_cert: .stack/pki/ca.crt
    client_cert: .stack/pki/deployer.crt
    client_key: .stack/pki/deployer.key

- name: Make the context run exactly these systems (retire the others it runs)
  slipway.platform.deliver:
    context: staging
    systems: [backend, worker, frontend]
    retire_absent: true
    ecosystem_root: "{{ slipway_ecosystem_root }}"
    kubeconfig: ~/.kube/staging

- name: Predict a production delivery without changing anything
  slipway.platform.deliver:
    context: production
    confirmed: "{{ slipway_production_confirmed | default(false) | bool }}"
    systems: "{{ slipway_systems }}"
    ecosystem_root: "{{ slipway_ecosystem_root }}"
    kubeconfig: ~/.kube/production
  check_mode: true
  diff: true
"""

RETURN = r"""
network_policy:
  description:
    - The network policy mode, the NetworkPolicies generated per system (enforce) and the flows enforce blocks
      (one sentence each, with the declaration that allows it).
  returned: when the action plugin rendered the systems
  type: dict
  sample:
    mode: audit
    policies: {}
    would_block: ["frontend -> backend: frontend depends on it, but backend does not admit it (...)"]
revision:
  description: The journal revision this delivery recorded, or the current one when nothing changed.
  returned: always
  type: int
  sample: 7
recorded:
  description: Whether a new release was recorded.
  returned: always
  type: bool
summary:
  description: Object counts.
  returned: always
  type: dict
  sample: {created: 3, updated: 1, unchanged: 20, pruned: 1}
systems:
  description:
    - One row per delivered (or retired) system.
    - C(health) is null when the system declares no gate, else C({state, reason, gates}) with C(state) one of
      C(passed), C(failed), C(skipped), C(not run) and C(gates) a list of C({gate, passed, attempts, seconds, reason}).
  returned: always
  type: list
  elements: dict
  sample:
    - {system: backend, images: {backend: "127.0.0.1:5001/backend@sha256:0a1b..."}, revision: 7,
       result: changed, reason: "", seconds: 3.2, details: []}
objects:
  description:
    - Objects created, updated (or predicted to be), or found drifted; with the changed field paths.
    - C(hand_edits_removed) lists the undeclared fields added by hand that this run removes, with their manager.
  returned: always
  type: list
  elements: dict
  sample:
    - {system: backend, kind: Deployment, namespace: shop, name: backend, action: update,
       fields: [".spec.template.spec.containers[0].image"]}
    - {system: gateway, kind: Deployment, namespace: shop, name: gateway, action: update,
       fields: [".spec.template.spec.containers[0].env"],
       drift: [".spec.template.spec.containers[name=\"gateway\"].env[name=\"DRIFT\"]"],
       hand_edits_removed: [{field: ".spec.template.spec.containers[name=\"gateway\"].env[name=\"DRIFT\"]",
                             manager: kubectl-set}]}
drift:
  description:
    - Objects edited outside Slipway since it applied them, with the drifted paths (corrected by this run).
    - The paths are declared fields changed by hand, and undeclared fields added by hand.
  returned: always
  type: list
  elements: dict
conflicts_respected:
  description: Objects with fields left to another field manager (for example C(spec.replicas) to an autoscaler).
  returned: always
  type: list
  elements: dict
  sample:
    - {system: backend, kind: Deployment, namespace: shop, name: backend, action: unchanged,
       conflicts_respected: [{field: ".spec.replicas", manager: horizontal-pod-autoscaler}]}
pruned:
  description: Objects deleted (or that would be) because their system no longer declares them.
  returned: always
  type: list
  elements: str
  sample: ["ConfigMap shop/backend-old"]
writes:
  description: Mutating API requests this run made (dry-runs excluded); zero for a redelivery.
  returned: always
  type: int
requests:
  description: API requests this run made.
  returned: always
  type: int
progress:
  description: The progress lines, in order.
  returned: always
  type: list
  elements: str
retired:
  description: Systems this run took out of the context (or would, in check mode).
  returned: always
  type: list
  elements: str
  sample: [legacy-api]
not_delivered:
  description: Systems recorded in the context that this run neither delivered nor retired; they keep running.
  returned: always
  type: list
  elements: str
lock_taken_over_from:
  description: The holder of an expired lock that this delivery took over.
  returned: when a stale lock was taken over
  type: str
rollback:
  description: The automatic rollback's result (see M(slipway.platform.rollback)), or its error (C(failed), C(msg)).
  returned: when the delivery failed and O(on_failure=rollback)
  type: dict
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.deliver_task import (  # noqa: E402
    DELIVER_SPEC,
    masked_values,
    prepared_systems,
    run_delivery,
)


def main():
    module = AnsibleModule(argument_spec=DELIVER_SPEC, supports_check_mode=True)
    params = module.params

    def progress(line):
        if params["progress_file"]:
            with open(params["progress_file"], "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    try:
        rendered = prepared_systems(params)
        module.no_log_values.update(masked_values(rendered))
        result = run_delivery(params, rendered, module.check_mode, module._diff, progress)
    except ImportError:
        module.fail_json(msg="slipway.platform.deliver could not load its libraries (urllib3 and PyYAML are "
                             "required)", exception=traceback.format_exc())
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
