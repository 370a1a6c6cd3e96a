"""The pipeline contract on the real stack (docs/ci.md): each outcome, driven for real through bin/slipway-ci, ends
with its exit code, its result file and its JUnit file; playbooks/release_hold.yml frees an aborted job's hold.

Integrations reuse test_integrate_playbook's job (a context, its inventory, a bare origin whose main moved on, and
the job's work tree); the rolled-back delivery runs the crashloop fixture on the real node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
import yaml
from fixtures.deliver.support import ROOT, context_inventory, grant_namespace, registry_pull_secret, unique
from test_deliver_real_node import real_node, registry  # noqa: F401 # pylint: disable=unused-import
from test_integrate_playbook import GIT_ENV, commit, git, job, lease_holder  # noqa: F401 # pylint: disable=unused-import

CRASHLOOP = ROOT / "tests" / "integration" / "fixtures" / "broken" / "crashloop"
JENKINS = {"JENKINS_URL": "https://ci.example/", "BUILD_URL": "https://ci.example/job/shop/42/", "BUILD_NUMBER": "42",
           "JOB_NAME": "shop", "BUILD_TAG": "jenkins-shop-42"}


def slipway_ci(inventory, book, reports, *args, env=None, detailed=False):
    command = [sys.executable, str(ROOT / "bin" / "slipway-ci"), "--reports", str(reports),
               "--ansible-playbook", str(ROOT / ".venv" / "bin" / "ansible-playbook")]
    command += ["--detailed-exitcode"] if detailed else []
    command += ["--", "-i", str(inventory), str(ROOT / "playbooks" / book), *args]
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "JENKINS_URL", "BUILD_URL", "TEAMCITY_VERSION")}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
                          env=dict(clean, ANSIBLE_NOCOLOR="1", **GIT_ENV, **(env or {})))


def result(reports, context):
    return json.loads((reports / f"result-{context}.json").read_text())


def junit_cases(path):
    root = ET.parse(path).getroot()  # noqa: S314 - our own report
    return {(case.get("classname"), case.get("name")): case for case in root.iter("testcase")}


def status(case):
    return next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")


def test_failing_image_tests_end_as_tests_failed(job, kubectl, tmp_path):  # noqa: F811 - the imported fixture
    description = job["tree"] / "alpha" / "slipway.yml"
    spec = yaml.safe_load(description.read_text())
    spec["tests"]["unit"] = ["sh", "-c", "echo 'unit test failed on purpose'; exit 1"]
    description.write_text(yaml.safe_dump(spec))
    commit(job["tree"], "alpha breaks its unit test", greeting="hi")
    done = slipway_ci(job["inventory"], "integrate.yml", tmp_path / "reports", "-e", "slipway_holder='integration a'")
    assert done.returncode == 11, done.stdout[-3000:] + done.stderr[-2000:]
    found = result(tmp_path / "reports", job["context"])
    assert (found["outcome"], found["failed_step"]) == ("tests_failed", "test")
    assert found["tests"] == [{"system": "alpha", "image": "alpha", "verdict": "failed"}]
    tests = junit_cases(tmp_path / "reports" / f"tests-{job['context']}.xml")
    assert status(tests[("alpha.alpha", "unit")]) == "failure"
    steps = junit_cases(tmp_path / "reports" / f"junit-integrate-{job['context']}.xml")
    assert [status(steps[(step, step)]) for step in ("rebase", "build", "test", "deliver", "merge")] == \
        ["passed", "passed", "error", "skipped", "skipped"]
    assert lease_holder(kubectl, job) is None


def test_a_rebase_conflict_ends_as_integration_conflict(job, kubectl, tmp_path):  # noqa: F811 - the imported fixture
    seed = job["origin"].parent / "seed"
    commit(seed, "main says bonjour", greeting="bonjour")
    git("push", "-q", "origin", "HEAD:main", cwd=seed)
    commit(job["tree"], "the branch says hi", greeting="hi")
    done = slipway_ci(job["inventory"], "integrate.yml", tmp_path / "reports", "-e", "slipway_holder='integration b'")
    assert done.returncode == 15, done.stdout[-3000:] + done.stderr[-2000:]
    found = result(tmp_path / "reports", job["context"])
    assert (found["outcome"], found["failed_step"], found["exit_code"]) == ("integration_conflict", "rebase", 15)
    assert "does not rebase cleanly" in found["msg"]
    steps = junit_cases(tmp_path / "reports" / f"junit-integrate-{job['context']}.xml")
    assert status(steps[("rebase", "rebase")]) == "error"
    assert status(steps[("build", "build")]) == "skipped"
    assert git("status", "--porcelain", cwd=job["tree"]) == ""  # the rebase was aborted
    assert lease_holder(kubectl, job) is None


def hold(kubectl, context, holder, seconds=600):
    """Hold the context's Lease as another job would (the hold annotation of context_lock, a long duration)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": f"slipway-lock-{context}", "namespace": "slipway-system",
                          "annotations": {"slipway.io/hold": "true"}},
             "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds, "acquireTime": now, "renewTime": now}}
    kubectl("apply", "-f", "-", input=json.dumps(lease))


