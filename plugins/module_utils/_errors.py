# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type of the collection.

Pure code raises :class:`SlipwayError`; a module's ``main()`` turns it into ``fail_json``
with ``msg`` and the structured ``details`` (never a traceback).
"""

from __future__ import annotations


class SlipwayError(Exception):
    """A failure the user can act on: ``msg`` says what is wrong and how to fix it."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def to_result(self):
        """Keyword arguments for ``AnsibleModule.fail_json``."""
        result = dict(self.details)
        result["msg"] = self.msg
        return result
