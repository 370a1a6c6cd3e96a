# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a system's description, ``<ecosystem root>/<system>/slipway.yml``: one reader for every step.

The delivery renders from it, the image steps build and test from it; each then checks the parts it uses.
What they share is checked here: the folder is a system name, the file is a YAML mapping, a ``name`` in it
agrees with the folder, and ``images`` is a list of mappings that each have a ``name``.

:class:`System` is a system as the delivery engine works on it: what the description says, plus the objects its
templates rendered (built and checked by ``_kube/objects.py``, health gates by ``_gates.py``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

DESCRIPTION_FILE = "slipway.yml"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # system, namespace and Service names


@dataclass
class System:
    name: str
    namespace: str
    depends_on: list = field(default_factory=list)
    images: dict = field(default_factory=dict)
    objects: list = field(default_factory=list)  # [_kube.objects.Desired]
    git_sha: str | None = None
    files: list = field(default_factory=list)
    health: list = field(default_factory=list)  # [_gates.Gate], checked after the rollout
    inputs: str | None = None  # SHA-256 of what its templates saw (_release/deferred.py); recorded keyed


def read_description(root, name):
    """``(path, description)`` of system ``name`` under ``root``; SlipwayError names the file and the fix."""
    import yaml  # noqa: PLC0415 - PyYAML ships with ansible-core; imported here so the spec modules load without it

    if not isinstance(name, str) or not DNS_LABEL.match(name):
        raise SlipwayError(f"system name {name!r} is not a DNS-1123 label (lowercase letters, digits, '-')")
    path = os.path.join(root, name, DESCRIPTION_FILE)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster
    try:
        with open(path, encoding="utf-8") as handle:
            description = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
    except FileNotFoundError:
        raise SlipwayError(f"system {name}: {path} does not exist (is {name!r} in slipway_systems and "
                           "slipway_ecosystem_root right?)") from None
    except OSError as exc:
        raise SlipwayError(f"system {name}: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SlipwayError(f"system {name}: {path} is not valid YAML: {exc}") from None
    if not isinstance(description, dict):
        raise SlipwayError(f"system {name}: {path} must be a mapping (see docs/architecture.md)")
    if description.get("name", name) != name:
        raise SlipwayError(f"system {name}: {path} names itself {description.get('name')!r}; the folder name "
                           "and 'name' must agree")
    images = description.get("images") or []
    if not isinstance(images, list) or not all(isinstance(i, dict) and i.get("name") for i in images):
        raise SlipwayError(f"system {name}: 'images' in {path} must be a list of mappings with a 'name'")
    return path, description
