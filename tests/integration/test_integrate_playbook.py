"""playbooks/integrate.yml end to end: rebase -> build -> test -> deliver -> merge under one hold of the context.

The ecosystem lives in a git work tree whose origin is a local bare repository; the target branch moves ahead of
the job's branch before the integration, so the rebase is real. Nothing is pushed anywhere but that bare repository.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml
from fixtures.deliver.support import ROOT, context_inventory, grant_namespace, unique

TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ system.name }}-config
data:
  greeting: "GREETING"
"""
CATEGORIES = ("unit", "functional", "style", "duplication", "outdated", "licences")
GIT_ENV = {"GIT_AUTHOR_NAME": "Slipway tests", "GIT_AUTHOR_EMAIL": "tests@slipway.invalid",
           "GIT_COMMITTER_NAME": "Slipway tests", "GIT_COMMITTER_EMAIL": "tests@slipway.invalid"}


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env=dict(os.environ, **GIT_ENV)).stdout.strip()


def commit(tree, message, greeting=None, extra=None):
    if greeting is not None:
        (tree / "alpha" / "deploy" / "app.yaml.j2").write_text(TEMPLATE.replace("GREETING", greeting))
    for name, text in (extra or {}).items():
        (tree / name).write_text(text)
    git("add", "-A", cwd=tree)
    git("commit", "-q", "-m", message, cwd=tree)


@pytest.fixture
def job(stack_dir, kubectl, tmp_path):
    """A context, its inventory, a bare origin whose main moved on, and the job's work tree on a branch behind it."""
    namespace = grant_namespace(kubectl, unique("t-integrate"))
    context = unique("t")
    origin, seed, tree = tmp_path / "origin.git", tmp_path / "seed", tmp_path / "work"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    git("clone", "-q", str(origin), str(seed), cwd=tmp_path)
    (seed / "alpha" / "deploy").mkdir(parents=True)
    (seed / "alpha" / "slipway.yml").write_text(yaml.safe_dump(
        {"name": "alpha", "namespace": namespace, "depends_on": [], "manifests": "deploy",
         "images": [{"name": "alpha", "context": "."}], "tests": {category: ["true"] for category in CATEGORIES}}))
    (seed / "alpha" / "Dockerfile").write_text('FROM slipway/busybox:stable\nCMD ["sleep", "3600"]\n')
    commit(seed, "alpha says hello", greeting="hello")
    git("push", "-q", "origin", "HEAD:main", cwd=seed)
    git("clone", "-q", str(origin), str(tree), cwd=tmp_path)
    git("checkout", "-q", "-b", "feature", cwd=tree)
    commit(seed, "someone else's change lands first", extra={"NOTES": "unrelated\n"})
    git("push", "-q", "origin", "HEAD:main", cwd=seed)
    inventory = context_inventory(tmp_path / "inventory", stack_dir, **{
        "slipway_context": context, "slipway_ecosystem_root": str(tree), "slipway_systems": ["alpha"],
        "slipway_reports_dir": str(tmp_path / "reports"), "slipway_registry_username": "slipway",
        "slipway_registry_password": (stack_dir / "secrets" / "registry-password").read_text().strip(),
        "slipway_docker_host": (stack_dir / "docker" / "host").read_text().strip(),
        "slipway_deliver_wait_timeout": 60, "slipway_integrate_repositories": [{"path": str(tree)}]})
    yield {"namespace": namespace, "context": context, "inventory": inventory, "origin": origin, "tree": tree}
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    for selector in (f"slipway.io/context={context}", f"slipway.io/snapshot-of={context}"):
        kubectl("delete", "configmaps,secrets", "-n", "slipway-system", "-l", selector, check=False)
    kubectl("delete", "lease", f"slipway-lock-{context}", "-n", "slipway-system", "--ignore-not-found", check=False)


def integrate(job, holder):
    return subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(job["inventory"]),
                           str(ROOT / "playbooks" / "integrate.yml"), "-e", f"slipway_holder='{holder}'"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", **GIT_ENV))


