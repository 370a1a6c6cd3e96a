# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The order systems are delivered in: each as soon as its dependencies are ready, failing fast.

One thread per system, so a system waiting for readiness never holds back one that could start; the API requests
of all of them share one bounded pool. After the first failure nothing new starts (running systems finish), and
a system whose dependency failed is skipped.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError


def run_in_order(waves, runs, deliver, concurrency):
    """Call ``deliver(run, requests)`` for every system of ``waves`` (dependency order); ``{name: reason}`` of
    those that failed or were skipped, and each ``SystemRun`` marked."""
    failed = {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as requests, \
            ThreadPoolExecutor(max_workers=max(1, len(runs))) as systems:
        done, running = set(), {}
        order = [name for wave in waves for name in wave]
        while len(done) + len(failed) < len(order):
            for name in order:
                if name in done or name in failed or name in running.values():
                    continue
                deps = set(runs[name].system.depends_on) & set(order)
                if deps & set(failed):
                    _skip(runs[name], failed, "a dependency failed: " + ", ".join(sorted(deps & set(failed))))
                    continue
                if deps <= done:
                    running[systems.submit(deliver, runs[name], requests)] = name
            if not running:
                continue
            finished = wait(list(running), return_when=FIRST_COMPLETED).done
            for future in finished:
                name = running.pop(future)
                try:
                    future.result()
                    done.add(name)
                except SlipwayError as exc:
                    failed[name] = exc.msg
                    runs[name].result = "failed"
                    runs[name].reason = exc.msg
            if failed:
                # fail fast: let running systems finish, start nothing new that is not already running
                for name in order:
                    if name not in done and name not in failed and name not in running.values():
                        _skip(runs[name], failed, "not started: another system failed")
    return failed


def _skip(run, failed, reason):
    failed[run.system.name] = "skipped"
    run.result, run.reason = "skipped", reason
