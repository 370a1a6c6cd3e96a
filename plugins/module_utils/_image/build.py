# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build orchestration: digest every image, ask the registry, build and push only what it lacks.

Each digest covers the images its build starts from; one ``BaseResolver`` per run answers for all of them
(engine first, then the registry), so a base shared by ten services is looked up once.

The predicate "the registry has ``<name>:<content tag>``" decides everything, in check mode and in a real
run alike: present -> skipped (no build, no push); absent -> built and pushed (check mode: would be).
Builds run in parallel on a bounded pool; one failed image does not stop the others, and is reported with
the command and the tail of its log. Plain Python; the engine and registry are passed in.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.bases import BaseResolver
from ansible_collections.slipway.platform.plugins.module_utils._image.digest import build_digest, tag_of

BUILT, SKIPPED, WOULD_BUILD, FAILED = "built", "skipped", "would_build", "failed"


def _result(image, registry, **fields):
    result = {"name": image.name, "system": image.system, "repository": f"{registry}/{image.name}",
              "action": None, "tag": None, "digest": None, "reference": None, "context_digest": None,
              "bases": {}, "pushed": False, "seconds": 0.0}
    result.update(fields)
    return result


def lookup(image, registry, resolve_base, force=False):
    """Phase 1 for one image: its content tag, and the digest the registry has under it (or None).
    ``resolve_base`` answers for the images the build starts from (a ``BaseResolver``)."""
    result = _result(image, registry.registry)

    def recorded(base):
        result["bases"][base.reference] = resolve_base(base)
        return result["bases"][base.reference]

    try:
        context_digest = build_digest(image.context, image.dockerfile, image.build_args, image.target, recorded)
        tag = tag_of(context_digest)
        result.update(context_digest=context_digest, tag=tag, tag_reference=f"{result['repository']}:{tag}")
        existing = None if force else registry.manifest_digest(image.name, tag)
        if existing:
            result.update(action=SKIPPED, digest=existing, reference=f"{result['repository']}@{existing}")
    except SlipwayError as err:
        _failed(result, err)
    return result


def build_one(image, result, engine_factory, auth):
    """Phase 2 for one image the registry lacks: build and push; never raises."""
    engine = None
    try:
        engine = engine_factory()
        result["image_id"] = engine.build(image.context, image.dockerfile, result["tag_reference"],
                                          image.build_args, image.target)
        result["digest"] = engine.push(result["repository"], result["tag"], auth)
        result.update(action=BUILT, pushed=True, reference=f"{result['repository']}@{result['digest']}")
    except SlipwayError as err:
        _failed(result, err)
    finally:
        if engine is not None:
            engine.close()
    return result


def _failed(result, err):
    result.update(action=FAILED, msg=err.msg, **{k: v for k, v in err.details.items() if k not in result})


def build_all(images, registry, engine_factory, auth=None, workers=2, check_mode=False, force=False,
              lookup_workers=8):
    """Results in the order of ``images``.

    ``registry.check()`` comes first, so a registry that is down or refuses the credentials fails before
    anything is built. Then every image is digested and looked up (``lookup_workers`` at a time: cheap
    I/O; base images are resolved through an engine from ``engine_factory``), and only the images the
    registry lacks are built and pushed, ``workers`` at a time.
    """
    if workers < 1:
        raise SlipwayError("workers must be at least 1")
    registry.check()
    timings = {}

    def timed(func, index, *args):
        started = time.monotonic()
        try:
            return func(*args)
        finally:
            timings[index] = timings.get(index, 0.0) + time.monotonic() - started

    resolver = BaseResolver(engine_factory, registry)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(lookup_workers, len(images)))) as pool:
            results = list(pool.map(lambda pair: timed(lookup, pair[0], pair[1], registry, resolver, force),
                                    enumerate(images)))
    finally:
        resolver.close()
    missing = [i for i, r in enumerate(results) if r["action"] is None]
    if check_mode:
        for index in missing:
            results[index]["action"] = WOULD_BUILD
    elif missing:
        with ThreadPoolExecutor(max_workers=min(workers, len(missing))) as pool:
            list(pool.map(lambda i: timed(build_one, i, images[i], results[i], engine_factory, auth), missing))
    for index, result in enumerate(results):
        result["seconds"] = round(timings.get(index, 0.0), 2)
    return results


def summary(results):
    """(changed, failed results, the ``images-<context>.json`` map of name -> reference)."""
    failed = [r for r in results if r["action"] == FAILED]
    changed = any(r["action"] in (BUILT, WOULD_BUILD) for r in results)
    references = {r["name"]: r["reference"] for r in results if r["reference"]}
    return changed, failed, references
