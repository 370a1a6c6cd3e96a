"""Tracing in the catalogue (issue 17): Jaeger v2 as the ops context delivers it on the stack's real node, and a
request through the shop that becomes one trace spanning the frontend and the backend.

The ops context is delivered through ``playbooks/site.yml`` for ``tracing`` alone (its image built on the stack's
``slipway/jaeger`` base, tested in the image, delivered). The shop's frontend and backend, built from
``examples/shop``, run on the real node with ``OTEL_EXPORTER_OTLP_ENDPOINT`` naming the collector's Service. A
request to the frontend carrying a known ``traceparent`` comes back naming the same trace, and Jaeger's query API
returns that trace by id: the frontend's span, child of the caller's, and the backend's span, child of the
frontend's.

Slow (``-m slow``): 1-2 minutes with the image to build and test, then seconds.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from pathlib import Path

import pytest
from fixtures.deliver.support import grant_namespace, unique
from test_catalogue_bus import deliver_ops_system, shop_service
from test_catalogue_monitoring import answers_ok, http_service, pulling, push, wait_for  # noqa: F401 # pylint: disable=unused-import
from test_deliver_real_node import registry  # noqa: F401 # pylint: disable=unused-import

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = "http://tracing.tracing.svc.cluster.local:4318"  # inventories/local's slipway_tracing_endpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def jaeger(stack, kubectl):
    """The query API of the tracing service the ops context delivered (its pod, from this host)."""
    pod = deliver_ops_system(kubectl, "tracing", "tracing")
    return f"http://{pod['status']['podIP']}:16686"


def pod_address(kubectl, ns, app):
    pods = json.loads(kubectl("-n", ns, "get", "pods", "-l", f"app={app}", "-o", "json").stdout)["items"]
    ready = [p for p in pods if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")]
    assert len(ready) == 1, [p["metadata"]["name"] for p in pods]
    return ready[0]["status"]["podIP"]


@pytest.fixture(scope="module")
def shop(push, stack_dir, kubectl):  # noqa: F811 - the imported fixture
    """The shop's backend and frontend on the real node, in a namespace of the module's own, sending spans to the
    catalogue's collector; the frontend's address."""
    ns = grant_namespace(kubectl, unique("t-tracing"))
    pulling(kubectl, stack_dir, ns)
    backend = push(ROOT / "examples" / "shop" / "backend", "shop-backend")
    frontend = push(ROOT / "examples" / "shop" / "frontend", "shop-frontend")
    objects = [
        shop_service("backend", backend, {"PORT": "8080", "OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR,
                                          "OTEL_SERVICE_NAME": "backend"}, port=8080),
        http_service("backend", 8080),
        shop_service("frontend", frontend, {"BACKEND_URL": f"http://backend.{ns}.svc.cluster.local:8080",
                                            "OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR,
                                            "OTEL_SERVICE_NAME": "frontend"}, port=8080),
    ]
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    for name in ("backend", "frontend"):
        kubectl("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=180s")
    frontend = f"http://{pod_address(kubectl, ns, 'frontend')}:8080"

    # the backend's new Service needs a moment before the cluster DNS names it
    wait_for("the shop answering through its frontend", lambda: answers_ok(f"{frontend}/cgi-bin/api/products", 15), 60)
    yield frontend
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def trace_of(jaeger, trace_id):
    """The trace Jaeger's query API returns for ``trace_id`` (its spans and processes), or None."""
    try:
        with urllib.request.urlopen(f"{jaeger}/api/traces/{trace_id}", timeout=5) as answer:  # noqa: S310
            found = json.load(answer)["data"]
    except OSError:
        return None
    return found[0] if found else None


def spans_by_service(trace):
    return {trace["processes"][span["processID"]]["serviceName"]: span for span in trace["spans"]}


def frontend_and_backend_spans(jaeger, trace_id):
    """The spans of the trace by service, once Jaeger has the frontend's and the backend's (each is sent on its
    own, after its answer)."""
    def both():
        trace = trace_of(jaeger, trace_id)
        spans = spans_by_service(trace) if trace else {}
        return spans if {"frontend", "backend"} <= set(spans) else None
    return wait_for(f"trace {trace_id} with the frontend's and the backend's spans in Jaeger", both, 60)


def parent_of(span):
    return [(r["traceID"], r["spanID"]) for r in span.get("references", []) if r["refType"] == "CHILD_OF"]


def test_a_request_through_the_shop_is_one_trace_from_the_frontend_to_the_backend(jaeger, shop):
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    request = urllib.request.Request(f"{shop}/cgi-bin/api/products",  # noqa: S310 - the test's own pod
                                     headers={"traceparent": f"00-{trace_id}-{caller_span}-01"})
    with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310 - the test's own pod
        assert answer.status == 200
        assert "tea" in answer.read().decode()
        named = answer.headers["Traceparent"]
    assert named.startswith(f"00-{trace_id}-") and named.endswith("-01"), named
    frontend_span = named.split("-")[2]

    spans = frontend_and_backend_spans(jaeger, trace_id)
    assert spans["frontend"]["spanID"] == frontend_span
    assert spans["frontend"]["operationName"] == "GET /api/products"
    assert parent_of(spans["frontend"]) == [(trace_id, caller_span)]
    assert spans["backend"]["operationName"] == "GET /api/products"
    assert parent_of(spans["backend"]) == [(trace_id, frontend_span)]


def test_a_request_without_a_traceparent_starts_a_trace_found_by_the_id_it_returns(jaeger, shop):
    with urllib.request.urlopen(f"{shop}/cgi-bin/api/orders?status=new", timeout=15) as answer:  # noqa: S310
        assert answer.status == 200
        trace_id, frontend_span = answer.headers["Traceparent"].split("-")[1:3]

    spans = frontend_and_backend_spans(jaeger, trace_id)
    assert spans["frontend"]["spanID"] == frontend_span
    assert parent_of(spans["frontend"]) == []  # the trace's root
    assert parent_of(spans["backend"]) == [(trace_id, frontend_span)]
