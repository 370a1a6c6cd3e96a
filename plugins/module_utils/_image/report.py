# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test reports CI servers read: JUnit XML (one suite per image, one case per command) and JSON."""

from __future__ import annotations

import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET

# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text):
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text or "")


def junit_xml(results, name="slipway image tests"):
    """The JUnit XML document (str) for ``run_all`` results."""
    cases = [t for image in results for t in image["tests"]]
    root = ET.Element("testsuites", name=name, tests=str(len(cases)),
                      failures=str(sum(t["status"] in ("failed", "missing") for t in cases)),
                      errors=str(sum(t["status"] in ("error", "timeout") for t in cases)),
                      time=f"{sum(image['seconds'] for image in results):.2f}")
    for image in results:
        tests = image["tests"]
        suite = ET.SubElement(root, "testsuite", name=image["image"], tests=str(len(tests)),
                              failures=str(sum(t["status"] in ("failed", "missing") for t in tests)),
                              errors=str(sum(t["status"] in ("error", "timeout") for t in tests)),
                              skipped="0", time=f"{image['seconds']:.2f}")
        properties = ET.SubElement(suite, "properties")
        for key in ("system", "reference", "verdict"):
            ET.SubElement(properties, "property", name=key, value=_clean(image[key]))
        for test in tests:
            case = ET.SubElement(suite, "testcase", classname=f"{image['system']}.{image['image']}",
                                 name=test["category"], time=f"{test['seconds']:.2f}")
            output = _clean(test.get("output"))
            if test["status"] in ("failed", "missing"):
                message = f"exit code {test['exit_code']}" if test["status"] == "failed" else output
                ET.SubElement(case, "failure", message=message, type=test["status"]).text = output
            elif test["status"] in ("error", "timeout"):
                message = (f"killed after its timeout of {test.get('timeout')}s" if test["status"] == "timeout"
                           else output.splitlines()[0] if output else "error")
                ET.SubElement(case, "error", message=message, type=test["status"]).text = output
            else:
                ET.SubElement(case, "system-out").text = output
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def json_report(results, context=None):
    """The JSON report: a verdict per image and every command's result."""
    return json.dumps({"context": context, "passed": all(r["verdict"] == "passed" for r in results),
                       "images": results}, indent=2, sort_keys=True) + "\n"


def write_atomic(path, text):
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half a report."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".slipway-report-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
