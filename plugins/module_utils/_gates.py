# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health gates as a system declares them under ``health:`` in its ``slipway.yml``: the spec and its checks.

A gate is one mapping, or ``health`` is a list of them (all must pass, in order): an HTTP gate (``path`` and
``port``: one GET through the API server's service proxy), a command gate (``command``: an argv list run on the
delivering host) or a metric gate (``query``: a PromQL query whose value, sampled ``samples`` times ``interval``
seconds apart from the context's Prometheus, must compare to ``threshold`` as ``comparison`` says). Parsing
is pure and part of the system description, so it sits below both the code that talks to the API
(``_kube/objects.py`` validates the rendered systems with it) and the code that runs the gates
(``_release/health.py``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ansible_collections.slipway.platform.plugins.module_utils._system import DNS_LABEL

HTTP_KEYS = ("path", "port", "service", "namespace", "scheme", "expect_status", "body_contains")
COMMAND_KEYS = ("command", "env")
METRIC_KEYS = ("query", "threshold", "comparison", "samples", "interval", "warmup", "no_data")
COMMON_KEYS = ("attempts", "delay", "timeout")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
NO_DATA = ("fail", "pass")
# ${namespace}, ${system} and ${track} in a query: the gate's namespace, its system (the stable system's name for
# a canary) and which pods to look at, "stable" after a rollout, "canary" during a canary step.
QUERY_PLACEHOLDERS = ("namespace", "system", "track")
# An HTTP gate retries: right after a rollout the Service's endpoints may still name pods that just went away.
# A command does its own waiting if it needs to, and may be a whole smoke test: one attempt, a longer timeout.
# A metric gate takes `samples` readings `interval` seconds apart (kept as attempts and delay); each must pass.
DEFAULTS = {"http": {"attempts": 5, "delay": 2.0, "timeout": 5.0},
            "command": {"attempts": 1, "delay": 2.0, "timeout": 60.0},
            "metric": {"attempts": 3, "delay": 10.0, "timeout": 5.0}}
MAX_ATTEMPTS = 100
RESERVED_ENV_PREFIX = "SLIPWAY_"
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")  # IANA service name, as Kubernetes
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Gate:
    """One validated gate; ``spec()`` is its normalized form (what the journal keeps for a rollback)."""

    kind: str  # "http" | "command" | "metric"
    attempts: int
    delay: float
    timeout: float
    path: str | None = None
    port: int | str | None = None
    service: str | None = None
    namespace: str | None = None
    scheme: str = "http"
    expect_status: tuple = ()  # empty: any 2xx
    body_contains: str | None = None
    command: tuple = ()
    env: tuple = ()  # ((name, value), ...), so the gate stays hashable
    query: str | None = None
    threshold: float = 0.0
    comparison: str = "<="
    no_data: str = "fail"
    warmup: float = 0.0  # at most this long, a metric gate asks again while the query has no data yet

    @property
    def label(self):
        if self.kind == "http":
            scheme = "https:" if self.scheme == "https" else ""
            return f"GET {self.namespace}/{scheme}{self.service}:{self.port}{self.path}"
        if self.kind == "metric":
            query = " ".join(self.query.split())
            return f"metric {query if len(query) <= 80 else query[:77] + '...'} {self.comparison} {self.threshold:g}"
        text = shlex.join(self.command)
        return f"command {text if len(text) <= 80 else text[:77] + '...'}"

    def spec(self):
        common = {"attempts": self.attempts, "delay": self.delay, "timeout": self.timeout}
        if self.kind == "command":
            return dict(common, command=list(self.command), env=dict(self.env))
        if self.kind == "metric":
            return {"query": self.query, "threshold": self.threshold, "comparison": self.comparison,
                    "samples": self.attempts, "interval": self.delay, "warmup": self.warmup,
                    "timeout": self.timeout, "no_data": self.no_data}
        found = dict(common, path=self.path, port=self.port, service=self.service, namespace=self.namespace,
                     scheme=self.scheme, expect_status=list(self.expect_status))
        if self.body_contains is not None:
            found["body_contains"] = self.body_contains
        return found


# ----------------------------------------------------------------------------- parsing


def parse_health(declared, system, namespace):
    """``(gates, problems)`` for a system's ``health`` (``None``, one mapping, or a list of mappings)."""
    if declared is None:
        return [], []
    if not isinstance(declared, (dict, list)):
        return [], [f"system {system}: health must be a mapping (one gate) or a list of them, "
                    f"got {type(declared).__name__}"]
    items = declared if isinstance(declared, list) else [declared]
    gates, problems = [], []
    for index, item in enumerate(items):
        where = f"system {system}: health" + (f"[{index}]" if isinstance(declared, list) else "")
        gate, found = _parse_gate(item, where, system, namespace)
        problems.extend(found)
        if gate is not None and not found:
            gates.append(gate)
    return gates, problems


def _parse_gate(item, where, system, namespace):
    if not isinstance(item, dict):
        return None, [f"{where}: a gate must be a mapping, got {type(item).__name__}"]
    if "query" in item:
        return _parse_metric_gate(item, where)
    unknown = sorted(str(k) for k in item if k not in HTTP_KEYS + COMMAND_KEYS + COMMON_KEYS)
    if unknown:
        return None, [f"{where}: unknown key(s) {', '.join(unknown)}; an HTTP gate takes "
                      f"{', '.join(HTTP_KEYS + COMMON_KEYS)}, a command gate {', '.join(COMMAND_KEYS + COMMON_KEYS)}, "
                      f"a metric gate {', '.join(METRIC_KEYS + ('timeout',))}"]
    http_keys = sorted(k for k in item if k in HTTP_KEYS)
    if "command" in item and http_keys:
        return None, [f"{where}: a gate is either an HTTP gate (path, port) or a command gate (command), not both "
                      f"(found command and {', '.join(http_keys)}); declare a list of two gates instead"]
    if "command" not in item and not {"path", "port"} & set(item):
        return None, [f"{where}: declare path and port (an HTTP gate through the service proxy), command "
                      "(an argv list run on the delivering host) or query (a metric gate: PromQL and a threshold)"]
    kind = "command" if "command" in item else "http"
    problems = []
    common = {key: _number(item, key, DEFAULTS[kind][key], where, problems) for key in COMMON_KEYS}
    if kind == "command":
        fields = _command_fields(item, where, problems)
    else:
        fields = _http_fields(item, where, system, namespace, problems)
    if problems:
        return None, problems
    return Gate(kind=kind, attempts=int(common["attempts"]), delay=float(common["delay"]),
                timeout=float(common["timeout"]), **fields), []


def _number(item, key, default, where, problems):
    value = item.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{where}: {key} must be a number, got {value!r}")
        return default
    if key == "attempts" and (value != int(value) or not 1 <= value <= MAX_ATTEMPTS):
        problems.append(f"{where}: attempts must be a whole number from 1 to {MAX_ATTEMPTS}, got {value!r}")
    elif key == "delay" and value < 0:
        problems.append(f"{where}: delay must be zero or more seconds, got {value!r}")
    elif key == "timeout" and value <= 0:
        problems.append(f"{where}: timeout must be a positive number of seconds, got {value!r}")
    return value


def _parse_metric_gate(item, where):
    """A metric gate: ``samples`` and ``interval`` say how it samples, so ``attempts`` and ``delay`` do not apply."""
    unknown = sorted(str(k) for k in item if k not in METRIC_KEYS + ("timeout",))
    if unknown:
        return None, [f"{where}: unknown key(s) {', '.join(unknown)} for a metric gate; it takes "
                      f"{', '.join(METRIC_KEYS + ('timeout',))}"]
    problems = []
    query = item.get("query")
    if not isinstance(query, str) or not query.strip():
        problems.append(f"{where}: query must be a PromQL expression that gives one number, got {query!r}")
    threshold = item.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        problems.append(f"{where}: threshold must be a number (the query's value is compared with it), "
                        f"got {threshold!r}")
    comparison = item.get("comparison", "<=")
    if comparison not in COMPARISONS:
        problems.append(f"{where}: comparison must be one of {' '.join(COMPARISONS)} (value <comparison> "
                        f"threshold must hold), got {comparison!r}")
    no_data = item.get("no_data", "fail")
    if no_data not in NO_DATA:
        problems.append(f"{where}: no_data must be fail or pass (what an empty answer means), got {no_data!r}")
    samples = item.get("samples", DEFAULTS["metric"]["attempts"])
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_ATTEMPTS:
        problems.append(f"{where}: samples must be a whole number from 1 to {MAX_ATTEMPTS}, got {samples!r}")
    interval = item.get("interval", DEFAULTS["metric"]["delay"])
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval < 0:
        problems.append(f"{where}: interval must be zero or more seconds between samples, got {interval!r}")
    warmup = item.get("warmup", 0)
    if isinstance(warmup, bool) or not isinstance(warmup, (int, float)) or warmup < 0:
        problems.append(f"{where}: warmup must be zero or more seconds to wait for the query's first data, "
                        f"got {warmup!r}")
    timeout = _number(item, "timeout", DEFAULTS["metric"]["timeout"], where, problems)
    if problems:
        return None, problems
    return Gate(kind="metric", attempts=samples, delay=float(interval), timeout=float(timeout), query=query.strip(),
                threshold=float(threshold), comparison=comparison, no_data=no_data, warmup=float(warmup)), []


def _http_fields(item, where, system, namespace, problems):
    path = item.get("path")
    if not isinstance(path, str) or not path.startswith("/") or re.search(r"[\s\x00-\x1f\x7f]", path) \
            or "/../" in path + "/":
        problems.append(f"{where}: path must be an absolute URL path such as /healthz (no spaces, no '..'), "
                        f"got {path!r}")
    port = item.get("port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not (isinstance(port, int) and 1 <= port <= 65535
                                      or isinstance(port, str) and _PORT_NAME.match(port)):
        problems.append(f"{where}: port must be the Service's port number (1-65535) or port name, got {port!r}")
    service = item.get("service") or system
    if not isinstance(service, str) or not DNS_LABEL.match(service):
        problems.append(f"{where}: service must be a Service name (DNS-1123 label), got {service!r}")
    gate_namespace = item.get("namespace") or namespace
    if not isinstance(gate_namespace, str) or not DNS_LABEL.match(gate_namespace):
        problems.append(f"{where}: namespace must be a DNS-1123 label, got {gate_namespace!r}")
    scheme = item.get("scheme") or "http"
    if scheme not in ("http", "https"):
        problems.append(f"{where}: scheme must be http or https, got {scheme!r}")
    expected = item.get("expect_status")
    expected = [] if expected is None else expected if isinstance(expected, list) else [expected]
    if not all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in expected):
        problems.append(f"{where}: expect_status must be an HTTP status or a list of them (100-599), "
                        f"got {item.get('expect_status')!r}")
    contains = item.get("body_contains")
    if contains is not None and (not isinstance(contains, str) or not contains):
        problems.append(f"{where}: body_contains must be a non-empty string, got {contains!r}")
    return {"path": path, "port": port, "service": service, "namespace": gate_namespace, "scheme": scheme,
            "expect_status": tuple(expected), "body_contains": contains}


def _command_fields(item, where, problems):
    command = item.get("command")
    if isinstance(command, str) or not isinstance(command, list) or not command \
            or not all(isinstance(part, str) and part for part in command):
        problems.append(f"{where}: command must be a non-empty list of strings (argv, no shell), for example "
                        "[\"sh\", \"-c\", \"curl -fsS https://shop.example/healthz\"]")
    env = item.get("env") or {}
    if not isinstance(env, dict):
        problems.append(f"{where}: env must be a mapping of variable names to strings")
        env = {}
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            problems.append(f"{where}: env name {name!r} is not a valid variable name")
        elif name.startswith(RESERVED_ENV_PREFIX):
            problems.append(f"{where}: env {name} is reserved (Slipway sets SLIPWAY_* itself)")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            problems.append(f"{where}: env {name} must be a string (quote it), got {value!r}")
    return {"command": tuple(command) if isinstance(command, list) else (),
            "env": tuple(sorted((str(k), str(v)) for k, v in env.items()))}
