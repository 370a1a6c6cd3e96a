#!/usr/bin/env python3
"""Delivery benchmark (issues 4 and 18): N systems x (Deployment, Service, ConfigMap), each tool in a fresh namespace.

(a') waiting for readiness      -- on --wait-systems systems (every pod must fit the simulated nodes), first while
                                    the nodes are empty: cold delivery + wait, (c') one system changed, (u) every
                                    image changed, (d) slipway.platform.rollback of all to release 1; against
(k') kubectl apply + wait        -- kubectl apply --server-side of the same objects, then `kubectl wait
                                    --for=condition=Available` of every Deployment
(h) Helm-like, sequential       -- per system, one after the other: kubectl apply of its objects, then kubectl
                                    rollout status (what `helm upgrade --install --wait` per service does);
                                    --sequential-limit systems measured, the rest extrapolated
(a) Slipway cold delivery        -- ansible-playbook running slipway.platform.deliver (templates rendered
                                    on the controller), no wait
(b) Slipway redelivery           -- nothing changed: must make zero writes (median of --repeats runs, with the
                                    default output; one more run, untimed, reports the writes)
(c) one system changed among N   -- one system's image tag changed: only its objects written
(k) kubectl apply --server-side  -- the same rendered objects, cold and again (again: median of --repeats); the
                                    repeats of (b) and of (k) again run in turns, once the pods of both cold
                                    deliveries are up, so that both tools see the same load
(l) kubernetes.core.k8s loop     -- one task per object (--k8s-limit runs a sample and extrapolates)

Every ansible-playbook run prints its wall time, the API requests and writes the engine made and the peak RSS of
the ansible-playbook process tree; kubectl's requests are counted from its -v=6 log.
Targets: (a) <= 1.0x (k cold), and with waiting <= 0.6x (k cold + wait); (b) zero writes and <= 0.5x (k again);
(c) only the changed system written; (d) <= 1.0x (a + wait); (a) >= 20x faster than (l).
`--profile FILE` profiles the controller side of a redelivery (the task's worker process, where the action plugin
renders and runs the engine; pyinstrument, `pip install pyinstrument`) into FILE-redeliver.txt.
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


def kubectl_counted(*args):
    """``(seconds, API requests)`` of one kubectl run, the requests counted from its -v=6 log."""
    start = time.perf_counter()
    done = kubectl("-v=6", *args)
    seconds = time.perf_counter() - start
    return seconds, sum(1 for line in done.stderr.splitlines() if '"Response" verb=' in line)


class Measured:
    """One process run to its end: output, wall time and the peak RSS (MiB) of it and the children it waited
    for (``wait4``: an ansible-playbook and its worker forks)."""

    def __init__(self, cmd, env, cwd=ROOT):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            process = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
            _pid, status, usage = os.wait4(process.pid, 0)
            self.seconds = time.perf_counter() - start
            process.returncode = self.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            self.stdout, self.stderr = out.read().decode(), err.read().decode()
        self.peak_rss_mib = usage.ru_maxrss / 1024


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
        kubectl("delete", *leftovers, "--timeout=1200s")


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


LAST_RUN = {}  # the last ansible() run's wall time and peak RSS, for the rows that print them


def ansible_config(book, capture):
    config = book.parent / "ansible.cfg"
    callback = "ansible.posix.json" if capture else "ansible.builtin.default"
    config.write_text(f"[defaults]\ncollections_path = {STACK / 'collections'}\nstdout_callback = {callback}\n"
                      "retry_files_enabled = false\n")
    return config


def playbook_args(book):
    return ["-i", "localhost,", str(book), "-e", f"ansible_python_interpreter={sys.executable}"]


def ansible(book, env, capture=True):
    """Run a playbook; returns its JSON callback output, or None when not ``capture``d (plain default output,
    as a user sees it, thrown away: what the timed repeats run)."""
    env = dict(env, ANSIBLE_CONFIG=str(ansible_config(book, capture)))
    done = Measured([str(PLAYBOOK_BIN), *playbook_args(book)], env)
    LAST_RUN.update(seconds=done.seconds, rss=done.peak_rss_mib)
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


def deliver_book(tmp, eco, systems, context, wait, tags=None):
    """A playbook of one slipway.platform.deliver task; ``tags``: image tags other than v1, by system."""
    book = tmp / "deliver.yml"
    book.write_text(yaml.safe_dump([{
        "name": "bench", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "deliver", "register": "delivery", "slipway.platform.deliver": {
            "context": context, "systems": [f"svc{i:03d}" for i in range(systems)], "ecosystem_root": str(eco),
            "registry": "127.0.0.1:5001",
            "system_tags": {f"svc{i:03d}": (tags or {}).get(f"svc{i:03d}", "v1") for i in range(systems)},
            "kubeconfig": str(ADMIN), "wait": wait, "wait_timeout": 900, "concurrency": 8}}],
    }]))
    return book


def task_result(output):
    return output["plays"][0]["tasks"][0]["hosts"]["localhost"]


def slipway_playbook(tmp, eco, namespace, systems, context, wait, capture=True, tags=None):
    output = ansible(deliver_book(tmp, eco, systems, context, wait, tags), dict(os.environ), capture)
    return task_result(output) if capture else None


def rollback_playbook(tmp, context, revision):
    book = tmp / "rollback.yml"
    book.write_text(yaml.safe_dump([{
        "name": "bench", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "roll back", "slipway.platform.rollback": {
            "context": context, "revision": revision, "kubeconfig": str(ADMIN), "wait_timeout": 900,
            "concurrency": 8}}],
    }]))
    return task_result(ansible(book, dict(os.environ)))


PROFILED = """\
import sys
from pyinstrument import Profiler
from ansible.executor.task_executor import TaskExecutor
from ansible.cli.playbook import main

