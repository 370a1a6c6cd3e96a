# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Showrooms: a branch's systems shown with the rest of the ecosystem, in namespaces of their own.

A showroom is a context of its own, ``showroom-<name>``, whose systems run in ``<namespace>-<name>`` instead of the
``<namespace>`` their ``slipway.yml`` gives, so that several branches run side by side with the contexts they were
branched from. Everything here is pure: the names, the rewriting of a delivery's systems into the showroom's
namespaces (a delivery option, ``deliver``'s ``showroom``), the route that gives it a URL, and which images it runs
(the branch's for the systems it changed, the base context's for the others). What touches the cluster (admitting,
listing, retiring) is ``showroom_cluster.py``.
"""

from __future__ import annotations

import copy

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._names import dns_label, showroom_namespace
from ansible_collections.slipway.platform.plugins.module_utils._system import DNS_LABEL

SHOWROOM_LABEL = "slipway.io/showroom"  # on a showroom's namespaces: the showroom they belong to
JOURNAL_NAMESPACE = "slipway-showrooms"  # journals, locks and snapshots of every showroom, apart from the contexts'
CONTEXT_PREFIX = "showroom-"
# Short enough that the context name, and labels templates make of it (``frontend-showroom-<name>``), stay labels.
MAX_NAME = 30
ROUTE_NAME = "slipway-showroom"


def showroom_name(requested):
    """The showroom's name: ``requested`` (a branch name, say) as a DNS label of at most ``MAX_NAME`` characters."""
    try:
        return dns_label(requested, MAX_NAME)
    except SlipwayError as exc:
        raise SlipwayError(f"showroom name refused: {exc.msg}") from None


def showroom_context(name):
    """The context whose journal and lock a showroom has: ``showroom-<name>``."""
    _require_name(name)
    return CONTEXT_PREFIX + name


def _require_name(name):
    if not isinstance(name, str) or not DNS_LABEL.match(name) or len(name) > MAX_NAME:
        raise SlipwayError(f"showroom name {name!r} is not a DNS-1123 label of at most {MAX_NAME} characters; make "
                           "one with slipway.platform.dns_label(30) (the showroom playbooks do)")


def namespace_map(name, namespaces):
    """Each namespace of the ecosystem -> the showroom's namespace for it."""
    _require_name(name)
    return {namespace: showroom_namespace(namespace, name) for namespace in sorted(set(namespaces))}


def refuse_collisions(name, moved, taken):
    """Refuse a showroom whose namespaces are another's: ``taken`` maps namespace -> who has it (a context's
    systems, a namespace that exists without being this showroom's). The ecosystem's own namespaces are taken too:
    showroom ``x`` of namespaces ``shop`` and ``shop-x`` would put ``shop`` where ``shop-x`` runs."""
    owners = dict(taken)
    for original in moved:
        owners.setdefault(original, "the ecosystem's own systems (their slipway.yml)")
    clashes = [f"{target} (for {original}) belongs to {owners[target]}"
               for original, target in sorted(moved.items()) if target in owners]
    if clashes:
        raise SlipwayError(f"showroom {name!r} cannot use its namespaces: {'; '.join(clashes)}. Choose another "
                           "showroom name (slipway_showroom)", collisions=clashes)


def rewritten_description(description, name):
    """A system description as the showroom's templates see it: ``namespace`` (and a gate's) moved."""
    namespace = description.get("namespace")
    gates = _gates(description.get("health"))
    mapping = namespace_map(name, [n for n in [namespace, *(g.get("namespace") for g in gates)]
                                   if isinstance(n, str) and DNS_LABEL.match(n)])
    moved = copy.deepcopy(description)
    moved["namespace"] = mapping.get(namespace, namespace)
    moved["health"] = _moved_gates(description.get("health"), mapping)
    return moved


def _gates(health):
    gates = health if isinstance(health, list) else [health] if isinstance(health, dict) else []
    return [gate for gate in gates if isinstance(gate, dict)]


def _moved_gates(health, mapping):
    """Health gates with the namespace each names (when it names one) moved by ``mapping``."""
    def moved(gate):
        if isinstance(gate, dict) and gate.get("namespace") in mapping:
            return dict(gate, namespace=mapping[gate["namespace"]])
        return gate
    if isinstance(health, list):
        return [moved(gate) for gate in health]
    return moved(health)


def confined(rendered, name, namespaces):
    """The rendered systems of a delivery, every object in the showroom's namespaces.

    ``namespaces``: the ecosystem's own namespaces (its systems' ``slipway.yml``). A system whose description was
    rewritten before rendering (:func:`rewritten_description`) renders the showroom's namespaces already; an object
    that names one of ``namespaces`` is moved to the showroom's, and one that names any other namespace would
    leave the showroom and is refused.
    """
    mapping = namespace_map(name, namespaces)
    inside = set(mapping.values())
    systems = copy.deepcopy(rendered)
    problems = []
    for system in systems:
        system["namespace"] = mapping.get(system.get("namespace"), system.get("namespace"))
        system["health"] = _moved_gates(system.get("health"), mapping)
        for document in system.get("documents") or []:
            problem = _confine(document.get("content"), mapping, inside)
            if problem:
                problems.append(f"system {system.get('name')}: {document.get('file')} (document "
                                f"{document.get('index')}): {problem}")
    if problems:
        raise SlipwayError(f"showroom {name!r} refused, nothing was written: " + "; ".join(problems) + ". Write "
                           "{{ system.namespace }} (or namespaces.<system>) instead of a namespace's name",
                           problems=problems)
    return systems


def _confine(content, mapping, inside):
    """Move one object into the showroom (in place); a sentence when it names a namespace outside it."""
    if not isinstance(content, dict) or not isinstance(content.get("metadata"), dict):
        return None
    metadata = content["metadata"]
    if content.get("kind") == "Namespace" and str(content.get("apiVersion")) == "v1":
        target = mapping.get(metadata.get("name"), metadata.get("name"))
        if target not in inside:
            return f"Namespace {metadata.get('name')} is not one of the ecosystem's"
        metadata["name"] = target
        return None
    namespace = metadata.get("namespace")
    if namespace is None:
        return None
    if namespace not in mapping and namespace not in inside:
        return f"{content.get('kind')} {metadata.get('name')} names namespace {namespace}, outside the showroom"
    metadata["namespace"] = mapping.get(namespace, namespace)
    for subject in content.get("subjects") or []:  # a RoleBinding's service accounts move with their namespace
        if isinstance(subject, dict) and subject.get("kind") == "ServiceAccount" and subject.get("namespace"):
            subject["namespace"] = mapping.get(subject["namespace"], subject["namespace"])
    return None


def route_document(name, hostname, service, port, gateway):
    """The HTTPRoute that gives a showroom its URL: ``hostname`` through ``gateway`` ({name, namespace[,
    sectionName]}) to ``service``:``port`` (the entry system's Service, in the showroom's namespace)."""
    if not isinstance(gateway, dict) or not gateway.get("name"):
        raise SlipwayError("the showroom route needs the gateway it attaches to: slipway_showroom_gateway with a "
                           "name (and namespace)")
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["name"]}
    for key in ("namespace", "sectionName"):
        if gateway.get(key):
            parent[key] = gateway[key]
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": ROUTE_NAME, "labels": {SHOWROOM_LABEL: name}},
            "spec": {"parentRefs": [parent], "hostnames": [hostname],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [{"name": service, "port": int(port)}]}]}}


