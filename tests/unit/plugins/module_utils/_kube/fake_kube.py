"""Stand-ins for the Kube API: FakeClient, a tiny in-memory KubeClient (objects by path, resourceVersion checks,
scripted PATCH answers), and JsonAnswers, the base of the throw-away HTTP servers the real client is tested against."""

from __future__ import annotations

import copy
import json
import re
from http.server import BaseHTTPRequestHandler

from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_error


class JsonAnswers(BaseHTTPRequestHandler):
    """A quiet request handler that answers JSON, as the API server does."""

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def selected(selector, labels):
    """Equality (``k=v``) and set-based (``k in (a,b)``) label selectors, joined by commas."""
    for part in re.findall(r"[^,(]+(?:\([^)]*\))?", selector):
        if " in (" in part:
            key, values = part.split(" in (")
            if labels.get(key.strip()) not in [v.strip() for v in values.rstrip(")").split(",")]:
                return False
        elif labels.get(part.split("=")[0]) != part.split("=", 1)[1]:
            return False
    return True


class FakeClient:
    def __init__(self):
        self.store = {}
        self.calls = []
        self.writes = 0
        self.requests = 0
        self.patch = None  # callable(path, body, query) -> dict, or raise
        self.rv = 0
        self.outage_grace = 0.0  # KubeClient's knob, set by the delivery engine

    def _fail(self, method, path, status, reason, message, causes=()):
        body = json.dumps({"kind": "Status", "reason": reason, "message": message,
                           "details": {"causes": list(causes)}}).encode()
        raise api_error(method, path, status, body)

    def get(self, path, query=None, ok_missing=False):
        return self.request("GET", path, query=query, ok_missing=ok_missing)

    def request(self, method, path, body=None, query=None, content_type="application/json", ok_missing=False,
                accept="application/json"):
        self.calls.append((method, path, query))
        self.requests += 1
        dry = bool(query and query.get("dryRun"))
        if method != "GET" and not dry:
            self.writes += 1
        if method == "GET":
            if path in self.store:
                return copy.deepcopy(self.store[path])
            items = [copy.deepcopy(v) for k, v in sorted(self.store.items()) if k.rsplit("/", 1)[0] == path]
            selector = (query or {}).get("labelSelector")
            if selector:
                items = [i for i in items if selected(selector, i["metadata"].get("labels") or {})]
            if items or path.endswith(("configmaps", "leases", "secrets", "deployments")):
                return {"items": items}
            if ok_missing:
                return None
            self._fail(method, path, 404, "NotFound", "not found")
        if method == "POST":
            target = f"{path}/{body['metadata']['name']}"
            if target in self.store:
                self._fail(method, path, 409, "AlreadyExists", "already exists")
            return self._save(target, body)
        if method == "PUT":
            current = self.store.get(path)
            if current is None:
                self._fail(method, path, 404, "NotFound", "not found")
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                self._fail(method, path, 409, "Conflict", "the object has been modified")
            return self._save(path, body)
        if method == "PATCH":
            return self.patch(path, body, query)
        if method == "DELETE":
            if path not in self.store and ok_missing:
                return None
            if path not in self.store:
                self._fail(method, path, 404, "NotFound", "not found")
            if not dry:
                del self.store[path]
            return {}
        raise AssertionError(method)

    def _save(self, path, body):
        self.rv += 1
        saved = copy.deepcopy(body)
        saved["metadata"]["resourceVersion"] = str(self.rv)
        self.store[path] = saved
        return copy.deepcopy(saved)
