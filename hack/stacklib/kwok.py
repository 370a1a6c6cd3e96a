"""Stage: kwok and its simulated nodes, whose pods become Running and Ready and whose node Leases are renewed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from stacklib.config import BIN, KUBECONFIGS, KWOK_MODULE, LOGS, PORTS, STATE
from stacklib.gobuild import go_env
from stacklib.kubeapi import kubectl, nodes_ready
from stacklib.proc import StepFailed, port_open, running_command, running_pid, start_daemon, step, wait_until

KWOK_NODE_LEASE_SECONDS = 40
KWOK_STAGES = STATE / "kwok" / "stages.yaml"


def kwok_stages() -> None:
    """kwok needs its Stage objects as configuration; take the 'fast' set from the pinned module."""
    listed = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"], cwd=KWOK_MODULE,
                            capture_output=True, text=True, env=dict(os.environ, **go_env()))
    if listed.returncode != 0:
        raise StepFailed(f"cannot locate the kwok module: {listed.stderr.strip()}")
    module_dir = Path(listed.stdout.strip())
    stage_files = [
        "kustomize/stage/node/fast/node-initialize.yaml",
        "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "kustomize/stage/pod/fast/pod-ready.yaml",
        "kustomize/stage/pod/fast/pod-complete.yaml",
        "kustomize/stage/pod/fast/pod-delete.yaml",
    ]
    KWOK_STAGES.parent.mkdir(parents=True, exist_ok=True)
    KWOK_STAGES.write_text("\n---\n".join((module_dir / name).read_text() for name in stage_files))


def kwok_command() -> list[str]:
    return [
        str(BIN / "kwok"), f"--kubeconfig={KUBECONFIGS / 'kwok.kubeconfig'}", f"--config={KWOK_STAGES}",
        "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.244.0.0/16", "--node-ip=127.0.0.1", f"--server-address=127.0.0.1:{PORTS['kwok']}",
        # Without node Leases the only heartbeat is the node status stage, every 10-20 minutes: the node
        # lifecycle controller then declares each node lost one grace period after it starts, marks its
        # pods NotReady, and kwok's pod stages never make a Running pod Ready again (kwok issue 1464).
        f"--node-lease-duration-seconds={KWOK_NODE_LEASE_SECONDS}",
    ]


def kwok_up() -> bool:
    """kwok answers and runs with the command line this version of the stack starts it with."""
    return running_pid("kwok") is not None and port_open(PORTS["kwok"]) and running_command("kwok") == kwok_command()


@step("kwok")
def ensure_kwok(nodes: int) -> str:
    if kwok_up():
        started = "already running"
    else:
        started = "restarted with a new command line" if running_pid("kwok") else "started"
        if not KWOK_STAGES.exists():
            kwok_stages()
        start_daemon("kwok", kwok_command(), env={
            # Streaming list-watch needs etcd's watch progress requests, which Debian's etcd 3.4 lacked: with it
            # on, kwok's watches ended every few seconds and pods waited 20-50 s to become Ready. The stack runs
            # etcd 3.6 now; plain list-watch is kept because it is what the test suite has been proven on.
            "KUBE_FEATURE_WatchListClient": "false",
        })
        wait_until(lambda: port_open(PORTS["kwok"]), "kwok", LOGS / "kwok.log", timeout=30, daemon="kwok")
    manifests = [kwok_node(i) for i in range(nodes)]
    kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}).encode(),
            log=LOGS / "kwok.log")
    wait_until(lambda: nodes_ready() >= nodes, f"{nodes} kwok nodes Ready", LOGS / "kwok.log", timeout=60)
    return f"{started}; {nodes} simulated nodes Ready"


def kwok_node(index: int) -> dict:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": f"kwok-node-{index}",
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": f"kwok-node-{index}", "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok", "slipway.io/node-kind": "simulated"},
        },
        "spec": {},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"}},
    }
