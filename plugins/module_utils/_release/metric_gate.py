# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metric gates: a PromQL query asked of the context's Prometheus ``samples`` times, ``interval`` seconds apart.

The query is asked until it gives data, every ``interval`` seconds for at most ``warmup`` seconds (new pods need
a scrape or two before a rate exists); from that answer on, each of the ``samples`` must give one number that
compares to the gate's ``threshold`` as its ``comparison`` says; the first that does not fails the gate (a
canary is aborted as soon as it is seen to misbehave). An empty answer fails, or passes with ``no_data: pass``
(an error counter that has not appeared yet). Every sample is kept with its value, so the journal shows what
the decision rested on.

``${namespace}``, ``${system}`` and ``${track}`` in the query are filled in before it is asked: after a rollout
the track is ``stable``; during a canary step it is ``canary`` (the catalogue's Prometheus labels every scraped
pod with ``track``, see ``catalogue/prometheus/config/prometheus.yml``).

The HTTP request is :func:`prometheus_query`, passed in by the caller, so the sampling is unit-tested without a
Prometheus; the integration tests run it against the catalogue's real one.
"""

from __future__ import annotations

import json
import math
import operator
import string
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
           "!=": operator.ne}
ANSWER_SHOWN = 200


@dataclass
class Sampling:
    passed: bool
    reason: str
    query: str
    samples: list = field(default_factory=list)  # [{"sample": n, "value": float | None, "passed": bool}]


def render_query(query, namespace, system, track):
    """The query with ``${namespace}``, ``${system}``, ``${track}`` filled in; other ``$`` text is left alone."""
    return string.Template(query).safe_substitute(namespace=namespace, system=system, track=track)


def prometheus_query(url, query, timeout):
    """The value of one instant query (``None`` for an empty answer); SlipwayError says why there is none."""
    if not url:
        raise SlipwayError("a metric gate needs the context's Prometheus: set slipway_prometheus_url (the deliver, "
                           "rollback and canary modules' prometheus_url), for example http://prometheus:9090")
    import urllib3  # noqa: PLC0415 - the Kube client's HTTP library; imported here so the spec loads without it

    try:
        answer = urllib3.request("GET", f"{url.rstrip('/')}/api/v1/query", fields={"query": query},
                                 timeout=urllib3.Timeout(total=timeout), retries=False, preload_content=True)
    except urllib3.exceptions.HTTPError as exc:
        raise SlipwayError(f"Prometheus at {url} did not answer: {exc} (is slipway_prometheus_url right, and "
                           "is Prometheus running?)") from None
    if answer.status != 200:  # Prometheus says why a query is bad in the body
        text = answer.data[:ANSWER_SHOWN * 4].decode("utf-8", "replace")
        raise SlipwayError(f"Prometheus at {url} answered {answer.status}: {_error_of(text)}")
    return value_of(answer.data, url)


def _error_of(text):
    try:
        found = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:ANSWER_SHOWN]
    return f"{found.get('errorType', 'error')}: {found.get('error', '')}" if isinstance(found, dict) else text


def value_of(body, url="Prometheus"):
    """The one number in a ``/api/v1/query`` answer: a scalar, or a vector of exactly one sample."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise SlipwayError(f"{url} did not answer with JSON: {body[:ANSWER_SHOWN]!r}") from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = _error_of(json.dumps(answer)) if isinstance(answer, dict) else repr(answer)
        raise SlipwayError(f"the query failed: {error}")
    data = answer.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return float(result[1])
    if kind != "vector":
        raise SlipwayError(f"the query gives a {kind}; a metric gate needs one number (an instant vector of one "
                           "series or a scalar)")
    if not result:
        return None
    if len(result) > 1:
        series = ", ".join(json.dumps(r.get("metric") or {}, sort_keys=True) for r in result[:3])
        raise SlipwayError(f"the query gives {len(result)} series ({series}...); aggregate it to one number "
                           "(sum, max, ...)")
    return float(result[0]["value"][1])


def judge(gate, value):
    """``(passed, reason)`` of one sample's value."""
    if value is None:
        return gate.no_data == "pass", "no data" + (" (passes: no_data is pass)" if gate.no_data == "pass" else "")
    shown = f"{value:g}"
    if math.isnan(value):
        return gate.comparison == "!=", "value NaN (no comparison holds for it but !=)"
    passed = COMPARE[gate.comparison](value, gate.threshold)
    relation = gate.comparison if passed else f"not {gate.comparison}"
    return passed, f"value {shown} {relation} {gate.threshold:g}"


def sample(gate, url, placeholders, query=prometheus_query, sleep=None):
    """Ask ``gate``'s query ``gate.attempts`` times, ``gate.delay`` seconds apart; stop at the first failure.

    ``placeholders``: ``{namespace, system, track}`` for the query.
    """
    asked = render_query(gate.query, **placeholders)
    taken = []
    reason = ""
    waited = 0.0
    for number in range(1, gate.attempts + 1):
        try:
            value = query(url, asked, gate.timeout)
            while number == 1 and value is None and waited < gate.warmup and sleep is not None:
                pause = min(gate.delay or 1.0, gate.warmup - waited)  # new pods: no series until a scrape or two
                sleep(pause)
                waited += pause
                value = query(url, asked, gate.timeout)
        except SlipwayError as exc:
            taken.append({"sample": number, "value": None, "passed": False, "error": exc.msg})
            return Sampling(False, f"sample {number}: {exc.msg}", asked, taken)
        passed, reason = judge(gate, value)
        if value is None and number == 1 and gate.warmup:
            reason += f" within the warmup of {gate.warmup:g}s"
        taken.append({"sample": number, "value": value, "passed": passed})
        if not passed:
            return Sampling(False, f"sample {number} of {gate.attempts}: {reason}", asked, taken)
        if number < gate.attempts and sleep is not None:
            sleep(gate.delay)
    return Sampling(True, f"{gate.attempts} sample(s), last {reason}", asked, taken)
