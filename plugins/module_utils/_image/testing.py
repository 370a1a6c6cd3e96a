# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Black-box test runs: each declared command inside the image, one verdict per image.

A command runs in a fresh container of the image under test, with no network, except the functional
tests of a system with a ``docker-compose.yml``: its dependencies (every compose service but the system's
own) are started first on a project of their own, the test container joins that project's network, and
the project is torn down afterwards - on success, failure or timeout alike. A command that outlives its
timeout is killed and reported as such. Plain Python; the engine and compose are passed in.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.engine import tail
from ansible_collections.slipway.platform.plugins.module_utils._image.spec import CATEGORIES

PASSED, FAILED, TIMEOUT, ERROR, MISSING = "passed", "failed", "timeout", "error", "missing"
RUN_LABEL = "slipway.io/test-run"
OUTPUT_LINES = 40
OUTPUT_CHARS = 4000


def output_tail(raw):
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else (raw or "")
    return tail(text.splitlines(), OUTPUT_LINES)[-OUTPUT_CHARS:]


def image_env(references):
    """``SLIPWAY_IMAGE_<NAME>`` for every image, the variables the compose files read."""
    return {"SLIPWAY_IMAGE_" + re.sub(r"[^A-Z0-9]", "_", name.upper()): ref for name, ref in references.items()}


def plan(systems, references, categories, strict=True):
    """What would run: per system, the image under test (its first image) and the commands.

    Raises SlipwayError before anything runs when an image has no reference (not built)."""
    planned = []
    for system in systems:
        image = system.images[0]
        if image.name not in references:
            raise SlipwayError(f"no built reference for image {image.name} of system {system.name}: "
                               "run the build step (playbooks/build.yml) first")
        declared = {test.category: test for test in system.tests}
        wanted = [c for c in CATEGORIES if c in categories]
        tests = [declared[c] for c in wanted if c in declared]
        missing = [c for c in wanted if c not in declared] if strict else []
        planned.append({"system": system, "image": image.name, "reference": references[image.name],
                        "tests": tests, "missing": missing})
    return planned


def _dependencies(system, compose):
    own = {image.name for image in system.images} | {system.name}
    return [service for service in compose.services() if service not in own]


def run_command(engine, reference, test, network, labels):
    started = time.monotonic()
    result = {"category": test.category, "command": list(test.command), "timeout": test.timeout}
    try:
        exit_code, output, timed_out = engine.run(reference, test.command, test.timeout, network=network,
                                                  labels=labels)
    except SlipwayError as err:
        result.update(status=ERROR, exit_code=None, output=err.msg)
    except Exception as err:  # the engine refused to create or start the container
        result.update(status=ERROR, exit_code=None, output=f"{type(err).__name__}: {err}")
    else:
        status = TIMEOUT if timed_out else PASSED if exit_code == 0 else FAILED
        tail_text = output_tail(output)
        if timed_out:
            tail_text += f"\n[slipway] killed after its timeout of {test.timeout}s"
        result.update(status=status, exit_code=exit_code, output=tail_text)
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def run_image(item, engine_factory, compose_factory, run_id):
    """All commands of one planned image; returns its result with a verdict. Never raises."""
    started = time.monotonic()
    system = item["system"]
    labels = {RUN_LABEL: run_id, "slipway.io/system": system.name}
    results = [{"category": c, "command": [], "status": MISSING, "exit_code": None, "seconds": 0.0,
                "output": f"system {system.name} declares no {c} command"} for c in item["missing"]]
    engine = None
    try:
        engine = engine_factory()
        for test in item["tests"]:
            if test.category == "functional" and system.compose_file:
                results.append(_functional(engine, compose_factory, item, test, labels, run_id))
            else:
                results.append(run_command(engine, item["reference"], test, "none", labels))
    except SlipwayError as err:
        results.append({"category": "setup", "command": [], "status": ERROR, "exit_code": None,
                        "seconds": 0.0, "output": err.msg})
    finally:
        if engine is not None:
            engine.close()
    verdict = PASSED if results and all(r["status"] == PASSED for r in results) else FAILED
    return {"system": system.name, "image": item["image"], "reference": item["reference"], "verdict": verdict,
            "seconds": round(time.monotonic() - started, 2), "tests": results}


def _functional(engine, compose_factory, item, test, labels, run_id):
    system = item["system"]
    compose = compose_factory(system, f"slipway-test-{system.name}-{run_id}")
    problem = None
    try:
        dependencies = _dependencies(system, compose)
        if not dependencies:
            return run_command(engine, item["reference"], test, "none", labels)
        compose.up(dependencies)
        result = run_command(engine, item["reference"], test, compose.network, labels)
    except SlipwayError as err:
        problem, result = f"dependencies did not start: {err.msg}", None
        problem += "\n" + "\n".join(str(err.details.get(k) or "") for k in ("command", "stdout", "stderr"))
    finally:
        try:
            compose.down()
        except SlipwayError as err:
            problem = (problem or "") + f"\nteardown failed: {err.msg}\n{err.details.get('stderr') or ''}"
    if problem:
        return {"category": test.category, "command": list(test.command), "timeout": test.timeout,
                "status": ERROR, "exit_code": None, "seconds": result["seconds"] if result else 0.0,
                "output": output_tail(problem)}
    return result


def ensure_local(engine, references, auth=None):
    """Pull every ``repository@sha256:...`` reference the engine does not have (compose runs with
    ``--pull never``, so what runs is exactly what was built)."""
    for reference in references:
        if not engine.has_image(reference):
            repository, _at, digest = reference.partition("@")
            engine.pull(repository, digest or "latest", auth)


def run_all(planned, engine_factory, compose_factory, run_id, workers=2):
    """Results per image, in plan order; images run in parallel on ``workers`` threads."""
    if workers < 1:
        raise SlipwayError("workers must be at least 1")
    with ThreadPoolExecutor(max_workers=min(workers, max(len(planned), 1))) as pool:
        futures = [pool.submit(run_image, item, engine_factory, compose_factory, run_id) for item in planned]
        return [future.result() for future in futures]
