# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health gates: checks a system declares under ``health:`` in its ``slipway.yml``, run after its rollout.

A gate is one mapping, or ``health`` is a list of them (all must pass, in order):

- an HTTP gate (``path`` and ``port``): one GET per attempt through the API server's service proxy,
  ``/api/v1/namespaces/<namespace>/services/[https:]<service>:<port>/proxy<path>``, so it needs no route to the
  pods, only ``get`` on ``services/proxy`` in the namespace; it passes on an expected status (any 2xx by default)
  and, when ``body_contains`` is set, that text in the body;
- a command gate (``command``, an argv list): run on the host that runs the delivery, without a shell, with
  ``SLIPWAY_CONTEXT``, ``SLIPWAY_SYSTEM``, ``SLIPWAY_NAMESPACE`` and ``SLIPWAY_IMAGES`` (JSON) added to its
  environment; it passes when it exits 0.

Parsing is pure; the probes take their I/O (the HTTP fetch, the process runner, the clock) as arguments, so all
of it is unit-tested without a cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._system import DNS_LABEL

HTTP_KEYS = ("path", "port", "service", "namespace", "scheme", "expect_status", "body_contains")
COMMAND_KEYS = ("command", "env")
COMMON_KEYS = ("attempts", "delay", "timeout")
# An HTTP gate retries: right after a rollout the Service's endpoints may still name pods that just went away.
# A command does its own waiting if it needs to, and may be a whole smoke test: one attempt, a longer timeout.
DEFAULTS = {"http": {"attempts": 5, "delay": 2.0, "timeout": 5.0},
            "command": {"attempts": 1, "delay": 2.0, "timeout": 60.0}}
MAX_ATTEMPTS = 100
RESERVED_ENV_PREFIX = "SLIPWAY_"
BODY_SHOWN = 300  # characters of a failing answer or command output shown in the error
BODY_READ = 64 * 1024
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")  # IANA service name, as Kubernetes
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REDACTED = "********"


@dataclass(frozen=True)
class Gate:
    """One validated gate; ``spec()`` is its normalized form (what the journal keeps for a rollback)."""

    kind: str  # "http" | "command"
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

    @property
    def label(self):
        if self.kind == "http":
            scheme = "https:" if self.scheme == "https" else ""
            return f"GET {self.namespace}/{scheme}{self.service}:{self.port}{self.path}"
        text = shlex.join(self.command)
        return f"command {text if len(text) <= 80 else text[:77] + '...'}"

    def proxy_path(self):
        scheme = "https:" if self.scheme == "https" else ""
        return f"/api/v1/namespaces/{self.namespace}/services/{scheme}{self.service}:{self.port}/proxy{self.path}"

    def spec(self):
        common = {"attempts": self.attempts, "delay": self.delay, "timeout": self.timeout}
        if self.kind == "command":
            return dict(common, command=list(self.command), env=dict(self.env))
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
    unknown = sorted(str(k) for k in item if k not in HTTP_KEYS + COMMAND_KEYS + COMMON_KEYS)
    if unknown:
        return None, [f"{where}: unknown key(s) {', '.join(unknown)}; an HTTP gate takes "
                      f"{', '.join(HTTP_KEYS + COMMON_KEYS)}, a command gate {', '.join(COMMAND_KEYS + COMMON_KEYS)}"]
    http_keys = sorted(k for k in item if k in HTTP_KEYS)
    if "command" in item and http_keys:
        return None, [f"{where}: a gate is either an HTTP gate (path, port) or a command gate (command), not both "
                      f"(found command and {', '.join(http_keys)}); declare a list of two gates instead"]
    if "command" not in item and not {"path", "port"} & set(item):
        return None, [f"{where}: declare path and port (an HTTP gate through the service proxy) or command "
                      "(an argv list run on the delivering host)"]
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


# ----------------------------------------------------------------------------- probes


@dataclass
class Attempt:
    passed: bool
    reason: str
    final: bool = False  # retrying cannot help (no permission, no such program)


