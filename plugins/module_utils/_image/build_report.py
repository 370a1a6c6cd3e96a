# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build report ``reports/images-<context>.json``: ``{"<image name>": "<registry>/<name>@sha256:<digest>"}``,
written by ``playbooks/build.yml`` once every image is built and pushed."""

from __future__ import annotations

import json
import re

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

BY_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
REBUILD = "run playbooks/build.yml for this context, or check the image name in the system's slipway.yml"


def load_report(report):
    """The report as a mapping: given as one already, or as the JSON text of the file."""
    if isinstance(report, (str, bytes)):
        try:
            report = json.loads(report)
        except ValueError as exc:
            raise SlipwayError(f"the build report is not valid JSON ({exc}); {REBUILD}") from None
    if not isinstance(report, dict):
        raise SlipwayError(f"the build report must map image names to references, not {type(report).__name__}")
    return report


def reference_by_digest(report, image):
    """The reference the build recorded for ``image``; refused when it is missing or not by digest."""
    report = load_report(report)
    if not isinstance(image, str) or not image:
        raise SlipwayError(f"expected an image name, not {image!r}")
    if image not in report:
        known = ", ".join(sorted(str(name) for name in report)) or "none"
        raise SlipwayError(f"image {image!r} is not in the build report (it has: {known}); {REBUILD}")
    reference = report[image]
    if not isinstance(reference, str) or not BY_DIGEST.match(reference):
        raise SlipwayError(f"the build report's reference for image {image!r} is {reference!r}, not a reference by "
                           f"digest (<registry>/<name>@sha256:<64 hex>); {REBUILD}")
    return reference
