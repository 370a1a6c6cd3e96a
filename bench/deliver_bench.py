#!/usr/bin/env python3
"""Delivery benchmark (issue 4): N systems x (Deployment, Service, ConfigMap), each tool in a fresh namespace.

(a) Slipway cold delivery        -- ansible-playbook running slipway.platform.deliver (templates rendered
                                    on the controller), without and with waiting for readiness
(b) Slipway redelivery           -- nothing changed: must make zero writes (median of --repeats runs, with the
                                    default output; one more run, untimed, reports the writes)
(c) kubectl apply --server-side  -- the same rendered objects, cold and again (again: median of --repeats)
(d) kubernetes.core.k8s loop     -- one task per object (--k8s-limit runs a sample and extrapolates)

Targets: (a) <= 1.0x (c cold); (b) zero writes and <= 0.5x (c again); (a) >= 20x faster than (d).
Run with the stack up: `make bench` or `.venv/bin/python bench/deliver_bench.py [--systems 100]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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
TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: "{{ system.name }}"}
data: {greeting: "hello from {{ system.name }}", replicas: "{{ values.replicas | default(1) }}"}
---
apiVersion: v1
kind: Service
metadata: {name: "{{ system.name }}"}
spec:
  selector: {app: "{{ system.name }}"}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: "{{ system.name }}"}
spec:
  replicas: 1
  selector: {matchLabels: {app: "{{ system.name }}"}}
  template:
    metadata: {labels: {app: "{{ system.name }}"}}
    spec:
      nodeSelector: {slipway.io/node-kind: simulated}
      containers: [{name: app, image: "{{ images[system.name] }}", ports: [{containerPort: 8080}]}]
"""


def kubectl(*args, stdin=None, check=True):
    return subprocess.run([str(KUBECTL), f"--kubeconfig={ADMIN}", *args], input=stdin, capture_output=True,
                          text=True, check=check)


def timed(func):
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def clear_earlier_runs():
    """Delete what an interrupted run left (its pods count against the simulated nodes' capacity) and wait."""
    found = kubectl("get", "namespaces", "-o", "name").stdout.split()
    leftovers = [name for name in found if name.startswith("namespace/bench-")]
    if leftovers:
        print(f"removing {len(leftovers)} namespace(s) an earlier run left", file=sys.stderr)
        kubectl("delete", *leftovers, "--timeout=300s")


def fresh_namespace(prefix):
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", name)
    return name


def write_ecosystem(root, systems, namespace):
    for i in range(systems):
        name = f"svc{i:03d}"
        (root / name / "deploy").mkdir(parents=True)
        (root / name / "slipway.yml").write_text(yaml.safe_dump(
            {"name": name, "namespace": namespace, "depends_on": [], "images": [{"name": name, "context": "."}]}))
        (root / name / "deploy" / "app.yaml.j2").write_text(TEMPLATE)


def rendered_objects(systems, namespace):
    """The same objects, rendered for kubectl and kubernetes.core (plain YAML, one list)."""
    objects = []
    for i in range(systems):
        name = f"svc{i:03d}"
        text = (TEMPLATE.replace('{{ system.name }}', name).replace('{{ images[system.name] }}',
                                                                      f"127.0.0.1:5001/{name}:v1")
                .replace("{{ values.replicas | default(1) }}", "1"))
        for doc in yaml.safe_load_all(text):
            doc["metadata"]["namespace"] = namespace
            objects.append(doc)
    return objects


