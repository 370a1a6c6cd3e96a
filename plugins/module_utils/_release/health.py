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
  environment; it passes when it exits 0;
- a metric gate (``query``): a PromQL query sampled from the context's Prometheus (``metric_gate.py``); every
  sample must compare to the threshold, and the samples are reported (and so recorded in the journal).

Parsing belongs to the system description (``_gates.py``); the probes take their I/O (the HTTP fetch, the process
runner, the clock) as arguments, so all of it is unit-tested without a cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._gates import Gate
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import service_proxy_path
from ansible_collections.slipway.platform.plugins.module_utils._release import metric_gate

BODY_SHOWN = 300  # characters of a failing answer or command output shown in the error
BODY_READ = 64 * 1024
REDACTED = "********"


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


def proxy_path(gate):
    """The service proxy path an HTTP gate's GET goes to."""
    return service_proxy_path(gate.namespace, gate.service, gate.port, gate.path, https=gate.scheme == "https")


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
    samples: list | None = None  # a metric gate's readings
    query: str | None = None  # a metric gate's query as asked (placeholders filled in)

    def report(self):
        found = {"gate": self.gate.label, "passed": self.passed, "attempts": self.attempts,
                 "seconds": round(self.seconds, 2), "reason": self.reason}
        if self.samples is not None:
            found.update(query=self.query, samples=self.samples)
        return found


class HealthCheck:
    """Runs a system's gates one after the other; the first that fails fails the system."""

    def __init__(self, client, context, masked=(), fetch=proxy_get, runner=run_command, clock=time.monotonic,
                 sleep=time.sleep, environ=None, prometheus_url=None, query=metric_gate.prometheus_query):
        self.client = client
        self.context = context
        self.masked = masked
        self.fetch, self.runner = fetch, runner
        self.prometheus_url, self.query = prometheus_url, query
        self.clock, self.sleep = clock, sleep
        self.environ = os.environ if environ is None else environ

    def check(self, system, say=lambda line: None, track="stable", gates=None, subject=None):
        """Every gate of ``system`` (an ``objects.System``); returns their reports, raises on the first failure.

        ``track`` and ``subject`` (the system a metric query speaks of, ``system``'s name by default) fill in a
        metric gate's placeholders; ``gates`` replaces ``system.health`` (a canary step checks only its metric gates).
        """
        reports = []
        for gate in system.health if gates is None else gates:
            if gate.kind == "metric":
                result = self.run_metric_gate(gate, {"namespace": system.namespace, "system": subject or system.name,
                                                     "track": track})
            else:
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

    def run_metric_gate(self, gate, placeholders):
        start = self.clock()
        found = metric_gate.sample(gate, self.prometheus_url, placeholders, query=self.query, sleep=self.sleep)
        tries = [redact(f"{s['value']!r}: {'passed' if s['passed'] else 'failed'}" + (f" ({s['error']})"
                                                                                      if "error" in s else ""),
                        self.masked) for s in found.samples]
        return GateResult(gate, found.passed, len(found.samples), self.clock() - start, found.reason, tries,
                          samples=found.samples, query=found.query)

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
                status, body = self.fetch(self.client, proxy_path(gate), gate.timeout)
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
