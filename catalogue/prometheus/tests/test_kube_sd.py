# SPDX-License-Identifier: GPL-3.0-or-later
"""kube_sd: API lists become the file_sd targets and meta labels prometheus.yml relabels."""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "kube_sd"))
import kube_sd  # noqa: E402


class FakeApi:
    def __init__(self, answers):
        self.answers = answers

    def get(self, path):
        return self.answers.get(path)

    def items(self, path, slim=None):
        found = self.answers[path.split("?")[0]]
        return [slim(i) for i in found] if slim else found


NODE = {"metadata": {"name": "real-0", "labels": {"slipway.io/node-kind": "real"}},
        "status": {"addresses": [{"type": "Hostname", "address": "real-0"}, {"type": "InternalIP",
                                                                              "address": "10.77.0.1"}]}}
POD = {"metadata": {"name": "web-1", "namespace": "shop", "labels": {"slipway.io/track": "canary"},
                    "annotations": {"slipway.io/metrics-port": "8080"}},
       "spec": {"nodeName": "real-0"}, "status": {"podIP": "10.77.0.9", "phase": "Running"}}
SLICE = {"ports": [{"name": "http", "port": 9093}],
         "endpoints": [{"addresses": ["10.77.0.7"], "conditions": {"ready": True}},
                       {"addresses": ["10.77.0.8"], "conditions": {"ready": False}}]}


class KubeSdTest(unittest.TestCase):
    def test_a_node_is_its_kubelet_with_its_labels(self):
        (target,) = kube_sd.node_targets([NODE, {"metadata": {"name": "no-address"}}])
        self.assertEqual(target["targets"], ["10.77.0.1:10250"])
        self.assertEqual(target["labels"]["__meta_kubernetes_node_label_slipway_io_node_kind"], "real")

    def test_a_pod_carries_its_labels_and_annotations_and_one_without_ip_or_metrics_is_left_out(self):
        unscraped = {"metadata": {"name": "plain", "namespace": "shop"}, "status": {"podIP": "10.77.0.3"}}
        (target,) = kube_sd.pod_targets([POD, {"metadata": {"name": "pending"}, "status": {}}, unscraped])
        labels = target["labels"]
        self.assertEqual(target["targets"], ["10.77.0.9"])
        self.assertEqual(labels["__meta_kubernetes_pod_annotation_slipway_io_metrics_port"], "8080")
        self.assertEqual(labels["__meta_kubernetes_pod_label_slipway_io_track"], "canary")
        self.assertEqual((labels["__meta_kubernetes_namespace"], labels["__meta_kubernetes_pod_phase"]),
                         ("shop", "Running"))

    def test_a_service_gives_its_ready_endpoints_only(self):
        targets = kube_sd.service_targets("monitoring", "alertmanager", [SLICE])
        self.assertEqual([t["targets"] for t in targets], [["10.77.0.7:9093"]])
        self.assertEqual(targets[0]["labels"]["__meta_kubernetes_endpoint_port_name"], "http")

    def test_a_service_without_slices_is_read_from_its_endpoints(self):
        endpoints = {"subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": 6443}]}]}
        api = FakeApi({"/api/v1/nodes": [], "/api/v1/pods": [],
                       "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices": [],
                       "/api/v1/namespaces/default/endpoints/kubernetes": endpoints})
        with tempfile.TemporaryDirectory() as out:
            kube_sd.discover_once(api, out, [("default", "kubernetes")])
            with open(os.path.join(out, "service-default-kubernetes.json"), encoding="utf-8") as handle:
                (target,) = json.load(handle)
        self.assertEqual(target["targets"], ["127.0.0.1:6443"])
        self.assertEqual(target["labels"]["__meta_kubernetes_endpoint_port_name"], "https")

    def test_the_api_server_kube_sd_talks_to_stands_in_for_a_kubernetes_service_without_endpoints(self):
        api = FakeApi({"/api/v1/nodes": [], "/api/v1/pods": [],
                       "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices": []})
        with tempfile.TemporaryDirectory() as out:
            kube_sd.discover_once(api, out, [("default", "kubernetes")], api_address="127.0.0.1:6443")
            with open(os.path.join(out, "service-default-kubernetes.json"), encoding="utf-8") as handle:
                self.assertEqual(json.load(handle)[0]["targets"], ["127.0.0.1:6443"])

    def test_restarts_and_waiting_reasons_are_exported(self):
        pod = dict(POD, status={"podIP": "10.77.0.9", "containerStatuses": [
            {"name": "web", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            {"name": "side", "restartCount": 0, "state": {"running": {}}}]})
        text = kube_sd.pod_status_metrics([pod])
        self.assertIn('kube_pod_container_status_restarts_total{namespace="shop",pod="web-1",container="web"} 3', text)
        self.assertIn('kube_pod_container_status_restarts_total{namespace="shop",pod="web-1",container="side"} 0',
                      text)
        self.assertIn('kube_pod_container_status_waiting_reason{namespace="shop",pod="web-1",container="web",'
                      'reason="CrashLoopBackOff"} 1', text)
        self.assertNotIn('container="side",reason', text)

    def test_a_slim_pod_keeps_what_the_targets_and_the_metrics_need(self):
        pod = dict(POD, status={"podIP": "10.77.0.9", "phase": "Running", "conditions": [{"type": "Ready"}],
                                "containerStatuses": [{"name": "web", "restartCount": 2, "image": "x",
                                                       "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]})
        slim = kube_sd.slim_pod(pod)
        self.assertEqual(kube_sd.pod_targets([slim]), kube_sd.pod_targets([pod]))
        self.assertEqual(kube_sd.pod_status_metrics([slim]), kube_sd.pod_status_metrics([pod]))
        self.assertNotIn("conditions", slim["status"])

    def test_a_list_is_read_a_page_at_a_time(self):
        pages = {"/api/v1/pods?limit=250": {"items": [POD], "metadata": {"continue": "next/1"}},
                 "/api/v1/pods?limit=250&continue=next/1": {"items": [POD], "metadata": {}}}
        api = kube_sd.Api.__new__(kube_sd.Api)
        api.get = pages.get
        self.assertEqual(len(api.items("/api/v1/pods", slim=kube_sd.slim_pod)), 2)

    def test_files_are_written_once_per_change(self):
        api = FakeApi({"/api/v1/nodes": [NODE], "/api/v1/pods": [POD],
                       "/apis/discovery.k8s.io/v1/namespaces/monitoring/endpointslices": [SLICE]})
        with tempfile.TemporaryDirectory() as out:
            self.assertTrue(kube_sd.discover_once(api, out, [("monitoring", "alertmanager")]))
            self.assertFalse(kube_sd.discover_once(api, out, [("monitoring", "alertmanager")]))
            with open(os.path.join(out, "service-monitoring-alertmanager.json"), encoding="utf-8") as handle:
                self.assertEqual(json.load(handle)[0]["targets"], ["10.77.0.7:9093"])
            self.assertEqual(sorted(os.listdir(out)), ["nodes.json", "pods.json",
                                                       "service-monitoring-alertmanager.json"])


if __name__ == "__main__":
    unittest.main()
