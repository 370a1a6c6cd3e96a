# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary routing through a Gateway API ``HTTPRoute``: weights on backendRefs and an optional header rule.

Plain functions over route bodies (no API calls), used by ``canary.py``:

- ``start``: every rule of the route that sends traffic to a stable Service of the system gets the canary Service
  beside it. A rule whose only backend is the stable Service becomes stable ``100 - w`` / canary ``w``; a rule that
  splits between several backends keeps their proportions and gives ``w`` percent of the stable Service's share to
  the canary (every weight scaled by 100). With a header, each such rule is followed by a copy whose matches also
  require that header and whose only backend is the canary: requests carrying it always reach the canary.
- ``promote`` / ``abort``: the rules are put back exactly as they were before the first ``start``.

The rules as they were before the canary are kept on the route itself, in the annotation ``slipway.io/canary``
(with the system's name), so a re-weight starts again from them and the restore needs nothing else. Edits made to
the route's rules while a canary runs are therefore undone by the restore.
"""

from __future__ import annotations

import copy
import json
import re

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import canonical_json, changed_paths

ROUTE_API_VERSION = "gateway.networking.k8s.io/v1"
ROUTE_KIND = "HTTPRoute"
ROUTE_ANNOTATION = "slipway.io/canary"
ROUTE_MANAGER = "slipway-canary"  # field manager of the route writes, dropped again when the route is restored
MAX_WEIGHT = 1000000  # the Gateway API's largest backendRef weight
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$")  # an RFC 7230 token, as the CRD validates
ROUTE_KEYS = ("name", "namespace", "header", "gateway")


def route_request(route, namespace):
    """The module's ``route`` option, checked: ``{name, namespace, header: {name, value} | None}``.

    ``namespace`` is the system's: the route's by default, and where its stable (and canary) Services live, so a
    route in a shared gateway namespace may send to them with a ``namespace`` on its backendRefs.
    """
    if not isinstance(route, dict):
        raise SlipwayError(f"route must be a mapping with name (and optionally namespace and header), not {route!r}")
    unknown = sorted(set(route) - set(ROUTE_KEYS))
    if unknown:
        raise SlipwayError(f"route has unknown key(s) {', '.join(unknown)}; it takes {', '.join(ROUTE_KEYS)}")
    if not route.get("name") or not isinstance(route["name"], str):
        raise SlipwayError("route needs name: the HTTPRoute that sends the system's traffic to its stable Service")
    header = route.get("header")
    if header is not None:
        if not isinstance(header, dict) or set(header) != {"name", "value"}:
            raise SlipwayError("route.header takes exactly name and value (an exact header match)")
        if not HEADER_NAME.match(str(header["name"])):
            raise SlipwayError(f"route.header.name {header['name']!r} is not a valid HTTP header name")
        if not 1 <= len(str(header["value"])) <= 4096:
            raise SlipwayError("route.header.value must be 1 to 4096 characters")
        header = {"name": str(header["name"]), "value": str(header["value"])}
    gateway = route.get("gateway")
    if gateway is not None:
        if not isinstance(gateway, dict) or not gateway.get("name") or not gateway.get("namespace"):
            raise SlipwayError("route.gateway takes the context's Gateway as name and namespace (slipway_gateway)")
        gateway = {"name": str(gateway["name"]), "namespace": str(gateway["namespace"])}
    return {"name": route["name"], "namespace": route.get("namespace") or namespace, "header": header,
            "services_namespace": namespace, "gateway": gateway}


def label(route):
    return f"{ROUTE_KIND} {route['namespace']}/{route['name']}"


def service_name(ref, route):
    """The Service a backendRef sends to when it is a core Service in the system's namespace, else ``None``."""
    if ref.get("group", "") != "" or ref.get("kind", "Service") != "Service":
        return None
    if ref.get("namespace", route["namespace"]) != route.get("services_namespace", route["namespace"]):
        return None
    return ref.get("name")


def saved(route):
    """``{"system", "rules"}`` kept on the route by a running canary, or ``None``."""
    text = ((route.get("metadata") or {}).get("annotations") or {}).get(ROUTE_ANNOTATION)
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    if not isinstance(found, dict) or not isinstance(found.get("rules"), list):
        raise SlipwayError(f"the annotation {ROUTE_ANNOTATION} of {label(_where(route))} is not the rules Slipway "
                           "saved (edited by hand?); remove it or put the saved rules back")
    return found


def _where(route):
    meta = route.get("metadata") or {}
    return {"name": meta.get("name"), "namespace": meta.get("namespace")}


def rules_before(route, system):
    """The route's rules as they were before ``system``'s canary (the live ones when no canary runs)."""
    kept = saved(route)
    if kept is None:
        return copy.deepcopy((route.get("spec") or {}).get("rules") or [])
    if kept.get("system") != system:
        raise SlipwayError(f"{label(_where(route))} already carries the canary of system {kept.get('system')}; "
                           "promote or abort that canary first")
    return copy.deepcopy(kept["rules"])


def routed_services(rules, route):
    """Names of the Services the rules send traffic to (core Services of the system's namespace)."""
    return sorted({name for rule in rules for ref in rule.get("backendRefs") or []
                   for name in [service_name(ref, route)] if name})


def _canary_ref(ref, canary, weight):
    found = copy.deepcopy(ref)
    found.update({"group": "", "kind": "Service", "name": canary, "weight": weight})
    return found


def _weighted(rule, canaries, weight, route, where):
    """The rule's backendRefs with each stable Service's share split ``100 - weight`` / ``weight``."""
    refs = rule.get("backendRefs") or []
    if len(refs) == 1 and refs[0].get("weight", 1):
        return [dict(copy.deepcopy(refs[0]), weight=100 - weight),
                _canary_ref(refs[0], canaries[service_name(refs[0], route)], weight)]
    out = []
    for ref in refs:
        share = ref.get("weight", 1)
        if share * 100 > MAX_WEIGHT:
            raise SlipwayError(f"{where}: backend {ref.get('name')} has weight {share}; scaled by 100 for the canary "
                               f"it would pass the Gateway API's limit of {MAX_WEIGHT}")
        stable = service_name(ref, route)
        if stable in canaries and share:
            out.append(dict(copy.deepcopy(ref), weight=share * (100 - weight)))
            out.append(_canary_ref(ref, canaries[stable], share * weight))
        else:
            out.append(dict(copy.deepcopy(ref), weight=share * 100))
    return out


def _header_rule(rule, canaries, header, route, where):
    """A copy of the rule for requests carrying the header, sent to the canary only."""
    found = copy.deepcopy(rule)
    matches = found.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]
    for match in matches:
        headers = match.setdefault("headers", [])
        if any(h.get("name", "").lower() == header["name"].lower() for h in headers):
            raise SlipwayError(f"{where} already matches header {header['name']}; choose another canary header")
        headers.append({"type": "Exact", "name": header["name"], "value": header["value"]})
    found["matches"] = matches
    found["backendRefs"] = [_canary_ref(ref, canaries[service_name(ref, route)], 1)
                            for ref in rule.get("backendRefs") or []
                            if service_name(ref, route) in canaries and ref.get("weight", 1)]
    if found.get("name"):
        found["name"] = f"{found['name']}-canary"[:253]
    return found


