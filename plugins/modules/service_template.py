#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service_template
short_description: Write a generated service's files without ever overwriting local edits
version_added: 0.1.0
description:
  - Writes a set of already rendered files (usually rendered by the templates of the role
    C(slipway.platform.service_template)) into a destination folder, and records the SHA-256 of each file it
    wrote in a manifest C(.slipway-template.json) in that folder.
  - On a later run a file whose content is already the desired one is left alone; a file that still has the
    content the generator wrote is updated to the new desired content; a file edited (or removed) since it was
    generated, or one that existed before the generator, is a conflict.
  - Conflicts make the module fail without writing anything, listing each file and why, unless O(force=true).
  - Files present in the folder but not in O(files) are never touched.
author:
  - Slipway engineers (@slipway)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  dest:
    description: Folder of the service. Created when missing.
    type: path
    required: true
  files:
    description: The desired files.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Path relative to O(dest); no C(..), no absolute path.
        type: str
        required: true
      content:
        description: The full text content.
        type: str
        required: true
      mode:
        description: Octal permissions, for example C("0755") for scripts.
        type: str
        default: "0644"
  template:
    description: Name of the template the files come from; recorded in the manifest.
    type: str
    required: true
  variables:
    description: The template's input variables, recorded in the manifest so a later run can be compared.
    type: dict
    default: {}
  force:
    description: Overwrite (or recreate) files edited or removed since they were generated.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Check mode computes the same plan as a real run (including conflicts, which fail) and writes nothing.
  diff_mode:
    support: full
    details: One diff per file created or updated (full text before and after), and one per mode change.
  platform:
    platforms: posix
  idempotent:
    description: Running the module twice with the same input makes no change the second time.
    support: full
    details: A second run with the same input reports RV(created), RV(updated) and RV(modes) empty and changed=false.
notes:
  - The content of every file travels as a module argument, so keep templates to source-sized text files.
"""

EXAMPLES = r"""
- name: Write the rendered backend template into services/orders
  slipway.platform.service_template:
    dest: services/orders
    template: backend
    variables:
      name: orders
    files:
      - path: Dockerfile
        content: "{{ lookup('ansible.builtin.template', 'backend/Dockerfile.j2') }}"
      - path: bin/dev
        content: "#!/bin/sh\nexec docker compose up --build\n"
        mode: "0755"

- name: Regenerate, overwriting local edits on purpose
  slipway.platform.service_template:
    dest: services/orders
    template: backend
    files: "{{ rendered_files }}"
    force: true
"""

RETURN = r"""
created:
  description: Files written that did not exist (or were recreated with O(force)).
  returned: always
  type: list
  elements: str
  sample: [Dockerfile, docker-compose.yml]
updated:
  description: Files rewritten because the template's content changed (or local edits overwritten with O(force)).
  returned: always
  type: list
  elements: str
unchanged:
  description: Files already holding the desired content.
  returned: always
  type: list
  elements: str
modes:
  description: Files whose content was right but whose permissions were changed.
  returned: always
  type: list
  elements: str
conflicts:
  description: >-
    Files with local changes, mapped to C(edited), C(removed) or C(unmanaged) (existed before the generator).
    Without O(force) the module fails and returns this too.
  returned: always
  type: dict
  sample: {"app/server.py": "edited"}
manifest:
  description: Path of the manifest recording what was generated.
  returned: always
  type: str
  sample: services/orders/.slipway-template.json
"""

# The documentation strings come first (house module layout), so the imports follow them: E402.
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._template import manifest  # noqa: E402


def run(module):
    params = module.params
    dest = params["dest"]
    desired = manifest.normalise_files(params["files"])
    existing, manifest_text = manifest.read_tree(dest, desired)
    result = manifest.plan(desired, existing, manifest_text, template=params["template"],
                           variables=params["variables"], force=params["force"])
    report = {
        "changed": result["changed"],
        "created": result["created"],
        "updated": result["updated"],
        "unchanged": result["unchanged"],
        "modes": result["modes"],
        "conflicts": result["conflicts"],
        "manifest": os.path.join(dest, manifest.MANIFEST_NAME),
    }
    if result["refused"]:
        raise SlipwayError(manifest.conflict_message(result["conflicts"], dest), **report)
    if module._diff:
        report["diff"] = manifest.diffs(desired, existing, result, dest)
    if not module.check_mode:
        manifest.apply(dest, desired, result)
    return report


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            files=dict(type="list", elements="dict", required=True, options=dict(
                path=dict(type="str", required=True),
                content=dict(type="str", required=True),
                mode=dict(type="str", default="0644"),
            )),
            template=dict(type="str", required=True),
            variables=dict(type="dict", default={}),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    except OSError as exc:
        module.fail_json(msg=f"writing the service into {module.params['dest']} failed: {exc}",
                         path=getattr(exc, "filename", None))


if __name__ == "__main__":
    main()
