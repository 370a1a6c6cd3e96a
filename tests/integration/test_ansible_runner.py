"""deliver.yml through ansible-runner, the way AWX runs a job (docs/ci.md, "ansible-runner and AWX"): a
private_data_dir with project/ (the meta-project's playbooks and ansible.cfg, and the ecosystem), inventory/ (the
context's, its connection vault-encrypted), env/extravars, env/envvars, and the vault password answered at ansible's
prompt from env/passwords as AWX does. Run with the pip ansible-runner on this host, then in the execution
environment (hack/ee-build.sh) with --process-isolation: each run's artifacts hold the pipeline's result file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fixtures.deliver.support import ROOT, context_inventory, grant_namespace, unique

EE_BUILD = ROOT / "hack" / "ee-build.sh"
VAULT_PASSWORD = "runner's vault password"
IDENT = "job-1"
# where the result lands: the run's own artifacts folder, relative to the playbook so that the same extravars hold
# on this host and in the container (where the private_data_dir is /runner)
REPORTS = f"{{{{ playbook_dir }}}}/../../artifacts/{IDENT}/reports"


def build(*args, timeout=1800):
    done = subprocess.run(["bash", str(EE_BUILD), *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def runner():
    """The pip ansible-runner (hack/ee-build.sh installs the version it pins)."""
    return Path(build("--tools")) / "ansible-runner"


def encrypt(path, password):
    """ansible-vault encrypt ``path`` in place: the inventory is unreadable without the vault password."""
    secret = path.parent / ".vault-password"
    secret.write_text(password)
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-vault"), "encrypt", "--vault-password-file",
                           str(secret), str(path)], capture_output=True, text=True, check=False)
    secret.unlink()
    assert done.returncode == 0, done.stderr


@pytest.fixture
def job(stack_dir, kubectl, tmp_path):
    """An AWX-style private_data_dir delivering one system (a ConfigMap) to a context of its own on the stack."""
    namespace = grant_namespace(kubectl, unique("t-runner"))
    context = unique("t")
    data = tmp_path / "pdd"
    project = data / "project"
    shutil.copytree(ROOT / "playbooks", project / "playbooks")
    shutil.copy(ROOT / "ansible.cfg", project / "ansible.cfg")
    (project / "ecosystem" / "alpha" / "deploy").mkdir(parents=True)
    (project / "ecosystem" / "alpha" / "slipway.yml").write_text(yaml.safe_dump(
        {"name": "alpha", "namespace": namespace, "depends_on": [], "images": [], "manifests": "deploy"}))
    (project / "ecosystem" / "alpha" / "deploy" / "config.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: alpha}\ndata: {greeting: from-runner}\n")
    inventory = context_inventory(data / "inventory", stack_dir, slipway_context=context, slipway_systems=["alpha"],
                                  slipway_ecosystem_root="{{ playbook_dir }}/../ecosystem")
    encrypt(inventory / "group_vars" / "all" / "context.yml", VAULT_PASSWORD)
    env = data / "env"
    env.mkdir()
    (env / "extravars").write_text(yaml.safe_dump({"slipway_reports_dir": REPORTS}))
    # AWX asks ansible for the vault password and answers the prompt from its credential, never writing a file
    (env / "passwords").write_text(yaml.safe_dump({r"^Vault password:\s*?$": VAULT_PASSWORD}))
    (env / "cmdline").write_text("--ask-vault-pass")
    yield {"data": data, "context": context, "namespace": namespace, "env": env}
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    for selector in (f"slipway.io/context={context}", f"slipway.io/snapshot-of={context}"):
        kubectl("delete", "configmaps,secrets", "-n", "slipway-system", "-l", selector, check=False)


def run(runner, job, envvars, *options):
    (job["env"] / "envvars").write_text(yaml.safe_dump(dict(envvars, ANSIBLE_NOCOLOR="1")))
    done = subprocess.run([str(runner), "run", str(job["data"]), "-p", "playbooks/deliver.yml", "--ident", IDENT,
                           *options], capture_output=True, text=True, timeout=900, check=False)
    artifacts = job["data"] / "artifacts" / IDENT
    return done, artifacts


def assert_delivered(done, artifacts, job, kubectl):
    stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else done.stdout
    assert done.returncode == 0, stdout[-4000:] + done.stderr[-2000:]
    assert (artifacts / "rc").read_text() == "0"
    assert (artifacts / "status").read_text() == "successful"
    found = json.loads((artifacts / "reports" / f"result-{job['context']}.json").read_text())
    assert (found["playbook"], found["outcome"], found["exit_code"], found["revision"]) == \
        ("deliver", "succeeded", 0, 1)
    assert [row["system"] for row in found["systems"]] == ["alpha"]
    assert (artifacts / "reports" / f"junit-deliver-{job['context']}.xml").exists()
    live = json.loads(kubectl("get", "configmap", "alpha", "-n", job["namespace"], "-o", "json").stdout)
    assert live["data"] == {"greeting": "from-runner"}
    events = [json.loads(path.read_text()) for path in (artifacts / "job_events").glob("*.json")]
    stats = [event for event in events if event.get("event") == "playbook_on_stats"]
    assert stats and stats[0]["event_data"]["failures"] == {}


def test_ansible_runner_delivers_and_its_artifacts_hold_the_result_file(runner, job, kubectl):
    done, artifacts = run(runner, job, {"ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".stack" / "collections"),
                                        "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin"})
    assert_delivered(done, artifacts, job, kubectl)


def test_a_wrong_vault_password_fails_before_anything_is_delivered(runner, job, kubectl):
    (job["env"] / "passwords").write_text(yaml.safe_dump({r"^Vault password:\s*?$": "not the password"}))
    done, artifacts = run(runner, job, {"ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".stack" / "collections"),
                                        "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin"})
    assert done.returncode != 0 and (artifacts / "status").read_text() == "failed"
    assert "Decryption failed" in (artifacts / "stdout").read_text()
    assert kubectl("get", "configmap", "alpha", "-n", job["namespace"], check=False).returncode != 0


@pytest.mark.slow
def test_ansible_runner_in_the_execution_environment_delivers_through_the_stack(runner, job, kubectl, stack_dir):
    image = build()  # cached by content: a second build with nothing changed builds nothing
    # the Kube API listens on the host's 127.0.0.1: the job's container shares the host's network, and sees the
    # context's certificates where the inventory says they are
    pki = stack_dir / "pki"
    done, artifacts = run(runner, job, {"ANSIBLE_COLLECTIONS_PATH": "/usr/share/ansible/collections"},
                          "--process-isolation", "--process-isolation-executable", "docker",
                          "--container-image", image, "--container-option=--network=host",
                          "--container-volume-mount", f"{pki}:{pki}:ro")
    assert_delivered(done, artifacts, job, kubectl)
    inside = (artifacts / "command").read_text()
    assert image in inside and "docker" in inside  # it really ran in the execution environment's container