def ansible(book, env, capture=True):
    """Run a playbook; returns its JSON callback output, or None when not ``capture``d (plain default output,
    as a user sees it, thrown away: what the timed repeats run)."""
    config = book.parent / "ansible.cfg"
    callback = "ansible.posix.json" if capture else "ansible.builtin.default"
    config.write_text(f"[defaults]\ncollections_path = {STACK / 'collections'}\nstdout_callback = {callback}\n"
                      "retry_files_enabled = false\n")
    env = dict(env, ANSIBLE_CONFIG=str(config))
    done = subprocess.run([str(PLAYBOOK_BIN), "-i", "localhost,", str(book), "-e",
                           f"ansible_python_interpreter={sys.executable}"], cwd=ROOT, capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        sys.exit(f"{book.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    if not capture:
        return None
    start = done.stdout.find("\n{\n") + 1 if not done.stdout.startswith("{") else 0  # after progress lines
    return json.loads(done.stdout[start:])


def median_time(func, repeats):
    """The median of ``repeats`` timed calls (for what can be repeated: redeliveries, a second kubectl apply)."""
    return statistics.median(timed(func)[0] for _ in range(repeats))


def rendered_systems(systems, namespace):
    """The systems as the action plugin hands them to the module (for timing the engine without Ansible)."""
    objects = rendered_objects(systems, namespace)
    return [{"name": f"svc{i:03d}", "namespace": namespace, "depends_on": [], "images": {}, "git_sha": None,
             "documents": [{"file": "deploy/app.yaml.j2", "index": j, "content": obj}
                           for j, obj in enumerate(objects[3 * i:3 * i + 3])]} for i in range(systems)]


def engine(systems, context):
    """The delivery engine called directly (what the action plugin runs), as admin, without waiting.

    ``systems`` are rendered before the clock starts: this times the engine alone.
    """
    sys.path.insert(0, str(STACK / "collections"))
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options, deliver

    with KubeClient(load_connection({"kubeconfig": str(ADMIN)}), max_connections=12) as client:
        return deliver(client, systems, Options(context=context, wait=False))


def slipway_playbook(tmp, eco, namespace, systems, context, wait, capture=True):
    book = tmp / "deliver.yml"
    book.write_text(yaml.safe_dump([{
        "name": "bench", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "deliver", "register": "delivery", "slipway.platform.deliver": {
            "context": context, "systems": [f"svc{i:03d}" for i in range(systems)], "ecosystem_root": str(eco),
            "registry": "127.0.0.1:5001", "system_tags": {f"svc{i:03d}": "v1" for i in range(systems)},
            "kubeconfig": str(ADMIN), "wait": wait, "wait_timeout": 600, "concurrency": 8}}],
    }]))
    output = ansible(book, dict(os.environ), capture)
    return output["plays"][0]["tasks"][0]["hosts"]["localhost"] if capture else None


