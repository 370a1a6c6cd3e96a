# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test reports CI servers read: JUnit XML (one suite per image, one case per command) and JSON."""

from __future__ import annotations

import json

from ansible_collections.slipway.platform.plugins.module_utils._reports import ERROR, FAILURE, PASSED
from ansible_collections.slipway.platform.plugins.module_utils._reports import junit_xml as junit_document

# an image test's status -> the JUnit element it becomes
_JUNIT_STATUS = {"passed": PASSED, "failed": FAILURE, "missing": FAILURE, "error": ERROR, "timeout": ERROR}


def _case(image, test):
    status = _JUNIT_STATUS[test["status"]]
    output = test.get("output") or ""
    if test["status"] == "failed":
        message = f"exit code {test['exit_code']}"
    elif test["status"] == "timeout":
        message = f"killed after its timeout of {test.get('timeout')}s"
    elif test["status"] == "error":
        message = output.splitlines()[0] if output else "error"
    else:
        message = output
    return {"classname": f"{image['system']}.{image['image']}", "name": test["category"], "seconds": test["seconds"],
            "status": status, "message": message, "type": test["status"] if status != PASSED else None,
            "output": output}


def junit_xml(results, name="slipway image tests"):
    """The JUnit XML document (str) for ``run_all`` results: one suite per image, one case per command."""
    return junit_document(name, [{"name": image["image"], "seconds": image["seconds"],
                                  "properties": {key: image[key] for key in ("system", "reference", "verdict")},
                                  "cases": [_case(image, test) for test in image["tests"]]}
                                 for image in results])


def json_report(results, context=None):
    """The JSON report: a verdict per image and every command's result."""
    return json.dumps({"context": context, "passed": all(r["verdict"] == "passed" for r in results),
                       "images": results}, indent=2, sort_keys=True) + "\n"