def greeting(kubectl, job):
    found = kubectl("get", "configmap", "alpha-config", "-n", job["namespace"], "-o", "json", check=False)
    return json.loads(found.stdout)["data"]["greeting"] if found.returncode == 0 else None


def lease_holder(kubectl, job):
    lease = json.loads(kubectl("get", "lease", f"slipway-lock-{job['context']}", "-n", "slipway-system", "-o",
                               "json").stdout)
    return lease["spec"].get("holderIdentity")


def test_an_integration_rebases_delivers_and_merges_under_one_hold(job, kubectl):
    commit(job["tree"], "alpha says hi", greeting="hi")
    done = integrate(job, "integration job-1")
    assert done.returncode == 0, done.stdout[-3000:]
    assert greeting(kubectl, job) == "hi"
    merged = git("log", "--format=%s", "main", cwd=job["origin"]).splitlines()
    assert merged == ["alpha says hi", "someone else's change lands first", "alpha says hello"]  # rebased, then pushed
    assert lease_holder(kubectl, job) is None  # the next job gets in
    journal = json.loads(kubectl("get", "configmaps", "-n", "slipway-system", "-l",
                                 f"slipway.io/context={job['context']}", "-o", "json").stdout)["items"]
    assert len(journal) == 1 and "integration job-1" in json.dumps(journal[0]["data"])


def test_a_failed_delivery_is_rolled_back_and_nothing_is_merged(job, kubectl):
    commit(job["tree"], "alpha says hi", greeting="hi")
    assert integrate(job, "integration job-1").returncode == 0
    (job["tree"] / "alpha" / "deploy" / "broken.yaml.j2").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\nspec:\n  replicas: 1\n"
        "  selector: {matchLabels: {app: broken}}\n  progressDeadlineSeconds: 3\n  template:\n"
        "    metadata: {labels: {app: broken}}\n    spec:\n      nodeSelector: {slipway.io/nowhere: 'true'}\n"
        "      containers: [{name: app, image: 127.0.0.1:5001/none:1}]\n")
    commit(job["tree"], "alpha grows a broken deployment", greeting="broken")
    before = git("rev-parse", "main", cwd=job["origin"])
    done = integrate(job, "integration job-2")
    assert done.returncode != 0
    assert "Rolled back automatically" in done.stdout
    assert greeting(kubectl, job) == "hi"  # the previous release again
    assert git("rev-parse", "main", cwd=job["origin"]) == before  # not merged
    assert lease_holder(kubectl, job) is None  # released on failure too


def test_a_conflicting_rebase_is_aborted_before_anything_is_built_or_delivered(job, kubectl):
    commit(job["tree"], "alpha says hi", greeting="hi")
    seed = job["tree"].parent / "seed"
    commit(seed, "alpha says hey upstream", greeting="hey")
    git("push", "-q", "origin", "HEAD:main", cwd=seed)
    head = git("rev-parse", "HEAD", cwd=job["tree"])
    done = integrate(job, "integration job-3")
    assert done.returncode != 0
    assert "does not rebase cleanly on origin/main (the rebase was aborted" in done.stdout
    assert git("rev-parse", "HEAD", cwd=job["tree"]) == head and git("status", "--porcelain", cwd=job["tree"]) == ""
    assert greeting(kubectl, job) is None  # nothing delivered
    assert lease_holder(kubectl, job) is None


def test_a_merge_that_fails_rolls_the_delivery_back(job, kubectl):
    commit(job["tree"], "alpha says hi", greeting="hi")
    assert integrate(job, "integration job-1").returncode == 0
    hook = job["origin"] / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    commit(job["tree"], "alpha says hallo", greeting="hallo")
    done = integrate(job, "integration job-4")
    assert done.returncode != 0
    assert "The merge failed" in done.stdout and "main is frozen" in done.stdout
    assert greeting(kubectl, job) == "hi"  # the delivered "hallo" was rolled back
    assert lease_holder(kubectl, job) is None
