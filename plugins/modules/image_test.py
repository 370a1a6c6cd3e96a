#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_test
short_description: Prove each built image as a black box with the test commands its system declares
description:
  - Runs the test commands each selected system declares in its C(slipway.yml) inside its image (the
    system's first image, by the digest the build step recorded), one fresh container per command.
  - The categories are fixed and first-class - C(unit), C(functional), C(style), C(duplication), C(outdated)
    (outdated dependencies) and C(licences). With O(strict), a category a system does not declare fails it.
  - Commands run without network, except C(functional) for a system with a C(docker-compose.yml) - its
    dependencies (every compose service but the system's own) are started on a project of their own with
    the images just built (C(SLIPWAY_IMAGE_<NAME>)), the test container joins that project's network, and the
    project is torn down afterwards, also on failure or timeout. Nothing is left behind.
  - A command that outlives its timeout is killed and reported as C(timeout).
  - Gives one verdict per image and per-command results, writes a JUnit XML file and a JSON report, and fails
    when any image failed, so a pipeline stops before delivery.
version_added: 0.1.0
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.registry
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Validates the descriptions and references and returns what would run; runs nothing and writes no
      report.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details: Changes nothing in the registry or the engine (every container, network and volume it starts is
      removed); it always reports C(changed=false). Reports are rewritten on each run.
options:
  images:
    description:
      - "Map of image name to the reference to test, as the build step recorded it
        (C(reports/images-<context>.json)), for example C({\"backend\": \"127.0.0.1:5001/backend@sha256:...\"})."
      - Images the engine does not have are pulled from O(registry) first.
    type: dict
    required: true
  categories:
    description: The categories to run, in this fixed order.
    type: list
    elements: str
    choices: [unit, functional, style, duplication, outdated, licences]
    default: [unit, functional, style, duplication, outdated, licences]
  strict:
    description: Fail an image whose system declares no command for one of O(categories).
    type: bool
    default: true
  default_timeout:
    description: Seconds a command may run when its C(slipway.yml) entry sets no C(timeout).
    type: int
    default: 300
  compose_timeout:
    description: Seconds the functional dependencies may take to become healthy.
    type: int
    default: 120
  compose_command:
    description: The Compose v2 command line; by default the C(docker-compose) next to the Python running the
      module, one on C(PATH), then C(docker compose).
    type: list
    elements: str
  workers:
    description: How many images are tested at the same time.
    type: int
    default: 2
  junit_path:
    description: Where to write the JUnit XML report.
    type: path
  json_path:
    description: Where to write the JSON report.
    type: path
  context:
    description: The delivery context, recorded in the JSON report.
    type: str
"""

EXAMPLES = r"""
- name: Prove every image of the context
  slipway.platform.image_test:
    ecosystem_root: "{{ slipway_ecosystem_root }}"
    systems: "{{ slipway_systems }}"
    images: "{{ lookup('ansible.builtin.file', 'reports/images-local.json') | from_json }}"
    registry: "{{ slipway_registry }}"
    registry_username: "{{ slipway_registry_username }}"
    registry_password: "{{ slipway_registry_password }}"
    junit_path: reports/tests-local.xml
    json_path: reports/tests-local.json

- name: Only the fast static checks
  slipway.platform.image_test:
    ecosystem_root: examples/shop
    systems: [backend]
    images: {backend: "127.0.0.1:5001/backend@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
    registry: 127.0.0.1:5001
    categories: [style, duplication, licences]
"""

RETURN = r"""
passed:
  description: Whether every image passed.
  returned: always
  type: bool
leftover_containers_removed:
  description: Test containers of this run still present at the end and removed then (0 when all went well).
  returned: when tests ran
  type: int
command:
  description: The C(docker run) equivalent of the first check that did not pass.
  returned: when an image failed
  type: str
stdout:
  description: The output tail of that check.
  returned: when an image failed
  type: str
images:
  description: One entry per image.
  returned: always
  type: list
  elements: dict
  contains:
    system: {description: The system., type: str, returned: always}
    image: {description: The image name., type: str, returned: always}
    reference: {description: The reference tested., type: str, returned: always}
    verdict: {description: C(passed) or C(failed) (check mode - C(planned))., type: str, returned: always}
    seconds: {description: Time spent on the image., type: float, returned: always}
    tests:
      description: Per command - C(category), C(command), C(status) (C(passed), C(failed), C(timeout), C(error),
        C(missing)), C(exit_code), C(seconds), C(output) (the tail).
      type: list
      elements: dict
      returned: always
"""

import shlex  # noqa: E402
import uuid  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image import report, testing  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._reports import write_atomic  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image.args import (  # noqa: E402
    REGISTRY_CONNECTION_SPEC,
    SYSTEMS_SPEC,
    registry_auth,
)
from ansible_collections.slipway.platform.plugins.module_utils._image.compose import (  # noqa: E402
    ComposeProject,
    find_compose,
)
from ansible_collections.slipway.platform.plugins.module_utils._image.engine import Engine  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image.registry import validate_registry  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image.spec import load_systems  # noqa: E402


def validate(params):
    for key in ("workers", "default_timeout", "compose_timeout"):
        if params[key] < 1:
            raise SlipwayError(f"{key} must be at least 1")
    validate_registry(params["registry"])
    for name, reference in params["images"].items():
        if not isinstance(reference, str) or "@sha256:" not in reference:
            raise SlipwayError(f"images.{name}: {reference!r} is not a reference by digest (name@sha256:...)")


def run(params, check_mode):
    validate(params)
    systems = load_systems(params["ecosystem_root"], params["systems"], params["default_timeout"])
    planned = testing.plan(systems, params["images"], params["categories"], params["strict"])
    if check_mode:
        images = [{"system": p["system"].name, "image": p["image"], "reference": p["reference"],
                   "verdict": "planned", "seconds": 0.0,
                   "tests": [{"category": t.category, "command": list(t.command), "timeout": t.timeout}
                             for t in p["tests"]] + [{"category": c, "status": "missing"} for c in p["missing"]]}
                  for p in planned]
        return {"changed": False, "passed": all(not p["missing"] for p in planned), "images": images}
    compose_command = None
    if "functional" in params["categories"] and any(p["system"].compose_file for p in planned):
        compose_command = find_compose(params.get("compose_command"))
    references = params["images"]
    engine = Engine(params.get("docker_host"))
    try:
        testing.ensure_local(engine, sorted(set(references.values())), registry_auth(params))
    finally:
        engine.close()
    env = testing.image_env(references)
    env["DOCKER_HOST"] = engine.host
    run_id = uuid.uuid4().hex[:10]
    results = testing.run_all(
        planned, lambda: Engine(params.get("docker_host")),
        lambda system, project: ComposeProject(compose_command, system.compose_file, project, env,
                                               params["compose_timeout"]),
        run_id, params["workers"])
    cleanup = Engine(params.get("docker_host"))
    try:
        leftovers = cleanup.remove_labelled(f"{testing.RUN_LABEL}={run_id}")
    finally:
        cleanup.close()
    if params.get("junit_path"):
        write_atomic(params["junit_path"], report.junit_xml(results))
    if params.get("json_path"):
        write_atomic(params["json_path"], report.json_report(results, params.get("context")))
    passed = all(r["verdict"] == testing.PASSED for r in results)
    outcome = {"changed": False, "passed": passed, "images": results, "leftover_containers_removed": leftovers}
    if not passed:
        failed = [r["image"] + " (" + ", ".join(f"{t['category']}: {t['status']}" for t in r["tests"]
                                                if t["status"] != testing.PASSED) + ")"
                  for r in results if r["verdict"] != testing.PASSED]
        image, test = next((r, t) for r in results for t in r["tests"] if t["status"] != testing.PASSED)
        command = shlex.join(["docker", "run", "--rm", image["reference"], *test["command"]])
        raise SlipwayError(f"{len(failed)} of {len(results)} images failed their tests: {'; '.join(failed)}",
                           command=command, stdout=test.get("output"), **outcome)
    return outcome


def main():
    argument_spec = dict(
        REGISTRY_CONNECTION_SPEC,
        **SYSTEMS_SPEC,
        images=dict(type="dict", required=True),
        categories=dict(type="list", elements="str",
                        choices=["unit", "functional", "style", "duplication", "outdated", "licences"],
                        default=["unit", "functional", "style", "duplication", "outdated", "licences"]),
        strict=dict(type="bool", default=True),
        default_timeout=dict(type="int", default=300),
        compose_timeout=dict(type="int", default=120),
        compose_command=dict(type="list", elements="str"),
        workers=dict(type="int", default=2),
        junit_path=dict(type="path"),
        json_path=dict(type="path"),
        context=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        module.exit_json(**run(module.params, module.check_mode))
    except SlipwayError as err:
        module.fail_json(**err.to_result())


if __name__ == "__main__":
    main()
