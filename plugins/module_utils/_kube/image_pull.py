# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image pull failures, decided on evidence: the ones that heal are waited on, the ones that cannot fail at once.

The kubelet retries a failed pull with a back-off; whether waiting is worth it depends on why the pull failed.
The evidence is the container's waiting message (the kubelet relays the registry's or the runtime's answer) and
whether the pod carries an image pull secret:

- **can heal** — the registry restarting or overloaded (5xx, 429, connection refused or reset, timeouts), and
  401/403 while the pod has a pull secret (the Node authorizer had not yet linked the new pod to its secret, or the
  secret is created moments later; the kubelet sends the credentials on its next try). These stay pending until the
  rollout's progress deadline or the delivery's ``wait_timeout``, with the reason in the progress line.
- **cannot heal** — no such image or tag, an invalid reference, no variant for the node's platform, and 401/403
  from a pod with no pull secret at all: they fail the delivery at once, with what to fix.

An ``ErrImagePull`` that matches neither is left pending (the kubelet's next try says more); an
``ImagePullBackOff`` that matches neither fails, as every back-off did before this rule.
"""

from __future__ import annotations

import re

PULL_REASONS = frozenset(("ErrImagePull", "ImagePullBackOff"))
HEALS, FINAL, UNKNOWN = "heals", "final", "unknown"

# (pattern, what it means) — the first match decides; the platform first: its message also says 'not found'.
_FINAL = (
    (re.compile(r"no match for platform|no matching manifest|exec format error", re.I),
     "the image has no variant for the node's platform: build it for the node's architecture"),
    (re.compile(r"\bnot found\b|manifest unknown|name unknown|no such image", re.I),
     "the registry has no such image or tag: build and push it, or fix the reference"),
    (re.compile(r"invalid reference|repository name must|invalid image name", re.I),
     "the image reference is invalid: fix it in the manifest"),
)
_HEALS = (
    (re.compile(r"\b(500|502|503|504)\b|internal server error|service unavailable|bad gateway", re.I),
     "the registry answered with a server error"),
    (re.compile(r"\b429\b|too many requests", re.I), "the registry asked to slow down"),
    (re.compile(r"connection refused|connection reset|broken pipe|\bEOF\b|no route to host", re.I),
     "the registry could not be reached"),
    (re.compile(r"timeout|timed out|deadline exceeded", re.I), "the pull timed out"),
)
_AUTH = re.compile(r"\b401\b|\b403\b|unauthorized|forbidden|authentication required|denied", re.I)


def classify(reason, message, pull_secrets):
    """``(verdict, explanation)`` for a container waiting with ``reason`` and ``message``.

    ``pull_secrets`` is the pod's ``spec.imagePullSecrets`` (what the service account's admission put there
    included). Not a pull failure at all: ``(None, "")``.
    """
    if reason not in PULL_REASONS:
        return None, ""
    message = message or ""
    for pattern, meaning in _FINAL:
        if pattern.search(message):
            return FINAL, meaning
    if _AUTH.search(message):
        names = ", ".join(s.get("name", "?") for s in pull_secrets or [])
        if not names:
            return FINAL, ("the registry refused the pull and the pod has no image pull secret: add one to the "
                           "pod template or to its service account's imagePullSecrets")
        return HEALS, (f"the registry refused the pull although the pod has the pull secret {names}: the kubelet "
                       "may not have read it yet, and sends it on its next try")
    for pattern, meaning in _HEALS:
        if pattern.search(message):
            return HEALS, meaning
    return UNKNOWN, ""
