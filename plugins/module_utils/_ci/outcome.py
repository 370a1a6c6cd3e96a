# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The outcomes a pipeline can tell apart, their exit codes, and how a playbook's results map to one.

The table is the contract ``docs/ci.md`` documents: change both together. ``nothing_to_do`` exits 0 like
``succeeded`` (a pipeline treats it as a success) unless the caller asks for detailed exit codes, as
``terraform plan -detailed-exitcode`` does. Codes stay clear of ``ansible-playbook``'s own (0-8, 99, 250).
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

SUCCEEDED = "succeeded"
NOTHING_TO_DO = "nothing_to_do"
FAILED = "failed"
TESTS_FAILED = "tests_failed"
DELIVERY_FAILED_ROLLED_BACK = "delivery_failed_rolled_back"
ROLLBACK_FAILED = "rollback_failed"
LOCK_NOT_OBTAINED = "lock_not_obtained"  # also the ``cause`` of a lock wait that timed out (``_release/lease.py``)
INTEGRATION_CONFLICT = "integration_conflict"

# outcome -> (exit code, exit code with detailed codes, what it means for the pipeline)
OUTCOMES = {
    SUCCEEDED: (0, 0, "every step passed and the context changed as asked"),
    NOTHING_TO_DO: (0, 10, "every step passed; the context already was as asked, nothing was written"),
    FAILED: (1, 1, "a step failed in a way no other outcome describes (read msg)"),
    TESTS_FAILED: (11, 11, "an image failed its declared tests; nothing was delivered"),
    DELIVERY_FAILED_ROLLED_BACK: (12, 12, "the delivery failed and was rolled back to the previous good release"),
    ROLLBACK_FAILED: (13, 13, "a rollback failed: the context is between releases and needs a person"),
    LOCK_NOT_OBTAINED: (14, 14, "another job held the context for longer than lock_timeout; nothing was changed"),
    INTEGRATION_CONFLICT: (15, 15, "a repository did not rebase (or merge) cleanly on its target branch"),
}
STEPS = ("rebase", "build", "test", "deliver", "merge", "rollback")


def exit_code(outcome, detailed=False):
    if outcome not in OUTCOMES:
        raise SlipwayError(f"unknown outcome {outcome!r}; known: {', '.join(OUTCOMES)}")
    return OUTCOMES[outcome][1 if detailed else 0]


def _images_failed(test):
    return any(image.get("verdict") == "failed" for image in (test or {}).get("images") or [])


def _rollback_broke(result):
    """Whether ``result`` is a rollback that failed once it had the lock (it may have written part of a release)."""
    return isinstance(result, dict) and bool(result.get("failed")) and result.get("cause") != LOCK_NOT_OBTAINED


def classify(results, failed_step=None, failure=None, declared=None):
    """The outcome of a run.

    ``results``: each step's registered result by step name (``STEPS``; a step that did not run is absent);
    ``failed_step``: the step that was running when the run failed (None when it did not fail); ``failure``: the
    failed task's result; ``declared``: an outcome the playbook stated for its failure (a rebase conflict).
    """
    if failed_step is None and failure is None:
        changing = [step for step in STEPS if step in results and step != "test"]  # tests always run: no change
        quiet = changing and not any((results[step] or {}).get("changed") for step in changing)
        return NOTHING_TO_DO if quiet else SUCCEEDED
    failure = failure or {}
    automatic = (results.get("deliver") or {}).get("rollback")
    if _rollback_broke(automatic) or _rollback_broke(results.get("rollback")) \
            or failed_step == "rollback" and failure.get("cause") != LOCK_NOT_OBTAINED:
        return ROLLBACK_FAILED
    if declared:
        return declared
    if failure.get("cause") == LOCK_NOT_OBTAINED:
        return LOCK_NOT_OBTAINED
    if failed_step == "deliver" and (results.get("deliver") or {}).get("rollback"):
        return DELIVERY_FAILED_ROLLED_BACK
    if failed_step == "test" and _images_failed(results.get("test")):
        return TESTS_FAILED
    return FAILED