def test_a_held_context_ends_as_lock_not_obtained_and_release_hold_frees_only_its_job(job, kubectl, tmp_path):  # noqa: F811,E501
    hold(kubectl, job["context"], "integration aborted-7")
    done = slipway_ci(job["inventory"], "integrate.yml", tmp_path / "reports", "-e", "slipway_holder='integration c'",
                      "-e", "slipway_integrate_lock_timeout=2")
    assert done.returncode == 14, done.stdout[-3000:] + done.stderr[-2000:]
    found = result(tmp_path / "reports", job["context"])
    assert found["outcome"] == "lock_not_obtained" and "integration aborted-7" in found["msg"]
    cases = junit_cases(tmp_path / "reports" / f"junit-integrate-{job['context']}.xml")
    assert status(cases[("integrate", "integrate")]) == "error"
    assert lease_holder(kubectl, job) == "integration aborted-7"

    def release(holder):
        return subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(job["inventory"]),
                               str(ROOT / "playbooks" / "release_hold.yml"), "-e", f"slipway_holder='{holder}'"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                              env=dict(os.environ, ANSIBLE_NOCOLOR="1"))

    other = release("integration c")  # not its hold: said, not failed, and left to its holder
    assert other.returncode == 0, other.stdout[-2000:]
    assert "is held by integration aborted-7" in other.stdout
    assert lease_holder(kubectl, job) == "integration aborted-7"
    own = release("integration aborted-7")  # the aborted job's final step
    assert own.returncode == 0, own.stdout[-2000:]
    assert "released the hold of integration aborted-7" in own.stdout
    assert lease_holder(kubectl, job) is None
    again = release("integration aborted-7")  # a post-always step that runs twice changes nothing
    assert again.returncode == 0 and "no hold of integration aborted-7 to release" in again.stdout


@pytest.fixture
def crashing(stack_dir, kubectl, registry, real_node, tmp_path):  # noqa: F811 - fixtures imported above
    """An ecosystem of two systems: alpha (a ConfigMap) and the crashloop fixture, on the real node, in a namespace
    of their own with the registry's pull secret; and a context's inventory that builds and delivers them."""
    namespace = grant_namespace(kubectl, unique("t-ci"))
    kubectl("apply", "-f", "-", input=json.dumps(registry_pull_secret(stack_dir, registry, namespace)))
    context = unique("t")
    eco = tmp_path / "eco"
    (eco / "alpha" / "deploy").mkdir(parents=True)
    (eco / "alpha" / "slipway.yml").write_text(yaml.safe_dump(
        {"name": "alpha", "namespace": namespace, "depends_on": [], "images": [], "manifests": "deploy"}))
    (eco / "alpha" / "deploy" / "config.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: alpha}\ndata: {greeting: hello}\n")
    shutil.copytree(CRASHLOOP, eco / "crashloop")
    description = yaml.safe_load((eco / "crashloop" / "slipway.yml").read_text())
    (eco / "crashloop" / "slipway.yml").write_text(yaml.safe_dump(dict(description, namespace=namespace)))
    deployment = eco / "crashloop" / "deploy" / "deployment.yaml.j2"
    # without a readiness probe a container is available the moment it starts; minReadySeconds has it watched
    deployment.write_text(deployment.read_text().replace("  replicas: 1\n", "  replicas: 1\n  minReadySeconds: 10\n"))
    password = (stack_dir / "secrets" / "registry-password").read_text().strip()
    inventory = context_inventory(tmp_path / "inventory", stack_dir, **{
        "slipway_context": context, "slipway_ecosystem_root": str(eco), "slipway_systems": ["alpha"],
        "slipway_registry_username": "slipway", "slipway_registry_password": password,
        "slipway_docker_host": (stack_dir / "docker" / "host").read_text().strip(),
        "slipway_deliver_wait_timeout": 240})
    yield {"namespace": namespace, "context": context, "inventory": inventory}
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    for selector in (f"slipway.io/context={context}", f"slipway.io/snapshot-of={context}"):
        kubectl("delete", "configmaps,secrets", "-n", "slipway-system", "-l", selector, check=False)


