#!/usr/bin/env python3
"""Benchmark of content-addressed image builds (issue 5) on the local stack. A script, not a timed test.

    .venv/bin/python bench/build_bench.py [--services 10] [--workers 2] [--files 40]

Generates ten small services (busybox base, a few dozen files each), then in one run times:
  1. cold build + push of all ten through slipway's image build (the code image_build runs);
  2. rebuild with nothing changed (digest + registry lookup only: no build, no push), --repeat times;
  3. a warm-cache plain ``docker build`` of the same ten (same parallelism), --repeat times - the baseline;
  4. rebuild with one service changed by one byte (one build + push, nine lookups).
Prints the times and the ratios of the medians; target: (2) <= 0.2 x (3); exit status 1 when missed.
Removes its images and registry manifests after.
Needs the stack's engine and registry: ``python3 hack/stack.py up`` (docker and registry suffice).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("SLIPWAY_STACK_DIR", ROOT / ".stack"))
COLLECTIONS = STATE / "collections"
LINK = COLLECTIONS / "ansible_collections" / "slipway" / "platform"
if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    LINK.symlink_to(ROOT)
sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.slipway.platform.plugins.module_utils._image.build import build_all  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image.engine import Engine  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image.registry import Registry  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._image.spec import ImageSpec  # noqa: E402

DOCKERFILE = """FROM slipway/busybox:stable
COPY lib /app/lib
COPY main.sh /app/main.sh
RUN sh -n /app/main.sh && find /app/lib -type f | wc -l > /app/files.count
USER 10001
CMD ["sh", "/app/main.sh"]
"""


def generate(root, count, files, seed):
    rng = random.Random(seed)
    specs = []
    for index in range(count):
        name = f"bench-{seed}-{index:02d}"
        folder = root / name
        (folder / "lib").mkdir(parents=True)
        (folder / "Dockerfile").write_text(DOCKERFILE)
        (folder / ".dockerignore").write_text("notes/\n*.tmp\n")
        (folder / "main.sh").write_text(f"echo service {index}\n")
        for number in range(files):
            body = "".join(rng.choice("abcdefghij \n") for _ in range(4000))
            (folder / "lib" / f"part{number:03d}.txt").write_text(body)
        specs.append(ImageSpec(name, name, str(folder), "Dockerfile"))
    return specs


def timed(label, func):
    started = time.monotonic()
    value = func()
    seconds = time.monotonic() - started
    print(f"{label:58s} {seconds:8.2f} s", flush=True)
    return seconds, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, default=40, help="files per service (4 kB each)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of steps 2 and 3; the median counts")
    parser.add_argument("--registry", default=os.environ.get("SLIPWAY_REGISTRY", "127.0.0.1:5001"))
    args = parser.parse_args(argv)
    if not os.environ.get("DOCKER_HOST") and (STATE / "docker" / "host").exists():
        os.environ["DOCKER_HOST"] = (STATE / "docker" / "host").read_text().strip()
    password = (STATE / "secrets" / "registry-password").read_text().strip()
    registry = Registry(args.registry, "slipway", password)
    auth = {"username": "slipway", "password": password, "serveraddress": args.registry}
    seed = uuid.uuid4().hex[:6]
    work = Path(tempfile.mkdtemp(prefix="slipway-bench-"))
    specs = generate(work, args.services, args.files, seed)
    results = []
    print(f"{args.services} services x {args.files} files, {args.workers} workers, registry {args.registry}")
    try:
        def slipway_build():
            out = build_all(specs, registry, Engine, auth, workers=args.workers)
            failed = [r for r in out if r["action"] == "failed"]
            if failed:
                raise SystemExit(f"build failed: {failed[0].get('msg')}\n{failed[0].get('stdout')}")
            results.append(out)
            return {r["action"] for r in out}

        cold, actions = timed("1. cold build + push (slipway)", slipway_build)
        assert actions == {"built"}, actions
        runs = []
        for attempt in range(1, args.repeat + 1):
            seconds, actions = timed(f"2. rebuild, nothing changed (slipway), run {attempt}", slipway_build)
            assert actions == {"skipped"}, actions
            runs.append(seconds)
        unchanged = statistics.median(runs)

        def plain(spec):
            subprocess.run(["docker", "build", "-q", "-t", f"{args.registry}/{spec.name}:plain", spec.context],
                           check=True, capture_output=True)

        def plain_all():
            with ThreadPoolExecutor(args.workers) as pool:
                list(pool.map(plain, specs))

        warm = statistics.median(timed(f"3. plain docker build, warm cache (baseline), run {attempt}", plain_all)[0]
                                 for attempt in range(1, args.repeat + 1))
        with open(Path(specs[3].context) / "main.sh", "a") as handle:
            handle.write("#")
        one, actions = timed("4. rebuild, one service changed by one byte (slipway)", slipway_build)
        assert sorted(r["action"] for r in results[-1]) == ["built"] + ["skipped"] * (args.services - 1)
        print()
        print(f"medians: unchanged rebuild {unchanged:.2f} s, warm plain docker build {warm:.2f} s")
        print(f"unchanged rebuild / warm plain docker build = {unchanged / warm:6.3f}  (target <= 0.2)")
        print(f"unchanged rebuild / cold build              = {unchanged / cold:6.3f}")
        print(f"one changed / cold build                    = {one / cold:6.3f}")
        print(f"one changed / warm plain docker build       = {one / warm:6.3f}")
        return 0 if unchanged / warm <= 0.2 else 1
    finally:
        cleanup(results, specs, args.registry, registry)
        shutil.rmtree(work, ignore_errors=True)


def cleanup(results, specs, registry_name, registry):
    refs = {r["tag_reference"] for out in results for r in out if r.get("tag_reference")}
    refs |= {f"{registry_name}/{spec.name}:plain" for spec in specs}
    subprocess.run(["docker", "rmi", "-f", *sorted(refs)], capture_output=True, check=False)
    for digest_ref in {r["reference"] for out in results for r in out if r.get("reference")}:
        name, digest = digest_ref.split("/", 1)[1].split("@")
        registry.request("DELETE", f"/v2/{name}/manifests/{digest}", scope=f"repository:{name}:delete")


if __name__ == "__main__":
    sys.exit(main())
