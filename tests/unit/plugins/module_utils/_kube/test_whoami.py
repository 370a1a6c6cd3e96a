# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who the API server takes the client for: user and groups, never the extra fields; None when it cannot say."""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import NotFound
from ansible_collections.slipway.platform.plugins.module_utils._kube.whoami import SELF_SUBJECT_REVIEWS, whoami


class Reviewer:
    def __init__(self, answer):
        self.answer, self.asked = answer, []

    def request(self, method, path, body=None, **_kwargs):
        self.asked.append((method, path, body["kind"]))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_user_and_groups_as_the_api_server_knows_them():
    client = Reviewer({"status": {"userInfo": {"username": "slipway:deployer", "groups": ["b", "a"],
                                               "extra": {"authentication.kubernetes.io/credential-id": ["X509SHA"]}}}})
    assert whoami(client) == {"username": "slipway:deployer", "groups": ["a", "b"]}
    assert client.asked == [("POST", SELF_SUBJECT_REVIEWS, "SelfSubjectReview")]


def test_a_server_without_the_review_gives_none():
    assert whoami(Reviewer(NotFound("404"))) is None
    assert whoami(Reviewer({"status": {}})) is None
