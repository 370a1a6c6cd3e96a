"""The filter plugins as playbook authors use them: by FQCN in a real ansible-playbook run, documented by
ansible-doc (neither needs the stack); and release_diff on the records real deliveries wrote to the stack's journal."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._release.release_diff import release_diff
from fixtures.deliver.support import Journal, client_for, configmap, run, system

ROOT = Path(__file__).resolve().parents[2]
FILTERS = ["dns_label", "image_ref", "release_diff", "showroom_namespace"]
DIGEST = "0123456789abcdef" * 4

PLAYBOOK = """
- name: Use every Slipway filter
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    showroom: "{{ 'Feature/Checkout' | slipway.platform.dns_label }}"
    older: {revision: 1, context: local, outcome: succeeded,
            systems: {backend: {namespace: shop, images: {backend: "r/backend@sha256:DIGEST"}, manifest_digest: m1}}}
    newer: {revision: 2, context: local, outcome: succeeded, systems: {}}
  tasks:
    - name: Write what the filters return
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0644"
        content: "{{ {'showroom': showroom,
                      'namespace': 'shop' | slipway.platform.showroom_namespace(showroom),
                      'image': lookup('ansible.builtin.file', report) | slipway.platform.image_ref('backend'),
                      'diff': [older, newer] | slipway.platform.release_diff} | to_json }}"

    - name: Ask for an image the report lacks
      ansible.builtin.debug:
        msg: "{{ lookup('ansible.builtin.file', report) | slipway.platform.image_ref('worker') }}"
""".replace("DIGEST", DIGEST)


def _ansible(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run(list(args), capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=300)


def test_the_filters_work_by_fqcn_in_a_playbook(tmp_path):
    playbook, report, out = tmp_path / "filters.yml", tmp_path / "images-local.json", tmp_path / "out.json"
    playbook.write_text(PLAYBOOK)
    report.write_text(json.dumps({"backend": f"127.0.0.1:5001/backend@sha256:{DIGEST}"}))
    result = _ansible("ansible-playbook", "-i", "localhost,", str(playbook),
                      "-e", f"out={out}", "-e", f"report={report}")
    found = json.loads(out.read_text())
    assert found["showroom"].startswith("feature-checkout-") and len(found["showroom"]) == len("feature-checkout-") + 8
    assert found["namespace"] == f"shop-{found['showroom']}"
    assert found["image"] == f"127.0.0.1:5001/backend@sha256:{DIGEST}"
    assert found["diff"]["removed"] == ["backend"]
    assert found["diff"]["lines"][0] == "local 1 -> local 2: 1 removed"
    # the second task fails, with the filter's name and what the report has
    assert result.returncode != 0
    assert "slipway.platform.image_ref: image 'worker' is not in the build report (it has: backend)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("name", FILTERS)
def test_ansible_doc_documents_each_filter(name):
    result = _ansible("ansible-doc", "-t", "filter", "--json", f"slipway.platform.{name}")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)[f"slipway.platform.{name}"]
    assert doc["doc"]["name"] == name and doc["doc"]["short_description"]
    assert "_input" in doc["doc"]["options"] and doc["examples"] and doc["return"]["_value"]


def test_release_diff_reads_the_records_real_deliveries_wrote(stack_dir, ns, context):
    first, second = (f"127.0.0.1:5001/app@sha256:{digit * 64}" for digit in "12")
    run(stack_dir, [system("app", ns, configmap("app", v="1"), images={"app": first})], context)
    run(stack_dir, [system("app", ns, configmap("app", v="2"), images={"app": second}),
                    system("extra", ns, configmap("extra", v="1"))], context)
    run(stack_dir, [system("app", ns, configmap("app", v="2"), images={"app": second})], context, retire=("extra",))
    records = Journal(client_for(stack_dir, "admin"), context).records()
    assert [r["revision"] for r in records] == [1, 2, 3]

    update = release_diff(records[0], records[1])
    assert (update["added"], update["updated"], update["removed"]) == (["extra"], ["app"], [])
    app = update["systems"]["app"]
    assert app["images"] == {"app": {"from": first, "to": second}}
    assert app["manifests_changed"] and app["objects"]["changed"] == [f"ConfigMap {ns}/app"]
    assert update["lines"][1] == (f"~ app ({ns}): image app 127.0.0.1:5001/app@sha256:111111111111 -> "
                                  "127.0.0.1:5001/app@sha256:222222222222; "
                                  f"manifests changed (ConfigMap {ns}/app changed)")

    retirement = release_diff(records[-2:])
    assert (retirement["removed"], retirement["unchanged"]) == (["extra"], ["app"])
    assert retirement["systems"]["extra"]["objects"]["removed"] == [f"ConfigMap {ns}/extra"]
    assert retirement["lines"] == [f"{context} 2 -> {context} 3: 1 removed", f"- extra ({ns}): retired",
                                   "= unchanged: app"]
