# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the image steps need from the system descriptions (``<root>/<system>/slipway.yml``).

Reads the ``images`` and ``tests`` parts and validates them before anything is built or run, so a typo
fails in milliseconds with the file and the field named. Pure Python (PyYAML), no Docker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.registry import validate_repository
from ansible_collections.slipway.platform.plugins.module_utils._system import read_description

CATEGORIES = ("unit", "functional", "style", "duplication", "outdated", "licences")
DEFAULT_TIMEOUT = 300


@dataclass(frozen=True)
class ImageSpec:
    system: str
    name: str
    context: str  # absolute
    dockerfile: str  # relative to context, or absolute
    target: str | None = None
    build_args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TestSpec:
    category: str
    command: tuple
    timeout: int


@dataclass(frozen=True)
class System:
    name: str
    folder: str
    images: tuple
    tests: tuple
    compose_file: str | None


def _command(where, value):
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value \
            or not all(isinstance(part, str) and part for part in value):
        raise SlipwayError(f"{where}: a test command is a non-empty list of strings (argv), "
                           "for example [\"sh\", \"-c\", \"make test\"]")
    return tuple(value)


def parse_tests(where, raw, default_timeout=DEFAULT_TIMEOUT):
    """``tests:`` -> TestSpecs in the fixed category order; a category is an argv list or
    ``{command: [...], timeout: seconds}``."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise SlipwayError(f"{where}: tests must be a mapping of category -> command")
    unknown = sorted(set(raw) - set(CATEGORIES))
    if unknown:
        raise SlipwayError(f"{where}: unknown test categories {unknown}; the categories are {list(CATEGORIES)}")
    specs = []
    for category in CATEGORIES:
        if category not in raw:
            continue
        value, timeout = raw[category], default_timeout
        if isinstance(value, dict):
            timeout = value.get("timeout", default_timeout)
            if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
                raise SlipwayError(f"{where}: tests.{category}.timeout must be a positive number of seconds")
            value = value.get("command")
        specs.append(TestSpec(category, _command(f"{where}: tests.{category}", value), timeout))
    return tuple(specs)


def _image(where, folder, system, raw):
    name = raw["name"]
    validate_repository(name)
    context = os.path.normpath(os.path.join(folder, raw.get("context") or "."))
    dockerfile = raw.get("dockerfile") or "Dockerfile"
    build_args = raw.get("build_args") or {}
    if not isinstance(build_args, dict) or not all(isinstance(k, str) for k in build_args):
        raise SlipwayError(f"{where}: image {name}: build_args must be a mapping of strings")
    target = raw.get("target")
    if target is not None and not isinstance(target, str):
        raise SlipwayError(f"{where}: image {name}: target must be a string")
    if not os.path.isdir(context):
        raise SlipwayError(f"{where}: image {name}: context {context} is not a folder")
    dockerfile_path = dockerfile if os.path.isabs(dockerfile) else os.path.join(context, dockerfile)
    if not os.path.isfile(dockerfile_path):
        raise SlipwayError(f"{where}: image {name}: Dockerfile {dockerfile_path} does not exist")
    return ImageSpec(system, name, context, dockerfile, target,
                     {key: str(value) for key, value in build_args.items()})


def load_system(root, name, default_timeout=DEFAULT_TIMEOUT):
    """The system ``name`` under the ecosystem ``root``."""
    where, raw = read_description(root, name)
    folder = os.path.dirname(where)
    images = raw.get("images") or []
    if not images:
        raise SlipwayError(f"{where}: images must be a non-empty list")
    specs = tuple(_image(where, folder, name, image) for image in images)
    compose = os.path.join(folder, "docker-compose.yml")
    return System(name, folder, specs, parse_tests(where, raw.get("tests"), default_timeout),
                  compose if os.path.isfile(compose) else None)


def load_systems(root, names, default_timeout=DEFAULT_TIMEOUT):
    """Systems in the given order; image names must be unique across them (one repository each)."""
    if not os.path.isdir(root):
        raise SlipwayError(f"ecosystem root {root} is not a folder")
    if not names:
        raise SlipwayError("no systems selected: give at least one system name")
    if len(set(names)) != len(names):
        raise SlipwayError(f"systems {list(names)} name a system more than once")
    systems, owners = [], {}
    for name in names:
        system = load_system(root, name, default_timeout)
        for image in system.images:
            if image.name in owners:
                raise SlipwayError(f"image name {image.name} is declared by both {owners[image.name]} and {name}")
            owners[image.name] = name
        systems.append(system)
    return systems
