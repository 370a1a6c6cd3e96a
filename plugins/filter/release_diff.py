# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: release_diff
short_description: What changed between two releases of the journal, per system
version_added: 0.1.0
author: Slipway engineers (@slipway)
description:
  - Compares two journal records as M(slipway.platform.release_info) returns them (its C(latest), C(last_good) or
    C(release), or items of its C(releases)) and says per system what a person wants to know - systems added and
    removed (retired), images changed, manifests changed and which recorded objects were added, removed or
    changed, the namespace and the git commit.
  - A system counts as updated when its images or its keyed manifest digest differ, the same comparison a delivery
    makes to decide whether anything changed.
  - Give the older record as O(_input) and the newer as O(newer); or a list of one or two records, oldest first
    (C(releases[-2:])); a single record, or a null older one (an empty history), is compared with nothing, so every
    system is added.
  - The two records may come from different contexts, to see what differs between, say, C(staging) and
    C(production).
  - Secrets never enter the journal, so they never enter the diff; manifests are compared by keyed digests.
  - Anything that is not a journal record fails with an error naming this filter.
positional: newer
options:
  _input:
    description: The older record (may be null), or a list of one or two records, oldest first.
    type: raw
    required: true
  newer:
    description: The newer record; leave it out when O(_input) is a list or the only record.
    type: dict
"""

EXAMPLES = r"""
- name: Read the local context's journal
  slipway.platform.release_info:
    context: local
  register: slipway_journal

- name: Show what the newest release changed
  ansible.builtin.debug:
    msg: "{{ (slipway_journal.releases[-2:] | slipway.platform.release_diff).lines }}"
  # - "local 6 -> local 7: 1 updated"
  # - "~ backend (shop): image backend 127.0.0.1:5001/backend@sha256:1c0ffee1c0ff -> ...; manifests changed
  #    (Deployment shop/backend changed)"
  # - "= unchanged: frontend, worker"

- name: Show what the newest release, failed or not, changed since the last good one
  ansible.builtin.debug:
    msg: "{{ (slipway_journal.last_good | slipway.platform.release_diff(slipway_journal.latest)).lines }}"

- name: Go on only when production runs what staging runs
  ansible.builtin.assert:
    that: not (staging_journal.latest | slipway.platform.release_diff(production_journal.latest)).changed
    fail_msg: "{{ (staging_journal.latest | slipway.platform.release_diff(production_journal.latest)).lines }}"
"""

RETURN = r"""
_value:
  description: The diff.
  type: dict
  contains:
    from:
      description: C(context), C(revision) and C(outcome) of the older record, or null when there is none.
      type: dict
    to:
      description: C(context), C(revision) and C(outcome) of the newer record.
      type: dict
    changed:
      description: Whether any system was added, removed or updated.
      type: bool
    added:
      description: Systems only the newer record has.
      type: list
      elements: str
    removed:
      description: Systems only the older record has.
      type: list
      elements: str
    updated:
      description: Systems whose images or manifests differ.
      type: list
      elements: str
    unchanged:
      description: Systems both records run the same.
      type: list
      elements: str
    systems:
      description: Per added, removed or updated system, what differs.
      type: dict
      contains:
        change:
          description: C(added), C(removed) or C(updated).
          type: str
        namespace:
          description: The system's namespace (the newer one when it moved).
          type: str
        images:
          description: Per image that differs, C({from, to}) references (null for the side that lacks it).
          type: dict
        manifests_changed:
          description: Whether the keyed manifest digests differ.
          type: bool
        objects:
          description: The recorded objects C(added), C(removed) and C(changed) (by digest), as C(Kind namespace/name).
          type: dict
        namespace_change:
          description: C({from, to}) when an updated system moved to another namespace.
          type: dict
          returned: when the namespace differs
        git_sha:
          description: C({from, to}) commits of the system's folder, when they differ.
          type: dict
          returned: when the commits differ
    lines:
      description: The same for a terminal - a heading, one line per added (C(+)), removed (C(-)) or updated
        (C(~)) system, and one for the unchanged ones (C(=)); digests cut to 12 hex characters.
      type: list
      elements: str
"""

from ansible_collections.slipway.platform.plugins.module_utils._release.release_diff import (  # noqa: E402
    release_diff,
)
from ansible_collections.slipway.platform.plugins.plugin_utils._filter import as_filter  # noqa: E402


class FilterModule:
    def filters(self):
        return as_filter("release_diff", release_diff)
