# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of every release run: deliver, rollback, canary (spec: ``_release/run_args.py``)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  context:
    description: The delivery context (inventory) name, for example C(local) or C(production).
    type: str
    required: true
  wait_timeout:
    description: Seconds a system may take to become ready. Failures the API shows end the wait long before.
    type: float
    default: 300
  concurrency:
    description: How many API requests run at once.
    type: int
    default: 8
  lock_timeout:
    description: Seconds to wait for another run on the same context (delivery, rollback, canary) to release its lock.
    type: float
    default: 120
  lock_duration:
    description: Seconds the lock outlives its last renewal (it is renewed every third of that while running).
    type: int
    default: 30
  holder:
    description:
      - Who holds the lock, shown to anyone waiting; defaults to C(user@host pid N) plus a CI job id.
      - The holder of a job that holds the context with M(slipway.platform.context_lock) runs inside that hold and
        hands the lock back to the job when it ends.
    type: str
  confirmed:
    description: Must be true to change the C(production) context.
    type: bool
    default: false
  journal_namespace:
    description: Namespace of the journal, the release snapshots and the lock.
    type: str
    default: slipway-system
  history_max:
    description:
      - How many releases of the context the journal keeps (like Helm's C(--history-max)); after each recorded
        release, older records are deleted with their stored objects. C(0) keeps every release.
      - The last good release, the revisions a kept release refers to (where its objects are stored, the release a
        rollback or canary step came from) and the release the context was at when a job took its hold are kept
        whatever their age.
      - Playbooks take it from C(slipway_history_max).
    type: int
    default: 20
  prometheus_url:
    description:
      - The context's Prometheus (for example C(http://prometheus.monitoring:9090)), asked by the metric gates a
        system declares under C(health:) (C(query), C(threshold), C(comparison), C(samples), C(interval)).
      - Playbooks take it from C(slipway_prometheus_url). A metric gate without it fails, saying so.
    type: str
"""
