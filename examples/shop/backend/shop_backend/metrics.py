# SPDX-License-Identifier: GPL-3.0-or-later
"""Request metrics in Prometheus's text format, served on GET /metrics.

``http_requests_total{method, route, code}`` counts answers;
``http_request_duration_seconds{route}`` is a histogram of how long they took.
``route`` is the matched route, never the raw path, so that order ids and
unknown paths cannot grow the number of series.
"""

import bisect
import threading

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {}  # (method, route, code) -> count
        self.durations = {}  # route -> [count per bucket..., +Inf count, sum]

    def observe(self, method, route, code, seconds):
        with self.lock:
            key = (method, route, str(code))
            self.requests[key] = self.requests.get(key, 0) + 1
            found = self.durations.setdefault(route, [0] * (len(BUCKETS) + 1) + [0.0])
            found[bisect.bisect_left(BUCKETS, seconds)] += 1
            found[-1] += seconds

    def exposition(self):
        lines = ["# HELP http_requests_total Requests answered, by method, route and status code.",
                 "# TYPE http_requests_total counter"]
        with self.lock:
            for (method, route, code), count in sorted(self.requests.items()):
                labels = f'method="{method}",route="{route}",code="{code}"'
                lines.append(f"http_requests_total{{{labels}}} {count}")
            lines += ["# HELP http_request_duration_seconds Time to answer a request, by route.",
                      "# TYPE http_request_duration_seconds histogram"]
            for route, found in sorted(self.durations.items()):
                total = 0
                name = "http_request_duration_seconds"
                for bound, count in zip(BUCKETS + ("+Inf",), found[:-1], strict=True):
                    total += count
                    lines.append(f'{name}_bucket{{route="{route}",le="{bound}"}} {total}')
                lines.append(f'{name}_sum{{route="{route}"}} {found[-1]:.6f}')
                lines.append(f'{name}_count{{route="{route}"}} {total}')
        return "\n".join(lines) + "\n"
