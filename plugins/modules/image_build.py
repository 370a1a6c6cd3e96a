#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_build
short_description: Build and push the images of systems under content-addressed tags
description:
  - Builds every image that the selected systems declare in their C(slipway.yml), in parallel on a bounded
    number of workers, and pushes each to the context's registry.
  - The tag of an image is a digest of what its build reads - the build context as filtered by
    C(.dockerignore), the Dockerfile, the build arguments, the target, and what each image it is built from
    is (C(FROM), C(COPY --from), C(RUN --mount=...,from=)). An image whose tag the registry already has is
    neither built nor pushed; a one-byte change in its context, or a base image rebuilt under the same name,
    gives a new tag.
  - Version control metadata (C(.git), C(.hg), C(.svn) and the like, at any depth) is neither hashed nor sent
    to the build, so a fetch or a commit that touches only ignored files changes no tag. Only a
    C(.dockerignore) exception that names it (C(!.git)) brings it back.
  - Each base image counts as the digest it is pinned to (C(image@sha256:...)), else its image ID in the Docker
    Engine, else the config digest its registry serves (the ID it gets once pulled). A base neither has fails
    its image before anything is built, with the command that makes it (C(make deps-images), C(make up)).
  - Returns, per image, the reference by digest (C(registry/name@sha256:...)) that delivery deploys, so what
    is delivered is exactly what was built and tested.
  - The registry is checked first; when it is down or refuses the credentials the module fails before
    building anything.
version_added: 0.1.0
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.registry
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Computes the tags and asks the registry which exist, then reports what would be built and pushed;
      builds and pushes nothing. The same predicate decides in a real run. Base images are looked up in the
      engine (read only) or their registry, as in a real run.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details: A second run with unchanged contexts finds every tag in the registry and reports C(changed=false).
options:
  workers:
    description: How many images are built at the same time.
    type: int
    default: 2
  force:
    description: Build and push even when the registry already has the tag (for example when a C(RUN) step
      fetches something the digest cannot see).
    type: bool
    default: false
notes:
  - The digest covers the stages up to C(target) (all of them without one), which is what the classic builder
    runs. Registries other than O(registry) are asked anonymously for base images the engine lacks.
"""

EXAMPLES = r"""
- name: Build and push the shop's images
  slipway.platform.image_build:
    ecosystem_root: "{{ slipway_ecosystem_root }}"
    systems: "{{ slipway_systems }}"
    registry: "{{ slipway_registry }}"
    registry_username: "{{ slipway_registry_username }}"
    registry_password: "{{ slipway_registry_password }}"
    workers: 2
  register: slipway_built

- name: Show what delivery will deploy
  ansible.builtin.debug:
    var: slipway_built.references
"""

RETURN = r"""
images:
  description: One entry per image, in the order the systems declare them.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Image (repository) name., type: str, returned: always}
    system: {description: The system declaring the image., type: str, returned: always}
    action:
      description: C(built) (built and pushed), C(skipped) (the registry has the tag), C(would_build) (check mode)
        or C(failed).
      type: str
      returned: always
    tag: {description: The content tag., type: str, returned: when the context could be read, sample: 3f1c0e...}
    tag_reference:
      description: The image by its content tag.
      type: str
      returned: when the context could be read
      sample: 127.0.0.1:5001/backend:3f1c0e...
    context_digest:
      description: The full sha256 the tag is cut from.
      type: str
      returned: when the context could be read
    bases:
      description: Each image the build reads (as the Dockerfile names it, after C(ARG) substitution) and the
        image ID or digest it resolved to.
      type: dict
      returned: always
      sample: {"slipway/busybox:stable": "sha256:c08e29..."}
    repository: {description: The repository in the registry., type: str, returned: always}
    image_id: {description: The local image id., type: str, returned: when built}
    digest: {description: The manifest digest in the registry., type: str, returned: when known, sample: "sha256:9a..."}
    reference:
      description: The reference delivery deploys.
      type: str
      returned: when known
      sample: 127.0.0.1:5001/backend@sha256:9a...
    pushed: {description: Whether this run pushed the image., type: bool, returned: always}
    seconds: {description: Time spent on this image., type: float, returned: always}
    msg: {description: What went wrong., type: str, returned: when failed}
    base_image: {description: The base image that could not be resolved., type: str, returned: when that failed it}
    command: {description: The equivalent docker command that failed., type: str, returned: when failed}
    stdout: {description: Tail of the build or push log., type: str, returned: when failed}
references:
  description: Map of image name to reference by digest, for C(reports/images-<context>.json).
  returned: success
  type: dict
  sample: {backend: "127.0.0.1:5001/backend@sha256:9a..."}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image.args import (  # noqa: E402
    REGISTRY_CONNECTION_SPEC,
    SYSTEMS_SPEC,
    registry_auth,
)
from ansible_collections.slipway.platform.plugins.module_utils._image.build import build_all, summary  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image.engine import Engine  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image.registry import Registry  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image.spec import load_systems  # noqa: E402


def run(params, check_mode):
    if params["workers"] < 1:
        raise SlipwayError("workers must be at least 1")
    systems = load_systems(params["ecosystem_root"], params["systems"])
    images = [image for system in systems for image in system.images]
    registry = Registry(params["registry"], params.get("registry_username"), params.get("registry_password"),
                        timeout=params["registry_timeout"])
    if not check_mode:
        Engine(params.get("docker_host")).close()  # fail early and clearly when there is no engine
    results = build_all(images, registry, lambda: Engine(params.get("docker_host")), registry_auth(params),
                        workers=params["workers"], check_mode=check_mode, force=params["force"])
    changed, failed, references = summary(results)
    if failed:
        names = ", ".join(f"{r['name']} ({r.get('msg')})" for r in failed)
        first = failed[0]
        raise SlipwayError(f"{len(failed)} of {len(results)} images failed: {names}", images=results,
                           command=first.get("command"), stdout=first.get("stdout"), stderr=first.get("stderr"))
    return {"changed": changed, "images": results, "references": references}


def main():
    argument_spec = dict(
        REGISTRY_CONNECTION_SPEC,
        **SYSTEMS_SPEC,
        workers=dict(type="int", default=2),
        force=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        module.exit_json(**run(module.params, module.check_mode))
    except SlipwayError as err:
        module.fail_json(**err.to_result())


if __name__ == "__main__":
    main()
