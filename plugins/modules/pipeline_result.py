#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pipeline_result
short_description: Tell the CI pipeline how a Slipway playbook ended (result file, JUnit, exit code)
version_added: 0.1.0
description:
  - Writes C(result-<context>.json) into O(reports_dir) - the outcome (V(succeeded), V(nothing_to_do), V(failed),
    V(tests_failed), V(delivery_failed_rolled_back), V(rollback_failed), V(lock_not_obtained),
    V(integration_conflict)), the exit code that outcome maps to, the context's revision, the systems and images,
    the duration of each step, and the CI job (Jenkins, TeamCity, GitLab, GitHub Actions, detected from the
    environment) - and C(junit-<playbook>-<context>.xml), one test case per system for deliver and rollback, one
    per image for build, one per step for integrate. Image tests write their own JUnit file
    (M(slipway.platform.image_test)).
  - Every playbook of the meta-project runs it last, whatever happened; C(docs/ci.md) documents the contract and the
    C(bin/slipway-ci) wrapper that exits with the outcome's code.
  - Runs where the playbook runs (every Slipway play has a C(local) connection), so the CI variables it reads
    are the job's own.
author: Slipway engineers (@slipway)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Computes the outcome and writes nothing. The playbooks run it with C(check_mode=false) and
      O(dry_run) set, so that a C(--check) run still reports.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details: Writing a report changes nothing a later run depends on; it always reports no change.
options:
  context:
    description: The delivery context the playbook ran for.
    type: str
    required: true
  playbook:
    description: Which playbook ran.
    type: str
    required: true
    choices: [build, test, deliver, rollback, integrate]
  results:
    description:
      - The registered result of each step that ran, by step name (V(rebase), V(build), V(test), V(deliver),
        V(merge), V(rollback)); failed results included.
    type: dict
    default: {}
  marks:
    description: When each step started (seconds since the epoch), by step name; the last one is the step that failed.
    type: dict
    default: {}
  started:
    description: When the playbook started (seconds since the epoch).
    type: float
    required: true
  failure:
    description: The failed task's result (C(ansible_failed_result)); omitted when the playbook succeeded.
    type: dict
  outcome:
    description: The outcome the playbook declares for its failure (a rebase that stopped on a conflict); a failed
      rollback still wins over it.
    type: str
    choices: [integration_conflict]
  reports_dir:
    description: The folder of the reports (C(reports/) of the meta-project by default).
    type: path
    required: true
  dry_run:
    description: Whether the playbook ran with C(--check); recorded as C(check_mode) in the result file.
    type: bool
    default: false
  run_id:
    description: An identifier of this run chosen by the caller (C(bin/slipway-ci) passes C(SLIPWAY_CI_RUN_ID)),
      recorded so that the caller finds its own result.
    type: str
seealso:
  - module: slipway.platform.image_test
    description: Writes the image tests' JUnit file.
"""

EXAMPLES = r"""
- name: Deliver, then tell the pipeline how it went
  block:
    - name: Deliver
      slipway.platform.deliver:
        context: staging
        systems: [frontend, backend]
        ecosystem_root: /ci/work/shop
      register: delivery
  rescue:
    - name: Keep the failure for the report
      ansible.builtin.set_fact:
        failure: "{{ ansible_failed_result }}"
  always:
    - name: Write reports/result-staging.json and reports/junit-deliver-staging.xml
      slipway.platform.pipeline_result:
        context: staging
        playbook: deliver
        results: {deliver: "{{ delivery | default(omit) }}"}
        started: "{{ started }}"
        failure: "{{ failure | default(omit) }}"
        reports_dir: reports
"""

RETURN = r"""
outcome:
  description: The outcome (see C(docs/ci.md)).
  returned: always
  type: str
  sample: delivery_failed_rolled_back
exit_code:
  description: The exit code C(bin/slipway-ci) ends with for this outcome.
  returned: always
  type: int
  sample: 12
result:
  description: The content of the result file.
  returned: always
  type: dict
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._ci.detect import detect  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._ci.result import reports, write_reports  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402

ARGUMENT_SPEC = dict(
    context=dict(type="str", required=True),
    playbook=dict(type="str", required=True, choices=["build", "test", "deliver", "rollback", "integrate"]),
    results=dict(type="dict", default={}),
    marks=dict(type="dict", default={}),
    started=dict(type="float", required=True),
    failure=dict(type="dict"),
    outcome=dict(type="str", choices=["integration_conflict"]),
    reports_dir=dict(type="path", required=True),
    dry_run=dict(type="bool", default=False),
    run_id=dict(type="str"),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    job = detect(os.environ)
    ci = job.as_dict() if job else None
    try:
        document, texts = reports(params["reports_dir"], params["playbook"], params["context"], params["results"],
                                  params["marks"], params["started"], params["failure"], params["outcome"],
                                  params["dry_run"], ci, params["run_id"])
        if not module.check_mode:
            write_reports(texts)
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    module.exit_json(changed=False, outcome=document["outcome"], exit_code=document["exit_code"], result=document)


if __name__ == "__main__":
    main()
