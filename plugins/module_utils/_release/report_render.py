# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release report's model rendered as one HTML page, every value escaped (names and messages are other
people's text: a system called ``<script>`` must read as that, never run)."""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.report_page import PAGE


def render(model):
    """The page's HTML text for ``report_model.report_model(...)``."""
    try:
        import jinja2  # the controller's Ansible has it; imported here so that reading this module never needs it
    except ImportError:
        raise SlipwayError("the release report needs Jinja2: run it on the controller, whose Ansible requires "
                           "Jinja2 (the play's hosts: localhost, connection: local)") from None
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(PAGE).render(report=model)
