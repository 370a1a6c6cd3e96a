#!/usr/bin/env python3
"""Rollback benchmark (issue 6): roll back N delivered systems vs their cold delivery, in one run.

N systems x (ConfigMap, Secret, Service, Deployment reading both) in a fresh namespace and a fresh context,
each step an ansible-playbook run of the collection's modules, the way a CI job runs them:

(a) cold delivery of release 1      -- slipway.platform.deliver, waiting for readiness
(b) delivery of release 2           -- every image and every config changed (not compared, it sets the scene)
(r) rollback to release 1           -- slipway.platform.rollback: every ConfigMap, Secret and Deployment restored,
                                       pods rolled back, waiting for readiness
(c) check-mode rollback             -- server-side dry-run of the same rollback (nothing written)

Target: (r) <= 1.0x (a). Run with the stack up: `.venv/bin/python bench/rollback_bench.py [--systems 100]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STACK = Path(os.environ.get("SLIPWAY_STACK_DIR", ROOT / ".stack"))
KUBECTL = STACK / "bin" / "kubectl"
ADMIN = STACK / "kube" / "admin.kubeconfig"
PLAYBOOK_BIN = ROOT / ".venv" / "bin" / "ansible-playbook"
PKI = STACK / "pki"
CONNECTION = {"api_url": "https://127.0.0.1:6443", "ca_cert": str(PKI / "ca.crt"),
              "client_cert": str(PKI / "admin.crt"), "client_key": str(PKI / "admin.key")}
TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: "{{ system.name }}"}
data: {greeting: "hello from {{ system.name }}", release: "{{ values.release }}"}
---
apiVersion: v1
kind: Secret
metadata: {name: "{{ system.name }}"}
type: Opaque
stringData: {token: "token-{{ values.release }}-{{ system.name }}"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: "{{ system.name }}", labels: {bench: rollback}}
spec:
  replicas: 1
  selector: {matchLabels: {app: "{{ system.name }}", bench: rollback}}
  template:
    metadata: {labels: {app: "{{ system.name }}", bench: rollback}}
    spec:
      containers:
        - name: main
          image: "{{ images[system.name] }}"
          ports: [{name: http, containerPort: 8080}]
          envFrom: [{configMapRef: {name: "{{ system.name }}"}}, {secretRef: {name: "{{ system.name }}"}}]
---
apiVersion: v1
kind: Service
metadata: {name: "{{ system.name }}", labels: {bench: rollback}}
spec: {selector: {app: "{{ system.name }}", bench: rollback}, ports: [{name: http, port: 80, targetPort: http}]}
"""


def kubectl(*args, check=True):
    return subprocess.run([str(KUBECTL), f"--kubeconfig={ADMIN}", *args], capture_output=True, text=True,
                          check=check)


def write_ecosystem(root, names, namespace):
    for name in names:
        (root / name / "deploy").mkdir(parents=True)
        (root / name / "slipway.yml").write_text(yaml.safe_dump(
            {"name": name, "namespace": namespace, "depends_on": [], "images": [{"name": name, "context": "."}]}))
        (root / name / "deploy" / "app.yaml.j2").write_text(TEMPLATE)


def playbook(tmp, label, module, args, check=False):
    book = tmp / f"{label}.yml"
    out = tmp / f"{label}.json"
    book.write_text(yaml.safe_dump([{
        "name": label, "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": label, "register": "step", "ignore_errors": True, module: dict(args, **CONNECTION)},
                  {"name": "result", "check_mode": False,
                   "ansible.builtin.copy": {"content": "{{ step | to_json }}", "dest": str(out), "mode": "0600"}}],
    }]))
    command = [str(PLAYBOOK_BIN), "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}",
               str(book)] + (["--check"] if check else [])
    env = dict(os.environ)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if not out.exists():
        sys.exit(f"{label}: ansible-playbook failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result = json.loads(out.read_text())
    if result.get("failed"):
        sys.exit(f"{label} failed: {result.get('msg')}")
    return seconds, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the namespace and journal afterwards")
    args = parser.parse_args()
    names = [f"svc{i:03d}" for i in range(args.systems)]
    suffix = uuid.uuid4().hex[:5]
    namespace, context = f"bench-rollback-{suffix}", f"bench-rb-{suffix}"
    kubectl("create", "namespace", namespace)
    try:
        with tempfile.TemporaryDirectory(prefix="slipway-rb-bench-") as tmp_name:
            tmp = Path(tmp_name)
            eco = tmp / "eco"
            write_ecosystem(eco, names, namespace)

            def release(number):
                return {"context": context, "systems": names, "ecosystem_root": str(eco),
                        "registry": "127.0.0.1:5001", "system_tags": {n: f"v{number}" for n in names},
                        "values": {n: {"release": str(number)} for n in names}, "wait_timeout": 900,
                        "lock_timeout": 60}

            cold, first = playbook(tmp, "cold", "slipway.platform.deliver", release(1))
            update, second = playbook(tmp, "update", "slipway.platform.deliver", release(2))
            back_args = {"context": context, "revision": first["revision"], "reason": "benchmark",
                         "wait_timeout": 900, "lock_timeout": 60}
            check, predicted = playbook(tmp, "check", "slipway.platform.rollback", back_args, check=True)
            rolled, back = playbook(tmp, "rollback", "slipway.platform.rollback", back_args)
            restored = json.loads(kubectl("get", "configmap", names[-1], "-n", namespace, "-o", "json").stdout)
            assert restored["data"]["release"] == "1", restored["data"]
    finally:
        if not args.keep:
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)
            kubectl("delete", "configmaps,secrets,leases", "-n", "slipway-system", "-l",
                    f"slipway.io/context={context}", check=False)
            kubectl("delete", "configmaps,secrets", "-n", "slipway-system", "-l",
                    f"slipway.io/snapshot-of={context}", check=False)
    objects = 4 * args.systems
    print(f"rollback benchmark: {args.systems} systems x (ConfigMap, Secret, Service, Deployment) = {objects} objects")
    print(f"  (a) cold delivery, release {first['revision']}     {cold:8.2f}s  writes={first['writes']}")
    print(f"  (b) delivery of release {second['revision']}        {update:8.2f}s  writes={second['writes']}")
    print(f"  (c) check-mode rollback        {check:8.2f}s  writes={predicted['writes']} "
          f"predicted={predicted['summary']}")
    print(f"  (r) rollback to release {back['rollback']['to']}      {rolled:8.2f}s  writes={back['writes']} "
          f"summary={back['summary']} recorded as revision {back['revision']}")
    ratio = rolled / cold
    print(f"  ratio (r)/(a) = {ratio:.2f}x (target <= 1.0x: {'met' if ratio <= 1.0 else 'NOT met'})")


if __name__ == "__main__":
    main()
