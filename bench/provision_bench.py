#!/usr/bin/env python3
"""Provisioning benchmark (issue 13): bare lab machines to a Kubernetes cluster with playbooks/provision.yml.

(a) cold provisioning of 1 control-plane/etcd machine + 2 workers, from bare machines (hack/lab.py down + up;
    binaries already built and packages cached, as the issue states)
(b) the idempotent re-run                 -- must report changed=0 on every host
(c) adding one worker with --limit        -- must change nothing on the existing hosts

Printed beside kubespray's figures as the issue quotes them from its users (a 7-node cluster ~22 minutes; adding a
node costs a whole run; a second run still reports ~30 changed tasks per node). Those figures come from the
issue's text, not from a kubespray run on this machine.
Targets on this 2-core machine: (a) <= 5 min, (b) <= 45 s with changed=0, (c) <= 2 min with zero changes elsewhere.

Run with the stack up: `.venv/bin/python bench/provision_bench.py [--keep-lab]`. It takes the lab down first
(every lab machine is wiped): do not run it while someone else uses the lab.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from fixtures.provision.support import (  # noqa: E402
    LAB,
    dns_image,
    lab,
    lab_up,
    machine,
    playbook,
    ready_nodes,
    write_lab_vars,
)

KUBESPRAY = {
    "cold": "~22 min for 7 nodes (its users, quoted in issue 13)",
    "rerun": "a whole run, ~30 changed tasks per node (idempotency issue open since 2017)",
    "add": "a whole run of every host (scale.yml still gathers and touches all)",
}


def measure(name: str, *args: str, extra_vars: Path) -> dict:
    run = playbook("provision.yml", *args, extra_vars=extra_vars)
    # The whole output, with ansible.cfg's profile_tasks (and profile_roles when ANSIBLE_CALLBACKS_ENABLED asks for
    # it), is where the time went: kept beside the lab for docs/benchmarks.md.
    (LAB / f"bench-{name.replace(' ', '-')}.log").write_text(run.output)
    if run.returncode != 0:
        raise SystemExit(f"{name}: provision.yml failed:\n{run.output[-4000:]}")
    return {"seconds": round(run.seconds, 1), "changed": run.changed_hosts(), "hosts": sorted(run.recap)}


@contextlib.contextmanager
def mitogen_strategy():
    """The playbook runs inside use Mitogen's strategy: one persistent Python on each host instead of a new one
    per task (kubespray documented the same option for its long re-runs)."""
    import ansible_mitogen  # noqa: PLC0415 - only this option needs it

    saved = {name: os.environ.get(name) for name in ("ANSIBLE_STRATEGY_PLUGINS", "ANSIBLE_STRATEGY",
                                                  "ANSIBLE_HOST_KEY_CHECKING")}
    os.environ["ANSIBLE_STRATEGY_PLUGINS"] = str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy")
    os.environ["ANSIBLE_STRATEGY"] = "mitogen_linear"
    # Mitogen applies host_key_checking itself; the lab's machines get new host keys every time they are made.
    os.environ["ANSIBLE_HOST_KEY_CHECKING"] = "False"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-lab", action="store_true", help="do not take the lab down first (not cold)")
    parser.add_argument("--mitogen", action="store_true",
                        help="also measure the re-run with Mitogen for Ansible's mitogen_linear strategy (pip package "
                             "mitogen), right after the plain one")
    args = parser.parse_args()
    if not args.keep_lab:
        down = lab("down")
        if down.returncode != 0:
            raise SystemExit(down.stdout + down.stderr)
        (LAB / "bench-vars.yml").unlink(missing_ok=True)
    lab_up(3)
    extra = write_lab_vars(LAB / "bench-vars.yml", dns_image())
    results = {"cold": measure("cold", extra_vars=extra)}
    results["rerun"] = measure("re-run", extra_vars=extra)
    if args.mitogen:
        with mitogen_strategy():
            results["rerun-mitogen"] = measure("re-run mitogen", extra_vars=extra)
    lab_up(4)
    results["add"] = measure("add a node", "--limit", machine(4), extra_vars=extra)
    results["ready"] = ready_nodes()

    print(f"{'step':<28}{'Slipway':>12}  {'changed (host: tasks)':<40}kubespray (issue 13)")
    rows = [("cold 1+2 machines", "cold"), ("idempotent re-run", "rerun"), ("add one worker (--limit)", "add")]
    if args.mitogen:
        rows.insert(2, ("re-run, mitogen_linear", "rerun-mitogen"))
        KUBESPRAY["rerun-mitogen"] = KUBESPRAY["rerun"]
    for label, key in rows:
        result = results[key]
        changed = ", ".join(f"{h}: {n}" for h, n in sorted(result["changed"].items())) or "none"
        print(f"{label:<28}{result['seconds']:>10.1f} s  {changed:<40}{KUBESPRAY[key]}")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
