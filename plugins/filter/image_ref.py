# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: image_ref
short_description: An image's reference by digest from a build report
version_added: 0.1.0
author: Slipway engineers (@slipway)
description:
  - Returns the reference that C(playbooks/build.yml) recorded for one image in the build report
    C(reports/images-<context>.json), for example C(127.0.0.1:5001/backend@sha256:...).
  - The report is given as the mapping M(slipway.platform.image_build) returns in
    RV(slipway.platform.image_build#module:references), or as the file's JSON text (what the
    P(ansible.builtin.file#lookup) lookup returns).
  - Fails, naming this filter, when the report is not such a mapping, when it lacks the image (the message lists the
    images it has), or when the recorded reference is not by digest; a reference by tag would let the image change
    under the same name.
positional: image
options:
  _input:
    description: The build report, a mapping of image name to reference, or its JSON text.
    type: raw
    required: true
  image:
    description: The image's name, as in the C(images) of its system's C(slipway.yml).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Start a canary of the backend at the image the last build recorded
  slipway.platform.canary:
    context: "{{ slipway_context }}"
    system: backend
    action: start
    weight: 10
    images:
      backend: "{{ lookup('ansible.builtin.file', 'reports/images-' ~ slipway_context ~ '.json')
                   | slipway.platform.image_ref('backend') }}"

- name: Build, then use a reference straight from the module's result
  slipway.platform.image_build:
    ecosystem_root: examples/shop
    systems: [backend]
    registry: 127.0.0.1:5001
  register: slipway_built

- name: Show it
  ansible.builtin.debug:
    msg: "{{ slipway_built.references | slipway.platform.image_ref('backend') }}"
"""

RETURN = r"""
_value:
  description: The image's reference by digest.
  type: str
  sample: 127.0.0.1:5001/backend@sha256:9a3f0c1e5b7d2a4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d
"""

from ansible_collections.slipway.platform.plugins.module_utils._image.build_report import (  # noqa: E402
    reference_by_digest,
)
from ansible_collections.slipway.platform.plugins.plugin_utils._filter import as_filter  # noqa: E402


class FilterModule:
    def filters(self):
        return as_filter("image_ref", reference_by_digest)
