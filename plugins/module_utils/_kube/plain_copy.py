# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deep copy of Kubernetes objects as they are handled here (parsed YAML or JSON: dicts, lists and scalars).

``copy.deepcopy`` costs about five times as much on them (its memo and dispatch per value), and the engine copies
every body a few times per delivery: at 1,000 systems that was seconds of a redelivery that writes nothing."""

from __future__ import annotations

import copy


# immutable, so the copy may share them; subclasses too (Ansible's tagged strings: a task option such as the
# context becomes a label on every object)
_SHARED = (str, int, float, type(None))


def plain_copy(value):
    """A deep copy of ``value``; anything but plain dicts, lists and immutable scalars is copied by ``deepcopy``
    (dates, tuples, dict subclasses), so the result never shares a mutable part with ``value``."""
    kind = type(value)
    if kind is dict:
        return {key: plain_copy(item) for key, item in value.items()}
    if kind is list:
        return [plain_copy(item) for item in value]
    if isinstance(value, _SHARED):
        return value
    return copy.deepcopy(value)
