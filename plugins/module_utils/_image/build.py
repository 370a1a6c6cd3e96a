# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build orchestration: digest every image, ask the registry, build and push only what it lacks.

The predicate "the registry has ``<name>:<content tag>``" decides everything, in check mode and in a real
run alike: present -> skipped (no build, no push); absent -> built and pushed (check mode: would be).
Builds run in parallel on a bounded pool; one failed image does not stop the others, and is reported with
the command and the tail of its log. Plain Python; the engine and registry are passed in.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.digest import build_digest, tag_of

BUILT, SKIPPED, WOULD_BUILD, FAILED = "built", "skipped", "would_build", "failed"


def _result(image, registry, **fields):
    result = {"name": image.name, "system": image.system, "repository": f"{registry}/{image.name}",
              "action": None, "tag": None, "digest": None, "reference": None, "context_digest": None,
              "pushed": False, "seconds": 0.0}
    result.update(fields)
    return result


def build_one(image, registry, engine_factory, auth, check_mode=False, force=False):
    """Digest, look up, and (unless present or check mode) build and push one image; never raises."""
    started = time.monotonic()
    repository = f"{registry.registry}/{image.name}"
    result = _result(image, registry.registry)
    try:
        context_digest = build_digest(image.context, image.dockerfile, image.build_args, image.target)
        tag = tag_of(context_digest)
        result.update(context_digest=context_digest, tag=tag, tag_reference=f"{repository}:{tag}")
        existing = None if force else registry.manifest_digest(image.name, tag)
        if existing:
            result.update(action=SKIPPED, digest=existing)
        elif check_mode:
            result.update(action=WOULD_BUILD)
        else:
            engine = engine_factory()
            try:
                result["image_id"] = engine.build(image.context, image.dockerfile, f"{repository}:{tag}",
                                                  image.build_args, image.target)
                result["digest"] = engine.push(repository, tag, auth)
            finally:
                engine.close()
            result.update(action=BUILT, pushed=True)
    except SlipwayError as err:
        result.update(action=FAILED, msg=err.msg, **{k: v for k, v in err.details.items() if k not in result})
    if result["digest"]:
        result["reference"] = f"{repository}@{result['digest']}"
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def build_all(images, registry, engine_factory, auth=None, workers=2, check_mode=False, force=False):
    """Results in the order of ``images``; ``registry.check()`` first, so a registry that is down or
    refuses the credentials fails before anything is built."""
    if workers < 1:
        raise SlipwayError("workers must be at least 1")
    registry.check()
    with ThreadPoolExecutor(max_workers=min(workers, max(len(images), 1))) as pool:
        futures = [pool.submit(build_one, image, registry, engine_factory, auth, check_mode, force)
                   for image in images]
        return [future.result() for future in futures]


def summary(results):
    """(changed, failed results, the ``images-<context>.json`` map of name -> reference)."""
    failed = [r for r in results if r["action"] == FAILED]
    changed = any(r["action"] in (BUILT, WOULD_BUILD) for r in results)
    references = {r["name"]: r["reference"] for r in results if r["reference"]}
    return changed, failed, references