@pytest.mark.slow
def test_a_crashing_workload_is_rolled_back_and_ends_as_delivery_failed_rolled_back(crashing, kubectl, tmp_path):
    reports, context, both = tmp_path / "reports", crashing["context"], json.dumps({"slipway_systems":
                                                                                   ["alpha", "crashloop"]})
    first = slipway_ci(crashing["inventory"], "deliver.yml", reports, env=JENKINS)
    assert first.returncode == 0, first.stdout[-3000:]
    assert (result(reports, context)["outcome"], result(reports, context)["revision"]) == ("succeeded", 1)
    again = slipway_ci(crashing["inventory"], "deliver.yml", reports, env=JENKINS, detailed=True)
    assert again.returncode == 10, again.stdout[-3000:]  # nothing_to_do, told apart under --detailed-exitcode
    assert result(reports, context)["outcome"] == "nothing_to_do"

    built = slipway_ci(crashing["inventory"], "build.yml", reports, "-e", '{"slipway_systems": ["crashloop"]}')
    assert built.returncode == 0, built.stdout[-3000:]
    assert status(junit_cases(reports / f"junit-build-{context}.xml")[("build.crashloop", "crashloop")]) == "passed"

    failed = slipway_ci(crashing["inventory"], "deliver.yml", reports, "-e", both, env=JENKINS)
    assert failed.returncode == 12, failed.stdout[-4000:] + failed.stderr[-2000:]
    found = result(reports, context)
    assert (found["outcome"], found["failed_revision"], found["rolled_back_to"], found["revision"]) == \
        ("delivery_failed_rolled_back", 2, 1, 3)
    assert found["ci"] == {"server": "jenkins", "url": JENKINS["BUILD_URL"], "build_number": "42", "job": "shop"}
    cases = junit_cases(reports / f"junit-deliver-{context}.xml")
    crashed = cases[("deliver.crashloop", "crashloop")]
    assert status(crashed) == "failure" and "CrashLoopBackOff" in crashed.find("failure").get("message")
    assert status(cases[("rollback.crashloop", "crashloop")]) == "passed"  # the automatic rollback removed it
    assert kubectl("get", "deployment", "crashloop", "-n", crashing["namespace"], check=False).returncode != 0
    journal = json.loads(kubectl("get", "configmaps", "-n", "slipway-system", "-l", f"slipway.io/context={context}",
                                 "-o", "json").stdout)["items"]
    assert JENKINS["BUILD_URL"] in json.dumps([item["data"] for item in journal])  # actor.ci of every record


def colours(eco, namespace, alpha, beta):
    """An ecosystem of two ConfigMap systems, alpha and beta, each with a colour."""
    for name, colour in (("alpha", alpha), ("beta", beta)):
        (eco / name / "deploy").mkdir(parents=True, exist_ok=True)
        (eco / name / "slipway.yml").write_text(yaml.safe_dump(
            {"name": name, "namespace": namespace, "depends_on": [], "images": [], "manifests": "deploy"}))
        (eco / name / "deploy" / "config.yaml.j2").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{colour: {colour}}}\n")


@pytest.fixture
def no_red(kubectl):
    """``enforce(namespace)``: an admission policy, added between two releases, that refuses red ConfigMaps in the
    namespace from then on (what a new security rule does to an old release)."""
    name = unique("no-red")
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": name},
              "spec": {"failurePolicy": "Fail",
                       "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                               "operations": ["CREATE", "UPDATE"],
                                                               "resources": ["configmaps"]}]},
                       "validations": [{"expression": "!has(object.data) || !('colour' in object.data) || "
                                                      "object.data.colour != 'red'",
                                        "message": "red ConfigMaps are refused since the policy no-red"}]}}

    def enforce(namespace):
        binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                   "metadata": {"name": name},
                   "spec": {"policyName": name, "validationActions": ["Deny"],
                            "matchResources": {"namespaceSelector": {"matchLabels": {
                                "kubernetes.io/metadata.name": namespace}}}}}
        kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]}))
        probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe", "namespace": namespace},
                 "data": {"colour": "red"}}
        for _attempt in range(120):  # the API server compiles a new policy in the background: wait until it refuses
            refused = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False)
            if refused.returncode != 0 and "no-red" in refused.stderr:
                return
            time.sleep(1)
        raise AssertionError(f"the policy {name} never refused a red ConfigMap: {refused.stderr}")

    yield enforce
    kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, "--ignore-not-found",
            check=False)