def hostname(name, domain):
    """``<name>.<domain>``: the showroom's host name (``feature-x.showroom.local``)."""
    _require_name(name)
    labels = str(domain or "").strip(".").split(".")
    if not all(DNS_LABEL.match(label) for label in labels):
        raise SlipwayError(f"showroom domain {domain!r} is not a DNS name (slipway_showroom_domain)")
    return ".".join([name, *labels])


def with_route(rendered, name, route):
    """The rendered systems with the showroom's HTTPRoute among the entry system's objects, so that it is applied,
    recorded, rolled back and pruned with them. ``route``: {system, port, hostname, gateway}. An entry system that
    renders a route for the host name itself (the shop's frontend does, from ``slipway_gateway``) keeps its own."""
    entry = route.get("system")
    systems = []
    found = False
    for system in rendered:
        if system.get("name") == entry:
            found = True
            if _routes_host(system, route["hostname"]):
                systems.append(system)
                continue
            document = route_document(name, route["hostname"], route.get("service") or entry, route["port"],
                                      route.get("gateway"))
            document["metadata"]["namespace"] = system.get("namespace")
            system = dict(system, documents=[*(system.get("documents") or []),
                                             {"file": "(showroom route)", "index": 0, "content": document}])
        systems.append(system)
    if not found:
        raise SlipwayError(f"the showroom's entry system {entry!r} is not delivered: set slipway_showroom_entry to "
                           f"one of {sorted(s.get('name') for s in rendered)}")
    return systems


def _routes_host(system, host):
    return any(isinstance(d.get("content"), dict) and d["content"].get("kind") == "HTTPRoute"
               and host in ((d["content"].get("spec") or {}).get("hostnames") or [])
               for d in system.get("documents") or [])


def showroom_systems(rendered, showroom):
    """What ``deliver`` makes of its rendered systems with the option ``showroom`` ({name, namespaces, route, ...}):
    confined to the showroom's namespaces, with its route."""
    name = showroom.get("name")
    systems = confined(rendered, name, showroom.get("namespaces") or [])
    return with_route(systems, name, showroom["route"]) if showroom.get("route") else systems


RECORDED = ("name", "branch", "base", "base_revision", "url", "requested_by", "ttl")


def showroom_record(showroom):
    """What a showroom's journal records say about it (the option ``showroom`` without its working parts)."""
    _require_name(showroom.get("name"))
    recorded = {key: showroom[key] for key in RECORDED if showroom.get(key) is not None}
    if (showroom.get("route") or {}).get("hostname"):
        recorded["hostname"] = showroom["route"]["hostname"]
    return recorded


def delivery_images(system_images, built, base_systems, branch=None):
    """Which image each system of the showroom runs, and which systems are the branch's.

    ``system_images``: system -> its image names (from ``slipway.yml``); ``built``: image -> the reference this
    branch built (the build report); ``base_systems``: the base context's last good release's ``systems``
    (system -> {images}). A system is the branch's when ``branch`` names it, or (``branch`` None) when it built an
    image the base does not run; the others run the base's images. A system the base does not run is the branch's.
    """
    images, branch_systems = {}, []
    for system, names in sorted(system_images.items()):
        recorded = (base_systems.get(system) or {}).get("images") or {}
        changed = any(built.get(image) and built.get(image) != recorded.get(image) for image in names)
        ours = system in branch if branch is not None else changed
        if ours or not all(recorded.get(image) for image in names):
            missing = [image for image in names if not built.get(image)]
            if missing:
                raise SlipwayError(f"system {system} is the branch's (or the base does not run it) but the build "
                                   f"report lacks its images {missing}: run the build step first")
            branch_systems.append(system)
            images.update({image: built[image] for image in names})
        else:
            images.update({image: recorded[image] for image in names})
    return images, branch_systems
