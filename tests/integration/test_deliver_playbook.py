"""playbooks/deliver.yml end to end: render on the controller, deliver, report; secrets never leak (R5/R6)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from fixtures.deliver.support import context_inventory, grant_namespace, unique

ROOT = Path(__file__).resolve().parents[2]
REUSED = "1 system(s) with unchanged inputs reuse the objects their last release applied"
TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ system.name }}-config
data:
  greeting: "{{ values.greeting | default('hello') }}"
  context: "{{ context }}"
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ system.name }}-secret
stringData:
  token: "{{ alpha_token }}"
---
# an empty document: skipped
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ system.name }}
spec:
  replicas: {{ values.replicas | default(1) }}
  selector:
    matchLabels: {app: {{ system.name }}}
  template:
    metadata:
      labels: {app: {{ system.name }}}
    spec:
      nodeSelector: {slipway.io/node-kind: simulated}
      containers:
        - name: app
          image: "{{ images.alpha }}"
          envFrom:
            - secretRef: {name: {{ system.name }}-secret}
"""


@pytest.fixture
def setup(stack_dir, kubectl, tmp_path):
    namespace = grant_namespace(kubectl, unique("t-play"))
    context = unique("t")
    eco = tmp_path / "eco"
    (eco / "alpha" / "deploy").mkdir(parents=True)
    (eco / "alpha" / "slipway.yml").write_text(yaml.safe_dump(
        {"name": "alpha", "namespace": namespace, "depends_on": [], "images": [{"name": "alpha", "context": "."}],
         "manifests": "deploy"}))
    (eco / "alpha" / "deploy" / "app.yaml.j2").write_text(TEMPLATE)
    inventory = context_inventory(tmp_path / "inventory", stack_dir, **{
        "slipway_context": context, "slipway_ecosystem_root": str(eco), "slipway_systems": ["alpha"],
        "slipway_system_tags": {"alpha": "v1"}, "slipway_system_values": {"alpha": {"greeting": "hi"}},
        "slipway_reports_dir": str(tmp_path / "reports"), "slipway_deliver_wait_timeout": 90})
    yield {"namespace": namespace, "context": context, "inventory": inventory, "tmp": tmp_path}
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def playbook(setup, *args, token, book="deliver.yml"):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(setup["inventory"]),
                           str(ROOT / "playbooks" / book), "-e", f"alpha_token={token}", *args],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300, check=False)


def recap_changed(output):
    line = next(line for line in output.splitlines() if line.startswith("localhost") and "changed=" in line)
    return int(line.split("changed=")[1].split()[0])


def everything_stored(kubectl, namespace, context):
    objects = kubectl("get", "configmaps,secrets,deployments", "-n", namespace, "-o", "json").stdout
    journal = kubectl("get", "configmaps", "-n", "slipway-system", "-l", f"slipway.io/context={context}",
                      "-o", "json").stdout
    metadata = [i["metadata"] for i in json.loads(objects)["items"]]
    return json.dumps(metadata) + journal


def test_playbook_delivers_reports_and_never_leaks_a_secret(setup, kubectl):
    first_token, second_token = "SENTINEL-4f1e-alpha", "SENTINEL-9d2c-bravo"
    ns, context = setup["namespace"], setup["context"]

    checked = playbook(setup, "--check", "--diff", token=first_token)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert kubectl("get", "configmap", "alpha-config", "-n", ns, check=False).returncode != 0

    first = playbook(setup, "-vvv", "--diff", token=first_token)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert recap_changed(first.stdout) == 1
    assert "slipway: alpha: ready" in output  # progress line
    assert "system  image" in output and "127.0.0.1:5001/alpha:v1" in output  # the summary table
    config = json.loads(kubectl("get", "configmap", "alpha-config", "-n", ns, "-o", "json").stdout)
    assert config["data"] == {"greeting": "hi", "context": context}

    second = playbook(setup, "-vvv", "--diff", token=first_token)
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap_changed(second.stdout) == 0
    assert REUSED in second.stdout  # nothing it renders from changed: the stored objects of release 1, not rendered

    third = playbook(setup, "-vvv", "--diff", token=second_token)
    assert third.returncode == 0, third.stdout + third.stderr
    assert recap_changed(third.stdout) == 1  # only the secret value changed, and it counts
    assert REUSED not in third.stdout  # a variable its template names changed: rendered
    assert "<redacted hmac:" in third.stdout

    for run in (checked, first, second, third):
        assert "SENTINEL" not in run.stdout + run.stderr
    assert "SENTINEL" not in everything_stored(kubectl, ns, context)
    stored = everything_stored(kubectl, ns, context)
    for token in (first_token, second_token):
        assert base64.b64encode(token.encode()).decode() not in stored


