# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type of the collection, and the kinds of it callers tell apart.

Pure code raises :class:`SlipwayError`; a module's ``main()`` turns it into ``fail_json``
with ``msg`` and the structured ``details`` (never a traceback). The Kube client raises the subclasses below
for the answers a caller handles (a name taken, an object gone, a refusal, an API that does not answer), so
callers catch by type; ``details`` stay the same (``status``, ``reason``, ...), and so do results.
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


class NotFound(SlipwayError):
    """The API answered 404: the object (or its namespace, or its kind) does not exist."""


class Conflict(SlipwayError):
    """The API answered 409: the name is taken, the object changed since it was read, or a field is owned."""


class Forbidden(SlipwayError):
    """The API answered 403: the identity lacks the RBAC permission (or the server is not ready yet)."""


class Unreachable(SlipwayError):
    """The API did not answer: no connection, or no answer within the timeout."""