def canary_rules(rules, canaries, weight, header, route):
    """The rules with the canary in them; ``canaries``: ``{stable Service: canary Service}``."""
    if not 0 <= weight < 100 or (weight == 0 and not header):
        raise SlipwayError(f"weight must be between 1 and 99 (0 only with a header), not {weight}")
    out = []
    for index, rule in enumerate(rules):
        stable = [ref for ref in rule.get("backendRefs") or [] if service_name(ref, route) in canaries]
        if not stable:
            out.append(copy.deepcopy(rule))
            continue
        where = f"{label(route)} rule {index + 1}"
        weighted = dict(copy.deepcopy(rule), backendRefs=_weighted(rule, canaries, weight, route, where)) \
            if weight else copy.deepcopy(rule)
        out.append(weighted)
        if header:
            routed = _header_rule(rule, canaries, header, route, where)
            if routed["backendRefs"]:  # a stable backend of weight 0 gets no traffic, so no header rule either
                out.append(routed)
    return out


def attached(live, gateway):
    """Whether the route names ``gateway`` ({name, namespace}) among its parentRefs."""
    namespace = (live.get("metadata") or {}).get("namespace")
    return any(ref.get("group", "gateway.networking.k8s.io") == "gateway.networking.k8s.io"
               and ref.get("kind", "Gateway") == "Gateway" and ref.get("name") == gateway["name"]
               and ref.get("namespace", namespace) == gateway["namespace"]
               for ref in (live.get("spec") or {}).get("parentRefs") or [])


