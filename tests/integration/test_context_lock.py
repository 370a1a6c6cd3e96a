"""A job holds a context across its steps (slipway.platform.context_lock) on the real API server.

Its own deliveries run inside the hold and hand the lock back; another job's delivery waits for it and fails naming
it; only the job releases it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fixtures.deliver.support import ROOT, SlipwayError, configmap, run, system


def lock_task(stack_dir, context, holder, *flags, **options):
    """The module run ad hoc as the deployer, the way a playbook task runs it; returns (rc, result)."""
    pki = stack_dir / "pki"
    args = {"context": context, "holder": holder, "api_url": "https://127.0.0.1:6443", "ca_cert": str(pki / "ca.crt"),
            "client_cert": str(pki / "deployer.crt"), "client_key": str(pki / "deployer.key"), **options}
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible"), "localhost", "-c", "local", "-e",
                           f"ansible_python_interpreter={sys.executable}", "-m", "slipway.platform.context_lock",
                           "-a", json.dumps(args), *flags], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"), check=False)
    output = done.stdout
    body = output[output.index("=> {") + 3:] if "=> {" in output else "{}"
    return done.returncode, dict(json.loads(body[:body.rindex("}") + 1]), shown=output)


def lease(kubectl, context):
    return json.loads(kubectl("get", "lease", f"slipway-lock-{context}", "-n", "slipway-system", "-o", "json").stdout)


def test_a_job_holds_the_context_across_its_steps_and_only_it_releases_it(stack_dir, ns, context, kubectl):
    rc, held = lock_task(stack_dir, context, "job A", "--diff", duration=300)
    assert rc == 0 and held["changed"] and held["was"] is None and held["expires_in"] == 300
    assert f"+++ after: lock of context {context}" in held["shown"] and "+holder: job A" in held["shown"]
    rc, again = lock_task(stack_dir, context, "job A", duration=300)
    assert rc == 0 and again["changed"] is False and again["was"] == "job A"

    # another job's delivery waits for the hold, then fails naming it, before writing anything
    with pytest.raises(SlipwayError, match=f"context {context} is locked by job A"):
        run(stack_dir, [system("app", ns, configmap("app", v="1"))], context, holder="job B", lock_timeout=2)
    rc, refused = lock_task(stack_dir, context, "job B", "--check")
    assert rc != 0 and "locked by job A" in refused["msg"]

    # the job's own delivery runs inside the hold and hands the lock back to the job
    delivered = run(stack_dir, [system("app", ns, configmap("app", v="1"))], context, holder="job A",
                    lock_timeout=2)[0]
    assert delivered["changed"] and delivered["recorded"]
    after = lease(kubectl, context)
    assert after["spec"]["holderIdentity"] == "job A" and after["spec"]["leaseDurationSeconds"] == 300
    assert after["metadata"]["annotations"]["slipway.io/hold"] == "true"

    rc, wrong = lock_task(stack_dir, context, "job B", state="released")
    assert rc != 0 and "held by job A" in wrong["msg"] and "nothing was changed" in wrong["msg"]
    rc, predicted = lock_task(stack_dir, context, "job A", "--check", state="released")
    assert rc == 0 and predicted["changed"] and lease(kubectl, context)["spec"]["holderIdentity"] == "job A"
    rc, released = lock_task(stack_dir, context, "job A", state="released")
    assert rc == 0 and released["changed"] and released["was"] == "job A"
    freed = lease(kubectl, context)
    assert freed["spec"].get("holderIdentity") is None
    assert "slipway.io/hold" not in freed["metadata"].get("annotations", {})
    rc, twice = lock_task(stack_dir, context, "job A", state="released")
    assert rc == 0 and twice["changed"] is False

    # the next job gets in at once
    assert run(stack_dir, [system("app", ns, configmap("app", v="2"))], context, holder="job B",
               lock_timeout=2)[0]["changed"]
