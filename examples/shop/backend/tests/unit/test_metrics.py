# SPDX-License-Identifier: GPL-3.0-or-later
"""Request metrics: counters per route and code, a cumulative histogram, the text format."""

import unittest

from shop_backend.metrics import Metrics


class MetricsTest(unittest.TestCase):
    def test_answers_are_counted_per_method_route_and_code(self):
        metrics = Metrics()
        metrics.observe("GET", "/api/products", 200, 0.003)
        metrics.observe("GET", "/api/products", 200, 0.2)
        metrics.observe("POST", "/api/orders", 400, 0.001)
        text = metrics.exposition()
        self.assertIn('http_requests_total{method="GET",route="/api/products",code="200"} 2', text)
        self.assertIn('http_requests_total{method="POST",route="/api/orders",code="400"} 1', text)

    def test_the_histogram_is_cumulative_and_ends_with_inf(self):
        metrics = Metrics()
        metrics.observe("GET", "/healthz", 200, 0.003)
        metrics.observe("GET", "/healthz", 200, 0.2)
        text = metrics.exposition()
        self.assertIn('http_request_duration_seconds_bucket{route="/healthz",le="0.005"} 1', text)
        self.assertIn('http_request_duration_seconds_bucket{route="/healthz",le="0.25"} 2', text)
        self.assertIn('http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} 2', text)
        self.assertIn('http_request_duration_seconds_count{route="/healthz"} 2', text)
        self.assertTrue(text.endswith("\n"))


if __name__ == "__main__":
    unittest.main()
