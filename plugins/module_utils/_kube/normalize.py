# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure comparison helpers: normalise, ``desired ⊆ live``, keyed digests, secret redaction, minimal diffs.

Nothing here talks to the API or imports Ansible.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import re
from decimal import Decimal, InvalidOperation

# Metadata the server owns; never part of a comparison.
SERVER_METADATA = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields", "selfLink",
                   "deletionTimestamp", "deletionGracePeriodSeconds")
REDACTED = "<redacted hmac:{}>"
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SUFFIX = {None: 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10 ** 3,
           "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18, "Ki": 2 ** 10, "Mi": 2 ** 20,
           "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def keyed_digest(key, value, length=32):
    """HMAC-SHA256 of a value's canonical JSON, truncated: stable per key, useless without it."""
    data = value if isinstance(value, bytes) else canonical_json(value).encode("utf-8")
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:length]


def is_secret(obj):
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def secret_to_data(obj):
    """A Secret with ``stringData`` folded into ``data`` (base64), as the API stores it (R4).

    Applying ``data`` only means a key removed from the manifest really disappears on the next apply.
    """
    if not is_secret(obj) or "stringData" not in obj:
        return obj
    obj = dict(obj)
    data = dict(obj.get("data") or {})
    for key, value in (obj.pop("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
    obj["data"] = data
    return obj


def secret_values(obj):
    """Every plain and base64 value of a Secret (for masking output)."""
    found = set()
    if not is_secret(obj):
        return found
    for value in (obj.get("stringData") or {}).values():
        found.add(str(value))
        found.add(base64.b64encode(str(value).encode("utf-8")).decode("ascii"))
    for value in (obj.get("data") or {}).values():
        found.add(str(value))
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            found.add(base64.b64decode(value).decode("utf-8"))
    return {value for value in found if value}


def strip_server_fields(obj):
    """A deep copy without status and server-owned metadata (what a comparison may look at)."""
    return copy.deepcopy(server_fields_hidden(obj))


def server_fields_hidden(obj):
    """A shallow view of ``obj`` without status and server-owned metadata, sharing everything else with it.

    For reading only (comparisons): copying each live object of a large context would cost more than comparing.
    """
    view = {key: value for key, value in obj.items() if key != "status"}
    if isinstance(view.get("metadata"), dict):
        view["metadata"] = {k: v for k, v in view["metadata"].items() if k not in SERVER_METADATA}
    return view


def _quantity(value):
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    if not match:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except (InvalidOperation, KeyError):
        return None


def scalars_equal(want, have):
    if isinstance(want, bool) or isinstance(have, bool):
        return isinstance(want, bool) and isinstance(have, bool) and want == have  # True is not 1 here
    if want == have:
        return True  # str subclasses (Ansible's tagged strings) equal their plain value
    if isinstance(want, (str, int, float)) and isinstance(have, str):
        # Resource quantities: the server canonicalises "0.5" to "500m" and "1024Mi" to "1Gi".
        a, b = _quantity(str(want)), _quantity(have)
        return a is not None and a == b
    return False


def subset_mismatches(want, have, path=""):
    """Paths where ``want`` is not contained in ``have`` (empty list: desired ⊆ live).

    Dicts: every wanted key must be present and match; extra live keys are server defaults and ignored.
    Lists: same length, element by element (the API keeps list order).
    """
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [path or "."]
        found = []
        for key, value in want.items():
            if key not in have:
                if value in (None, {}, []):
                    continue  # an empty value the server drops is no difference
                found.append(f"{path}.{key}")
            else:
                found.extend(subset_mismatches(value, have[key], f"{path}.{key}"))
        return found
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return [path or "."]
        found = []
        for index, (a, b) in enumerate(zip(want, have, strict=True)):
            found.extend(subset_mismatches(a, b, f"{path}[{index}]"))
        return found
    if want is None:
        return [] if have in (None, {}, [], "") else [path]
    return [] if scalars_equal(want, have) else [path or "."]


def redact_secret(obj, key):
    """A Secret whose values are replaced by a keyed hash of each value: a changed value shows as changed."""
    if not is_secret(obj):
        return obj
    obj = copy.deepcopy(obj)
    for field in ("data", "stringData"):
        if isinstance(obj.get(field), dict):
            obj[field] = {k: REDACTED.format(keyed_digest(key, str(v), 16)) for k, v in obj[field].items()}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return obj


def changed_paths(before, after, path=""):
    """Paths whose value differs between two objects (both directions)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after), key=str):
            if key not in before or key not in after:
                found.append(f"{path}.{key}")
            else:
                found.extend(changed_paths(before[key], after[key], f"{path}.{key}"))
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (a, b) in enumerate(zip(before, after, strict=True)):
            found.extend(changed_paths(a, b, f"{path}[{index}]"))
        return found
    return [] if before == after else [path or "."]


def minimal_diff(before, after):
    """``(before, after)`` keeping only the branches that differ (for diff mode)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out_b, out_a = {}, {}
        for key in sorted(set(before) | set(after), key=str):
            if key not in after:
                out_b[key] = before[key]
            elif key not in before:
                out_a[key] = after[key]
            elif before[key] != after[key]:
                out_b[key], out_a[key] = minimal_diff(before[key], after[key])
        return out_b, out_a
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        pairs = [minimal_diff(a, b) if a != b else ({}, {}) for a, b in zip(before, after, strict=True)]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return before, after


_SEGMENT = re.compile(r"\[([^\]]*)\]")


def _selector(text):
    """``name="app",port=80`` -> ``{"name": "app", "port": 80}``; ``=value`` -> ``{"": value}``."""
    out = {}
    for part in re.findall(r'([\w.-]*)=("(?:[^"\\]|\\.)*"|[^,]+)', text):
        try:
            out[part[0]] = json.loads(part[1])
        except ValueError:
            out[part[0]] = part[1]
    return out


def remove_field(obj, path):
    """Remove an SSA field path (``.spec.replicas``, ``.spec.template.spec.containers[name="app"].image``).

    Keys may contain dots (``.metadata.labels.app.kubernetes.io/name``): keys present in the object are matched
    greedily. Returns True when something was removed.
    """
    if not path:
        return False
    if path.startswith("."):
        path = path[1:]
    if isinstance(obj, dict):
        for key in sorted(obj, key=lambda k: -len(str(k))):
            key = str(key)
            if path == key:
                del obj[key]
                return True
            if path.startswith(key) and path[len(key)] in ".[":
                return remove_field(obj[key], path[len(key):])
        return False
    if isinstance(obj, list) and path.startswith("["):
        match = _SEGMENT.match(path)
        if not match:
            return False
        selector, rest = _selector(match.group(1)), path[match.end():]
        for index, item in enumerate(obj):
            if _matches(item, selector):
                if not rest:
                    del obj[index]
                    return True
                return remove_field(item, rest)
    return False


def _matches(item, selector):
    if "" in selector:
        return item == selector[""]
    if not isinstance(item, dict):
        return False
    return all(k not in item or item[k] == v for k, v in selector.items()) and any(k in item for k in selector)
