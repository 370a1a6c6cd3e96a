# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a release task run on the controller shows: its progress as it happens, and a closing table per system.

Shared by the action plugins of the release modules that run their engine in the controller's process
(``deliver``, ``rollback``)."""

from __future__ import annotations

import threading


def progress_printer(display):
    """A ``progress(line)`` callback for the engine, which reports from several threads: one line per system
    always, one per object (``DetailLine``) with ``-v``."""
    from ansible_collections.slipway.platform.plugins.module_utils._release.options import DetailLine

    lock = threading.Lock()

    def progress(line):
        with lock:
            show = display.v if isinstance(line, DetailLine) else display.display
            show(f"  slipway: {line}")
    return progress


def summary_lines(outcome):
    """The closing table of a release result: system, image, revision, result, seconds (no lines without
    systems)."""
    rows = outcome.get("systems") or []
    if not rows or not isinstance(rows, list):
        return []
    table = [("system", "image", "revision", "result", "seconds")]
    for row in rows:
        images = ", ".join(sorted((row.get("images") or {}).values())) or "-"
        table.append((row.get("system", ""), images, str(row.get("revision") or "-"), row.get("result", ""),
                      f"{row.get('seconds', 0):.1f}"))
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    return ([f"slipway: release {outcome.get('revision') or '-'} of {outcome.get('context', '')}: "
             f"{outcome.get('summary')}"]
            + ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in table])


def show_summary(display, outcome):
    """Show the closing table of ``outcome`` (nothing for a result without systems)."""
    lines = summary_lines(outcome)
    if lines:
        display.display("\n".join(lines))