def started_route(live, system, canaries, weight, header, route):
    """The route body for a canary ``start`` (from the rules before the canary, so a re-weight is exact)."""
    gateway = route.get("gateway")
    if gateway and not attached(live, gateway):
        parents = [f"{ref.get('namespace', route['namespace'])}/{ref.get('name')}"
                   for ref in (live.get("spec") or {}).get("parentRefs") or []]
        raise SlipwayError(f"{label(route)} is not attached to the context's Gateway {gateway['namespace']}/"
                           f"{gateway['name']} (its parentRefs: {', '.join(parents) or 'none'}), so no request "
                           "through the context's gateway would follow the canary; nothing was written",
                           hint="add the Gateway to the route's parentRefs (a template takes it from "
                                "slipway_gateway), or name a route that is attached to it")
    before = rules_before(live, system)
    routed = routed_services(before, route)
    if not set(routed) & set(canaries):
        raise SlipwayError(f"{label(route)} sends no traffic to a stable Service of system {system} "
                           f"({', '.join(sorted(canaries)) or 'none selects the changed Deployment'}); its backends: "
                           f"{', '.join(routed) or 'none'}; nothing was written",
                           hint="route the system's stable Service through this HTTPRoute first, or name another route")
    body = _writable(live)
    body["spec"]["rules"] = canary_rules(before, canaries, weight, header, route)
    body["metadata"].setdefault("annotations", {})[ROUTE_ANNOTATION] = canonical_json({"system": system,
                                                                                      "rules": before})
    return body


def restored_route(live, system):
    """The route body with the rules of before the canary and no annotation; ``None`` when none is saved."""
    kept = saved(live)
    if kept is None:
        return None
    rules = rules_before(live, system)
    body = _writable(live)
    body["spec"]["rules"] = rules
    body["metadata"]["annotations"].pop(ROUTE_ANNOTATION, None)
    return body


def _writable(live):
    body = copy.deepcopy(live)
    body.pop("status", None)
    body.setdefault("spec", {})
    body["metadata"].setdefault("annotations", {})
    body["metadata"].pop("managedFields", None)  # left out of a PUT, the server keeps them as they are
    return body


def route_part(body):
    """The parts of a route the canary writes: its annotations and its rules."""
    return {"metadata": {"annotations": ((body or {}).get("metadata") or {}).get("annotations") or {}},
            "spec": {"rules": ((body or {}).get("spec") or {}).get("rules") or []}}


def route_fields(live, desired):
    """The paths a write of ``desired`` changes (``.spec.rules...``, ``.metadata.annotations...``)."""
    return changed_paths(route_part(live), route_part(desired))


def without_manager(managed_fields, manager=ROUTE_MANAGER):
    """``managedFields`` without ``manager``'s entries: restored fields go back to no owner, so the route's own
    field manager (a delivery that applies it) can take them again without a conflict."""
    kept = [entry for entry in managed_fields or [] if entry.get("manager") != manager]
    return kept if len(kept) != len(managed_fields or []) else None