out = sys.argv.pop(1)
run = TaskExecutor.run


def profiled(self):  # in the task's worker (a fork): the action plugin renders and runs the engine here
    profiler = Profiler(interval=0.002)
    profiler.start()
    try:
        return run(self)
    finally:  # before the worker sends its result: the parent ends daemonic workers once it has it
        profiler.stop()
        with open(out, "w") as handle:
            handle.write(profiler.output_text(unicode=False, color=False, show_all=False))


TaskExecutor.run = profiled  # only there: a profiler running in the parent as well kills the forked worker
main()
"""


def profile(book, out):
    """Run a playbook with pyinstrument in its task's worker, where the action plugin renders the templates and
    runs the engine (the ansible-playbook process itself costs what (f) measures); the profile goes to ``out``."""
    script = book.parent / "profiled.py"
    script.write_text(PROFILED)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ansible_config(book, capture=False)))
    done = Measured([sys.executable, str(script), str(out), *playbook_args(book)], env)
    if done.returncode != 0:
        sys.exit(f"profiling {book.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.seconds


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


def counts(result):
    return (f"writes={result['writes']} requests={result['requests']} "
            f"peak RSS {LAST_RUN['rss']:.0f} MiB")


def settle(*namespaces):
    """Seconds until every Deployment of ``namespaces`` is Available: the control plane has caught up."""
    start = time.perf_counter()
    for namespace in namespaces:
        kubectl("wait", "--for=condition=Available", "deployments", "--all", "-n", namespace, "--timeout=900s")
    return time.perf_counter() - start


def pods_drained(namespace, expected, timeout=600):
    """Seconds until ``namespace`` has only ``expected`` pods left (a rollout's old pods deleted), at most
    ``timeout``."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if len(kubectl("get", "pods", "-n", namespace, "-o", "name").stdout.split()) <= expected:
            break
        time.sleep(2)
    return time.perf_counter() - start


def gone(namespace):
    """Delete a namespace and wait until it is gone: its pods hold the simulated nodes' capacity."""
    kubectl("delete", "namespace", namespace, "--timeout=900s", check=False)


def waited_section(args, tmp, context, rows):
    """Deliveries that wait for readiness, on ``--wait-systems`` systems (every pod must fit the simulated nodes),
    first, while the nodes are empty; each namespace is deleted before the next one needs the capacity."""
    w = args.wait_systems or args.systems
    eco = tmp / "eco-wait"
    ns_w = fresh_namespace("bench-slipway-wait")
    write_ecosystem(eco, w, ns_w)
    wctx = f"{context}w"
    out = {}
    try:
        out["a_wait"], result = timed(lambda: slipway_playbook(tmp, eco, ns_w, w, wctx, wait=True))
        rows.append((f"(a') slipway cold + wait ready ({w} systems)", out["a_wait"], counts(result)))
        one = {"svc000": "v2"}
        out["c_wait"], result = timed(lambda: slipway_playbook(tmp, eco, ns_w, w, wctx, wait=True, tags=one))
        changed = sum(1 for row in result["systems"] if row.get("result") == "changed")
        rows.append((f"(c') one system changed among {w}, + wait", out["c_wait"],
                     f"{counts(result)} systems changed={changed}"))
        every = {f"svc{i:03d}": "v3" for i in range(w)}
        u_time, result = timed(lambda: slipway_playbook(tmp, eco, ns_w, w, wctx, wait=True, tags=every))
        rows.append((f"(u) every image changed ({w} systems), + wait", u_time, counts(result)))
        # (u) returns once the new pods are ready; the old ones are still being deleted, work (d) should not pay
        drained = pods_drained(ns_w, w)
        out["d"], result = timed(lambda: rollback_playbook(tmp, wctx, revision=1))
        rows.append((f"(d) rollback of all {w} to release 1, + wait", out["d"],
                     f"{counts(result)} (after {drained:.0f} s for (u)'s old pods to go)"))
        if args.profile:
            redeliver = deliver_book(tmp, eco, w, wctx, wait=True)  # release 1's tags again: nothing to do
            p_time = profile(redeliver, f"{args.profile}-redeliver.txt")
            rows.append((f"(p) profiled redelivery of {w} (pyinstrument on)", p_time,
                         f"{args.profile}-redeliver.txt"))
    finally:
        gone(ns_w)
        forget(wctx)
    ns_kw = fresh_namespace("bench-kubectl-wait")
    try:
        manifest = tmp / "objects-wait.yaml"
        manifest.write_text(yaml.safe_dump_all(rendered_objects(w, ns_kw)))
        k_apply, k_apply_requests = kubectl_counted("apply", "--server-side", "--field-manager=bench", "-f",
                                                    str(manifest))
        k_wait, k_wait_requests = kubectl_counted("wait", "--for=condition=Available", "deployments", "--all",
                                                  "-n", ns_kw, "--timeout=900s")
        out["k_wait"] = k_apply + k_wait
        rows.append((f"(k') kubectl apply --server-side + kubectl wait ({w})", out["k_wait"],
                     f"requests={k_apply_requests + k_wait_requests} (apply {k_apply:.2f} s, wait {k_wait:.2f} s)"))
    finally:
        gone(ns_kw)
    if args.sequential_limit:
        ns_h = fresh_namespace("bench-sequential")
        try:
            h_time, done = timed(lambda: sequential(tmp, ns_h, w, args.sequential_limit))
            out["h"] = h_time * w / done
            rows.append((f"(h) Helm-like: per system apply + rollout status ({done} of {w}, extrapolated)",
                         out["h"], f"measured {h_time:.1f}s for {done} systems"))
        finally:
            gone(ns_h)
    return w, out


def sequential(tmp, namespace, systems, limit):
    """What a Helm-style tool does per release, one system after the other (`helmfile sync` of one chart per
    service, `helm upgrade --install --wait` each): apply the system's objects, then wait for its rollout."""
    done = min(limit, systems)
    objects = rendered_objects(done, namespace)
    for i in range(done):
        manifest = tmp / f"sequential-{i}.yaml"
        manifest.write_text(yaml.safe_dump_all(objects[3 * i:3 * i + 3]))
        kubectl("apply", "--server-side", "--field-manager=bench", "-f", str(manifest))
        kubectl("rollout", "status", f"deployment/svc{i:03d}", "-n", namespace, "--timeout=300s")
    return done


def forget(context):
    for selector in (f"slipway.io/context={context}", f"slipway.io/snapshot-of={context}"):
        kubectl("delete", "configmaps,secrets", "-n", "slipway-system", "-l", selector, check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=100)
    parser.add_argument("--wait-systems", type=int, default=0,
                        help="systems of the deliveries that wait for readiness (default: --systems); every pod must "
                             "fit the simulated nodes (250 pods a kwok node), twice during a rollout")
    parser.add_argument("--k8s-limit", type=int, default=0,
                        help="apply only this many objects with kubernetes.core.k8s and extrapolate (0: all)")
    parser.add_argument("--sequential-limit", type=int, default=30,
                        help="systems of the Helm-like sequential reference (h) measured, the rest extrapolated "
                             "(0: leave it out)")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces")
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeatable measurements (redeliveries, kubectl again, the floor) give their median")
    parser.add_argument("--profile", metavar="FILE", help="profile a redelivery's controller side into "
                                                          "FILE-redeliver.txt (pyinstrument)")
    args = parser.parse_args()
    clear_earlier_runs()
    tmp = Path(tempfile.mkdtemp(prefix="slipway-bench-"))
    namespaces = []
    n = args.systems
    context = f"bench-{uuid.uuid4().hex[:5]}"
    try:
        rows = []
        w, waited = waited_section(args, tmp, context, rows)

        ns_a = fresh_namespace("bench-slipway")
        namespaces.append(ns_a)
        eco = tmp / "eco"
        write_ecosystem(eco, n, ns_a)
        a_time, a_result = timed(lambda: slipway_playbook(tmp, eco, ns_a, n, context, wait=False))
        rows.append(("(a) slipway cold, no wait", a_time, counts(a_result)))
        ns_c = fresh_namespace("bench-kubectl")
        namespaces.append(ns_c)
        manifest = tmp / "objects.yaml"
        manifest.write_text(yaml.safe_dump_all(rendered_objects(n, ns_c)))
        apply = ("apply", "--server-side", "--field-manager=bench", "-f", str(manifest))
        c_cold, c_cold_requests = kubectl_counted(*apply)
        rows.append(("(k) kubectl apply --server-side cold", c_cold, f"requests={c_cold_requests}"))
        # Both cold deliveries leave the control plane minutes of work (a ReplicaSet and a pod per Deployment)
        # that shares the two cores with whatever runs next: wait it out, then time the two tools in turns.
        settled = settle(ns_a, ns_c)
        b_times, c_again_times = [], []
        for _ in range(args.repeats):
            b_times.append(timed(lambda: slipway_playbook(tmp, eco, ns_a, n, context, wait=False, capture=False))[0])
            c_again_times.append(timed(lambda: kubectl(*apply))[0])
        b_time, c_again = statistics.median(b_times), statistics.median(c_again_times)
        b_result = slipway_playbook(tmp, eco, ns_a, n, context, wait=False)  # its counts, untimed
        rows.append(("(b) slipway redelivery", b_time, f"{counts(b_result)} changed={b_result['changed']}; "
                     f"runs {', '.join(f'{t:.2f}' for t in b_times)} s, in turns with kubectl's"))
        _seconds, c_again_requests = kubectl_counted(*apply)
        rows.append(("(k) kubectl apply --server-side again", c_again, f"requests={c_again_requests}; runs "
                     f"{', '.join(f'{t:.2f}' for t in c_again_times)} s (after {settled:.0f} s for both cold "
                     "deliveries' pods)"))
        c_time, c_result = timed(lambda: slipway_playbook(tmp, eco, ns_a, n, context, wait=False,
                                                          tags={"svc000": "v2"}))
        changed = sum(1 for row in c_result["systems"] if row.get("result") == "changed")
        rows.append((f"(c) one system changed among {n}, no wait", c_time,
                     f"{counts(c_result)} systems changed={changed}"))
        floor = tmp / "floor.yml"
        floor.write_text(yaml.safe_dump([{"name": "floor", "hosts": "localhost", "connection": "local",
                                          "gather_facts": False, "tasks": [{"ansible.builtin.debug": {"msg": "-"}}]}]))
        f_time = median_time(lambda: ansible(floor, dict(os.environ), capture=False), args.repeats)
        rows.append(("(f) ansible-playbook itself: one debug task", f_time,
                     f"the floor every playbook run pays; peak RSS {LAST_RUN['rss']:.0f} MiB"))

        ns_e = fresh_namespace("bench-engine")
        namespaces.append(ns_e)
        engine_input = rendered_systems(n, ns_e)
        e_cold, e_cold_result = timed(lambda: engine(engine_input, f"{context}e"))
        rows.append(("(a-engine) slipway engine cold, no wait", e_cold, f"writes={e_cold_result['writes']} "
                     f"requests={e_cold_result['requests']}"))
        e_again = median_time(lambda: engine(engine_input, f"{context}e"), args.repeats)
        e_again_result = engine(engine_input, f"{context}e")
        rows.append(("(b-engine) slipway engine redelivery", e_again, f"writes={e_again_result['writes']} "
                     f"requests={e_again_result['requests']}"))

        ns_d = fresh_namespace("bench-k8s")
        namespaces.append(ns_d)
        objects = rendered_objects(n, ns_d)
        d_loop, applied = timed(lambda: k8s_loop(tmp, objects, args.k8s_limit))
        d_full = d_loop * len(objects) / applied
        label = "(l) kubernetes.core.k8s loop" + (f" ({applied} objects, extrapolated)" if applied < len(objects)
                                                  else "")
        rows.append((label, d_full, f"measured {d_loop:.1f}s for {applied} objects"))

        print(f"\nDelivery benchmark: {n} systems x (Deployment, Service, ConfigMap) = {3 * n} objects "
              f"({w} systems where waiting for readiness), local stack\n")
        for label, seconds, note in rows:
            print(f"  {label:<56} {seconds:8.2f} s   {note}")
        print("\nRatios (targets in brackets):")
        print(f"  (a) / (k cold)              = {a_time / c_cold:6.2f}   [<= 1.0]")
        print(f"  (a') / (k')                 = {waited['a_wait'] / waited['k_wait']:6.2f}   [<= 0.6]")
        print(f"  (b) / (k again)             = {b_time / c_again:6.2f}   [<= 0.5, or 0.2 at 1,000 systems; "
              f"writes {b_result['writes']}, target 0]")
        print(f"  (c) one changed among {n:<5} = {c_time:6.2f} s [<= 3 s at 1,000 systems; writes "
              f"{c_result['writes']}: its Deployment, the lock and the journal record]")
        if "h" in waited:
            print(f"  (a') / (h)                  = {waited['a_wait'] / waited['h']:6.2f}   [<= 0.6]")
        print(f"  (d) / (a')                  = {waited['d'] / waited['a_wait']:6.2f}   [<= 1.0]")
        print(f"  (l) / (a)                   = {d_full / a_time:6.2f}   [>= 20]")
        print(f"  without Ansible's own start-up (f): (a - f) / (k cold) = {(a_time - f_time) / c_cold:6.2f}, "
              f"(b - f) / (k again) = {(b_time - f_time) / c_again:6.2f}")
        print(f"  engine only: (a-engine) / (k cold) = {e_cold / c_cold:6.2f}, "
              f"(b-engine) / (k again) = {e_again / c_again:6.2f}, (l) / (a-engine) = {d_full / e_cold:6.2f}")
    finally:
        if not args.keep:
            for namespace in namespaces:
                kubectl("delete", "namespace", namespace, "--wait=false", check=False)
            for name in (context, f"{context}e"):
                forget(name)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
