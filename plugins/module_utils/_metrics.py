# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``metrics:`` a system declares in its ``slipway.yml``: where its pods serve Prometheus metrics.

```yaml
metrics:
  port: 8080          # the container port (number) the pods serve metrics on
  path: /metrics      # default /metrics
```

The delivery writes the declaration onto the pod template of each of the system's workloads as annotations
(``slipway.io/metrics-port``, ``slipway.io/metrics-path``, ``slipway.io/system``), which the catalogue's
Prometheus discovers through the Kube API (``catalogue/prometheus/config/prometheus.yml``). Annotations on the pod
template, not the Service, so that a canary's pods — copies of the stable pod template — are scraped too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PORT_ANNOTATION = "slipway.io/metrics-port"
PATH_ANNOTATION = "slipway.io/metrics-path"
SYSTEM_ANNOTATION = "slipway.io/system"
KEYS = ("port", "path")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


@dataclass(frozen=True)
class Metrics:
    port: int
    path: str = "/metrics"

    def annotations(self, system):
        return {PORT_ANNOTATION: str(self.port), PATH_ANNOTATION: self.path, SYSTEM_ANNOTATION: system}


def parse_metrics(declared, system):
    """``(Metrics or None, problems)`` for a system's ``metrics`` (``None`` when it declares none)."""
    if declared is None:
        return None, []
    where = f"system {system}: metrics"
    if not isinstance(declared, dict):
        return None, [f"{where} must be a mapping with port (and path), got {type(declared).__name__}"]
    unknown = sorted(str(k) for k in declared if k not in KEYS)
    if unknown:
        return None, [f"{where}: unknown key(s) {', '.join(unknown)}; it takes {', '.join(KEYS)}"]
    problems = []
    port = declared.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(f"{where}: port must be the container port number (1-65535) the pods serve metrics on, "
                        f"got {port!r}")
    path = declared.get("path", "/metrics")
    if not isinstance(path, str) or not _PATH.match(path) or "/../" in path + "/":
        problems.append(f"{where}: path must be an absolute URL path such as /metrics, got {path!r}")
    if problems:
        return None, problems
    return Metrics(port=port, path=path), []


def annotate_workload(body, metrics, system):
    """Add the metrics annotations to a workload body's pod template (in place); False for other kinds."""
    if metrics is None or body.get("kind") not in WORKLOAD_KINDS:
        return False
    template = (body.get("spec") or {}).get("template")
    if not isinstance(template, dict):
        return False
    metadata = template.setdefault("metadata", {})
    metadata["annotations"] = dict(metadata.get("annotations") or {}, **metrics.annotations(system))
    return True