def error_message(case):
    found = case.find("failure") if case.find("failure") is not None else case.find("error")
    return "" if found is None else f"{found.get('message')}\n{found.text or ''}"


def test_a_rollback_the_api_refuses_ends_as_rollback_failed(stack_dir, kubectl, ns, context, no_red, tmp_path):
    """Release 1 has a red ConfigMap, release 2 not; then a policy refuses red: rollback.yml cannot restore release 1
    (its server-side dry-run is refused, nothing is written) and tells the pipeline a person is needed (exit 13)."""
    eco, reports = tmp_path / "eco", tmp_path / "reports"
    inventory = context_inventory(tmp_path / "inventory", stack_dir, slipway_context=context,
                                  slipway_ecosystem_root=str(eco), slipway_systems=["alpha", "beta"])
    colours(eco, ns, alpha="green", beta="red")
    first = slipway_ci(inventory, "deliver.yml", reports, env=JENKINS)
    assert first.returncode == 0, first.stdout[-3000:]
    colours(eco, ns, alpha="green", beta="blue")
    second = slipway_ci(inventory, "deliver.yml", reports, env=JENKINS)
    assert second.returncode == 0, second.stdout[-3000:]
    assert result(reports, context)["revision"] == 2
    no_red(ns)

    done = slipway_ci(inventory, "rollback.yml", reports, env=JENKINS)
    assert done.returncode == 13, done.stdout[-4000:] + done.stderr[-2000:]
    found = result(reports, context)
    assert (found["playbook"], found["outcome"], found["exit_code"], found["failed_step"]) == \
        ("rollback", "rollback_failed", 13, "rollback")
    assert "system beta" in found["msg"] and "no-red" in found["msg"]
    assert found["ci"]["url"] == JENKINS["BUILD_URL"]
    cases = junit_cases(reports / f"junit-rollback-{context}.xml")
    assert status(cases[("rollback", "rollback")]) == "error"  # it failed before any system was rolled back
    assert "no-red" in error_message(cases[("rollback", "rollback")])
    assert json.loads(kubectl("get", "configmap", "beta", "-n", ns, "-o", "json").stdout)["data"] == \
        {"colour": "blue"}  # still release 2: the refused rollback wrote nothing


@pytest.mark.slow
def test_a_failed_delivery_whose_automatic_rollback_is_refused_ends_as_rollback_failed(crashing, kubectl, no_red,
                                                                                       tmp_path):
    """The case that pages a person: release 2 crashes after it was written, and the automatic rollback to release 1
    is refused by a policy added since; the context is left on the failed release 2 (exit 13)."""
    reports, context = tmp_path / "reports", crashing["context"]
    config = crashing["inventory"].parent / "eco" / "alpha" / "deploy" / "config.yaml.j2"
    config.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: alpha}\ndata: {colour: red}\n")
    first = slipway_ci(crashing["inventory"], "deliver.yml", reports, env=JENKINS)
    assert first.returncode == 0, first.stdout[-3000:]
    built = slipway_ci(crashing["inventory"], "build.yml", reports, "-e", '{"slipway_systems": ["crashloop"]}')
    assert built.returncode == 0, built.stdout[-3000:]
    config.write_text(config.read_text().replace("red", "blue"))
    no_red(crashing["namespace"])

    failed = slipway_ci(crashing["inventory"], "deliver.yml", reports, "-e",
                        json.dumps({"slipway_systems": ["alpha", "crashloop"]}), env=JENKINS)
    assert failed.returncode == 13, failed.stdout[-4000:] + failed.stderr[-2000:]
    found = result(reports, context)
    assert (found["outcome"], found["failed_step"], found["failed_revision"]) == ("rollback_failed", "deliver", 2)
    assert "no-red" in found["msg"]
    cases = junit_cases(reports / f"junit-deliver-{context}.xml")
    assert status(cases[("deliver.crashloop", "crashloop")]) == "failure"
    refused = [case for key, case in cases.items() if key[0].startswith("rollback") and status(case) != "passed"]
    assert refused and any("no-red" in error_message(case) for case in refused), list(cases)
    live = json.loads(kubectl("get", "configmap", "alpha", "-n", crashing["namespace"], "-o", "json").stdout)
    assert live["data"] == {"colour": "blue"}  # release 2's: the context is between releases


