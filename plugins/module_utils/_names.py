# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names Kubernetes accepts, made from names people choose: a branch name as a DNS-1123 label, a showroom's
namespaces.

A name that is already a label is kept as it is. Any other is made one (lowercase ASCII, ``-`` for every run of
other characters, no ``-`` at either end, at most 63 characters) and ends in ``-`` and a short hash of the whole
name it came from, so that ``Feature/X``, ``feature_x`` and ``feature-x`` stay three labels, and two long names
that share their first 54 characters stay two.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._system import DNS_LABEL

MAX_LABEL = 63
HASH_LENGTH = 8  # hex characters: 32 bits, so two names people chose do not share a suffix by chance
_NOT_LABEL = re.compile(r"[^a-z0-9]+")


def _suffix(original):
    return "-" + hashlib.sha256(original.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def _fitted(candidate, original, max_length):
    """``candidate`` when it is ``original`` and a label that fits, else cut to fit and marked by the hash."""
    if candidate == original and len(candidate) <= max_length and DNS_LABEL.match(candidate):
        return candidate
    suffix = _suffix(original)
    return candidate[:max_length - len(suffix)].rstrip("-") + suffix


def _max_length(max_length):
    shortest = HASH_LENGTH + 2  # one character of the name, the '-' and the hash
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not shortest <= max_length <= MAX_LABEL:
        raise SlipwayError(f"max_length must be a whole number from {shortest} to {MAX_LABEL}, not {max_length!r}")
    return max_length


def dns_label(name, max_length=MAX_LABEL):
    """``name`` (a git branch, say) as a DNS-1123 label of at most ``max_length`` characters."""
    max_length = _max_length(max_length)
    if not isinstance(name, str):
        raise SlipwayError(f"expected a name (a string) to make a DNS label of, not {type(name).__name__} {name!r}")
    # NFKD splits accented letters into letter and accent, so 'é' becomes 'e' instead of a '-'.
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    candidate = _NOT_LABEL.sub("-", ascii_name.lower()).strip("-")
    if not candidate:
        raise SlipwayError(f"{name!r} has no letter or digit to make a DNS label of; choose a name with some")
    return _fitted(candidate, name, max_length)


def showroom_namespace(namespace, showroom):
    """The namespace ``<namespace>-<showroom>`` a showroom runs a system in, as a DNS-1123 label."""
    for what, value in (("namespace", namespace), ("showroom", showroom)):
        if not isinstance(value, str) or not DNS_LABEL.match(value):
            raise SlipwayError(f"the {what} {value!r} is not a DNS-1123 label (lowercase letters, digits, '-', at most "
                               "63 characters)" + ("; make one with slipway.platform.dns_label" if what == "showroom"
                                                   else ""))
    joined = f"{namespace}-{showroom}"
    return _fitted(joined, joined, MAX_LABEL)
