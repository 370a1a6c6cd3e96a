"""Watches that keep the waiter's copies current: resumed from the last resourceVersion after a dropped
connection, listed again after a 410 Gone, and listing instead for a while when the server refuses to watch.

The API server is a throw-away local HTTP server that streams watch events as kube-apiserver does (chunked JSON
lines) from a script the test writes: each watch request takes the next scripted answer.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
from ansible_collections.slipway.platform.plugins.module_utils._kube.config import Connection
from ansible_collections.slipway.platform.plugins.module_utils._kube.discovery import Resource
from ansible_collections.slipway.platform.plugins.module_utils._kube.informer import Informer
from ansible_collections.slipway.platform.plugins.module_utils._kube.wait import READY, Target, WaitHub
from fake_kube import JsonAnswers

PODS = "/api/v1/namespaces/shop/pods"


def obj(name, version, **extra):
    return dict({"metadata": {"name": name, "resourceVersion": str(version)}}, **extra)


class Scripted(JsonAnswers):
    """Lists answer ``lists`` in turn (the last one repeats); the watches of a path play ``watches[path]`` in turn:
    a list of events to stream, then ``"drop"`` (cut the connection mid-stream), ``"end"`` (end the watch as its
    timeout does) or ``"hold"`` (stay open until the test ends); an int answers that HTTP status instead."""

    protocol_version = "HTTP/1.1"
    lists, watches, seen, release = [], {}, [], threading.Event()

    def do_GET(self):  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        type(self).seen.append((url.path, query))
        if query.get("watch") != "true":
            body = self.lists.pop(0) if len(self.lists) > 1 else self.lists[0]
            return self.reply(200, body)
        scripts = self.watches.get(url.path) or []
        script = scripts.pop(0) if scripts else "hold"
        if isinstance(script, int):
            return self.reply(script, {"kind": "Status", "code": script, "reason": "Gone" if script == 410 else "",
                                       "message": "too old resource version"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        steps = script if isinstance(script, list) else [script]
        for step in steps:
            if step == "drop":
                self.wfile.write(b"40\r\n{\"type\": \"MODIFIED\"")  # a chunk cut short: the connection breaks
                self.wfile.flush()
                self.close_connection = True
                return
            if step == "hold":
                type(self).release.wait(10)
                self.close_connection = True
                return
            if step == "end":
                break
            line = json.dumps(step).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def server():
    Scripted.lists, Scripted.watches, Scripted.seen = [], {}, []
    Scripted.release = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield Connection(server=f"http://127.0.0.1:{httpd.server_address[1]}", request_timeout=5)
    Scripted.release.set()
    httpd.shutdown()
    httpd.server_close()


def until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def watched_versions():
    return [q.get("resourceVersion") for _path, q in Scripted.seen if q.get("watch") == "true"]


def lists_made():
    return [path for path, q in Scripted.seen if q.get("watch") != "true"]


def test_a_dropped_watch_resumes_from_the_last_version_and_a_410_lists_again(server):
    Scripted.lists = [{"metadata": {"resourceVersion": "10"}, "items": [obj("a", 9)]},
                      {"metadata": {"resourceVersion": "20"}, "items": [obj("a", 9), obj("b", 11), obj("c", 19)]}]
    Scripted.watches[PODS] = [
        [{"type": "ADDED", "object": obj("b", 11)}, "drop"],  # the connection breaks after one event
        [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}}],
        [{"type": "BOOKMARK", "object": obj("", 25)}, {"type": "DELETED", "object": obj("a", 26)}, "hold"],
    ]
    client = KubeClient(server)
    informer = Informer(client, PODS, on_change=lambda: None, interval=0.05).start()
    try:
        until(lambda: sorted(informer.items()) == ["b", "c"])
        assert watched_versions()[:3] == ["10", "11", "20"]  # resumed at b's version; after the 410, the new list's
        assert len(lists_made()) == 2  # the first list and the one after the 410: the drop did not list again
        assert informer.resource_version == "26"
        assert informer.error is None and informer.fallbacks == 0
    finally:
        informer.stop()
        Scripted.release.set()
        informer.join(5)


def test_a_watch_the_server_ends_is_resumed_without_listing(server):
    Scripted.lists = [{"metadata": {"resourceVersion": "5"}, "items": []}]
    Scripted.watches[PODS] = [[{"type": "ADDED", "object": obj("a", 6)}, "end"],
                              [{"type": "MODIFIED", "object": obj("a", 7, status={"phase": "Running"})}, "hold"]]
    informer = Informer(KubeClient(server), PODS, on_change=lambda: None, interval=0.05).start()
    try:
        until(lambda: informer.items().get("a", {}).get("status") == {"phase": "Running"})
        assert watched_versions()[:2] == ["5", "6"]
        assert len(lists_made()) == 1
    finally:
        informer.stop()
        Scripted.release.set()
        informer.join(5)


def test_a_refused_watch_falls_back_to_listing_and_a_collection_that_cannot_be_listed_is_the_error(server):
    Scripted.lists = [{"metadata": {"resourceVersion": "5"}, "items": []},
                      {"metadata": {"resourceVersion": "8"}, "items": [obj("a", 7)]}]
    Scripted.watches[PODS] = [403]  # may list, may not watch
    informer = Informer(KubeClient(server), PODS, on_change=lambda: None, interval=0.05).start()
    try:
        until(lambda: "a" in informer.items())
        assert informer.fallbacks == 1 and informer.error is None
        listed = len(lists_made())
        until(lambda: len(lists_made()) > listed)  # it keeps listing, at its interval
    finally:
        informer.stop()
        informer.join(5)


def test_the_waiter_sees_a_deployment_become_ready_through_the_watch_with_one_list_per_collection(server):
    def deployment(version, available):
        return {"kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "generation": 1, "uid": "d1",
                                                   "resourceVersion": str(version)},
                "spec": {"replicas": 1},
                "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                           "availableReplicas": available}}
    Scripted.lists = [{"metadata": {"resourceVersion": "1"}, "items": [deployment(1, 0)]}]
    Scripted.watches["/apis/apps/v1/namespaces/shop/deployments"] = [
        [{"type": "MODIFIED", "object": deployment(2, 1)}, "hold"]]
    resource = Resource(group_version="apps/v1", kind="Deployment", name="deployments", namespaced=True)
    hub = WaitHub(KubeClient(server), interval=0.05)
    target = Target(key="web", label="Deployment shop/web", resource=resource, namespace="shop", name="web")
    try:
        # the watch's event may come before or after the first round: either way it ends ready
        assert hub.wait_all(hub.add([target]), timeout=20) is None
        assert target.state == READY, target.reason
        deployments = [p for p in lists_made() if p.endswith("/deployments")]
        assert deployments == ["/apis/apps/v1/namespaces/shop/deployments"]
        assert hub.stats()["watches"] >= 1
    finally:
        Scripted.release.set()
        hub.close()
