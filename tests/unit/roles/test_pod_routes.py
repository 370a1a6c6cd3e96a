"""The pod network's route keeper (roles/pod_network/files/slipway-pod-routes.py): which routes it wants and changes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "pod_network" / "files" / "slipway-pod-routes.py"
spec = importlib.util.spec_from_file_location("slipway_pod_routes", SCRIPT)
routes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(routes)


def node(name: str, cidr: str | None, address: str | None) -> dict:
    status = {"addresses": [{"type": "Hostname", "address": name}]
              + ([{"type": "InternalIP", "address": address}] if address else [])}
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {}, "status": status}


def test_routes_to_every_other_node_with_a_pod_cidr_and_an_address():
    nodes = {"items": [node("w1", "10.244.1.0/24", "172.31.250.12"), node("w2", "10.244.2.0/24", "172.31.250.13"),
                       node("new", None, "172.31.250.14"), node("odd", "10.244.4.0/24", None)]}
    assert routes.wanted_routes(nodes, "w1") == {"10.244.2.0/24": "172.31.250.13"}


def test_current_routes_read_from_ip_json_skip_a_default_route():
    listing = [{"dst": "10.244.2.0/24", "gateway": "172.31.250.13"}, {"dst": "default", "gateway": "172.31.250.1"}]
    assert routes.current_routes(listing) == {"10.244.2.0/24": "172.31.250.13"}


def test_changes_add_new_fix_moved_and_remove_gone_routes_only():
    wanted = {"10.244.2.0/24": "172.31.250.13", "10.244.3.0/24": "172.31.250.15", "10.244.5.0/24": "172.31.250.16"}
    current = {"10.244.2.0/24": "172.31.250.13", "10.244.3.0/24": "172.31.250.14", "10.244.9.0/24": "172.31.250.19"}
    replace, remove = routes.route_changes(wanted, current)
    assert replace == [("10.244.3.0/24", "172.31.250.15"), ("10.244.5.0/24", "172.31.250.16")]
    assert remove == ["10.244.9.0/24"]


def test_nothing_to_change_when_in_step():
    wanted = {"10.244.2.0/24": "172.31.250.13"}
    assert routes.route_changes(wanted, dict(wanted)) == ([], [])
