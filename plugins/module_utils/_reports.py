# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports CI servers read: the one JUnit XML writer every step uses, and atomic file writes.

A step turns its own results into suites (``_image/report.py`` for image tests, ``_ci/result.py`` for build,
deliver, rollback and integrate); this module only knows JUnit. A case's ``status`` is ``passed``, ``failure``
(the thing tested is wrong), ``error`` (it could not be tested) or ``skipped``.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET

PASSED, FAILURE, ERROR, SKIPPED = "passed", "failure", "error", "skipped"

# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text):
    """``text`` with the characters XML cannot carry replaced (None becomes empty)."""
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", str(text) if text is not None else "")


def _count(cases, status):
    return str(sum(case["status"] == status for case in cases))


def junit_xml(name, suites):
    """The JUnit XML document (str) for ``suites``.

    A suite is ``{"name", "seconds", "properties": {name: value}, "cases": [case]}``; a case is
    ``{"classname", "name", "seconds", "status", "message", "type", "output"}`` (``message`` and ``type`` describe
    a failure, error or skip; ``output`` is its text, or the passed case's ``system-out``).
    """
    cases = [case for suite in suites for case in suite["cases"]]
    root = ET.Element("testsuites", name=clean(name), tests=str(len(cases)), failures=_count(cases, FAILURE),
                      errors=_count(cases, ERROR), time=f"{sum(suite['seconds'] for suite in suites):.2f}")
    for suite in suites:
        members = suite["cases"]
        element = ET.SubElement(root, "testsuite", name=clean(suite["name"]), tests=str(len(members)),
                                failures=_count(members, FAILURE), errors=_count(members, ERROR),
                                skipped=_count(members, SKIPPED), time=f"{suite['seconds']:.2f}")
        if suite.get("properties"):
            properties = ET.SubElement(element, "properties")
            for key, value in suite["properties"].items():
                ET.SubElement(properties, "property", name=key, value=clean(value))
        for case in members:
            _case(element, case)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case(suite, case):
    element = ET.SubElement(suite, "testcase", classname=clean(case["classname"]), name=clean(case["name"]),
                            time=f"{case.get('seconds') or 0:.2f}")
    output = clean(case.get("output"))
    if case["status"] == PASSED:
        if output:
            ET.SubElement(element, "system-out").text = output
        return
    attributes = {"message": clean(case.get("message"))}
    if case.get("type"):
        attributes["type"] = clean(case["type"])
    ET.SubElement(element, case["status"], **attributes).text = output


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