def test_reused_objects_are_still_compared_with_the_live_ones_and_a_hand_edit_is_undone(setup, kubectl):
    """Inputs unchanged, objects reused from the journal: the plan still reads the live objects, so an edit made by
    hand is found and undone; the record keeps the inputs only keyed (32 hex digits, not the 64 of a SHA-256)."""
    ns, context = setup["namespace"], setup["context"]
    first = playbook(setup, token="SENTINEL-77aa")
    assert first.returncode == 0, first.stdout + first.stderr
    kubectl("patch", "configmap", "alpha-config", "-n", ns, "--type=merge", "-p", '{"data": {"greeting": "by hand"}}')
    again = playbook(setup, "--diff", token="SENTINEL-77aa")
    assert again.returncode == 0, again.stdout + again.stderr
    assert REUSED in again.stdout and recap_changed(again.stdout) == 1
    config = json.loads(kubectl("get", "configmap", "alpha-config", "-n", ns, "-o", "json").stdout)
    assert config["data"]["greeting"] == "hi"
    assert "SENTINEL" not in again.stdout + again.stderr
    records = json.loads(kubectl("get", "configmaps", "-n", "slipway-system", "-l", f"slipway.io/context={context}",
                                 "-o", "json").stdout)["items"]
    latest = max(records, key=lambda item: int(item["metadata"]["labels"]["slipway.io/revision"]))
    inputs = json.loads(latest["data"]["release.json"])["systems"]["alpha"]["inputs"]
    assert len(inputs) == 32 and int(inputs, 16) >= 0


def test_production_is_refused_without_confirmation(setup):
    result = playbook(setup, "-e", "slipway_context=production", token="x")
    assert result.returncode != 0
    assert "slipway_production_confirmed=true" in result.stdout


def test_rollback_playbook_restores_a_release_and_retire_takes_a_system_out(setup, kubectl):
    ns = setup["namespace"]
    for word in ("one", "two"):
        values = json.dumps({"slipway_system_values": {"alpha": {"greeting": word}}})
        done = playbook(setup, "-e", values, token="t0ken-value")
        assert done.returncode == 0, done.stdout + done.stderr

    back = playbook(setup, "-e", "slipway_rollback_revision=1", "-e", "slipway_rollback_reason=test",
                    token="unused", book="rollback.yml")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "rolled back from release 2 to 1 (recorded as revision 3)" in back.stdout
    config = json.loads(kubectl("get", "configmap", "alpha-config", "-n", ns, "-o", "json").stdout)
    assert config["data"]["greeting"] == "one"

    nothing = playbook(setup, "-e", '{"slipway_systems": []}', token="t0ken-value")
    assert nothing.returncode != 0 and "systems must be a non-empty list" in nothing.stdout
    retired = playbook(setup, "-e", '{"slipway_systems": [], "slipway_retire": ["alpha"]}', token="t0ken-value")
    assert retired.returncode == 0, retired.stdout + retired.stderr
    assert "slipway: alpha: retired (3 object(s) deleted)" in retired.stdout
    assert kubectl("get", "configmaps,secrets,deployments", "-n", ns, "-l", "slipway.io/system=alpha",
                   "-o", "name").stdout.strip() == ""


def read_journal_with_release_info(setup, **options):
    """Run slipway.platform.release_info as a playbook task with the context's connection; return its result."""
    out = setup["tmp"] / "release_info.json"
    book = setup["tmp"] / "release_info.yml"
    connection = {"context": "{{ slipway_context }}", "api_url": "{{ slipway_kube_api_url }}",
                  "ca_cert": "{{ slipway_kube_ca_cert }}", "client_cert": "{{ slipway_kube_client_cert }}",
                  "client_key": "{{ slipway_kube_client_key }}"}
    tasks = [{"name": "Read it", "slipway.platform.release_info": dict(connection, **options), "register": "info",
              "ignore_errors": True},
             {"name": "Keep it", "ansible.builtin.copy": {"content": "{{ info | to_json }}", "dest": str(out)}}]
    book.write_text(yaml.safe_dump([{"name": "Read the journal", "hosts": "localhost", "gather_facts": False,
                                     "tasks": tasks}]))
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(setup["inventory"]), str(book)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def test_release_info_tells_what_runs_what_ran_and_who_holds_the_lock(setup, kubectl):
    context = setup["context"]
    for word in ("one", "two"):
        done = playbook(setup, "-e", json.dumps({"slipway_system_values": {"alpha": {"greeting": word}}}),
                        token="t0ken-value")
        assert done.returncode == 0, done.stdout + done.stderr

    info = read_journal_with_release_info(setup, revision=1, history=1)
    assert not info.get("failed") and info["changed"] is False
    assert (info["latest"]["revision"], info["latest"]["outcome"]) == (2, "succeeded")
    assert info["last_good"]["revision"] == 2 and info["latest"]["context"] == context
    assert [r["revision"] for r in info["releases"]] == [2]  # history: the newest one
    assert info["release"]["revision"] == 1
    assert info["release"]["systems"]["alpha"]["images"] == {"alpha": "127.0.0.1:5001/alpha:v1"}
    assert info["lock"]["holder"] is None and info["lock"]["renewed"]  # taken by the deliveries, then freed
    every = read_journal_with_release_info(setup, history=0)
    assert [r["revision"] for r in every["releases"]] == [1, 2]
    assert all("t0ken-value" not in json.dumps(r) for r in every["releases"])  # secrets never reach the journal