def test_a_provisioning_playbook_is_reported_per_host_from_its_recap(tmp_path):
    """provision.yml runs on every node: slipway-ci's callback reports it from the play recap, one JUnit case per
    host. A stand-in for playbooks/provision.yml (issue 13) runs on two nodes, one of which cannot be reached."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "group_vars" / "all" / "context.yml").write_text(yaml.safe_dump({"slipway_context": "lab"}))
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"kube_node": {"hosts": {
        "node-a": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "node-b": {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "nobody"}}}}}}))
    playbook = tmp_path / "playbooks" / "provision.yml"
    playbook.parent.mkdir()
    playbook.write_text(yaml.safe_dump([{"name": "Prepare the nodes", "hosts": "kube_node", "gather_facts": False,
                                         "tasks": [{"name": "Write the node's marker", "ansible.builtin.copy": {
                                             "dest": str(tmp_path / "{{ inventory_hostname }}.marker"),
                                             "content": "provisioned\n"}}]}]))
    reports = tmp_path / "reports"

    def provision(*args, detailed=False):
        command = [sys.executable, str(ROOT / "bin" / "slipway-ci"), "--reports", str(reports),
                   "--ansible-playbook", str(ROOT / ".venv" / "bin" / "ansible-playbook")]
        command += ["--detailed-exitcode"] if detailed else []
        return subprocess.run([*command, "--", "-i", str(inventory), str(playbook), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=False,
                              env=dict(os.environ, ANSIBLE_NOCOLOR="1", **JENKINS))

    first = provision()
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-2000:]
    found = result(reports, "lab")
    assert (found["playbook"], found["outcome"], found["failed_step"]) == ("provision", "failed", "provision")
    assert [(row["host"], row["result"]) for row in found["hosts"]] == \
        [("node-a", "changed"), ("node-b", "unreachable")]
    assert found["ci"]["url"] == JENKINS["BUILD_URL"]
    cases = junit_cases(reports / "junit-provision-lab.xml")
    assert (status(cases[("provision.node-a", "node-a")]), status(cases[("provision.node-b", "node-b")])) == \
        ("passed", "error")
    assert "127.0.0.1" in error_message(cases[("provision.node-b", "node-b")])
    again = provision("--limit", "node-a", detailed=True)
    assert again.returncode == 10, again.stdout[-3000:] + again.stderr[-2000:]  # nothing changed on node-a
    assert result(reports, "lab")["outcome"] == "nothing_to_do"
    assert "TASKS RECAP" in again.stdout  # ansible.cfg's own callback (profile_tasks) still runs beside ours


def test_the_provision_playbook_with_nodes_it_cannot_reach_fails_with_a_case_per_node(tmp_path):
    """The real playbooks/provision.yml through slipway-ci, on nodes that do not answer (127.0.0.1, a closed port):
    nothing is changed, and each node is its own failed case."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "group_vars" / "all" / "context.yml").write_text(yaml.safe_dump({"slipway_context": "lab"}))
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "nobody"},
        "children": {"kube_control_plane": {"hosts": {"cp-1": None}}, "etcd": {"hosts": {"cp-1": None}},
                     "kube_node": {"hosts": {"worker-1": None, "worker-2": None}}}}}))
    reports = tmp_path / "reports"
    done = subprocess.run([sys.executable, str(ROOT / "bin" / "slipway-ci"), "--reports", str(reports),
                           "--ansible-playbook", str(ROOT / ".venv" / "bin" / "ansible-playbook"), "--",
                           "-i", str(inventory), str(ROOT / "playbooks" / "provision.yml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    found = result(reports, "lab")
    assert (found["playbook"], found["outcome"]) == ("provision", "failed")
    assert [(row["host"], row["result"]) for row in found["hosts"]] == \
        [("cp-1", "unreachable"), ("worker-1", "unreachable"), ("worker-2", "unreachable")]
    cases = junit_cases(reports / "junit-provision-lab.xml")
    assert {key: status(case) for key, case in cases.items()} == {
        ("provision.cp-1", "cp-1"): "error", ("provision.worker-1", "worker-1"): "error",
        ("provision.worker-2", "worker-2"): "error"}