def redact(text, masked):
    for value in sorted((v for v in masked or () if len(v) >= 4), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def _shown(text, tail=False):
    """At most BODY_SHOWN characters on one line: the start of an answer, the end of a command's output."""
    text = " ".join(text.split())
    if len(text) <= BODY_SHOWN:
        return text
    return "..." + text[-BODY_SHOWN:] if tail else text[:BODY_SHOWN] + "..."


def judge_answer(gate, status, body):
    """An HTTP gate's verdict on one answer (``status``, ``body`` bytes)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    api_status = _api_status(text)
    wanted = status in gate.expect_status if gate.expect_status else 200 <= status <= 299
    if wanted and (gate.body_contains is None or gate.body_contains in text):
        return Attempt(True, f"{status}")
    if wanted:
        return Attempt(False, f"{status}, but the body lacks {gate.body_contains!r}: {_shown(text)!r}")
    expected = ", ".join(map(str, gate.expect_status)) if gate.expect_status else "2xx"
    if api_status is not None:  # the API server answered, not the pod
        return _api_verdict(gate, status, api_status)
    return Attempt(False, f"{status} (expected {expected}): {_shown(text)!r}")


def _api_status(text):
    """The message of a ``Status`` object (the API server's own error), or ``None`` for an answer of the pod."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if isinstance(found, dict) and found.get("kind") == "Status" and found.get("apiVersion") == "v1":
        return found.get("message") or found.get("reason") or "error"
    return None


def _api_verdict(gate, status, message):
    """The API server refused or could not proxy: say why; retrying cannot fix a wrong spec or a missing right."""
    reason = f"{status} from the API server: {message}"
    if status == 403:
        return Attempt(False, f"{reason} (the identity needs 'get' on services/proxy in namespace {gate.namespace})",
                       final=True)
    if status == 404 and "not found" in message:
        return Attempt(False, f"{reason} (health.service names the Service; it defaults to the system's name)",
                       final=True)
    if status == 503 and "no service port" in message:
        return Attempt(False, f"{reason} (health.port is a port of the Service, by number or name, not the "
                              "container's port)", final=True)
    if status == 503:
        reason += " (no ready endpoint answered: are the Service's selector and targetPort right?)"
    return Attempt(False, reason)


def proxy_get(client, path, timeout):
    """``(status, first bytes of the body)`` of one GET through the API server (its TLS identity and token)."""
    status, body = client.raw_get(path, timeout)
    return status, body[:BODY_READ]


def run_command(argv, env, timeout):
    """``(exit code or None when it timed out, output)``; the whole process group goes on a timeout."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=env, start_new_session=True)
    try:
        output = process.communicate(timeout=timeout)[0]
        return process.returncode, output.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        # a shell's children keep the pipe open: kill the group, not just the shell
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            output = process.communicate(timeout=5)[0]
        except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipe: give up on output
            output = b""
        return None, output.decode("utf-8", "replace")


# ----------------------------------------------------------------------------- running


@dataclass
class GateResult:
    gate: Gate
    passed: bool
    attempts: int
    seconds: float
    reason: str
    tries: list = field(default_factory=list)

    def report(self):
        return {"gate": self.gate.label, "passed": self.passed, "attempts": self.attempts,
                "seconds": round(self.seconds, 2), "reason": self.reason}


class HealthCheck:
    """Runs a system's gates one after the other; the first that fails fails the system."""

    def __init__(self, client, context, masked=(), fetch=proxy_get, runner=run_command, clock=time.monotonic,
                 sleep=time.sleep, environ=None):
        self.client = client
        self.context = context
        self.masked = masked
        self.fetch, self.runner = fetch, runner
        self.clock, self.sleep = clock, sleep
        self.environ = os.environ if environ is None else environ

    def check(self, system, say=lambda line: None):
        """Every gate of ``system`` (an ``objects.System``); returns their reports, raises on the first failure."""
        reports = []
        for gate in system.health:
            result = self.run_gate(gate, system)
            reports.append(result.report())
            if not result.passed:
                raise SlipwayError(redact(f"system {system.name}: health gate {gate.label} failed after "
                                          f"{result.attempts} attempt(s) in {result.seconds:.1f}s: {result.reason}",
                                          self.masked),
                                   details=[f"attempt {n}: {why}" for n, why in enumerate(result.tries, 1)],
                                   health=reports)
            say(f"{system.name}: health gate {gate.label} passed ({result.reason}; attempt {result.attempts} of "
                f"{gate.attempts}, {result.seconds:.1f}s)")
        return reports

    def run_gate(self, gate, system):
        start = self.clock()
        tries = []
        for attempt in range(1, gate.attempts + 1):
            outcome = self.probe(gate, system)
            tries.append(redact(outcome.reason, self.masked))
            if outcome.passed or outcome.final or attempt == gate.attempts:
                return GateResult(gate, outcome.passed, attempt, self.clock() - start, tries[-1], tries)
            self.sleep(gate.delay)
        raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover

    def probe(self, gate, system):
        if gate.kind == "http":
            try:
                status, body = self.fetch(self.client, gate.proxy_path(), gate.timeout)
            except SlipwayError as exc:
                return Attempt(False, exc.msg)
            return judge_answer(gate, status, body)
        env = dict(self.environ, **dict(gate.env), SLIPWAY_CONTEXT=self.context, SLIPWAY_SYSTEM=system.name,
                   SLIPWAY_NAMESPACE=system.namespace, SLIPWAY_IMAGES=json.dumps(system.images, sort_keys=True))
        try:
            code, output = self.runner(list(gate.command), env, gate.timeout)
        except OSError as exc:
            return Attempt(False, f"cannot run {gate.command[0]}: {exc.strerror or exc}", final=True)
        tail = _shown(output, tail=True) or "no output"
        if code == 0:
            return Attempt(True, "exit 0")
        if code is None:
            return Attempt(False, f"no exit within {gate.timeout:g}s (killed); output: {tail}")
        return Attempt(False, f"exit {code}; output: {tail}")
