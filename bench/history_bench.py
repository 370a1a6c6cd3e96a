#!/usr/bin/env python3
"""Journal benchmark (issue 18): a redelivery after a long history vs one with none, and release_info's read.

N systems x (Deployment, Service, ConfigMap) delivered by the engine (as admin, without waiting) into a fresh
namespace and context, then:

(r0) redelivery, nothing changed, history of 1 release                     -- median of --repeats
(h)  --releases more releases recorded (one system's ConfigMap changed each time, history_max 0: all kept)
(r1) redelivery, nothing changed, history of 1 + --releases releases        -- median of --repeats
(i)  what release_info reads for history 10: the index and 10 records, vs every record (the old full read)

Target: (r1) within 10 % of (r0) (a measurement, not an assertion). Run with the stack up:
`.venv/bin/python bench/history_bench.py [--systems 100 --releases 100]`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from deliver_bench import ADMIN, KUBECTL, STACK, fresh_namespace, rendered_systems  # noqa: E402

sys.path.insert(0, str(STACK / "collections"))
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options, deliver  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import Journal  # noqa: E402


def client():
    return KubeClient(load_connection({"kubeconfig": str(ADMIN)}), max_connections=12)


def run(systems, context, history_max=20):
    with client() as api:
        return deliver(api, systems, Options(context=context, wait=False, history_max=history_max))


def timed(func):
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def median_redelivery(systems, context, repeats):
    times = []
    for _ in range(repeats):
        seconds, result = timed(lambda: run(systems, context))
        assert result["writes"] == 0, result["writes"]
        times.append(seconds)
    return statistics.median(times), result["requests"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=100)
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    namespace = fresh_namespace("bench-history")
    context = f"bench-h-{uuid.uuid4().hex[:5]}"
    try:
        systems = rendered_systems(args.systems, namespace)
        run(systems, context, history_max=0)
        run(systems, context)  # warm: the first redelivery after a cold one pays for what settles meanwhile
        r0, r0_requests = median_redelivery(systems, context, args.repeats)
        config = systems[0]["documents"][0]["content"]
        start = time.perf_counter()
        for release in range(args.releases):
            config["data"]["release"] = str(release)
            run(systems, context, history_max=0)
        h_time = time.perf_counter() - start
        r1, r1_requests = median_redelivery(systems, context, args.repeats)
        with client() as api:
            journal = Journal(api, context)
            before = api.requests
            i_new, _ = timed(lambda: journal.read([e["revision"] for e in journal.index()[-10:]]))
            i_new_requests = api.requests - before
            before = api.requests
            i_old, records = timed(journal.records)
            i_old_requests = api.requests - before
        print(f"\nJournal benchmark: {args.systems} systems, {len(records)} releases of history, local stack\n")
        print(f"  (r0) redelivery, history of 1 release        {r0:8.3f} s   requests={r0_requests}")
        print(f"  (h)  {args.releases} more releases recorded             {h_time:8.2f} s")
        print(f"  (r1) redelivery, history of {len(records):<4} releases    {r1:8.3f} s   requests={r1_requests}")
        print(f"  (i)  release_info history 10: index + 10      {i_new:8.3f} s   requests={i_new_requests}")
        print(f"       every record (the full read it replaced) {i_old:8.3f} s   requests={i_old_requests}")
        print(f"\n  (r1) / (r0) = {r1 / r0:5.2f}   [<= 1.10]")
    finally:
        subprocess.run([str(KUBECTL), f"--kubeconfig={ADMIN}", "delete", "namespace", namespace, "--wait=false"],
                       capture_output=True, check=False)
        for selector in (f"slipway.io/context={context}", f"slipway.io/snapshot-of={context}"):
            subprocess.run([str(KUBECTL), f"--kubeconfig={ADMIN}", "delete", "configmaps,secrets", "-n",
                            "slipway-system", "-l", selector], capture_output=True, check=False)


if __name__ == "__main__":
    main()