def k8s_loop(tmp, objects, limit):
    sample = objects[:limit] if limit else objects
    book = tmp / "k8s.yml"
    (tmp / "objects.json").write_text(json.dumps(sample))
    book.write_text(yaml.safe_dump([{
        "name": "bench", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "apply", "kubernetes.core.k8s": {"kubeconfig": str(ADMIN), "state": "present",
                                                            "apply": True, "server_side_apply": {
                                                                "field_manager": "bench"},
                                                            "definition": "{{ item }}"},
                   "loop": f"{{{{ lookup('ansible.builtin.file', '{tmp / 'objects.json'}') | from_json }}}}",
                   "loop_control": {"label": "{{ item.kind }}/{{ item.metadata.name }}"}}],
    }]))
    ansible(book, dict(os.environ))
    return len(sample)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=100)
    parser.add_argument("--k8s-limit", type=int, default=0,
                        help="apply only this many objects with kubernetes.core.k8s and extrapolate (0: all)")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces")
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeatable measurements (redeliveries, kubectl again, the floor) give their median")
    args = parser.parse_args()
    clear_earlier_runs()
    tmp = Path(tempfile.mkdtemp(prefix="slipway-bench-"))
    namespaces = []
    try:
        rows = []
        ns_a = fresh_namespace("bench-slipway")
        namespaces.append(ns_a)
        eco = tmp / "eco"
        write_ecosystem(eco, args.systems, ns_a)
        context = f"bench-{uuid.uuid4().hex[:5]}"
        a_time, a_result = timed(lambda: slipway_playbook(tmp, eco, ns_a, args.systems, context, wait=False))
        rows.append(("(a) slipway cold, no wait", a_time,
                     f"writes={a_result['writes']} requests={a_result['requests']}"))
        b_time = median_time(lambda: slipway_playbook(tmp, eco, ns_a, args.systems, context, wait=False,
                                                      capture=False), args.repeats)
        b_result = slipway_playbook(tmp, eco, ns_a, args.systems, context, wait=False)  # its counts, untimed
        rows.append(("(b) slipway redelivery", b_time,
                     f"writes={b_result['writes']} requests={b_result['requests']} changed={b_result['changed']}"))
        floor = tmp / "floor.yml"
        floor.write_text(yaml.safe_dump([{"name": "floor", "hosts": "localhost", "connection": "local",
                                          "gather_facts": False, "tasks": [{"ansible.builtin.debug": {"msg": "-"}}]}]))
        f_time = median_time(lambda: ansible(floor, dict(os.environ), capture=False), args.repeats)
        rows.append(("(f) ansible-playbook itself: one debug task", f_time, "the floor every playbook run pays"))
        ns_w = fresh_namespace("bench-slipway-wait")
        namespaces.append(ns_w)
        shutil.rmtree(eco)
        write_ecosystem(eco, args.systems, ns_w)
        w_time, w_result = timed(lambda: slipway_playbook(tmp, eco, ns_w, args.systems, f"{context}w", wait=True))
        rows.append(("(a') slipway cold + wait ready", w_time, f"writes={w_result['writes']}"))

        ns_e = fresh_namespace("bench-engine")
        namespaces.append(ns_e)
        engine_input = rendered_systems(args.systems, ns_e)
        e_cold, e_cold_result = timed(lambda: engine(engine_input, f"{context}e"))
        rows.append(("(a-engine) slipway engine cold, no wait", e_cold, f"writes={e_cold_result['writes']} "
                     f"requests={e_cold_result['requests']}"))
        e_again = median_time(lambda: engine(engine_input, f"{context}e"), args.repeats)
        e_again_result = engine(engine_input, f"{context}e")
        rows.append(("(b-engine) slipway engine redelivery", e_again, f"writes={e_again_result['writes']} "
                     f"requests={e_again_result['requests']}"))

        ns_c = fresh_namespace("bench-kubectl")
        namespaces.append(ns_c)
        manifest = tmp / "objects.yaml"
        manifest.write_text(yaml.safe_dump_all(rendered_objects(args.systems, ns_c)))
        c_cold, _ = timed(lambda: kubectl("apply", "--server-side", "--field-manager=bench", "-f", str(manifest)))
        rows.append(("(c) kubectl apply --server-side cold", c_cold, ""))
        c_again = median_time(lambda: kubectl("apply", "--server-side", "--field-manager=bench", "-f", str(manifest)),
                              args.repeats)
        rows.append(("(c) kubectl apply --server-side again", c_again, ""))

        ns_d = fresh_namespace("bench-k8s")
        namespaces.append(ns_d)
        objects = rendered_objects(args.systems, ns_d)
        d_time, applied = timed(lambda: k8s_loop(tmp, objects, args.k8s_limit))
        d_full = d_time * len(objects) / applied
        label = "(d) kubernetes.core.k8s loop" + (f" ({applied} objects, extrapolated)" if applied < len(objects)
                                                  else "")
        rows.append((label, d_full, f"measured {d_time:.1f}s for {applied} objects"))

        print(f"\nDelivery benchmark: {args.systems} systems x (Deployment, Service, ConfigMap) = "
              f"{3 * args.systems} objects, local stack\n")
        for label, seconds, note in rows:
            print(f"  {label:<48} {seconds:8.2f} s   {note}")
        print("\nRatios (targets in brackets):")
        print(f"  (a) / (c cold)   = {a_time / c_cold:6.2f}   [<= 1.0]")
        print(f"  (a') / (c cold)  = {w_time / c_cold:6.2f}   [information: includes waiting for readiness]")
        print(f"  (b) / (c again)  = {b_time / c_again:6.2f}   [<= 0.5; writes {b_result['writes']}, target 0]")
        print(f"  (d) / (a)        = {d_full / a_time:6.2f}   [>= 20]")
        print(f"  without Ansible's own start-up (f): (a - f) / (c cold) = {(a_time - f_time) / c_cold:6.2f}, "
              f"(b - f) / (c again) = {(b_time - f_time) / c_again:6.2f}")
        print(f"  engine only: (a-engine) / (c cold) = {e_cold / c_cold:6.2f}, "
              f"(b-engine) / (c again) = {e_again / c_again:6.2f}, (d) / (a-engine) = {d_full / e_cold:6.2f}")
    finally:
        if not args.keep:
            for namespace in namespaces:
                kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
